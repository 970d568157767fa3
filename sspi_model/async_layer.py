"""The asynchronous layer: async contexts, queueing, completion, callbacks, misuse detection.

An AsyncLayer holds the async contexts, the pending calls and the scheduler of one host (an
Sspi, or an AsyncAdapter over a real library), and reaches the synchronous calls through the
small SyncPort protocol below, so the same layer runs over the model's core or a backend.

An async call is validated and queued at once (its return is only the queueing status), then
handed to the scheduler. Completion runs the synchronous call through the port, writes the Out
holder (as C writes through the pointers it stored), publishes the status and, last, runs the
callback. Legality, refusals and misuse come from lifecycle.ASYNC_TABLE; every async context
state change is lifecycle.enter's.
"""

from __future__ import annotations

import traceback
from collections.abc import Callable, Sequence
from typing import Any, Protocol, TypeVar

from sspi_model import lifecycle
from sspi_model.arguments import check_str, check_u32
from sspi_model.async_api import (
    POISON,
    AsyncContext,
    CallbackError,
    EventLog,
    MisuseEvent,
    NotifyCallback,
    Out,
    PendingCall,
    SspiMisuse,
)
from sspi_model.buffers import SecBuffer, as_buffers
from sspi_model.events import CallEvent, CompletionEvent, MisuseReport, NotifyEvent
from sspi_model.handles import SecHandle
from sspi_model.lifecycle import (
    ASYNC_TABLE,
    AsyncOutcome,
    AsyncState,
    Call,
    Misuse,
    Refusal,
    Transition,
)
from sspi_model.profiles import Profile
from sspi_model.results import AcquireCredentialsResult, PackageInfo, SecurityContextResult
from sspi_model.scheduling import Scheduler
from sspi_model.status import NtStatus, SecStatus

_T = TypeVar("_T")
ASYNC_PACKAGES = frozenset({"schannel"})  # async ACH/ISC/ASC: kernel-mode TLS only (ASY-060)
_PENDING = SecStatus.SEC_I_ASYNC_CALL_PENDING
_INVALID_PARAMETER = SecStatus.SEC_E_INVALID_PARAMETER
_OK = SecStatus.SEC_E_OK
_UNSUPPORTED = SecStatus.SEC_E_UNSUPPORTED_FUNCTION
_PENDING_STATE, _FREED, _FRESH_STATE = AsyncState.PENDING, AsyncState.FREED, AsyncState.FRESH
_COMPLETE = Call.COMPLETE
# The calls and outcome the hot paths name, read from module globals: an enum member read as a
# class attribute (Call.X) costs about 1,000 instructions on Python 3.11, whose EnumType
# __getattr__ keeps the interpreter off its fast attribute path; a global about 90
# (benchmarks/instructions.py).
_FREE_CALL, _REINIT_CALL = Call.FREE_ASYNC_CONTEXT, Call.REINIT_ASYNC_CONTEXT
_SET_CALLBACK_CALL, _STATUS_CALL = Call.SET_ASYNC_NOTIFY_CALLBACK, Call.GET_ASYNC_CALL_STATUS
_REQUIRES_NOTIFY_CALL = Call.ASYNC_CONTEXT_REQUIRES_NOTIFY
_DELETE_ASYNC_CALL = Call.DELETE_SECURITY_CONTEXT_ASYNC
_QUEUED = AsyncOutcome.QUEUED
_ASYNC_INDEX = ASYNC_TABLE.index  # by (state, call): see lifecycle.Table
_ASYNC_PLAIN = ASYNC_TABLE.by_call  # its guard-less transitions alone, by call then state
_take = lifecycle.take
_CREATE = ASYNC_TABLE.transition(AsyncState.NEW, Call.CREATE_ASYNC_CONTEXT)
_FOREIGN = Misuse(
    "ASY-054",
    "this async context was created by another Sspi instance; use one created by the "
    "instance you call",
)
# A queueing call's own checks, given the profile: None to queue it, else what it returns.
Precheck = Callable[[Profile], "tuple[SecStatus, AsyncOutcome, tuple[str, ...]] | None"]


