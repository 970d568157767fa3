"""The asynchronous API: SspiAsyncContext, Out holders, notify callbacks, misuse detection.

An async call is validated and queued at once (its return is only the queueing status), then
handed to the scheduler. Completion runs the same code as the synchronous call, writes the Out
holder (as C writes through the pointers it stored), sets the context's status and, last, runs
the callback. Legality comes from lifecycle.ASYNC_TABLE.
"""

from __future__ import annotations

import itertools
import traceback
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Any, TypeVar

import attrs

from sspi_model.buffers import SecBuffer, as_buffers
from sspi_model.events import CallEvent, CompletionEvent, MisuseReport, NotifyEvent, Observer
from sspi_model.handles import HandleClass, HandleKind, SecHandle
from sspi_model.lifecycle import (
    ASYNC_TABLE,
    AsyncState,
    Call,
    Misuse,
    Refusal,
    Transition,
)
from sspi_model.profiles import Profile
from sspi_model.results import AcquireCredentialsResult, SecurityContextResult
from sspi_model.scheduling import ManualScheduler, Scheduler
from sspi_model.status import NtStatus, SecStatus

if TYPE_CHECKING:
    from sspi_model.sspi import _Context

NotifyCallback = Callable[[Any, Any], None]
_R = TypeVar("_R")
_PENDING = SecStatus.SEC_I_ASYNC_CALL_PENDING
_INVALID_PARAMETER = SecStatus.SEC_E_INVALID_PARAMETER
_OK = SecStatus.SEC_E_OK
_UNSUPPORTED = SecStatus.SEC_E_UNSUPPORTED_FUNCTION
# Enum members used on hot paths, bound once: on Python 3.11 `Enum.MEMBER` goes through
# EnumType.__getattr__'s slow attribute hook (about ten times a global load).
_DELETE_ASYNC = Call.DELETE_SECURITY_CONTEXT_ASYNC
_SET_CALLBACK = Call.SET_ASYNC_NOTIFY_CALLBACK
_FREE_ASYNC = Call.FREE_ASYNC_CONTEXT
_GET_STATUS = Call.GET_ASYNC_CALL_STATUS
_CREATE_ASYNC = Call.CREATE_ASYNC_CONTEXT
_FREED_STATE = AsyncState.FREED
_PENDING_ASYNC = AsyncState.PENDING
_FRESH, _PENDING_STATE = AsyncState.FRESH, _PENDING_ASYNC
_COMPLETED, _FREED = AsyncState.COMPLETED, _FREED_STATE
# ASYNC_TABLE keyed by enum *values* (hashing an Enum member runs a Python-level __hash__).
_GATES: dict[tuple[Any, Any], Transition | Refusal | Misuse] = {
    (state.value, call.value if isinstance(call, Call) else call): entry
    for (state, call), entry in ASYNC_TABLE.items()
}
assert len(_GATES) == len(ASYNC_TABLE), "a string key of ASYNC_TABLE shadows a Call value"
# Whether _gate() has nothing to say about these calls on a fresh context (it returns None and
# reports nothing), so the common case may skip it.
_SET_CALLBACK_FRESH_IS_PLAIN = not isinstance(
    ASYNC_TABLE.get((AsyncState.FRESH, _SET_CALLBACK)), (Misuse, Refusal)
)
POISON = 0xA5A5A5A5  # what a freed context's status reads as: ksecdd fills it with 0xA5 (O7)
ASYNC_PACKAGES = frozenset({"schannel"})  # async ACH/ISC/ASC: kernel-mode TLS only (ASY-060)


class SspiMisuse(Exception):
    """Undefined behaviour in the caller's code, named by the rule it breaks."""

    def __init__(self, rule: str, message: str) -> None:
        super().__init__(f"[{rule}] {message}")
        self.rule = rule
        self.message = message


@attrs.frozen
class MisuseEvent:
    rule: str
    message: str
    call: Call


