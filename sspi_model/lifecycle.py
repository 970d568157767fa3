"""THE lifecycle tables, and the only code that writes lifecycle state.

One module owns the lifecycle: which call is legal in which state, where it leads for each
outcome, which rule says so, and what is refused or undefined. The model executes these
tables (`begin`, `enter` and `take` below are the only writers of a record's `state`), the
diagrams are drawn from them, and tests/test_table_conformance.py drives the model into every
entry by real calls and holds it to the entry.

An entry is one of:
* `Transition`: legal; `next` maps the call's outcome (decided by a package, by the record's
  references, or by the async layer) to the next state, and `rules` say why.
* `Refusal`: the status returned, state unchanged (LIF-005, ASY-008).
* `Misuse`: undefined behaviour. Strict mode raises SspiMisuse naming `rule`; with
  strict=False it is recorded and `then` says what the system does anyway.
Entries may carry `guards`: named predicates (PREDICATES below) checked in order; the first
that holds replaces the entry with its verdict. Special cases are guards, not branches in the
API methods.

Rule IDs are defined in specs/rules.toml.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Mapping, Sequence
from types import MappingProxyType
from typing import Any, TypeAlias

import attrs

from sspi_model.constants import SecPkgAttr
from sspi_model.status import NtStatus, SecStatus
from sspi_model.values import Value


class _Member(enum.Enum):
    """The lifecycle enums' common base: a repr that is valid Python (API-008) and the identity
    hash. Members are singletons compared by identity, so identity is a correct hash, and it is
    computed in C: the executor looks transitions up by these members on every call, where
    Enum's own hash (a Python-level hash of the name) showed in the profile (benchmarks/)."""

    __hash__ = object.__hash__

    def __repr__(self) -> str:
        return f"{type(self).__name__}.{self.name}"


class Call(_Member):
    """API calls, valued by their C names."""

    ENUMERATE_SECURITY_PACKAGES = "EnumerateSecurityPackagesW"
    QUERY_SECURITY_PACKAGE_INFO = "QuerySecurityPackageInfoW"
    ACQUIRE_CREDENTIALS_HANDLE = "AcquireCredentialsHandleW"
    FREE_CREDENTIALS_HANDLE = "FreeCredentialsHandle"
    INITIALIZE_SECURITY_CONTEXT = "InitializeSecurityContextW"
    ACCEPT_SECURITY_CONTEXT = "AcceptSecurityContext"
    COMPLETE_AUTH_TOKEN = "CompleteAuthToken"
    DELETE_SECURITY_CONTEXT = "DeleteSecurityContext"
    QUERY_CONTEXT_ATTRIBUTES = "QueryContextAttributesW"
    FREE_CONTEXT_BUFFER = "FreeContextBuffer"
    # The message functions and the control token (sspi.h).
    MAKE_SIGNATURE = "MakeSignature"
    VERIFY_SIGNATURE = "VerifySignature"
    ENCRYPT_MESSAGE = "EncryptMessage"
    DECRYPT_MESSAGE = "DecryptMessage"
    APPLY_CONTROL_TOKEN = "ApplyControlToken"
    QUERY_CREDENTIALS_ATTRIBUTES = "QueryCredentialsAttributesW"
    # The asynchronous API.
    CREATE_ASYNC_CONTEXT = "SspiCreateAsyncContext"
    FREE_ASYNC_CONTEXT = "SspiFreeAsyncContext"
    REINIT_ASYNC_CONTEXT = "SspiReinitAsyncContext"
    SET_ASYNC_NOTIFY_CALLBACK = "SspiSetAsyncNotifyCallback"
    ASYNC_CONTEXT_REQUIRES_NOTIFY = "SspiAsyncContextRequiresNotify"
    GET_ASYNC_CALL_STATUS = "SspiGetAsyncCallStatus"
    ACQUIRE_CREDENTIALS_HANDLE_ASYNC = "SspiAcquireCredentialsHandleAsyncW"
    INITIALIZE_SECURITY_CONTEXT_ASYNC = "SspiInitializeSecurityContextAsyncW"
    ACCEPT_SECURITY_CONTEXT_ASYNC = "SspiAcceptSecurityContextAsync"
    FREE_CREDENTIALS_HANDLE_ASYNC = "SspiFreeCredentialsHandleAsync"
    DELETE_SECURITY_CONTEXT_ASYNC = "SspiDeleteSecurityContextAsync"
    # Not an API call: the scheduler completing the pending call of an async context.
    COMPLETE = "completion"


class CredState(_Member):
    NEW = "new"  # before AcquireCredentialsHandle: no handle exists yet
    LIVE = "live"  # the handle is valid
    ORPHANED = "orphaned"  # the handle was freed; contexts still hold references (FCH-003)
    RELEASED = "released"  # no handle, no references: gone


class CtxState(_Member):
    NEW = "new"  # before the first ISC/ASC: no handle exists yet
    PARTIAL = "partial"  # at least one leg done, more expected
    ESTABLISHED = "established"
    FAILED = "failed"  # a decisive error on a later leg: only delete remains (LIF-003)
    # Schannel after the handshake (SHD rules): a post-handshake message was read and the
    # follow-up ISC/ASC is due; ApplyControlToken(SCHANNEL_SHUTDOWN) was applied; our
    # close_notify went out and the peer's is awaited; the peer's came first; both are done.
    RENEGOTIATING = "renegotiating"
    SHUTDOWN = "shutdown requested"
    CLOSING = "closing"
    PEER_CLOSED = "peer closed"
    CLOSED = "closed"
    ALERTING = "alert queued"  # ApplyControlToken(SCHANNEL_ALERT): the next ISC/ASC sends it
    DELETED = "deleted"  # the handle is retired


class AsyncState(_Member):
    NEW = "new"  # before SspiCreateAsyncContext
    FRESH = "fresh"  # created or reinitialised: status SEC_E_UNSUPPORTED_FUNCTION (ASY-002)
    PENDING = "pending"  # a call is queued and has not completed (ASY-005)
    COMPLETED = "completed"  # the call completed; its status is readable (ASY-006)
    FREED = "freed"  # SspiFreeAsyncContext: any further use is undefined (ASY-052)


class LegOutcome(_Member):
    """How an ISC/ASC leg leaves the context (a package decides it)."""

    CONTINUE = "continue"  # more legs follow (SEC_I_CONTINUE_NEEDED and kin)
    ESTABLISHED = "established"  # SEC_E_OK: the context is complete
    FAILED = "failed"  # a decisive error: the context is dead, only delete remains
    REJECTED = "rejected"  # the input was refused; the context is as it was, the leg may be retried


