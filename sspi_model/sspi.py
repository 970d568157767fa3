"""Sspi: the SSPI of one simulated process, synchronous and asynchronous.

Sspi is the public face: every method is named like its C function in snake_case and runs in
one envelope (envelope.api_call: lock, scheduler entry, observer). Behind it, the synchronous
core (sync_core.SyncCore) owns credentials and contexts and the async layer
(async_layer.AsyncLayer) owns async contexts and pending calls; both execute the lifecycle
tables (lifecycle.py), which alone write lifecycle state.

API failures come back as statuses; Python type errors raise TypeError naming the parameter,
out-of-range flags ValueError (API-007). A refused call never changes the model's state
(LIF-005).
"""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from typing import Any

from sspi_model.arguments import check_bool, check_handle, check_str, check_text, check_u32
from sspi_model.async_api import (
    AsyncContext,
    CallbackError,
    EventLog,
    MisuseEvent,
)
from sspi_model.async_calls import AsyncCalls
from sspi_model.async_layer import AsyncLayer
from sspi_model.buffers import NULL_DESCRIPTOR, NullDescriptor, SecBuffer, as_buffers
from sspi_model.envelope import api_call
from sspi_model.events import Observer
from sspi_model.handles import HandleClass, HandleKind, HandleMint, SecHandle, next_instance_number
from sspi_model.lifecycle import AsyncState, Call, CredState, CtxState
from sspi_model.packages import default_packages
from sspi_model.packages.base import Environment, Package
from sspi_model.profiles import Profile, resolve_profile
from sspi_model.results import (
    AcquireCredentialsResult,
    EnumerateSecurityPackagesResult,
    MessageResult,
    QueryContextAttributesResult,
    QueryCredentialsAttributesResult,
    QuerySecurityPackageInfoResult,
    SecurityContextResult,
    Statistics,
)
from sspi_model.scheduling import (
    InlineScheduler,
    ManualScheduler,
    RandomScheduler,
    Scheduler,
    ThreadedScheduler,
)
from sspi_model.status import SecStatus
from sspi_model.sync_core import SyncCore

DEFAULT_LOGON_USER = "WORKGROUP\\user"
_OK = SecStatus.SEC_E_OK
_ISC_CALL = Call.INITIALIZE_SECURITY_CONTEXT
_ASC_CALL = Call.ACCEPT_SECURITY_CONTEXT
_CTX, _CRED = HandleKind.CONTEXT, HandleKind.CREDENTIAL
# Schedulers that never complete a call on another thread. With one of these, and
# Sspi.thread_safe off, only the calling thread is ever inside an instance.
_SINGLE_THREADED = (ManualScheduler, InlineScheduler, RandomScheduler)
# Schedulers whose on_api_entry does nothing, so the envelope need not call it.
_QUIET_ENTRY = (ManualScheduler, InlineScheduler, ThreadedScheduler)


def _describe_leg(
    sspi: Sspi,
    credential: SecHandle | None,
    context: SecHandle | None,
    target_name: str | None,
    context_req: int,
    input: bytes | Sequence[SecBuffer] | None,
    output: Sequence[SecBuffer] | NullDescriptor | None = None,
    target_data_rep: int = 0x10,
) -> dict[str, Any]:
    args = {
        "credential": credential,
        "context": context,
        "target_name": target_name,
        "context_req": context_req,
        "input": as_buffers(input, "input"),
    }
    return _leg_extras(args, output, target_data_rep)


def _leg_extras(
    args: dict[str, Any],
    output: Sequence[SecBuffer] | NullDescriptor | None,
    target_data_rep: int,
) -> dict[str, Any]:
    """The output buffers and data representation a caller chose, so a trace replays them
    (TRC-006); the defaults are left out, as the caller left them out."""
    if output is not None:
        # NULL_DESCRIPTOR (BUF-005) is passed on as itself: a trace writes it (BUF-007).
        args["output"] = output if output is NULL_DESCRIPTOR else as_buffers(output, "output")
    if target_data_rep != 0x10:
        args["target_data_rep"] = target_data_rep
    return args


