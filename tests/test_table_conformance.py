"""The model is held to its lifecycle tables, entry by entry.

For every (state, call) of CONTEXT_TABLE, CREDENTIAL_TABLE and ASYNC_TABLE, and for every
verdict an entry can reach (the entry itself, each guard's verdict, each misuse's
continuation) and every outcome of a transition, a case below drives a fresh model into the
state by real API calls, makes the call, and checks the resulting state, the status and
`last_rules` against the table. test_every_table_path_is_exercised fails, naming it, on a table
path no case reaches; so a diagram drawn from the tables is a picture of what the model does.

Outcomes a real package decides (continue, established, failed, rejected) are driven with a
scripted package whose legs do what the test asks; the real packages' legs are tested in their
own files.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import attrs
import pytest

from sspi_model import ManualScheduler, Out, SecStatus, Sspi, SspiMisuse
from sspi_model.buffers import SecBuffer
from sspi_model.constants import SecPkgAttr
from sspi_model.handles import HandleKind, SecHandle
from sspi_model.lifecycle import (
    ASYNC_OPERATIONS,
    ASYNC_TABLE,
    CONTEXT_TABLE,
    CREDENTIAL_TABLE,
    MESSAGE_CALLS,
    AsyncOutcome,
    AsyncState,
    Call,
    CredState,
    CtxState,
    LegOutcome,
    MessageOutcome,
    Misuse,
    Outcome,
    Refs,
    Refusal,
    Table,
    Transition,
    refusal_status,
    rules_of,
    verdicts,
)
from sspi_model.packages.base import LegResult, MessageLeg
from sspi_model.results import ContextSizes, PackageInfo

OK = SecStatus.SEC_E_OK
_STATUS = {
    LegOutcome.CONTINUE: SecStatus.SEC_I_CONTINUE_NEEDED,
    LegOutcome.ESTABLISHED: OK,
    LegOutcome.FAILED: SecStatus.SEC_E_LOGON_DENIED,
    LegOutcome.REJECTED: SecStatus.SEC_E_INVALID_TOKEN,
}


class _ScriptedSession:
    """Legs that do what the test says: the input token (ASC) or the next scripted outcome
    (ISC, from the target name) names the outcome."""

    def __init__(self, script: list[str]) -> None:
        self.script = script
        self.user_name = "scripted"

    def step(self, input: Any, context_req: int) -> LegResult:
        token = input[0].data.decode() if input else self.script.pop(0)
        outcome = LegOutcome(token)
        return LegResult(_STATUS[outcome], outcome, b"t" if outcome is LegOutcome.CONTINUE else b"")

    def restart(self) -> None:
        pass

    def sizes(self) -> ContextSizes:
        return ContextSizes(16, 16, 0, 16)

    def message(self, call: Call, buffers: Any, qop: int) -> MessageLeg:
        """A message call whose first buffer names its outcome."""
        outcome = MessageOutcome(buffers[0].data.decode())
        return MessageLeg(_MESSAGE_STATUS[outcome], outcome, buffers)

    def apply_control_token(self, buffers: Any) -> MessageLeg:
        return self.message(Call.APPLY_CONTROL_TOKEN, buffers, 0)


_MESSAGE_STATUS = {
    MessageOutcome.DONE: OK,
    MessageOutcome.REJECTED: SecStatus.SEC_E_MESSAGE_ALTERED,
    MessageOutcome.FAILED: SecStatus.SEC_E_MESSAGE_ALTERED,
    MessageOutcome.RENEGOTIATE: SecStatus.SEC_I_RENEGOTIATE,
    MessageOutcome.PEER_CLOSED: SecStatus.SEC_I_CONTEXT_EXPIRED,
    MessageOutcome.SHUTDOWN: OK,
    MessageOutcome.ALERT: OK,
}


class _ScriptedPackage:
    info = PackageInfo("Scripted", "test package", 0, 1, 0, 64)

    def names(self) -> tuple[str, ...]:
        return ("Scripted",)

    def acquire(self, use: int, principal: Any, auth_data: Any, env: Any) -> Any:
        if principal == "refuse":
            return SecStatus.SEC_E_UNKNOWN_CREDENTIALS, None, ()
        return OK, None, ()

    def new_client(self, material: Any, target_name: Any, env: Any) -> _ScriptedSession:
        return _ScriptedSession(list((target_name or "").split(",")))

    def new_server(self, material: Any, env: Any) -> _ScriptedSession:
        return _ScriptedSession([])

    def can_initiate(self, use: int) -> bool:
        return True

    def can_accept(self, use: int) -> bool:
        return True


STRICT = [False]  # test_misuse_entries_raise_in_strict_mode re-runs cases with True


def _model(**options: Any) -> Sspi:
    return Sspi(packages=[_ScriptedPackage()], async_any_package=True, **options)


def _credential(sspi: Sspi) -> SecHandle:
    handle = sspi.acquire_credentials_handle("Scripted", 3).credential
    assert handle is not None
    return handle


# -- situations: a fresh model driven into a state by real calls -------------------------------


@attrs.define
class Situation:
    sspi: Sspi
    subject: Any  # the handle or async context whose state the table governs
    credential: SecHandle | None = None
    kind: HandleKind = HandleKind.CONTEXT
    contexts: list[SecHandle] = attrs.Factory(list)

    def state(self) -> Any:
        state = self.sspi.lifecycle_state(self.subject, self.kind)
        if state is None and self.kind is HandleKind.CREDENTIAL:
            # A freed credential has no live handle; its contexts still hold its record.
            for record in self.sspi._core.contexts.values():
                if record.credential.handle == self.subject:
                    return record.credential.state
        return state


def _message_buffers(outcome: str) -> list[SecBuffer]:
    return [SecBuffer(1, outcome.encode())]


# The states past the handshake, reached from an established context: (call, outcome) pairs.
_AFTER: dict[CtxState, tuple[tuple[Call, str], ...]] = {
    CtxState.RENEGOTIATING: ((Call.DECRYPT_MESSAGE, "renegotiate"),),
    CtxState.PEER_CLOSED: ((Call.DECRYPT_MESSAGE, "peer closed"),),
    CtxState.SHUTDOWN: ((Call.APPLY_CONTROL_TOKEN, "shutdown"),),
    CtxState.CLOSING: ((Call.APPLY_CONTROL_TOKEN, "shutdown"), (Call.COMPLETE, "continue")),
    CtxState.CLOSED: ((Call.APPLY_CONTROL_TOKEN, "shutdown"), (Call.COMPLETE, "established")),
    CtxState.ALERTING: ((Call.APPLY_CONTROL_TOKEN, "alert"),),
}


def context_in(state: CtxState, *, server: bool = False, script: str = "") -> Situation:
    """A context in `state`, made as a client (ISC, scripted by `script`) or a server."""
    if state in _AFTER:
        situation = context_in(CtxState.ESTABLISHED, server=server)
        sspi, handle = situation.sspi, situation.subject
        for call, outcome in _AFTER[state]:
            if call is Call.DECRYPT_MESSAGE:
                sspi.decrypt_message(handle, _message_buffers(outcome))
            elif call is Call.APPLY_CONTROL_TOKEN:
                sspi.apply_control_token(handle, _message_buffers(outcome))
            else:  # the leg that follows the shutdown (COMPLETE stands for "the next leg")
                _next_leg(sspi, situation.credential, handle, server, outcome)
        assert situation.state() is state
        return situation
    sspi = _model(strict=STRICT[0])  # BUF-008 is a misuse of a context call
    cred = _credential(sspi)
    if state is CtxState.NEW:
        return Situation(sspi, None, cred)
    first = "continue" if state is not CtxState.ESTABLISHED else "established"
    if server:
        handle = sspi.accept_security_context(cred, None, first.encode()).new_context
        if state is CtxState.FAILED:
            sspi.accept_security_context(cred, handle, b"failed")
    else:
        plan = [first] + (["failed"] if state is CtxState.FAILED else []) + script.split(",")
        handle = sspi.initialize_security_context(cred, None, ",".join(plan)).new_context
        if state is CtxState.FAILED:
            sspi.initialize_security_context(cred, handle)
    situation = Situation(sspi, handle, cred)
    assert situation.state() is state
    return situation


def credential_in(state: CredState, *, contexts: int = 0) -> Situation:
    sspi = _model()
    if state is CredState.NEW:
        return Situation(sspi, None, kind=HandleKind.CREDENTIAL)
    cred = _credential(sspi)
    handles = [
        sspi.initialize_security_context(cred, None, "continue").new_context
        for _ in range(contexts)
    ]
    if state is CredState.ORPHANED:
        assert sspi.free_credentials_handle(cred) == OK
    return Situation(sspi, cred, cred, HandleKind.CREDENTIAL, handles)


def async_in(state: AsyncState, *, profile: str = "documented", callback: bool = True) -> Situation:
    scheduler = ManualScheduler()
    sspi = _model(scheduler=scheduler, profile=profile, strict=STRICT[0])
    if state is AsyncState.NEW:
        return Situation(sspi, None)
    actx = sspi.create_async_context()
    if callback:
        sspi.set_async_notify_callback(actx, lambda context, data: None)
    if state in (AsyncState.PENDING, AsyncState.COMPLETED):
        handle = sspi.initialize_security_context(_credential(sspi), None, "continue").new_context
        assert sspi.delete_security_context_async(actx, context=handle) == OK
        if state is AsyncState.COMPLETED:
            scheduler.run_all()
    elif state is AsyncState.FREED:
        sspi.free_async_context(actx)
    sspi.misuse_events.clear()
    situation = Situation(sspi, actx)
    assert situation.state() is state
    return situation


# -- cases -------------------------------------------------------------------------------------


@attrs.frozen
class Case:
    """One table path: `run` drives a fresh model there and returns (situation, result)."""

    table: Table
    state: Any
    call: Call
    path: str  # as lifecycle.verdicts names it: "", "guard: NAME", "then", ...
    outcome: Outcome | str  # the transition's outcome, "refusal" or "misuse"
    run: Callable[[], tuple[Situation, Any]]
    strict: bool = False  # for misuse: run again in strict mode and expect SspiMisuse

    @property
    def key(self) -> tuple[str, str, str, str, str]:
        outcome = self.outcome if isinstance(self.outcome, str) else repr(self.outcome)
        return (self.table.name, self.state.value, self.call.value, self.path, outcome)

    def __repr__(self) -> str:
        return " | ".join(self.key)


def _verdict(case: Case) -> Any:
    entry = case.table[(case.state, case.call)]
    found = dict(verdicts(entry))
    return found[case.path]


CASES: list[Case] = []


def case(
    table: Table, state: Any, call: Call, path: str, outcome: Outcome | str
) -> Callable[..., Any]:
    def register(run: Callable[[], tuple[Situation, Any]]) -> Callable[[], tuple[Situation, Any]]:
        CASES.append(Case(table, state, call, path, outcome, run))
        return run

    return register


# Security contexts: legs. -------------------------------------------------------------------

_LEG_STATES = {CtxState.NEW: "", CtxState.PARTIAL: "", CtxState.ESTABLISHED: ""}
for _state in (CtxState.NEW, CtxState.PARTIAL, CtxState.ESTABLISHED):
    for _call in (Call.INITIALIZE_SECURITY_CONTEXT, Call.ACCEPT_SECURITY_CONTEXT):
        _entry = CONTEXT_TABLE.entry(_state, _call)
        if not isinstance(_entry, Transition):
            continue
        for _outcome in _entry.next:

            def _leg(state: CtxState = _state, call: Call = _call, outcome: Any = _outcome) -> Any:
                server = call is Call.ACCEPT_SECURITY_CONTEXT
                situation = context_in(state, server=server, script=outcome.value)
                sspi, handle = situation.sspi, situation.subject
                if server:
                    result = sspi.accept_security_context(
                        situation.credential, handle, outcome.value.encode()
                    )
                else:
                    target = outcome.value if handle is None else None
                    result = sspi.initialize_security_context(situation.credential, handle, target)
                if handle is None:  # the first leg: follow the handle it returned, if any
                    situation.subject = result.new_context
                return situation, result

            CASES.append(Case(CONTEXT_TABLE, _state, _call, "", _outcome, _leg))


@case(
    CONTEXT_TABLE,
    CtxState.ESTABLISHED,
    Call.INITIALIZE_SECURITY_CONTEXT,
    "guard: input token given",
    "refusal",
)
def _isc_input_on_established() -> Any:
    situation = context_in(CtxState.ESTABLISHED)
    return situation, situation.sspi.initialize_security_context(
        None, situation.subject, None, 0, b"x"
    )


for _state, _call in (
    (CtxState.ESTABLISHED, Call.ACCEPT_SECURITY_CONTEXT),
    (CtxState.FAILED, Call.ACCEPT_SECURITY_CONTEXT),
    (CtxState.FAILED, Call.INITIALIZE_SECURITY_CONTEXT),
):

    def _refused_leg(state: CtxState = _state, call: Call = _call) -> Any:
        server = call is Call.ACCEPT_SECURITY_CONTEXT
        situation = context_in(state, server=server)
        if server:
            return situation, situation.sspi.accept_security_context(
                None, situation.subject, b"continue"
            )
        return situation, situation.sspi.initialize_security_context(None, situation.subject)

    CASES.append(Case(CONTEXT_TABLE, _state, _call, "", "refusal", _refused_leg))

# Security contexts: queries, CompleteAuthToken, delete. ----------------------------------------

_SIZES, _INFO = int(SecPkgAttr.SECPKG_ATTR_SIZES), int(SecPkgAttr.SECPKG_ATTR_PACKAGE_INFO)
for _state in (
    CtxState.PARTIAL,
    CtxState.ESTABLISHED,
    CtxState.FAILED,
    CtxState.RENEGOTIATING,
    CtxState.SHUTDOWN,
    CtxState.CLOSING,
    CtxState.PEER_CLOSED,
    CtxState.CLOSED,
    CtxState.ALERTING,
):
    for _path, _verdict_entry in verdicts(CONTEXT_TABLE[(_state, Call.QUERY_CONTEXT_ATTRIBUTES)]):
        _attribute = {
            "": _INFO if _state in (CtxState.PARTIAL, CtxState.FAILED) else _SIZES,
            "guard: attribute not modelled": 0xDEAD,
            "guard: attribute needs an established context": _SIZES,
        }[_path]

        def _query(state: CtxState = _state, attribute: int = _attribute) -> Any:
            situation = context_in(state)
            return situation, situation.sspi.query_context_attributes(situation.subject, attribute)

        kind = "refusal" if isinstance(_verdict_entry, Refusal) else None
        CASES.append(
            Case(CONTEXT_TABLE, _state, Call.QUERY_CONTEXT_ATTRIBUTES, _path, kind, _query)
        )

    def _complete(state: CtxState = _state) -> Any:
        situation = context_in(state)
        return situation, situation.sspi.complete_auth_token(situation.subject, b"token")

    _cat = CONTEXT_TABLE[(_state, Call.COMPLETE_AUTH_TOKEN)]
    CASES.append(
        Case(
            CONTEXT_TABLE,
            _state,
            Call.COMPLETE_AUTH_TOKEN,
            "",
            "refusal" if isinstance(_cat, Refusal) else None,
            _complete,
        )
    )

    def _delete(state: CtxState = _state) -> Any:
        situation = context_in(state)
        return situation, situation.sspi.delete_security_context(situation.subject)

    CASES.append(Case(CONTEXT_TABLE, _state, Call.DELETE_SECURITY_CONTEXT, "", None, _delete))

# Credentials. ---------------------------------------------------------------------------------


@case(CREDENTIAL_TABLE, CredState.NEW, Call.ACQUIRE_CREDENTIALS_HANDLE, "", None)
def _acquire() -> Any:
    situation = credential_in(CredState.NEW)
    result = situation.sspi.acquire_credentials_handle("Scripted", 3)
    situation.subject = result.credential
    return situation, result


@case(CREDENTIAL_TABLE, CredState.NEW, Call.ACQUIRE_CREDENTIALS_HANDLE, "", LegOutcome.REJECTED)
def _acquire_refused() -> Any:
    situation = credential_in(CredState.NEW)
    return situation, situation.sspi.acquire_credentials_handle("Scripted", 3, principal="refuse")


for _outcome, _count in ((Refs.LAST, 0), (Refs.HELD, 1)):

    def _free(count: int = _count) -> Any:
        situation = credential_in(CredState.LIVE, contexts=count)
        status = situation.sspi.free_credentials_handle(situation.subject)
        return situation, status

    CASES.append(
        Case(CREDENTIAL_TABLE, CredState.LIVE, Call.FREE_CREDENTIALS_HANDLE, "", _outcome, _free)
    )

for _path, _attribute in (("", 1), ("guard: credential attribute not modelled", 0xDEAD)):

    def _query_credential(attribute: int = _attribute) -> Any:
        situation = credential_in(CredState.LIVE)
        result = situation.sspi.query_credentials_attributes(situation.subject, attribute)
        return situation, result

    CASES.append(
        Case(
            CREDENTIAL_TABLE,
            CredState.LIVE,
            Call.QUERY_CREDENTIALS_ATTRIBUTES,
            _path,
            None if not _path else "refusal",
            _query_credential,
        )
    )

for _call in (Call.INITIALIZE_SECURITY_CONTEXT, Call.ACCEPT_SECURITY_CONTEXT):

    def _reference(call: Call = _call) -> Any:
        situation = credential_in(CredState.LIVE)
        sspi = situation.sspi
        if call is Call.ACCEPT_SECURITY_CONTEXT:
            return situation, sspi.accept_security_context(situation.subject, None, b"continue")
        return situation, sspi.initialize_security_context(situation.subject, None, "continue")

    CASES.append(Case(CREDENTIAL_TABLE, CredState.LIVE, _call, "", None, _reference))

for _state in (CredState.LIVE, CredState.ORPHANED):
    for _outcome, _count in ((Refs.LAST, 1), (Refs.HELD, 2)):

        def _drop(state: CredState = _state, count: int = _count) -> Any:
            situation = credential_in(state, contexts=count)
            status = situation.sspi.delete_security_context(situation.contexts[0])
            return situation, status

        CASES.append(
            Case(CREDENTIAL_TABLE, _state, Call.DELETE_SECURITY_CONTEXT, "", _outcome, _drop)
        )

# Async contexts. ------------------------------------------------------------------------------


@case(ASYNC_TABLE, AsyncState.NEW, Call.CREATE_ASYNC_CONTEXT, "", None)
def _create() -> Any:
    situation = async_in(AsyncState.NEW)
    situation.subject = situation.sspi.create_async_context()
    return situation, situation.subject


def _queue(sspi: Sspi, actx: Any, op: Call, outcome: Any) -> Any:
    """Call `op` on `actx` with arguments that give `outcome` (QUEUED, REFUSED or INLINE)."""
    cred = _credential(sspi)
    out = None if outcome is AsyncOutcome.REFUSED else Out()
    if op is Call.ACQUIRE_CREDENTIALS_HANDLE_ASYNC:
        return sspi.acquire_credentials_handle_async(
            actx, package="Scripted", credential_use=3, out=out
        )
    if op is Call.INITIALIZE_SECURITY_CONTEXT_ASYNC:
        return sspi.initialize_security_context_async(
            actx, credential=cred, target_name="continue", out=out
        )
    if op is Call.ACCEPT_SECURITY_CONTEXT_ASYNC:
        return sspi.accept_security_context_async(actx, credential=cred, input=b"continue", out=out)
    if op is Call.FREE_CREDENTIALS_HANDLE_ASYNC:
        if outcome is AsyncOutcome.REFUSED:
            sspi.profile = "ksecdd"  # the analysed build's stub (ASY-031)
        return sspi.free_credentials_handle_async(actx, credential=cred)
    if outcome is AsyncOutcome.INLINE:
        sspi.profile = "ksecdd"  # no LSA part: done inline (ASY-041)
        return sspi.delete_security_context_async(actx, context=SecHandle(0, 0))
    handle = sspi.initialize_security_context(cred, None, "continue").new_context
    return sspi.delete_security_context_async(actx, context=handle)


def _async_situation(state: AsyncState, path: str, op: Call) -> Situation:
    if state is AsyncState.PENDING and not path.startswith("guard: the status"):
        # ASY-015 needs a call in flight whose status already reads OK: ksecdd, no callback.
        situation = async_in(AsyncState.PENDING, profile="ksecdd", callback=False)
        situation.sspi.profile = "documented"
    else:
        situation = async_in(state, callback="no callback where one is required" not in path)
    return situation


for _state in (AsyncState.FRESH, AsyncState.PENDING, AsyncState.COMPLETED, AsyncState.FREED):
    for _op in ASYNC_OPERATIONS:
        for _path, _item in verdicts(ASYNC_TABLE[(_state, _op)]):
            kinds: list[Any]
            if isinstance(_item, Transition):
                kinds = list(_item.next)
            else:
                kinds = ["refusal" if isinstance(_item, Refusal) else "misuse"]
            for _kind in kinds:
                if (
                    "no callback where one is required" in _path
                    and _op is Call.DELETE_SECURITY_CONTEXT_ASYNC
                ):
                    continue  # the guard never holds for the delete (ASY-020): checked below

                def _async_op(
                    state: AsyncState = _state, op: Call = _op, path: str = _path, kind: Any = _kind
                ) -> Any:
                    situation = _async_situation(state, path, op)
                    outcome = kind if isinstance(kind, AsyncOutcome) else AsyncOutcome.QUEUED
                    return situation, _queue(situation.sspi, situation.subject, op, outcome)

                CASES.append(Case(ASYNC_TABLE, _state, _op, _path, _kind, _async_op))

for _state in (AsyncState.PENDING, AsyncState.FREED, AsyncState.COMPLETED, AsyncState.FRESH):

    def _completion(state: AsyncState = _state) -> Any:
        if state in (AsyncState.COMPLETED, AsyncState.FRESH):  # non-strict: a second call
            situation = async_in(AsyncState.PENDING, profile="ksecdd", callback=False)
            _queue(
                situation.sspi,
                situation.subject,
                Call.DELETE_SECURITY_CONTEXT_ASYNC,
                AsyncOutcome.QUEUED,
            )
            situation.sspi.scheduler.run_one(0)  # type: ignore[attr-defined]
            if state is AsyncState.FRESH:  # reinitialised before the second completes (ROB-010)
                situation.sspi.reinit_async_context(situation.subject)
        else:
            situation = async_in(AsyncState.PENDING, callback=state is AsyncState.PENDING)
            if state is AsyncState.FREED:
                situation.sspi.free_async_context(situation.subject)
        assert situation.state() is state
        situation.sspi.scheduler.run_one(0)  # type: ignore[attr-defined]
        return situation, None

    CASES.append(Case(ASYNC_TABLE, _state, Call.COMPLETE, "", None, _completion))

_CONTEXT_CALLS: dict[Call, Callable[[Sspi, Any], Any]] = {
    Call.REINIT_ASYNC_CONTEXT: lambda sspi, actx: sspi.reinit_async_context(actx),
    Call.SET_ASYNC_NOTIFY_CALLBACK: lambda sspi, actx: sspi.set_async_notify_callback(actx, print),
    Call.GET_ASYNC_CALL_STATUS: lambda sspi, actx: sspi.get_async_call_status(actx),
    Call.ASYNC_CONTEXT_REQUIRES_NOTIFY: lambda sspi, actx: sspi.async_context_requires_notify(actx),
    Call.FREE_ASYNC_CONTEXT: lambda sspi, actx: sspi.free_async_context(actx),
}
for _state in (AsyncState.FRESH, AsyncState.PENDING, AsyncState.COMPLETED, AsyncState.FREED):
    for _call, _make in _CONTEXT_CALLS.items():
        for _path, _item in verdicts(ASYNC_TABLE[(_state, _call)]):
            kinds = (
                list(_item.next)
                if isinstance(_item, Transition)
                else ["refusal" if isinstance(_item, Refusal) else "misuse"]
            )
            for _kind in kinds:

                def _context_call(
                    state: AsyncState = _state, make: Any = _make, path: str = _path
                ) -> Any:
                    situation = async_in(
                        state, callback=state is not AsyncState.PENDING or "callback" in path
                    )
                    return situation, make(situation.sspi, situation.subject)

                CASES.append(Case(ASYNC_TABLE, _state, _call, _path, _kind, _context_call))

# Security contexts: message functions, ApplyControlToken, and the states past the handshake. --


def _next_leg(sspi: Sspi, credential: Any, handle: Any, server: bool, outcome: str) -> Any:
    """A continuation leg whose input names its outcome."""
    if server:
        return sspi.accept_security_context(credential, handle, outcome.encode())
    return sspi.initialize_security_context(credential, handle, None, 0, outcome.encode())


def _message_call(
    sspi: Sspi, call: Call, handle: Any, outcome: str, *, overrun: bool = False
) -> Any:
    buffers = _message_buffers(outcome)
    if overrun:  # cbBuffer beyond the bytes the buffer holds (BUF-008)
        buffers = [SecBuffer(1 if call is not Call.APPLY_CONTROL_TOKEN else 2, b"done", size=99)]
    if call is Call.MAKE_SIGNATURE:
        return sspi.make_signature(handle, 0, buffers)
    if call is Call.VERIFY_SIGNATURE:
        return sspi.verify_signature(handle, buffers)
    if call is Call.ENCRYPT_MESSAGE:
        return sspi.encrypt_message(handle, 0, buffers)
    if call is Call.DECRYPT_MESSAGE:
        return sspi.decrypt_message(handle, buffers)
    return sspi.apply_control_token(handle, buffers)


_MESSAGE_STATES = (CtxState.PARTIAL, CtxState.ESTABLISHED, CtxState.FAILED, *_AFTER)
for _state in _MESSAGE_STATES:
    for _call in (*MESSAGE_CALLS, Call.APPLY_CONTROL_TOKEN):
        for _path, _item in verdicts(CONTEXT_TABLE[(_state, _call)]):
            _kinds: list[Any] = list(_item.next) if isinstance(_item, Transition) else ["refusal"]
            if isinstance(_item, Misuse):  # a descriptor that overruns its memory (BUF-008)
                _kinds = ["misuse"]
            for _kind in _kinds:

                def _message_case(
                    state: CtxState = _state,
                    call: Call = _call,
                    kind: Any = _kind,
                    path: str = _path,
                ) -> Any:
                    situation = context_in(state)
                    outcome = kind.value if isinstance(kind, MessageOutcome) else "done"
                    overrun = "overruns" in path
                    return situation, _message_call(
                        situation.sspi, call, situation.subject, outcome, overrun=overrun
                    )

                CASES.append(Case(CONTEXT_TABLE, _state, _call, _path, _kind, _message_case))

for _state in _AFTER:
    for _call in (Call.INITIALIZE_SECURITY_CONTEXT, Call.ACCEPT_SECURITY_CONTEXT):
        _entry = CONTEXT_TABLE[(_state, _call)]
        _kinds = list(_entry.next) if isinstance(_entry, Transition) else ["refusal"]
        for _kind in _kinds:

            def _late_leg(state: CtxState = _state, call: Call = _call, kind: Any = _kind) -> Any:
                server = call is Call.ACCEPT_SECURITY_CONTEXT
                situation = context_in(state, server=server)
                outcome = kind.value if isinstance(kind, LegOutcome) else "established"
                result = _next_leg(
                    situation.sspi, situation.credential, situation.subject, server, outcome
                )
                return situation, result

            CASES.append(Case(CONTEXT_TABLE, _state, _call, "", _kind, _late_leg))


# -- the checks --------------------------------------------------------------------------------


def _table_paths() -> Iterator[tuple[str, str, str, str, str]]:
    for table in (CONTEXT_TABLE, CREDENTIAL_TABLE, ASYNC_TABLE):
        for (state, call), entry in table.items():
            for path, item in verdicts(entry):
                if isinstance(item, Transition):
                    for outcome in item.next:
                        yield (table.name, state.value, call.value, path, repr(outcome))
                else:
                    kind = "refusal" if isinstance(item, Refusal) else "misuse"
                    yield (table.name, state.value, call.value, path, kind)


# Table paths no real call sequence reaches, each with the reason.
UNREACHABLE: dict[tuple[str, str, str, str, str], str] = {}


def test_every_table_path_is_exercised() -> None:
    exercised = {c.key for c in CASES}
    missing = [
        " | ".join(path)
        for path in _table_paths()
        if path not in exercised and path not in UNREACHABLE
    ]
    assert not missing, "table paths no case drives the model into:\n" + "\n".join(missing)


@pytest.mark.rule("LIF-005", "ASY-008")
@pytest.mark.parametrize("table_case", CASES, ids=repr)
def test_the_model_does_what_the_table_says(table_case: Case) -> None:
    verdict = _verdict(table_case)
    if isinstance(verdict, Misuse):
        situation, _ = table_case.run()  # non-strict: recorded, then the continuation
        assert verdict.rule in [event.rule for event in situation.sspi.misuse_events]
        return
    situation, result = table_case.run()
    status = (
        result if isinstance(result, int) or result is None else getattr(result, "status", result)
    )
    rules = situation.sspi.last_rules
    if isinstance(verdict, Refusal):
        expected = refusal_status(verdict, situation.sspi.profile)
        assert status == expected
        assert rules == verdict.rules
        assert situation.state() is table_case.state  # a refusal changes nothing
        return
    assert isinstance(verdict, Transition)
    outcome = table_case.outcome
    expected_rules = rules_of(verdict, outcome)  # type: ignore[arg-type]
    # The call's own table decides first; a credential's entry follows the context's (FCH-003).
    at = 0
    if table_case.table is CREDENTIAL_TABLE and expected_rules:
        at = rules.index(expected_rules[0]) if expected_rules[0] in rules else -1
    assert rules[at : at + len(expected_rules)] == expected_rules, (rules, expected_rules)
    target = verdict.next[outcome]  # type: ignore[index]
    if table_case.table is CONTEXT_TABLE and target is CtxState.NEW:
        assert getattr(result, "new_context", None) is None  # LIF-001: no handle
    elif target in (CtxState.DELETED, CredState.RELEASED, CredState.NEW):
        assert situation.state() is None  # the handle is retired (or was never issued)
    else:
        assert situation.state() is target


@pytest.mark.parametrize(
    "table_case",
    [c for c in CASES if isinstance(_verdict(c), Misuse) and "then" not in c.path],
    ids=repr,
)
def test_misuse_entries_raise_in_strict_mode(table_case: Case) -> None:
    """The first misuse a path reaches raises SspiMisuse naming its rule (a misuse inside a
    continuation is only reachable non-strict, where the outer one did not raise)."""
    STRICT[0] = True
    try:
        with pytest.raises(SspiMisuse) as raised:
            table_case.run()
    finally:
        STRICT[0] = False
    assert raised.value.rule == _verdict(table_case).rule


@pytest.mark.rule("DEL-003", "DEL-004")
@pytest.mark.parametrize("profile", ["documented", "strict-delete", "ksecdd"])
def test_the_stale_delete_fast_path_equals_the_general_path(profile: str) -> None:
    fast = _model(profile=profile)
    slow = _model(profile=profile, observer=lambda event: None)  # observed: the general path
    for sspi in (fast, slow):
        handle = sspi.initialize_security_context(_credential(sspi), None, "continue").new_context
        sspi.delete_security_context(handle)
        sspi.answer = (sspi.delete_security_context(handle), sspi.last_rules)  # type: ignore[attr-defined]
    assert fast.answer == slow.answer  # type: ignore[attr-defined]
