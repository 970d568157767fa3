"""Security packages: token formats and leg logic. A package never sees a handle."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sspi_model.packages.base import (
    Environment,
    LegResult,
    Package,
    Session,
)
from sspi_model.packages.catalog import (
    NEGOTIATE_INFO,
    NEGOTIATE_NAMES,
    NTLM_INFO,
    NTLM_NAMES,
    SCHANNEL_INFO,
    SCHANNEL_NAMES,
    DeferredPackage,
)

if TYPE_CHECKING:
    from sspi_model.packages.negotiate import NegotiatePackage
    from sspi_model.packages.ntlm import NtlmPackage
    from sspi_model.packages.schannel import SchannelPackage

__all__ = [
    "Environment",
    "LegResult",
    "NegotiatePackage",
    "NtlmPackage",
    "Package",
    "Session",
    "default_packages",
]


def _ntlm() -> NtlmPackage:
    from sspi_model.packages.ntlm import NtlmPackage

    return NtlmPackage()


def _schannel() -> SchannelPackage:
    from sspi_model.packages.schannel import SchannelPackage

    return SchannelPackage()


def default_packages() -> tuple[Package, ...]:
    """The packages an Sspi instance offers, in EnumerateSecurityPackages order; each module
    loads when a call first needs it (packages/catalog.py)."""
    ntlm = DeferredPackage(NTLM_INFO, NTLM_NAMES, _ntlm)

    def negotiate() -> NegotiatePackage:
        from sspi_model.packages.negotiate import NegotiatePackage

        return NegotiatePackage(ntlm.loaded())  # Negotiate always selects NTLM

    return (
        DeferredPackage(NEGOTIATE_INFO, NEGOTIATE_NAMES, negotiate),
        ntlm,
        DeferredPackage(SCHANNEL_INFO, SCHANNEL_NAMES, _schannel),
    )


def __getattr__(name: str) -> Any:
    # The package classes load on first use, so `import sspi_model` stays light (PEP 562).
    if name == "NegotiatePackage":
        from sspi_model.packages import negotiate

        return negotiate.NegotiatePackage
    if name == "NtlmPackage":
        from sspi_model.packages import ntlm

        return ntlm.NtlmPackage
    raise AttributeError(f"module 'sspi_model.packages' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
