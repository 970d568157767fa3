"""Toy backends for testing the conformance kit: the model under other names (so no known
divergences apply), correct or deliberately broken.

`CorrectBackend` is the model. `MinimalBackend` declares neither NTLM nor the async API.
`CrashingBackend` raises BackendFailure when a deleted context is deleted again.
`BrokenBackend` gets two things wrong that a real library might:
- DeleteSecurityContext on an already-deleted context returns SEC_E_INVALID_HANDLE (the model's
  documented profile says SEC_E_OK);
- a NULL or zeroed handle to delete, free or query returns SEC_E_INVALID_PARAMETER (the model
  says SEC_E_INVALID_HANDLE).
"""

from __future__ import annotations

from typing import Any

from sspi_model import SecHandle, SecStatus
from sspi_model.backends import BackendFailure, Capabilities, ModelBackend
from sspi_model.handles import HandleClass, HandleKind
from sspi_model.results import QueryContextAttributesResult

NULL_OR_ZEROED = (None, SecHandle(0, 0))


class CorrectBackend(ModelBackend):
    """The model, named "correct-toy"."""

    name = "correct-toy"

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self.capabilities = Capabilities(
            name=self.name,
            packages=self.capabilities.packages,
            async_api=self.capabilities.async_api,
        )


class BrokenBackend(CorrectBackend):
    """The model with a stricter delete and the wrong status for NULL handles."""

    name = "broken-toy"

    def delete_security_context(self, context: SecHandle | None) -> SecStatus:
        if context in NULL_OR_ZEROED:
            return SecStatus.SEC_E_INVALID_PARAMETER
        if self.sspi.classify(context, HandleKind.CONTEXT) is HandleClass.RETIRED:
            return SecStatus.SEC_E_INVALID_HANDLE
        return super().delete_security_context(context)

    def free_credentials_handle(self, credential: SecHandle | None) -> SecStatus:
        if credential in NULL_OR_ZEROED:
            return SecStatus.SEC_E_INVALID_PARAMETER
        return super().free_credentials_handle(credential)

    def query_context_attributes(
        self, context: SecHandle | None, attribute: int
    ) -> QueryContextAttributesResult:
        if context in NULL_OR_ZEROED:
            return QueryContextAttributesResult(SecStatus.SEC_E_INVALID_PARAMETER)
        return super().query_context_attributes(context, attribute)


class MinimalBackend(CorrectBackend):
    """The model declaring neither NTLM nor the async API: the kit skips what needs them."""

    name = "minimal-toy"

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self.capabilities = Capabilities(
            name=self.name,
            packages=frozenset({"Negotiate"}),
            async_api=False,
        )


class CrashingBackend(CorrectBackend):
    """The model, except that deleting a deleted context crashes the (simulated) process."""

    name = "crashing-toy"

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self.resets = 0

    def reset(self) -> None:
        self.resets += 1
        super().reset()

    def delete_security_context(self, context: SecHandle | None) -> SecStatus:
        if self.sspi.classify(context, HandleKind.CONTEXT) is HandleClass.RETIRED:
            raise BackendFailure("CRASH:SIGSEGV", "use after free")
        return super().delete_security_context(context)