@attrs.frozen
class CallbackError:
    """A callback raised something other than SspiMisuse; the model caught and kept it."""

    call: Call
    pending_id: int
    error: str
    traceback: str


@attrs.define(eq=False)
class Out:
    """The out-parameters of an async call, written when the call completes (`written` turns
    True then, also for a call that completed with an error and set nothing)."""

    credential: SecHandle | None = None
    new_context: SecHandle | None = None
    output: tuple[SecBuffer, ...] = ()
    context_attr: int = 0
    expiry: int | None = None
    input_after: tuple[SecBuffer, ...] | None = None
    written: bool = False

    @property
    def output_token(self) -> bytes:
        for buffer in self.output:
            if buffer.base_type == 2:
                return buffer.data
        return b""


_async_serials = itertools.count(1)


class AsyncContext:
    """SspiAsyncContext*: opaque. Hand it back to the API; do not look inside."""

    __slots__ = (
        "__weakref__",
        "_callback",
        "_callback_data",
        "_owner",
        "_pending",
        "_serial",
        "_state",
        "_status",
    )

    def __init__(self, owner: Any) -> None:
        self._owner = owner
        self._serial = next(_async_serials)
        self._status: int = _UNSUPPORTED  # ASY-002 (O1)
        self._state = _FRESH
        self._callback: NotifyCallback | None = None
        self._callback_data: Any = None
        self._pending: PendingCall | None = None

    def __repr__(self) -> str:
        return f"<SspiAsyncContext #{self._serial} {self._state.value}>"


class PendingCall:
    """One queued async call; a scheduler completes it."""

    __slots__ = ("_done", "_effect", "async_context", "call", "description", "id", "out", "owner")

    def __init__(
        self,
        owner: AsyncApi,
        async_context: AsyncContext,
        call: Call,
        effect: Callable[[], int],
        description: str,
        out: Out | None = None,
    ) -> None:
        self.id = next(_pending_ids)
        self.out = out
        self.owner = owner
        self.async_context = async_context
        self.call = call
        self._effect = effect
        self.description = description
        self._done = False

    def __repr__(self) -> str:
        return f"<PendingCall {self.id} {self.description}>"

    def complete(self) -> None:
        self.owner._complete(self)


_pending_ids = itertools.count(1)


