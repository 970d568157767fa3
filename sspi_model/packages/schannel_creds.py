"""SCHANNEL_CRED and SCH_CREDENTIALS as callers build them (CRD rules).

Schannel's AcquireCredentialsHandle takes one of two structures in pAuthData, told apart by
their first field, dwVersion (schannel.h):
    SCHANNEL_CRED     dwVersion = SCHANNEL_CRED_VERSION (4), "for legacy code": the
                      certificates, grbitEnabledProtocols, cipher strengths, dwFlags
    SCH_CREDENTIALS   dwVersion = SCH_CREDENTIALS_VERSION (5), Windows 10 1809 and later: the
                      certificates, dwFlags, and TLS_PARAMETERS (grbitDisabledProtocols ...)
`resolve` reads either into what the handshake uses: the certificate, the lowest and highest
TLS version the model may negotiate, and whether the server name is checked. The model speaks
TLS 1.2 and TLS 1.3 only; the bits of older protocols are accepted and have no effect.
"""

from __future__ import annotations

from typing import Any

import attrs

from sspi_model.constants import CredentialUse
from sspi_model.status import SecStatus
from sspi_model.values import Value

# dwVersion (schannel.h)
SCH_CRED_V1, SCH_CRED_V2, SCH_CRED_V3 = 1, 2, 3
SCHANNEL_CRED_VERSION = 4
SCH_CREDENTIALS_VERSION = 5

# SP_PROT_* (schannel.h): (server, client) bits per protocol
SP_PROT_SSL2_SERVER, SP_PROT_SSL2_CLIENT = 0x4, 0x8
SP_PROT_SSL3_SERVER, SP_PROT_SSL3_CLIENT = 0x10, 0x20
SP_PROT_TLS1_0_SERVER, SP_PROT_TLS1_0_CLIENT = 0x40, 0x80
SP_PROT_TLS1_1_SERVER, SP_PROT_TLS1_1_CLIENT = 0x100, 0x200
SP_PROT_TLS1_2_SERVER, SP_PROT_TLS1_2_CLIENT = 0x400, 0x800
SP_PROT_TLS1_3_SERVER, SP_PROT_TLS1_3_CLIENT = 0x1000, 0x2000
SP_PROT_SSL2 = SP_PROT_SSL2_SERVER | SP_PROT_SSL2_CLIENT
SP_PROT_TLS1_2 = SP_PROT_TLS1_2_SERVER | SP_PROT_TLS1_2_CLIENT

# dwFlags (schannel.h)
SCH_CRED_NO_SYSTEM_MAPPER = 0x2
SCH_CRED_NO_SERVERNAME_CHECK = 0x4
SCH_CRED_MANUAL_CRED_VALIDATION = 0x8
SCH_CRED_NO_DEFAULT_CREDS = 0x10
SCH_CRED_AUTO_CRED_VALIDATION = 0x20
SCH_CRED_USE_DEFAULT_CREDS = 0x40
SCH_CRED_DISABLE_RECONNECTS = 0x80
SCH_CRED_REVOCATION_CHECK_END_CERT = 0x100
SCH_CRED_REVOCATION_CHECK_CHAIN = 0x200
SCH_CRED_REVOCATION_CHECK_CHAIN_EXCLUDE_ROOT = 0x400
SCH_CRED_IGNORE_NO_REVOCATION_CHECK = 0x800
SCH_CRED_IGNORE_REVOCATION_OFFLINE = 0x1000
SCH_SEND_ROOT_CERT = 0x40000
SCH_USE_STRONG_CRYPTO = 0x400000
TLS_PARAMS_OPTIONAL = 0x1  # TLS_PARAMETERS.dwFlags, server only
SCH_MAX_EXT_SUBSCRIPTIONS = 16  # "it is an error" to exceed 16 of any TLS_PARAMETERS item
NULL_CIPHERS_ONLY = 0xFFFFFFFF  # dwMinimum/MaximumCipherStrength -1: both, or neither

_REVOCATION = (
    SCH_CRED_REVOCATION_CHECK_END_CERT
    | SCH_CRED_REVOCATION_CHECK_CHAIN
    | SCH_CRED_REVOCATION_CHECK_CHAIN_EXCLUDE_ROOT
)
TLS12, TLS13 = 0x0303, 0x0304
PROTOCOLS = {"tls1.2": TLS12, "tls1.3": TLS13}  # SchannelCred.protocols
_VERSIONS = ((TLS12, SP_PROT_TLS1_2_SERVER, SP_PROT_TLS1_2_CLIENT),
             (TLS13, SP_PROT_TLS1_3_SERVER, SP_PROT_TLS1_3_CLIENT))  # fmt: skip


