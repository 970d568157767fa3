"""Issue 15's robustness items: strings a package cannot send, instance numbers that must never
wrap, and the ThreadedScheduler's hangs and dropped errors. (Completions that raise, bounded
event logs, misuse on entry, profile changes in flight and constructor checks are in
tests/test_core_contract.py; the fuzz contract is tests/test_fuzz_contract.py.)"""

from __future__ import annotations

import gc
import threading
import time
from typing import Any

import pytest

from sspi_model import (
    AuthIdentity,
    Certificate,
    CredentialUse,
    Out,
    SchannelCred,
    SecStatus,
    Sspi,
    SspiMisuse,
    ThreadedScheduler,
)
from sspi_model import handles as handles_module

ACCOUNTS = {"CONTOSO\\alice": "pw"}
UNKNOWN = SecStatus.SEC_E_UNKNOWN_CREDENTIALS
LONG = "a" * 32768  # one UTF-16 unit more than a UNICODE_STRING holds


@pytest.mark.rule("ROB-001")
@pytest.mark.parametrize(
    "identity",
    [
        AuthIdentity(user="al\ud800ice", password="pw", domain="CONTOSO"),
        AuthIdentity(user="alice", password="pw", domain="CON\udfffTOSO"),
        AuthIdentity(user="alice", password="p\ud800w", domain="CONTOSO"),
        AuthIdentity(user=LONG, password="pw", domain="CONTOSO"),
        AuthIdentity(user="alice", password="pw", domain=LONG),
        AuthIdentity(user="alice", password=LONG, domain="CONTOSO"),
    ],
    ids=[
        "user-surrogate",
        "domain-surrogate",
        "password-surrogate",
        "long-user",
        "long-domain",
        "long-password",
    ],
)
@pytest.mark.parametrize("package", ["NTLM", "Negotiate"])
def test_identity_strings_no_message_can_carry_are_refused_at_acquire(
    identity: AuthIdentity, package: str
) -> None:
    sspi = Sspi(accounts=ACCOUNTS)
    result = sspi.acquire_credentials_handle(package, CredentialUse.OUTBOUND, identity)
    assert result.status == UNKNOWN and result.credential is None
    assert sspi.last_rules == ("ROB-001",)
    assert sspi.statistics().credentials == 0


@pytest.mark.rule("ROB-001")
def test_the_longest_sendable_identity_still_runs_a_handshake() -> None:
    user = "u" * 0x7FFF
    accounts = {f"D\\{user}": "pw"}
    client, server = Sspi(accounts=accounts), Sspi(accounts=accounts)
    cred = client.acquire_credentials_handle(
        "NTLM", CredentialUse.OUTBOUND, AuthIdentity(user=user, password="pw", domain="D")
    ).credential
    scred = server.acquire_credentials_handle("NTLM", CredentialUse.INBOUND).credential
    leg1 = client.initialize_security_context(cred, None, "host/x")
    acc1 = server.accept_security_context(scred, None, leg1.output_token)
    leg2 = client.initialize_security_context(cred, leg1.new_context, None, 0, acc1.output_token)
    acc2 = server.accept_security_context(scred, acc1.new_context, leg2.output_token)
    assert (leg2.status, acc2.status) == (SecStatus.SEC_E_OK, SecStatus.SEC_E_OK)


@pytest.mark.rule("ROB-001")
@pytest.mark.parametrize("subject", ["CN=s\ud800rv", "CN=" + "x" * 0xFFFF, "CN=" + "é" * 0x8000])
def test_a_certificate_subject_no_certificate_message_can_carry_is_refused(subject: str) -> None:
    sspi = Sspi()
    cred = SchannelCred(certificate=Certificate(subject))
    result = sspi.acquire_credentials_handle("Schannel", CredentialUse.INBOUND, cred)
    assert result.status == UNKNOWN and sspi.last_rules == ("ROB-001",)