def _describe_accept(
    sspi: Sspi,
    credential: SecHandle | None,
    context: SecHandle | None,
    input: bytes | Sequence[SecBuffer] | None,
    context_req: int,
    output: Sequence[SecBuffer] | NullDescriptor | None = None,
    target_data_rep: int = 0x10,
) -> dict[str, Any]:
    args = {
        "credential": credential,
        "context": context,
        "context_req": context_req,
        "input": as_buffers(input, "input"),
    }
    return _leg_extras(args, output, target_data_rep)


def _describe_complete(
    sspi: Sspi, context: SecHandle | None, token: bytes | Sequence[SecBuffer] | None
) -> dict[str, Any]:
    return {"context": context, "token": as_buffers(token, "token")}


class _NoLock:
    """The lock of an instance no second thread can enter (see Sspi.thread_safe)."""

    __slots__ = ()

    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc_info: object) -> None:
        return None


_NO_LOCK = _NoLock()


def _check_scheduler(scheduler: object) -> None:
    """A scheduler is anything with submit() and on_api_entry(); else TypeError (API-002)."""
    if not (
        callable(getattr(scheduler, "submit", None))
        and callable(getattr(scheduler, "on_api_entry", None))
    ):
        raise TypeError(
            "scheduler must have submit() and on_api_entry() (see sspi_model.scheduling), "
            f"got {type(scheduler).__name__}"
        )


