"""NTLM between two processes: the three messages, the password decision, malformed and replayed
tokens."""

from __future__ import annotations

import struct
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from sspi_model import (
    SECPKG_ATTR_NAMES,
    SECPKG_ATTR_SIZES,
    AuthIdentity,
    ContextReq,
    CredentialUse,
    SecStatus,
    Sspi,
    Statistics,
)
from sspi_model.packages.ntlm import SIGNATURE
from sspi_model.results import ContextSizes

OK = SecStatus.SEC_E_OK
CONTINUE = SecStatus.SEC_I_CONTINUE_NEEDED
INVALID_TOKEN = SecStatus.SEC_E_INVALID_TOKEN
DENIED = SecStatus.SEC_E_LOGON_DENIED
OUTBOUND, INBOUND = CredentialUse.OUTBOUND, CredentialUse.INBOUND


def message_type(token: bytes) -> int:
    assert token.startswith(SIGNATURE)
    return int(struct.unpack_from("<I", token, 8)[0])


class Legs:
    """A client and a server NTLM context, driven one leg at a time."""

    def __init__(self, client: Sspi, server: Sspi, auth: Any = None) -> None:
        self.client, self.server = client, server
        self.ccred = client.acquire_credentials_handle("NTLM", OUTBOUND, auth).credential
        self.scred = server.acquire_credentials_handle("NTLM", INBOUND).credential
        self.cctx: Any = None
        self.sctx: Any = None

    def isc(self, token: bytes | None = None, req: int = 0) -> Any:
        result = self.client.initialize_security_context(self.ccred, self.cctx, "t", req, token)
        self.cctx = self.cctx or result.new_context
        return result

    def asc(self, token: bytes | None, req: int = 0) -> Any:
        result = self.server.accept_security_context(self.scred, self.sctx, token, req)
        self.sctx = self.sctx or result.new_context
        return result

    def tokens(self) -> tuple[bytes, bytes, bytes]:
        """Run ISC, ASC, ISC and return NEGOTIATE, CHALLENGE, AUTHENTICATE."""
        negotiate = self.isc().output_token
        challenge = self.asc(negotiate).output_token
        authenticate = self.isc(challenge).output_token
        return negotiate, challenge, authenticate


@pytest.fixture
def legs(make_sspi: Callable[..., Sspi]) -> Callable[..., Legs]:
    def make(auth: Any = None, **kw: Any) -> Legs:
        return Legs(make_sspi(**kw), make_sspi(**kw), auth)

    return make


# -- the handshake --------------------------------------------------------------------------------


@pytest.mark.rule("NTLM-001", "NTLM-002", "NTLM-003", "NTLM-006")
def test_handshake_between_two_processes(
    make_sspi: Callable[..., Sspi], handshake: Callable[..., Any]
) -> None:
    client, server = make_sspi(), make_sspi()
    hs = handshake(client, server, "NTLM")
    assert hs.statuses == [CONTINUE, CONTINUE, OK, OK]
    negotiate, authenticate = (leg.output_token for leg in hs.client_legs)
    challenge, final = (leg.output_token for leg in hs.server_legs)
    assert [message_type(t) for t in (negotiate, challenge, authenticate)] == [1, 2, 3]
    assert final == b""
    assert client.statistics() == server.statistics() == Statistics(1, 0, 1, 0)
    names = server.query_context_attributes(hs.server_context, SECPKG_ATTR_NAMES)
    assert names.status == OK and names.buffer.user_name == "DOM\\alice"


@pytest.mark.rule("NTLM-001")
def test_client_first_leg_ignores_input(legs: Callable[..., Legs]) -> None:
    pair = legs()
    first = pair.isc(b"whatever the server might have sent")
    assert first.status == CONTINUE and message_type(first.output_token) == 1


@pytest.mark.rule("NTLM-003")
def test_every_server_context_gets_a_fresh_challenge(legs: Callable[..., Legs]) -> None:
    challenges = set()
    for _ in range(5):
        pair = legs()
        challenge = pair.asc(pair.isc().output_token).output_token
        assert message_type(challenge) == 2
        challenges.add(challenge[16:24])
    assert len(challenges) == 5