@pytest.mark.rule("ROB-001")
def test_the_async_acquire_refuses_the_same_strings_at_completion() -> None:
    sspi = Sspi(accounts=ACCOUNTS, async_any_package=True)
    actx = sspi.create_async_context()
    sspi.set_async_notify_callback(actx, lambda ctx, data: None)
    out = Out()
    identity = AuthIdentity(user="al\ud800ice", password="pw", domain="CONTOSO")
    assert (
        sspi.acquire_credentials_handle_async(
            actx, package="NTLM", credential_use=CredentialUse.OUTBOUND, auth_data=identity, out=out
        )
        == SecStatus.SEC_E_OK
    )
    sspi.scheduler.run_all()  # type: ignore[attr-defined]
    assert sspi.get_async_call_status(actx) == UNKNOWN and out.credential is None


@pytest.mark.rule("ROB-003")
@pytest.mark.parametrize(
    "kwargs",
    [
        {"logon_user": "W\\u\ud800"},
        {"logon_user": "W\\" + LONG},
        {"accounts": {"D\\al\udfffice": "pw"}},
        {"accounts": {"D\\alice": "p\ud800"}},
    ],
)
def test_configuration_strings_the_packages_cannot_send_are_value_errors(
    kwargs: dict[str, Any],
) -> None:
    with pytest.raises(ValueError, match="ROB-003"):
        Sspi(**kwargs)


@pytest.mark.rule("ROB-002")
def test_instance_numbers_never_wrap(monkeypatch: pytest.MonkeyPatch) -> None:
    first = Sspi()
    handle = first.acquire_credentials_handle("NTLM", CredentialUse.OUTBOUND).credential
    import itertools

    monkeypatch.setattr(handles_module, "_instance_numbers", itertools.count(0xFFFFFF))
    last = Sspi()  # the last number the encoding holds
    assert last.instance == 0xFFFFFF
    with pytest.raises(RuntimeError, match="ROB-002"):
        Sspi()  # number 2**24 would alias instance 0 / 1's handles before the fix
    # Before the fix the wrapped instance issued `first`'s handle value and freed it.
    assert last.free_credentials_handle(handle) == SecStatus.SEC_E_INVALID_HANDLE
    assert first.free_credentials_handle(handle) == SecStatus.SEC_E_OK


def _deleting_call(sspi: Sspi, callback: Any) -> Any:
    cred = sspi.acquire_credentials_handle("NTLM", CredentialUse.OUTBOUND).credential
    handle = sspi.initialize_security_context(cred, None, "host/x").new_context
    actx = sspi.create_async_context()
    sspi.set_async_notify_callback(actx, callback, sspi)
    assert sspi.delete_security_context_async(actx, context=handle) == SecStatus.SEC_E_OK
    return actx


def _in_thread(function: Any, timeout: float = 10.0) -> list[Any]:
    """Run `function` on a thread; fail (instead of hanging the suite) when it does not end."""
    outcome: list[Any] = []

    def run() -> None:
        try:
            outcome.append(function())
        except BaseException as error:
            outcome.append(error)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(timeout)
    assert not thread.is_alive(), f"{function} did not finish within {timeout} s (a hang)"
    return outcome


@pytest.mark.rule("ROB-005")
def test_run_all_inside_a_callback_does_not_deadlock() -> None:
    with _closing(ThreadedScheduler()) as scheduler:
        sspi = Sspi(accounts=ACCOUNTS, scheduler=scheduler)
        seen: list[str] = []

        def callback(ctx: Any, owner: Sspi) -> None:
            seen.append("before")
            second = _deleting_call(owner, lambda c, o: seen.append("second"))
            scheduler.run_all()  # waits for nothing but the queue: completes `second` here
            seen.append("after")
            assert owner.get_async_call_status(second) == SecStatus.SEC_E_OK

        _deleting_call(sspi, callback)
        assert _in_thread(scheduler.run_all) == [0]
        assert seen == ["before", "second", "after"]
        assert sspi.statistics().pending_calls == 0


class _closing:
    def __init__(self, scheduler: ThreadedScheduler) -> None:
        self.scheduler = scheduler

    def __enter__(self) -> ThreadedScheduler:
        return self.scheduler

    def __exit__(self, *exc_info: object) -> None:
        self.scheduler.close()