class MessageOutcome(_Member):
    """How a message call or ApplyControlToken leaves the context (a package decides it)."""

    DONE = "done"  # protected, verified or applied; the sequence numbers moved on
    REJECTED = "rejected"  # a bad message or descriptor: nothing changed (MSG-010)
    FAILED = "failed"  # a fatal record error: the TLS connection is dead (MSG-030)
    RENEGOTIATE = "renegotiate"  # SEC_I_RENEGOTIATE: a post-handshake message (SHD-001)
    PEER_CLOSED = "peer closed"  # SEC_I_CONTEXT_EXPIRED: the peer's close_notify (SHD-003)
    SHUTDOWN = "shutdown"  # ApplyControlToken(SCHANNEL_SHUTDOWN) applied (SHD-004)
    ALERT = "alert"  # ApplyControlToken(SCHANNEL_ALERT) queued an alert (SHD-014)


class Refs(_Member):
    """Whether contexts still reference a credential after the call (FCH-003, FCH-004)."""

    HELD = "references remain"
    LAST = "last reference"


class AsyncOutcome(_Member):
    """How an Sspi*Async call left its async context when it was not simply queued."""

    QUEUED = "queued"  # ASY-005, ASY-009: the scheduler completes it later
    REFUSED = "refused at queue time"  # ASY-008: status and state unchanged
    INLINE = "done inline"  # ASY-041: a delete with no LSA part, nothing queued


State: TypeAlias = CtxState | CredState | AsyncState
Outcome: TypeAlias = LegOutcome | MessageOutcome | Refs | AsyncOutcome | None


@attrs.frozen(repr=False, eq=False)
class Refusal(Value):
    """An illegal (state, call): the status returned, state unchanged. A `str` status names
    the Profile field that holds it (the sources disagree or are silent on the code)."""

    status: SecStatus | NtStatus | str
    rules: tuple[str, ...]


@attrs.frozen(repr=False, eq=False)
class Guard(Value):
    """A named predicate (PREDICATES[predicate]) and the verdict that replaces the entry
    when it holds."""

    predicate: str
    verdict: Refusal | Misuse


@attrs.frozen(repr=False, eq=False)
class Transition(Value):
    """A legal (state, call): the next state per outcome, and the rules that say so.

    `outcome_rules` add rules for one outcome; `effect` names work the owner of the record does
    when the transition is taken (see the owners' effect tables)."""

    next: Mapping[Outcome, State]
    rules: tuple[str, ...]
    guards: tuple[Guard, ...] = ()
    outcome_rules: Mapping[Outcome, tuple[str, ...]] = attrs.field(factory=dict)
    effect: str | None = None


@attrs.frozen(repr=False, eq=False)
class Misuse(Value):
    """Undefined behaviour: strict mode raises SspiMisuse naming `rule`. With strict=False the
    misuse is recorded and `then` is what happens anyway (the kernel has no check)."""

    rule: str
    message: str
    then: Transition | None = None
    guards: tuple[Guard, ...] = ()


Entry: TypeAlias = Transition | Refusal | Misuse


class Table:
    """One lifecycle table: (state, call) -> entry, read-only, with plain-dict views for the
    hot paths."""

    __slots__ = ("by_call", "entries", "index", "initial", "name", "plain", "states")

    def __init__(
        self,
        name: str,
        states: type[enum.Enum],
        initial: enum.Enum,
        entries: Mapping[tuple[Any, Call], Entry],
    ) -> None:
        self.name = name
        self.states = states
        self.initial = initial
        self.entries: Mapping[tuple[Any, Call], Entry] = MappingProxyType(dict(entries))
        # A plain dict of the same entries for the hot paths (members hash in C: _Member).
        self.index: dict[tuple[Any, Call], Entry] = dict(entries)
        # The guard-less Transitions alone: a hot path that indexes this dict where it knows the
        # entry is plain gets a KeyError, not a wrong step, if the table ever says otherwise.
        self.plain: dict[tuple[Any, Call], Transition] = {
            key: entry
            for key, entry in entries.items()
            if isinstance(entry, Transition) and not entry.guards
        }
        # The same plain Transitions by call, then state: take() finds one without building a
        # (state, call) key tuple.
        self.by_call: dict[Call, dict[Any, Transition]] = {call: {} for call in Call}
        for (state, call), entry in self.plain.items():
            self.by_call[call][state] = entry

    def __repr__(self) -> str:
        return f"<lifecycle table {self.name}: {len(self.entries)} entries>"

    def entry(self, state: enum.Enum, call: Call) -> Entry | None:
        return self.index.get((state, call))

    def transition(self, state: enum.Enum, call: Call) -> Transition:
        """The entry of a (state, call) the caller knows to be a plain Transition."""
        entry = self.index[(state, call)]
        assert isinstance(entry, Transition), (self.name, state, call, entry)
        return entry

    def __getitem__(self, key: tuple[Any, Call]) -> Entry:
        return self.entries[key]

    def __contains__(self, key: object) -> bool:
        return key in self.entries

    def items(self) -> Any:
        return self.entries.items()

    def keys(self) -> Any:
        return self.entries.keys()

    def __iter__(self) -> Any:
        return iter(self.entries)

    def __len__(self) -> int:
        return len(self.entries)


# -- the executor --------------------------------------------------------------------------------

MisuseHandler = Callable[[Misuse], None]


def decide(entry: Entry | None, record: Any, detail: Any, on_misuse: MisuseHandler) -> Entry | None:
    """Resolve an entry's guards and misuse to what happens now: a Transition, a Refusal, or
    None (no entry: the call neither depends on nor changes the state).

    `on_misuse` reports a Misuse (and raises in strict mode); when it returns, the system goes
    on as the kernel would: the misuse's `then`, or, for a guard's misuse without one, the
    entry the guard belongs to.
    """
    while entry is not None:
        if entry.__class__ is Refusal:
            return entry
        for guard in entry.guards:  # type: ignore[union-attr]
            if PREDICATES[guard.predicate](record, detail):
                verdict = guard.verdict
                if verdict.__class__ is Refusal:
                    return verdict
                assert isinstance(verdict, Misuse)
                on_misuse(verdict)
                if verdict.then is not None:
                    entry = verdict.then
                    break
        else:
            if entry.__class__ is Transition:
                return entry
            assert isinstance(entry, Misuse)
            on_misuse(entry)
            entry = entry.then
    return None


def begin(record: Any, table: Table, creation: Transition | None = None) -> None:
    """Give a new record its table's initial state (the state before the creating call), or,
    given the creating call's plain Transition out of it, the state that call leads to."""
    record.state = table.initial if creation is None else creation.next[None]


def enter(record: Any, transition: Transition, outcome: Outcome = None) -> State:
    """Take `transition` for `outcome`: the one place, with begin() and take(), a record's
    lifecycle state is written."""
    state = transition.next[outcome]
    record.state = state
    return state