@pytest.mark.rule("NTLM-006")
def test_explicit_identity_names_the_context(legs: Callable[..., Legs]) -> None:
    pair = legs(AuthIdentity("bob", "bob-pw"))
    _, _, authenticate = pair.tokens()
    assert pair.asc(authenticate).status == OK
    names = pair.server.query_context_attributes(pair.sctx, SECPKG_ATTR_NAMES).buffer
    assert names.user_name == "bob"
    client_names = pair.client.query_context_attributes(pair.cctx, SECPKG_ATTR_NAMES).buffer
    assert client_names.user_name == "bob"


# -- the password decision ------------------------------------------------------------------------


@pytest.mark.rule("NTLM-002", "NTLM-004", "LIF-003", "LIF-004")
@pytest.mark.parametrize(
    "auth",
    [
        AuthIdentity("alice", "wrong", "DOM"),
        AuthIdentity("mallory", "x", "EVIL"),
        AuthIdentity("Bob", "alice-pw"),
    ],
    ids=["wrong-password", "unknown-user", "other-users-password"],
)
def test_only_the_servers_last_leg_decides(legs: Callable[..., Legs], auth: AuthIdentity) -> None:
    pair = legs(auth)
    first = pair.isc()
    reply = pair.asc(first.output_token)
    last = pair.isc(reply.output_token)
    final = pair.asc(last.output_token)
    assert [first.status, reply.status, last.status, final.status] == [
        CONTINUE,
        CONTINUE,
        OK,
        DENIED,
    ]
    assert final.new_context == pair.sctx  # the failed context is alive ...
    assert pair.server.statistics().contexts == 1
    assert pair.server.delete_security_context(pair.sctx) == OK  # ... and deletable
    assert pair.server.statistics() == Statistics(1, 0, 0, 0)
    # The client cannot tell: its context is established.
    assert pair.client.query_context_attributes(pair.cctx, SECPKG_ATTR_SIZES).status == OK


@pytest.mark.rule("NTLM-004")
def test_user_names_compare_case_insensitively(legs: Callable[..., Legs]) -> None:
    pair = legs(AuthIdentity("ALICE", "alice-pw", "dom"))
    *_, authenticate = pair.tokens()
    assert pair.asc(authenticate).status == OK


# -- malformed tokens -----------------------------------------------------------------------------


