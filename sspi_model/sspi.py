"""Sspi: the synchronous SSPI of one simulated process, over the lifecycle tables.

Every public method is named like its C function in snake_case. API failures come back as
statuses; Python type errors raise TypeError naming the parameter. A refused call never changes
the model's state (LIF-005).
"""

from __future__ import annotations

import copy
import itertools
import threading
from collections.abc import Mapping, Sequence
from typing import Any, TypeVar

import attrs

from sspi_model.async_api import AsyncApi
from sspi_model.buffers import SecBuffer, as_buffers
from sspi_model.constants import (
    ISC_REQ_ALLOCATE_MEMORY,
    TIMESTAMP_NEVER,
    CredentialUse,
    SecPkgAttr,
)
from sspi_model.events import CallEvent, Observer
from sspi_model.handles import HandleClass, HandleKind, HandleMint, SecHandle, next_instance_number
from sspi_model.lifecycle import (
    CONTEXT_TABLE,
    Call,
    CredState,
    CtxState,
    Refusal,
    Transition,
    context_step,
)
from sspi_model.packages import default_packages
from sspi_model.packages.base import Environment, LegOutcome, LegResult, Package, Session
from sspi_model.profiles import Profile, resolve_profile
from sspi_model.results import (
    AcquireCredentialsResult,
    ContextLifespan,
    ContextNames,
    ContextPackageInfo,
    EnumerateSecurityPackagesResult,
    QueryContextAttributesResult,
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
from sspi_model.status import NtStatus, SecStatus

DEFAULT_LOGON_USER = "WORKGROUP\\user"
_VALID_USE_BITS = 0x1 | 0x2 | 0x10 | 0x20
_NEGOTIATE_ONLY_USE_BITS = 0x10 | 0x20
_OK = SecStatus.SEC_E_OK
_INVALID_HANDLE = SecStatus.SEC_E_INVALID_HANDLE
_BOTH_USE_BITS = int(CredentialUse.BOTH)
# Enum members used on hot paths, bound once: on Python 3.11 `Enum.MEMBER` goes through
# EnumType.__getattr__'s slow attribute hook (about ten times a global load).
_ISC_CALL = Call.INITIALIZE_SECURITY_CONTEXT
_ASC_CALL = Call.ACCEPT_SECURITY_CONTEXT
_PARTIAL = CtxState.PARTIAL
_DELETED = CtxState.DELETED
_CRED_LIVE = CredState.LIVE
_ORPHANED = CredState.ORPHANED
_RELEASED = CredState.RELEASED
_CONTEXT_KIND = HandleKind.CONTEXT
_CREDENTIAL_KIND = HandleKind.CREDENTIAL


class _Credential:
    __slots__ = ("expiry", "handle", "material", "package", "refs", "state", "use")

    def __init__(self, handle: SecHandle, package: Package, material: Any, use: int) -> None:
        self.handle = handle
        self.package = package
        self.material = material
        self.use = use
        self.refs = 0  # contexts built on this credential (FCH-003)
        self.state = _CRED_LIVE
        self.expiry = TIMESTAMP_NEVER


class _Context:
    __slots__ = ("attr", "credential", "handle", "is_client", "package", "session", "state")

    def __init__(
        self,
        handle: SecHandle,
        credential: _Credential,
        session: Session,
        is_client: bool,
    ) -> None:
        self.handle = handle
        self.credential = credential
        self.package = credential.package
        self.session = session
        self.is_client = is_client
        self.state = _PARTIAL
        self.attr = 0


def _check_handle(value: Any, parameter: str) -> None:
    if value is not None and not isinstance(value, SecHandle):
        raise TypeError(f"{parameter} must be a SecHandle or None, got {type(value).__name__}")


def _check_int(value: Any, parameter: str) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{parameter} must be an int, got {type(value).__name__}")


def _check_str(value: Any, parameter: str) -> None:
    if value is not None and not isinstance(value, str):
        raise TypeError(f"{parameter} must be a str or None, got {type(value).__name__}")


class _NoLock:
    """The lock of an instance no second thread can enter (see Sspi.thread_safe)."""

    __slots__ = ()

    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc_info: object) -> None:
        return None