def take(
    record: Any, table: Table, call: Call, detail: Any, on_misuse: MisuseHandler
) -> Transition | Refusal | None:
    """decide() then enter() for a call with one outcome (None), in one call: what the API
    methods whose (state, call) entries are mostly plain do on every call (benchmarks/).

    A plain (guard-less) Transition is entered at once: decide() would return it unchanged.
    Any other entry is decided as decide() does; a Transition it reaches is entered. Returns
    the Transition taken (its rules are the call's), or the Refusal or None that decide()
    returned, with nothing written."""
    step: Any = table.by_call[call].get(record.state)
    if step is None:
        step = decide(table.index.get((record.state, call)), record, detail, on_misuse)
        if step.__class__ is not Transition:
            return step  # type: ignore[no-any-return]
    record.state = step.next[None]
    return step  # type: ignore[no-any-return]


def rules_of(transition: Transition, outcome: Outcome = None) -> tuple[str, ...]:
    extra = transition.outcome_rules.get(outcome) if transition.outcome_rules else None
    return transition.rules if extra is None else (*transition.rules, *extra)


def refusal_status(refusal: Refusal, profile: Any) -> Any:
    """The status a refusal returns, read from the profile where the entry names a field."""
    status = refusal.status
    return getattr(profile, status) if isinstance(status, str) else status


def verdicts(entry: Entry) -> list[tuple[str, Entry]]:
    """Every verdict an entry can reach, with its path: the entry itself (""), each guard's
    verdict ("guard: NAME"), and each misuse's continuation ("then", "guard: NAME / then")."""
    found: list[tuple[str, Entry]] = []

    def walk(path: str, item: Entry) -> None:
        found.append((path, item))
        if isinstance(item, Refusal):
            return
        for guard in item.guards:
            walk(f"{path + ' / ' if path else ''}guard: {guard.predicate}", guard.verdict)
        if isinstance(item, Misuse) and item.then is not None:
            walk(f"{path + ' / ' if path else ''}then", item.then)

    walk("", entry)
    return found


# -- predicates of the guards --------------------------------------------------------------------
# Each takes (record, detail): the record the table governs and the call's detail (the
# argument or owner the predicate needs). The rule each guard enforces sits beside its entry.

_PACKAGE_INFO = int(SecPkgAttr.SECPKG_ATTR_PACKAGE_INFO)
# Every SecPkgAttr the model answers (on some package; QCA-004 for the others); AUTHORITY is
# named but not answered.
QUERYABLE_ATTRIBUTES = frozenset(
    int(attribute) for attribute in SecPkgAttr if attribute is not SecPkgAttr.SECPKG_ATTR_AUTHORITY
)
# Answered on a partial or failed context too: PACKAGE_INFO (QCA-005) and NEGOTIATION_INFO,
# which "can be queried ... before the setup is complete" (ATT-001).
PARTIAL_ATTRIBUTES = frozenset(
    {
        _PACKAGE_INFO,
        int(SecPkgAttr.SECPKG_ATTR_NEGOTIATION_INFO),
        # Schannel's client asks it after SEC_I_INCOMPLETE_CREDENTIALS, mid-handshake (ATT-026).
        int(SecPkgAttr.SECPKG_ATTR_ISSUER_LIST_EX),
    }
)
_PENDING_STATUS = int(SecStatus.SEC_I_ASYNC_CALL_PENDING)


def _input_given(record: Any, inputs: Any) -> bool:
    return inputs is not None


def _attribute_unknown(record: Any, attribute: Any) -> bool:
    return attribute not in QUERYABLE_ATTRIBUTES


def _attribute_needs_established(record: Any, attribute: Any) -> bool:
    return attribute not in PARTIAL_ATTRIBUTES


# QueryCredentialsAttributes: SECPKG_CRED_ATTR_NAMES and Schannel's three (ATT-020).
CREDENTIAL_ATTRIBUTES = frozenset({1, 0x56, 0x57, 0x58})


def _credential_attribute_unknown(record: Any, attribute: Any) -> bool:
    return attribute not in CREDENTIAL_ATTRIBUTES


def _callback_registered(record: Any, detail: Any) -> bool:
    return bool(record._callback is not None)


def _status_reads_pending(record: Any, detail: Any) -> bool:
    return bool(record._status == _PENDING_STATUS)


# The buffer types each message call reads (BUF-008); the others are written, so a capacity
# larger than the data is their ordinary shape (a TOKEN for the signature, a STREAM_HEADER).
_READ_BUFFERS: Mapping[Call, frozenset[int]] = {
    Call.MAKE_SIGNATURE: frozenset({1}),  # DATA
    Call.VERIFY_SIGNATURE: frozenset({1, 2, 10}),  # DATA, TOKEN, STREAM
    Call.ENCRYPT_MESSAGE: frozenset({1}),
    Call.DECRYPT_MESSAGE: frozenset({1, 2, 10}),
    Call.APPLY_CONTROL_TOKEN: frozenset({2}),  # the control token
    # ISC/ASC read their input token, channel bindings and ALPN list; an EMPTY input buffer is
    # where Schannel writes EXTRA, so its capacity is no claim.
    Call.INITIALIZE_SECURITY_CONTEXT: frozenset({2, 14, 18}),
    Call.ACCEPT_SECURITY_CONTEXT: frozenset({2, 14, 18}),
}


def _buffer_overruns(record: Any, detail: tuple[Call, Any]) -> bool:
    return overruns(*detail)


def overruns(call: Call, buffers: Sequence[Any] | None) -> bool:
    """A buffer the call reads claims more bytes (cbBuffer) than it holds: C would read past
    the end of pvBuffer, or through NULL when it holds none (BUF-008)."""
    read = _READ_BUFFERS.get(call, frozenset())
    return any(
        buffer.size is not None
        and buffer.size > len(buffer.data)
        and buffer.buffer_type & 0x0FFFFFFF in read
        for buffer in buffers or ()
    )


# An ISC/ASC input that overruns its memory (BUF-008), checked where the leg begins.
INPUT_OVERRUN = Misuse(
    "BUF-008", "an input buffer the leg reads has cbBuffer larger than the bytes it holds"
)


def _callback_required(record: Any, detail: tuple[Any, Call]) -> bool:
    profile, call = detail
    return (
        record._callback is None
        and call is not Call.DELETE_SECURITY_CONTEXT_ASYNC
        and profile.null_callback_only_for_delete
    )


PREDICATES: Mapping[str, Callable[[Any, Any], bool]] = MappingProxyType(
    {
        "input token given": _input_given,
        "attribute not modelled": _attribute_unknown,
        "attribute needs an established context": _attribute_needs_established,
        "credential attribute not modelled": _credential_attribute_unknown,
        "a callback is registered": _callback_registered,
        "the status reads SEC_I_ASYNC_CALL_PENDING": _status_reads_pending,
        "no callback where one is required": _callback_required,
        "a buffer overruns its memory": _buffer_overruns,
    }
)


