"""The model as a backend: one Sspi instance is one process."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from sspi_model.backends.base import MESSAGE_CALLS, SYNC_CALLS, Capabilities
from sspi_model.buffers import NullDescriptor, SecBuffer
from sspi_model.constants import SECURITY_NATIVE_DREP
from sspi_model.handles import SecHandle
from sspi_model.profiles import Profile
from sspi_model.results import (
    AcquireCredentialsResult,
    EnumerateSecurityPackagesResult,
    MessageResult,
    QueryContextAttributesResult,
    QueryCredentialsAttributesResult,
    QuerySecurityPackageInfoResult,
    SecurityContextResult,
)
from sspi_model.sspi import Sspi
from sspi_model.status import SecStatus

DEFAULT_ACCOUNTS: Mapping[str, str] = {"CONTOSO\\alice": "Passw0rd!"}


class ModelBackend:
    """The reference model behind the Backend protocol (and the kit's default backend)."""

    def __init__(
        self,
        *,
        accounts: Mapping[str, str] = DEFAULT_ACCOUNTS,
        profile: str | Profile = "documented",
        **sspi_options: Any,
    ) -> None:
        self._accounts = dict(accounts)
        self._profile = profile
        self._options = sspi_options
        self.sspi = self._new()
        self.capabilities = Capabilities(
            name="model",
            packages=frozenset(p.name for p in self.sspi.enumerate_security_packages().packages),
            calls=frozenset(SYNC_CALLS + MESSAGE_CALLS),
            async_api=True,
        )

    def __repr__(self) -> str:
        return f"ModelBackend(profile={self.sspi.profile.name!r})"

    def _new(self) -> Sspi:
        return Sspi(accounts=self._accounts, profile=self._profile, **self._options)

    def reset(self) -> None:
        self.sspi = self._new()

    def close(self) -> None:
        pass

    @property
    def last_rules(self) -> tuple[str, ...]:
        return tuple(getattr(self.sspi, "last_rules", ()))

    def enumerate_security_packages(self) -> EnumerateSecurityPackagesResult:
        return self.sspi.enumerate_security_packages()

    def query_security_package_info(
        self, package_name: str | None
    ) -> QuerySecurityPackageInfoResult:
        return self.sspi.query_security_package_info(package_name)

    def acquire_credentials_handle(
        self,
        package: str | None,
        credential_use: int,
        auth_data: Any = None,
        *,
        principal: str | None = None,
    ) -> AcquireCredentialsResult:
        return self.sspi.acquire_credentials_handle(
            package, credential_use, auth_data, principal=principal
        )

    def free_credentials_handle(self, credential: SecHandle | None) -> SecStatus:
        return self.sspi.free_credentials_handle(credential)

    def query_credentials_attributes(
        self, credential: SecHandle | None, attribute: int
    ) -> QueryCredentialsAttributesResult:
        return self.sspi.query_credentials_attributes(credential, attribute)

    def initialize_security_context(
        self,
        credential: SecHandle | None = None,
        context: SecHandle | None = None,
        target_name: str | None = None,
        context_req: int = 0,
        input: bytes | Sequence[SecBuffer] | None = None,
        *,
        output: Sequence[SecBuffer] | NullDescriptor | None = None,
        target_data_rep: int = SECURITY_NATIVE_DREP,
    ) -> SecurityContextResult:
        return self.sspi.initialize_security_context(
            credential, context, target_name, context_req, input,
            output=output, target_data_rep=target_data_rep,
        )

    def accept_security_context(
        self,
        credential: SecHandle | None = None,
        context: SecHandle | None = None,
        input: bytes | Sequence[SecBuffer] | None = None,
        context_req: int = 0,
        *,
        output: Sequence[SecBuffer] | NullDescriptor | None = None,
        target_data_rep: int = SECURITY_NATIVE_DREP,
    ) -> SecurityContextResult:
        return self.sspi.accept_security_context(
            credential, context, input, context_req,
            output=output, target_data_rep=target_data_rep,
        )

    def complete_auth_token(
        self, context: SecHandle | None, token: bytes | Sequence[SecBuffer] | None
    ) -> SecStatus:
        return self.sspi.complete_auth_token(context, token)

    def delete_security_context(self, context: SecHandle | None) -> SecStatus:
        return self.sspi.delete_security_context(context)

    def query_context_attributes(
        self, context: SecHandle | None, attribute: int
    ) -> QueryContextAttributesResult:
        return self.sspi.query_context_attributes(context, attribute)

    def free_context_buffer(self, buffer: int | None) -> SecStatus:
        return self.sspi.free_context_buffer(buffer)

    def make_signature(
        self, context: SecHandle | None, qop: int, message: Any, seq_no: int = 0
    ) -> MessageResult:
        return self.sspi.make_signature(context, qop, message, seq_no)

    def verify_signature(
        self, context: SecHandle | None, message: Any, seq_no: int = 0
    ) -> MessageResult:
        return self.sspi.verify_signature(context, message, seq_no)

    def encrypt_message(
        self, context: SecHandle | None, qop: int, message: Any, seq_no: int = 0
    ) -> MessageResult:
        return self.sspi.encrypt_message(context, qop, message, seq_no)

    def decrypt_message(
        self, context: SecHandle | None, message: Any, seq_no: int = 0
    ) -> MessageResult:
        return self.sspi.decrypt_message(context, message, seq_no)

    def apply_control_token(
        self, context: SecHandle | None, input: Sequence[SecBuffer] | bytes | None
    ) -> MessageResult:
        return self.sspi.apply_control_token(context, input)
