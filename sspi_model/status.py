"""SECURITY_STATUS and NTSTATUS codes with their real values, names and meanings.

Values are from mingw-w64 winerror.h / ntstatus.h (see specs/rules.toml, STS-001). They are kept
as unsigned 32-bit integers; `lookup` accepts the signed form a C LONG would print too.
"""

from __future__ import annotations

import enum

import attrs

from sspi_model.values import Value

_U32 = 0xFFFFFFFF


class _ReprIntEnum(enum.IntEnum):
    # A repr that is valid Python, so Hypothesis reproducers run as printed; str is the bare
    # macro name (STS-007).
    def __repr__(self) -> str:
        return f"{type(self).__name__}.{self.name}"

    def __str__(self) -> str:
        return self.name


class SecStatus(_ReprIntEnum):
    """SECURITY_STATUS values, named exactly like the C macros."""

    SEC_E_OK = 0x00000000
    SEC_I_CONTINUE_NEEDED = 0x00090312
    SEC_I_COMPLETE_NEEDED = 0x00090313
    SEC_I_COMPLETE_AND_CONTINUE = 0x00090314
    SEC_I_LOCAL_LOGON = 0x00090315
    SEC_I_INCOMPLETE_CREDENTIALS = 0x00090320
    SEC_I_CONTEXT_EXPIRED = 0x00090317
    SEC_I_RENEGOTIATE = 0x00090321
    SEC_I_NO_LSA_CONTEXT = 0x00090323
    SEC_I_ASYNC_CALL_PENDING = 0x00090368
    SEC_E_INSUFFICIENT_MEMORY = 0x80090300
    SEC_E_INVALID_HANDLE = 0x80090301
    SEC_E_UNSUPPORTED_FUNCTION = 0x80090302
    SEC_E_TARGET_UNKNOWN = 0x80090303
    SEC_E_INTERNAL_ERROR = 0x80090304
    SEC_E_SECPKG_NOT_FOUND = 0x80090305
    SEC_E_NOT_OWNER = 0x80090306
    SEC_E_INVALID_TOKEN = 0x80090308
    SEC_E_QOP_NOT_SUPPORTED = 0x8009030A
    SEC_E_LOGON_DENIED = 0x8009030C
    SEC_E_UNKNOWN_CREDENTIALS = 0x8009030D
    SEC_E_NO_CREDENTIALS = 0x8009030E
    SEC_E_MESSAGE_ALTERED = 0x8009030F
    SEC_E_OUT_OF_SEQUENCE = 0x80090310
    SEC_E_NO_AUTHENTICATING_AUTHORITY = 0x80090311
    SEC_E_CONTEXT_EXPIRED = 0x80090317
    SEC_E_INCOMPLETE_MESSAGE = 0x80090318
    SEC_E_INCOMPLETE_CREDENTIALS = 0x80090320
    SEC_E_BUFFER_TOO_SMALL = 0x80090321
    SEC_E_WRONG_PRINCIPAL = 0x80090322
    SEC_E_DECRYPT_FAILURE = 0x80090330
    SEC_E_ALGORITHM_MISMATCH = 0x80090331
    SEC_E_SECURITY_QOS_FAILED = 0x80090332
    SEC_E_SHUTDOWN_IN_PROGRESS = 0x8009033F
    SEC_E_BAD_BINDINGS = 0x80090346
    SEC_E_INVALID_PARAMETER = 0x8009035D
    SEC_E_NO_CONTEXT = 0x80090361
    SEC_E_APPLICATION_PROTOCOL_MISMATCH = 0x80090367


class NtStatus(_ReprIntEnum):  # a family of its own beside SecStatus (STS-002)
    """NTSTATUS values the asynchronous API returns or leaks (SspiReinitAsyncContext: ASY-010, ASY-012)."""

    STATUS_SUCCESS = 0x00000000
    STATUS_PENDING = 0x00000103
    STATUS_DEVICE_BUSY = 0x80000011
    STATUS_UNSUCCESSFUL = 0xC0000001
    STATUS_INVALID_HANDLE = 0xC0000008
    STATUS_INVALID_PARAMETER = 0xC000000D
    STATUS_NO_MEMORY = 0xC0000017
    STATUS_LOGON_FAILURE = 0xC000006D
    STATUS_NO_TOKEN = 0xC000007C
    STATUS_INSUFFICIENT_RESOURCES = 0xC000009A
    STATUS_NOT_SUPPORTED = 0xC00000BB
    STATUS_INVALID_DEVICE_STATE = 0xC0000184
    STATUS_SHUTDOWN_IN_PROGRESS = 0xC00002FE
    STATUS_RESOURCE_IN_USE = 0xC0000708