_NO_LOCK = _NoLock()
# Schedulers that never complete a call on another thread. With one of these, and
# Sspi.thread_safe off, only the calling thread is ever inside an instance.
_SINGLE_THREADED = (ManualScheduler, InlineScheduler, RandomScheduler)
# Schedulers whose on_api_entry does nothing, so the model need not call it.
_QUIET_ENTRY = (ManualScheduler, InlineScheduler, ThreadedScheduler)

_new_object = object.__new__
_set_field = object.__setattr__
_BUFFER_FIELDS = ("buffer_type", "data", "size", "allocation")


def _token_buffer(data: bytes, allocation: int | None = None) -> SecBuffer:
    """SecBuffer(SECBUFFER_TOKEN, data, allocation=allocation) for `data` known to be bytes:
    the attrs __init__ without its validators (both would pass)."""
    buffer: SecBuffer = _new_object(SecBuffer)
    _set_field(buffer, "buffer_type", 2)
    _set_field(buffer, "data", data)
    _set_field(buffer, "size", None)
    _set_field(buffer, "allocation", allocation)
    return buffer


if tuple(field.name for field in attrs.fields(SecBuffer)) != _BUFFER_FIELDS:  # pragma: no cover

    def _token_buffer(data: bytes, allocation: int | None = None) -> SecBuffer:
        return SecBuffer(2, data, allocation=allocation)


