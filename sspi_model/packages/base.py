"""The interface between the synchronous core (sspi.py) and a security package: legs, sessions
and credential material (AuthIdentity, what NTLM and Negotiate callers pass; Schannel's live in
schannel_creds.py). The values they exchange live in results.py and lifecycle.py."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

import attrs

from sspi_model.buffers import SecBuffer
from sspi_model.lifecycle import LegOutcome, MessageOutcome
from sspi_model.results import ContextSizes, PackageInfo
from sspi_model.status import SecStatus
from sspi_model.values import Value


@attrs.frozen(repr=False, eq=False)
class AuthIdentity(Value):
    """SEC_WINNT_AUTH_IDENTITY: explicit credentials. `user` may be written DOMAIN\\user."""

    user: str = attrs.field(validator=attrs.validators.instance_of(str))
    password: str = attrs.field(validator=attrs.validators.instance_of(str))
    domain: str = attrs.field(default="", validator=attrs.validators.instance_of(str))

    @property
    def principal(self) -> str:
        if self.domain:
            return f"{self.domain}\\{self.user}"
        return self.user


@attrs.frozen(repr=False, eq=False)
class LegResult(Value):
    status: SecStatus
    outcome: LegOutcome
    token: bytes = b""
    context_attr: int = 0
    extra_output: tuple[SecBuffer, ...] = ()  # e.g. SECBUFFER_ALERT
    input_after: tuple[SecBuffer, ...] | None = None  # input as the call left it (MISSING, EXTRA)
    rules: tuple[str, ...] = ()  # the rule IDs that decided this result


@attrs.frozen(repr=False, eq=False)
class MessageLeg(Value):
    """What a package did with one message call or control token: the status, how the
    context is left, the descriptor as the call left it (C writes into the caller's buffers),
    and for VerifySignature / DecryptMessage the quality of protection found."""

    status: SecStatus
    outcome: MessageOutcome
    buffers: tuple[SecBuffer, ...]
    qop: int | None = None
    rules: tuple[str, ...] = ()


@attrs.frozen(repr=False, eq=False)
class Environment(Value):
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
    #   message(call, buffers, qop) -> MessageLeg   MakeSignature .. DecryptMessage (else MSG-005)
    #   apply_control_token(buffers) -> MessageLeg  ApplyControlToken (else SHD-010)


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
