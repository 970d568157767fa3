"""Guarantees of the core's envelope and async layer: threads, completions that raise, bounded
event logs, misuse surfacing on entry, handle rotation, profile changes in flight."""

from __future__ import annotations

import threading
from typing import Any

import pytest

from sspi_model import (
    InlineScheduler,
    ManualScheduler,
    Out,
    RandomScheduler,
    SecStatus,
    Sspi,
    SspiMisuse,
)
from sspi_model.async_api import EVENT_LOG_LIMIT
from sspi_model.constants import CredentialUse

ACCOUNTS = {"CONTOSO\\alice": "pw"}


def _context(sspi: Sspi) -> Any:
    cred = sspi.acquire_credentials_handle("NTLM", CredentialUse.OUTBOUND).credential
    return sspi.initialize_security_context(cred, None, "host/x").new_context


@pytest.mark.rule("API-006")
def test_a_second_thread_gets_a_clear_error_naming_thread_safe() -> None:
    sspi = Sspi(accounts=ACCOUNTS)
    errors: list[BaseException] = []

    def other() -> None:
        try:
            sspi.acquire_credentials_handle("NTLM", CredentialUse.OUTBOUND)
        except BaseException as error:
            errors.append(error)

    thread = threading.Thread(target=other)
    thread.start()
    thread.join()
    assert len(errors) == 1 and isinstance(errors[0], RuntimeError)
    assert "thread_safe" in str(errors[0]) and "API-006" in str(errors[0])
    assert sspi.statistics().credentials == 0  # refused before touching any state
    sspi.thread_safe = True
    errors.clear()
    thread = threading.Thread(target=other)
    thread.start()
    thread.join()
    assert errors == [] and sspi.statistics().credentials == 1


class _Boom(Exception):
    pass


def _raising_effect_call(sspi: Sspi, scheduler: Any) -> tuple[Any, Out, list[Any]]:
    """An async ACH whose completion raises inside the model (a planted bug)."""
    seen: list[Any] = []
    actx = sspi.create_async_context()
    sspi.set_async_notify_callback(actx, lambda ctx, data: seen.append(data), "cb")
    out = Out()

    class Exploding:
        def __repr__(self) -> str:
            return "Exploding()"

    original = sspi._core.acquire

    def acquire(*args: Any) -> Any:
        sspi._core.acquire = original  # type: ignore[method-assign]
        raise _Boom("planted")

    sspi._core.acquire = acquire  # type: ignore[method-assign]
    sspi.async_any_package = True
    return actx, out, seen


@pytest.mark.rule("ASY-027")
def test_a_completion_that_raises_completes_with_internal_error_and_reraises_once() -> None:
    scheduler = ManualScheduler()
    sspi = Sspi(accounts=ACCOUNTS, scheduler=scheduler)
    actx, out, seen = _raising_effect_call(sspi, scheduler)
    status = sspi.acquire_credentials_handle_async(
        actx, package="NTLM", credential_use=CredentialUse.OUTBOUND, out=out
    )
    assert status == SecStatus.SEC_E_OK
    with pytest.raises(_Boom):
        scheduler.run_all()
    assert sspi.get_async_call_status(actx) == SecStatus.SEC_E_INTERNAL_ERROR
    assert out.written and out.credential is None
    assert seen == ["cb"]  # the callback still ran
    assert [e.error for e in sspi.callback_errors] == ["_Boom: planted"]
    assert sspi.statistics().pending_calls == 0
    sspi.free_async_context(actx)  # freeable: nothing is stuck pending
    assert sspi.statistics().async_contexts == 0
    assert scheduler.run_all() == 0  # raised exactly once


@pytest.mark.rule("ASY-027")
def test_under_the_inline_scheduler_the_queueing_call_gets_the_error() -> None:
    sspi = Sspi(accounts=ACCOUNTS, scheduler=InlineScheduler())
    actx, out, seen = _raising_effect_call(sspi, None)
    with pytest.raises(_Boom):
        sspi.acquire_credentials_handle_async(
            actx, package="NTLM", credential_use=CredentialUse.OUTBOUND, out=out
        )
    assert sspi.get_async_call_status(actx) == SecStatus.SEC_E_INTERNAL_ERROR
    assert seen == ["cb"]


@pytest.mark.rule("ASY-057")
def test_event_logs_are_bounded_and_count_what_they_drop() -> None:
    sspi = Sspi(strict=False)
    for _ in range(EVENT_LOG_LIMIT + 5):
        actx = sspi.create_async_context()
        sspi.free_async_context(actx)
        sspi.free_async_context(actx)  # ASY-053 each time
    assert len(sspi.misuse_events) == EVENT_LOG_LIMIT
    assert sspi.misuse_events.dropped == 5
    assert sspi.misuse_events[-1].rule == "ASY-053"
    sspi.misuse_events.clear()
    assert sspi.misuse_events == []


