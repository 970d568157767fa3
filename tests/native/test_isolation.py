"""The worker process turns crashes and hangs into BackendFailure (with tests/data/crashlib.c)."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from sspi_model import SecBuffer, SecHandle, SecStatus
from sspi_model.backends.base import BackendFailure
from sspi_model.backends.native import NativeBackend, NeedsReset, WorkerError
from sspi_model.backends.native.worker import Supervisor, crash_outcome
from sspi_model.buffers import SECBUFFER_EXTRA
from sspi_model.results import ContextSizes

SEGV, ABORT, HANG = SecHandle(0xDEAD, 0), SecHandle(0xAB0, 0), SecHandle(0xBEEF, 0)


def test_segfault_is_reported_and_earlier_results_are_kept(crashlib: str) -> None:
    with NativeBackend(crashlib) as native:
        assert native.capabilities.packages == frozenset({"Crash"})
        credential = native.acquire_credentials_handle("Crash", 2)
        leg = native.initialize_security_context(credential.credential, None, "t", 0x100)
        with pytest.raises(BackendFailure) as failure:
            native.delete_security_context(SEGV)
        assert failure.value.outcome == "CRASH:SIGSEGV"
        assert credential.credential == SecHandle(0xC0DE, 0) and credential.expiry == 42
        assert leg.new_context == SecHandle(0xC0, 0) and leg.output_token == b"hi"
        with pytest.raises(NeedsReset):
            native.delete_security_context(None)
        native.reset()
        assert native.delete_security_context(SecHandle(1, 2)) == SecStatus.SEC_E_OK


def test_abort_carries_the_stderr_of_that_call(crashlib: str) -> None:
    with NativeBackend(crashlib) as native:
        with pytest.raises(BackendFailure) as failure:
            native.free_credentials_handle(ABORT)
        assert failure.value.outcome == "CRASH:SIGABRT"
        assert failure.value.detail == "crashlib: deliberate abort"


def test_hang_is_killed_after_the_timeout(crashlib: str) -> None:
    with NativeBackend(crashlib, timeout=0.5) as native:
        start = time.monotonic()
        with pytest.raises(BackendFailure) as failure:
            native.query_context_attributes(HANG, 0)
        assert failure.value.outcome == "HANG"
        assert 0.5 <= time.monotonic() - start < 3.0
        native.reset()
        result = native.query_context_attributes(SecHandle(1, 1), 0)
        assert result.buffer == ContextSizes(1, 2, 3, 4)


def test_input_buffers_as_the_call_left_them(crashlib: str) -> None:
    with NativeBackend(crashlib) as native:
        result = native.accept_security_context(SecHandle(1, 0), None, b"xyz", 0)
        assert result.input_after == (SecBuffer(SECBUFFER_EXTRA, b"x"),)
        assert native.initialize_security_context(None, None, None, 0, b"xyz").input_after is None


def test_stdout_noise_and_unknown_status_codes(crashlib: str) -> None:
    with NativeBackend(crashlib, spare=False) as native:
        result = native.query_security_package_info("anything")
        assert result.status == 0x00091234
        assert type(result.status) is int  # not a SecStatus member: kept as the raw value
        assert native.delete_security_context(None) == SecStatus.SEC_E_OK  # protocol intact


def test_python_errors_in_the_worker_keep_it_alive(crashlib: str) -> None:
    supervisor = Supervisor(crashlib, 2.0, spare=False)
    try:
        with pytest.raises(WorkerError, match="no_such_call"):
            supervisor.call("no_such_call")
        assert supervisor.call("delete_security_context", None) == 0
    finally:
        supervisor.close()


def test_a_file_that_is_not_a_library(tmp_path: Path) -> None:
    bogus = tmp_path / "libsspi-bogus.so"
    bogus.write_text("not a shared object")
    with pytest.raises(OSError, match="could not load the library"):
        NativeBackend(str(bogus))


@pytest.mark.parametrize(
    ("returncode", "outcome"),
    [
        (-11, "CRASH:SIGSEGV"),
        (-6, "CRASH:SIGABRT"),
        (1, "CRASH:EXIT_1"),
        (0xC0000005, "CRASH:STATUS_ACCESS_VIOLATION"),
    ],
)
def test_crash_outcome_names(returncode: int, outcome: str) -> None:
    assert crash_outcome(returncode) == outcome