def _u32(instance: Any, attribute: attrs.Attribute[int], value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 0xFFFFFFFF:
        raise TypeError(f"{attribute.name} must be a 32-bit unsigned int, got {value!r:.40}")


@attrs.frozen(repr=False, eq=False)
class Certificate(Value):
    """An opaque certificate: only its subject (e.g. "CN=srv.contoso.com") and expiry."""

    subject: str = attrs.field(validator=attrs.validators.instance_of(str))
    expired: bool = attrs.field(default=False, validator=attrs.validators.instance_of(bool))


@attrs.frozen(repr=False, eq=False)
class SchannelCred(Value):
    """SCHANNEL_CRED stand-in: the certificate to present and the highest protocol to use."""

    certificate: Certificate | None = attrs.field(
        default=None, validator=attrs.validators.optional(attrs.validators.instance_of(Certificate))
    )
    protocols: str = attrs.field(
        default="tls1.2",
        validator=[attrs.validators.instance_of(str), attrs.validators.in_(tuple(PROTOCOLS))],
    )
    # A server that sends a TLS 1.3 NewSessionTicket after its last leg (SHD-012).
    session_tickets: bool = attrs.field(default=False, validator=attrs.validators.instance_of(bool))


def _certificates(instance: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    if not isinstance(value, tuple) or not all(isinstance(c, Certificate) for c in value):
        raise TypeError(f"{attribute.name} must be a tuple of Certificate, got {value!r:.60}")


def _strings(instance: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    if not isinstance(value, tuple) or not all(isinstance(item, str) for item in value):
        raise TypeError(f"{attribute.name} must be a tuple of str, got {value!r:.60}")


@attrs.frozen(repr=False, eq=False)
class LegacySchannelCred(Value):
    """SCHANNEL_CRED: `credentials` is paCred (the first certificate is used),
    `enabled_protocols` grbitEnabledProtocols (0: Schannel chooses)."""

    version: int = attrs.field(default=SCHANNEL_CRED_VERSION, validator=_u32)
    credentials: tuple[Any, ...] = attrs.field(default=(), validator=_certificates)
    enabled_protocols: int = attrs.field(default=0, validator=_u32)
    minimum_cipher_strength: int = attrs.field(default=0, validator=_u32)
    maximum_cipher_strength: int = attrs.field(default=0, validator=_u32)
    session_lifespan: int = attrs.field(default=0, validator=_u32)
    flags: int = attrs.field(default=0, validator=_u32)
    cred_format: int = attrs.field(default=0, validator=_u32)


@attrs.frozen(repr=False, eq=False)
class TlsParameters(Value):
    """TLS_PARAMETERS: `alpn_ids` rgstrAlpnIds (empty: the entry applies to every protocol),
    `disabled_protocols` grbitDisabledProtocols (0: the defaults). pDisabledCrypto is not
    modelled: the model has one cipher suite."""

    alpn_ids: tuple[str, ...] = attrs.field(default=(), validator=_strings)
    disabled_protocols: int = attrs.field(default=0, validator=_u32)
    flags: int = attrs.field(default=0, validator=_u32)


def _parameters(instance: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    if not isinstance(value, tuple) or not all(isinstance(item, TlsParameters) for item in value):
        raise TypeError(f"{attribute.name} must be a tuple of TlsParameters, got {value!r:.60}")


@attrs.frozen(repr=False, eq=False)
class SchCredentials(Value):
    """SCH_CREDENTIALS: `credentials` is paCred, `tls_parameters` pTlsParameters."""

    version: int = attrs.field(default=SCH_CREDENTIALS_VERSION, validator=_u32)
    cred_format: int = attrs.field(default=0, validator=_u32)
    credentials: tuple[Any, ...] = attrs.field(default=(), validator=_certificates)
    session_lifespan: int = attrs.field(default=0, validator=_u32)
    flags: int = attrs.field(default=0, validator=_u32)
    tls_parameters: tuple[TlsParameters, ...] = attrs.field(default=(), validator=_parameters)


CALLER_STRUCTS = (LegacySchannelCred, SchCredentials)


@attrs.frozen(repr=False, eq=False)
class Resolved(Value):
    """What the handshake takes from a caller's structure."""

    certificate: Any  # Certificate | None
    minimum: int  # lowest TLS version (0x0303 TLS 1.2, 0x0304 TLS 1.3)
    maximum: int
    check_name: bool  # the server certificate's name is compared with the target (SCH-006)


Outcome = tuple[SecStatus, Resolved | None, tuple[str, ...]]
_UNKNOWN = SecStatus.SEC_E_UNKNOWN_CREDENTIALS


def resolve(cred: LegacySchannelCred | SchCredentials, use: int) -> Outcome:
    """The handshake settings of a caller's structure, or the status ACH returns."""
    legacy = isinstance(cred, LegacySchannelCred)
    wanted = SCHANNEL_CRED_VERSION if legacy else SCH_CREDENTIALS_VERSION
    if cred.version != wanted:  # CRD-001: a version the structure does not have
        return _UNKNOWN, None, ("CRD-001",)
    if _conflicting(cred):  # CRD-002
        return _UNKNOWN, None, ("CRD-002",)
    server = bool(use & CredentialUse.INBOUND)
    if isinstance(cred, LegacySchannelCred):
        versions = _legacy_versions(cred, server)
    else:
        versions = _tls_versions(cred, server)
    if not versions:  # CRD-003: no protocol the model speaks is left
        return SecStatus.SEC_E_ALGORITHM_MISMATCH, None, ("CRD-003",)
    # NO_SERVERNAME_CHECK and MANUAL_CRED_VALIDATION: the caller checks the server (CRD-005).
    unchecked = SCH_CRED_NO_SERVERNAME_CHECK | SCH_CRED_MANUAL_CRED_VALIDATION
    certificate = cred.credentials[0] if cred.credentials else None
    resolved = Resolved(certificate, min(versions), max(versions), not cred.flags & unchecked)
    return SecStatus.SEC_E_OK, resolved, ("CRD-003",)


def _conflicting(cred: LegacySchannelCred | SchCredentials) -> bool:
    """The combinations schannel.h and the structure pages call mutually exclusive or an
    error (CRD-002)."""
    flags = cred.flags
    both = (SCH_CRED_MANUAL_CRED_VALIDATION | SCH_CRED_AUTO_CRED_VALIDATION,
            SCH_CRED_NO_DEFAULT_CREDS | SCH_CRED_USE_DEFAULT_CREDS)  # fmt: skip
    if any(flags & pair == pair for pair in both) or (flags & _REVOCATION).bit_count() > 1:
        return True
    if isinstance(cred, LegacySchannelCred):
        mask = cred.enabled_protocols
        strengths = (cred.minimum_cipher_strength, cred.maximum_cipher_strength)
        null_ciphers = strengths.count(NULL_CIPHERS_ONLY)
        return bool(mask & SP_PROT_SSL2 and mask & SP_PROT_TLS1_2) or null_ciphers == 1
    entries = cred.tls_parameters
    catch_all = [entry for entry in entries if not entry.alpn_ids]
    return (
        len(entries) > SCH_MAX_EXT_SUBSCRIPTIONS
        or any(len(entry.alpn_ids) > SCH_MAX_EXT_SUBSCRIPTIONS for entry in entries)
        or len(catch_all) > 1
    )


def _legacy_versions(cred: LegacySchannelCred, server: bool) -> list[int]:
    """SCHANNEL_CRED: TLS 1.2 when grbitEnabledProtocols is 0 or enables it for this side;
    never TLS 1.3, which Schannel does not negotiate with SCHANNEL_CRED (CRD-003)."""
    mask = cred.enabled_protocols
    bit = SP_PROT_TLS1_2_SERVER if server else SP_PROT_TLS1_2_CLIENT
    return [TLS12] if mask == 0 or mask & bit else []


def _tls_versions(cred: SchCredentials, server: bool) -> list[int]:
    """SCH_CREDENTIALS: TLS 1.2 and 1.3 less what the entry naming no ALPN IDs disables for
    this side; an optional entry (TLS_PARAMS_OPTIONAL) that would leave nothing is ignored."""
    versions = [TLS12, TLS13]
    for entry in cred.tls_parameters:
        if entry.alpn_ids:
            continue  # per-protocol policies are not modelled (CRD-003)
        left = [
            version
            for version, server_bit, client_bit in _VERSIONS
            if version in versions
            and not entry.disabled_protocols & (server_bit if server else client_bit)
        ]
        if left or not (server and entry.flags & TLS_PARAMS_OPTIONAL):
            versions = left
    return versions
