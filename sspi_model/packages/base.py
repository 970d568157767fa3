"""The interface between the handle layer (sspi.py) and a security package."""

from __future__ import annotations

import enum
from collections.abc import Mapping
from typing import Any, Protocol

import attrs

from sspi_model.buffers import SecBuffer
from sspi_model.status import SecStatus


class LegOutcome(enum.Enum):
    """How a leg leaves the context; lifecycle.CONTEXT_TABLE maps it to the next state."""

    CONTINUE = "continue"  # more legs follow (SEC_I_CONTINUE_NEEDED and kin)
    ESTABLISHED = "established"  # SEC_E_OK: the context is complete
    FAILED = "failed"  # a decisive error: the context is dead, only delete remains
    REJECTED = "rejected"  # the input was refused; the context is as it was, the leg may be retried

    def __repr__(self) -> str:
        return f"LegOutcome.{self.name}"


@attrs.frozen
class LegResult:
    status: SecStatus
    outcome: LegOutcome
    token: bytes = b""
    context_attr: int = 0
    extra_output: tuple[SecBuffer, ...] = ()  # e.g. SECBUFFER_ALERT
    input_after: tuple[SecBuffer, ...] | None = None  # input as the call left it (MISSING, EXTRA)
    rules: tuple[str, ...] = ()  # the rule IDs that decided this result


@attrs.frozen
class PackageInfo:
    """SecPkgInfo."""

    name: str
    comment: str
    capabilities: int
    version: int
    rpc_id: int
    max_token: int


@attrs.frozen
class ContextSizes:
    """SecPkgContext_Sizes."""

    max_token: int
    max_signature: int
    block_size: int
    security_trailer: int


@attrs.frozen
class Environment:
    """What a simulated process knows: the shared account database and who is logged on."""

    accounts: Mapping[str, str]
    logon_user: str

    def password_of(self, principal: str) -> str | None:
        wanted = principal.casefold()
        for name, password in self.accounts.items():
            if name.casefold() == wanted:
                return password
        return None


class Session(Protocol):
    """The package state of one security context."""

    def step(self, input: tuple[SecBuffer, ...] | None, context_req: int) -> LegResult: ...

    def restart(self) -> None:
        """Forget the exchange so a new one can start on the same context (reauthentication)."""
        ...

    @property
    def user_name(self) -> str: ...

    def sizes(self) -> ContextSizes: ...

    # Optional (looked up with getattr by sspi.py):
    #   stream_sizes() -> StreamSizes           answers SECPKG_ATTR_STREAM_SIZES (else unsupported)
    #   use_credential(material) -> None        a continuation leg passed a (new) live credential


@attrs.frozen
class StreamSizes:
    """SecPkgContext_StreamSizes."""

    header: int
    trailer: int
    max_message: int
    buffers: int
    block_size: int


class Package(Protocol):
    info: PackageInfo

    def names(self) -> tuple[str, ...]:
        """Every name ACH accepts for this package (compared case-insensitively)."""
        ...

    def acquire(
        self, use: int, principal: str | None, auth_data: Any, env: Environment
    ) -> tuple[SecStatus, Any, tuple[str, ...]]:
        """(status, credential material, rule IDs). Material is opaque to the handle layer."""
        ...

    def new_client(self, material: Any, target_name: str | None, env: Environment) -> Session: ...

    def new_server(self, material: Any, env: Environment) -> Session: ...

    def can_initiate(self, use: int) -> bool: ...

    def can_accept(self, use: int) -> bool: ...