class SyncPort(Protocol):
    """What the async layer needs of the synchronous side (sync_core.SyncCore, or a backend
    through backends.async_adapter)."""

    last_rules: tuple[str, ...]

    @property
    def profile(self) -> Profile: ...

    def acquire(
        self, package_name: str | None, use: int, auth_data: Any, principal: str | None
    ) -> AcquireCredentialsResult: ...

    def free_credential(self, handle: SecHandle | None) -> SecStatus: ...

    def delete(self, context: SecHandle | None) -> SecStatus: ...

    def leg(
        self,
        call: Call,
        credential: SecHandle | None,
        context: SecHandle | None,
        target_name: str | None,
        context_req: int,
        input: tuple[SecBuffer, ...] | None,
        output: tuple[SecBuffer, ...] | None,
        target_data_rep: int = 0x10,
    ) -> SecurityContextResult: ...

    def is_live_context(self, handle: SecHandle | None) -> bool: ...

    def package_of(
        self, credential: SecHandle | None, context: SecHandle | None
    ) -> PackageInfo | None:
        """The package a call on these handles runs in; None when unknown (ASY-060 then
        lets the call through)."""
        ...

    def package_named(self, name: str | None) -> PackageInfo | None: ...


class Host(Protocol):
    """The object whose envelope the layer shares: its lock and its observer."""

    _held: Any
    _observer: Callable[[Any], None] | None