# -- security contexts ---------------------------------------------------------------------------

_ISC, _ASC = Call.INITIALIZE_SECURITY_CONTEXT, Call.ACCEPT_SECURITY_CONTEXT
_QCA, _CAT = Call.QUERY_CONTEXT_ATTRIBUTES, Call.COMPLETE_AUTH_TOKEN
_DEL = Call.DELETE_SECURITY_CONTEXT

_LEG: dict[Outcome, State] = {
    LegOutcome.CONTINUE: CtxState.PARTIAL,
    LegOutcome.ESTABLISHED: CtxState.ESTABLISHED,
    LegOutcome.FAILED: CtxState.FAILED,
}
_FIRST_LEG: dict[Outcome, State] = {
    LegOutcome.CONTINUE: CtxState.PARTIAL,
    LegOutcome.ESTABLISHED: CtxState.ESTABLISHED,
    LegOutcome.FAILED: CtxState.NEW,  # a failed first leg returns no handle (LIF-001)
    LegOutcome.REJECTED: CtxState.NEW,
}
_UNSUPPORTED_ATTRIBUTE = Guard(
    "attribute not modelled", Refusal(SecStatus.SEC_E_UNSUPPORTED_FUNCTION, ("QCA-003",))
)
# A partial or failed context answers SECPKG_ATTR_PACKAGE_INFO only (QCA-005); the rest need
# the established context (QCA-002).
_PARTIAL_QUERY = Transition(
    {None: CtxState.PARTIAL},
    ("QCA-002",),
    guards=(
        _UNSUPPORTED_ATTRIBUTE,
        Guard(
            "attribute needs an established context",
            Refusal(SecStatus.SEC_E_INVALID_HANDLE, ("QCA-002",)),
        ),
    ),
)

# -- message functions, ApplyControlToken, and Schannel after the handshake -------------------

_MKS, _VFS = Call.MAKE_SIGNATURE, Call.VERIFY_SIGNATURE
_EMS, _DMS = Call.ENCRYPT_MESSAGE, Call.DECRYPT_MESSAGE
_ACT = Call.APPLY_CONTROL_TOKEN
MESSAGE_CALLS: tuple[Call, ...] = (_MKS, _VFS, _EMS, _DMS)
_DONE, _MSG_REJECTED = MessageOutcome.DONE, MessageOutcome.REJECTED
_MSG_FAILED, _RENEGOTIATE = MessageOutcome.FAILED, MessageOutcome.RENEGOTIATE
_PEER_CLOSED, _SHUTDOWN_OUTCOME = MessageOutcome.PEER_CLOSED, MessageOutcome.SHUTDOWN
_RENEGOTIATING, _SHUTDOWN = CtxState.RENEGOTIATING, CtxState.SHUTDOWN
_CLOSING, _PEER_CLOSED_STATE, _CLOSED = CtxState.CLOSING, CtxState.PEER_CLOSED, CtxState.CLOSED
_ALERTING = CtxState.ALERTING
_AFTER_HANDSHAKE = (_RENEGOTIATING, _SHUTDOWN, _CLOSING, _PEER_CLOSED_STATE, _CLOSED, _ALERTING)
# Which record state each message call can reach from ESTABLISHED: only DecryptMessage reads
# what the peer sent (a fatal record, a post-handshake message, a close_notify).
_PROTECT: dict[Outcome, State] = {_DONE: CtxState.ESTABLISHED, _MSG_REJECTED: CtxState.ESTABLISHED}
_DECRYPT_RULES: dict[Outcome, tuple[str, ...]] = {
    _MSG_FAILED: ("MSG-030",),
    _RENEGOTIATE: ("SHD-001",),
    _PEER_CLOSED: ("SHD-003",),
}
# No keys yet (a partial context, MSG-002) or none any more (MSG-003).
_NO_KEYS = Refusal("message_on_partial_status", ("MSG-002",))
_EXPIRED = Refusal(SecStatus.SEC_E_CONTEXT_EXPIRED, ("MSG-003",))
_CLOSED_RECORDS = Refusal(SecStatus.SEC_E_CONTEXT_EXPIRED, ("SHD-006",))
_STRAY_LEG = Refusal(SecStatus.SEC_I_CONTEXT_EXPIRED, ("SHD-007",))
# Every entry that hands the descriptor to the package checks it first (BUF-008): non-strict,
# the package gets it as it is, as the kernel would.
_OVERRUN = (
    Guard(
        "a buffer overruns its memory",
        Misuse("BUF-008", "a buffer the call reads has cbBuffer larger than the bytes it holds"),
    ),
)


def _control(state: CtxState) -> Transition:
    """ApplyControlToken where the package decides (SHD-008); SHUTDOWN is SHD-004."""
    return Transition(
        {_DONE: state, _MSG_REJECTED: state, _SHUTDOWN_OUTCOME: _SHUTDOWN},
        ("SHD-008",),
        outcome_rules={_SHUTDOWN_OUTCOME: ("SHD-004",)},
        guards=_OVERRUN,
    )


def _reading(state: CtxState, peer_closed: CtxState) -> Transition:
    """DecryptMessage while our side is shutting down: records still arrive (SHD-005)."""
    return Transition(
        {
            _DONE: state,
            _MSG_REJECTED: state,
            _MSG_FAILED: CtxState.FAILED,
            _PEER_CLOSED: peer_closed,
        },
        ("MSG-001", "SHD-005"),
        outcome_rules={_MSG_FAILED: ("MSG-030",), _PEER_CLOSED: ("SHD-003",)},
        guards=_OVERRUN,
    )


def _kept(state: CtxState) -> dict[tuple[Any, Call], Entry]:
    """QueryContextAttributes, CompleteAuthToken and the delete, as on an established context."""
    return {
        (state, _QCA): Transition({None: state}, ("QCA-001",), guards=(_UNSUPPORTED_ATTRIBUTE,)),
        (state, _CAT): Transition({None: state}, ("CAT-001",)),
        (state, _DEL): Transition({None: CtxState.DELETED}, ("DEL-001",)),
    }


