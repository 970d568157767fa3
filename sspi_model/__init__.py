"""sspi-model: a behavioural reference model of the Windows SSPI security-context lifecycle."""

from sspi_model.async_api import AsyncContext, CallbackError, MisuseEvent, Out, SspiMisuse
from sspi_model.buffers import SecBuffer, SecBufferType
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
from sspi_model.handles import SecHandle
from sspi_model.packages.ntlm import AuthIdentity
from sspi_model.packages.schannel import Certificate, SchannelCred
from sspi_model.profiles import PROFILES, Profile
from sspi_model.results import (
    AcquireCredentialsResult,
    QueryContextAttributesResult,
    SecurityContextResult,
    Statistics,
)
from sspi_model.scheduling import (
    InlineScheduler,
    ManualScheduler,
    RandomScheduler,
    ThreadedScheduler,
)
from sspi_model.sspi import Sspi
from sspi_model.status import NtStatus, SecStatus, is_error, is_success, lookup

__all__ = [
    "PROFILES",
    "SECPKG_ATTR_LIFESPAN",
    "SECPKG_ATTR_NAMES",
    "SECPKG_ATTR_PACKAGE_INFO",
    "SECPKG_ATTR_SIZES",
    "SECPKG_ATTR_STREAM_SIZES",
    "AcceptReq",
    "AcquireCredentialsResult",
    "AsyncContext",
    "AuthIdentity",
    "CallbackError",
    "Certificate",
    "ContextReq",
    "CredentialUse",
    "InlineScheduler",
    "ManualScheduler",
    "MisuseEvent",
    "NtStatus",
    "Out",
    "Profile",
    "QueryContextAttributesResult",
    "RandomScheduler",
    "SchannelCred",
    "SecBuffer",
    "SecBufferType",
    "SecHandle",
    "SecPkgAttr",
    "SecStatus",
    "SecurityContextResult",
    "Sspi",
    "SspiMisuse",
    "Statistics",
    "ThreadedScheduler",
    "is_error",
    "is_success",
    "lookup",
]
