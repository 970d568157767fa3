"""One interface for the model and every real SSPI library.

A backend is one process's security subsystem with the synchronous calls of `Sspi` (same
names, parameters and result types). Outcomes that are not statuses (a crash, a hang) are
raised as `BackendFailure` so the caller records them; the backend is unusable afterwards
until `reset()`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol, runtime_checkable

import attrs

from sspi_model.buffers import SecBuffer
from sspi_model.handles import SecHandle
from sspi_model.results import (
    AcquireCredentialsResult,
    EnumerateSecurityPackagesResult,
    QueryContextAttributesResult,
    QuerySecurityPackageInfoResult,
    SecurityContextResult,
)
from sspi_model.status import SecStatus

SYNC_CALLS = (
    "enumerate_security_packages",
    "query_security_package_info",
    "acquire_credentials_handle",
    "free_credentials_handle",
    "initialize_security_context",
    "accept_security_context",
    "complete_auth_token",
    "delete_security_context",
    "query_context_attributes",
    "free_context_buffer",
)
# The message functions a backend may also speak (MSG rules); declared in Capabilities.calls.
MESSAGE_CALLS = ("make_signature", "verify_signature", "encrypt_message", "decrypt_message")


@attrs.frozen
class Capabilities:
    """What a backend declares it can do; the kit skips what is missing, with the reason."""

    name: str
    packages: frozenset[str]
    calls: frozenset[str] = frozenset(SYNC_CALLS)
    async_api: bool = False
    # Values of accounts this backend validates against ("model" validates the shared account
    # database; a real NTLM library validates what the server credential holds).
    separate_processes: bool = True


class BackendFailure(Exception):
    """A call that did not return a status: `outcome` is e.g. "CRASH:SIGSEGV" or "HANG"."""

    def __init__(self, outcome: str, detail: str = "") -> None:
        # API-008: args are the constructor's, so repr(e) is Python that rebuilds it (pickle too).
        super().__init__(outcome, detail)
        self.outcome = outcome
        self.detail = detail

    def __str__(self) -> str:
        return f"{self.outcome}{': ' + self.detail if self.detail else ''}"


@runtime_checkable
class Backend(Protocol):
    capabilities: Capabilities

    def enumerate_security_packages(self) -> EnumerateSecurityPackagesResult: ...

    def query_security_package_info(
        self, package_name: str | None
    ) -> QuerySecurityPackageInfoResult: ...

    def acquire_credentials_handle(
        self,
        package: str | None,
        credential_use: int,
        auth_data: Any = None,
        *,
        principal: str | None = None,
    ) -> AcquireCredentialsResult: ...

    def free_credentials_handle(self, credential: SecHandle | None) -> SecStatus: ...

    def initialize_security_context(
        self,
        credential: SecHandle | None = None,
        context: SecHandle | None = None,
        target_name: str | None = None,
        context_req: int = 0,
        input: bytes | Sequence[SecBuffer] | None = None,
    ) -> SecurityContextResult: ...

    def accept_security_context(
        self,
        credential: SecHandle | None = None,
        context: SecHandle | None = None,
        input: bytes | Sequence[SecBuffer] | None = None,
        context_req: int = 0,
    ) -> SecurityContextResult: ...

    def complete_auth_token(
        self, context: SecHandle | None, token: bytes | Sequence[SecBuffer] | None
    ) -> SecStatus: ...

    def delete_security_context(self, context: SecHandle | None) -> SecStatus: ...

    def query_context_attributes(
        self, context: SecHandle | None, attribute: int
    ) -> QueryContextAttributesResult: ...

    def free_context_buffer(self, buffer: int | None) -> SecStatus: ...

    def reset(self) -> None:
        """Start a fresh process: forget every handle (after a failure, or between examples)."""
        ...

    def close(self) -> None: ...
