"""The synchronous core: credential and context records of one process, over the tables.

API methods here resolve handles, ask a package for a leg where one is needed, and hand the
outcome to the lifecycle executor (lifecycle.decide / lifecycle.enter), which alone writes a
record's state. They know nothing of locks, schedulers or observers: sspi.Sspi wraps them in
its one envelope (envelope.py), and the async layer calls them through the SyncPort protocol
(async_layer.py) when a queued call completes.
"""

from __future__ import annotations

import copy
import itertools
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import attrs

from sspi_model import lifecycle
from sspi_model.arguments import (
    UNICODE_STRING_MAX_UNITS,
    check_handle,
    check_str,
    check_u32,
    unsendable_text,
)
from sspi_model.async_api import SspiMisuse
from sspi_model.buffers import NULL_DESCRIPTOR, NullDescriptor, SecBuffer, as_buffers, token_buffer
from sspi_model.constants import (
    ISC_REQ_ALLOCATE_MEMORY,
    SECPKG_NEGOTIATION_COMPLETE,
    SECPKG_NEGOTIATION_IN_PROGRESS,
    TIMESTAMP_NEVER,
    SecPkgAttr,
)
from sspi_model.handles import HandleClass, HandleKind, HandleMint, SecHandle
from sspi_model.lifecycle import (
    CONTEXT_TABLE,
    CREDENTIAL_TABLE,
    Call,
    CredState,
    CtxState,
    LegOutcome,
    MessageOutcome,
    Misuse,
    Refs,
    Refusal,
    Transition,
)
from sspi_model.packages.base import (
    AuthIdentity,
    Environment,
    LegResult,
    MessageLeg,
    Package,
    Session,
)
from sspi_model.profiles import Profile
from sspi_model.results import (
    AcquireCredentialsResult,
    ContextAttribute,
    ContextFlags,
    ContextLifespan,
    ContextNames,
    ContextNativeNames,
    ContextNegotiationInfo,
    ContextPackageInfo,
    EnumerateSecurityPackagesResult,
    MessageResult,
    PackageInfo,
    QueryContextAttributesResult,
    QueryCredentialsAttributesResult,
    QuerySecurityPackageInfoResult,
    SecurityContextResult,
)
from sspi_model.status import SecStatus

_UNITS = UNICODE_STRING_MAX_UNITS


def unsendable_credential(auth_data: Any) -> str | None:
    """Why explicit credentials cannot be carried by the packages' messages, or None (ROB-001):
    identity strings are UNICODE_STRINGs, a certificate subject a 16-bit-length UTF-8 field."""
    if isinstance(auth_data, AuthIdentity):
        user, domain, password = auth_data.user, auth_data.domain, auth_data.password
        if (
            user.isascii() and domain.isascii() and password.isascii()
            and len(user) <= _UNITS and len(domain) <= _UNITS and len(password) <= _UNITS
        ):
            return None  # the common case, told without a call per string (benchmarks/)
        for name in ("user", "domain", "password"):
            problem = unsendable_text(getattr(auth_data, name))
            if problem is not None:
                return f"AuthIdentity.{name} {problem}"
        return None
    if auth_data is None:
        return None
    # Schannel's structures are looked at only here, past NTLM's and the default's common
    # cases, so that `import sspi_model` does not load them (issue 9).
    from sspi_model.packages.schannel_creds import CALLER_STRUCTS, SchannelCred

    if isinstance(auth_data, SchannelCred) and auth_data.certificate is not None:
        problem = unsendable_text(auth_data.certificate.subject, 0xFFFF, "utf-8")
        if problem is not None:
            return f"Certificate.subject {problem}"
    elif isinstance(auth_data, CALLER_STRUCTS):  # SCHANNEL_CRED, SCH_CREDENTIALS (CRD-001)
        for certificate in auth_data.credentials:
            problem = unsendable_text(certificate.subject, 0xFFFF, "utf-8")
            if problem is not None:
                return f"Certificate.subject {problem}"
    return None