class Sspi(AsyncApi):
    """One simulated security subsystem of one process.

    A client and a server are two instances sharing only `accounts`; they exchange tokens as
    bytes. A handle of one instance is invalid in another (HDL-004).

    Threads: with a ThreadedScheduler (or any scheduler other than the single-threaded
    ManualScheduler, InlineScheduler and RandomScheduler) every call holds an RLock, so the
    scheduler's worker thread and the caller's threads take turns. With a single-threaded
    scheduler the lock is a no-op, because nothing but the calling thread can be inside the
    instance; set `thread_safe = True` before sharing such an instance between threads.
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
    ) -> None:
        if accounts is not None and not isinstance(accounts, Mapping):
            raise TypeError(f"accounts must be a mapping, got {type(accounts).__name__}")
        _check_str(logon_user, "logon_user")
        account_db = dict(accounts or {})
        if logon_user is None:
            # The process runs as the first account in the database, if there is one (LIF-006).
            logon_user = next(iter(account_db), DEFAULT_LOGON_USER)
        self.env = Environment(accounts=account_db, logon_user=logon_user)
        self.profile = resolve_profile(profile)  # also sets the DEL-003/DEL-004 fast answer
        self._packages = tuple(packages) if packages is not None else default_packages()
        self._by_name = {
            name.casefold(): package for package in self._packages for name in package.names()
        }
        self._mint = HandleMint(next_instance_number())
        self._credentials: dict[int, _Credential] = {}
        self._contexts: dict[int, _Context] = {}
        self._orphans = 0
        self._allocations: dict[int, str] = {}
        self._allocation_ids = itertools.count(0x10000, 0x10)
        # What the stale-delete fast path needs: every context handle issued here has
        # upper == _ctx_upper (one shared int) and _ctx_base < lower < _ctx_limit.
        self._ctx_upper = self._mint.upper(_CONTEXT_KIND)
        self._ctx_base = self._mint.base(_CONTEXT_KIND)
        self._ctx_limit = self._ctx_base + 1
        self._rlock = threading.RLock()
        self._lock = self._rlock  # until _refresh() knows the scheduler
        self._held: threading.RLock | None = self._rlock  # the same, or None for no lock
        self._thread_safe = False
        self._entry: Scheduler | None = None
        self._stale_fast = False
        self._observer = observer
        self.last_rules: tuple[str, ...] = ()  # the rules that decided the last result
        self._init_async(scheduler, strict, async_any_package)  # sets scheduler: _refresh()

    # -- configuration -----------------------------------------------------------------------

    @property
    def observer(self) -> Observer | None:
        """Called with every event (see sspi_model.events); None for none."""
        return self._observer

    @observer.setter
    def observer(self, observer: Observer | None) -> None:
        self._observer = observer
        self._refresh()

    @property
    def scheduler(self) -> Scheduler:
        """Decides when queued async calls complete (see sspi_model.scheduling)."""
        return self._scheduler

    @scheduler.setter
    def scheduler(self, scheduler: Scheduler) -> None:
        self._scheduler = scheduler
        self._refresh()

    @property
    def thread_safe(self) -> bool:
        """Whether calls hold a real lock: always with a multi-threaded scheduler; set it to
        True to share an instance with a single-threaded scheduler between threads."""
        return self._lock is self._rlock

    @thread_safe.setter
    def thread_safe(self, value: bool) -> None:
        self._thread_safe = bool(value)
        self._refresh()

    @property
    def profile(self) -> Profile:
        """The behaviour profile (sspi_model.profiles) this instance follows."""
        return self._profile

    @profile.setter
    def profile(self, profile: Profile) -> None:
        self._profile = profile
        self._retired_status = profile.delete_already_deleted
        self._retired_rules = (
            ("DEL-003",) if profile.delete_already_deleted == _OK else ("DEL-004",)
        )

    def _refresh(self) -> None:
        """Recompute what calls may skip after the observer, scheduler or thread_safe changed."""
        scheduler = self._scheduler
        kind = type(scheduler)
        overridden = "on_api_entry" in getattr(scheduler, "__dict__", ())
        quiet_entry = kind in _QUIET_ENTRY and not overridden
        self._entry = None if quiet_entry else scheduler
        single_threaded = kind in _SINGLE_THREADED and not self._thread_safe
        self._lock = _NO_LOCK if single_threaded else self._rlock
        # The hot calls test this instead of entering the no-op lock (a `with` costs two
        # Python-level calls; this pattern costs two comparisons).
        self._held = None if single_threaded else self._rlock
        self._stale_fast = quiet_entry and single_threaded and self._observer is None

    # -- bookkeeping -------------------------------------------------------------------------

    @property
    def instance(self) -> int:
        return self._mint.instance

    def classify(self, handle: SecHandle | None, kind: HandleKind) -> HandleClass:
        """What `handle` is to this instance, for a call expecting `kind`."""
        if handle is None:
            return HandleClass.NULL
        table: Mapping[int, Any] = self._credentials if kind is _CREDENTIAL_KIND else self._contexts
        record = table.get(handle.lower)
        if record is not None and record.handle.upper == handle.upper:
            return HandleClass.LIVE
        return self._mint.classify_unlisted(handle, kind)

    def _live_credential(self, handle: SecHandle | None) -> _Credential | None:
        if handle is None:
            return None
        record = self._credentials.get(handle.lower)
        return record if record is not None and record.handle.upper == handle.upper else None

    def _live_context(self, handle: SecHandle | None) -> _Context | None:
        if handle is None:
            return None
        record = self._contexts.get(handle.lower)
        return record if record is not None and record.handle.upper == handle.upper else None

    def _why(self, status: _S, *rules: str) -> _S:
        """Record the rules that decide the current call's result (Sspi.last_rules)."""
        self.last_rules = rules
        return status

    def _handle_rule(self, handle: SecHandle | None, kind: HandleKind) -> str:
        """The rule that names what is wrong with a handle that is not live."""
        handle_class = self.classify(handle, kind)
        if handle_class is HandleClass.NEVER_ISSUED and handle is not None:
            special = handle in (_ZEROED, SecHandle.invalid())
            return "HDL-006" if special else "HDL-007"
        return _HANDLE_CLASS_RULES.get(handle_class, "HDL-007")

    def _allocate(self, what: str) -> int:
        address = next(self._allocation_ids)
        self._allocations[address] = what
        return address

    def _emit(self, call: Call, args: dict[str, Any], result: Any) -> None:
        if self._observer is not None:
            self._observer(CallEvent(self, call, args, result))

    def statistics(self) -> Statistics:
        with self._lock:
            return Statistics(
                credentials=len(self._credentials),
                orphaned_credentials=self._orphans,
                contexts=len(self._contexts),
                context_buffers=len(self._allocations),
                **self._async_statistics(),
            )

    def _package(self, name: str | None) -> Package | None:
        return None if name is None else self._by_name.get(name.casefold())

    # -- packages ----------------------------------------------------------------------------

    def enumerate_security_packages(self) -> EnumerateSecurityPackagesResult:
        with self._lock:
            if self._entry is not None:
                self._entry.on_api_entry()
            result = EnumerateSecurityPackagesResult(
                _OK, tuple(p.info for p in self._packages), self._allocate("SecPkgInfo[]")
            )
            self._emit(Call.ENUMERATE_SECURITY_PACKAGES, {}, result)
        return result

    def query_security_package_info(
        self, package_name: str | None
    ) -> QuerySecurityPackageInfoResult:
        _check_str(package_name, "package_name")
        with self._lock:
            if self._entry is not None:
                self._entry.on_api_entry()
            package = self._package(package_name)
            if package is None:
                self._why(None, "PKG-002")
                result = QuerySecurityPackageInfoResult(SecStatus.SEC_E_SECPKG_NOT_FOUND)
            else:
                self._why(None, "PKG-001")
                result = QuerySecurityPackageInfoResult(
                    _OK, package.info, self._allocate("SecPkgInfo")
                )
            self._emit(Call.QUERY_SECURITY_PACKAGE_INFO, {"package_name": package_name}, result)
        return result

    def free_context_buffer(self, buffer: int | None) -> SecStatus:
        if buffer is not None:
            _check_int(buffer, "buffer")
        with self._lock:
            if self._entry is not None:
                self._entry.on_api_entry()
            if buffer is None:
                status = self._why(_OK, "FCB-002")
            elif self._allocations.pop(buffer, None) is not None:
                status = self._why(_OK, "FCB-001")
            else:
                status = self._why(_INVALID_HANDLE, "FCB-003")
            self._emit(Call.FREE_CONTEXT_BUFFER, {"buffer": buffer}, status)
        return status

    # -- credentials -------------------------------------------------------------------------

    def acquire_credentials_handle(
        self,
        package: str | None,
        credential_use: int,
        auth_data: Any = None,
        *,
        principal: str | None = None,
        logon_id: int | None = None,
    ) -> AcquireCredentialsResult:
        if package.__class__ is not str:
            _check_str(package, "package")
        if credential_use.__class__ is not int:
            _check_int(credential_use, "credential_use")
        if principal is not None:
            _check_str(principal, "principal")
        if logon_id is not None:
            _check_int(logon_id, "logon_id")
        held = self._held
        if held is not None:
            held.acquire()
        try:
            if self._entry is not None:
                self._entry.on_api_entry()
            result = self._acquire(package, credential_use, auth_data, principal)
            if self._observer is not None:
                self._emit(
                    Call.ACQUIRE_CREDENTIALS_HANDLE,
                    {
                        "package": package,
                        "credential_use": credential_use,
                        "auth_data": auth_data,
                        "principal": principal,
                    },
                    result,
                )
        finally:
            if held is not None:
                held.release()
        return result

    def _acquire(
        self, package_name: str | None, use: int, auth_data: Any, principal: str | None
    ) -> AcquireCredentialsResult:
        package = self._package(package_name)
        if package is None:
            self._why(None, "ACH-002")
            return AcquireCredentialsResult(SecStatus.SEC_E_SECPKG_NOT_FOUND)
        negotiate_bits_ok = not use & _NEGOTIATE_ONLY_USE_BITS or package.info.name == "Negotiate"
        if not use & _BOTH_USE_BITS or use & ~_VALID_USE_BITS or not negotiate_bits_ok:
            self._why(None, "ACH-004")
            return AcquireCredentialsResult(SecStatus.SEC_E_UNKNOWN_CREDENTIALS)
        status, material, rules = package.acquire(use, principal, auth_data, self.env)
        self.last_rules = tuple(rules)
        if status != _OK:
            return AcquireCredentialsResult(status)
        handle = self._mint.issue(_CREDENTIAL_KIND)
        record = _Credential(handle, package, material, use)
        self._credentials[handle.lower] = record
        return AcquireCredentialsResult(_OK, handle, record.expiry)  # ACH-001

    def free_credentials_handle(self, credential: SecHandle | None) -> SecStatus:
        if credential.__class__ is not SecHandle:
            _check_handle(credential, "credential")
        held = self._held
        if held is not None:
            held.acquire()
        try:
            if self._entry is not None:
                self._entry.on_api_entry()
            status = self._free_credential(credential)
            if self._observer is not None:
                self._emit(Call.FREE_CREDENTIALS_HANDLE, {"credential": credential}, status)
        finally:
            if held is not None:
                held.release()
        return status

    def _free_credential(self, handle: SecHandle | None) -> SecStatus:
        record = None if handle is None else self._credentials.get(handle.lower)
        if record is None or record.handle.upper != handle.upper:  # type: ignore[union-attr]
            return self._why(_INVALID_HANDLE, "FCH-002", self._handle_rule(handle, _CRED))
        del self._credentials[record.handle.lower]
        if record.refs:
            record.state = _ORPHANED  # contexts keep it alive
            self._orphans += 1
            self.last_rules = _FREED_IN_USE_RULES
            return _OK
        record.state = _RELEASED
        self.last_rules = _FREED_RULES
        return _OK

    def _release_context(self, record: _Context) -> None:
        record.state = _DELETED
        del self._contexts[record.handle.lower]
        credential = record.credential
        credential.refs -= 1
        if credential.refs == 0 and credential.state is _ORPHANED:
            credential.state = _RELEASED  # FCH-004
            self._orphans -= 1

    # -- security contexts -------------------------------------------------------------------

    def initialize_security_context(
        self,
        credential: SecHandle | None = None,
        context: SecHandle | None = None,
        target_name: str | None = None,
        context_req: int = 0,
        input: bytes | Sequence[SecBuffer] | None = None,
        *,
        output: Sequence[SecBuffer] | None = None,
        target_data_rep: int = 0x10,
    ) -> SecurityContextResult:
        if target_name is not None and target_name.__class__ is not str:
            _check_str(target_name, "target_name")
        return self._leg_call(
            _ISC_CALL,
            credential,
            context,
            target_name,
            context_req,
            input,
            output,
            target_data_rep,
        )

    def accept_security_context(
        self,
        credential: SecHandle | None = None,
        context: SecHandle | None = None,
        input: bytes | Sequence[SecBuffer] | None = None,
        context_req: int = 0,
        *,
        output: Sequence[SecBuffer] | None = None,
        target_data_rep: int = 0x10,
    ) -> SecurityContextResult:
        return self._leg_call(
            _ASC_CALL, credential, context, None, context_req, input, output, target_data_rep
        )

    def _leg_call(
        self,
        call: Call,
        credential: SecHandle | None,
        context: SecHandle | None,
        target_name: str | None,
        context_req: int,
        input: bytes | Sequence[SecBuffer] | None,
        output: Sequence[SecBuffer] | None,
        target_data_rep: int,
    ) -> SecurityContextResult:
        """ISC and ASC: argument checks, the lock and the observer around `_leg`."""
        # The `__class__ is` tests are the common case, checked without a call (benchmarks/).
        if credential is not None and credential.__class__ is not SecHandle:
            _check_handle(credential, "credential")
        if context is not None and context.__class__ is not SecHandle:
            _check_handle(context, "context")
        if context_req.__class__ is not int:
            _check_int(context_req, "context_req")
        if target_data_rep.__class__ is not int:
            _check_int(target_data_rep, "target_data_rep")
        inputs: tuple[SecBuffer, ...] | None
        if input is None:
            inputs = None
        elif input.__class__ is bytes:
            inputs = (_token_buffer(input),)
        else:
            inputs = as_buffers(input, "input")
        outputs = None if output is None else as_buffers(output, "output")
        held = self._held
        if held is not None:
            held.acquire()
        try:
            if self._entry is not None:
                self._entry.on_api_entry()
            result = self._leg(call, credential, context, target_name, context_req, inputs, outputs)
            if self._observer is not None:
                args: dict[str, Any] = {
                    "credential": credential,
                    "context": context,
                    "target_name": target_name,
                    "context_req": context_req,
                    "input": inputs,
                }
                if call is _ASC_CALL:
                    del args["target_name"]
                self._emit(call, args, result)
        finally:
            if held is not None:
                held.release()
        return result

    def _leg(
        self,
        call: Call,
        credential: SecHandle | None,
        context: SecHandle | None,
        target_name: str | None,
        context_req: int,
        inputs: tuple[SecBuffer, ...] | None,
        outputs: tuple[SecBuffer, ...] | None,
    ) -> SecurityContextResult:
        if context is None:
            return self._first_leg(call, credential, target_name, context_req, inputs, outputs)
        is_client = call is _ISC_CALL
        record = self._contexts.get(context.lower)
        if record is not None and record.handle.upper != context.upper:
            record = None
        if record is None or record.is_client != is_client:
            self._why(None, "ISC-003" if is_client else "ASC-003", self._handle_rule(context, _CTX))
            return SecurityContextResult(_INVALID_HANDLE)
        new_credential = None
        if credential is not None:
            # A continuation leg may omit the credential; one it names must be live (ISC-009).
            new_credential = self._live_credential(credential)
            if new_credential is None:
                self._why(None, "ISC-009", self._handle_rule(credential, _CRED))
                return SecurityContextResult(_INVALID_HANDLE)
        step = _LEG_STEPS[(record.state._value_, call._value_)]  # context_step(state, call)
        if isinstance(step, Refusal):
            self.last_rules = step.rules
            return SecurityContextResult(_sec(step.status))
        if record.state is CtxState.ESTABLISHED and inputs is not None:
            self._why(None, "ISC-008")
            return SecurityContextResult(SecStatus.SEC_E_OUT_OF_SEQUENCE)
        snapshot = copy.copy(record.session) if outputs is not None else None
        use_credential = getattr(record.session, "use_credential", None)
        same_package = new_credential is not None and new_credential.package is record.package
        if use_credential is not None and same_package:  # only after every refusal (LIF-005)
            assert new_credential is not None
            use_credential(new_credential.material)
        if record.state is CtxState.ESTABLISHED:
            record.session.restart()  # ISC-007: reauthentication starts a new exchange
        leg = record.session.step(inputs, context_req)
        self.last_rules = (*step.rules, *leg.rules)
        if outputs is not None:
            too_small = self._output_too_small(leg, context_req, outputs)
            if too_small is not None:
                assert snapshot is not None
                record.session = snapshot  # BUF-002 leaves the context as it was
                return too_small
        # _next_context_state(step, leg.outcome, record.state), from a precomputed table
        record.state = _LEG_NEXT[(record.state._value_, call._value_, leg.outcome._value_)]
        if leg.outcome is not _REJECTED:
            record.attr = leg.context_attr
        return self._context_result(record.handle, leg, context_req, record.state)

    def _first_leg(
        self,
        call: Call,
        credential: SecHandle | None,
        target_name: str | None,
        context_req: int,
        inputs: tuple[SecBuffer, ...] | None,
        outputs: tuple[SecBuffer, ...] | None,
    ) -> SecurityContextResult:
        is_client = call is _ISC_CALL
        cred = None if credential is None else self._credentials.get(credential.lower)
        if cred is not None and cred.handle.upper != credential.upper:  # type: ignore[union-attr]
            cred = None
        if cred is None:
            rule = "ISC-004" if is_client else "ASC-005"
            self._why(None, rule, self._handle_rule(credential, _CRED))
            return SecurityContextResult(_INVALID_HANDLE)
        package = cred.package
        allowed = package.can_initiate(cred.use) if is_client else package.can_accept(cred.use)
        if not allowed:
            self._why(None, "ISC-005" if is_client else "ASC-006")
            return SecurityContextResult(SecStatus.SEC_E_NO_CREDENTIALS)
        session: Session = (
            package.new_client(cred.material, target_name, self.env)
            if is_client
            else package.new_server(cred.material, self.env)
        )
        leg = session.step(inputs, context_req)
        step = _FIRST_ISC if is_client else _FIRST_ASC  # context_step(CtxState.NEW, call)
        self.last_rules = (*step.rules, *leg.rules)
        if outputs is not None:
            too_small = self._output_too_small(leg, context_req, outputs)
            if too_small is not None:
                return too_small
        # _next_context_state(step, leg.outcome, CtxState.NEW), precomputed
        state = _LEG_NEXT[(_NEW_VALUE, call._value_, leg.outcome._value_)]
        if state is _NEW:
            # LIF-001: a failed first leg returns no handle.
            return SecurityContextResult(
                leg.status, input_after=leg.input_after, output=leg.extra_output
            )
        handle = self._mint.issue(_CONTEXT_KIND)
        record = _Context(handle, cred, session, is_client)
        record.state = state
        record.attr = leg.context_attr
        cred.refs += 1
        self._contexts[handle.lower] = record
        self._ctx_limit = handle.lower + 1  # after the insertion (see delete_security_context)
        return self._context_result(handle, leg, context_req, state)

    def _output_too_small(
        self, leg: LegResult, context_req: int, outputs: tuple[SecBuffer, ...] | None
    ) -> SecurityContextResult | None:
        if outputs is None or context_req & ISC_REQ_ALLOCATE_MEMORY:
            return None
        for buffer in outputs:
            if buffer.base_type == 2:  # SECBUFFER_TOKEN
                if len(leg.token) > buffer.cb:
                    self._why(None, "BUF-002", "LIF-005")
                    return SecurityContextResult(SecStatus.SEC_E_BUFFER_TOO_SMALL)
                return None
        if leg.token:  # no TOKEN buffer at all
            self._why(None, "BUF-002", "LIF-005")
            return SecurityContextResult(SecStatus.SEC_E_BUFFER_TOO_SMALL)
        return None

    def _context_result(
        self, handle: SecHandle, leg: LegResult, context_req: int, state: CtxState
    ) -> SecurityContextResult:
        attr = leg.context_attr
        allocation = None
        if context_req & ISC_REQ_ALLOCATE_MEMORY and leg.token:
            allocation = self._allocate("output token")  # BUF-001
            attr |= 0x100  # ISC_RET_ALLOCATED_MEMORY == ASC_RET_ALLOCATED_MEMORY
        output = (_token_buffer(leg.token, allocation), *leg.extra_output)
        expiry = TIMESTAMP_NEVER if state is _ESTABLISHED else None
        return SecurityContextResult(leg.status, handle, output, attr, expiry, leg.input_after)

    def complete_auth_token(
        self, context: SecHandle | None, token: bytes | Sequence[SecBuffer] | None
    ) -> SecStatus:
        _check_handle(context, "context")
        buffers = as_buffers(token, "token")
        with self._lock:
            if self._entry is not None:
                self._entry.on_api_entry()
            record = self._live_context(context)
            if record is None:
                status = self._why(_INVALID_HANDLE, "CAT-004", self._handle_rule(context, _CTX))
            elif buffers is None:
                status = self._why(SecStatus.SEC_E_INVALID_TOKEN, "CAT-003")
            else:
                step = context_step(record.state, Call.COMPLETE_AUTH_TOKEN)
                self._why(None, *step.rules)
                status = _sec(step.status) if isinstance(step, Refusal) else _OK
            self._emit(Call.COMPLETE_AUTH_TOKEN, {"context": context, "token": buffers}, status)
        return status

    def delete_security_context(self, context: SecHandle | None) -> SecStatus:
        if context.__class__ is SecHandle and self._stale_fast:
            # A handle this instance issued and has since deleted, told from its bits alone:
            # the whole answer of the path below (DEL-003/DEL-004), without its function calls.
            # Only single-threaded, unobserved instances with a quiet scheduler come here.
            lower = context.lower
            if (
                lower not in self._contexts  # first: a live handle leaves at once
                and context.upper is self._ctx_upper
                and self._ctx_base < lower < self._ctx_limit
            ):
                self.last_rules = self._retired_rules
                return self._retired_status
        if context.__class__ is not SecHandle:
            _check_handle(context, "context")
        held = self._held
        if held is not None:
            held.acquire()
        try:
            if self._entry is not None:
                self._entry.on_api_entry()
            status = self._delete(context)
            if self._observer is not None:
                self._emit(Call.DELETE_SECURITY_CONTEXT, {"context": context}, status)
        finally:
            if held is not None:
                held.release()
        return status

    def _delete(self, context: SecHandle | None) -> SecStatus:
        record = None if context is None else self._contexts.get(context.lower)
        if record is not None and record.handle.upper == context.upper:  # type: ignore[union-attr]
            self._release_context(record)
            self.last_rules = _DELETED_RULES
            return _OK
        handle_class = self.classify(context, _CTX)
        if handle_class is HandleClass.RETIRED:
            status = self._profile.delete_already_deleted
            return self._why(status, "DEL-003" if status == _OK else "DEL-004")
        if context is not None and self._profile.delete_unknown_is_success:
            return self._why(_OK, "DEL-005", self._handle_rule(context, _CTX))
        return self._why(_INVALID_HANDLE, "DEL-002", self._handle_rule(context, _CTX))

    def query_context_attributes(
        self, context: SecHandle | None, attribute: int
    ) -> QueryContextAttributesResult:
        _check_handle(context, "context")
        _check_int(attribute, "attribute")
        with self._lock:
            if self._entry is not None:
                self._entry.on_api_entry()
            result = self._query(context, attribute)
            self._emit(
                Call.QUERY_CONTEXT_ATTRIBUTES, {"context": context, "attribute": attribute}, result
            )
        return result

    def _query(self, context: SecHandle | None, attribute: int) -> QueryContextAttributesResult:
        record = self._live_context(context)
        if record is None:
            self._why(None, self._handle_rule(context, _CTX))
            return QueryContextAttributesResult(_INVALID_HANDLE)
        step = context_step(record.state, Call.QUERY_CONTEXT_ATTRIBUTES)
        if isinstance(step, Refusal):
            self._why(None, *step.rules)
            return QueryContextAttributesResult(_sec(step.status))
        if attribute == SecPkgAttr.SECPKG_ATTR_PACKAGE_INFO:
            self._why(None, "QCA-005")
            return QueryContextAttributesResult(
                _OK, ContextPackageInfo(record.package.info, self._allocate("SecPkgInfo"))
            )
        if attribute not in _QUERYABLE:
            self._why(None, "QCA-003")
            return QueryContextAttributesResult(SecStatus.SEC_E_UNSUPPORTED_FUNCTION)
        if record.state is not CtxState.ESTABLISHED:
            self._why(None, "QCA-002")
            return QueryContextAttributesResult(_INVALID_HANDLE)
        self._why(None, *step.rules)
        if attribute == SecPkgAttr.SECPKG_ATTR_SIZES:
            return QueryContextAttributesResult(_OK, record.session.sizes())
        if attribute == SecPkgAttr.SECPKG_ATTR_NAMES:
            names = ContextNames(record.session.user_name, self._allocate("user name"))
            return QueryContextAttributesResult(_OK, names)
        if attribute == SecPkgAttr.SECPKG_ATTR_LIFESPAN:
            return QueryContextAttributesResult(_OK, ContextLifespan(0, TIMESTAMP_NEVER))
        stream_sizes = getattr(record.session, "stream_sizes", None)
        if stream_sizes is None:
            self._why(None, "QCA-004")
            return QueryContextAttributesResult(SecStatus.SEC_E_UNSUPPORTED_FUNCTION)
        return QueryContextAttributesResult(_OK, stream_sizes())


