"""THE lifecycle tables: one place owns which call is legal in which state and where it leads.

The model (sspi.py, async_api.py), the Hypothesis machines and the diagrams all read these
tables. A missing (state, call) entry means the call is illegal there; the entry's `refusal`
says which status the model returns and which rule says so. Rule IDs sit beside each entry and
are defined in specs/rules.toml.

Outcomes decided by a package (LegOutcome) pick the next state from `Transition.next`.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from typing import TypeAlias

import attrs

from sspi_model.packages.base import LegOutcome
from sspi_model.status import NtStatus, SecStatus


class Call(enum.Enum):
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

    def __repr__(self) -> str:
        return f"Call.{self.name}"


class CredState(enum.Enum):
    LIVE = "live"  # the handle is valid
    ORPHANED = "orphaned"  # the handle was freed; contexts still hold references (FCH-003)
    RELEASED = "released"  # no handle, no references: gone

    def __repr__(self) -> str:
        return f"CredState.{self.name}"


class CtxState(enum.Enum):
    NEW = "new"  # before the first ISC/ASC: no handle exists yet
    PARTIAL = "partial"  # at least one leg done, more expected
    ESTABLISHED = "established"
    FAILED = "failed"  # a decisive error on a later leg: only delete remains (LIF-003)
    DELETED = "deleted"  # the handle is retired

    def __repr__(self) -> str:
        return f"CtxState.{self.name}"


class AsyncState(enum.Enum):
    FRESH = "fresh"  # created or reinitialised: status SEC_E_UNSUPPORTED_FUNCTION (ASY-002)
    PENDING = "pending"  # a call is queued and has not completed (ASY-005)
    COMPLETED = "completed"  # the call completed; its status is readable (ASY-006)
    FREED = "freed"  # SspiFreeAsyncContext: any further use is undefined (ASY-052)

    def __repr__(self) -> str:
        return f"AsyncState.{self.name}"


State: TypeAlias = CtxState | CredState | AsyncState


@attrs.frozen
class Transition:
    """A legal (state, call): the next state per outcome, and the rules that say so."""

    next: Mapping[LegOutcome | None, State]
    rules: tuple[str, ...]


@attrs.frozen
class Refusal:
    """An illegal (state, call): the status returned, state unchanged."""

    status: SecStatus | NtStatus
    rules: tuple[str, ...]


_LEG: dict[LegOutcome | None, State] = {
    LegOutcome.CONTINUE: CtxState.PARTIAL,
    LegOutcome.ESTABLISHED: CtxState.ESTABLISHED,
    LegOutcome.FAILED: CtxState.FAILED,
}
_FIRST_LEG: dict[LegOutcome | None, State] = {
    LegOutcome.CONTINUE: CtxState.PARTIAL,
    LegOutcome.ESTABLISHED: CtxState.ESTABLISHED,
    LegOutcome.FAILED: CtxState.NEW,  # a failed first leg returns no handle (LIF-001)
    LegOutcome.REJECTED: CtxState.NEW,
}
_ISC, _ASC = Call.INITIALIZE_SECURITY_CONTEXT, Call.ACCEPT_SECURITY_CONTEXT
_QCA, _CAT = Call.QUERY_CONTEXT_ATTRIBUTES, Call.COMPLETE_AUTH_TOKEN
_DEL = Call.DELETE_SECURITY_CONTEXT

CONTEXT_TABLE: Mapping[tuple[CtxState, Call], Transition | Refusal] = {
    (CtxState.NEW, _ISC): Transition(_FIRST_LEG, ("ISC-001", "LIF-001")),
    (CtxState.NEW, _ASC): Transition(_FIRST_LEG, ("ASC-001", "LIF-001")),
    (CtxState.PARTIAL, _ISC): Transition(
        {**_LEG, LegOutcome.REJECTED: CtxState.PARTIAL}, ("ISC-002", "LIF-002")
    ),
    (CtxState.PARTIAL, _ASC): Transition(
        {**_LEG, LegOutcome.REJECTED: CtxState.PARTIAL}, ("ASC-002", "LIF-002")
    ),
    # ISC again on a complete context asks for reauthentication (ISCG); with an input token it
    # is out of sequence (ISC-008). ASC again is out of sequence (ASC-007).
    (CtxState.ESTABLISHED, _ISC): Transition(
        {**_LEG, LegOutcome.REJECTED: CtxState.ESTABLISHED}, ("ISC-007",)
    ),
    (CtxState.ESTABLISHED, _ASC): Refusal(SecStatus.SEC_E_OUT_OF_SEQUENCE, ("ASC-007",)),
    (CtxState.FAILED, _ISC): Refusal(SecStatus.SEC_E_OUT_OF_SEQUENCE, ("LIF-003",)),
    (CtxState.FAILED, _ASC): Refusal(SecStatus.SEC_E_OUT_OF_SEQUENCE, ("LIF-003",)),
    (CtxState.PARTIAL, _QCA): Transition({None: CtxState.PARTIAL}, ("QCA-002",)),
    (CtxState.ESTABLISHED, _QCA): Transition({None: CtxState.ESTABLISHED}, ("QCA-001",)),
    (CtxState.FAILED, _QCA): Transition({None: CtxState.FAILED}, ("QCA-002",)),
    (CtxState.PARTIAL, _CAT): Transition({None: CtxState.PARTIAL}, ("CAT-001",)),
    (CtxState.ESTABLISHED, _CAT): Transition({None: CtxState.ESTABLISHED}, ("CAT-001",)),
    (CtxState.FAILED, _CAT): Refusal(SecStatus.SEC_E_OUT_OF_SEQUENCE, ("CAT-002",)),
    (CtxState.PARTIAL, _DEL): Transition({None: CtxState.DELETED}, ("DEL-001", "LIF-004")),
    (CtxState.ESTABLISHED, _DEL): Transition({None: CtxState.DELETED}, ("DEL-001",)),
    (CtxState.FAILED, _DEL): Transition({None: CtxState.DELETED}, ("DEL-001", "LIF-004")),
}

# Context states in which the async twins behave as their sync calls at completion time.
CONTEXT_TABLE_ASYNC_ALIASES: Mapping[Call, Call] = {
    Call.INITIALIZE_SECURITY_CONTEXT_ASYNC: _ISC,
    Call.ACCEPT_SECURITY_CONTEXT_ASYNC: _ASC,
    Call.DELETE_SECURITY_CONTEXT_ASYNC: _DEL,
    Call.ACQUIRE_CREDENTIALS_HANDLE_ASYNC: Call.ACQUIRE_CREDENTIALS_HANDLE,
    Call.FREE_CREDENTIALS_HANDLE_ASYNC: Call.FREE_CREDENTIALS_HANDLE,
}

CREDENTIAL_TABLE: Mapping[tuple[CredState, Call], Transition] = {
    (CredState.LIVE, Call.FREE_CREDENTIALS_HANDLE): Transition(
        {None: CredState.RELEASED, LegOutcome.CONTINUE: CredState.ORPHANED}, ("FCH-001", "FCH-003")
    ),
    (CredState.LIVE, _ISC): Transition({None: CredState.LIVE}, ("FCH-003",)),
    (CredState.LIVE, _ASC): Transition({None: CredState.LIVE}, ("FCH-003",)),
    (CredState.ORPHANED, _DEL): Transition(
        {None: CredState.RELEASED, LegOutcome.CONTINUE: CredState.ORPHANED}, ("FCH-004",)
    ),
}


def context_step(state: CtxState, call: Call) -> Transition | Refusal:
    return CONTEXT_TABLE[(state, CONTEXT_TABLE_ASYNC_ALIASES.get(call, call))]


# Every status each call can return in this model: the documented codes plus those the rules
# add (each addition names its rule). The stateful tests assert returns stay inside these sets.
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
            SecStatus.SEC_E_BUFFER_TOO_SMALL,  # BUF-002
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
            SecStatus.SEC_E_BUFFER_TOO_SMALL,  # BUF-002
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
        {SecStatus.SEC_E_OK, SecStatus.SEC_E_INVALID_HANDLE, SecStatus.SEC_E_UNSUPPORTED_FUNCTION}
    ),
    Call.FREE_CONTEXT_BUFFER: frozenset({SecStatus.SEC_E_OK, SecStatus.SEC_E_INVALID_HANDLE}),
}


# -- async call contexts ---------------------------------------------------------------------


@attrs.frozen
class Misuse:
    """Undefined behaviour: strict mode raises SspiMisuse naming `rule`."""

    rule: str
    message: str


_ASYNC_OPS = (
    Call.ACQUIRE_CREDENTIALS_HANDLE_ASYNC,
    Call.INITIALIZE_SECURITY_CONTEXT_ASYNC,
    Call.ACCEPT_SECURITY_CONTEXT_ASYNC,
    Call.FREE_CREDENTIALS_HANDLE_ASYNC,
    Call.DELETE_SECURITY_CONTEXT_ASYNC,
)
ASYNC_OPERATIONS: tuple[Call, ...] = _ASYNC_OPS
_COMPLETE = "complete"  # the scheduler completing the pending call (not an API call)
_USE_AFTER_FREE = Misuse(
    "ASY-052",
    "the async context was freed with SspiFreeAsyncContext; create a new one "
    "(SspiCreateAsyncContext) instead of reusing a freed pointer",
)

ASYNC_TABLE: Mapping[tuple[AsyncState, Call | str], Transition | Refusal | Misuse] = {
    **{
        (AsyncState.FRESH, op): Transition({None: AsyncState.PENDING}, ("ASY-005",))
        for op in _ASYNC_OPS
    },
    **{
        (AsyncState.PENDING, op): Refusal(SecStatus.SEC_E_INVALID_PARAMETER, ("ASY-007",))
        for op in _ASYNC_OPS
    },
    **{
        (AsyncState.COMPLETED, op): Misuse(
            "ASY-014",
            "a new call on a completed async context needs SspiReinitAsyncContext first "
            "(the context's lifetime is one operation)",
        )
        for op in _ASYNC_OPS
    },
    **{(AsyncState.FREED, op): _USE_AFTER_FREE for op in _ASYNC_OPS},
    (AsyncState.PENDING, _COMPLETE): Transition({None: AsyncState.COMPLETED}, ("ASY-006",)),
    (AsyncState.FRESH, Call.REINIT_ASYNC_CONTEXT): Transition(
        {None: AsyncState.FRESH}, ("ASY-011",)
    ),
    (AsyncState.COMPLETED, Call.REINIT_ASYNC_CONTEXT): Transition(
        {None: AsyncState.FRESH}, ("ASY-011",)
    ),
    # The NTSTATUS comes from the profile (ASY-012): the pages name no code.
    (AsyncState.PENDING, Call.REINIT_ASYNC_CONTEXT): Refusal(
        NtStatus.STATUS_INVALID_DEVICE_STATE, ("ASY-012",)
    ),
    (AsyncState.FREED, Call.REINIT_ASYNC_CONTEXT): _USE_AFTER_FREE,
    (AsyncState.FRESH, Call.SET_ASYNC_NOTIFY_CALLBACK): Transition(
        {None: AsyncState.FRESH}, ("ASY-016",)
    ),
    (AsyncState.COMPLETED, Call.SET_ASYNC_NOTIFY_CALLBACK): Transition(
        {None: AsyncState.COMPLETED}, ("ASY-016",)
    ),
    (AsyncState.PENDING, Call.SET_ASYNC_NOTIFY_CALLBACK): Refusal(
        SecStatus.SEC_E_INVALID_PARAMETER, ("ASY-017",)
    ),
    (AsyncState.FREED, Call.SET_ASYNC_NOTIFY_CALLBACK): _USE_AFTER_FREE,
    (AsyncState.FREED, Call.GET_ASYNC_CALL_STATUS): _USE_AFTER_FREE,
    (AsyncState.FREED, Call.ASYNC_CONTEXT_REQUIRES_NOTIFY): _USE_AFTER_FREE,
    (AsyncState.FRESH, Call.FREE_ASYNC_CONTEXT): Transition({None: AsyncState.FREED}, ("ASY-050",)),
    (AsyncState.COMPLETED, Call.FREE_ASYNC_CONTEXT): Transition(
        {None: AsyncState.FREED}, ("ASY-050",)
    ),
    # Pending: allowed only when no notification is owed (ASY-051); the model checks the
    # callback beside this entry.
    (AsyncState.PENDING, Call.FREE_ASYNC_CONTEXT): Transition(
        {None: AsyncState.FREED}, ("ASY-051",)
    ),
    (AsyncState.FREED, Call.FREE_ASYNC_CONTEXT): Misuse(
        "ASY-053", "double SspiFreeAsyncContext: the context was already freed"
    ),
}


def async_step(state: AsyncState, call: Call | str) -> Transition | Refusal | Misuse | None:
    """The async table entry, or None where the call does not change or depend on the state."""
    return ASYNC_TABLE.get((state, call))


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