MEANINGS: dict[int, str] = {
    SecStatus.SEC_E_OK: "The function succeeded.",
    SecStatus.SEC_I_CONTINUE_NEEDED: "Send the output token to the peer and call again with its reply.",
    SecStatus.SEC_I_COMPLETE_NEEDED: "Finish building the message, then call CompleteAuthToken.",
    SecStatus.SEC_I_COMPLETE_AND_CONTINUE: "Call CompleteAuthToken, send the token, and continue.",
    SecStatus.SEC_I_LOCAL_LOGON: "The logon was completed locally, without a network exchange.",
    SecStatus.SEC_I_INCOMPLETE_CREDENTIALS: (
        "The server asked for client authentication and the credential has no acceptable "
        "certificate; acquire a new credential and call again."
    ),
    SecStatus.SEC_I_CONTEXT_EXPIRED: (
        "The peer closed the connection (TLS close_notify): run the shutdown procedure."
    ),
    SecStatus.SEC_I_RENEGOTIATE: "The peer asked to renegotiate the context.",
    SecStatus.SEC_I_NO_LSA_CONTEXT: "There is no LSA-side context (kernel delete path).",
    SecStatus.SEC_I_ASYNC_CALL_PENDING: "The asynchronous call has been queued and has not completed.",
    SecStatus.SEC_E_INSUFFICIENT_MEMORY: "Not enough memory is available to complete the request.",
    SecStatus.SEC_E_INVALID_HANDLE: "The handle passed to the function is not valid.",
    SecStatus.SEC_E_UNSUPPORTED_FUNCTION: "The function or the requested option is not supported.",
    SecStatus.SEC_E_TARGET_UNKNOWN: "The specified target is unknown or unreachable.",
    SecStatus.SEC_E_INTERNAL_ERROR: "An error occurred that did not map to an SSPI error code.",
    SecStatus.SEC_E_SECPKG_NOT_FOUND: "The requested security package does not exist.",
    SecStatus.SEC_E_NOT_OWNER: "The caller is not the owner of the desired credentials.",
    SecStatus.SEC_E_INVALID_TOKEN: "The token supplied to the function is not valid.",
    SecStatus.SEC_E_QOP_NOT_SUPPORTED: (
        "The quality of protection asked for is not supported by the security package."
    ),
    SecStatus.SEC_E_LOGON_DENIED: "The logon attempt failed.",
    SecStatus.SEC_E_UNKNOWN_CREDENTIALS: "The credentials supplied to the package were not recognized.",
    SecStatus.SEC_E_NO_CREDENTIALS: "No credentials are available in the security package.",
    SecStatus.SEC_E_MESSAGE_ALTERED: "The message or signature supplied for verification was altered.",
    SecStatus.SEC_E_OUT_OF_SEQUENCE: "The message supplied was out of sequence.",
    SecStatus.SEC_E_NO_AUTHENTICATING_AUTHORITY: "No authority could be contacted for authentication.",
    SecStatus.SEC_E_CONTEXT_EXPIRED: "The context has expired and can no longer be used.",
    SecStatus.SEC_E_INCOMPLETE_MESSAGE: (
        "The input is incomplete; read more data (the SECBUFFER_MISSING count) and call again."
    ),
    SecStatus.SEC_E_INCOMPLETE_CREDENTIALS: (
        "The credentials supplied were not complete and could not be verified."
    ),
    SecStatus.SEC_E_BUFFER_TOO_SMALL: "The buffers supplied to the function were too small.",
    SecStatus.SEC_E_WRONG_PRINCIPAL: "The target principal name is incorrect.",
    SecStatus.SEC_E_DECRYPT_FAILURE: "The specified data could not be decrypted.",
    SecStatus.SEC_E_ALGORITHM_MISMATCH: "The client and server cannot communicate: no common algorithm.",
    SecStatus.SEC_E_SECURITY_QOS_FAILED: "The security context could not provide the requested QOS.",
    SecStatus.SEC_E_SHUTDOWN_IN_PROGRESS: "A system shutdown is in progress.",
    SecStatus.SEC_E_BAD_BINDINGS: "The client's supplied channel bindings were incorrect.",
    SecStatus.SEC_E_INVALID_PARAMETER: "One or more of the parameters passed to the function was invalid.",
    SecStatus.SEC_E_NO_CONTEXT: "The requested security context does not exist.",
    SecStatus.SEC_E_APPLICATION_PROTOCOL_MISMATCH: "No common application protocol exists.",
}