def _bad_variants(good: bytes) -> dict[str, bytes | None]:
    # The first string field starts after the header (16 bytes), or after the 8-byte server
    # challenge in a CHALLENGE; three bytes of UTF-16 cannot decode.
    first_string = 24 if message_type(good) == 2 else 16
    return {
        "missing": None,
        "empty": b"",
        "garbage": b"\x13\x37" * 32,
        "signature-only": SIGNATURE,
        "truncated": good[: len(good) // 2],
        "one-short": good[:-1],
        "trailing": good + b"\x00",
        "bad-string": good[:first_string] + b"\x03\x00\xff\xfe\xfd",
    }


@pytest.mark.rule("NTLM-005", "ASC-004", "LIF-001")
@pytest.mark.parametrize(
    "kind",
    [
        "missing",
        "empty",
        "garbage",
        "signature-only",
        "truncated",
        "one-short",
        "trailing",
        "bad-string",
        "wrong-type",
    ],
)
def test_bad_first_server_input(legs: Callable[..., Legs], kind: str) -> None:
    pair = legs()
    negotiate = pair.isc().output_token
    bad = _bad_variants(negotiate)
    bad["wrong-type"] = SIGNATURE + struct.pack("<II", 3, 0) + negotiate[16:]
    before = pair.server.statistics()
    result = pair.asc(bad[kind])
    assert (result.status, result.new_context) == (INVALID_TOKEN, None)
    assert pair.server.statistics() == before
    assert pair.asc(negotiate).status == CONTINUE


@pytest.mark.rule("NTLM-005", "ISC-011", "LIF-002")
@pytest.mark.parametrize(
    "kind",
    [
        "missing",
        "empty",
        "garbage",
        "signature-only",
        "truncated",
        "one-short",
        "trailing",
        "bad-string",
        "negotiate-instead",
    ],
)
def test_bad_client_second_input(legs: Callable[..., Legs], kind: str) -> None:
    pair = legs()
    negotiate = pair.isc().output_token
    challenge = pair.asc(negotiate).output_token
    bad = _bad_variants(challenge)
    bad["negotiate-instead"] = negotiate
    result = pair.isc(bad[kind])
    assert result.status == INVALID_TOKEN
    assert pair.client.query_context_attributes(pair.cctx, SECPKG_ATTR_SIZES).status == (
        SecStatus.SEC_E_INVALID_HANDLE  # still partial
    )
    retry = pair.isc(challenge)
    assert retry.status == OK
    assert pair.asc(retry.output_token).status == OK


@pytest.mark.rule("NTLM-005", "ASC-004", "LIF-002")
@pytest.mark.parametrize(
    "kind",
    [
        "missing",
        "empty",
        "garbage",
        "signature-only",
        "truncated",
        "one-short",
        "trailing",
        "challenge-instead",
        "negotiate-again",
    ],
)
def test_bad_server_second_input(legs: Callable[..., Legs], kind: str) -> None:
    pair = legs()
    negotiate, challenge, authenticate = pair.tokens()
    bad = _bad_variants(authenticate)
    bad["challenge-instead"] = challenge
    bad["negotiate-again"] = negotiate
    result = pair.asc(bad[kind])
    assert result.status == INVALID_TOKEN
    assert pair.server.statistics().contexts == 1
    assert pair.asc(authenticate).status == OK


@pytest.mark.rule("NTLM-005", "API-003")
@given(data=st.binary(max_size=200))
def test_random_bytes_are_invalid_tokens_on_every_leg(
    make_sspi: Callable[..., Sspi], data: bytes
) -> None:
    assume(not data.startswith(SIGNATURE))
    pair = Legs(make_sspi(), make_sspi())
    _, challenge, authenticate = pair.tokens()  # both contexts partial, AUTHENTICATE unsent
    server_first = Legs(pair.client, pair.server)
    assert server_first.asc(data).status == INVALID_TOKEN
    assert server_first.sctx is None
    client_second = Legs(pair.client, pair.server)
    client_second.isc()
    assert client_second.isc(data).status == INVALID_TOKEN
    assert client_second.isc(challenge).status == OK
    assert pair.asc(data).status == INVALID_TOKEN
    assert pair.asc(authenticate).status == OK


@pytest.mark.rule("NTLM-005")
@given(cut=st.integers(min_value=0, max_value=400))
def test_every_truncation_is_an_invalid_token(make_sspi: Callable[..., Sspi], cut: int) -> None:
    pair = Legs(make_sspi(), make_sspi())
    negotiate, challenge, authenticate = pair.tokens()
    for token in (negotiate, authenticate):
        if cut < len(token):
            server = Legs(pair.client, pair.server)
            if token is authenticate:
                server.sctx = pair.sctx
            assert server.asc(token[:cut]).status == INVALID_TOKEN
    if cut < len(challenge):
        client = Legs(pair.client, pair.server)
        client.isc()
        assert client.isc(challenge[:cut]).status == INVALID_TOKEN


# -- replayed and forged tokens -------------------------------------------------------------------


@pytest.mark.rule("NTLM-007")
def test_authenticate_replayed_to_another_server_context(legs: Callable[..., Legs]) -> None:
    first = legs()
    negotiate, _, authenticate = first.tokens()
    assert first.asc(authenticate).status == OK
    second = Legs(first.client, first.server)
    assert second.asc(negotiate).status == CONTINUE  # a replayed NEGOTIATE starts a new context
    replay = second.asc(authenticate)
    assert replay.status == DENIED
    assert second.server.delete_security_context(second.sctx) == OK


@pytest.mark.rule("NTLM-007", "NTLM-002")
def test_challenge_of_another_server_context(legs: Callable[..., Legs]) -> None:
    victim, attacker = legs(), legs()
    victim_negotiate = victim.isc().output_token
    victim.asc(victim_negotiate)
    _, other_challenge, _ = attacker.tokens()
    # The client answers whatever challenge it is handed; the server it talks to says no.
    authenticate = victim.isc(other_challenge)
    assert authenticate.status == OK
    assert victim.asc(authenticate.output_token).status == DENIED


@pytest.mark.rule("NTLM-007")
def test_forged_user_name(legs: Callable[..., Legs]) -> None:
    pair = legs()
    _, _, authenticate = pair.tokens()
    alice = "alice".encode("utf-16-le")
    forged = authenticate.replace(
        struct.pack("<H", len(alice)) + alice, struct.pack("<H", 6) + "bob".encode("utf-16-le"), 1
    )
    forged = forged.replace(struct.pack("<H", 6) + "DOM".encode("utf-16-le"), b"\x00\x00", 1)
    assert forged != authenticate
    assert pair.asc(forged).status == DENIED


@pytest.mark.rule("NTLM-007", "ASC-007", "LIF-003")
def test_replays_to_finished_contexts(legs: Callable[..., Legs]) -> None:
    good, bad = legs(), legs(AuthIdentity("alice", "nope", "DOM"))
    *_, authenticate = good.tokens()
    assert good.asc(authenticate).status == OK
    assert good.asc(authenticate).status == SecStatus.SEC_E_OUT_OF_SEQUENCE
    *_, wrong = bad.tokens()
    assert bad.asc(wrong).status == DENIED
    assert bad.asc(authenticate).status == SecStatus.SEC_E_OUT_OF_SEQUENCE
    assert bad.server.delete_security_context(bad.sctx) == OK


# -- sizes, flags and package info ----------------------------------------------------------------


@pytest.mark.rule("NTLM-008")
def test_sizes(legs: Callable[..., Legs]) -> None:
    pair = legs()
    *_, authenticate = pair.tokens()
    pair.asc(authenticate)
    for sspi, ctx in ((pair.client, pair.cctx), (pair.server, pair.sctx)):
        result = sspi.query_context_attributes(ctx, SECPKG_ATTR_SIZES)
        assert result.buffer == ContextSizes(
            max_token=2888, max_signature=16, block_size=0, security_trailer=16
        )


@pytest.mark.rule("NTLM-009")
def test_granted_flags(legs: Callable[..., Legs]) -> None:
    wanted = (
        ContextReq.DELEGATE
        | ContextReq.MUTUAL_AUTH
        | ContextReq.CONFIDENTIALITY
        | ContextReq.INTEGRITY
        | ContextReq.CONNECTION
        | ContextReq.REPLAY_DETECT
    )
    server_wanted = 0x1 | 0x2 | 0x10 | 0x800 | 0x20000
    pair = legs()
    first = pair.isc(req=wanted)
    reply = pair.asc(first.output_token, req=server_wanted)
    last = pair.isc(reply.output_token, req=wanted)
    final = pair.asc(last.output_token, req=server_wanted)
    for leg in (first, last):
        assert leg.context_attr == wanted & ~(ContextReq.DELEGATE | ContextReq.MUTUAL_AUTH)
    for leg in (reply, final):
        assert leg.context_attr == 0x10 | 0x800 | 0x20000
    assert pair.isc(req=0).status == CONTINUE  # reauthentication with no flags ...
    assert pair.client.initialize_security_context(pair.ccred, None, "t", 0x40).context_attr == 0


@pytest.mark.rule("PKG-003")
def test_ntlm_package_info(make_sspi: Callable[..., Sspi]) -> None:
    s = make_sspi()
    info = s.query_security_package_info("NTLM").package_info
    assert (info.name, info.capabilities, info.version, info.rpc_id, info.max_token) == (
        "NTLM",
        0x2B37,
        1,
        10,
        2888,
    )
    assert info in s.enumerate_security_packages().packages