@pytest.mark.rule("ROB-004")
def test_a_call_queued_after_close_completes_and_run_all_returns() -> None:
    scheduler = ThreadedScheduler()
    sspi = Sspi(accounts=ACCOUNTS, scheduler=scheduler)
    scheduler.close()
    seen: list[Any] = []
    actx = _deleting_call(sspi, lambda ctx, owner: seen.append(threading.current_thread()))
    assert seen == [threading.current_thread()]  # completed inline, on the submitting thread
    assert sspi.get_async_call_status(actx) == SecStatus.SEC_E_OK
    assert _in_thread(scheduler.run_all) == [0]
    assert sspi.statistics().pending_calls == 0


@pytest.mark.rule("ROB-006")
def test_every_completion_error_is_re_raised_once() -> None:
    scheduler = ThreadedScheduler()
    sspi = Sspi(accounts=ACCOUNTS, scheduler=scheduler)
    sspi.thread_safe = True

    def misuse(ctx: Any, owner: Sspi) -> None:
        owner.free_async_context(ctx)
        owner.free_async_context(ctx)  # ASY-053, three times over

    for _ in range(3):
        _deleting_call(sspi, misuse)
    raised: list[str] = []
    for _ in range(3):
        outcome = _in_thread(scheduler.run_all)
        assert len(outcome) == 1 and isinstance(outcome[0], SspiMisuse)
        raised.append(outcome[0].rule)
    assert raised == ["ASY-053"] * 3  # before the fix: one, and two dropped
    assert scheduler.pending_errors == 0
    assert _in_thread(scheduler.run_all) == [0]
    scheduler.close()


@pytest.mark.rule("ROB-007")
def test_a_scheduler_never_closed_does_not_leak_its_thread() -> None:
    def workers() -> int:
        return sum(t.name == "sspi-model-completions" for t in threading.enumerate())

    before = workers()
    scheduler = ThreadedScheduler()
    sspi = Sspi(accounts=ACCOUNTS, scheduler=scheduler)
    _deleting_call(sspi, lambda ctx, owner: None)
    scheduler.run_all()
    assert workers() == before + 1
    del scheduler, sspi
    gc.collect()
    deadline = time.monotonic() + 10
    while workers() > before and time.monotonic() < deadline:
        time.sleep(0.01)
    assert workers() == before


# -- item 10: malformed traces are verdicts, never an internal error ---------------------------


def _demo_header(tmp_path: Any) -> str:
    from sspi_model import cli

    path = tmp_path / "demo.jsonl"
    assert cli.main(["demo", "--trace", str(path)]) == 0
    return path.read_text(encoding="utf-8").splitlines()[0]