NT_MEANINGS: dict[int, str] = {
    NtStatus.STATUS_SUCCESS: "The operation completed successfully.",
    NtStatus.STATUS_PENDING: "The operation that was requested is pending completion.",
    NtStatus.STATUS_DEVICE_BUSY: "The device is currently busy.",
    NtStatus.STATUS_UNSUCCESSFUL: "The requested operation was unsuccessful.",
    NtStatus.STATUS_INVALID_HANDLE: "An invalid HANDLE was specified.",
    NtStatus.STATUS_INVALID_PARAMETER: "An invalid parameter was passed to a service or function.",
    NtStatus.STATUS_NO_MEMORY: "Not enough virtual memory or paging file quota is available.",
    NtStatus.STATUS_LOGON_FAILURE: "The attempted logon is invalid (user name or password).",
    NtStatus.STATUS_NO_TOKEN: "An attempt was made to reference a token that does not exist.",
    NtStatus.STATUS_INSUFFICIENT_RESOURCES: "Insufficient system resources exist to complete the call.",
    NtStatus.STATUS_NOT_SUPPORTED: "The request is not supported.",
    NtStatus.STATUS_INVALID_DEVICE_STATE: "The device is not in a valid state to perform this request.",
    NtStatus.STATUS_SHUTDOWN_IN_PROGRESS: "A system shutdown is in progress.",
    NtStatus.STATUS_RESOURCE_IN_USE: "The resource is in use.",
}


@attrs.frozen(repr=False, eq=False)
class StatusInfo(Value):
    """What `lookup` knows about one 32-bit value."""

    value: int
    name: str
    meaning: str
    family: str  # "SECURITY_STATUS", "NTSTATUS" or "unknown"

    @property
    def signed(self) -> int:
        return self.value - (1 << 32) if self.value & 0x80000000 else self.value


def to_unsigned(value: int) -> int:
    """The unsigned 32-bit form of a signed or unsigned status value."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"status value must be an int, got {type(value).__name__}")
    if not -(1 << 31) <= value <= _U32:
        raise ValueError(f"{value} is not a 32-bit status value")
    return value & _U32


def lookup(value: int | str) -> StatusInfo:
    """Name and meaning of any status, given as an int (signed or unsigned) or a macro name.

    SECURITY_STATUS names win over NTSTATUS ones for values both families share (0).
    """
    if isinstance(value, str):  # a macro name; an unknown one is a ValueError (STS-004)
        name = value.strip()
        if name in SecStatus.__members__:
            sec = SecStatus[name]
            return StatusInfo(int(sec), sec.name, MEANINGS[sec], "SECURITY_STATUS")
        if name in NtStatus.__members__:
            nt = NtStatus[name]
            return StatusInfo(int(nt), nt.name, NT_MEANINGS[nt], "NTSTATUS")
        raise ValueError(f"unknown status name {name!r}")
    unsigned = to_unsigned(value)  # signed (a C LONG) and unsigned give the same answer (STS-003)
    if unsigned in SecStatus._value2member_map_:
        sec = SecStatus(unsigned)
        return StatusInfo(unsigned, sec.name, MEANINGS[sec], "SECURITY_STATUS")
    if unsigned in NtStatus._value2member_map_:
        nt = NtStatus(unsigned)
        return StatusInfo(unsigned, nt.name, NT_MEANINGS[nt], "NTSTATUS")
    # STS-006: every member has a meaning; anything else is family 'unknown' (STS-004).
    return StatusInfo(unsigned, f"0x{unsigned:08X}", "Not a code this model knows.", "unknown")


def is_error(value: int) -> bool:
    """FAILED(): the severity bit is set (STS-005)."""
    return bool(to_unsigned(value) & 0x80000000)


def is_success(value: int) -> bool:
    """SUCCEEDED(): success and informational codes (SEC_E_OK, SEC_I_*)."""
    return not is_error(value)
