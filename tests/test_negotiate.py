"""Negotiate: a wrapper around NTLM, its tokens, raw-NTLM fallback and malformed wrappers."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from sspi_model import (
    SECPKG_ATTR_PACKAGE_INFO,
    SECPKG_ATTR_SIZES,
    AuthIdentity,
    CredentialUse,
    SecStatus,
    Sspi,
)
from sspi_model.packages.negotiate import ACCEPT_COMPLETED, INIT, RESP, WRAPPER
from sspi_model.packages.ntlm import SIGNATURE

OK = SecStatus.SEC_E_OK
CONTINUE = SecStatus.SEC_I_CONTINUE_NEEDED
INVALID_TOKEN = SecStatus.SEC_E_INVALID_TOKEN


def wrapped(kind: int, inner: bytes) -> bytes:
    return WRAPPER + bytes([kind]) + inner


def inner_of(token: bytes, kind: int) -> bytes:
    assert token[: len(WRAPPER) + 1] == WRAPPER + bytes([kind]), token[:16]
    return token[len(WRAPPER) + 1 :]


class Side:
    def __init__(self, sspi: Sspi, package: str, use: int, auth: Any = None) -> None:
        self.sspi = sspi
        self.cred = sspi.acquire_credentials_handle(package, use, auth).credential
        assert self.cred is not None
        self.ctx: Any = None

    def isc(self, token: bytes | None = None) -> Any:
        result = self.sspi.initialize_security_context(self.cred, self.ctx, "HOST/s", 0, token)
        self.ctx = self.ctx or result.new_context
        return result

    def asc(self, token: bytes | None) -> Any:
        result = self.sspi.accept_security_context(self.cred, self.ctx, token)
        self.ctx = self.ctx or result.new_context
        return result


@pytest.fixture
def sides(make_sspi: Callable[..., Sspi]) -> Callable[..., tuple[Side, Side]]:
    def make(
        client_package: str = "Negotiate", server_package: str = "Negotiate", auth: Any = None
    ) -> tuple[Side, Side]:
        return (
            Side(make_sspi(), client_package, CredentialUse.OUTBOUND, auth),
            Side(make_sspi(), server_package, CredentialUse.INBOUND),
        )

    return make


@pytest.mark.rule("NEG-001", "NEG-002", "ASC-009")
def test_negotiate_handshake(sides: Callable[..., tuple[Side, Side]]) -> None:
    client, server = sides()
    first = client.isc()
    reply = server.asc(first.output_token)
    last = client.isc(reply.output_token)
    final = server.asc(last.output_token)
    assert [first.status, reply.status, last.status, final.status] == [CONTINUE, CONTINUE, OK, OK]
    # Every NTLM message travels wrapped: negTokenInit first, negTokenResp afterwards.
    assert inner_of(first.output_token, INIT).startswith(SIGNATURE)
    assert inner_of(reply.output_token, RESP).startswith(SIGNATURE)
    assert inner_of(last.output_token, RESP).startswith(SIGNATURE)
    # The server's SEC_E_OK carries an accept-completed token to send to the client.
    assert final.output_token == wrapped(ACCEPT_COMPLETED, b"")
    # The client is complete without it.
    assert client.sspi.query_context_attributes(client.ctx, SECPKG_ATTR_SIZES).status == OK
    assert server.sspi.query_context_attributes(server.ctx, SECPKG_ATTR_SIZES).status == OK


@pytest.mark.rule("NEG-001", "NTLM-004")
def test_negotiate_wrong_password(sides: Callable[..., tuple[Side, Side]]) -> None:
    client, server = sides(auth=AuthIdentity("alice", "wrong", "DOM"))
    reply = server.asc(client.isc().output_token)
    last = client.isc(reply.output_token)
    assert last.status == OK
    final = server.asc(last.output_token)
    assert (final.status, final.output_token) == (SecStatus.SEC_E_LOGON_DENIED, b"")
    assert server.sspi.delete_security_context(server.ctx) == OK


@pytest.mark.rule("NEG-003", "ASC-004")
@pytest.mark.parametrize(
    "token",
    [b"", b"SPNEGO", WRAPPER, b"junk" * 10],
    ids=["empty", "short", "wrapper-without-kind", "junk"],
)
def test_unwrapped_first_server_input(
    sides: Callable[..., tuple[Side, Side]], token: bytes
) -> None:
    _, server = sides()
    result = server.asc(token)
    assert (result.status, result.new_context) == (INVALID_TOKEN, None)
    assert server.sspi.statistics().contexts == 0


@pytest.mark.rule("NEG-003", "ASC-004", "LIF-001")
@pytest.mark.parametrize("kind", [RESP, ACCEPT_COMPLETED, 7])
def test_wrong_wrapper_kind_on_the_first_server_leg(
    sides: Callable[..., tuple[Side, Side]], kind: int
) -> None:
    client, server = sides()
    inner = inner_of(client.isc().output_token, INIT)
    result = server.asc(wrapped(kind, inner))
    assert (result.status, result.new_context) == (INVALID_TOKEN, None)
    assert server.asc(wrapped(INIT, inner)).status == CONTINUE


@pytest.mark.rule("NEG-003", "ISC-011", "LIF-002")
def test_client_needs_a_wrapped_response(sides: Callable[..., tuple[Side, Side]]) -> None:
    client, server = sides()
    reply = server.asc(client.isc().output_token).output_token
    inner = inner_of(reply, RESP)
    for bad in (inner, wrapped(INIT, inner), wrapped(ACCEPT_COMPLETED, inner), None, b""):
        assert client.isc(bad).status == INVALID_TOKEN
    assert client.isc(wrapped(RESP, inner[:-3])).status == INVALID_TOKEN  # inner NTLM truncated
    last = client.isc(reply)
    assert last.status == OK
    assert server.asc(last.output_token).status == OK


@pytest.mark.rule("NEG-003", "ASC-004", "LIF-002")
def test_server_second_leg_needs_the_same_framing(
    sides: Callable[..., tuple[Side, Side]],
) -> None:
    client, server = sides()
    last = client.isc(server.asc(client.isc().output_token).output_token).output_token
    inner = inner_of(last, RESP)
    for bad in (inner, wrapped(INIT, inner), wrapped(RESP, inner + b"!"), b""):
        assert server.asc(bad).status == INVALID_TOKEN
    assert server.sspi.statistics().contexts == 1
    assert server.asc(last).status == OK


@pytest.mark.rule("NEG-004")
def test_raw_ntlm_client_to_a_negotiate_server(sides: Callable[..., tuple[Side, Side]]) -> None:
    client, server = sides(client_package="NTLM")
    first = client.isc()
    assert first.output_token.startswith(SIGNATURE)
    reply = server.asc(first.output_token)
    assert reply.status == CONTINUE and reply.output_token.startswith(SIGNATURE)
    last = client.isc(reply.output_token)
    final = server.asc(last.output_token)
    assert (last.status, final.status, final.output_token) == (OK, OK, b"")
    info = server.sspi.query_context_attributes(server.ctx, SECPKG_ATTR_PACKAGE_INFO)
    assert info.buffer.package_info.name == "Negotiate"


@pytest.mark.rule("NEG-004", "NEG-003")
def test_raw_exchange_stays_raw(sides: Callable[..., tuple[Side, Side]]) -> None:
    client, server = sides(client_package="NTLM")
    last = client.isc(server.asc(client.isc().output_token).output_token).output_token
    assert server.asc(wrapped(RESP, last)).status == INVALID_TOKEN
    assert server.asc(last).status == OK


@pytest.mark.rule("NEG-001", "NTLM-005")
def test_negotiate_client_to_a_raw_ntlm_server(sides: Callable[..., tuple[Side, Side]]) -> None:
    client, server = sides(server_package="NTLM")
    result = server.asc(client.isc().output_token)
    assert (result.status, result.new_context) == (INVALID_TOKEN, None)


@pytest.mark.rule("NEG-005", "QCA-001")
def test_negotiate_context_attributes(sides: Callable[..., tuple[Side, Side]]) -> None:
    client, server = sides()
    server.asc(client.isc(server.asc(client.isc().output_token).output_token).output_token)
    for side in (client, server):
        sizes = side.sspi.query_context_attributes(side.ctx, SECPKG_ATTR_SIZES).buffer
        assert (sizes.max_token, sizes.max_signature, sizes.security_trailer) == (48256, 16, 16)
        info = side.sspi.query_context_attributes(side.ctx, SECPKG_ATTR_PACKAGE_INFO).buffer
        assert info.package_info.name == "Negotiate"
        assert side.sspi.free_context_buffer(info.allocation) == OK


@pytest.mark.rule("PKG-005")
def test_negotiate_package_info(make_sspi: Callable[..., Sspi]) -> None:
    s = make_sspi()
    info = s.query_security_package_info("negotiate").package_info
    assert (info.name, info.version, info.rpc_id, info.max_token) == ("Negotiate", 1, 9, 48256)
    assert s.enumerate_security_packages().packages[0] == info


@pytest.mark.rule("ISC-007", "NEG-001")
def test_negotiate_reauthentication(sides: Callable[..., tuple[Side, Side]]) -> None:
    client, server = sides()
    server.asc(client.isc(server.asc(client.isc().output_token).output_token).output_token)
    again = client.isc()
    assert again.status == CONTINUE
    assert inner_of(again.output_token, INIT).startswith(SIGNATURE)
    fresh = Side(server.sspi, "Negotiate", CredentialUse.INBOUND)
    last = client.isc(fresh.asc(again.output_token).output_token)
    assert last.status == OK
    assert fresh.asc(last.output_token).status == OK
