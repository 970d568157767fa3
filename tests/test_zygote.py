"""Workers forked from a zygote keep the isolation guarantee: a worker killed in the middle of
an example is a CRASH, the campaign records it and goes on (sspi-rs from sspilib)."""

from __future__ import annotations

import os
import signal
from typing import Any

import pytest

from sspi_model.backends.base import BackendFailure
from sspi_model.backends.native import LibraryNotFound, NativeBackend, find_library
from sspi_model.backends.native.forked import forking_supported
from sspi_model.constants import CredentialUse
from sspi_model.packages.ntlm import AuthIdentity
from sspi_model.testing.check import DIFFERENTIAL_TIMEOUT, check_backend
from sspi_model.testing.differential import DOMAIN, PASSWORD, USER

pytestmark = pytest.mark.skipif(not forking_supported(), reason="fork() is POSIX only")


@pytest.fixture(scope="module")
def library() -> str:
    try:
        return find_library()
    except LibraryNotFound as missing:
        if os.environ.get("CI") == "true":
            raise
        pytest.skip(f"{missing} (pip install 'sspi-model[native]')")


def _acquire(backend: NativeBackend) -> Any:
    identity = AuthIdentity(USER, PASSWORD, DOMAIN)
    return backend.acquire_credentials_handle("NTLM", CredentialUse.OUTBOUND, identity)


def test_a_killed_worker_is_a_crash_and_reset_forks_a_fresh_one(library: str) -> None:
    with NativeBackend(library) as native:
        first = _acquire(native)
        pid = native.worker_pid
        assert pid is not None and pid != os.getpid()
        os.kill(pid, signal.SIGKILL)
        with pytest.raises(BackendFailure) as failure:
            _acquire(native)
        assert failure.value.outcome == "CRASH:SIGKILL"
        native.reset()
        again = _acquire(native)
        assert native.worker_pid not in (None, pid)
        # A forked worker starts from the zygote's state, as a freshly started one would.
        assert again.credential == first.credential


class KilledMidExample(NativeBackend):
    """sspi-rs, except that its worker is killed (SIGKILL, from outside) when a context is
    queried: the calls before it in the example ran, the query never gets an answer."""

    def query_context_attributes(self, context: Any, attribute: int) -> Any:
        pid = self.worker_pid
        assert pid is not None
        os.kill(pid, signal.SIGKILL)
        return super().query_context_attributes(context, attribute)


def test_the_campaign_reports_a_killed_worker_as_crash_and_continues(library: str) -> None:
    report = check_backend(
        "sspi-rs",
        lambda: KilledMidExample(library, timeout=DIFFERENTIAL_TIMEOUT),
        examples=40,
        max_rounds=3,
    )
    crashes = [d for d in report.new if d.observed == "CRASH:SIGKILL"]
    assert crashes, [d.observed for d in report.divergences]
    assert all(d.call == "QueryContextAttributesW" for d in crashes)
    assert len(crashes[0].reproducer) > 1  # mid-example: other calls ran before the kill
    # It went on: a later round ran (the crash was recorded in an earlier one) and examples
    # after the crash met the library's known divergences.
    assert report.rounds >= 2
    assert any(d.known for d in report.divergences)
