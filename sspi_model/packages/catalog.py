"""The packages an Sspi offers by default, known before their code loads (issue 9): their names
and SecPkgInfo live here, and a stand-in imports a package's module when a call first needs
more than those (AcquireCredentialsHandle, most often). `import sspi_model` and `Sspi()` so
never pay for Schannel's TLS code, nor for NTLM's until an NTLM credential is acquired."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any, Generic, TypeVar

from sspi_model.packages.base import Package
from sspi_model.results import PackageInfo

# SECPKG_FLAG_INTEGRITY|PRIVACY|TOKEN_ONLY|CONNECTION|MULTI_REQUIRED|IMPERSONATION|
# ACCEPT_WIN32_NAME|NEGOTIABLE|LOGON, the capabilities Windows NTLM advertises (PKG-003).
NTLM_CAPABILITIES = 0x1 | 0x2 | 0x4 | 0x10 | 0x20 | 0x100 | 0x200 | 0x800 | 0x2000
NTLM_NAMES = ("NTLM",)
NTLM_INFO = PackageInfo(
    name="NTLM",
    comment="NTLM Security Package (model)",
    capabilities=NTLM_CAPABILITIES,
    version=1,
    rpc_id=10,
    max_token=2888,
)
NEGOTIATE_NAMES = ("Negotiate",)
NEGOTIATE_INFO = PackageInfo(
    name="Negotiate",
    comment="Microsoft Package Negotiator (model: always selects NTLM)",
    capabilities=0x1 | 0x2 | 0x10 | 0x20 | 0x100 | 0x200 | 0x800 | 0x1000 | 0x2000,
    version=1,
    rpc_id=9,  # RPC_C_AUTHN_GSS_NEGOTIATE (PKG-005)
    max_token=48256,
)
# SECPKG_FLAG_INTEGRITY|PRIVACY|CONNECTION|MULTI_REQUIRED|EXTENDED_ERROR|IMPERSONATION|
# ACCEPT_WIN32_NAME|STREAM|MUTUAL_AUTH (0x107B3), what EnumerateSecurityPackages reports for
# Schannel; cbMaxToken 24576 likewise.
SCHANNEL_CAPABILITIES = 0x1 | 0x2 | 0x10 | 0x20 | 0x80 | 0x100 | 0x200 | 0x400 | 0x10000
SCHANNEL_MAX_TOKEN = 24576
SCHANNEL_NAMES = ("Schannel", "Microsoft Unified Security Protocol Provider")  # SCHANNEL/UNISP_NAME
SCHANNEL_INFO = PackageInfo(
    name="Schannel",
    comment="Schannel Security Package (model)",
    capabilities=SCHANNEL_CAPABILITIES,
    version=1,
    rpc_id=14,  # RPC_C_AUTHN_GSS_SCHANNEL
    max_token=SCHANNEL_MAX_TOKEN,
)

P = TypeVar("P", bound=Package)


class DeferredPackage(Generic[P]):
    """Stands for the package `load()` builds: its names and info are answered here, every
    other attribute is the loaded package's (bound once on first use, then a plain attribute
    of this object, so later calls cost what calls on the package itself cost)."""

    def __init__(self, info: PackageInfo, names: tuple[str, ...], load: Callable[[], P]) -> None:
        self.info = info
        self._names = names
        self._load = load
        self._loaded: P | None = None
        self._lock = threading.Lock()

    def names(self) -> tuple[str, ...]:
        return self._names

    def loaded(self) -> P:
        if self._loaded is None:
            with self._lock:  # two threads' first calls build one package
                if self._loaded is None:
                    self._loaded = self._load()
        return self._loaded

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):  # copy's and pickle's probes: not the package's business
            raise AttributeError(name)
        value = getattr(self.loaded(), name)
        setattr(self, name, value)
        return value

    def __repr__(self) -> str:
        state = "loaded" if self._loaded is not None else "not loaded yet"
        return f"<{self.info.name} package, {state}>"