@pytest.mark.rule("ROB-008")
@pytest.mark.parametrize(
    "line",
    [
        "[" * 100_000 + "]" * 100_000,  # nesting deeper than the parser's recursion
        '{"seq": ' + "9" * 5000 + "}",  # an integer of more digits than int() converts
        '{"seq": 1, "process": "p", "call": [], "args": {}, "status": "SEC_E_OK"}',
        '{"seq": 1, "process": "p", "call": {"a": 1}, "args": {}, "status": "SEC_E_OK"}',
        '{"seq": 1, "process": "p\\ud800", "call": "Nope\\udfff", "args": {}}',
    ],
    ids=["deep-nesting", "huge-int", "call-list", "call-object", "lone-surrogates"],
)
def test_a_malformed_trace_line_is_a_verdict_not_an_internal_error(
    line: str, tmp_path: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    from sspi_model import cli

    header = _demo_header(tmp_path)
    capsys.readouterr()
    path = tmp_path / "bad.jsonl"
    path.write_text(header + "\n" + line + "\n", encoding="utf-8")
    code = cli.main(["replay", str(path)])
    captured = capsys.readouterr()
    assert "internal error" not in captured.err
    assert code == 1, captured.out + captured.err


@pytest.mark.rule("ROB-008")
@pytest.mark.parametrize(
    "settings",
    [
        {"strict": "yes"},
        {"logon_user": 5},
        {"async_any_package": []},
        {"packages": 5},
        {"packages": [["NTLM"]]},
        {"logon_user": "W\\u\ud800"},
    ],
)
def test_wrong_typed_header_settings_are_a_verdict(
    settings: dict[str, Any], tmp_path: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    import json

    from sspi_model import cli

    header = json.loads(_demo_header(tmp_path))
    for process in header["processes"].values():
        process.update(settings)
    demo = (tmp_path / "demo.jsonl").read_text(encoding="utf-8").splitlines()
    path = tmp_path / "bad.jsonl"
    path.write_text("\n".join([json.dumps(header), *demo[1:]]) + "\n", encoding="utf-8")
    capsys.readouterr()
    code = cli.main(["replay", str(path)])
    captured = capsys.readouterr()
    assert "internal error" not in captured.err
    assert code == 1, captured.out + captured.err


# -- item 9: the native backend never allocates what a caller's cbBuffer claims ----------------


@pytest.mark.rule("ROB-009")
@pytest.mark.parametrize("size", [0xFFFFFFFF, (1 << 24) + 1])
def test_the_native_backend_refuses_a_huge_caller_buffer_before_allocating(size: int) -> None:
    from sspi_model import SecBuffer
    from sspi_model.backends.native import LibraryNotFound, NativeBackend

    try:
        backend = NativeBackend()
    except LibraryNotFound as missing:
        pytest.skip(str(missing))
    with backend:
        cred = backend.acquire_credentials_handle(
            "NTLM", CredentialUse.OUTBOUND, AuthIdentity(user="a", password="p", domain="D")
        ).credential
        started = time.monotonic()
        with pytest.raises(ValueError, match=r"^input: SecBuffer.size .*ROB-009"):
            backend.initialize_security_context(cred, None, "host/x", 0, [SecBuffer(2, b"x", size)])
        assert time.monotonic() - started < 5  # refused at once: no 4 GiB allocation, no HANG
        # The worker is untouched and still answers.
        assert backend.free_credentials_handle(cred) == SecStatus.SEC_E_OK


@pytest.mark.rule("API-002")
@pytest.mark.parametrize(
    ("size", "error"),
    [("4", TypeError), (True, TypeError), (1 << 40, ValueError), (-1, ValueError)],
)
def test_secbuffer_size_is_checked_when_built(size: Any, error: type[Exception]) -> None:
    """Item 8: SecBuffer.size failed later, inside a call; now it fails where it is made."""
    from sspi_model import SecBuffer

    with pytest.raises(error, match=r"SecBuffer\.size"):
        SecBuffer(2, b"", size)


@pytest.mark.rule("ROB-010")
def test_a_straggling_completion_after_reinit_leaves_the_context_fresh() -> None:
    """Found by the long fuzz campaign: run_all() raised KeyError(('fresh', 'completion'))."""
    sspi = Sspi(accounts=ACCOUNTS, strict=False, profile="ksecdd")
    cred = sspi.acquire_credentials_handle("NTLM", CredentialUse.OUTBOUND).credential
    first = sspi.initialize_security_context(cred, None, "host/x").new_context
    second = sspi.initialize_security_context(cred, None, "host/x").new_context
    actx = sspi.create_async_context()
    assert sspi.delete_security_context_async(actx, context=first) == SecStatus.SEC_E_OK
    assert sspi.delete_security_context_async(actx, context=second) == SecStatus.SEC_E_OK
    assert [event.rule for event in sspi.misuse_events] == ["ASY-015"]
    scheduler: Any = sspi.scheduler
    scheduler.run_one(0)
    assert sspi.reinit_async_context(actx) == 0  # STATUS_SUCCESS: the status no longer pends
    seen: list[Any] = []
    sspi.set_async_notify_callback(actx, lambda ctx, data: seen.append(data))
    scheduler.run_all()  # the second completion: no KeyError
    assert sspi.last_rules[-1] == "ROB-010" or "ROB-010" in sspi.last_rules
    assert sspi.get_async_call_status(actx) == SecStatus.SEC_E_UNSUPPORTED_FUNCTION
    assert seen == [] and sspi.statistics().pending_calls == 0
    assert sspi.statistics().contexts == 0  # both deletes took effect
    sspi.free_async_context(actx)