_MESSAGE_ENTRIES: dict[tuple[Any, Call], Entry] = {
    **{(CtxState.PARTIAL, call): _NO_KEYS for call in (*MESSAGE_CALLS, _ACT)},
    **{(CtxState.FAILED, call): _EXPIRED for call in (*MESSAGE_CALLS, _ACT)},
    **{
        (CtxState.ESTABLISHED, call): Transition(_PROTECT, ("MSG-001",), guards=_OVERRUN)
        for call in (_MKS, _VFS, _EMS)
    },
    (CtxState.ESTABLISHED, _DMS): Transition(
        {
            **_PROTECT,
            _MSG_FAILED: CtxState.FAILED,
            _RENEGOTIATE: _RENEGOTIATING,
            _PEER_CLOSED: _PEER_CLOSED_STATE,
        },
        ("MSG-001",),
        outcome_rules=_DECRYPT_RULES,
        guards=_OVERRUN,
    ),
    # ApplyControlToken(SCHANNEL_ALERT) queues an alert for the next ISC/ASC (SHD-014).
    (CtxState.ESTABLISHED, _ACT): attrs.evolve(
        _control(CtxState.ESTABLISHED),
        next={**_control(CtxState.ESTABLISHED).next, MessageOutcome.ALERT: _ALERTING},
        outcome_rules={_SHUTDOWN_OUTCOME: ("SHD-004",), MessageOutcome.ALERT: ("SHD-014",)},
    ),
    # The queued alert goes out with the next ISC/ASC: a warning leaves the context established,
    # a fatal alert ends it; until then the record layer waits (SHD-014).
    **{
        (_ALERTING, call): Transition(
            {
                LegOutcome.ESTABLISHED: CtxState.ESTABLISHED,
                LegOutcome.FAILED: CtxState.FAILED,
                LegOutcome.REJECTED: _ALERTING,
            },
            ("SHD-014",),
        )
        for call in (_ISC, _ASC)
    },
    **{
        (_ALERTING, call): Refusal(SecStatus.SEC_E_OUT_OF_SEQUENCE, ("SHD-014",))
        for call in (*MESSAGE_CALLS, _ACT)
    },
    # SEC_I_RENEGOTIATE: the record layer waits for the follow-up ISC/ASC (SHD-002).
    **{
        (_RENEGOTIATING, call): Refusal(SecStatus.SEC_E_CONTEXT_EXPIRED, ("SHD-002",))
        for call in MESSAGE_CALLS
    },
    **{
        (_RENEGOTIATING, call): Transition(
            {
                LegOutcome.CONTINUE: _RENEGOTIATING,
                LegOutcome.ESTABLISHED: CtxState.ESTABLISHED,
                LegOutcome.FAILED: CtxState.FAILED,
                LegOutcome.REJECTED: _RENEGOTIATING,
            },
            ("SHD-002",),
        )
        for call in (_ISC, _ASC)
    },
    (_RENEGOTIATING, _ACT): _control(_RENEGOTIATING),
    # After ApplyControlToken(SCHANNEL_SHUTDOWN) one ISC/ASC produces the close_notify (SHD-005):
    # CONTINUE when the peer's close_notify is still to come, ESTABLISHED when it already came.
    **{
        (_SHUTDOWN, call): Transition(
            {
                LegOutcome.CONTINUE: _CLOSING,
                LegOutcome.ESTABLISHED: _CLOSED,
                LegOutcome.FAILED: CtxState.FAILED,
                LegOutcome.REJECTED: _SHUTDOWN,
            },
            ("SHD-005",),
        )
        for call in (_ISC, _ASC)
    },
    **{(_SHUTDOWN, call): _CLOSED_RECORDS for call in (_MKS, _VFS, _EMS)},
    (_SHUTDOWN, _DMS): _reading(_SHUTDOWN, _SHUTDOWN),
    (_SHUTDOWN, _ACT): _control(_SHUTDOWN),
    **{(_CLOSING, call): _CLOSED_RECORDS for call in (_MKS, _VFS, _EMS, _ACT)},
    (_CLOSING, _DMS): _reading(_CLOSING, _CLOSED),
    **{(_PEER_CLOSED_STATE, call): _CLOSED_RECORDS for call in MESSAGE_CALLS},
    (_PEER_CLOSED_STATE, _ACT): _control(_PEER_CLOSED_STATE),
    **{(_CLOSED, call): _CLOSED_RECORDS for call in (*MESSAGE_CALLS, _ACT)},
    # A stray ISC/ASC once our close_notify went out, or after the peer's (SHD-007).
    **{
        (state, call): _STRAY_LEG
        for state in (_CLOSING, _PEER_CLOSED_STATE, _CLOSED)
        for call in (_ISC, _ASC)
    },
    **{key: entry for state in _AFTER_HANDSHAKE for key, entry in _kept(state).items()},
}

CONTEXT_TABLE = Table(
    "security-context",
    CtxState,
    CtxState.NEW,
    {
        (CtxState.NEW, _ISC): Transition(_FIRST_LEG, ("ISC-001", "LIF-001")),
        (CtxState.NEW, _ASC): Transition(_FIRST_LEG, ("ASC-001", "LIF-001")),
        (CtxState.PARTIAL, _ISC): Transition(
            {**_LEG, LegOutcome.REJECTED: CtxState.PARTIAL}, ("ISC-002", "LIF-002")
        ),
        (CtxState.PARTIAL, _ASC): Transition(
            {**_LEG, LegOutcome.REJECTED: CtxState.PARTIAL}, ("ASC-002", "LIF-002")
        ),
        # ISC again on a complete context asks for reauthentication and starts a new exchange
        # (ISC-007); with an input token it is out of sequence (ISC-008). ASC again is out of
        # sequence (ASC-007).
        (CtxState.ESTABLISHED, _ISC): Transition(
            {**_LEG, LegOutcome.REJECTED: CtxState.ESTABLISHED},
            ("ISC-007",),
            guards=(
                Guard("input token given", Refusal(SecStatus.SEC_E_OUT_OF_SEQUENCE, ("ISC-008",))),
            ),
            effect="restart the exchange",
        ),
        (CtxState.ESTABLISHED, _ASC): Refusal(SecStatus.SEC_E_OUT_OF_SEQUENCE, ("ASC-007",)),
        (CtxState.FAILED, _ISC): Refusal(SecStatus.SEC_E_OUT_OF_SEQUENCE, ("LIF-003",)),
        (CtxState.FAILED, _ASC): Refusal(SecStatus.SEC_E_OUT_OF_SEQUENCE, ("LIF-003",)),
        (CtxState.PARTIAL, _QCA): _PARTIAL_QUERY,
        (CtxState.ESTABLISHED, _QCA): Transition(
            {None: CtxState.ESTABLISHED}, ("QCA-001",), guards=(_UNSUPPORTED_ATTRIBUTE,)
        ),
        (CtxState.FAILED, _QCA): attrs.evolve(_PARTIAL_QUERY, next={None: CtxState.FAILED}),
        (CtxState.PARTIAL, _CAT): Transition({None: CtxState.PARTIAL}, ("CAT-001",)),
        (CtxState.ESTABLISHED, _CAT): Transition({None: CtxState.ESTABLISHED}, ("CAT-001",)),
        (CtxState.FAILED, _CAT): Refusal(SecStatus.SEC_E_OUT_OF_SEQUENCE, ("CAT-002",)),
        (CtxState.PARTIAL, _DEL): Transition({None: CtxState.DELETED}, ("DEL-001", "LIF-004")),
        (CtxState.ESTABLISHED, _DEL): Transition({None: CtxState.DELETED}, ("DEL-001",)),
        (CtxState.FAILED, _DEL): Transition({None: CtxState.DELETED}, ("DEL-001", "LIF-004")),
        **_MESSAGE_ENTRIES,
    },
)

