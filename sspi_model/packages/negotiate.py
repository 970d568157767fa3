"""Negotiate, modelled as a thin wrapper that always selects NTLM.

Wire shape: b"SPNEGO\\0" u8 kind + inner NTLM message, kind 0 = negTokenInit (client's first
token), 1 = negTokenResp, 2 = accept-completed (the server's final token, sent with SEC_E_OK:
ASC-009). Real SPNEGO is ASN.1; the model keeps only the structure that matters to the
lifecycle (NEG-001..NEG-004).
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import attrs

from sspi_model.buffers import SecBuffer, first_token, token
from sspi_model.lifecycle import Call, LegOutcome
from sspi_model.packages.base import (
    Environment,
    LegResult,
    MessageLeg,
)
from sspi_model.packages.catalog import NEGOTIATE_INFO, NEGOTIATE_NAMES
from sspi_model.packages.ntlm import (
    SIGNATURE,
    NtlmClientSession,
    NtlmPackage,
    NtlmServerSession,
)
from sspi_model.results import ContextSizes, PackageInfo
from sspi_model.status import SecStatus

WRAPPER = b"SPNEGO\x00"
INIT, RESP, ACCEPT_COMPLETED = 0, 1, 2
# NEG-005
NEGOTIATE_SIZES = ContextSizes(max_token=48256, max_signature=16, block_size=0, security_trailer=16)


def wrap(kind: int, inner: bytes) -> bytes:
    return WRAPPER + bytes([kind]) + inner


def unwrap(data: bytes | None, kind: int) -> bytes | None:
    """The inner NTLM message, or None when the wrapper is missing or of the wrong kind."""
    if data is None or len(data) < len(WRAPPER) + 1 or not data.startswith(WRAPPER):
        return None
    if data[len(WRAPPER)] != kind:
        return None
    return data[len(WRAPPER) + 1 :]


def _invalid(rule: str) -> LegResult:
    return LegResult(SecStatus.SEC_E_INVALID_TOKEN, LegOutcome.REJECTED, rules=("NEG-003", rule))


class _NegotiateSession:
    """What both sides of a Negotiate context answer: the chosen mechanism's (NTLM's) session
    `_inner` decides everything but the wrapping of the tokens."""

    __slots__ = ()
    _inner: NtlmClientSession | NtlmServerSession

    @property
    def user_name(self) -> str:
        return self._inner.user_name

    def sizes(self) -> ContextSizes:
        return NEGOTIATE_SIZES

    def message(self, call: Call, buffers: tuple[SecBuffer, ...], qop: int) -> MessageLeg:
        # The message functions follow the chosen mechanism, NTLM (MSG-009).
        return self._inner.message(call, buffers, qop)

    def query_attribute(self, attribute: int, allocate: Callable[[str], int]) -> Any:
        return self._inner.query_attribute(attribute, allocate)  # the mechanism's (ATT-002)

    def native_names(self, target: str | None, local: str) -> tuple[str, str]:
        return self._inner.native_names(target, local)

    @property
    def mechanism(self) -> PackageInfo:
        """The package chosen, for SECPKG_ATTR_NEGOTIATION_INFO (ATT-001): NTLM."""
        return NtlmPackage.info


class NegotiateClientSession(_NegotiateSession):
    __slots__ = ("_inner", "_leg")
    _inner: NtlmClientSession

    def __init__(self, inner: NtlmClientSession) -> None:
        self._inner = inner
        self._leg = 0

    def restart(self) -> None:
        self._leg = 0
        self._inner.restart()

    def __copy__(self) -> NegotiateClientSession:
        # A snapshot (sspi.py rolls back a leg whose output did not fit) copies the inner NTLM
        # session too, so the rollback is complete.
        twin = NegotiateClientSession(copy.copy(self._inner))
        twin._leg = self._leg
        return twin

    def step(self, input: tuple[SecBuffer, ...] | None, context_req: int) -> LegResult:
        if self._leg == 0:
            result = self._inner.step(None, context_req)
            self._leg = 1
            return _rewrap(result, INIT)
        inner = unwrap(first_token(input), RESP)
        if inner is None:
            return _invalid("ISC-011")
        result = self._inner.step(token(inner), context_req)
        if result.token:
            result = _rewrap(result, RESP)
        return result


class NegotiateServerSession(_NegotiateSession):
    __slots__ = ("_inner", "_leg", "_raw")
    _inner: NtlmServerSession

    def __init__(self, inner: NtlmServerSession) -> None:
        self._inner = inner
        self._leg = 0
        self._raw = False  # the client spoke raw NTLMSSP: answer in kind (NEG-004)

    def restart(self) -> None:
        self._leg = 0
        self._raw = False
        self._inner.restart()

    def __copy__(self) -> NegotiateServerSession:
        twin = NegotiateServerSession(copy.copy(self._inner))
        twin._leg, twin._raw = self._leg, self._raw
        return twin

    def step(self, input: tuple[SecBuffer, ...] | None, context_req: int) -> LegResult:
        data = first_token(input)
        if self._leg == 0:
            self._raw = data is not None and data.startswith(SIGNATURE)
        if self._raw:
            result = self._inner.step(input, context_req)
            if result.outcome is LegOutcome.CONTINUE:
                self._leg = 1
                return attrs.evolve(result, rules=(*result.rules, "NEG-004"))
            return result
        inner = unwrap(data, INIT if self._leg == 0 else RESP)
        if inner is None:
            return _invalid("ASC-004")
        result = self._inner.step(token(inner), context_req)
        if result.outcome is LegOutcome.CONTINUE:
            self._leg = 1
            return _rewrap(result, RESP)
        if result.status == SecStatus.SEC_E_OK:
            return _rewrap(result, ACCEPT_COMPLETED, rules=("NEG-002", "ASC-009"))
        return result


def _rewrap(result: LegResult, kind: int, rules: tuple[str, ...] = ()) -> LegResult:
    return attrs.evolve(
        result, token=wrap(kind, result.token), rules=(*result.rules, "NEG-001", *rules)
    )


class NegotiatePackage:
    info = NEGOTIATE_INFO

    def __init__(self, ntlm: NtlmPackage) -> None:
        self._ntlm = ntlm

    def names(self) -> tuple[str, ...]:
        return NEGOTIATE_NAMES

    def can_initiate(self, use: int) -> bool:
        return self._ntlm.can_initiate(use)

    def can_accept(self, use: int) -> bool:
        return self._ntlm.can_accept(use)

    def acquire(
        self, use: int, principal: str | None, auth_data: Any, env: Environment
    ) -> tuple[SecStatus, Any, tuple[str, ...]]:
        return self._ntlm.acquire(use, principal, auth_data, env)

    def credential_attribute(
        self, material: Any, attribute: int, allocate: Callable[[str], int]
    ) -> Any:
        return self._ntlm.credential_attribute(material, attribute, allocate)  # ATT-022

    def new_client(
        self, material: Any, target_name: str | None, env: Environment
    ) -> NegotiateClientSession:
        return NegotiateClientSession(self._ntlm.new_client(material, target_name, env))

    def new_server(self, material: Any, env: Environment) -> NegotiateServerSession:
        return NegotiateServerSession(self._ntlm.new_server(material, env))
