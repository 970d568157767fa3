"""sspi-model: a behavioural reference model of the Windows SSPI security-context lifecycle."""

import importlib
from typing import TYPE_CHECKING, Any

from sspi_model.async_api import AsyncContext, CallbackError, MisuseEvent, Out, SspiMisuse
from sspi_model.backends.base import BackendFailure, Capabilities
from sspi_model.buffers import NULL_DESCRIPTOR, NullDescriptor, SecBuffer, SecBufferType
from sspi_model.constants import (
    SECPKG_ATTR_LIFESPAN,
    SECPKG_ATTR_NAMES,
    SECPKG_ATTR_PACKAGE_INFO,
    SECPKG_ATTR_SIZES,
    SECPKG_ATTR_STREAM_SIZES,
    AcceptReq,
    ContextReq,
    CredentialUse,
    SecPkgAttr,
)
from sspi_model.events import CallEvent, CompletionEvent, MisuseReport, NotifyEvent
from sspi_model.handles import HandleClass, HandleKind, SecHandle
from sspi_model.lifecycle import (
    AsyncOutcome,
    AsyncState,
    Call,
    CredState,
    CtxState,
    Guard,
    LegOutcome,
    MessageOutcome,
    Misuse,
    Refs,
    Refusal,
    Transition,
)
from sspi_model.packages.base import AuthIdentity, Environment, LegResult, MessageLeg
from sspi_model.profiles import PROFILES, Profile
from sspi_model.results import (
    AcquireCredentialsResult,
    ApplicationProtocol,
    CertificateContext,
    CipherInfo,
    CipherStrengths,
    ConnectionInfo,
    ContextBindings,
    ContextFlags,
    ContextKeyInfo,
    ContextLifespan,
    ContextNames,
    ContextNativeNames,
    ContextNegotiationInfo,
    ContextPackageInfo,
    ContextSessionKey,
    ContextSizes,
    CredentialNames,
    EnumerateSecurityPackagesResult,
    IssuerListInfoEx,
    MessageResult,
    PackageInfo,
    QueryContextAttributesResult,
    QueryCredentialsAttributesResult,
    QuerySecurityPackageInfoResult,
    SecurityContextResult,
    SessionInfo,
    Statistics,
    StreamSizes,
    SupportedAlgs,
    SupportedProtocols,
)
from sspi_model.scheduling import (
    InlineScheduler,
    ManualScheduler,
    RandomScheduler,
    ThreadedScheduler,
)
from sspi_model.sspi import Sspi
from sspi_model.status import NtStatus, SecStatus, StatusInfo, is_error, is_success, lookup

if TYPE_CHECKING:
    from sspi_model.packages.alpn import application_protocols
    from sspi_model.packages.schannel_creds import (
        SCH_CREDENTIALS_VERSION,
        SCHANNEL_CRED_VERSION,
        Certificate,
        LegacySchannelCred,
        SchannelCred,
        SchCredentials,
        TlsParameters,
    )
    from sspi_model.testing.divergence import Divergence, KnownDivergence

__all__ = [
    "NULL_DESCRIPTOR",
    "PROFILES",
    "SCHANNEL_CRED_VERSION",
    "SCH_CREDENTIALS_VERSION",
    "SECPKG_ATTR_LIFESPAN",
    "SECPKG_ATTR_NAMES",
    "SECPKG_ATTR_PACKAGE_INFO",
    "SECPKG_ATTR_SIZES",
    "SECPKG_ATTR_STREAM_SIZES",
    "AcceptReq",
    "AcquireCredentialsResult",
    "ApplicationProtocol",
    "AsyncContext",
    "AsyncOutcome",
    "AsyncState",
    "AuthIdentity",
    "BackendFailure",
    "Call",
    "CallEvent",
    "CallbackError",
    "Capabilities",
    "Certificate",
    "CertificateContext",
    "CipherInfo",
    "CipherStrengths",
    "CompletionEvent",
    "ConnectionInfo",
    "ContextBindings",
    "ContextFlags",
    "ContextKeyInfo",
    "ContextLifespan",
    "ContextNames",
    "ContextNativeNames",
    "ContextNegotiationInfo",
    "ContextPackageInfo",
    "ContextReq",
    "ContextSessionKey",
    "ContextSizes",
    "CredState",
    "CredentialNames",
    "CredentialUse",
    "CtxState",
    "Divergence",
    "EnumerateSecurityPackagesResult",
    "Environment",
    "Guard",
    "HandleClass",
    "HandleKind",
    "InlineScheduler",
    "IssuerListInfoEx",
    "KnownDivergence",
    "LegOutcome",
    "LegResult",
    "LegacySchannelCred",
    "ManualScheduler",
    "MessageLeg",
    "MessageOutcome",
    "MessageResult",
    "Misuse",
    "MisuseEvent",
    "MisuseReport",
    "NotifyEvent",
    "NtStatus",
    "NullDescriptor",
    "Out",
    "PackageInfo",
    "Profile",
    "QueryContextAttributesResult",
    "QueryCredentialsAttributesResult",
    "QuerySecurityPackageInfoResult",
    "RandomScheduler",
    "Refs",
    "Refusal",
    "SchCredentials",
    "SchannelCred",
    "SecBuffer",
    "SecBufferType",
    "SecHandle",
    "SecPkgAttr",
    "SecStatus",
    "SecurityContextResult",
    "SessionInfo",
    "Sspi",
    "SspiMisuse",
    "Statistics",
    "StatusInfo",
    "StreamSizes",
    "SupportedAlgs",
    "SupportedProtocols",
    "ThreadedScheduler",
    "TlsParameters",
    "Transition",
    "application_protocols",
    "is_error",
    "is_success",
    "lookup",
]


# Names whose modules load on first use (PEP 562), so `import sspi_model` stays light: the
# conformance kit's values, and what Schannel callers build (issue 9).
_LOADED_ON_USE = {
    "Divergence": "sspi_model.testing.divergence",
    "KnownDivergence": "sspi_model.testing.divergence",
    "application_protocols": "sspi_model.packages.alpn",
    **dict.fromkeys(
        (
            "SCH_CREDENTIALS_VERSION",
            "SCHANNEL_CRED_VERSION",
            "Certificate",
            "LegacySchannelCred",
            "SchannelCred",
            "SchCredentials",
            "TlsParameters",
        ),
        "sspi_model.packages.schannel_creds",
    ),
}


def __getattr__(name: str) -> Any:
    module = _LOADED_ON_USE.get(name)
    if module is None:
        raise AttributeError(f"module 'sspi_model' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # the next lookup is a plain module attribute
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
