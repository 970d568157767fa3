"""Unit tests of the asynchronous API, one behaviour at a time (ASY-* in specs/rules.toml).

Most tests use NTLM with Sspi(async_any_package=True) so that a queued call has a real leg to
run; the Schannel restriction itself is ASY-060.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import attrs
import pytest
from async_helpers import (
    FRESH_STATUS,
    INBOUND,
    INVALID_HANDLE,
    INVALID_PARAMETER,
    OK,
    OUTBOUND,
    PENDING,
    Recorder,
    context_with_recorder,
    credential,
    manual,
    ntlm_client_context,
    ntlm_sspi,
    schannel_server_cred,
)

from sspi_model import (
    AsyncContext,
    CallbackError,
    InlineScheduler,
    ManualScheduler,
    MisuseEvent,
    NtStatus,
    Out,
    RandomScheduler,
    SecBuffer,
    SecHandle,
    SecPkgAttr,
    SecStatus,
    Sspi,
    SspiMisuse,
    ThreadedScheduler,
)
from sspi_model.async_api import POISON
from sspi_model.handles import HandleClass, HandleKind
from sspi_model.lifecycle import ASYNC_CALL_CODES, Call
from sspi_model.profiles import DOCUMENTED, PROFILES

rule = pytest.mark.rule
CONTINUE = SecStatus.SEC_I_CONTINUE_NEEDED
UNSUPPORTED = SecStatus.SEC_E_UNSUPPORTED_FUNCTION
OPERATIONS = ("acquire", "initialize", "accept", "free_credentials", "delete")
NOT_DELETE = ("acquire", "initialize", "accept", "free_credentials")
CALL_OF = {
    "acquire": Call.ACQUIRE_CREDENTIALS_HANDLE_ASYNC,
    "initialize": Call.INITIALIZE_SECURITY_CONTEXT_ASYNC,
    "accept": Call.ACCEPT_SECURITY_CONTEXT_ASYNC,
    "free_credentials": Call.FREE_CREDENTIALS_HANDLE_ASYNC,
    "delete": Call.DELETE_SECURITY_CONTEXT_ASYNC,
}
# What each operation of Bench completes with in the documented profile.
EXPECTED = {
    "acquire": OK,
    "initialize": CONTINUE,
    "accept": CONTINUE,
    "free_credentials": OK,
    "delete": OK,
}


class Bench:
    """An instance with the handles each of the five async operations needs, and a way to
    queue any of them with valid arguments."""

    def __init__(self, api: Sspi) -> None:
        self.api = api
        self.client_credential = credential(api, "NTLM", OUTBOUND)
        self.server_credential = credential(api, "NTLM", INBOUND)
        first = api.initialize_security_context(self.client_credential, None, "HOST/srv")
        assert first.new_context is not None
        self.client_context = first.new_context
        self.negotiate = first.output_token

    def queue(self, operation: str, async_context: Any, out: Out | None = None) -> SecStatus:
        api = self.api
        if operation == "acquire":
            return api.acquire_credentials_handle_async(
                async_context, package="NTLM", credential_use=OUTBOUND, out=out or Out()
            )
        if operation == "initialize":
            return api.initialize_security_context_async(
                async_context,
                credential=self.client_credential,
                target_name="HOST/srv",
                out=out or Out(),
            )
        if operation == "accept":
            return api.accept_security_context_async(
                async_context,
                credential=self.server_credential,
                input=self.negotiate,
                out=out or Out(),
            )
        if operation == "free_credentials":
            return api.free_credentials_handle_async(
                async_context, credential=self.client_credential
            )
        assert operation == "delete"
        return api.delete_security_context_async(async_context, context=self.client_context)

    def snapshot(self) -> tuple[Any, ...]:
        """Everything a call with no side effect must leave as it was."""
        api = self.api
        return (
            api.statistics(),
            api.classify(self.client_credential, HandleKind.CREDENTIAL),
            api.classify(self.client_context, HandleKind.CONTEXT),
            len(manual(api).pending),
            api.notifications,
            len(api.misuse_events),
        )


def bench(**kwargs: Any) -> Bench:
    kwargs.setdefault("async_any_package", True)
    return Bench(ntlm_sspi(**kwargs))


def new_context(api: Sspi) -> AsyncContext:
    async_context = api.create_async_context()
    assert isinstance(async_context, AsyncContext)
    return async_context


def completed_context(b: Bench, operation: str = "acquire") -> tuple[AsyncContext, Recorder]:
    """A context whose call has completed (status = the call's result)."""
    async_context, recorder = context_with_recorder(b.api)
    assert b.queue(operation, async_context) == OK
    manual(b.api).run_all()
    assert b.api.get_async_call_status(async_context) == EXPECTED[operation]
    return async_context, recorder


# -- creating, reading, NULL contexts ------------------------------------------------------------


@rule("ASY-001")
def test_create_returns_none_only_when_an_allocation_failure_is_injected() -> None:
    api = ntlm_sspi()
    api.fail_allocations = True
    assert api.create_async_context() is None
    assert api.statistics().async_contexts == 0
    api.fail_allocations = False
    assert isinstance(api.create_async_context(), AsyncContext)
    assert api.statistics().async_contexts == 1


@rule("ASY-002")
def test_a_fresh_context_reads_unsupported_function() -> None:
    api = ntlm_sspi()
    async_context = new_context(api)
    status = api.get_async_call_status(async_context)
    assert status == SecStatus.SEC_E_UNSUPPORTED_FUNCTION
    assert int(status) == 0x80090302


@rule("ASY-003")
def test_get_status_of_null_is_invalid_parameter() -> None:
    api = ntlm_sspi()
    assert api.get_async_call_status(None) == SecStatus.SEC_E_INVALID_PARAMETER
    assert int(SecStatus.SEC_E_INVALID_PARAMETER) == 0x8009035D
    assert api.misuse_events == []


@rule("ASY-004")
@pytest.mark.parametrize("profile", sorted(PROFILES))
@pytest.mark.parametrize("operation", OPERATIONS)
def test_every_operation_on_null_is_invalid_parameter_with_no_side_effect(
    profile: str, operation: str
) -> None:
    b = bench(profile=profile)
    before = b.snapshot()
    out = Out()
    assert b.queue(operation, None, out) == INVALID_PARAMETER
    assert b.snapshot() == before
    assert not out.written
    manual(b.api).run_all()
    assert b.snapshot() == before


@rule("ASY-017", "ASY-019", "ASY-010", "ASY-050")
def test_the_management_functions_accept_null_without_crashing() -> None:
    api = ntlm_sspi()
    assert api.set_async_notify_callback(None, Recorder(api), "data") == INVALID_PARAMETER
    assert api.set_async_notify_callback(None, None) == INVALID_PARAMETER
    assert api.async_context_requires_notify(None) is False
    assert api.reinit_async_context(None) == NtStatus.STATUS_INVALID_PARAMETER
    assert int(api.reinit_async_context(None)) == 0xC000000D
    assert api.free_async_context(None) is None
    assert api.misuse_events == []
    assert not api.statistics().anything_alive


# -- queueing and completion ---------------------------------------------------------------------


@rule("ASY-005", "ASY-006", "ASY-009")
@pytest.mark.parametrize("operation", OPERATIONS)
def test_queued_call_is_pending_until_completed_then_reads_its_own_status(
    operation: str,
) -> None:
    b = bench()
    async_context, recorder = context_with_recorder(b.api)
    assert b.queue(operation, async_context) == OK  # the queueing status (ASY-009)
    assert b.api.get_async_call_status(async_context) == PENDING
    assert b.api.statistics().pending_calls == 1
    (pending,) = manual(b.api).pending
    assert pending.call is CALL_OF[operation]
    assert recorder.count == 0
    manual(b.api).run_one()
    expected = EXPECTED[operation]
    assert b.api.get_async_call_status(async_context) == expected
    assert expected in ASYNC_CALL_CODES[CALL_OF[operation]]
    # Stable until the next call (ASY-006, Q21): reading it again changes nothing.
    assert [b.api.get_async_call_status(async_context) for _ in range(3)] == [expected] * 3
    assert b.api.statistics().pending_calls == 0
    assert [n.status for n in recorder.calls] == [expected]


@rule("ASY-006")
def test_a_failing_call_completes_with_its_error() -> None:
    b = bench()
    async_context, _ = context_with_recorder(b.api)
    out = Out()
    status = b.api.acquire_credentials_handle_async(
        async_context, package="NoSuchPackage", credential_use=OUTBOUND, out=out
    )
    assert status == OK  # queued; the failure is the operation's
    manual(b.api).run_all()
    assert b.api.get_async_call_status(async_context) == SecStatus.SEC_E_SECPKG_NOT_FOUND
    assert out.written and out.credential is None


@rule("ASY-007", "ASY-017")
@pytest.mark.parametrize("first", OPERATIONS)
def test_a_second_call_on_a_pending_context_is_refused_with_no_side_effect(first: str) -> None:
    b = bench()
    async_context, recorder = context_with_recorder(b.api, data="first")
    assert b.queue(first, async_context) == OK
    before = b.snapshot()
    for second in OPERATIONS:
        out = Out()
        assert b.queue(second, async_context, out) == INVALID_PARAMETER, second
        assert not out.written
        assert b.snapshot() == before, second
        assert b.api.get_async_call_status(async_context) == PENDING
    # SspiSetAsyncNotifyCallback is refused too and the registered callback stays (ASY-017).
    other = Recorder(b.api)
    assert b.api.set_async_notify_callback(async_context, other, "second") == INVALID_PARAMETER
    assert b.api.set_async_notify_callback(async_context, None) == INVALID_PARAMETER
    assert b.api.async_context_requires_notify(async_context) is True
    assert manual(b.api).run_all() == 1
    assert [n.data for n in recorder.calls] == ["first"]
    assert other.count == 0


@rule("ASY-008", "ASY-025")
def test_a_call_refused_at_queue_time_leaves_a_fresh_context_fresh() -> None:
    b = bench()
    async_context, recorder = context_with_recorder(b.api)
    before = b.snapshot()
    status = b.api.initialize_security_context_async(
        async_context, credential=b.client_credential, out=None
    )
    assert status == INVALID_HANDLE
    assert b.api.get_async_call_status(async_context) == FRESH_STATUS
    assert b.snapshot() == before
    # Still fresh: the next call needs no SspiReinitAsyncContext (no ASY-014 misuse).
    assert b.queue("initialize", async_context) == OK
    manual(b.api).run_all()
    assert recorder.count == 1  # only the queued call notified (ASY-022)


@rule("ASY-008", "ASY-014")
def test_a_call_refused_at_queue_time_leaves_a_completed_status_unchanged() -> None:
    b = bench(strict=False)
    async_context, recorder = completed_context(b, "initialize")
    status = b.api.accept_security_context_async(async_context, credential=None, out=Out())
    assert status == INVALID_HANDLE
    # The misuse (no reinit) was recorded; the refusal changed nothing.
    assert [e.rule for e in b.api.misuse_events] == ["ASY-014"]
    assert b.api.get_async_call_status(async_context) == CONTINUE
    assert manual(b.api).pending == ()
    assert recorder.count == 1


@rule("ASY-025", "ASY-072")
@pytest.mark.parametrize("operation", ["initialize", "accept"])
def test_leg_calls_zero_attributes_and_expiry_at_queue_time(operation: str) -> None:
    b = bench()
    async_context, _ = context_with_recorder(b.api)
    old_output = (SecBuffer(2, b"old"),)
    out = Out(context_attr=0x7, expiry=1234, output=old_output)
    assert b.queue(operation, async_context, out) == OK
    assert (out.context_attr, out.expiry) == (0, None)
    assert out.output is old_output and out.new_context is None and not out.written
    manual(b.api).run_all()
    assert out.written and out.output_token and out.new_context is not None
    assert b.api.classify(out.new_context, HandleKind.CONTEXT) is HandleClass.LIVE


@rule("ASY-025", "ASY-008")
@pytest.mark.parametrize("operation", ["initialize", "accept"])
def test_leg_calls_refuse_bad_handles_at_queue_time(operation: str) -> None:
    b = bench()
    deleted = ntlm_client_context(b.api)
    assert b.api.delete_security_context(deleted) == OK
    queue = (
        b.api.initialize_security_context_async
        if operation == "initialize"
        else b.api.accept_security_context_async
    )
    cred = b.client_credential if operation == "initialize" else b.server_credential
    cases: list[dict[str, Any]] = [
        {"credential": cred, "out": None},  # phNewContext NULL
        {"credential": None, "context": None, "out": Out(context_attr=5, expiry=5)},
        {"context": SecHandle.invalid(), "out": Out(context_attr=5, expiry=5)},
        {"context": deleted, "out": Out(context_attr=5, expiry=5)},
        {"context": SecHandle(0, 0), "credential": cred, "out": Out(context_attr=5)},
    ]
    async_context, recorder = context_with_recorder(b.api)
    before = b.snapshot()
    for kwargs in cases:
        assert queue(async_context, **kwargs) == INVALID_HANDLE, kwargs
        out = kwargs["out"]
        if out is not None:  # zeroed first, in ksecdd's order (O5), and nothing else
            assert (out.context_attr, out.expiry, out.written) == (0, None, False)
        assert b.api.get_async_call_status(async_context) == FRESH_STATUS
        assert b.snapshot() == before
    manual(b.api).run_all()
    assert recorder.count == 0


@rule("ASY-026", "ASY-008")
def test_acquire_without_an_out_holder_is_invalid_parameter_at_queue_time() -> None:
    b = bench()
    async_context, _ = context_with_recorder(b.api)
    before = b.snapshot()
    status = b.api.acquire_credentials_handle_async(
        async_context, package="NTLM", credential_use=OUTBOUND, out=None
    )
    assert status == INVALID_PARAMETER
    assert b.api.get_async_call_status(async_context) == FRESH_STATUS
    assert b.snapshot() == before


@rule("ASY-072")
def test_acquire_writes_its_out_holder_only_at_completion() -> None:
    b = bench()
    async_context, _ = context_with_recorder(b.api)
    out = Out()
    credentials_before = b.api.statistics().credentials
    assert (
        b.api.acquire_credentials_handle_async(
            async_context, package="NTLM", credential_use=OUTBOUND, out=out
        )
        == OK
    )
    assert (out.credential, out.expiry, out.written) == (None, None, False)
    assert b.api.statistics().credentials == credentials_before  # no handle yet
    manual(b.api).run_all()
    assert out.written and out.credential is not None and out.expiry is not None
    assert b.api.classify(out.credential, HandleKind.CREDENTIAL) is HandleClass.LIVE
    assert b.api.statistics().credentials == credentials_before + 1


# -- reinit -------------------------------------------------------------------------------------


@rule("ASY-010")
@pytest.mark.parametrize("profile", sorted(PROFILES))
def test_reinit_null_is_status_invalid_parameter(profile: str) -> None:
    assert ntlm_sspi(profile=profile).reinit_async_context(None) == 0xC000000D


@rule("ASY-011", "ASY-013")
def test_reinit_a_fresh_context_succeeds_and_keeps_it_fresh() -> None:
    api = ntlm_sspi()
    async_context, recorder = context_with_recorder(api, data="kept")
    assert api.reinit_async_context(async_context) == NtStatus.STATUS_SUCCESS
    assert api.get_async_call_status(async_context) == FRESH_STATUS
    assert api.async_context_requires_notify(async_context) is True
    assert recorder.count == 0


@rule("ASY-011", "ASY-013", "ASY-022")
def test_reinit_a_completed_context_keeps_the_callback_and_takes_a_new_call() -> None:
    b = bench()
    async_context, recorder = completed_context(b, "acquire")
    assert b.api.reinit_async_context(async_context) == NtStatus.STATUS_SUCCESS
    assert b.api.get_async_call_status(async_context) == FRESH_STATUS  # ASY-013
    assert b.api.async_context_requires_notify(async_context) is True
    assert b.queue("initialize", async_context) == OK  # no misuse: reinitialised
    manual(b.api).run_all()
    assert b.api.misuse_events == []
    # The same callback and data, once per call (ASY-011, ASY-022).
    assert [(n.async_context, n.data, n.status) for n in recorder.calls] == [
        (async_context, "data", OK),
        (async_context, "data", CONTINUE),
    ]


@rule("ASY-012")
@pytest.mark.parametrize("profile", ["documented", "ksecdd"])
def test_reinit_while_pending_is_the_profile_error_and_changes_nothing(profile: str) -> None:
    b = bench(profile=profile)
    async_context, recorder = context_with_recorder(b.api)
    assert b.queue("initialize", async_context) == OK
    status = b.api.reinit_async_context(async_context)
    assert status == NtStatus.STATUS_INVALID_DEVICE_STATE
    assert int(status) == 0xC0000184
    assert b.api.get_async_call_status(async_context) == PENDING
    assert b.api.statistics().pending_calls == 1
    manual(b.api).run_all()
    assert b.api.get_async_call_status(async_context) == CONTINUE
    assert recorder.count == 1


@rule("ASY-012")
def test_the_reinit_pending_status_is_configurable() -> None:
    profile = attrs.evolve(DOCUMENTED, reinit_pending_status=NtStatus.STATUS_DEVICE_BUSY)
    b = bench(profile=profile)
    async_context, _ = context_with_recorder(b.api)
    assert b.queue("acquire", async_context) == OK
    assert b.api.reinit_async_context(async_context) == NtStatus.STATUS_DEVICE_BUSY
    assert b.api.get_async_call_status(async_context) == PENDING


@rule("ASY-014")
@pytest.mark.parametrize("operation", OPERATIONS)
def test_a_new_call_on_a_completed_context_without_reinit_is_misuse(operation: str) -> None:
    b = bench()
    async_context, recorder = completed_context(b, "acquire")
    before = b.snapshot()
    with pytest.raises(SspiMisuse) as raised:
        b.queue(operation, async_context)
    assert raised.value.rule == "ASY-014"
    assert "SspiReinitAsyncContext" in str(raised.value)
    # Nothing was queued and the completed status is still readable.
    assert b.snapshot()[:-1] == before[:-1]
    assert b.api.misuse_events[-1].rule == "ASY-014"
    assert b.api.get_async_call_status(async_context) == OK
    assert recorder.count == 1


@rule("ASY-014")
def test_non_strict_records_the_missing_reinit_and_accepts_the_call() -> None:
    b = bench(strict=False)
    async_context, recorder = completed_context(b, "acquire")
    assert b.queue("initialize", async_context) == OK
    (event,) = b.api.misuse_events
    assert (event.rule, event.call) == ("ASY-014", Call.INITIALIZE_SECURITY_CONTEXT_ASYNC)
    assert b.api.get_async_call_status(async_context) == PENDING
    manual(b.api).run_all()
    assert b.api.get_async_call_status(async_context) == CONTINUE
    assert recorder.count == 2


# -- callbacks ------------------------------------------------------------------------------------


@rule("ASY-016", "ASY-019")
def test_set_callback_stores_it_and_requires_notify_reports_it() -> None:
    api = ntlm_sspi()
    async_context = new_context(api)
    assert api.async_context_requires_notify(async_context) is False
    assert api.set_async_notify_callback(async_context, Recorder(api), None) == OK
    assert api.async_context_requires_notify(async_context) is True


@rule("ASY-016", "ASY-022")
def test_the_callback_gets_the_context_and_the_data_it_was_registered_with() -> None:
    b = bench()
    data = object()
    async_context, recorder = context_with_recorder(b.api, data=data)
    assert b.queue("acquire", async_context) == OK
    manual(b.api).run_all()
    (notification,) = recorder.calls
    assert notification.async_context is async_context
    assert notification.data is data


@rule("ASY-016")
def test_set_callback_on_a_completed_context_replaces_it() -> None:
    b = bench()
    async_context, first = completed_context(b, "acquire")
    second = Recorder(b.api)
    assert b.api.set_async_notify_callback(async_context, second, "new") == OK
    assert b.api.reinit_async_context(async_context) == NtStatus.STATUS_SUCCESS
    assert b.queue("initialize", async_context) == OK
    manual(b.api).run_all()
    assert (first.count, [n.data for n in second.calls]) == (1, ["new"])


@rule("ASY-018", "ASY-019")
def test_a_none_callback_removes_the_registration() -> None:
    b = bench()
    async_context, recorder = context_with_recorder(b.api)
    assert b.api.set_async_notify_callback(async_context, None, None) == OK
    assert b.api.async_context_requires_notify(async_context) is False
    assert b.queue("delete", async_context) == OK
    manual(b.api).run_all()
    assert recorder.count == 0
    assert b.api.notifications == 0
    assert b.api.get_async_call_status(async_context) == OK


@rule("ASY-022")
def test_the_callback_runs_after_the_effects_and_status_are_published() -> None:
    b = bench()
    async_context = new_context(b.api)
    out = Out()
    seen: list[tuple[bool, Any, int]] = []

    def callback(ctx: Any, data: Any) -> None:
        live = b.api.classify(out.credential, HandleKind.CREDENTIAL)
        seen.append((out.written, live, b.api.get_async_call_status(ctx)))

    assert b.api.set_async_notify_callback(async_context, callback) == OK
    b.api.acquire_credentials_handle_async(
        async_context, package="NTLM", credential_use=OUTBOUND, out=out
    )
    manual(b.api).run_all()
    assert seen == [(True, HandleClass.LIVE, OK)]


@rule("ASY-022")
def test_a_call_completes_and_notifies_exactly_once() -> None:
    b = bench()
    async_context, recorder = context_with_recorder(b.api)
    assert b.queue("acquire", async_context) == OK
    (pending,) = manual(b.api).pending
    manual(b.api).run_one()
    with pytest.raises(RuntimeError, match="completed twice"):
        pending.complete()
    assert manual(b.api).run_all() == 0
    assert recorder.count == 1
    assert b.api.notifications == 1


@rule("ASY-023")
def test_misuse_inside_a_callback_propagates_out_of_run_one() -> None:
    b = bench()
    async_context = new_context(b.api)
    out = Out()

    def frees_twice(ctx: Any, data: Any) -> None:
        b.api.free_async_context(ctx)
        b.api.free_async_context(ctx)  # ASY-053

    assert b.api.set_async_notify_callback(async_context, frees_twice) == OK
    b.api.acquire_credentials_handle_async(
        async_context, package="NTLM", credential_use=OUTBOUND, out=out
    )
    with pytest.raises(SspiMisuse) as raised:
        manual(b.api).run_one()
    assert raised.value.rule == "ASY-053"
    # The completion had been applied before the callback ran.
    assert out.written and out.credential is not None
    assert b.api.statistics().pending_calls == 0
    assert b.api.callback_errors == []


@rule("ASY-023", "ASY-071")
def test_misuse_inside_a_callback_propagates_out_of_the_queueing_call_when_inline() -> None:
    b = bench(scheduler=InlineScheduler())
    async_context = new_context(b.api)
    foreign = new_context(ntlm_sspi())

    def uses_a_foreign_context(ctx: Any, data: Any) -> None:
        b.api.get_async_call_status(foreign)  # ASY-054

    assert b.api.set_async_notify_callback(async_context, uses_a_foreign_context) == OK
    with pytest.raises(SspiMisuse) as raised:
        b.queue("acquire", async_context)
    assert raised.value.rule == "ASY-054"
    assert b.api.get_async_call_status(async_context) == OK  # completed before the callback


@rule("ASY-024")
def test_other_callback_exceptions_are_recorded_with_their_call() -> None:
    b = bench()
    async_context = new_context(b.api)

    def broken(ctx: Any, data: Any) -> None:
        raise ValueError("boom")

    assert b.api.set_async_notify_callback(async_context, broken) == OK
    out = Out()
    b.api.acquire_credentials_handle_async(
        async_context, package="NTLM", credential_use=OUTBOUND, out=out
    )
    (pending,) = manual(b.api).pending
    manual(b.api).run_one()  # does not raise
    (error,) = b.api.callback_errors
    assert isinstance(error, CallbackError)
    assert (error.call, error.pending_id) == (Call.ACQUIRE_CREDENTIALS_HANDLE_ASYNC, pending.id)
    assert error.error == "ValueError: boom"
    assert "raise ValueError" in error.traceback
    # The state is as the completion made it, and the context goes on working.
    assert b.api.get_async_call_status(async_context) == OK
    assert b.api.classify(out.credential, HandleKind.CREDENTIAL) is HandleClass.LIVE
    assert b.api.reinit_async_context(async_context) == NtStatus.STATUS_SUCCESS
    assert b.queue("initialize", async_context) == OK
    manual(b.api).run_all()
    assert b.api.get_async_call_status(async_context) == CONTINUE
    assert len(b.api.callback_errors) == 2
    assert b.api.misuse_events == []


@pytest.mark.parametrize(
    "misuse",
    [
        lambda api, ctx: api.set_async_notify_callback(ctx, "not callable"),
        lambda api, ctx: api.set_async_notify_callback(ctx, 42, None),
        lambda api, ctx: api.set_async_notify_callback(42, Recorder(api)),
        lambda api, ctx: api.get_async_call_status("context"),
        lambda api, ctx: api.reinit_async_context(1),
        lambda api, ctx: api.free_async_context(object()),
        lambda api, ctx: api.async_context_requires_notify(SecHandle(1, 1)),
        lambda api, ctx: api.acquire_credentials_handle_async(
            SecHandle(1, 1), package="NTLM", credential_use=OUTBOUND, out=Out()
        ),
        lambda api, ctx: api.acquire_credentials_handle_async(
            ctx, package=5, credential_use=OUTBOUND, out=Out()
        ),
        lambda api, ctx: api.acquire_credentials_handle_async(
            ctx, package="NTLM", credential_use="2", out=Out()
        ),
        lambda api, ctx: api.acquire_credentials_handle_async(
            ctx, package="NTLM", credential_use=True, out=Out()
        ),
        lambda api, ctx: api.acquire_credentials_handle_async(
            ctx, package="NTLM", credential_use=OUTBOUND, principal=b"x", out=Out()
        ),
        lambda api, ctx: api.acquire_credentials_handle_async(
            ctx, package="NTLM", credential_use=OUTBOUND, out={}
        ),
        lambda api, ctx: api.initialize_security_context_async(ctx, credential="h", out=Out()),
        lambda api, ctx: api.initialize_security_context_async(ctx, context=(1, 2), out=Out()),
        lambda api, ctx: api.initialize_security_context_async(
            ctx, context_req=True, out=Out()
        ),
        lambda api, ctx: api.initialize_security_context_async(ctx, target_name=5, out=Out()),
        lambda api, ctx: api.initialize_security_context_async(ctx, input="str", out=Out()),
        lambda api, ctx: api.initialize_security_context_async(ctx, output=[b"x"], out=Out()),
        lambda api, ctx: api.initialize_security_context_async(ctx, out=Out),
        lambda api, ctx: api.accept_security_context_async(ctx, input=123, out=Out()),
        lambda api, ctx: api.accept_security_context_async(ctx, context_req="0", out=Out()),
        lambda api, ctx: api.free_credentials_handle_async(ctx, credential=1),
        lambda api, ctx: api.delete_security_context_async(ctx, context="handle"),
    ],
)
def test_wrong_argument_types_raise_type_error_and_change_nothing(
    misuse: Callable[[Sspi, AsyncContext], Any],
) -> None:
    api = ntlm_sspi(async_any_package=True)
    async_context, recorder = context_with_recorder(api)
    before = api.statistics()
    with pytest.raises(TypeError):
        misuse(api, async_context)
    assert api.statistics() == before
    assert api.get_async_call_status(async_context) == FRESH_STATUS
    assert api.async_context_requires_notify(async_context) is True
    assert api.misuse_events == []
    assert manual(api).run_all() == 0
    assert recorder.count == 0


# -- profiles: a NULL callback ------------------------------------------------------------------


@rule("ASY-020")
@pytest.mark.parametrize("operation", NOT_DELETE)
def test_documented_a_call_without_callback_is_misuse_except_delete(operation: str) -> None:
    b = bench()
    async_context = new_context(b.api)
    before = b.snapshot()
    with pytest.raises(SspiMisuse) as raised:
        b.queue(operation, async_context)
    assert raised.value.rule == "ASY-020"
    assert "SspiSetAsyncNotifyCallback" in raised.value.message
    assert b.snapshot()[:-1] == before[:-1]
    assert b.api.get_async_call_status(async_context) == FRESH_STATUS


@rule("ASY-020", "ASY-040")
def test_documented_delete_without_callback_is_supported() -> None:
    b = bench()
    async_context = new_context(b.api)
    assert b.queue("delete", async_context) == OK
    assert b.api.get_async_call_status(async_context) == PENDING
    manual(b.api).run_all()
    assert b.api.get_async_call_status(async_context) == OK
    assert b.api.misuse_events == []


@rule("ASY-020")
def test_documented_non_strict_records_a_missing_callback_and_runs_the_call() -> None:
    b = bench(strict=False)
    async_context = new_context(b.api)
    out = Out()
    assert b.queue("acquire", async_context, out) == OK
    (event,) = b.api.misuse_events
    assert (event.rule, event.call) == ("ASY-020", Call.ACQUIRE_CREDENTIALS_HANDLE_ASYNC)
    assert b.api.get_async_call_status(async_context) == PENDING
    manual(b.api).run_all()
    assert out.credential is not None
    assert b.api.get_async_call_status(async_context) == OK


@rule("ASY-021")
@pytest.mark.parametrize("operation", ["acquire", "initialize", "accept"])
def test_ksecdd_a_call_without_callback_reads_ok_at_once_and_is_never_updated(
    operation: str,
) -> None:
    b = bench(profile="ksecdd")
    async_context = new_context(b.api)
    out = Out()
    assert b.queue(operation, async_context, out) == OK
    assert b.api.misuse_events == []
    assert b.api.get_async_call_status(async_context) == OK  # not PENDING
    assert b.api.statistics().pending_calls == 1  # the call itself is still queued
    manual(b.api).run_all()
    assert out.written  # it ran ...
    assert b.api.get_async_call_status(async_context) == OK  # ... but the status stayed
    assert b.api.notifications == 0
    if operation != "acquire":
        assert out.output_token  # the leg's token (CONTINUE_NEEDED), not reported as status


@rule("ASY-021")
def test_ksecdd_a_failing_call_without_callback_still_reads_ok() -> None:
    b = bench(profile="ksecdd")
    async_context = new_context(b.api)
    out = Out()
    status = b.api.acquire_credentials_handle_async(
        async_context, package="NoSuchPackage", credential_use=OUTBOUND, out=out
    )
    assert status == OK
    manual(b.api).run_all()
    assert out.written and out.credential is None
    assert b.api.get_async_call_status(async_context) == OK


@rule("ASY-021", "ASY-005", "ASY-006")
def test_ksecdd_a_call_with_callback_is_pending_then_reads_its_status() -> None:
    b = bench(profile="ksecdd")
    async_context, recorder = context_with_recorder(b.api)
    assert b.queue("initialize", async_context) == OK
    assert b.api.get_async_call_status(async_context) == PENDING
    manual(b.api).run_all()
    assert b.api.get_async_call_status(async_context) == CONTINUE
    assert [n.status for n in recorder.calls] == [CONTINUE]


# -- free credentials, delete -----------------------------------------------------------------


@rule("ASY-030")
def test_documented_async_free_credentials_completes_ok_then_invalid_handle() -> None:
    b = bench()
    async_context, recorder = context_with_recorder(b.api)
    handle = credential(b.api, "NTLM", OUTBOUND)  # no context refers to it
    count = b.api.statistics().credentials
    assert b.api.free_credentials_handle_async(async_context, credential=handle) == OK
    assert b.api.get_async_call_status(async_context) == PENDING
    assert b.api.classify(handle, HandleKind.CREDENTIAL) is HandleClass.LIVE  # not yet
    manual(b.api).run_all()
    assert b.api.get_async_call_status(async_context) == OK
    assert b.api.classify(handle, HandleKind.CREDENTIAL) is HandleClass.RETIRED
    assert b.api.statistics().credentials == count - 1
    # Freeing it again: the handle is no longer live.
    assert b.api.reinit_async_context(async_context) == NtStatus.STATUS_SUCCESS
    assert b.api.free_credentials_handle_async(async_context, credential=handle) == OK
    manual(b.api).run_all()
    assert b.api.get_async_call_status(async_context) == INVALID_HANDLE
    assert [n.status for n in recorder.calls] == [OK, INVALID_HANDLE]


@rule("ASY-030")
def test_documented_async_free_of_null_completes_invalid_handle() -> None:
    b = bench()
    async_context, _ = context_with_recorder(b.api)
    assert b.api.free_credentials_handle_async(async_context, credential=None) == OK
    manual(b.api).run_all()
    assert b.api.get_async_call_status(async_context) == INVALID_HANDLE


@rule("ASY-031")
def test_ksecdd_async_free_credentials_is_unsupported_and_queues_nothing() -> None:
    b = bench(profile="ksecdd")
    async_context, recorder = context_with_recorder(b.api)
    before = b.snapshot()
    status = b.api.free_credentials_handle_async(async_context, credential=b.client_credential)
    assert status == UNSUPPORTED
    assert b.snapshot() == before  # the credential is still live, nothing queued
    assert b.api.get_async_call_status(async_context) == FRESH_STATUS
    # The same on a reinitialised context; a pending context is refused before (ASY-007).
    assert b.queue("acquire", async_context) == OK
    assert b.queue("free_credentials", async_context) == INVALID_PARAMETER
    manual(b.api).run_all()
    assert b.api.reinit_async_context(async_context) == NtStatus.STATUS_SUCCESS
    assert b.queue("free_credentials", async_context) == UNSUPPORTED
    assert b.api.classify(b.client_credential, HandleKind.CREDENTIAL) is HandleClass.LIVE
    assert recorder.count == 1


@rule("ASY-040")
def test_async_delete_of_a_live_context_is_pending_then_ok() -> None:
    b = bench()
    async_context, recorder = context_with_recorder(b.api)
    contexts = b.api.statistics().contexts
    assert b.api.delete_security_context_async(async_context, context=b.client_context) == OK
    assert b.api.get_async_call_status(async_context) == PENDING
    manual(b.api).run_all()
    assert b.api.get_async_call_status(async_context) == OK
    assert b.api.statistics().contexts == contexts - 1
    assert [n.status for n in recorder.calls] == [OK]


@rule("ASY-040")
@pytest.mark.parametrize(
    "handle", [SecHandle.invalid(), SecHandle(0, 0), SecHandle(0x1234, 0x5678), None]
)
def test_async_delete_of_a_never_valid_handle_completes_invalid_handle(
    handle: SecHandle | None,
) -> None:
    b = bench()
    async_context, recorder = context_with_recorder(b.api)
    assert b.api.delete_security_context_async(async_context, context=handle) == OK
    assert b.api.get_async_call_status(async_context) == PENDING
    manual(b.api).run_all()
    assert b.api.get_async_call_status(async_context) == INVALID_HANDLE
    assert recorder.count == 1


@rule("ASY-040")
@pytest.mark.parametrize(
    ("profile", "expected"), [("documented", OK), ("strict-delete", INVALID_HANDLE)]
)
def test_async_delete_of_a_deleted_handle_follows_del_003_and_del_004(
    profile: str, expected: SecStatus
) -> None:
    b = bench(profile=profile)
    assert b.api.delete_security_context(b.client_context) == OK
    async_context, _ = context_with_recorder(b.api)
    assert b.api.delete_security_context_async(async_context, context=b.client_context) == OK
    manual(b.api).run_all()
    assert b.api.get_async_call_status(async_context) == expected


@rule("ASY-041")
@pytest.mark.parametrize("handle_kind", ["invalid", "deleted", "null"])
def test_ksecdd_delete_of_a_handle_with_no_live_context_is_ok_at_once(handle_kind: str) -> None:
    b = bench(profile="ksecdd")
    deleted = ntlm_client_context(b.api)
    assert b.api.delete_security_context(deleted) == OK
    handle = {"invalid": SecHandle.invalid(), "deleted": deleted, "null": None}[handle_kind]
    async_context, recorder = context_with_recorder(b.api)
    before = b.snapshot()
    assert b.api.delete_security_context_async(async_context, context=handle) == OK
    assert b.snapshot() == before  # nothing queued
    assert b.api.get_async_call_status(async_context) == FRESH_STATUS  # status as it was
    manual(b.api).run_all()
    assert recorder.count == 0  # never called back
    # The context was never used, so it takes a call without SspiReinitAsyncContext.
    assert b.queue("delete", async_context) == OK
    manual(b.api).run_all()
    assert [n.status for n in recorder.calls] == [OK]


@rule("ASY-041", "ASY-040")
def test_documented_delete_of_a_handle_with_no_live_context_is_queued_and_notified() -> None:
    b = bench()
    async_context, recorder = context_with_recorder(b.api)
    assert b.api.delete_security_context_async(async_context, context=SecHandle.invalid()) == OK
    assert b.api.statistics().pending_calls == 1
    manual(b.api).run_all()
    assert [n.status for n in recorder.calls] == [INVALID_HANDLE]


@rule("ASY-042")
@pytest.mark.parametrize(
    ("profile", "later_delete"),
    [("documented", OK), ("strict-delete", INVALID_HANDLE), ("ksecdd", OK)],
)
def test_a_context_is_invalid_for_every_call_once_its_delete_is_queued(
    profile: str, later_delete: SecStatus
) -> None:
    b = bench(profile=profile)
    server = b.api.accept_security_context(b.server_credential, None, b.negotiate)
    assert server.status == CONTINUE and server.new_context is not None
    for handle, is_client in ((b.client_context, True), (server.new_context, False)):
        async_context, _ = context_with_recorder(b.api)
        assert b.api.delete_security_context_async(async_context, context=handle) == OK
        assert b.api.get_async_call_status(async_context) == PENDING  # not completed yet
        assert b.api.classify(handle, HandleKind.CONTEXT) is HandleClass.RETIRED
        query = b.api.query_context_attributes(handle, SecPkgAttr.SECPKG_ATTR_SIZES)
        assert query.status == INVALID_HANDLE
        assert b.api.complete_auth_token(handle, b"token") == INVALID_HANDLE
        if is_client:
            leg = b.api.initialize_security_context(None, handle, "HOST/srv", 0, b"x")
        else:
            leg = b.api.accept_security_context(None, handle, b"x")
        assert leg.status == INVALID_HANDLE
        other, _ = context_with_recorder(b.api)
        out = Out()
        if is_client:
            queued = b.api.initialize_security_context_async(other, context=handle, out=out)
        else:
            queued = b.api.accept_security_context_async(other, context=handle, out=out)
        assert queued == INVALID_HANDLE  # mapped at queue time (ASY-025)
        # A later delete follows DEL-003 (DEL-004 in strict-delete).
        assert b.api.delete_security_context(handle) == later_delete
        manual(b.api).run_all()
        assert b.api.get_async_call_status(async_context) == OK


# -- freeing the async context --------------------------------------------------------------------


@rule("ASY-050")
def test_free_releases_a_fresh_or_completed_context_and_ignores_null() -> None:
    b = bench()
    fresh = new_context(b.api)
    completed, _ = completed_context(b)
    assert b.api.statistics().async_contexts == 2
    assert b.api.free_async_context(None) is None
    assert b.api.statistics().async_contexts == 2
    b.api.free_async_context(fresh)
    assert b.api.statistics().async_contexts == 1
    b.api.free_async_context(completed)
    assert b.api.statistics().async_contexts == 0
    assert b.api.misuse_events == []


@rule("ASY-051")
def test_freeing_a_pending_context_with_a_callback_is_misuse() -> None:
    b = bench()
    async_context, recorder = context_with_recorder(b.api)
    assert b.queue("acquire", async_context) == OK
    with pytest.raises(SspiMisuse) as raised:
        b.api.free_async_context(async_context)
    assert raised.value.rule == "ASY-051"
    # Strict: the context was not freed; the call completes and notifies as usual.
    assert b.api.statistics().async_contexts == 1
    manual(b.api).run_all()
    assert recorder.count == 1
    b.api.free_async_context(async_context)
    assert b.api.statistics().async_contexts == 0


@rule("ASY-051")
def test_non_strict_free_of_a_pending_context_completes_without_notifying() -> None:
    b = bench(strict=False)
    async_context, recorder = context_with_recorder(b.api)
    out = Out()
    assert b.queue("acquire", async_context, out) == OK
    b.api.free_async_context(async_context)
    (event,) = b.api.misuse_events
    assert (event.rule, event.call) == ("ASY-051", Call.FREE_ASYNC_CONTEXT)
    assert b.api.statistics().async_contexts == 0
    assert b.api.statistics().pending_calls == 1
    manual(b.api).run_all()
    assert out.credential is not None  # the effects still apply
    assert b.api.classify(out.credential, HandleKind.CREDENTIAL) is HandleClass.LIVE
    assert recorder.count == 0  # nobody is left to notify
    assert b.api.statistics().pending_calls == 0


@rule("ASY-051", "ASY-056")
def test_freeing_a_pending_context_without_callback_is_allowed() -> None:
    b = bench()
    async_context = new_context(b.api)
    assert b.queue("delete", async_context) == OK
    b.api.free_async_context(async_context)
    assert b.api.misuse_events == []
    manual(b.api).run_all()
    assert b.api.statistics().pending_calls == 0
    assert b.api.classify(b.client_context, HandleKind.CONTEXT) is HandleClass.RETIRED


USES_AFTER_FREE: dict[str, Callable[[Bench, AsyncContext], Any]] = {
    "get_status": lambda b, ctx: b.api.get_async_call_status(ctx),
    "set_callback": lambda b, ctx: b.api.set_async_notify_callback(ctx, Recorder(b.api)),
    "clear_callback": lambda b, ctx: b.api.set_async_notify_callback(ctx, None),
    "requires_notify": lambda b, ctx: b.api.async_context_requires_notify(ctx),
    "reinit": lambda b, ctx: b.api.reinit_async_context(ctx),
    **{op: (lambda b, ctx, op=op: b.queue(op, ctx)) for op in OPERATIONS},
}


@rule("ASY-052")
@pytest.mark.parametrize("use", sorted(USES_AFTER_FREE))
def test_any_use_of_a_freed_context_is_misuse(use: str) -> None:
    b = bench()
    async_context, _ = context_with_recorder(b.api)
    b.api.free_async_context(async_context)
    before = b.snapshot()
    with pytest.raises(SspiMisuse) as raised:
        USES_AFTER_FREE[use](b, async_context)
    assert raised.value.rule == "ASY-052"
    assert b.snapshot()[:-1] == before[:-1]  # nothing but the misuse record changed
    assert len(b.api.misuse_events) == before[-1] + 1


@rule("ASY-052")
def test_non_strict_use_after_free_reads_the_poison_and_is_recorded() -> None:
    b = bench(strict=False)
    async_context, _ = completed_context(b)
    b.api.free_async_context(async_context)
    status = b.api.get_async_call_status(async_context)
    assert status == POISON == 0xA5A5A5A5
    (event,) = b.api.misuse_events
    assert isinstance(event, MisuseEvent)
    assert (event.rule, event.call) == ("ASY-052", Call.GET_ASYNC_CALL_STATUS)
    assert "freed" in event.message


@rule("ASY-052")
def test_non_strict_call_on_a_freed_context_keeps_it_freed() -> None:
    b = bench(strict=False)
    async_context, recorder = context_with_recorder(b.api)
    b.api.free_async_context(async_context)
    out = Out()
    b.queue("acquire", async_context, out)
    assert [e.rule for e in b.api.misuse_events] == ["ASY-052"]
    assert b.api.get_async_call_status(async_context) == POISON
    manual(b.api).run_all()
    assert out.written  # the call ran ...
    assert recorder.count == 0  # ... but a freed context notifies nobody
    assert b.api.get_async_call_status(async_context) == POISON
    assert b.api.statistics().async_contexts == 0
    assert [e.rule for e in b.api.misuse_events] == ["ASY-052"] * 3


@rule("ASY-053")
def test_double_free_is_misuse() -> None:
    api = ntlm_sspi()
    async_context = new_context(api)
    api.free_async_context(async_context)
    with pytest.raises(SspiMisuse) as raised:
        api.free_async_context(async_context)
    assert raised.value.rule == "ASY-053"


@rule("ASY-053")
def test_non_strict_double_free_is_recorded() -> None:
    api = ntlm_sspi(strict=False)
    async_context = new_context(api)
    api.free_async_context(async_context)
    api.free_async_context(async_context)
    (event,) = api.misuse_events
    assert (event.rule, event.call) == ("ASY-053", Call.FREE_ASYNC_CONTEXT)
    assert api.statistics().async_contexts == 0


@rule("ASY-054")
@pytest.mark.parametrize("use", [*sorted(USES_AFTER_FREE), "free"])
def test_a_context_from_another_instance_is_misuse(use: str) -> None:
    owner = ntlm_sspi()
    foreign, _ = context_with_recorder(owner)
    b = bench()
    before = b.snapshot()
    with pytest.raises(SspiMisuse) as raised:
        if use == "free":
            b.api.free_async_context(foreign)
        else:
            USES_AFTER_FREE[use](b, foreign)
    assert raised.value.rule == "ASY-054"
    assert b.snapshot()[:-1] == before[:-1]
    # The owner still sees its context as it was.
    assert owner.get_async_call_status(foreign) == FRESH_STATUS
    assert owner.async_context_requires_notify(foreign) is True
    assert owner.statistics().async_contexts == 1
    assert owner.misuse_events == []


@rule("ASY-055")
def test_a_callback_may_free_its_own_context() -> None:
    b = bench()
    async_context = new_context(b.api)
    statuses: list[int] = []

    def read_and_free(ctx: Any, data: Any) -> None:
        statuses.append(b.api.get_async_call_status(ctx))
        b.api.free_async_context(ctx)

    assert b.api.set_async_notify_callback(async_context, read_and_free) == OK
    assert b.queue("initialize", async_context) == OK
    manual(b.api).run_all()
    assert statuses == [CONTINUE]
    assert b.api.misuse_events == []
    assert b.api.statistics().async_contexts == 0


# -- the Schannel restriction -----------------------------------------------------------------


@rule("ASY-060")
@pytest.mark.parametrize("package", ["NTLM", "Negotiate"])
def test_async_acquire_on_a_non_schannel_package_completes_unsupported(package: str) -> None:
    api = ntlm_sspi()
    async_context, recorder = context_with_recorder(api)
    out = Out()
    assert (
        api.acquire_credentials_handle_async(
            async_context, package=package, credential_use=OUTBOUND, out=out
        )
        == OK
    )
    manual(api).run_all()
    assert api.get_async_call_status(async_context) == UNSUPPORTED
    assert out.credential is None
    assert api.statistics().credentials == 0
    assert [n.status for n in recorder.calls] == [UNSUPPORTED]


@rule("ASY-060")
@pytest.mark.parametrize("operation", ["initialize", "accept"])
def test_async_legs_on_a_non_schannel_context_complete_unsupported(operation: str) -> None:
    b = bench(async_any_package=False)
    before = b.api.statistics()
    async_context, _ = context_with_recorder(b.api)
    out = Out()
    assert b.queue(operation, async_context, out) == OK
    manual(b.api).run_all()
    assert b.api.get_async_call_status(async_context) == UNSUPPORTED
    assert out.new_context is None
    assert b.api.statistics().contexts == before.contexts


@rule("ASY-060")
def test_async_any_package_lifts_the_restriction() -> None:
    api = ntlm_sspi(async_any_package=True)
    async_context, _ = context_with_recorder(api)
    out = Out()
    api.acquire_credentials_handle_async(
        async_context, package="Negotiate", credential_use=OUTBOUND, out=out
    )
    manual(api).run_all()
    assert api.get_async_call_status(async_context) == OK
    assert out.credential is not None


@rule("ASY-060")
def test_schannel_is_async_without_any_flag() -> None:
    api = Sspi()
    assert api.async_any_package is False
    async_context, _ = context_with_recorder(api)
    out = Out()
    api.acquire_credentials_handle_async(
        async_context, package="Schannel", credential_use=INBOUND,
        auth_data=schannel_server_cred(), out=out,
    )
    manual(api).run_all()
    assert api.get_async_call_status(async_context) == OK
    assert api.classify(out.credential, HandleKind.CREDENTIAL) is HandleClass.LIVE


@rule("ASY-061")
def test_async_delete_and_free_work_for_ntlm_without_async_any_package() -> None:
    b = bench(async_any_package=False)
    for operation in ("delete", "free_credentials"):
        async_context, recorder = context_with_recorder(b.api)
        assert b.queue(operation, async_context) == OK
        manual(b.api).run_all()
        assert b.api.get_async_call_status(async_context) == OK
        assert [n.status for n in recorder.calls] == [OK]
    assert b.api.classify(b.client_context, HandleKind.CONTEXT) is HandleClass.RETIRED
    assert b.api.classify(b.client_credential, HandleKind.CREDENTIAL) is not HandleClass.LIVE


# -- schedulers -----------------------------------------------------------------------------------


@rule("ASY-070")
def test_the_default_scheduler_is_manual_and_completes_nothing_by_itself() -> None:
    api = Sspi()
    assert isinstance(api.scheduler, ManualScheduler)
    assert api.scheduler is not Sspi().scheduler  # its own
    async_context, recorder = context_with_recorder(api)
    out = Out()
    api.acquire_credentials_handle_async(
        async_context, package="Schannel", credential_use=OUTBOUND, out=out
    )
    for _ in range(5):  # other API calls do not complete it either
        assert api.get_async_call_status(async_context) == PENDING
        api.enumerate_security_packages()
    assert (recorder.count, out.written) == (0, False)
    assert api.scheduler.run_all() == 1
    assert api.get_async_call_status(async_context) == OK
    assert recorder.count == 1


@rule("ASY-070")
def test_the_manual_scheduler_completes_the_call_the_test_chooses() -> None:
    b = bench()
    first, first_recorder = context_with_recorder(b.api, "first")
    second, second_recorder = context_with_recorder(b.api, "second")
    assert b.queue("acquire", first) == OK
    assert b.queue("initialize", second) == OK
    assert [p.call for p in manual(b.api).pending] == [CALL_OF["acquire"], CALL_OF["initialize"]]
    manual(b.api).run_one(1)  # the younger call first
    assert (first_recorder.count, second_recorder.count) == (0, 1)
    assert b.api.get_async_call_status(first) == PENDING
    assert b.api.get_async_call_status(second) == CONTINUE
    assert manual(b.api).run_all() == 1
    assert [n.data for n in first_recorder.calls] == ["first"]


@rule("ASY-071")
def test_inline_completes_the_call_and_its_callback_before_returning() -> None:
    b = bench(scheduler=InlineScheduler())
    async_context, recorder = context_with_recorder(b.api)
    out = Out()
    assert b.queue("initialize", async_context, out) == OK
    assert recorder.count == 1 and out.written
    assert b.api.get_async_call_status(async_context) == CONTINUE
    assert b.api.statistics().pending_calls == 0


def _random_trace(seed: int) -> list[tuple[Any, ...]]:
    """Queue calls on several contexts under RandomScheduler(seed); record what happened."""
    api = ntlm_sspi(async_any_package=True, scheduler=RandomScheduler(seed))
    trace: list[tuple[Any, ...]] = []
    contexts = []
    for index in range(6):
        async_context = api.create_async_context()
        assert async_context is not None
        api.set_async_notify_callback(
            async_context, lambda ctx, data: trace.append(("notified", data)), index
        )
        contexts.append(async_context)
        api.acquire_credentials_handle_async(
            async_context, package="NTLM", credential_use=OUTBOUND, out=Out()
        )
        # statistics() is no API entry: it shows whether the call completed inline.
        trace.append(("queued", index, api.statistics().pending_calls))
        trace.append(("read", [int(api.get_async_call_status(c)) for c in contexts]))
    api.scheduler.run_all()  # type: ignore[attr-defined]
    trace.append(("final", [int(api.get_async_call_status(c)) for c in contexts]))
    return trace


@rule("ASY-073")
def test_random_scheduler_replays_from_its_seed() -> None:
    assert _random_trace(7) == _random_trace(7)
    traces = {repr(_random_trace(seed)) for seed in range(12)}
    assert len(traces) > 1  # the seed does decide the interleaving
    for seed in range(12):
        trace = _random_trace(seed)
        assert sorted(entry[1] for entry in trace if entry[0] == "notified") == list(range(6))
        assert trace[-1] == ("final", [int(OK)] * 6)


@rule("ASY-073")
def test_random_scheduler_registers_its_random_with_hypothesis() -> None:
    from hypothesis.internal.entropy import RANDOMS_TO_MANAGE

    scheduler = RandomScheduler(3)
    assert any(r is scheduler.random for r in RANDOMS_TO_MANAGE.values())


@pytest.fixture
def threaded() -> Any:
    scheduler = ThreadedScheduler()
    yield scheduler
    scheduler.close()


def test_threaded_scheduler_runs_a_handshake_on_a_worker_thread(threaded: Any) -> None:
    client = ntlm_sspi(async_any_package=True, scheduler=threaded)
    server = ntlm_sspi(async_any_package=True, scheduler=threaded)
    threads: list[str] = []
    done = threading.Event()

    def callback(ctx: Any, api: Sspi) -> None:
        threads.append(threading.current_thread().name)
        assert api.get_async_call_status(ctx) != PENDING
        done.set()

    def leg(api: Sspi, queue: Callable[..., SecStatus], **kwargs: Any) -> Out:
        async_context = api.create_async_context()
        assert api.set_async_notify_callback(async_context, callback, api) == OK
        out = Out()
        assert queue(async_context, out=out, **kwargs) == OK
        threaded.run_all()  # waits for the worker
        assert out.written and done.is_set()
        done.clear()
        api.free_async_context(async_context)
        return out

    ccred = leg(client, client.acquire_credentials_handle_async,
                package="NTLM", credential_use=OUTBOUND).credential
    scred = leg(server, server.acquire_credentials_handle_async,
                package="NTLM", credential_use=INBOUND).credential
    first = leg(client, client.initialize_security_context_async,
                credential=ccred, target_name="HOST/srv")
    challenge = leg(server, server.accept_security_context_async,
                    credential=scred, input=first.output_token)
    final = leg(client, client.initialize_security_context_async,
                context=first.new_context, input=challenge.output_token)
    done_leg = leg(server, server.accept_security_context_async,
                   context=challenge.new_context, input=final.output_token)
    assert done_leg.new_context == challenge.new_context
    assert server.query_context_attributes(
        challenge.new_context, SecPkgAttr.SECPKG_ATTR_NAMES
    ).buffer.user_name.casefold() == "dom\\alice"  # type: ignore[union-attr]
    assert len(threads) == 6
    assert set(threads) == {"sspi-model-completions"}
    assert threading.current_thread().name not in threads


@rule("ASY-023")
def test_threaded_scheduler_reraises_misuse_from_a_callback_in_run_all(threaded: Any) -> None:
    api = ntlm_sspi(async_any_package=True, scheduler=threaded)
    async_context = new_context(api)

    def frees_then_reads(ctx: Any, data: Any) -> None:
        api.free_async_context(ctx)
        api.get_async_call_status(ctx)  # use after free, on the worker thread

    assert api.set_async_notify_callback(async_context, frees_then_reads) == OK
    api.acquire_credentials_handle_async(
        async_context, package="NTLM", credential_use=OUTBOUND, out=Out()
    )
    with pytest.raises(SspiMisuse) as raised:
        threaded.run_all()
    assert raised.value.rule == "ASY-052"
    assert api.statistics().pending_calls == 0
    threaded.run_all()  # reported once


def test_statistics_count_async_contexts_and_pending_calls() -> None:
    b = bench()
    assert (b.api.statistics().async_contexts, b.api.statistics().pending_calls) == (0, 0)
    first, _ = context_with_recorder(b.api)
    second = new_context(b.api)
    assert (b.api.statistics().async_contexts, b.api.statistics().pending_calls) == (2, 0)
    b.queue("acquire", first)
    b.queue("delete", second)
    assert (b.api.statistics().async_contexts, b.api.statistics().pending_calls) == (2, 2)
    b.api.free_async_context(second)  # allowed: no callback
    assert (b.api.statistics().async_contexts, b.api.statistics().pending_calls) == (1, 2)
    manual(b.api).run_one()
    assert b.api.statistics().pending_calls == 1
    manual(b.api).run_all()
    b.api.free_async_context(first)
    assert (b.api.statistics().async_contexts, b.api.statistics().pending_calls) == (0, 0)


@pytest.mark.rule("ASY-015")
def test_ksecdd_second_call_while_a_callback_less_call_is_in_flight_is_misuse() -> None:
    from sspi_model import ManualScheduler, Sspi, SspiMisuse
    from sspi_model.packages.ntlm import AuthIdentity

    def run(strict: bool) -> Sspi:
        sspi = Sspi(
            accounts={"CONTOSO\\alice": "Passw0rd!"},
            profile="ksecdd",
            scheduler=ManualScheduler(),
            async_any_package=True,
            strict=strict,
        )
        async_context = sspi.create_async_context()
        identity = AuthIdentity("alice", "Passw0rd!", "CONTOSO")
        first = sspi.acquire_credentials_handle_async(
            async_context, package="NTLM", credential_use=2, auth_data=identity, out=Out()
        )
        assert first == SecStatus.SEC_E_OK
        # No callback: ksecdd sets the status to the queueing result at once (ASY-021).
        assert sspi.get_async_call_status(async_context) == SecStatus.SEC_E_OK
        second = sspi.acquire_credentials_handle_async(
            async_context, package="NTLM", credential_use=2, auth_data=identity, out=Out()
        )
        assert second == SecStatus.SEC_E_OK  # reached only when not strict
        return sspi

    with pytest.raises(SspiMisuse) as raised:
        run(strict=True)
    assert raised.value.rule == "ASY-015"
    lenient = run(strict=False)
    assert [event.rule for event in lenient.misuse_events] == ["ASY-015"]
    assert lenient.statistics().pending_calls == 2


@pytest.mark.rule("ASY-060", "ASY-072")
def test_out_is_marked_written_when_the_call_completes_even_with_an_error() -> None:
    from sspi_model import ManualScheduler, Sspi
    from sspi_model.packages.ntlm import AuthIdentity

    scheduler = ManualScheduler()
    sspi = Sspi(accounts={"CONTOSO\\alice": "Passw0rd!"}, scheduler=scheduler)
    async_context = sspi.create_async_context()
    sspi.set_async_notify_callback(async_context, lambda ctx, data: None)
    out = Out()
    identity = AuthIdentity("alice", "Passw0rd!", "CONTOSO")
    queued = sspi.acquire_credentials_handle_async(
        async_context, package="NTLM", credential_use=2, auth_data=identity, out=out
    )
    assert queued == SecStatus.SEC_E_OK and not out.written
    scheduler.run_all()
    # NTLM is not kernel-mode TLS: the call completes unsupported, its outs untouched but final.
    assert sspi.get_async_call_status(async_context) == SecStatus.SEC_E_UNSUPPORTED_FUNCTION
    assert out.written and out.credential is None
