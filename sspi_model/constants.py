"""Flag and attribute constants from sspi.h (mingw-w64 line numbers in specs/rules.toml)."""

from __future__ import annotations

import enum
import functools


class _ReprIntEnum(enum.IntEnum):
    def __repr__(self) -> str:
        return f"{type(self).__name__}.{self.name}"


class _ReprIntFlag(enum.IntFlag):
    # API-008: valid Python on every supported version (3.11 prints `<ContextReq.A|B: 3>`):
    # `ContextReq.A | ContextReq.B`, `ContextReq(0)`, and bits without a name as
    # `ContextReq(0x40000000)`, so a result that holds flags evaluates back to itself.
    def __repr__(self) -> str:
        kind = type(self).__name__
        rest = int(self)
        if rest == 0:
            return f"{kind}(0)"
        parts = []
        for bit, name in _named_bits(type(self)):
            if rest & bit:
                parts.append(f"{kind}.{name}")
                rest &= ~bit
        if rest:
            parts.append(f"{kind}({rest:#x})")
        return " | ".join(parts)


@functools.cache
def _named_bits(flag: type[enum.IntFlag]) -> tuple[tuple[int, str], ...]:
    """(bit, canonical member name) for every one-bit member, lowest bit first."""
    bits: dict[int, str] = {}
    for member in flag.__members__.values():
        value = int(member)
        if value > 0 and value & (value - 1) == 0 and member.name is not None:
            bits.setdefault(value, member.name)
    return tuple(sorted(bits.items()))


class CredentialUse(_ReprIntEnum):
    """fCredentialUse (SECPKG_CRED_*)."""

    INBOUND = 0x1
    OUTBOUND = 0x2
    BOTH = 0x3
    AUTOLOGON_RESTRICTED = 0x10
    PROCESS_POLICY_ONLY = 0x20


class ContextReq(_ReprIntFlag):
    """ISC_REQ_* flags (ASC_REQ_* share most bit values; see AcceptReq)."""

    DELEGATE = 0x1
    MUTUAL_AUTH = 0x2
    REPLAY_DETECT = 0x4
    SEQUENCE_DETECT = 0x8
    CONFIDENTIALITY = 0x10
    USE_SESSION_KEY = 0x20
    PROMPT_FOR_CREDS = 0x40
    USE_SUPPLIED_CREDS = 0x80
    ALLOCATE_MEMORY = 0x100
    USE_DCE_STYLE = 0x200
    DATAGRAM = 0x400
    CONNECTION = 0x800
    EXTENDED_ERROR = 0x4000
    STREAM = 0x8000
    INTEGRITY = 0x10000
    MANUAL_CRED_VALIDATION = 0x80000
    UNVERIFIED_TARGET_NAME = 0x20000000


class AcceptReq(_ReprIntFlag):
    """ASC_REQ_* flags."""

    DELEGATE = 0x1
    MUTUAL_AUTH = 0x2
    REPLAY_DETECT = 0x4
    SEQUENCE_DETECT = 0x8
    CONFIDENTIALITY = 0x10
    USE_SESSION_KEY = 0x20
    ALLOCATE_MEMORY = 0x100
    USE_DCE_STYLE = 0x200
    DATAGRAM = 0x400
    CONNECTION = 0x800
    EXTENDED_ERROR = 0x8000
    STREAM = 0x10000
    INTEGRITY = 0x20000
    MUTUAL_AUTH_CLIENT_CERT = 0x2  # Schannel reads MUTUAL_AUTH as "ask for a client certificate"


ISC_REQ_DELEGATE = 0x1
ISC_REQ_PROMPT_FOR_CREDS = 0x40
ISC_REQ_ALLOCATE_MEMORY = 0x100
ISC_REQ_CONNECTION = 0x800
ASC_REQ_DELEGATE = 0x1
ASC_REQ_MUTUAL_AUTH = 0x2
ASC_REQ_ALLOCATE_MEMORY = 0x100
ASC_REQ_CONNECTION = 0x800
ASC_REQ_STREAM = 0x10000
ISC_RET_ALLOCATED_MEMORY = 0x100
ASC_RET_ALLOCATED_MEMORY = 0x100

SECURITY_NATIVE_DREP = 0x10
SECURITY_NETWORK_DREP = 0x0


class SecPkgAttr(_ReprIntEnum):
    """ulAttribute values for QueryContextAttributes (SECPKG_ATTR_*)."""

    SECPKG_ATTR_SIZES = 0
    SECPKG_ATTR_NAMES = 1
    SECPKG_ATTR_LIFESPAN = 2
    SECPKG_ATTR_STREAM_SIZES = 4
    SECPKG_ATTR_KEY_INFO = 5
    SECPKG_ATTR_AUTHORITY = 6
    SECPKG_ATTR_SESSION_KEY = 9
    SECPKG_ATTR_PACKAGE_INFO = 10
    SECPKG_ATTR_NEGOTIATION_INFO = 12
    SECPKG_ATTR_NATIVE_NAMES = 13
    SECPKG_ATTR_FLAGS = 14
    SECPKG_ATTR_UNIQUE_BINDINGS = 25
    SECPKG_ATTR_ENDPOINT_BINDINGS = 26
    SECPKG_ATTR_APPLICATION_PROTOCOL = 35
    # schannel.h
    SECPKG_ATTR_REMOTE_CERT_CONTEXT = 0x53
    SECPKG_ATTR_LOCAL_CERT_CONTEXT = 0x54
    SECPKG_ATTR_ISSUER_LIST_EX = 0x59
    SECPKG_ATTR_CONNECTION_INFO = 0x5A
    SECPKG_ATTR_SESSION_INFO = 0x5D
    SECPKG_ATTR_CIPHER_INFO = 0x64