@pytest.mark.rule("ASY-074")
def test_misuse_surfacing_on_entry_says_the_entered_call_did_not_run() -> None:
    for seed in range(200):
        sspi = Sspi(accounts=ACCOUNTS, scheduler=RandomScheduler(seed))
        handle = _context(sspi)
        actx = sspi.create_async_context()

        def free_twice(ctx: Any, owner: Sspi) -> None:
            owner.free_async_context(ctx)
            owner.free_async_context(ctx)  # ASY-053, raised from the callback

        sspi.set_async_notify_callback(actx, free_twice, sspi)
        victim = _context(sspi)
        try:
            sspi.delete_security_context_async(actx, context=handle)
            sspi.delete_security_context(victim)
        except SspiMisuse as misuse:
            if misuse.call_ran:
                continue  # completed inline: the queueing call itself ran
            assert "DeleteSecurityContext did not run" in str(misuse)
            assert sspi.lifecycle_state(victim) is not None  # the delete never happened
            return
    pytest.fail("no seed completed the call on entry to the next one")


@pytest.mark.rule("ROT-001")
def test_rotation_gives_every_continuation_leg_a_new_handle() -> None:
    client = Sspi(accounts=ACCOUNTS, rotate_context_handles=True)
    server = Sspi(accounts=ACCOUNTS, rotate_context_handles=True)
    ccred = client.acquire_credentials_handle("NTLM", CredentialUse.OUTBOUND).credential
    scred = server.acquire_credentials_handle("NTLM", CredentialUse.INBOUND).credential
    leg1 = client.initialize_security_context(ccred, None, "host/x")
    acc1 = server.accept_security_context(scred, None, leg1.output_token)
    leg2 = client.initialize_security_context(ccred, leg1.new_context, None, 0, acc1.output_token)
    assert leg2.status == SecStatus.SEC_E_OK
    assert leg2.new_context != leg1.new_context
    # The stale copy is a retired handle now.
    stale = client.query_context_attributes(leg1.new_context, 0)
    assert stale.status == SecStatus.SEC_E_INVALID_HANDLE
    assert client.last_rules == ("HDL-003",)
    assert client.delete_security_context(leg2.new_context) == SecStatus.SEC_E_OK
    assert client.statistics().contexts == 0


@pytest.mark.rule("ASY-021")
def test_a_profile_change_in_flight_keeps_the_queued_calls_decisions() -> None:
    scheduler = ManualScheduler()
    sspi = Sspi(accounts=ACCOUNTS, scheduler=scheduler)
    handle = _context(sspi)
    actx = sspi.create_async_context()
    assert sspi.delete_security_context_async(actx, context=handle) == SecStatus.SEC_E_OK
    assert sspi.get_async_call_status(actx) == SecStatus.SEC_I_ASYNC_CALL_PENDING
    sspi.profile = "ksecdd"  # a name works, and the pending call is not stranded
    assert sspi.profile.name == "ksecdd"
    scheduler.run_all()
    assert sspi.get_async_call_status(actx) == SecStatus.SEC_E_OK
    with pytest.raises(ValueError, match="unknown profile"):
        sspi.profile = "nope"


@pytest.mark.rule("ASY-054")
def test_a_non_strict_foreign_free_leaves_nothing_alive_in_the_owner() -> None:
    owner, other = Sspi(strict=False), Sspi(strict=False)
    actx = owner.create_async_context()
    other.free_async_context(actx)
    assert [e.rule for e in other.misuse_events] == ["ASY-054"]
    assert owner.statistics().async_contexts == 0


@pytest.mark.rule("API-002")
@pytest.mark.parametrize(
    ("argument", "value"),
    [
        ("scheduler", 5),
        ("strict", "no"),
        ("observer", 5),
        ("packages", 5),
        ("packages", [5]),
        ("accounts", {"alice": 5}),
        ("async_any_package", "yes"),
    ],
)
def test_constructor_arguments_are_checked(argument: str, value: Any) -> None:
    with pytest.raises(TypeError, match=rf"^{argument}"):
        Sspi(**{argument: value})


def test_sspi_closes_its_scheduler_as_a_context_manager() -> None:
    closed: list[bool] = []

    class Closing(ManualScheduler):
        def close(self) -> None:
            closed.append(True)

    with Sspi(scheduler=Closing()) as sspi:
        assert sspi.create_async_context() is not None
    assert closed == [True]


def test_thread_safe_is_a_constructor_argument_too() -> None:
    """API-006: Sspi(thread_safe=True), as the README says, shares an instance between threads."""
    import threading

    sspi = Sspi(thread_safe=True)
    assert sspi.thread_safe
    errors: list[BaseException] = []

    def work() -> None:
        try:
            sspi.enumerate_security_packages()
        except BaseException as error:
            errors.append(error)

    thread = threading.Thread(target=work)
    thread.start()
    thread.join()
    assert errors == []
    with pytest.raises(TypeError, match="thread_safe"):
        Sspi(thread_safe="yes")  # type: ignore[arg-type]
