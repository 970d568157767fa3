"""Security packages: token formats and leg logic. A package never sees a handle."""

from __future__ import annotations

from sspi_model.packages.base import (
    Environment,
    LegResult,
    Package,
    Session,
)
from sspi_model.packages.negotiate import NegotiatePackage
from sspi_model.packages.ntlm import NtlmPackage

__all__ = [
    "Environment",
    "LegResult",
    "NegotiatePackage",
    "NtlmPackage",
    "Package",
    "Session",
    "default_packages",
]


def default_packages() -> tuple[Package, ...]:
    """The packages an Sspi instance offers, in EnumerateSecurityPackages order."""
    from sspi_model.packages.schannel import SchannelPackage

    ntlm = NtlmPackage()
    return (NegotiatePackage(ntlm), ntlm, SchannelPackage())