_VALID_USE_BITS = 0x1 | 0x2 | 0x10 | 0x20
_NEGOTIATE_ONLY_USE_BITS = 0x10 | 0x20
_BOTH_USE_BITS = 0x1 | 0x2
_OK = SecStatus.SEC_E_OK
_INVALID_HANDLE = SecStatus.SEC_E_INVALID_HANDLE
# Enum members used on hot paths, bound once: on Python 3.11 `Enum.MEMBER` goes through
# EnumType.__getattr__'s slow attribute hook (about ten times a global load).
_ISC_CALL = Call.INITIALIZE_SECURITY_CONTEXT
_ASC_CALL = Call.ACCEPT_SECURITY_CONTEXT
_DEL_CALL = Call.DELETE_SECURITY_CONTEXT
_NEW, _ESTABLISHED, _DELETED = CtxState.NEW, CtxState.ESTABLISHED, CtxState.DELETED
_RELEASED, _ORPHANED = CredState.RELEASED, CredState.ORPHANED
_REJECTED = LegOutcome.REJECTED
_CTX, _CRED = HandleKind.CONTEXT, HandleKind.CREDENTIAL
_ZEROED = SecHandle(0, 0)
_HANDLE_CLASS_RULES = {
    HandleClass.NULL: "HDL-005",
    HandleClass.RETIRED: "HDL-003",
    HandleClass.FOREIGN: "HDL-004",
    HandleClass.WRONG_KIND: "HDL-008",
}
_CONTEXT_INDEX = CONTEXT_TABLE.index  # by (state, call): see lifecycle.Table
_CONTEXT_STEP = CONTEXT_TABLE.plain  # the guard-less transitions alone
_CREDENTIAL_STEP = CREDENTIAL_TABLE.plain
_ACQUIRE = CREDENTIAL_TABLE.transition(CredState.NEW, Call.ACQUIRE_CREDENTIALS_HANDLE)
_FREE_CREDENTIAL = CREDENTIAL_TABLE.transition(CredState.LIVE, Call.FREE_CREDENTIALS_HANDLE)
_HELD, _LAST = Refs.HELD, Refs.LAST
_ACQUIRE_RULES = lifecycle.rules_of(_ACQUIRE)
_ACQUIRE_REJECTED_RULES = lifecycle.rules_of(_ACQUIRE, LegOutcome.REJECTED)
# The rules of each outcome, read from the table once (rules_of on every call showed in the
# handshake benchmark).
_FREE_CREDENTIAL_RULES = {
    outcome: lifecycle.rules_of(_FREE_CREDENTIAL, outcome) for outcome in (_HELD, _LAST)
}


_MSG_REJECTED, _RENEGOTIATE = MessageOutcome.REJECTED, MessageOutcome.RENEGOTIATE


def _renegotiate_in_place(
    received: tuple[SecBuffer, ...], buffers: tuple[SecBuffer, ...]
) -> tuple[SecBuffer, ...]:
    """SEC_I_RENEGOTIATE's buffers under the 2025 DecryptMessage page (SHD-011): the unread
    bytes (the last cbBuffer bytes of the input, the EXTRA buffer's count) stay in the DATA
    buffer, for the caller to retype to SECBUFFER_TOKEN; no EXTRA buffer comes back."""
    extra = next((b for b in buffers if b.base_type == 5), None)
    data = next((b.data for b in received if b.base_type == 1), b"")
    if extra is None or not extra.cb:
        return buffers
    unread = data[len(data) - extra.cb :]
    return tuple(
        SecBuffer(1, unread) if b.base_type == 1 else SecBuffer(0) if b.base_type == 5 else b
        for b in buffers
    )


def _written(
    outputs: tuple[SecBuffer, ...], token: SecBuffer, extra: tuple[SecBuffer, ...]
) -> tuple[SecBuffer, ...]:
    """The caller's output descriptor as a leg leaves it (BUF-006): the token in the first
    SECBUFFER_TOKEN buffer (or, with none, the first SECBUFFER_EMPTY one, retyped, as curl's
    ALLOCATE_MEMORY {EMPTY} expects; else appended), each extra output (an alert) in the first
    buffer of its type (dropped when the caller passed none), the rest as passed."""
    out = list(outputs)
    slot = next((i for i, b in enumerate(out) if b.base_type == 2), None)
    if slot is None:
        slot = next((i for i, b in enumerate(out) if b.base_type == 0), None)
    if slot is None:
        out.append(token)
    else:
        out[slot] = token
    for buffer in extra:
        place = next(
            (i for i, b in enumerate(out) if i != slot and b.base_type == buffer.base_type), None
        )
        if place is not None:
            out[place] = buffer
    return tuple(out)


def _raise_misuse(call: Call, misuse: Misuse) -> None:
    raise SspiMisuse(misuse.rule, misuse.message)


def _no_misuse(misuse: Misuse) -> None:  # pragma: no cover - the sync tables define none
    raise AssertionError(f"the synchronous tables define no misuse, got {misuse.rule}")


class _Credential:
    __slots__ = ("expiry", "handle", "material", "package", "refs", "state", "use")
    state: CredState  # written by lifecycle.enter alone

    def __init__(self, handle: SecHandle, package: Package, material: Any, use: int) -> None:
        self.handle = handle
        self.package = package
        self.material = material
        self.use = use
        self.refs = 0  # contexts built on this credential (FCH-003)
        self.expiry = TIMESTAMP_NEVER  # ACH-003
        lifecycle.enter(self, _ACQUIRE)  # CredState.NEW -> LIVE (ACH-001)