class AsyncLayer:
    """The async contexts, pending calls and scheduler of one host."""

    def __init__(
        self,
        core: SyncPort,
        host: Host,
        scheduler: Scheduler,
        *,
        strict: bool,
        async_any_package: bool,
    ) -> None:
        self.core = core
        self.host = host
        self.scheduler = scheduler
        self.strict = strict
        self.async_any_package = async_any_package
        self.fail_allocations = False
        self.misuse_events: EventLog[MisuseEvent] = EventLog()
        self.callback_errors: EventLog[CallbackError] = EventLog()
        self.contexts: set[AsyncContext] = set()
        self.pending_calls: dict[int, PendingCall] = {}
        self.notifications = 0
        self._call = _COMPLETE  # the call being decided, for misuse reports
        self._args: dict[str, Any] | None = None
        self._on_misuse = self._report_misuse

    # -- misuse and reporting ------------------------------------------------------------------

    def _report_misuse(self, misuse: Misuse) -> None:
        """Record undefined behaviour; in strict mode, raise it."""
        call = self._call
        self.misuse_events.append(MisuseEvent(misuse.rule, misuse.message, call))
        self.core.last_rules = (misuse.rule,)
        observer = self.host._observer
        if observer is not None:
            observer(MisuseReport(self.host, call, misuse.rule, misuse.message, self._args))
        if self.strict:
            raise SspiMisuse(misuse.rule, misuse.message)

    def report_sync_misuse(self, call: Call, misuse: Misuse) -> None:
        """The core's report of undefined behaviour in a synchronous call (BUF-008)."""
        self._call, self._args = call, None
        self._report_misuse(misuse)

    def _report(
        self, call: Call, args: dict[str, Any] | None, result: Any, pending: int | None
    ) -> None:
        """A queueing call's CallEvent; `args` is None only when no observer is attached."""
        observer = self.host._observer
        if observer is not None:
            observer(CallEvent(self.host, call, args or {}, result, pending))

    def _own(
        self, async_context: Any, call: Call, args: dict[str, Any] | None
    ) -> AsyncContext | None:
        """None stays None; a foreign context is misuse (ASY-054); wrong types raise."""
        if async_context is None:
            return None
        if async_context.__class__ is not AsyncContext:
            raise TypeError(
                "async_context must be an async context from create_async_context() or None, "
                f"got {type(async_context).__name__}"
            )
        if async_context._owner is not self:
            self._call, self._args = call, args
            self._report_misuse(_FOREIGN)
        return async_context

    def _refused(self, status: _T, rules: tuple[str, ...]) -> _T:
        self.core.last_rules = rules
        return status

    # -- context management --------------------------------------------------------------------

    def create_async_context(self) -> AsyncContext | None:
        """SspiCreateAsyncContext: a fresh context, or None on an (injected) allocation failure."""
        if self.fail_allocations:
            return self._refused(None, ("ASY-001",))
        context = AsyncContext(self)
        lifecycle.begin(context, ASYNC_TABLE, _CREATE)  # -> FRESH, SEC_E_UNSUPPORTED_FUNCTION
        self.contexts.add(context)
        self.core.last_rules = _CREATE.rules
        return context

    def free_async_context(self, async_context: AsyncContext | None) -> None:
        """SspiFreeAsyncContext. NULL is a no-op (ASY-050)."""
        context = async_context
        if context.__class__ is not AsyncContext or context._owner is not self:
            context = self._own(async_context, _FREE_CALL, None)
        if context is None:
            return self._refused(None, ("ASY-050",))
        self._call, self._args = _FREE_CALL, None
        step = _take(context, ASYNC_TABLE, _FREE_CALL, None, self._on_misuse)
        # The owner forgets it, also when another instance freed it (non-strict ASY-054).
        context._owner.contexts.discard(context)
        self.core.last_rules = step.rules  # type: ignore[union-attr]  # never refused
        return None

    def reinit_async_context(self, async_context: AsyncContext | None) -> NtStatus:
        """SspiReinitAsyncContext: back to the fresh state; the callback stays (ASY-011)."""
        context = self._own(async_context, _REINIT_CALL, None)
        if context is None:
            return self._refused(NtStatus.STATUS_INVALID_PARAMETER, ("ASY-010",))
        self._call, self._args = _REINIT_CALL, None
        step = _take(context, ASYNC_TABLE, _REINIT_CALL, None, self._on_misuse)
        if isinstance(step, Refusal):
            return self._refused(lifecycle.refusal_status(step, self.core.profile), step.rules)  # type: ignore[no-any-return]
        assert isinstance(step, Transition)
        if context.state is not _FREED:
            context._status = _UNSUPPORTED  # ASY-013
        self.core.last_rules = step.rules
        return NtStatus.STATUS_SUCCESS

    def set_async_notify_callback(
        self,
        async_context: AsyncContext | None,
        callback: NotifyCallback | None,
        callback_data: Any = None,
    ) -> SecStatus:
        """SspiSetAsyncNotifyCallback: a None callback removes it (ASY-016, ASY-018)."""
        if callback is not None and not callable(callback):
            raise TypeError(f"callback must be callable or None, got {type(callback).__name__}")
        context = async_context
        if context.__class__ is not AsyncContext or context._owner is not self:
            context = self._own(async_context, _SET_CALLBACK_CALL, None)
        if context is None:
            return self._refused(_INVALID_PARAMETER, ("ASY-017",))
        self._call, self._args = _SET_CALLBACK_CALL, None
        step = _take(context, ASYNC_TABLE, _SET_CALLBACK_CALL, None, self._on_misuse)
        if step.__class__ is not Transition:  # ASY-017: pending
            return self._refused(step.status, step.rules)  # type: ignore[union-attr,return-value]
        context._callback = callback
        context._callback_data = callback_data
        self.core.last_rules = step.rules
        return _OK

    def async_context_requires_notify(self, async_context: AsyncContext | None) -> bool:
        """SspiAsyncContextRequiresNotify: TRUE iff a callback is registered (ASY-019)."""
        context = self._own(async_context, _REQUIRES_NOTIFY_CALL, None)
        if context is None:
            return self._refused(False, ("ASY-019",))
        self._call, self._args = _REQUIRES_NOTIFY_CALL, None
        step = _take(context, ASYNC_TABLE, _REQUIRES_NOTIFY_CALL, None, self._on_misuse)
        self.core.last_rules = step.rules  # type: ignore[union-attr]  # never refused
        return context._callback is not None

    def get_async_call_status(self, async_context: AsyncContext | None) -> SecStatus | int:
        """SspiGetAsyncCallStatus: PENDING until completion, then the call's status (ASY-006)."""
        context = async_context
        if context.__class__ is not AsyncContext or context._owner is not self:
            context = self._own(async_context, _STATUS_CALL, None)
        if context is None:
            return self._refused(_INVALID_PARAMETER, ("ASY-003",))
        self._call, self._args = _STATUS_CALL, None
        step = _take(context, ASYNC_TABLE, _STATUS_CALL, None, self._on_misuse)
        self.core.last_rules = step.rules  # type: ignore[union-attr]  # never refused
        if step.effect is not None:  # type: ignore[union-attr]
            return POISON  # non-strict use after free reads the poisoned memory (ASY-052)
        status = context._status
        if status.__class__ is not SecStatus:  # SecStatus(member) is the member itself
            status = _as_status(status)
        return status

    # -- queueing and completion ---------------------------------------------------------------

    def _queue(
        self,
        async_context: AsyncContext | None,
        call: Call,
        args: dict[str, Any] | None,
        effect: Callable[[], int],
        description: str,
        precheck: Precheck | None = None,
        out: Out | None = None,
    ) -> SecStatus:
        """The common part of the five Sspi*Async functions. `args` are the CallEvent's and a
        misuse report's; a caller may pass None when no observer is attached (none reads them
        then)."""
        context = async_context
        if context.__class__ is not AsyncContext or context._owner is not self:
            context = self._own(async_context, call, args)
        if context is None:
            self._report(call, args, _INVALID_PARAMETER, None)
            return self._refused(_INVALID_PARAMETER, ("ASY-004",))
        profile = self.core.profile
        self._call, self._args = call, args
        step: Any = _ASYNC_PLAIN[call].get(context.state)  # nothing to decide (see take())
        if step is None:
            step = lifecycle.decide(
                _ASYNC_INDEX.get((context.state, call)), context, (profile, call), self._on_misuse
            )
            if isinstance(step, Refusal):  # ASY-007
                self._report(call, args, step.status, None)
                return self._refused(step.status, step.rules)  # type: ignore[return-value]
            assert isinstance(step, Transition)
        early = precheck(profile) if precheck is not None else None
        if early is not None:
            status, outcome, rules = early
            lifecycle.enter(context, step, outcome)  # state and status unchanged (ASY-008)
            self.core.last_rules = (*lifecycle.rules_of(step, outcome), *rules)
            self._report(call, args, status, None)
            return status
        # With no callback ksecdd sets the status to the queueing result at once (ASY-021);
        # the pages say PENDING until completion (ASY-005).
        publishes = context._callback is not None or profile.null_callback_only_for_delete
        pending = PendingCall(self, context, call, effect, description, out, publishes)
        if lifecycle.enter(context, step, _QUEUED) is _PENDING_STATE:
            # A freed context stays freed (non-strict ASY-052): the call is queued and takes
            # effect, but its status stays poisoned and nobody is notified.
            context._pending = pending
            context._status = _PENDING if publishes else _OK
        self.pending_calls[pending.id] = pending
        self.core.last_rules = step.rules
        if args is not None:
            self._report(call, args, _OK, pending.id)  # before any completion
        self.scheduler.submit(pending)
        return _OK  # ASY-009: queued

    def complete(self, pending: PendingCall) -> None:
        """Apply a queued call's effects, publish its status, then notify (ASY-006, ASY-022).

        An effect that raises (a bug in the model or a backend) still completes the call with
        SEC_E_INTERNAL_ERROR, keeps the error in callback_errors, runs the callback, and then
        re-raises it, once, to whoever drove the completion (ASY-027)."""
        held = self.host._held
        if held is not None:
            held.acquire()
        failure: BaseException | None = None
        callback = data = None
        try:
            if pending._done:
                raise RuntimeError(f"{pending!r} completed twice")
            pending._done = True
            del self.pending_calls[pending.id]
            try:
                status: int = pending.effect()
                effect_rules = self.core.last_rules
            except Exception as error:  # ASY-027
                failure = error
                status = SecStatus.SEC_E_INTERNAL_ERROR
                effect_rules = ("ASY-027",)
                self._keep_error(pending, error)
            out = pending.out
            if out is not None:
                out.written = True  # the call completed: its outs are final, set or not
            observer = self.host._observer
            if observer is not None:
                observer(CompletionEvent(self.host, pending.id, pending.call, status, out))
            context = pending.async_context
            if context._pending is pending:
                context._pending = None
            step = _take(context, ASYNC_TABLE, _COMPLETE, None, self._on_misuse)
            self.core.last_rules = step.rules + effect_rules  # type: ignore[union-attr]
            state = context.state
            # Freed: nobody left to notify; fresh: reinitialised since, a straggler (ROB-010).
            if state is not _FREED and state is not _FRESH_STATE:
                if pending.publishes:
                    context._status = status
                callback, data = context._callback, context._callback_data
        finally:
            if held is not None:
                held.release()
        if callback is not None:  # notify, here rather than in a helper: one frame fewer
            self.notifications += 1
            observer = self.host._observer
            if observer is not None:
                observer(NotifyEvent(self.host, pending.id, pending.async_context, data))
            try:
                callback(pending.async_context, data)
            except SspiMisuse:
                raise  # a bug in the caller's code: it propagates (ASY-023)
            except Exception as error:  # kept and reported with its call (ASY-024)
                self._keep_error(pending, error)
        if failure is not None:
            raise failure

    def _keep_error(self, pending: PendingCall, error: Exception) -> None:
        """Keep what a completion's effect or callback raised, with its call (called inside
        the `except`, so the traceback is the error's)."""
        self.callback_errors.append(
            CallbackError(
                pending.call, pending.id, f"{type(error).__name__}: {error}", traceback.format_exc()
            )
        )

    # -- the five operations -------------------------------------------------------------------

    def _package_allowed(self, package: PackageInfo | None) -> bool:
        """ASY-060: async ACH/ISC/ASC run only for kernel-mode TLS unless async_any_package;
        the async delete and credential free never ask (ASY-061)."""
        return (
            package is None or self.async_any_package or package.name.casefold() in ASYNC_PACKAGES
        )

    def acquire_credentials_handle_async(
        self,
        async_context: AsyncContext | None,
        *,
        package: str | None,
        credential_use: int,
        auth_data: Any = None,
        principal: str | None = None,
        out: Out | None = None,
    ) -> SecStatus:
        """SspiAcquireCredentialsHandleAsyncW: the handle lands in out.credential."""
        # Types are checked at queue time: a wrong one must not surface inside the completion.
        check_str(package, "package")
        check_str(principal, "principal")
        check_u32(credential_use, "credential_use")
        _check_out(out)
        core = self.core

        def effect() -> int:
            if not self._package_allowed(core.package_named(package)):
                core.last_rules = ("ASY-060",)
                return SecStatus.SEC_E_UNSUPPORTED_FUNCTION
            result = core.acquire(package, credential_use, auth_data, principal)
            assert out is not None
            _write(out, credential=result.credential, expiry=result.expiry)
            return result.status

        def precheck(profile: Profile) -> tuple[SecStatus, AsyncOutcome, tuple[str, ...]] | None:
            if out is None:
                return _INVALID_PARAMETER, AsyncOutcome.REFUSED, ("ASY-026",)
            return None

        args = {
            "async_context": async_context,
            "package": package,
            "credential_use": credential_use,
            "auth_data": auth_data,
            "principal": principal,
            "out": out,
        }
        description = f"SspiAcquireCredentialsHandleAsyncW({package!r})"
        return self._queue(
            async_context,
            Call.ACQUIRE_CREDENTIALS_HANDLE_ASYNC,
            args,
            effect,
            description,
            precheck,
            out,
        )

    def leg_async(
        self,
        call: Call,
        async_context: AsyncContext | None,
        credential: SecHandle | None,
        context: SecHandle | None,
        target_name: str | None,
        context_req: int,
        input: bytes | Sequence[SecBuffer] | None,
        output: Sequence[SecBuffer] | None,
        out: Out | None,
    ) -> SecStatus:
        """SspiInitializeSecurityContextAsyncW / SspiAcceptSecurityContextAsync."""
        for value, name in ((credential, "credential"), (context, "context")):
            if value is not None and not isinstance(value, SecHandle):
                raise TypeError(f"{name} must be a SecHandle or None, got {type(value).__name__}")
        check_u32(context_req, "context_req")
        check_str(target_name, "target_name")
        _check_out(out)
        inputs = as_buffers(input, "input")
        outputs = as_buffers(output, "output")
        sync_call = lifecycle.ASYNC_TWINS[call]
        core = self.core

        def precheck(profile: Profile) -> tuple[SecStatus, AsyncOutcome, tuple[str, ...]] | None:
            # ksecdd's order: zero the attribute and expiry outs, then check handles (ASY-025).
            if out is not None:
                out.context_attr = 0
                out.expiry = None
            if out is None or (context is None and credential is None):
                return SecStatus.SEC_E_INVALID_HANDLE, AsyncOutcome.REFUSED, ("ASY-025",)
            if context is not None and not core.is_live_context(context):
                # The handle is mapped at once (ASY-025).
                return SecStatus.SEC_E_INVALID_HANDLE, AsyncOutcome.REFUSED, ("ASY-025",)
            return None

        def effect() -> int:
            assert out is not None
            if not self._package_allowed(core.package_of(credential, context)):
                core.last_rules = ("ASY-060",)
                return SecStatus.SEC_E_UNSUPPORTED_FUNCTION
            result = core.leg(
                sync_call, credential, context, target_name, context_req, inputs, outputs
            )
            _write(
                out,
                new_context=result.new_context if result.new_context is not None else context,
                output=result.output,
                context_attr=result.context_attr,
                expiry=result.expiry,
                input_after=result.input_after,
            )
            return result.status

        args: dict[str, Any] = {
            "async_context": async_context,
            "credential": credential,
            "context": context,
            "target_name": target_name,
            "context_req": context_req,
            "input": inputs,
            "out": out,
        }
        if outputs is not None:  # the caller's output buffers, so a trace replays them (TRC-006)
            args["output"] = outputs
        if call is Call.ACCEPT_SECURITY_CONTEXT_ASYNC:
            del args["target_name"]
        return self._queue(async_context, call, args, effect, call.value, precheck, out)

    def free_credentials_handle_async(
        self, async_context: AsyncContext | None, *, credential: SecHandle | None
    ) -> SecStatus:
        """SspiFreeCredentialsHandleAsync (a stub in the analysed ksecdd: ASY-031)."""
        if credential is not None and not isinstance(credential, SecHandle):
            raise TypeError(
                f"credential must be a SecHandle or None, got {type(credential).__name__}"
            )
        core = self.core

        def precheck(profile: Profile) -> tuple[SecStatus, AsyncOutcome, tuple[str, ...]] | None:
            if not profile.free_credentials_async_supported:
                return SecStatus.SEC_E_UNSUPPORTED_FUNCTION, AsyncOutcome.REFUSED, ("ASY-031",)
            return None

        args = {"async_context": async_context, "credential": credential}
        return self._queue(
            async_context,
            Call.FREE_CREDENTIALS_HANDLE_ASYNC,
            args,
            lambda: core.free_credential(credential),
            "SspiFreeCredentialsHandleAsync",
            precheck,
        )

    def delete_security_context_async(
        self, async_context: AsyncContext | None, *, context: SecHandle | None
    ) -> SecStatus:
        """SspiDeleteSecurityContextAsync: the handle is invalid from the moment it is queued."""
        if context is not None and context.__class__ is not SecHandle:
            raise TypeError(f"context must be a SecHandle or None, got {type(context).__name__}")
        core = self.core
        deleted: list[SecStatus] = []

        def precheck(profile: Profile) -> tuple[SecStatus, AsyncOutcome, tuple[str, ...]] | None:
            if profile.delete_without_lsa_part_is_inline and not core.is_live_context(context):
                return _OK, AsyncOutcome.INLINE, ()  # ASY-041: nothing queued, no callback
            deleted.append(core.delete(context))  # ASY-042: deleted at queue time
            return None

        args = None  # the documented async delete is the hot path: no dict nobody reads
        if self.host._observer is not None:
            args = {"async_context": async_context, "context": context}
        return self._queue(
            async_context,
            _DELETE_ASYNC_CALL,
            args,
            deleted.pop,
            "SspiDeleteSecurityContextAsync",
            precheck,
        )

    # -- bookkeeping ---------------------------------------------------------------------------

    def statistics(self) -> dict[str, int]:
        return {"async_contexts": len(self.contexts), "pending_calls": len(self.pending_calls)}


def _as_status(value: int) -> SecStatus | int:
    try:
        return SecStatus(value)
    except ValueError:
        return value


def _check_out(out: Any) -> None:
    if out is not None and not isinstance(out, Out):
        raise TypeError(f"out must be an sspi_model.Out or None, got {type(out).__name__}")


def _write(out: Out, **fields: Any) -> None:
    """Write an Out holder: only ever at completion (ASY-072)."""
    for name, value in fields.items():
        setattr(out, name, value)
    out.written = True