class Sspi(AsyncCalls):
    """One simulated security subsystem of one process.

    A client and a server are two instances sharing only `accounts`; they exchange tokens as
    bytes. A handle of one instance is invalid in another (HDL-004).

    Threads: with a ThreadedScheduler (or any scheduler other than the single-threaded
    ManualScheduler, InlineScheduler and RandomScheduler) every call holds an RLock, so the
    scheduler's worker thread and the caller's threads take turns. With a single-threaded
    scheduler an instance serves the thread that created it, and another thread entering it
    gets a RuntimeError naming `thread_safe` (API-006); `Sspi(thread_safe=True)` (or setting
    the property) shares it: every call then holds the lock.

    `rotate_context_handles=True` gives a context a new handle value on every continuation
    leg (ROT-001), so code that keeps a stale copy of its handle fails as it would against
    Chromium's MockSSPILibrary. Use it as a context manager, or call close(), to close a
    scheduler that runs a thread.
    """

    def __init__(
        self,
        *,
        accounts: Mapping[str, str] | None = None,
        logon_user: str | None = None,
        profile: str | Profile = "documented",
        packages: Sequence[Package] | None = None,
        observer: Observer | None = None,
        scheduler: Scheduler | None = None,
        strict: bool = True,
        async_any_package: bool = False,
        rotate_context_handles: bool = False,
        thread_safe: bool = False,
    ) -> None:
        check_bool(thread_safe, "thread_safe")
        if accounts is not None:
            if not isinstance(accounts, Mapping):
                raise TypeError(f"accounts must be a mapping, got {type(accounts).__name__}")
            for name, password in accounts.items():
                if not isinstance(name, str) or not isinstance(password, str):
                    raise TypeError(
                        "accounts must map str user names to str passwords, got "
                        f"{type(name).__name__}: {type(password).__name__}"
                    )
                check_text(name, "accounts user name", principal=True)  # ROB-003
                check_text(password, "accounts password")
        check_str(logon_user, "logon_user")
        if logon_user is not None:
            check_text(logon_user, "logon_user", principal=True)  # ROB-003
        if packages is not None:
            if isinstance(packages, (str, bytes)) or not isinstance(packages, Sequence):
                raise TypeError(f"packages must be a sequence, got {type(packages).__name__}")
            for package in packages:
                if not callable(getattr(package, "names", None)) or not hasattr(package, "info"):
                    raise TypeError(
                        "packages items must be security packages (with .info and .names()), "
                        f"got {type(package).__name__}"
                    )
        if observer is not None and not callable(observer):
            raise TypeError(f"observer must be callable or None, got {type(observer).__name__}")
        if scheduler is not None:
            _check_scheduler(scheduler)
        check_bool(strict, "strict")
        check_bool(async_any_package, "async_any_package")
        check_bool(rotate_context_handles, "rotate_context_handles")
        account_db = dict(accounts or {})
        if logon_user is None:
            # The process runs as the first account in the database, if there is one (LIF-006).
            logon_user = next(iter(account_db), DEFAULT_LOGON_USER)
        self.env = Environment(accounts=account_db, logon_user=logon_user)
        self._core = SyncCore(
            self.env,
            packages if packages is not None else default_packages(),
            resolve_profile(profile),  # PRF-001; the sync calls differ only in deletes (PRF-002)
            HandleMint(next_instance_number()),
            rotate_context_handles,
        )
        # The envelope's state (envelope.py), kept current by _refresh().
        self._rlock = threading.RLock()
        self._lock: Any = self._rlock
        self._held: threading.RLock | None = self._rlock
        self._thread = threading.get_ident()
        self._thread_safe = thread_safe  # API-006: shared between threads, every call locks
        self._entry: Scheduler | None = None
        self._observer = observer
        self._stale_fast = False
        self._scheduler = scheduler if scheduler is not None else ManualScheduler()  # ASY-070
        self._async = AsyncLayer(
            self._core,
            self,
            self._scheduler,
            strict=strict,
            async_any_package=async_any_package,
        )
        self._core.report_misuse = self._async.report_sync_misuse
        self._refresh()

    def __repr__(self) -> str:
        return f"<Sspi instance {self.instance} profile={self.profile.name!r}>"

    def __enter__(self) -> Sspi:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the scheduler if it has a close() (a ThreadedScheduler's worker thread)."""
        close = getattr(self._scheduler, "close", None)
        if callable(close):
            close()

    # -- configuration -------------------------------------------------------------------------

    @property
    def observer(self) -> Observer | None:
        """Called with every event (see sspi_model.events); None for none."""
        return self._observer

    @observer.setter
    def observer(self, observer: Observer | None) -> None:
        if observer is not None and not callable(observer):
            raise TypeError(f"observer must be callable or None, got {type(observer).__name__}")
        self._observer = observer
        self._refresh()

    @property
    def scheduler(self) -> Scheduler:
        """Decides when queued async calls complete (see sspi_model.scheduling)."""
        return self._scheduler

    @scheduler.setter
    def scheduler(self, scheduler: Scheduler) -> None:
        _check_scheduler(scheduler)  # API-002, as at construction
        self._scheduler = self._async.scheduler = scheduler
        self._refresh()

    @property
    def thread_safe(self) -> bool:
        """Whether calls hold a real lock: always with a multi-threaded scheduler; set it to
        True to share an instance with a single-threaded scheduler between threads."""
        return self._held is not None

    @thread_safe.setter
    def thread_safe(self, value: bool) -> None:
        check_bool(value, "thread_safe")  # API-002, as at construction
        self._thread_safe = value
        self._refresh()

    @property
    def profile(self) -> Profile:
        """The behaviour profile (sspi_model.profiles) this instance follows. Assigning a name
        or a Profile switches it for the calls that follow; a call already queued keeps the
        decisions it was queued under (ASY-021)."""
        return self._core.profile

    @profile.setter
    def profile(self, profile: str | Profile) -> None:
        self._core.profile = resolve_profile(profile)

    @property
    def strict(self) -> bool:
        """Raise SspiMisuse for undefined behaviour (True), or record it and go on."""
        return self._async.strict

    @strict.setter
    def strict(self, value: bool) -> None:
        check_bool(value, "strict")
        self._async.strict = value

    @property
    def async_any_package(self) -> bool:
        """Let async ACH/ISC/ASC run for every package, not only Schannel (ASY-060)."""
        return self._async.async_any_package

    @async_any_package.setter
    def async_any_package(self, value: bool) -> None:
        check_bool(value, "async_any_package")  # API-002, as at construction
        self._async.async_any_package = value

    @property
    def fail_allocations(self) -> bool:
        """Inject allocation failure: SspiCreateAsyncContext returns None (ASY-001)."""
        return self._async.fail_allocations

    @fail_allocations.setter
    def fail_allocations(self, value: bool) -> None:
        check_bool(value, "fail_allocations")  # API-002
        self._async.fail_allocations = value

    @property
    def misuse_events(self) -> EventLog[MisuseEvent]:
        """Misuse recorded (also in strict mode, before raising): the last 1000, with
        `.dropped` counting older ones and `.clear()` to empty it (ASY-057)."""
        return self._async.misuse_events

    @property
    def callback_errors(self) -> EventLog[CallbackError]:
        """Exceptions callbacks raised (ASY-024) or completions hit (ASY-027), bounded like
        misuse_events."""
        return self._async.callback_errors

    @property
    def notifications(self) -> int:
        """Callbacks run so far by this instance."""
        return self._async.notifications

    @property
    def last_rules(self) -> tuple[str, ...]:
        """The rule IDs that decided the last result: of a call, or of a completion."""
        return self._core.last_rules

    @last_rules.setter
    def last_rules(self, rules: tuple[str, ...]) -> None:
        self._core.last_rules = tuple(rules)

    @property
    def packages(self) -> tuple[Package, ...]:
        """The security packages this instance offers, in EnumerateSecurityPackages order."""
        return self._core.packages

    @property
    def instance(self) -> int:
        return self._core.mint.instance

    def _refresh(self) -> None:
        """Recompute what calls may skip after the observer, scheduler or thread_safe changed."""
        scheduler = self._scheduler
        kind = type(scheduler)
        overridden = "on_api_entry" in getattr(scheduler, "__dict__", ())
        quiet_entry = kind in _QUIET_ENTRY and not overridden
        self._entry = None if quiet_entry else scheduler
        single_threaded = kind in _SINGLE_THREADED and not self._thread_safe
        self._lock = _NO_LOCK if single_threaded else self._rlock
        self._held = None if single_threaded else self._rlock
        self._thread = threading.get_ident()
        self._stale_fast = quiet_entry and single_threaded and self._observer is None
        self._fast = self._thread if self._stale_fast else None  # the envelope's (envelope.py)

    # -- bookkeeping ---------------------------------------------------------------------------

    def classify(self, handle: SecHandle | None, kind: HandleKind) -> HandleClass:
        """What `handle` is to this instance, for a call expecting `kind`."""
        return self._core.classify(handle, kind)

    def lifecycle_state(
        self, subject: SecHandle | AsyncContext | None, kind: HandleKind = HandleKind.CONTEXT
    ) -> CtxState | CredState | AsyncState | None:
        """The lifecycle state of a live handle's record (None for any other handle), or of an
        async context: the state the tables (lifecycle.py) hold it in."""
        if isinstance(subject, AsyncContext):
            return getattr(subject, "state", None)
        return self._core.state_of(subject, kind)

    def statistics(self) -> Statistics:  # a frozen snapshot (STA-001)
        with self._lock:
            core = self._core
            return Statistics(
                credentials=len(core.credentials),
                orphaned_credentials=core.orphans,
                contexts=len(core.contexts),
                context_buffers=len(core.allocations),
                **self._async.statistics(),
            )

    # -- packages ------------------------------------------------------------------------------

    @api_call(Call.ENUMERATE_SECURITY_PACKAGES)
    def enumerate_security_packages(self) -> EnumerateSecurityPackagesResult:
        return self._core.enumerate_security_packages()

    @api_call(Call.QUERY_SECURITY_PACKAGE_INFO)
    def query_security_package_info(
        self, package_name: str | None
    ) -> QuerySecurityPackageInfoResult:
        check_str(package_name, "package_name")
        return self._core.query_security_package_info(package_name)

    @api_call(Call.FREE_CONTEXT_BUFFER)
    def free_context_buffer(self, buffer: int | None) -> SecStatus:
        if buffer is not None and (isinstance(buffer, bool) or not isinstance(buffer, int)):
            raise TypeError(f"buffer must be an int or None, got {type(buffer).__name__}")
        return self._core.free_context_buffer(buffer)

    # -- credentials ---------------------------------------------------------------------------

    @api_call(
        Call.ACQUIRE_CREDENTIALS_HANDLE,
        args=("package", "credential_use", "auth_data", "principal"),
    )
    def acquire_credentials_handle(
        self,
        package: str | None,
        credential_use: int,
        auth_data: Any = None,
        *,
        principal: str | None = None,
        logon_id: int | None = None,
    ) -> AcquireCredentialsResult:
        # The class tests are the common case, checked without a call (benchmarks/).
        if package.__class__ is not str:
            check_str(package, "package")
        if credential_use.__class__ is not int or not 0 <= credential_use <= 0xFFFFFFFF:
            check_u32(credential_use, "credential_use")
        if principal is not None:
            check_str(principal, "principal")
        if logon_id is not None and (isinstance(logon_id, bool) or not isinstance(logon_id, int)):
            raise TypeError(f"logon_id must be an int, got {type(logon_id).__name__}")
        return self._core.acquire(package, credential_use, auth_data, principal)

    @api_call(Call.QUERY_CREDENTIALS_ATTRIBUTES)
    def query_credentials_attributes(
        self, credential: SecHandle | None, attribute: int
    ) -> QueryCredentialsAttributesResult:
        check_handle(credential, "credential")
        check_u32(attribute, "attribute")
        return self._core.query_credential(credential, attribute)

    @api_call(Call.FREE_CREDENTIALS_HANDLE)
    def free_credentials_handle(self, credential: SecHandle | None) -> SecStatus:
        if credential.__class__ is not SecHandle:
            check_handle(credential, "credential")
        return self._core.free_credential(credential)

    # -- security contexts ---------------------------------------------------------------------

    @api_call(Call.INITIALIZE_SECURITY_CONTEXT, describe=_describe_leg)
    def initialize_security_context(
        self,
        credential: SecHandle | None = None,
        context: SecHandle | None = None,
        target_name: str | None = None,
        context_req: int = 0,
        input: bytes | Sequence[SecBuffer] | None = None,
        *,
        output: Sequence[SecBuffer] | NullDescriptor | None = None,
        target_data_rep: int = 0x10,
    ) -> SecurityContextResult:
        return self._core.leg(
            _ISC_CALL, credential, context, target_name, context_req, input, output, target_data_rep
        )

    @api_call(Call.ACCEPT_SECURITY_CONTEXT, describe=_describe_accept)
    def accept_security_context(
        self,
        credential: SecHandle | None = None,
        context: SecHandle | None = None,
        input: bytes | Sequence[SecBuffer] | None = None,
        context_req: int = 0,
        *,
        output: Sequence[SecBuffer] | NullDescriptor | None = None,
        target_data_rep: int = 0x10,
    ) -> SecurityContextResult:
        return self._core.leg(
            _ASC_CALL, credential, context, None, context_req, input, output, target_data_rep
        )

    @api_call(Call.COMPLETE_AUTH_TOKEN, describe=_describe_complete)
    def complete_auth_token(
        self, context: SecHandle | None, token: bytes | Sequence[SecBuffer] | None
    ) -> SecStatus:
        check_handle(context, "context")
        return self._core.complete_auth_token(context, as_buffers(token, "token"))

    def delete_security_context(self, context: SecHandle | None) -> SecStatus:
        """DeleteSecurityContext."""
        core = self._core
        if context.__class__ is SecHandle and self._stale_fast:
            # A handle this instance issued and has since deleted, told from its bits alone:
            # the general path's answer for it (SyncCore.retired_status: DEL-003/DEL-004)
            # without its function calls. Only single-threaded, unobserved instances with a
            # quiet scheduler come here; the answer changes no state, so the thread test of
            # the envelope (API-006) is left to the calls that do. tests/test_table_conformance.py
            # holds it equal to the general path.
            lower = context.lower
            if (
                lower not in core.contexts  # first: a live handle leaves at once
                and context.upper is core.ctx_upper
                and core.ctx_base < lower < core.ctx_limit
            ):
                core.last_rules = core.retired_rules
                return core.retired_status
        return self._delete_security_context(context)

    @api_call(Call.DELETE_SECURITY_CONTEXT)
    def _delete_security_context(self, context: SecHandle | None) -> SecStatus:
        if context.__class__ is not SecHandle:
            check_handle(context, "context")
        return self._core.delete(context)

    @api_call(Call.QUERY_CONTEXT_ATTRIBUTES)
    def query_context_attributes(
        self, context: SecHandle | None, attribute: int
    ) -> QueryContextAttributesResult:
        check_handle(context, "context")
        check_u32(attribute, "attribute")
        return self._core.query(context, attribute)

    # -- message functions and control tokens ------------------------------------------------
    # MessageSeqNo is checked as a ULONG and otherwise unused: NTLM numbers connection-oriented
    # messages itself and Schannel uses none (MSG-014).

    @api_call(Call.MAKE_SIGNATURE)
    def make_signature(
        self,
        context: SecHandle | None,
        qop: int,
        message: Sequence[SecBuffer] | None,
        seq_no: int = 0,
    ) -> MessageResult:
        return self._message(Call.MAKE_SIGNATURE, context, qop, message, seq_no)

    @api_call(Call.VERIFY_SIGNATURE)
    def verify_signature(
        self, context: SecHandle | None, message: Sequence[SecBuffer] | None, seq_no: int = 0
    ) -> MessageResult:
        return self._message(Call.VERIFY_SIGNATURE, context, 0, message, seq_no)

    @api_call(Call.ENCRYPT_MESSAGE)
    def encrypt_message(
        self,
        context: SecHandle | None,
        qop: int,
        message: Sequence[SecBuffer] | None,
        seq_no: int = 0,
    ) -> MessageResult:
        return self._message(Call.ENCRYPT_MESSAGE, context, qop, message, seq_no)

    @api_call(Call.DECRYPT_MESSAGE)
    def decrypt_message(
        self, context: SecHandle | None, message: Sequence[SecBuffer] | None, seq_no: int = 0
    ) -> MessageResult:
        return self._message(Call.DECRYPT_MESSAGE, context, 0, message, seq_no)

    def _message(
        self,
        call: Call,
        context: SecHandle | None,
        qop: int,
        message: Sequence[SecBuffer] | None,
        seq_no: int,
    ) -> MessageResult:
        check_handle(context, "context")
        check_u32(qop, "qop")
        check_u32(seq_no, "seq_no")
        return self._core.message(call, context, as_buffers(message, "message"), qop)

    @api_call(Call.APPLY_CONTROL_TOKEN)
    def apply_control_token(
        self, context: SecHandle | None, input: Sequence[SecBuffer] | bytes | None
    ) -> MessageResult:
        """ApplyControlToken; `input` is pInput (bytes stand for one SECBUFFER_TOKEN)."""
        check_handle(context, "context")
        return self._core.apply_control_token(context, as_buffers(input, "input"))