# -- credentials ---------------------------------------------------------------------------------

CREDENTIAL_TABLE = Table(
    "credential",
    CredState,
    CredState.NEW,
    {
        # The package accepts the request (ACH-001) or refuses it and no handle exists.
        (CredState.NEW, Call.ACQUIRE_CREDENTIALS_HANDLE): Transition(
            {None: CredState.LIVE, LegOutcome.REJECTED: CredState.NEW},
            (),
            outcome_rules={None: ("ACH-001",)},
        ),
        (CredState.LIVE, Call.FREE_CREDENTIALS_HANDLE): Transition(
            {Refs.LAST: CredState.RELEASED, Refs.HELD: CredState.ORPHANED},
            ("FCH-001",),
            outcome_rules={Refs.HELD: ("FCH-003",)},
        ),
        # QueryCredentialsAttributes reads a live credential (ATT-020).
        (CredState.LIVE, Call.QUERY_CREDENTIALS_ATTRIBUTES): Transition(
            {None: CredState.LIVE},
            ("ATT-020",),
            guards=(
                Guard(
                    "credential attribute not modelled",
                    Refusal(SecStatus.SEC_E_UNSUPPORTED_FUNCTION, ("ATT-021",)),
                ),
            ),
        ),
        # A context created on the credential takes a reference (FCH-003).
        (CredState.LIVE, _ISC): Transition({None: CredState.LIVE}, ("FCH-003",)),
        (CredState.LIVE, _ASC): Transition({None: CredState.LIVE}, ("FCH-003",)),
        # Deleting a context drops its reference; the last one releases a freed credential.
        (CredState.LIVE, _DEL): Transition(
            {Refs.LAST: CredState.LIVE, Refs.HELD: CredState.LIVE}, ("FCH-003",)
        ),
        (CredState.ORPHANED, _DEL): Transition(
            {Refs.LAST: CredState.RELEASED, Refs.HELD: CredState.ORPHANED}, ("FCH-004",)
        ),
    },
)


# -- async call contexts -------------------------------------------------------------------------

_ASYNC_OPS = (
    Call.ACQUIRE_CREDENTIALS_HANDLE_ASYNC,
    Call.INITIALIZE_SECURITY_CONTEXT_ASYNC,
    Call.ACCEPT_SECURITY_CONTEXT_ASYNC,
    Call.FREE_CREDENTIALS_HANDLE_ASYNC,
    Call.DELETE_SECURITY_CONTEXT_ASYNC,
)
ASYNC_OPERATIONS: tuple[Call, ...] = _ASYNC_OPS
_FRESH, _PENDING = AsyncState.FRESH, AsyncState.PENDING
_COMPLETED, _FREED = AsyncState.COMPLETED, AsyncState.FREED
_STAYS_FREED = Transition({None: _FREED}, ("ASY-052",))
_USE_AFTER_FREE = Misuse(
    "ASY-052",
    "the async context was freed with SspiFreeAsyncContext; create a new one "
    "(SspiCreateAsyncContext) instead of reusing a freed pointer",
    then=_STAYS_FREED,
)
# A NULL callback is supported only for the delete under the pages' reading (ASY-020); ksecdd
# accepts it (ASY-021: the profile's null_callback_only_for_delete is False there).
_CALLBACK_REQUIRED = Guard(
    "no callback where one is required",
    Misuse(
        "ASY-020",
        "an Sspi*Async call without a notify callback: a NULL callback is supported only for "
        "SspiDeleteSecurityContextAsync; register one with SspiSetAsyncNotifyCallback first",
    ),
)


def _queueing(state_now: AsyncState, rules: tuple[str, ...], op: Call) -> Transition:
    """An Sspi*Async call accepted in `state_now`: queued (ASY-005, ASY-009), refused by its own
    argument checks (ASY-008), or, for the delete, done inline (ASY-041)."""
    stays = _FREED if state_now is _FREED else state_now
    queued = _FREED if state_now is _FREED else _PENDING  # a freed context stays freed (ASY-052)
    # The delete has no argument check to fail at queue time; the others have no inline path.
    other = (
        AsyncOutcome.INLINE if op is Call.DELETE_SECURITY_CONTEXT_ASYNC else AsyncOutcome.REFUSED
    )
    next_states: dict[Outcome, State] = {AsyncOutcome.QUEUED: queued, other: stays}
    return Transition(
        next_states,
        rules,
        # A NULL callback is fine for the delete (ASY-020): no guard there.
        guards=() if op is Call.DELETE_SECURITY_CONTEXT_ASYNC else (_CALLBACK_REQUIRED,),
        outcome_rules={AsyncOutcome.REFUSED: ("ASY-008",), AsyncOutcome.INLINE: ("ASY-041",)},
    )