SECPKG_ATTR_SIZES = SecPkgAttr.SECPKG_ATTR_SIZES
SECPKG_ATTR_NAMES = SecPkgAttr.SECPKG_ATTR_NAMES
SECPKG_ATTR_LIFESPAN = SecPkgAttr.SECPKG_ATTR_LIFESPAN
SECPKG_ATTR_STREAM_SIZES = SecPkgAttr.SECPKG_ATTR_STREAM_SIZES
SECPKG_ATTR_PACKAGE_INFO = SecPkgAttr.SECPKG_ATTR_PACKAGE_INFO
SECPKG_ATTR_NEGOTIATION_INFO = SecPkgAttr.SECPKG_ATTR_NEGOTIATION_INFO
SECPKG_ATTR_KEY_INFO = SecPkgAttr.SECPKG_ATTR_KEY_INFO
SECPKG_ATTR_AUTHORITY = SecPkgAttr.SECPKG_ATTR_AUTHORITY
SECPKG_ATTR_SESSION_KEY = SecPkgAttr.SECPKG_ATTR_SESSION_KEY
SECPKG_ATTR_NATIVE_NAMES = SecPkgAttr.SECPKG_ATTR_NATIVE_NAMES
SECPKG_ATTR_FLAGS = SecPkgAttr.SECPKG_ATTR_FLAGS
SECPKG_ATTR_UNIQUE_BINDINGS = SecPkgAttr.SECPKG_ATTR_UNIQUE_BINDINGS
SECPKG_ATTR_ENDPOINT_BINDINGS = SecPkgAttr.SECPKG_ATTR_ENDPOINT_BINDINGS
SECPKG_ATTR_APPLICATION_PROTOCOL = SecPkgAttr.SECPKG_ATTR_APPLICATION_PROTOCOL
SECPKG_ATTR_CONNECTION_INFO = SecPkgAttr.SECPKG_ATTR_CONNECTION_INFO
SECPKG_ATTR_SESSION_INFO = SecPkgAttr.SECPKG_ATTR_SESSION_INFO

# SecPkgContext_NegotiationInfo.NegotiationState (sspi.h)
SECPKG_NEGOTIATION_COMPLETE = 0
SECPKG_NEGOTIATION_OPTIMISTIC = 1
SECPKG_NEGOTIATION_IN_PROGRESS = 2

# SEC_APPLICATION_PROTOCOL_NEGOTIATION_STATUS / _EXT (sspi.h)
SecApplicationProtocolNegotiationStatus_None = 0
SecApplicationProtocolNegotiationStatus_Success = 1
SecApplicationProtocolNegotiationStatus_SelectedClientOnly = 2
SecApplicationProtocolNegotiationExt_None = 0
SecApplicationProtocolNegotiationExt_NPN = 1
SecApplicationProtocolNegotiationExt_ALPN = 2

# SecPkgContext_ConnectionInfo.dwProtocol bits (schannel.h)
SP_PROT_TLS1_2_SERVER = 0x400
SP_PROT_TLS1_2_CLIENT = 0x800
SP_PROT_TLS1_3_SERVER = 0x1000
SP_PROT_TLS1_3_CLIENT = 0x2000
# ALG_IDs (wincrypt.h) the model's Schannel reports.
CALG_AES_256 = 0x6610
CALG_SHA_384 = 0x800D
CALG_ECDH_EPHEM = 0xAE06
SSL_SESSION_RECONNECT = 1

# A TimeStamp meaning "never expires" (the largest positive LARGE_INTEGER), which Windows
# reports for NTLM credentials and contexts.
TIMESTAMP_NEVER = 0x7FFFFFFFFFFFFFFF

# Quality of protection (fQOP / pfQOP) of the message functions (sspi.h).
SECQOP_WRAP_NO_ENCRYPT = 0x80000001  # also KERB_WRAP_NO_ENCRYPT: a header/trailer, no sealing
SECQOP_WRAP_OOB_DATA = 0x40000000  # Schannel: the DATA buffer is a two-byte alert

# The control tokens of ApplyControlToken (schannel.h): the buffer starts with this DWORD.
SCHANNEL_RENEGOTIATE = 0
SCHANNEL_SHUTDOWN = 1
SCHANNEL_ALERT = 2
SCHANNEL_SESSION = 3

# QueryCredentialsAttributes (sspi.h, minschannel.h)
SECPKG_CRED_ATTR_NAMES = 1
SECPKG_ATTR_SUPPORTED_ALGS = 0x56
SECPKG_ATTR_CIPHER_STRENGTHS = 0x57
SECPKG_ATTR_SUPPORTED_PROTOCOLS = 0x58