class _Context:
    __slots__ = (
        "attr",
        "credential",
        "handle",
        "is_client",
        "package",
        "session",
        "state",
        "target",
    )
    state: CtxState  # written by lifecycle.begin / lifecycle.enter alone
    handle: SecHandle  # issued once the first leg succeeds (LIF-001): unset before

    def __init__(self, credential: _Credential, session: Session, is_client: bool) -> None:
        self.credential = credential
        self.package = credential.package
        self.session = session
        self.is_client = is_client
        lifecycle.begin(self, CONTEXT_TABLE)  # CtxState.NEW: no handle exists yet
        self.attr = 0
        self.target: str | None = None  # the client's target name (SECPKG_ATTR_NATIVE_NAMES)


class SyncCore:
    """The synchronous SSPI of one simulated process: records, handles, packages, rules.

    `last_rules` holds the rule IDs that decided the last result; the async layer sets it too.
    """

    def __init__(
        self,
        env: Environment,
        packages: Sequence[Package],
        profile: Profile,
        mint: HandleMint,
        rotate_context_handles: bool = False,
    ) -> None:
        self.env = env
        self.profile = profile  # also sets the stale-delete answer (retired_delete)
        self.packages = tuple(packages)
        self.rotate_context_handles = rotate_context_handles
        self._by_name = {
            name.casefold(): package for package in self.packages for name in package.names()
        }
        self.mint = mint
        self.credentials: dict[int, _Credential] = {}
        self.contexts: dict[int, _Context] = {}
        self.orphans = 0
        self.allocations: dict[int, str] = {}
        self._allocation_ids = itertools.count(0x10000, 0x10)
        self.last_rules: tuple[str, ...] = ()
        # Undefined behaviour in a synchronous call (BUF-008): the async layer reports it.
        self.report_misuse: Callable[[Call, Misuse], None] = _raise_misuse
        # What the stale-delete fast path of Sspi needs: every context handle issued here has
        # upper == ctx_upper (one shared int) and ctx_base < lower < ctx_limit.
        self.ctx_upper = mint.upper(_CTX)
        self.ctx_base = mint.base(_CTX)
        self.ctx_limit = self.ctx_base + 1

    @property
    def profile(self) -> Profile:
        return self._profile

    @profile.setter
    def profile(self, profile: Profile) -> None:
        self._profile = profile
        status = profile.delete_already_deleted
        # DeleteSecurityContext on a handle this process deleted: the profile decides.
        self.retired_status = status
        self.retired_rules = ("DEL-003",) if status == _OK else ("DEL-004",)

    # -- handles -------------------------------------------------------------------------------

    def classify(self, handle: SecHandle | None, kind: HandleKind) -> HandleClass:
        """What `handle` is to this process, for a call expecting `kind`."""
        if handle is None:
            return HandleClass.NULL
        table: Mapping[int, Any] = self.credentials if kind is _CRED else self.contexts
        record = table.get(handle.lower)
        if record is not None and record.handle.upper == handle.upper:
            return HandleClass.LIVE
        return self.mint.classify_unlisted(handle, kind)

    def live_credential(self, handle: SecHandle | None) -> _Credential | None:
        if handle is None:
            return None
        record = self.credentials.get(handle.lower)
        return record if record is not None and record.handle.upper == handle.upper else None

    def live_context(self, handle: SecHandle | None) -> _Context | None:
        if handle is None:
            return None
        record = self.contexts.get(handle.lower)
        return record if record is not None and record.handle.upper == handle.upper else None

    def is_live_context(self, handle: SecHandle | None) -> bool:
        return self.live_context(handle) is not None

    def handle_rule(self, handle: SecHandle | None, kind: HandleKind) -> str:
        """The rule that names what is wrong with a handle that is not live."""
        handle_class = self.classify(handle, kind)
        if handle_class is HandleClass.NEVER_ISSUED and handle is not None:
            special = handle in (_ZEROED, SecHandle.invalid())
            return "HDL-006" if special else "HDL-007"
        return _HANDLE_CLASS_RULES.get(handle_class, "HDL-007")

    def state_of(self, handle: SecHandle | None, kind: HandleKind) -> CtxState | CredState | None:
        """The lifecycle state of a live handle's record (None for any other handle)."""
        record = self.live_credential(handle) if kind is _CRED else self.live_context(handle)
        return None if record is None else record.state

    def _refuse(self, status: SecStatus, *rules: str) -> SecStatus:
        self.last_rules = rules
        return status

    def _allocate(self, what: str) -> int:
        address = next(self._allocation_ids)
        self.allocations[address] = what
        return address

    # -- packages ------------------------------------------------------------------------------

    def find_package(self, name: str | None) -> Package | None:
        return None if name is None else self._by_name.get(name.casefold())  # PKG-004

    def package_named(self, name: str | None) -> PackageInfo | None:
        package = self.find_package(name)
        return None if package is None else package.info

    def package_of(
        self, credential: SecHandle | None, context: SecHandle | None
    ) -> PackageInfo | None:
        """The package a call on these handles would run in (None when neither is live)."""
        record = self.live_context(context) if context is not None else None
        if record is not None:
            return record.package.info
        cred = self.live_credential(credential)
        return cred.package.info if cred is not None else None

    def enumerate_security_packages(self) -> EnumerateSecurityPackagesResult:
        self.last_rules = ("PKG-001",)
        return EnumerateSecurityPackagesResult(
            _OK, tuple(p.info for p in self.packages), self._allocate("SecPkgInfo[]")
        )

    def query_security_package_info(self, name: str | None) -> QuerySecurityPackageInfoResult:
        package = self.find_package(name)
        if package is None:
            self.last_rules = ("PKG-002",)
            return QuerySecurityPackageInfoResult(SecStatus.SEC_E_SECPKG_NOT_FOUND)
        self.last_rules = ("PKG-001",)
        return QuerySecurityPackageInfoResult(_OK, package.info, self._allocate("SecPkgInfo"))

    def free_context_buffer(self, buffer: int | None) -> SecStatus:
        if buffer is None:
            return self._refuse(_OK, "FCB-002")
        if self.allocations.pop(buffer, None) is not None:
            return self._refuse(_OK, "FCB-001")
        return self._refuse(_INVALID_HANDLE, "FCB-003")

    # -- credentials ---------------------------------------------------------------------------

    def acquire(
        self, package_name: str | None, use: int, auth_data: Any, principal: str | None
    ) -> AcquireCredentialsResult:
        package = self.find_package(package_name)
        if package is None:
            self.last_rules = ("ACH-002",)
            return AcquireCredentialsResult(SecStatus.SEC_E_SECPKG_NOT_FOUND)
        # ACH-008: AUTOLOGON_RESTRICTED / PROCESS_POLICY_ONLY are Negotiate's alone.
        negotiate_bits_ok = not use & _NEGOTIATE_ONLY_USE_BITS or package.info.name == "Negotiate"
        if not use & _BOTH_USE_BITS or use & ~_VALID_USE_BITS or not negotiate_bits_ok:
            self.last_rules = ("ACH-004",)
            return AcquireCredentialsResult(SecStatus.SEC_E_UNKNOWN_CREDENTIALS)
        if auth_data is not None and unsendable_credential(auth_data) is not None:
            # ROB-001: refused here, not mid-handshake when a package encodes the string.
            self.last_rules = ("ROB-001",)
            return AcquireCredentialsResult(SecStatus.SEC_E_UNKNOWN_CREDENTIALS)
        status, material, rules = package.acquire(use, principal, auth_data, self.env)
        if status != _OK:  # the package refused: CredState.NEW stays, no handle
            self.last_rules = (*_ACQUIRE_REJECTED_RULES, *rules)
            return AcquireCredentialsResult(status)
        handle = self.mint.issue(_CRED)
        record = _Credential(handle, package, material, use)
        self.credentials[handle.lower] = record
        self.last_rules = (*_ACQUIRE_RULES, *rules)
        return AcquireCredentialsResult(_OK, handle, record.expiry)

    def free_credential(self, handle: SecHandle | None) -> SecStatus:
        record = self.live_credential(handle)
        if record is None:
            return self._refuse(_INVALID_HANDLE, "FCH-002", self.handle_rule(handle, _CRED))
        outcome = _HELD if record.refs else _LAST
        state = lifecycle.enter(record, _FREE_CREDENTIAL, outcome)
        del self.credentials[record.handle.lower]
        if state is _ORPHANED:
            self.orphans += 1  # contexts keep it alive (FCH-003)
        self.last_rules = _FREE_CREDENTIAL_RULES[outcome]
        return _OK

    def query_credential(
        self, handle: SecHandle | None, attribute: int
    ) -> QueryCredentialsAttributesResult:
        """QueryCredentialsAttributes: the table checks the attribute, the package answers."""
        record = self.live_credential(handle)
        if record is None:
            self.last_rules = ("ATT-020", self.handle_rule(handle, _CRED))
            return QueryCredentialsAttributesResult(_INVALID_HANDLE)
        entry = CREDENTIAL_TABLE.entry(record.state, Call.QUERY_CREDENTIALS_ATTRIBUTES)
        step = lifecycle.decide(entry, record, attribute, _no_misuse)
        if isinstance(step, Refusal):
            self.last_rules = step.rules
            return QueryCredentialsAttributesResult(step.status)  # type: ignore[arg-type]
        assert isinstance(step, Transition)
        lifecycle.enter(record, step)
        answer = getattr(record.package, "credential_attribute", None)
        payload = None if answer is None else answer(record.material, attribute, self._allocate)
        if payload is None:  # this package does not answer it (ATT-021)
            self.last_rules = (*step.rules, "ATT-021")
            return QueryCredentialsAttributesResult(SecStatus.SEC_E_UNSUPPORTED_FUNCTION)
        self.last_rules = step.rules
        return QueryCredentialsAttributesResult(_OK, payload)

    def _drop_reference(self, credential: _Credential) -> tuple[str, ...]:
        """A context of `credential` was deleted (FCH-003, FCH-004): the rules it applied."""
        credential.refs -= 1
        outcome = _HELD if credential.refs else _LAST
        entry = _CREDENTIAL_STEP[(credential.state, _DEL_CALL)]
        if lifecycle.enter(credential, entry, outcome) is _RELEASED:
            self.orphans -= 1
        return entry.rules

    # -- security contexts ---------------------------------------------------------------------

    def leg(
        self,
        call: Call,
        credential: SecHandle | None,
        context: SecHandle | None,
        target_name: str | None,
        context_req: int,
        input: bytes | Sequence[SecBuffer] | None,
        output: Sequence[SecBuffer] | NullDescriptor | None,
        target_data_rep: int = 0x10,
    ) -> SecurityContextResult:
        """One ISC (`call` INITIALIZE_SECURITY_CONTEXT) or ASC leg, arguments checked here.

        The `__class__` tests are the common case, checked without a call (benchmarks/)."""
        if credential is not None and credential.__class__ is not SecHandle:
            check_handle(credential, "credential")
        if context is not None and context.__class__ is not SecHandle:
            check_handle(context, "context")
        if context_req.__class__ is not int or not 0 <= context_req <= 0xFFFFFFFF:
            check_u32(context_req, "context_req")
        if target_data_rep.__class__ is not int or not 0 <= target_data_rep <= 0xFFFFFFFF:
            check_u32(target_data_rep, "target_data_rep")
        if target_name is not None and target_name.__class__ is not str:
            check_str(target_name, "target_name")
        inputs = None if input is None else as_buffers(input, "input")
        if input is not None and input.__class__ is not bytes and lifecycle.overruns(call, inputs):
            # Only explicit buffers can claim more than they hold; bytes skip the walk (BUF-008).
            self.report_misuse(call, lifecycle.INPUT_OVERRUN)
        # NULL_DESCRIPTOR (pOutput NULL) is the empty descriptor that nothing can be written to.
        null_output = output is NULL_DESCRIPTOR
        outputs = (
            None if output is None else () if null_output else as_buffers(output, "output")  # type: ignore[arg-type]
        )
        is_client = call is _ISC_CALL
        if context is None:
            return self._first_leg(
                call, is_client, credential, target_name, context_req, inputs, outputs, null_output
            )
        record = self.contexts.get(context.lower)
        if record is not None and record.handle.upper != context.upper:
            record = None
        if record is None or record.is_client != is_client:
            rule = "ISC-003" if is_client else "ASC-003"
            return SecurityContextResult(
                self._refuse(_INVALID_HANDLE, rule, self.handle_rule(context, _CTX))
            )
        new_credential = None
        if credential is not None:
            # A continuation leg may omit the credential; one it names must be live (ISC-009).
            new_credential = self.live_credential(credential)
            if new_credential is None:
                status = self._refuse(
                    _INVALID_HANDLE, "ISC-009", self.handle_rule(credential, _CRED)
                )
                return SecurityContextResult(status)
        step = _CONTEXT_INDEX.get((record.state, call))
        if step.__class__ is not Transition or step.guards:
            step = lifecycle.decide(step, record, inputs, _no_misuse)  # guards, refusals
        if step.__class__ is Refusal:
            assert isinstance(step, Refusal)
            self.last_rules = step.rules
            return SecurityContextResult(step.status)  # type: ignore[arg-type]
        assert isinstance(step, Transition)
        snapshot = copy.copy(record.session) if outputs is not None else None
        use_credential = getattr(record.session, "use_credential", None)
        same_package = new_credential is not None and new_credential.package is record.package
        if use_credential is not None and same_package:  # only after every refusal (LIF-005)
            use_credential(new_credential.material)  # type: ignore[union-attr]
        if step.effect is not None:
            record.session.restart()  # ISC-007: reauthentication starts a new exchange
        leg = record.session.step(inputs, context_req)
        self.last_rules = (*step.rules, *leg.rules)
        if outputs is not None:
            too_small = self._output_too_small(leg, context_req, outputs, null_output)
            if too_small is not None:
                record.session = snapshot  # type: ignore[assignment]  # BUF-002: as it was
                return too_small
        state = lifecycle.enter(record, step, leg.outcome)
        if leg.outcome is not _REJECTED:
            record.attr = leg.context_attr
            if self.rotate_context_handles:
                self._rotate(record)
        return self._context_result(record.handle, leg, context_req, state, outputs)

    def _rotate(self, record: _Context) -> None:
        """A new handle value for a context on every continuation leg (ROT-001): the old one
        is retired, as Chromium's MockSSPILibrary does to catch stale copies."""
        del self.contexts[record.handle.lower]
        record.handle = self.mint.issue(_CTX)
        self.contexts[record.handle.lower] = record
        self.ctx_limit = record.handle.lower + 1

    def _first_leg(
        self,
        call: Call,
        is_client: bool,
        credential: SecHandle | None,
        target_name: str | None,
        context_req: int,
        inputs: tuple[SecBuffer, ...] | None,
        outputs: tuple[SecBuffer, ...] | None,
        null_output: bool = False,
    ) -> SecurityContextResult:
        cred = self.live_credential(credential)
        if cred is None:
            rule = "ISC-004" if is_client else "ASC-005"
            return SecurityContextResult(
                self._refuse(_INVALID_HANDLE, rule, self.handle_rule(credential, _CRED))
            )
        package = cred.package
        allowed = package.can_initiate(cred.use) if is_client else package.can_accept(cred.use)
        if not allowed:
            rule = "ISC-005" if is_client else "ASC-006"
            return SecurityContextResult(self._refuse(SecStatus.SEC_E_NO_CREDENTIALS, rule))
        session: Session = (
            package.new_client(cred.material, target_name, self.env)
            if is_client
            else package.new_server(cred.material, self.env)
        )
        record = _Context(cred, session, is_client)
        record.target = target_name
        step = _CONTEXT_STEP[(_NEW, call)]
        leg = session.step(inputs, context_req)
        self.last_rules = (*step.rules, *leg.rules)
        if outputs is not None:
            too_small = self._output_too_small(leg, context_req, outputs, null_output)
            if too_small is not None:
                return too_small
        state = lifecycle.enter(record, step, leg.outcome)
        if state is _NEW:
            # LIF-001: a failed first leg returns no handle.
            return SecurityContextResult(
                leg.status, input_after=leg.input_after, output=leg.extra_output
            )
        handle = record.handle = self.mint.issue(_CTX)
        record.attr = leg.context_attr
        cred.refs += 1
        reference = _CREDENTIAL_STEP[(cred.state, call)]  # FCH-003: a reference taken
        lifecycle.enter(cred, reference)
        self.last_rules += reference.rules
        self.contexts[handle.lower] = record
        self.ctx_limit = handle.lower + 1  # after the insertion (see Sspi.delete_security_context)
        return self._context_result(handle, leg, context_req, state, outputs)

    def _output_too_small(
        self,
        leg: LegResult,
        context_req: int,
        outputs: tuple[SecBuffer, ...],
        null_output: bool = False,
    ) -> SecurityContextResult | None:
        if null_output and leg.token:  # BUF-005: nowhere to write it, allocated or not
            return SecurityContextResult(
                self._refuse(SecStatus.SEC_E_BUFFER_TOO_SMALL, "BUF-005", "LIF-005")
            )
        if context_req & ISC_REQ_ALLOCATE_MEMORY:
            return None
        for buffer in outputs:
            if buffer.base_type == 2:  # SECBUFFER_TOKEN
                if len(leg.token) > buffer.cb:
                    return SecurityContextResult(
                        self._refuse(SecStatus.SEC_E_BUFFER_TOO_SMALL, "BUF-002", "LIF-005")
                    )
                return None
        if leg.token:  # no TOKEN buffer at all
            return SecurityContextResult(
                self._refuse(SecStatus.SEC_E_BUFFER_TOO_SMALL, "BUF-002", "LIF-005")
            )
        return None

    def _context_result(
        self,
        handle: SecHandle,
        leg: LegResult,
        context_req: int,
        state: Any,
        outputs: tuple[SecBuffer, ...] | None = None,
    ) -> SecurityContextResult:
        attr = leg.context_attr
        allocation = None
        if context_req & ISC_REQ_ALLOCATE_MEMORY and leg.token:
            allocation = self._allocate("output token")  # BUF-001
            attr |= 0x100  # ISC_RET_ALLOCATED_MEMORY == ASC_RET_ALLOCATED_MEMORY
        if outputs:
            output = _written(outputs, token_buffer(leg.token, allocation), leg.extra_output)
        else:
            # BUF-003: with no output buffers, a fresh SECBUFFER_TOKEN of exactly the token's size.
            output = (token_buffer(leg.token, allocation), *leg.extra_output)
        expiry = TIMESTAMP_NEVER if state is _ESTABLISHED else None  # ISC-006
        return SecurityContextResult(leg.status, handle, output, attr, expiry, leg.input_after)

    def complete_auth_token(
        self, context: SecHandle | None, buffers: tuple[SecBuffer, ...] | None
    ) -> SecStatus:
        record = self.live_context(context)
        if record is None:
            return self._refuse(_INVALID_HANDLE, "CAT-004", self.handle_rule(context, _CTX))
        if buffers is None:
            return self._refuse(SecStatus.SEC_E_INVALID_TOKEN, "CAT-003")
        step = lifecycle.decide(
            CONTEXT_TABLE.entry(record.state, Call.COMPLETE_AUTH_TOKEN), record, buffers, _no_misuse
        )
        if isinstance(step, Refusal):
            return self._refuse(step.status, *step.rules)  # type: ignore[arg-type]
        assert isinstance(step, Transition)
        lifecycle.enter(record, step)
        self.last_rules = step.rules
        return _OK

    # -- message functions and control tokens ----------------------------------------------------

    def message(
        self, call: Call, context: SecHandle | None, buffers: tuple[SecBuffer, ...] | None, qop: int
    ) -> MessageResult:
        """MakeSignature, VerifySignature, EncryptMessage or DecryptMessage (`call`): the table
        decides whether the context's state allows it, the package does the rest."""
        return self._context_call(call, context, buffers, qop)

    def apply_control_token(
        self, context: SecHandle | None, buffers: tuple[SecBuffer, ...] | None
    ) -> MessageResult:
        return self._context_call(Call.APPLY_CONTROL_TOKEN, context, buffers, 0)

    def _context_call(
        self, call: Call, context: SecHandle | None, buffers: tuple[SecBuffer, ...] | None, qop: int
    ) -> MessageResult:
        record = self.live_context(context)
        if record is None:  # never issued, deleted, of another process (MSG-005)
            self.last_rules = ("MSG-005", self.handle_rule(context, _CTX))
            return MessageResult(_INVALID_HANDLE)
        entry = CONTEXT_TABLE.entry(record.state, call)
        report = self.report_misuse  # a descriptor that overruns its memory (BUF-008)
        step = lifecycle.decide(entry, record, (call, buffers), lambda found: report(call, found))
        if isinstance(step, Refusal):
            self.last_rules = step.rules
            status = lifecycle.refusal_status(step, self.profile)
            return MessageResult(status, buffers or ())
        assert isinstance(step, Transition)
        if buffers is None:  # a NULL pMessage / pInput: no descriptor to work on (MSG-011)
            leg = MessageLeg(SecStatus.SEC_E_INVALID_TOKEN, _MSG_REJECTED, (), rules=("MSG-011",))
        else:
            leg = self._package_message(record, call, buffers, qop)
        lifecycle.enter(record, step, leg.outcome)
        decided = lifecycle.rules_of(step, leg.outcome)
        self.last_rules = (*decided, *(rule for rule in leg.rules if rule not in decided))
        return MessageResult(leg.status, leg.buffers, leg.qop)

    def _package_message(
        self, record: _Context, call: Call, buffers: tuple[SecBuffer, ...], qop: int
    ) -> MessageLeg:
        if call is Call.APPLY_CONTROL_TOKEN:
            control = getattr(record.session, "apply_control_token", None)
            if control is None:  # "supported only by the Schannel SSP" (SHD-010)
                status = SecStatus.SEC_E_UNSUPPORTED_FUNCTION
                return MessageLeg(status, _MSG_REJECTED, buffers, rules=("SHD-010",))
            leg: MessageLeg = control(buffers)
            return leg
        protect = getattr(record.session, "message", None)
        if protect is None:  # a package without message support (MSG-005)
            status = SecStatus.SEC_E_UNSUPPORTED_FUNCTION
            return MessageLeg(status, _MSG_REJECTED, buffers, rules=("MSG-005",))
        leg = protect(call, buffers, qop)
        if leg.outcome is _RENEGOTIATE and not self.profile.renegotiate_returns_extra:
            # SHD-011: the post-handshake record stays in DATA as DecryptMessage left it.
            leg = attrs.evolve(leg, buffers=_renegotiate_in_place(buffers, leg.buffers))
        return leg

    def delete(self, context: SecHandle | None) -> SecStatus:
        record = None if context is None else self.contexts.get(context.lower)
        if record is not None and record.handle.upper == context.upper:  # type: ignore[union-attr]
            step = _CONTEXT_STEP[(record.state, _DEL_CALL)]
            lifecycle.enter(record, step)  # -> DELETED (DEL-001)
            del self.contexts[record.handle.lower]
            self.last_rules = (*step.rules, *self._drop_reference(record.credential))
            return _OK
        handle_class = self.classify(context, _CTX)
        if handle_class is HandleClass.RETIRED:  # DEL-003 / DEL-004
            self.last_rules = self.retired_rules
            return self.retired_status
        if context is not None and self.profile.delete_unknown_is_success:
            return self._refuse(_OK, "DEL-005", self.handle_rule(context, _CTX))
        return self._refuse(_INVALID_HANDLE, "DEL-002", self.handle_rule(context, _CTX))

    def query(self, context: SecHandle | None, attribute: int) -> QueryContextAttributesResult:
        record = self.live_context(context)
        if record is None:
            self.last_rules = (self.handle_rule(context, _CTX),)
            return QueryContextAttributesResult(_INVALID_HANDLE)
        step = lifecycle.decide(
            CONTEXT_TABLE.entry(record.state, Call.QUERY_CONTEXT_ATTRIBUTES),
            record,
            attribute,
            _no_misuse,
        )
        if isinstance(step, Refusal):
            self.last_rules = step.rules
            return QueryContextAttributesResult(step.status)  # type: ignore[arg-type]
        assert isinstance(step, Transition)
        lifecycle.enter(record, step)
        self.last_rules = step.rules
        if attribute == SecPkgAttr.SECPKG_ATTR_PACKAGE_INFO:
            self.last_rules = (*step.rules, "QCA-005")
            info = ContextPackageInfo(record.package.info, self._allocate("SecPkgInfo"))
            return QueryContextAttributesResult(_OK, info)
        if attribute == SecPkgAttr.SECPKG_ATTR_SIZES:
            return QueryContextAttributesResult(_OK, record.session.sizes())
        if attribute == SecPkgAttr.SECPKG_ATTR_NAMES:
            names = ContextNames(record.session.user_name, self._allocate("user name"))
            return QueryContextAttributesResult(_OK, names)
        if attribute == SecPkgAttr.SECPKG_ATTR_LIFESPAN:
            return QueryContextAttributesResult(_OK, ContextLifespan(0, TIMESTAMP_NEVER))
        payload = self._attribute(record, attribute)
        if payload is None:  # this package does not answer it (QCA-004)
            self.last_rules = ("QCA-004",)
            return QueryContextAttributesResult(SecStatus.SEC_E_UNSUPPORTED_FUNCTION)
        if isinstance(payload, SecStatus):  # the package has nothing to return (ATT-025)
            self.last_rules = (*step.rules, "ATT-025")
            return QueryContextAttributesResult(payload)
        return QueryContextAttributesResult(_OK, payload)

    def _attribute(self, record: _Context, attribute: int) -> ContextAttribute | SecStatus | None:
        """The attributes past SIZES / NAMES / LIFESPAN / PACKAGE_INFO (ATT rules); every
        variable-sized member is one allocation for FreeContextBuffer (ATT-007)."""
        session = record.session
        if attribute == SecPkgAttr.SECPKG_ATTR_NEGOTIATION_INFO:
            # ATT-001: the package chosen (Negotiate's mechanism), and whether it is settled.
            chosen = getattr(session, "mechanism", record.package.info)
            done = record.state is not CtxState.PARTIAL
            state = SECPKG_NEGOTIATION_COMPLETE if done else SECPKG_NEGOTIATION_IN_PROGRESS
            return ContextNegotiationInfo(chosen, state, self._allocate("SecPkgInfo"))
        if attribute == SecPkgAttr.SECPKG_ATTR_FLAGS:
            return ContextFlags(record.attr)  # ATT-003
        if attribute == SecPkgAttr.SECPKG_ATTR_STREAM_SIZES:
            stream_sizes = getattr(session, "stream_sizes", None)
            return None if stream_sizes is None else stream_sizes()
        if attribute == SecPkgAttr.SECPKG_ATTR_NATIVE_NAMES:
            native_names = getattr(session, "native_names", None)  # ATT-004
            if native_names is None:
                return None
            client, server = native_names(record.target, self.env.logon_user)
            return ContextNativeNames(
                client, server, self._allocate("client name"), self._allocate("server name")
            )
        query = getattr(session, "query_attribute", None)
        return None if query is None else query(attribute, self._allocate)