ASYNC_TABLE = Table(
    "async-context",
    AsyncState,
    AsyncState.NEW,
    {
        (AsyncState.NEW, Call.CREATE_ASYNC_CONTEXT): Transition({None: _FRESH}, ("ASY-002",)),
        **{(_FRESH, op): _queueing(_FRESH, ("ASY-005", "ASY-009"), op) for op in _ASYNC_OPS},
        **{
            (_PENDING, op): Misuse(
                "ASY-015",
                "an Sspi*Async call on an async context whose callback-less call is still in "
                "flight: the kernel accepts it (the status reads SEC_E_OK) but the new call "
                "overwrites the first one's parameters; use one context per call",
                then=_queueing(_PENDING, ("ASY-015",), op),
                guards=(
                    Guard(
                        "the status reads SEC_I_ASYNC_CALL_PENDING",
                        Refusal(SecStatus.SEC_E_INVALID_PARAMETER, ("ASY-007",)),
                    ),
                ),
            )
            for op in _ASYNC_OPS
        },
        **{
            (_COMPLETED, op): Misuse(
                "ASY-014",
                "a new call on a completed async context needs SspiReinitAsyncContext first "
                "(the context's lifetime is one operation)",
                then=_queueing(_COMPLETED, ("ASY-014",), op),
            )
            for op in _ASYNC_OPS
        },
        **{
            (_FREED, op): attrs.evolve(_USE_AFTER_FREE, then=_queueing(_FREED, ("ASY-052",), op))
            for op in _ASYNC_OPS
        },
        (_PENDING, Call.COMPLETE): Transition({None: _COMPLETED}, ("ASY-006", "ASY-022")),
        # Freed while pending: the kernel still completes the operation, but nobody is left to
        # notify (ASY-051 without a callback; with one, freeing was misuse).
        (_FREED, Call.COMPLETE): Transition({None: _FREED}, ("ASY-051",)),
        # Non-strict only: a second call queued on a context already pending (ASY-015) or
        # completed (ASY-014) completes after the first one did.
        (_COMPLETED, Call.COMPLETE): Transition({None: _COMPLETED}, ("ASY-006", "ASY-015")),
        # ... and if the context was reinitialised in between, the straggler changes nothing:
        # the context stays fresh and nobody is notified (ROB-010).
        (_FRESH, Call.COMPLETE): Transition({None: _FRESH}, ("ASY-015", "ROB-010")),
        (_FRESH, Call.REINIT_ASYNC_CONTEXT): Transition({None: _FRESH}, ("ASY-011", "ASY-013")),
        (_COMPLETED, Call.REINIT_ASYNC_CONTEXT): Transition({None: _FRESH}, ("ASY-011", "ASY-013")),
        # The NTSTATUS comes from the profile (ASY-012): the pages name no code.
        (_PENDING, Call.REINIT_ASYNC_CONTEXT): Refusal("reinit_pending_status", ("ASY-012",)),
        (_FREED, Call.REINIT_ASYNC_CONTEXT): _USE_AFTER_FREE,
        (_FRESH, Call.SET_ASYNC_NOTIFY_CALLBACK): Transition({None: _FRESH}, ("ASY-016",)),
        (_COMPLETED, Call.SET_ASYNC_NOTIFY_CALLBACK): Transition({None: _COMPLETED}, ("ASY-016",)),
        (_PENDING, Call.SET_ASYNC_NOTIFY_CALLBACK): Refusal(
            SecStatus.SEC_E_INVALID_PARAMETER, ("ASY-017",)
        ),
        (_FREED, Call.SET_ASYNC_NOTIFY_CALLBACK): _USE_AFTER_FREE,
        **{
            (state, Call.GET_ASYNC_CALL_STATUS): Transition({None: state}, rules)
            for state, rules in (
                (_FRESH, ("ASY-002",)),
                (_PENDING, ("ASY-005",)),
                (_COMPLETED, ("ASY-006",)),
            )
        },
        (_FREED, Call.GET_ASYNC_CALL_STATUS): attrs.evolve(
            _USE_AFTER_FREE,
            then=attrs.evolve(_STAYS_FREED, effect="read the poisoned status"),
        ),
        **{
            (state, Call.ASYNC_CONTEXT_REQUIRES_NOTIFY): Transition({None: state}, ("ASY-019",))
            for state in (_FRESH, _PENDING, _COMPLETED)
        },
        (_FREED, Call.ASYNC_CONTEXT_REQUIRES_NOTIFY): _USE_AFTER_FREE,
        (_FRESH, Call.FREE_ASYNC_CONTEXT): Transition({None: _FREED}, ("ASY-050",)),
        (_COMPLETED, Call.FREE_ASYNC_CONTEXT): Transition({None: _FREED}, ("ASY-050",)),
        # Pending: allowed only when no notification is owed (ASY-051).
        (_PENDING, Call.FREE_ASYNC_CONTEXT): Transition(
            {None: _FREED},
            ("ASY-051",),
            guards=(
                Guard(
                    "a callback is registered",
                    Misuse(
                        "ASY-051",
                        "SspiFreeAsyncContext while its call is pending with a callback "
                        "registered: free it only after the call completed and the callback "
                        "ran (free it inside the callback, as the documented sample does)",
                        then=Transition({None: _FREED}, ("ASY-051",)),
                    ),
                ),
            ),
        ),
        (_FREED, Call.FREE_ASYNC_CONTEXT): Misuse(
            "ASY-053",
            "double SspiFreeAsyncContext: the context was already freed",
            then=Transition({None: _FREED}, ("ASY-053",)),
        ),
    },
)

TABLES: tuple[Table, ...] = (CONTEXT_TABLE, CREDENTIAL_TABLE, ASYNC_TABLE)

# The sync call an async operation runs at completion (its status codes are the sync call's).
ASYNC_TWINS: Mapping[Call, Call] = MappingProxyType(
    {
        Call.INITIALIZE_SECURITY_CONTEXT_ASYNC: _ISC,
        Call.ACCEPT_SECURITY_CONTEXT_ASYNC: _ASC,
        Call.DELETE_SECURITY_CONTEXT_ASYNC: _DEL,
        Call.ACQUIRE_CREDENTIALS_HANDLE_ASYNC: Call.ACQUIRE_CREDENTIALS_HANDLE,
        Call.FREE_CREDENTIALS_HANDLE_ASYNC: Call.FREE_CREDENTIALS_HANDLE,
    }
)


def context_step(state: CtxState, call: Call) -> Entry:
    return CONTEXT_TABLE[(state, ASYNC_TWINS.get(call, call))]


