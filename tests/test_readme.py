"""Each code block of the README runs by itself (CLI-017): a reader copies one block, not the page.

Every ```python block runs alone in a fresh interpreter. Every command of a ```console block (the
lines after `$ `) and of a ```bash block (each line that is not a comment) runs in a fresh shell
in a scratch directory, and must exit as README says (0 unless listed in EXIT_STATUS). Commands
that cannot run here (they install, reach the network, need Wine or run for minutes) are listed
in SKIPPED with the reason; one that looks like it installs or connects (UNSAFE) and is not
listed fails instead of running; a SKIPPED entry that no longer matches a README command fails,
so the list cannot rot.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
rule = pytest.mark.rule

# Commands (by their start) that the test does not run, and why.
SKIPPED = {
    "python3 -m venv .venv": "installs the package (the setup line, run by hand and by CI)",
    ". .venv/bin/activate && pytest": "the whole test suite: this test is part of it",
    "sspi-model check --backend sspi-rs": "a campaign of minutes against libsspi (sspilib)",
    "python -m pytest --sspi-backend mypkg": "mypkg is the reader's own backend, a placeholder",
    "sspi-model check --backend mypkg": "mypkg is the reader's own backend, a placeholder",
    "sspi-model explore mypkg": "mypkg is the reader's own scenario module, a placeholder",
    "HYPOTHESIS_PROFILE=thorough": "a long campaign, the point of the 'Long campaigns' section",
    "apt-get install": "installs system packages (Wine and MinGW for the agent)",
    "sspi-model check --backend wine": "a campaign of minutes under Wine (tests/test_wine.py)",
    "pytest --sspi-backend wine": "the kit under Wine, tests/test_wine.py runs it",
    "sspi-model check --backend agent:": "a Windows host reached over ssh: the network",
    "python -m sspi_model.explore.fuzz --calls 1000000": "a million-call soak, 'for a long run'",
}
# A command that installs or reaches the network must be in SKIPPED: the test refuses to run one
# that is not, rather than install or connect because the README gained a line.
UNSAFE = re.compile(
    r"""(^|[\s;&|("':])(apt-get|apt|pip|pip3|npm|ssh|scp|curl|wget|git clone)(\s|$)"""
)
# The exit status README's text promises for a command, when it is not 0: the explorer exits
# 1 when a schedule finds misuse, which is what the overview's race does.
EXIT_STATUS = {"sspi-model explore": 1}
TIMEOUT = 300  # seconds for one block; none of the runnable ones takes more than a few


def blocks(language: str) -> list[tuple[int, str]]:
    """(line number, text) of each ```language block of README.md."""
    text = README.read_text(encoding="utf-8")
    found = []
    for match in re.finditer(rf"^```{language}\n(.*?)^```", text, re.S | re.M):
        found.append((text.count("\n", 0, match.start()) + 1, match.group(1)))
    return found


Block = tuple[int, list[tuple[int, str]]]


def commands() -> list[Block]:
    """(line number, [(line number, command), ...]) of every console/bash block: the commands
    of one block run in order in one scratch directory (a later one may read what an earlier
    one wrote, as `replay race.jsonl` after `explore --trace race.jsonl`)."""
    found: list[Block] = []
    for start, text in blocks("console"):
        lines = enumerate(text.splitlines(), 1)
        steps = [
            (start + n, line[2:].split("  #")[0].strip())
            for n, line in lines
            if line.startswith("$ ")
        ]
        found.append((start, steps))
    for start, text in blocks("bash"):
        lines = enumerate(text.splitlines(), 1)
        steps = [
            (start + n, line.strip())
            for n, line in lines
            if line.strip() and not line.lstrip().startswith("#")
        ]
        found.append((start, steps))
    return found


def _skipped(command: str) -> str | None:
    return next((why for start, why in SKIPPED.items() if command.startswith(start)), None)


def _environment() -> dict[str, str]:
    # The interpreter running the tests is the reader's activated venv: its bin first on PATH.
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST")}
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    env["NO_COLOR"] = "1"
    return env


PYTHON_BLOCKS = blocks("python")
COMMANDS = commands()


def test_the_readme_has_examples_to_run() -> None:
    assert len(PYTHON_BLOCKS) >= 5 and sum(len(steps) for _, steps in COMMANDS) >= 10


@rule("CLI-017")
@pytest.mark.parametrize(("line", "code"), PYTHON_BLOCKS, ids=[f"L{n}" for n, _ in PYTHON_BLOCKS])
def test_each_python_block_runs_alone(line: int, code: str, tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-c", code],
        cwd=tmp_path,
        env=_environment(),
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
    )
    assert done.returncode == 0, f"README.md line {line}: the block fails alone:\n{done.stderr}"


@rule("CLI-017")
@pytest.mark.parametrize(("line", "steps"), COMMANDS, ids=[f"L{n}" for n, _ in COMMANDS])
def test_each_command_block_runs_alone(
    line: int, steps: list[tuple[int, str]], tmp_path: Path
) -> None:
    ran = []
    for at, command in steps:
        if _skipped(command) is not None:
            continue
        assert not UNSAFE.search(command), (
            f"README.md line {at}: `{command}` installs or reaches the network: add it to "
            "SKIPPED with the reason"
        )
        expected = next((c for start, c in EXIT_STATUS.items() if command.startswith(start)), 0)
        done = subprocess.run(
            ["bash", "-c", command],
            cwd=tmp_path,
            env=_environment(),
            capture_output=True,
            text=True,
            timeout=TIMEOUT,
        )
        assert done.returncode == expected, (
            f"README.md line {at}: `{command}` exited {done.returncode}, expected {expected}:\n"
            f"{done.stdout[-2000:]}\n{done.stderr[-2000:]}"
        )
        ran.append(command)
    if not ran:
        reasons = sorted({str(_skipped(command)) for _, command in steps})
        pytest.skip(f"README.md line {line}: every command skipped: {'; '.join(reasons)}")


@rule("CLI-017")
def test_every_skip_names_a_command_of_the_readme() -> None:
    every = [command for _, steps in COMMANDS for _, command in steps]
    stale = [start for start in SKIPPED if not any(c.startswith(start) for c in every)]
    assert not stale, f"SKIPPED entries match no README command any more: {stale}"


@pytest.mark.parametrize(
    ("command", "unsafe"),
    [
        ("apt-get install -y wine", True),
        ('sspi-model check --backend agent:"ssh winbox C:\\\\agent.exe"', True),
        ("python -m pip install sspilib", True),
        ("cd x && curl -O https://example.invalid/a", True),
        ("sspi-model explore curl-cache", False),
        ("sspi-model demo --trace t.jsonl && sspi-model replay t.jsonl", False),
    ],
)
def test_the_guard_stops_commands_that_install_or_connect(command: str, unsafe: bool) -> None:
    assert bool(UNSAFE.search(command)) is unsafe