class AsyncApi:
    """Mixed into Sspi; relies on its lock, profile and synchronous internals."""

    _lock: AbstractContextManager[Any]  # an RLock, or a no-op one (Sspi.thread_safe)
    profile: Profile
    strict: bool
    async_any_package: bool
    fail_allocations: bool
    scheduler: Scheduler
    misuse_events: list[MisuseEvent]
    callback_errors: list[CallbackError]
    _async_contexts: set[AsyncContext]
    _pending_calls: dict[int, PendingCall]
    _completions: int
    _notifications: int
    observer: Observer | None
    # Sspi keeps these current (Sspi._refresh): the observer, the scheduler when its
    # on_api_entry must be called (None when it does nothing), and the profile.
    _observer: Observer | None
    _entry: Scheduler | None
    _held: Any  # the RLock while calls must hold it, else None (Sspi._refresh)
    _scheduler: Scheduler
    _profile: Profile

    if TYPE_CHECKING:

        def _acquire(
            self, package_name: str | None, use: int, auth_data: Any, principal: str | None
        ) -> AcquireCredentialsResult: ...

        def _free_credential(self, handle: SecHandle | None) -> SecStatus: ...

        def _delete(self, context: SecHandle | None) -> SecStatus: ...

        def _leg(
            self,
            call: Call,
            credential: SecHandle | None,
            context: SecHandle | None,
            target_name: str | None,
            context_req: int,
            inputs: tuple[SecBuffer, ...] | None,
            outputs: tuple[SecBuffer, ...] | None,
        ) -> SecurityContextResult: ...

        def _live_context(self, handle: SecHandle | None) -> _Context | None: ...

        def _live_credential(self, handle: SecHandle | None) -> Any: ...

        def classify(self, handle: SecHandle | None, kind: HandleKind) -> HandleClass: ...

        def _package(self, name: str | None) -> Any: ...

    def _init_async(
        self, scheduler: Scheduler | None, strict: bool, async_any_package: bool
    ) -> None:
        self.scheduler = scheduler if scheduler is not None else ManualScheduler()
        self.strict = strict
        self.async_any_package = async_any_package
        self.fail_allocations = False
        self.misuse_events = []
        self.callback_errors = []
        self._async_contexts = set()
        self._pending_calls = {}
        self._completions = 0
        self._notifications = 0

    def _reported(
        self, call: Call, args: dict[str, Any], result: _R, pending: int | None = None
    ) -> _R:
        if self._observer is not None:
            self._observer(CallEvent(self, call, args, result, pending))
        return result

    def _publish(self, event: Any) -> None:
        if self._observer is not None:
            self._observer(event)

    def _async_statistics(self) -> dict[str, int]:
        return {
            "async_contexts": len(self._async_contexts),
            "pending_calls": len(self._pending_calls),
        }

    @property
    def notifications(self) -> int:
        """Callbacks run so far by this instance."""
        return self._notifications

    # -- misuse ------------------------------------------------------------------------------

    def _misuse(self, misuse: Misuse, call: Call) -> None:
        """Record undefined behaviour; in strict mode, raise it."""
        self.misuse_events.append(MisuseEvent(misuse.rule, misuse.message, call))
        self._publish(MisuseReport(self, call, misuse.rule, misuse.message))
        if self.strict:
            raise SspiMisuse(misuse.rule, misuse.message)

    def _check_async_context(self, async_context: Any, call: Call) -> AsyncContext | None:
        """None stays None; a foreign context is misuse (ASY-054); wrong types raise."""
        if async_context is None:
            return None
        if not isinstance(async_context, AsyncContext):
            raise TypeError(
                f"async_context must be an async context from create_async_context() or None, "
                f"got {type(async_context).__name__}"
            )
        if async_context._owner is not self:
            self._misuse(
                Misuse(
                    "ASY-054",
                    "this async context was created by another Sspi instance; "
                    "use one created by the instance you call",
                ),
                call,
            )
        return async_context

    def _gate(self, context: AsyncContext, call: Call) -> Refusal | None:
        """Apply the async table for `call`: a Refusal to return, or None to go on."""
        entry = _GATES.get((context._state._value_, call._value_))  # ASYNC_TABLE's entry
        if isinstance(entry, Misuse):
            self._misuse(entry, call)  # non-strict: carry on as the kernel would (no check)
            return None
        if isinstance(entry, Refusal):
            return entry
        return None

    # -- context management ------------------------------------------------------------------

    def create_async_context(self) -> AsyncContext | None:
        """SspiCreateAsyncContext: a fresh context, or None on an (injected) allocation failure."""
        held = self._held
        if held is not None:
            held.acquire()
        try:
            if self._entry is not None:
                self._entry.on_api_entry()
            if self.fail_allocations:
                return self._reported(_CREATE_ASYNC, {}, None)  # ASY-001
            context = AsyncContext(self)
            self._async_contexts.add(context)
            if self._observer is None:
                return context
            return self._reported(_CREATE_ASYNC, {}, context)
        finally:
            if held is not None:
                held.release()

    def free_async_context(self, async_context: AsyncContext | None) -> None:
        """SspiFreeAsyncContext. NULL is a no-op (ASY-050)."""
        held = self._held
        if held is not None:
            held.acquire()
        try:
            context: AsyncContext | None = async_context  # the usual case, checked inline
            if context.__class__ is not AsyncContext or context._owner is not self:
                context = self._check_async_context(async_context, _FREE_ASYNC)
            if context is None:
                return self._reported(_FREE_ASYNC, {"async_context": None}, None)
            if context._state is _FREED_STATE:
                self._gate(context, _FREE_ASYNC)
                return self._reported(_FREE_ASYNC, {"async_context": context}, None)
            if context._state is _PENDING_ASYNC and context._callback is not None:
                self._misuse(
                    Misuse(
                        "ASY-051",
                        "SspiFreeAsyncContext while its call is pending with a callback "
                        "registered: free it only after the call completed and the callback "
                        "ran (free it inside the callback, as the documented sample does)",
                    ),
                    _FREE_ASYNC,
                )
            context._state = _FREED
            self._async_contexts.discard(context)
            if self._observer is None:
                return None
            return self._reported(_FREE_ASYNC, {"async_context": context}, None)
        finally:
            if held is not None:
                held.release()

    def reinit_async_context(self, async_context: AsyncContext | None) -> NtStatus:
        """SspiReinitAsyncContext: back to the fresh state; the callback stays (ASY-011)."""
        args: dict[str, Any] = {"async_context": async_context}
        with self._lock:
            if self._entry is not None:
                self._entry.on_api_entry()
            context = self._check_async_context(async_context, Call.REINIT_ASYNC_CONTEXT)
            if context is None:
                return self._reported(
                    Call.REINIT_ASYNC_CONTEXT, args, NtStatus.STATUS_INVALID_PARAMETER
                )  # ASY-010
            if self._gate(context, Call.REINIT_ASYNC_CONTEXT) is not None:
                return self._reported(
                    Call.REINIT_ASYNC_CONTEXT, args, self._profile.reinit_pending_status
                )  # ASY-012
            if context._state is _FREED_STATE:
                # Non-strict use after free: the kernel has no check.
                return self._reported(Call.REINIT_ASYNC_CONTEXT, args, NtStatus.STATUS_SUCCESS)
            context._state = AsyncState.FRESH
            context._status = SecStatus.SEC_E_UNSUPPORTED_FUNCTION  # ASY-013 (Q7)
            return self._reported(Call.REINIT_ASYNC_CONTEXT, args, NtStatus.STATUS_SUCCESS)

    def set_async_notify_callback(
        self,
        async_context: AsyncContext | None,
        callback: NotifyCallback | None,
        callback_data: Any = None,
    ) -> SecStatus:
        """SspiSetAsyncNotifyCallback: a None callback removes it (ASY-016, ASY-018)."""
        if callback is not None and not callable(callback):
            raise TypeError(f"callback must be callable or None, got {type(callback).__name__}")
        held = self._held
        if held is not None:
            held.acquire()
        try:
            if self._entry is not None:
                self._entry.on_api_entry()
            context: AsyncContext | None = async_context  # the usual case, checked inline
            if context.__class__ is not AsyncContext or context._owner is not self:
                context = self._check_async_context(async_context, _SET_CALLBACK)
            refusal = None
            if context is None:
                status = _INVALID_PARAMETER  # ASY-017 (O3)
            elif context._state is not _FRESH or not _SET_CALLBACK_FRESH_IS_PLAIN:
                refusal = self._gate(context, _SET_CALLBACK)
            if refusal is not None:
                status = SecStatus(refusal.status)
            elif context is not None:
                context._callback = callback
                context._callback_data = callback_data
                status = _OK
            if self._observer is None:
                return status
            args: dict[str, Any] = {
                "async_context": async_context,
                "callback": callback,
                "callback_data": callback_data,
            }
            return self._reported(_SET_CALLBACK, args, status)
        finally:
            if held is not None:
                held.release()

    def async_context_requires_notify(self, async_context: AsyncContext | None) -> bool:
        """SspiAsyncContextRequiresNotify: TRUE iff a callback is registered (ASY-019, Q9)."""
        args: dict[str, Any] = {"async_context": async_context}
        with self._lock:
            context = self._check_async_context(async_context, Call.ASYNC_CONTEXT_REQUIRES_NOTIFY)
            if context is None:
                return self._reported(Call.ASYNC_CONTEXT_REQUIRES_NOTIFY, args, False)  # ASY-019
            self._gate(context, Call.ASYNC_CONTEXT_REQUIRES_NOTIFY)
            return self._reported(
                Call.ASYNC_CONTEXT_REQUIRES_NOTIFY, args, context._callback is not None
            )

    def get_async_call_status(self, async_context: AsyncContext | None) -> SecStatus | int:
        """SspiGetAsyncCallStatus: PENDING until completion, then the call's status (ASY-006)."""
        args: dict[str, Any] = {"async_context": async_context}
        held = self._held
        if held is not None:
            held.acquire()
        try:
            if self._entry is not None:
                self._entry.on_api_entry()
            context: AsyncContext | None = async_context  # the usual case, checked inline
            if context.__class__ is not AsyncContext or context._owner is not self:
                context = self._check_async_context(async_context, _GET_STATUS)
            if context is None:
                return self._reported(
                    _GET_STATUS, args, _INVALID_PARAMETER
                )  # ASY-003 (O2)
            if context._state is _FREED_STATE:
                self._gate(context, _GET_STATUS)
                # Non-strict: the poisoned memory's value (ASY-052, O7).
                return self._reported(_GET_STATUS, args, POISON)
            status = context._status
            if status.__class__ is not SecStatus:  # SecStatus(member) is the member itself
                status = _as_status(status)
            if self._observer is None:
                return status
            return self._reported(_GET_STATUS, args, status)
        finally:
            if held is not None:
                held.release()

    # -- queueing ----------------------------------------------------------------------------

    def _queue(
        self,
        async_context: AsyncContext | None,
        call: Call,
        effect: Callable[[], int],
        description: str,
        precheck: Callable[[], SecStatus | None] | None = None,
        args: dict[str, Any] | None = None,
        out: Out | None = None,
        entered: bool = False,
    ) -> SecStatus:
        """The common part of the five Sspi*Async functions (`entered`: the caller has already
        given the scheduler its on_api_entry)."""
        extra = args
        if self._entry is not None and not entered:
            self._entry.on_api_entry()
        context: AsyncContext | None = async_context  # the usual case, checked inline
        if context.__class__ is not AsyncContext or context._owner is not self:
            context = self._check_async_context(async_context, call)
        if context is None:
            # ASY-004 (O4)
            return self._reported(call, _queue_args(async_context, extra), _INVALID_PARAMETER)
        state = context._state
        if state is _FREED or state is _COMPLETED:
            self._gate(context, call)  # misuse; non-strict: the kernel only checks PENDING
        elif state is _PENDING_STATE and context._status == _PENDING:
            # ASY-007 (O4)
            return self._reported(call, _queue_args(async_context, extra), _INVALID_PARAMETER)
        elif state is _PENDING_STATE:
            # ksecdd, no callback: the status already reads the queueing result, so the kernel
            # takes a second call that overwrites the first one's stored pointers (ASY-015).
            self._misuse(
                Misuse(
                    "ASY-015",
                    f"{call.value} on an async context whose callback-less call is still in "
                    "flight: the kernel accepts it (the status reads SEC_E_OK) but the new call "
                    "overwrites the first one's parameters; use one context per call",
                ),
                call,
            )
        no_callback = context._callback is None
        if (
            no_callback
            and call is not _DELETE_ASYNC
            and self._profile.null_callback_only_for_delete
        ):
            self._misuse(
                Misuse(
                    "ASY-020",
                    f"{call.value} without a notify callback: a NULL callback is supported "
                    "only for SspiDeleteSecurityContextAsync; register one with "
                    "SspiSetAsyncNotifyCallback first",
                ),
                call,
            )
        if precheck is not None:
            early = precheck()
            if early is not None:
                # ASY-008: status unchanged
                return self._reported(call, _queue_args(async_context, extra), early)
        pending = PendingCall(self, context, call, effect, description, out)
        if state is not _FREED:
            # A freed context stays freed (non-strict use after free, ASY-052): the call is
            # queued and takes effect, but its status stays poisoned and nobody is notified.
            context._pending = pending
            context._state = _PENDING_STATE
            # With no callback ksecdd sets the status to the queueing result at once (O11,
            # ASY-021); the pages say PENDING until completion (ASY-005).
            no_handler = no_callback and not self._profile.null_callback_only_for_delete
            context._status = _OK if no_handler else _PENDING
        self._pending_calls[pending.id] = pending
        if self._observer is not None:  # before any completion
            self._reported(call, _queue_args(async_context, extra), _OK, pending.id)
        self._scheduler.submit(pending)
        return _OK  # ASY-009: queued

    def _complete(self, pending: PendingCall) -> None:
        """Apply a queued call's effects, publish its status, then notify (ASY-006, ASY-022)."""
        held = self._held
        if held is not None:
            held.acquire()
        try:
            if pending._done:
                raise RuntimeError(f"{pending!r} completed twice")
            pending._done = True
            del self._pending_calls[pending.id]
            self._completions += 1
            status = pending._effect()
            if pending.out is not None:
                pending.out.written = True  # the call completed: its outs are final, set or not
            if self._observer is not None:
                self._observer(CompletionEvent(self, pending.id, pending.call, status, pending.out))
            context = pending.async_context
            if context._pending is pending:
                context._pending = None
            if context._state is _FREED:
                # Freed while pending. With a callback that was misuse (ASY-051); the kernel
                # still completes the operation, but there is nobody left to notify.
                return
            context._state = _COMPLETED
            no_handler = (
                context._callback is None and not self._profile.null_callback_only_for_delete
            )
            if not no_handler:
                context._status = status
            callback, data = context._callback, context._callback_data
        finally:
            if held is not None:
                held.release()
        if callback is not None:
            self._notify(pending, callback, data)

    def _notify(self, pending: PendingCall, callback: NotifyCallback, data: Any) -> None:
        self._notifications += 1
        if self._observer is not None:
            self._observer(NotifyEvent(self, pending.id, pending.async_context, data))
        try:
            callback(pending.async_context, data)
        except SspiMisuse:
            raise  # a bug in the caller's code: it propagates (ASY-023)
        except Exception as error:  # kept and reported with its call (ASY-024)
            self.callback_errors.append(
                CallbackError(
                    pending.call,
                    pending.id,
                    f"{type(error).__name__}: {error}",
                    traceback.format_exc(),
                )
            )

    # -- the five operations -----------------------------------------------------------------

    def _async_package_allowed(self, package: Any) -> bool:
        return self.async_any_package or package.info.name.casefold() in ASYNC_PACKAGES

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
        _check_optional_str(package, "package")
        _check_optional_str(principal, "principal")
        if isinstance(credential_use, bool) or not isinstance(credential_use, int):
            raise TypeError(f"credential_use must be an int, got {type(credential_use).__name__}")
        _check_out(out)
        holder = out

        def effect() -> int:
            found = self._package(package)
            if found is not None and not self._async_package_allowed(found):
                return SecStatus.SEC_E_UNSUPPORTED_FUNCTION  # ASY-060
            result = self._acquire(package, credential_use, auth_data, principal)
            assert holder is not None
            _write(holder, credential=result.credential, expiry=result.expiry)
            return result.status

        def precheck() -> SecStatus | None:
            return SecStatus.SEC_E_INVALID_PARAMETER if holder is None else None  # ASY-026

        with self._lock:
            return self._queue(
                async_context,
                Call.ACQUIRE_CREDENTIALS_HANDLE_ASYNC,
                effect,
                f"SspiAcquireCredentialsHandleAsyncW({package!r})",
                precheck,
                {
                    "package": package,
                    "credential_use": credential_use,
                    "auth_data": auth_data,
                    "principal": principal,
                    "out": out,
                },
                out,
            )

    def initialize_security_context_async(
        self,
        async_context: AsyncContext | None,
        *,
        credential: SecHandle | None = None,
        context: SecHandle | None = None,
        target_name: str | None = None,
        context_req: int = 0,
        input: bytes | Sequence[SecBuffer] | None = None,
        output: Sequence[SecBuffer] | None = None,
        out: Out | None = None,
    ) -> SecStatus:
        """SspiInitializeSecurityContextAsyncW."""
        return self._leg_async(
            Call.INITIALIZE_SECURITY_CONTEXT_ASYNC,
            async_context,
            credential,
            context,
            target_name,
            context_req,
            input,
            output,
            out,
        )

    def accept_security_context_async(
        self,
        async_context: AsyncContext | None,
        *,
        credential: SecHandle | None = None,
        context: SecHandle | None = None,
        input: bytes | Sequence[SecBuffer] | None = None,
        context_req: int = 0,
        output: Sequence[SecBuffer] | None = None,
        out: Out | None = None,
    ) -> SecStatus:
        """SspiAcceptSecurityContextAsync."""
        return self._leg_async(
            Call.ACCEPT_SECURITY_CONTEXT_ASYNC,
            async_context,
            credential,
            context,
            None,
            context_req,
            input,
            output,
            out,
        )

    def _leg_async(
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
        for value, name in ((credential, "credential"), (context, "context")):
            if value is not None and not isinstance(value, SecHandle):
                raise TypeError(f"{name} must be a SecHandle or None, got {type(value).__name__}")
        if isinstance(context_req, bool) or not isinstance(context_req, int):
            raise TypeError(f"context_req must be an int, got {type(context_req).__name__}")
        _check_optional_str(target_name, "target_name")
        _check_out(out)
        inputs = as_buffers(input, "input")
        outputs = as_buffers(output, "output")
        sync_call = (
            Call.INITIALIZE_SECURITY_CONTEXT
            if call is Call.INITIALIZE_SECURITY_CONTEXT_ASYNC
            else Call.ACCEPT_SECURITY_CONTEXT
        )

        def precheck() -> SecStatus | None:
            # ksecdd's order (O5): zero the attribute and expiry outs, then check handles.
            if out is not None:
                out.context_attr = 0
                out.expiry = None
            if out is None or (context is None and credential is None):
                return SecStatus.SEC_E_INVALID_HANDLE  # ASY-025
            if context is not None and self._live_context(context) is None:
                return SecStatus.SEC_E_INVALID_HANDLE  # ASY-025: the handle is mapped at once
            return None

        def effect() -> int:
            assert out is not None
            package = self._effect_package(credential, context)
            if package is not None and not self._async_package_allowed(package):
                return SecStatus.SEC_E_UNSUPPORTED_FUNCTION  # ASY-060
            result = self._leg(
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

        with self._lock:
            args = {
                "credential": credential,
                "context": context,
                "target_name": target_name,
                "context_req": context_req,
                "input": inputs,
                "out": out,
            }
            if call is Call.ACCEPT_SECURITY_CONTEXT_ASYNC:
                del args["target_name"]
            return self._queue(async_context, call, effect, call.value, precheck, args, out)

    def _effect_package(self, credential: SecHandle | None, context: SecHandle | None) -> Any:
        record = self._live_context(context) if context is not None else None
        if record is not None:
            return record.package
        cred = self._live_credential(credential)
        return cred.package if cred is not None else None

    def free_credentials_handle_async(
        self, async_context: AsyncContext | None, *, credential: SecHandle | None
    ) -> SecStatus:
        """SspiFreeCredentialsHandleAsync (a stub in the analysed ksecdd: ASY-031)."""
        if credential is not None and not isinstance(credential, SecHandle):
            raise TypeError(
                f"credential must be a SecHandle or None, got {type(credential).__name__}"
            )

        def precheck() -> SecStatus | None:
            if not self._profile.free_credentials_async_supported:
                return SecStatus.SEC_E_UNSUPPORTED_FUNCTION  # ASY-031 (O10)
            return None

        with self._lock:
            return self._queue(
                async_context,
                Call.FREE_CREDENTIALS_HANDLE_ASYNC,
                lambda: self._free_credential(credential),
                "SspiFreeCredentialsHandleAsync",
                precheck,
                {"credential": credential},
            )

    def delete_security_context_async(
        self, async_context: AsyncContext | None, *, context: SecHandle | None
    ) -> SecStatus:
        """SspiDeleteSecurityContextAsync: the handle is invalid from the moment it is queued."""
        if context is not None and not isinstance(context, SecHandle):
            raise TypeError(f"context must be a SecHandle or None, got {type(context).__name__}")
        held = self._held
        if held is not None:
            held.acquire()
        try:
            if self._entry is not None:
                self._entry.on_api_entry()
            fresh = async_context
            if fresh.__class__ is AsyncContext and fresh._owner is self and fresh._state is _FRESH:
                # What _queue() below does for a fresh context of this instance, unrolled: no
                # state gate, no ASY-007, and a NULL callback is fine for a delete (ASY-020).
                if (
                    self._profile.delete_without_lsa_part_is_inline
                    and self._live_context(context) is None
                ):
                    status = _OK  # ASY-041 (O8): nothing queued, no callback
                    if self._observer is not None:
                        args = {"async_context": fresh, "context": context}
                        self._reported(_DELETE_ASYNC, args, status)
                    return status
                status = self._delete(context)  # ASY-042: deleted at queue time (Q16)
                pending = PendingCall(
                    self,
                    fresh,
                    _DELETE_ASYNC,
                    lambda: status,
                    "SspiDeleteSecurityContextAsync",
                )
                fresh._pending = pending
                fresh._state = _PENDING_STATE
                no_handler = (
                    fresh._callback is None and not self._profile.null_callback_only_for_delete
                )
                fresh._status = _OK if no_handler else _PENDING
                self._pending_calls[pending.id] = pending
                if self._observer is not None:  # before any completion
                    args = {"async_context": fresh, "context": context}
                    self._reported(_DELETE_ASYNC, args, _OK, pending.id)
                self._scheduler.submit(pending)
                return _OK  # ASY-009: queued
            outcome: list[SecStatus] = []

            def precheck() -> SecStatus | None:
                live = self._live_context(context) is not None
                if not live and self._profile.delete_without_lsa_part_is_inline:
                    return SecStatus.SEC_E_OK  # ASY-041 (O8): nothing queued, no callback
                outcome.append(self._delete(context))  # ASY-042: deleted at queue time (Q16)
                return None

            return self._queue(
                async_context,
                _DELETE_ASYNC,
                lambda: outcome[0],
                "SspiDeleteSecurityContextAsync",
                precheck,
                {"context": context},
                entered=True,
            )
        finally:
            if held is not None:
                held.release()


def _queue_args(async_context: Any, args: dict[str, Any] | None) -> dict[str, Any]:
    """The arguments an observer sees for a queued call (built only when one is attached)."""
    return {"async_context": async_context, **(args or {})}


def _as_status(value: int) -> SecStatus | int:
    try:
        return SecStatus(value)
    except ValueError:
        return value


def _check_optional_str(value: Any, parameter: str) -> None:
    if value is not None and not isinstance(value, str):
        raise TypeError(f"{parameter} must be a str or None, got {type(value).__name__}")


def _check_out(out: Any) -> None:
    if out is not None and not isinstance(out, Out):
        raise TypeError(f"out must be an sspi_model.Out or None, got {type(out).__name__}")


def _write(out: Out, **fields: Any) -> None:
    for name, value in fields.items():
        setattr(out, name, value)
    out.written = True