# Every status each call can return in this model: the documented codes plus those the rules
# add (each addition names its rule). The stateful tests assert returns stay inside these sets
# (API-004).
_HANDLE_ERRORS = {SecStatus.SEC_E_INVALID_HANDLE}
CALL_CODES: Mapping[Call, frozenset[SecStatus]] = {
    Call.ENUMERATE_SECURITY_PACKAGES: frozenset({SecStatus.SEC_E_OK}),
    Call.QUERY_SECURITY_PACKAGE_INFO: frozenset(
        {SecStatus.SEC_E_OK, SecStatus.SEC_E_SECPKG_NOT_FOUND}
    ),
    Call.ACQUIRE_CREDENTIALS_HANDLE: frozenset(
        {
            SecStatus.SEC_E_OK,
            SecStatus.SEC_E_INSUFFICIENT_MEMORY,
            SecStatus.SEC_E_INTERNAL_ERROR,
            SecStatus.SEC_E_NO_CREDENTIALS,
            SecStatus.SEC_E_NOT_OWNER,
            SecStatus.SEC_E_SECPKG_NOT_FOUND,
            SecStatus.SEC_E_UNKNOWN_CREDENTIALS,
            SecStatus.SEC_E_ALGORITHM_MISMATCH,  # CRD-003: no protocol left to speak
        }
    ),
    Call.FREE_CREDENTIALS_HANDLE: frozenset({SecStatus.SEC_E_OK, *_HANDLE_ERRORS}),
    Call.INITIALIZE_SECURITY_CONTEXT: frozenset(
        {
            SecStatus.SEC_E_OK,
            SecStatus.SEC_I_CONTINUE_NEEDED,
            SecStatus.SEC_I_COMPLETE_NEEDED,
            SecStatus.SEC_I_COMPLETE_AND_CONTINUE,
            SecStatus.SEC_I_INCOMPLETE_CREDENTIALS,
            SecStatus.SEC_E_INCOMPLETE_MESSAGE,
            SecStatus.SEC_E_INSUFFICIENT_MEMORY,
            SecStatus.SEC_E_INTERNAL_ERROR,
            SecStatus.SEC_E_INVALID_HANDLE,
            SecStatus.SEC_E_INVALID_TOKEN,
            SecStatus.SEC_E_LOGON_DENIED,
            SecStatus.SEC_E_NO_AUTHENTICATING_AUTHORITY,
            SecStatus.SEC_E_NO_CREDENTIALS,
            SecStatus.SEC_E_TARGET_UNKNOWN,
            SecStatus.SEC_E_UNSUPPORTED_FUNCTION,
            SecStatus.SEC_E_WRONG_PRINCIPAL,
            SecStatus.SEC_E_OUT_OF_SEQUENCE,  # LIF-003, ISC-008
            SecStatus.SEC_I_CONTEXT_EXPIRED,  # SHD-007
            SecStatus.SEC_E_BUFFER_TOO_SMALL,  # BUF-002
            SecStatus.SEC_E_ALGORITHM_MISMATCH,  # CRD-004: no common protocol version
        }
    ),
    Call.ACCEPT_SECURITY_CONTEXT: frozenset(
        {
            SecStatus.SEC_E_OK,
            SecStatus.SEC_I_CONTINUE_NEEDED,
            SecStatus.SEC_I_COMPLETE_NEEDED,
            SecStatus.SEC_I_COMPLETE_AND_CONTINUE,
            SecStatus.SEC_E_INCOMPLETE_MESSAGE,
            SecStatus.SEC_E_INSUFFICIENT_MEMORY,
            SecStatus.SEC_E_INTERNAL_ERROR,
            SecStatus.SEC_E_INVALID_HANDLE,
            SecStatus.SEC_E_INVALID_TOKEN,
            SecStatus.SEC_E_LOGON_DENIED,
            SecStatus.SEC_E_NO_AUTHENTICATING_AUTHORITY,
            SecStatus.SEC_E_NO_CREDENTIALS,
            SecStatus.SEC_E_UNSUPPORTED_FUNCTION,
            SecStatus.SEC_E_BAD_BINDINGS,
            SecStatus.SEC_E_APPLICATION_PROTOCOL_MISMATCH,
            SecStatus.SEC_E_INCOMPLETE_CREDENTIALS,  # SCH-008
            SecStatus.SEC_E_OUT_OF_SEQUENCE,  # LIF-003, ASC-007
            SecStatus.SEC_I_CONTEXT_EXPIRED,  # SHD-007
            SecStatus.SEC_E_BUFFER_TOO_SMALL,  # BUF-002
            SecStatus.SEC_E_ALGORITHM_MISMATCH,  # CRD-004: no common protocol version
        }
    ),
    Call.COMPLETE_AUTH_TOKEN: frozenset(
        {
            SecStatus.SEC_E_OK,
            SecStatus.SEC_E_INVALID_HANDLE,
            SecStatus.SEC_E_INVALID_TOKEN,
            SecStatus.SEC_E_OUT_OF_SEQUENCE,
            SecStatus.SEC_E_MESSAGE_ALTERED,
            SecStatus.SEC_E_INTERNAL_ERROR,
        }
    ),
    Call.DELETE_SECURITY_CONTEXT: frozenset({SecStatus.SEC_E_OK, *_HANDLE_ERRORS}),
    Call.QUERY_CONTEXT_ATTRIBUTES: frozenset(
        {
            SecStatus.SEC_E_OK,
            SecStatus.SEC_E_INVALID_HANDLE,
            SecStatus.SEC_E_UNSUPPORTED_FUNCTION,
            SecStatus.SEC_E_NO_CREDENTIALS,  # ATT-025: no certificate on that side
        }
    ),
    Call.FREE_CONTEXT_BUFFER: frozenset({SecStatus.SEC_E_OK, SecStatus.SEC_E_INVALID_HANDLE}),
    **{
        call: frozenset(
            {
                SecStatus.SEC_E_OK,
                SecStatus.SEC_E_INVALID_HANDLE,
                SecStatus.SEC_E_INVALID_TOKEN,
                SecStatus.SEC_E_MESSAGE_ALTERED,
                SecStatus.SEC_E_OUT_OF_SEQUENCE,
                SecStatus.SEC_E_QOP_NOT_SUPPORTED,
                SecStatus.SEC_E_BUFFER_TOO_SMALL,
                SecStatus.SEC_E_CONTEXT_EXPIRED,
                SecStatus.SEC_E_UNSUPPORTED_FUNCTION,  # MSG-020: Schannel signatures
                SecStatus.SEC_E_INCOMPLETE_MESSAGE,
                SecStatus.SEC_E_DECRYPT_FAILURE,  # MSG-030: seen from Windows (curl#9879)
                SecStatus.SEC_I_CONTEXT_EXPIRED,
                SecStatus.SEC_I_RENEGOTIATE,
            }
        )
        for call in MESSAGE_CALLS
    },
    Call.QUERY_CREDENTIALS_ATTRIBUTES: frozenset(
        {SecStatus.SEC_E_OK, SecStatus.SEC_E_INVALID_HANDLE, SecStatus.SEC_E_UNSUPPORTED_FUNCTION}
    ),
    Call.APPLY_CONTROL_TOKEN: frozenset(
        {
            SecStatus.SEC_E_OK,
            SecStatus.SEC_E_INVALID_HANDLE,
            SecStatus.SEC_E_INVALID_TOKEN,
            SecStatus.SEC_E_UNSUPPORTED_FUNCTION,
            SecStatus.SEC_E_CONTEXT_EXPIRED,
            SecStatus.SEC_E_OUT_OF_SEQUENCE,  # MSG-004 under messages-2025
        }
    ),
}

ASYNC_CALL_CODES: Mapping[Call, frozenset[SecStatus]] = {
    Call.ACQUIRE_CREDENTIALS_HANDLE_ASYNC: CALL_CODES[Call.ACQUIRE_CREDENTIALS_HANDLE]
    | {SecStatus.SEC_E_UNSUPPORTED_FUNCTION},  # ASY-060
    Call.INITIALIZE_SECURITY_CONTEXT_ASYNC: CALL_CODES[Call.INITIALIZE_SECURITY_CONTEXT],
    Call.ACCEPT_SECURITY_CONTEXT_ASYNC: CALL_CODES[Call.ACCEPT_SECURITY_CONTEXT],
    Call.FREE_CREDENTIALS_HANDLE_ASYNC: frozenset(
        {SecStatus.SEC_E_OK, SecStatus.SEC_E_INVALID_HANDLE}  # ASY-030
    ),
    Call.DELETE_SECURITY_CONTEXT_ASYNC: frozenset(
        {SecStatus.SEC_E_OK, SecStatus.SEC_E_INVALID_HANDLE}  # ASY-040
    ),
}
