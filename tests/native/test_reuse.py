"""A worker serves example after example while its library state is defined (CMP-001), and
runs with Rust backtraces off (CMP-002). sspi-rs from sspilib; the ledger tests need nothing."""

from __future__ import annotations

import os
import signal
from typing import Any

import pytest

from sspi_model.backends.base import BackendFailure
from sspi_model.backends.native import NativeBackend
from sspi_model.backends.native.ledger import HandleLedger
from sspi_model.backends.native.worker import worker_environment
from sspi_model.constants import CredentialUse
from sspi_model.packages.ntlm import AuthIdentity
from sspi_model.testing.differential import DOMAIN, PASSWORD, USER

rule = pytest.mark.rule


def _credential(backend: NativeBackend) -> Any:
    identity = AuthIdentity(USER, PASSWORD, DOMAIN)
    return backend.acquire_credentials_handle("NTLM", CredentialUse.OUTBOUND, identity).credential


def _context(backend: NativeBackend, credential: Any) -> Any:
    return backend.initialize_security_context(credential, None, "host/srv", 0x800).new_context


@rule("CMP-001")
def test_a_clean_example_leaves_the_worker_serving_the_next(backend: NativeBackend) -> None:
    credential = _credential(backend)
    context = _context(backend, credential)
    backend.delete_security_context(context)
    backend.free_credentials_handle(credential)
    pid = backend.worker_pid
    backend.reset()
    _credential(backend)
    assert backend.worker_pid == pid
    assert backend.examples_served == 1


@rule("CMP-001")
def test_an_example_that_passed_a_deleted_handle_retires_the_worker(
    backend: NativeBackend,
) -> None:
    credential = _credential(backend)
    context = _context(backend, credential)
    backend.delete_security_context(context)
    # MakeSignature is a stub in sspi-rs (probe §1.3): the worker survives the call, but the
    # call passed a deleted handle, so its state is no longer trusted.
    backend.make_signature(context, 0, b"data")
    assert "already deleted" in backend.ledger.suspect
    pid = backend.worker_pid
    backend.reset()
    _credential(backend)
    assert backend.worker_pid not in (None, pid)
    assert not backend.ledger.suspect and backend.examples_served == 0


@rule("CMP-001")
def test_a_crash_replaces_a_reused_worker_and_keeps_what_came_before(
    backend: NativeBackend,
) -> None:
    first = _credential(backend)
    backend.reset()  # clean: kept
    kept = _credential(backend)
    pid = backend.worker_pid
    assert pid is not None and backend.examples_served == 1
    os.kill(pid, signal.SIGKILL)
    with pytest.raises(BackendFailure) as failure:
        _credential(backend)
    assert failure.value.outcome == "CRASH:SIGKILL"
    assert kept is not None and first is not None  # the results before the crash stand
    backend.reset()
    assert _credential(backend) == first  # a fresh fork: the zygote's state again
    assert backend.worker_pid not in (None, pid)


@rule("CMP-001")
def test_reuse_off_gives_a_fresh_worker_per_example(library: str) -> None:
    with NativeBackend(library, reuse=False) as native:
        _credential(native)
        pid = native.worker_pid
        native.reset()
        _credential(native)
        assert native.worker_pid not in (None, pid)


@rule("CMP-001")
def test_a_worker_serves_at_most_its_reuse_limit(library: str) -> None:
    with NativeBackend(library, reuse_limit=2) as native:
        pids = []
        for _ in range(4):
            _credential(native)
            pids.append(native.worker_pid)
            native.reset()
        assert pids[0] == pids[1] == pids[2] != pids[3]