_CRED, _CTX = _CREDENTIAL_KIND, _CONTEXT_KIND
_DELETED_RULES = ("DEL-001",)
_FREED_RULES = ("FCH-001",)
_FREED_IN_USE_RULES = ("FCH-001", "FCH-003")
_ZEROED = SecHandle(0, 0)
_HANDLE_CLASS_RULES = {
    HandleClass.NULL: "HDL-005",
    HandleClass.RETIRED: "HDL-003",
    HandleClass.FOREIGN: "HDL-004",
    HandleClass.WRONG_KIND: "HDL-008",
}
_S = TypeVar("_S")

_QUERYABLE = frozenset(
    {
        SecPkgAttr.SECPKG_ATTR_SIZES,
        SecPkgAttr.SECPKG_ATTR_NAMES,
        SecPkgAttr.SECPKG_ATTR_LIFESPAN,
        SecPkgAttr.SECPKG_ATTR_STREAM_SIZES,
    }
)


def _sec(status: SecStatus | NtStatus) -> SecStatus:
    assert isinstance(status, SecStatus), "the synchronous tables refuse with SECURITY_STATUS"
    return status


def _next_context_state(step: Transition, outcome: LegOutcome, current: CtxState) -> CtxState:
    state = step.next.get(outcome, current)
    assert isinstance(state, CtxState)
    return state


_NEW, _ESTABLISHED, _REJECTED = CtxState.NEW, CtxState.ESTABLISHED, LegOutcome.REJECTED
_NEW_VALUE = CtxState.NEW.value
_FIRST_ISC = context_step(_NEW, _ISC_CALL)
_FIRST_ASC = context_step(_NEW, _ASC_CALL)
assert isinstance(_FIRST_ISC, Transition) and isinstance(_FIRST_ASC, Transition)
# The lifecycle table's ISC/ASC entries keyed by enum *values*: hashing an Enum member runs a
# Python-level __hash__, and a leg looked up three of them.
_LEG_STEPS: dict[tuple[Any, Any], Transition | Refusal] = {}
_LEG_NEXT: dict[tuple[Any, Any, Any], CtxState] = {}
for _state in CtxState:
    for _call in (_ISC_CALL, _ASC_CALL):
        if (_state, _call) not in CONTEXT_TABLE:
            continue
        _step = context_step(_state, _call)
        _LEG_STEPS[(_state.value, _call.value)] = _step
        if isinstance(_step, Transition):
            for _outcome in LegOutcome:
                _next = _next_context_state(_step, _outcome, _state)
                _LEG_NEXT[(_state.value, _call.value, _outcome.value)] = _next
