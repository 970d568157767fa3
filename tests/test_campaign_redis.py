"""Two `sspi-model check` processes share one Redis example database (a real redis-server,
started here on a free port): the second replays what the first found."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parent
INSTALL = "apt-get install -y redis-server; pip install 'sspi-model[redis]'"


def _missing(reason: str) -> None:
    if os.environ.get("CI") == "true":
        pytest.fail(f"{reason} (CI must run this test): {INSTALL}")
    pytest.skip(f"{reason}: {INSTALL}")


@pytest.fixture
def redis_url(tmp_path: Path) -> Iterator[str]:
    server = shutil.which("redis-server")
    if server is None:
        _missing("redis-server is not installed")
    try:
        import redis
    except ImportError:
        _missing("the redis package is not installed")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    process = subprocess.Popen(
        [server, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
         "--dir", str(tmp_path)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        client = redis.Redis(host="127.0.0.1", port=port)
        deadline = time.monotonic() + 10
        while True:
            try:
                client.ping()
                break
            except redis.ConnectionError:
                if time.monotonic() > deadline or process.poll() is not None:
                    raise
                time.sleep(0.05)
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        process.terminate()
        process.wait(timeout=10)


def _check(url: str, seed: int) -> subprocess.CompletedProcess[str]:
    environment = {**os.environ, "PYTHONPATH": os.pathsep.join([str(TESTS), str(TESTS.parent)])}
    return subprocess.run(
        [sys.executable, "-m", "sspi_model", "check", "--backend", "toy_backends:BrokenBackend",
         "--examples", "30", "--jobs", "1", "--seed", str(seed), "--database", url],
        capture_output=True, text=True, env=environment, timeout=300, check=False,
    )


def _new(result: subprocess.CompletedProcess[str]) -> set[str]:
    return {line for line in result.stdout.splitlines() if line.startswith("  [NEW]")}


def test_a_second_machine_replays_what_the_first_found(redis_url: str) -> None:
    first = _check(redis_url, 0)
    assert first.returncode == 1, first.stderr  # new divergences
    assert "replayed first" not in first.stderr
    found = _new(first)
    assert found
    second = _check(redis_url, 7)  # another machine, another seed
    assert second.returncode == 1, second.stderr
    replayed = f"replayed first: {len(found)} saved example(s) from the database"
    assert replayed in second.stderr, second.stderr
    assert _new(second) >= found  # the same shrunk examples, so the same lines