@rule("CMP-001")
def test_the_ledger_flags_every_handle_the_library_may_not_survive() -> None:
    ledger = HandleLedger()
    credential, context = (0x1000, 0), (0x2000, 0x3000)
    ledger.issued_credential(credential)
    ledger.issued_context(context, credential)
    ledger.issued_context((0x2000, 0x4000), None)  # a later ASC leg writes a new dwUpper
    for handle in (None, (0, 0), (0, 0x1234)):  # NULL checks: defined (or a fault at 0)
        ledger.pass_context(handle, "call")
        ledger.pass_credential(handle, "call")
    ledger.pass_context((0x2000, 0x3000), "call")
    ledger.pass_context((0x2000, 0x4000), "call")
    ledger.pass_credential(credential, "call")
    assert ledger.suspect == ""
    cases: list[tuple[str, Any]] = [
        ("forged context", lambda led: led.pass_context((0x2000, 0x5000), "Q")),
        ("credential as context", lambda led: led.pass_context(credential, "Q")),
        ("context as credential", lambda led: led.pass_credential(context, "F")),
        ("freed buffer", lambda led: led.pass_buffer(0x1234)),
    ]
    for what, misuse in cases:
        fresh = HandleLedger()
        fresh.issued_credential(credential)
        fresh.issued_context(context, credential)
        misuse(fresh)
        assert fresh.suspect, what
    ledger.freed_credential(credential)
    ledger.pass_context(context, "InitializeSecurityContextW")  # its credential is gone
    assert "credential was freed" in ledger.suspect
    deleted = HandleLedger()
    deleted.issued_context(context, None)
    deleted.deleted_context(context)
    deleted.pass_context(context, "DeleteSecurityContext")
    assert "already deleted" in deleted.suspect


@rule("CMP-002")
def test_workers_run_without_rust_backtraces(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RUST_BACKTRACE", "1")
    monkeypatch.delenv("SSPI_MODEL_RUST_BACKTRACE", raising=False)
    assert worker_environment()["RUST_BACKTRACE"] == "0"
    monkeypatch.setenv("SSPI_MODEL_RUST_BACKTRACE", "full")
    assert worker_environment()["RUST_BACKTRACE"] == "full"


@rule("CMP-002")
def test_an_abort_reports_the_message_not_a_backtrace(backend: NativeBackend) -> None:
    credential = _credential(backend)
    backend.free_credentials_handle(credential)
    with pytest.raises(BackendFailure) as failure:  # probe §1.4: a ~9e13-byte allocation
        backend.initialize_security_context(credential, None, "host/srv", 0x800)
    assert failure.value.outcome == "CRASH:SIGABRT"
    assert "memory allocation of" in str(failure.value)


@rule("CMP-007")
@pytest.mark.skipif(not os.path.isdir("/proc/self/task"), reason="reads /proc (Linux)")
def test_a_silent_worker_gets_more_time_only_while_it_is_runnable() -> None:
    import subprocess
    import sys

    from sspi_model.backends.native.worker import MAX_EXTENSIONS, runnable, wait_for_reply

    asleep = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    busy = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        import time

        time.sleep(0.3)  # both started: one asleep in a syscall, one spinning
        assert runnable(os.getpid()) and not runnable(asleep.pid)
        assert not runnable(2**22 + 12345)  # no such process: taken as stuck
        calls: list[float] = []

        def never(seconds: float) -> bool:
            calls.append(seconds)
            return False

        assert not wait_for_reply(never, asleep.pid, 0.01)
        assert len(calls) == 1  # asleep: a HANG at the first timeout
        calls.clear()
        assert runnable(busy.pid)
        assert not wait_for_reply(never, busy.pid, 0.01)
        assert len(calls) == MAX_EXTENSIONS + 1  # runnable: waited again, then bounded
        answers = iter([False, False, True])
        assert wait_for_reply(lambda seconds: next(answers), busy.pid, 0.01)
    finally:
        for process in (asleep, busy):
            process.kill()
            process.wait()


@rule("CMP-007")
def test_a_worker_asleep_in_the_library_is_still_a_hang_at_the_timeout(crashlib: str) -> None:
    import time

    from sspi_model.handles import SecHandle

    with NativeBackend(crashlib, timeout=0.3) as native:
        begin = time.monotonic()
        with pytest.raises(BackendFailure) as failure:
            native.query_context_attributes(SecHandle(0xBEEF, 0), 0)  # crashlib: sleeps
        assert failure.value.outcome == "HANG"
        assert time.monotonic() - begin < 0.3 * 5  # asleep: the wait was not extended
