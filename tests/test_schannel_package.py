"""The Schannel package driven directly, without the handle layer (SCH-001..SCH-012)."""

from __future__ import annotations

from typing import Any

import pytest

from sspi_model.buffers import (
    SECBUFFER_ALERT,
    SECBUFFER_EMPTY,
    SECBUFFER_EXTRA,
    SECBUFFER_MISSING,
    SECBUFFER_TOKEN,
    SecBuffer,
    token,
)
from sspi_model.constants import CredentialUse
from sspi_model.packages.base import Environment, LegOutcome, LegResult
from sspi_model.packages.ntlm import AuthIdentity
from sspi_model.packages.schannel import (
    ALERT,
    BAD_CERTIFICATE,
    DECRYPT_ERROR,
    SCHANNEL_STREAM_SIZES,
    Certificate,
    SchannelClientSession,
    SchannelCred,
    SchannelPackage,
    SchannelServerSession,
)
from sspi_model.status import SecStatus

ENV = Environment(accounts={}, logon_user="alice")
PKG = SchannelPackage()
SERVER_CERT = Certificate("CN=srv.contoso.com, O=Contoso")
CLIENT_CERT = Certificate("CN=alice")
TARGET = "srv.contoso.com"
OK, CONTINUE = SecStatus.SEC_E_OK, SecStatus.SEC_I_CONTINUE_NEEDED
INCOMPLETE_CREDS = SecStatus.SEC_I_INCOMPLETE_CREDENTIALS
INCOMPLETE = SecStatus.SEC_E_INCOMPLETE_MESSAGE
INVALID = SecStatus.SEC_E_INVALID_TOKEN
UNSUPPORTED = SecStatus.SEC_E_UNSUPPORTED_FUNCTION
MORE, DONE = LegOutcome.CONTINUE, LegOutcome.ESTABLISHED
FAILED, REJECTED = LegOutcome.FAILED, LegOutcome.REJECTED
MUTUAL = 0x2
ISC_REQ = 0x4 | 0x8 | 0x10 | 0x100 | 0x800 | 0x8000  # replay|sequence|conf|alloc|conn|stream
ASC_REQ = 0x4 | 0x8 | 0x10 | 0x100 | 0x800 | 0x10000


def credential(use: int, **kwargs: Any) -> Any:
    status, material, rules = PKG.acquire(use, None, SchannelCred(**kwargs), ENV)
    assert (status, rules) == (OK, ("SCH-001",))
    return material


def sessions(
    client: dict[str, Any] | None = None,
    server: dict[str, Any] | None = None,
    target: str | None = TARGET,
) -> tuple[SchannelClientSession, SchannelServerSession]:
    ccred = credential(CredentialUse.OUTBOUND, **(client or {}))
    scred = credential(CredentialUse.INBOUND, **{"certificate": SERVER_CERT, **(server or {})})
    return PKG.new_client(ccred, target, ENV), PKG.new_server(scred, ENV)


def check(leg: LegResult, status: SecStatus, outcome: LegOutcome, *rules: str) -> LegResult:
    assert (leg.status, leg.outcome) == (status, outcome), leg
    for rule in rules:
        assert rule in leg.rules, leg
    return leg


def alert_of(leg: LegResult) -> bytes:
    (alert,) = leg.extra_output
    assert alert.buffer_type == SECBUFFER_ALERT
    assert alert.data[0] == ALERT and alert.data[5] == 2  # a fatal alert record
    return alert.data


def to_server_flight(
    client: SchannelClientSession, server: SchannelServerSession, asc_req: int = ASC_REQ
) -> bytes:
    hello = check(client.step(None, ISC_REQ), CONTINUE, LegOutcome.CONTINUE).token
    return check(server.step(token(hello), asc_req), CONTINUE, LegOutcome.CONTINUE).token


@pytest.mark.rule("SCH-001", "SCH-012", "ASC-009")
def test_tls12_full_handshake_leg_by_leg() -> None:
    client, server = sessions()
    hello = check(client.step(None, ISC_REQ), CONTINUE, LegOutcome.CONTINUE, "SCH-012")
    assert hello.token and hello.token[0] == 0x16
    flight = check(server.step(token(hello.token), ASC_REQ), CONTINUE, LegOutcome.CONTINUE)
    leg = check(client.step(token(flight.token), ISC_REQ), CONTINUE, LegOutcome.CONTINUE)
    final = check(server.step(token(leg.token), ASC_REQ), OK, LegOutcome.ESTABLISHED, "ASC-009")
    assert final.token  # SEC_E_OK with a token that must still be sent
    done = check(client.step(token(final.token), ISC_REQ), OK, LegOutcome.ESTABLISHED, "SCH-012")
    assert done.token == b""
    assert done.context_attr == ISC_REQ and final.context_attr == ASC_REQ  # no MUTUAL_AUTH
    assert client.user_name == SERVER_CERT.subject and server.user_name == ""
    assert client.stream_sizes() == server.stream_sizes() == SCHANNEL_STREAM_SIZES
    assert client.sizes().max_token == PKG.info.max_token == 24576


@pytest.mark.rule("SCH-012")
def test_context_attr_is_the_grantable_subset() -> None:
    client, server = sessions()
    hello = client.step(None, 0x10 | 0x20 | 0x8000 | 0x10000)  # USE_SESSION_KEY, ISC INTEGRITY
    assert hello.context_attr == 0x10 | 0x8000
    assert server.step(token(hello.token), 0x10 | 0x8000).context_attr == 0x10  # ASC 0x8000


@pytest.mark.rule("SCH-009")
def test_tls13_handshake() -> None:
    client, server = sessions({"protocols": "tls1.3"}, {"protocols": "tls1.3"})
    hello = check(client.step(None, ISC_REQ), CONTINUE, LegOutcome.CONTINUE, "SCH-009")
    flight = check(server.step(token(hello.token), ASC_REQ), CONTINUE, MORE, "SCH-009")
    fin = check(client.step(token(flight.token), ISC_REQ), OK, LegOutcome.ESTABLISHED, "SCH-009")
    assert fin.token  # the client Finished goes out with SEC_E_OK
    last = check(server.step(token(fin.token), ASC_REQ), OK, LegOutcome.ESTABLISHED, "SCH-009")
    assert last.token == b""


@pytest.mark.rule("SCH-009", "SCH-012")
@pytest.mark.parametrize(("mine", "theirs"), [("tls1.3", "tls1.2"), ("tls1.2", "tls1.3")])
def test_differing_protocols_negotiate_tls12(mine: str, theirs: str) -> None:
    client, server = sessions({"protocols": mine}, {"protocols": theirs})
    flight = to_server_flight(client, server)
    leg = check(client.step(token(flight), ISC_REQ), CONTINUE, LegOutcome.CONTINUE, "SCH-012")
    final = check(server.step(token(leg.token), ASC_REQ), OK, LegOutcome.ESTABLISHED, "SCH-012")
    check(client.step(token(final.token), ISC_REQ), OK, LegOutcome.ESTABLISHED)


@pytest.mark.rule("SCH-006")
def test_wrong_principal_fails_with_an_alert() -> None:
    client, server = sessions(target="other.contoso.com")
    leg = client.step(token(to_server_flight(client, server)), ISC_REQ)
    check(leg, SecStatus.SEC_E_WRONG_PRINCIPAL, LegOutcome.FAILED, "SCH-006")
    assert alert_of(leg)[6] == BAD_CERTIFICATE


@pytest.mark.rule("SCH-006")
@pytest.mark.parametrize("target", ["SRV.Contoso.COM", None])
def test_principal_match_is_case_insensitive_and_skipped_without_target(
    target: str | None,
) -> None:
    client, server = sessions(target=target)
    check(client.step(token(to_server_flight(client, server)), ISC_REQ), CONTINUE, MORE)


@pytest.mark.rule("SCH-007", "SCH-008")
def test_client_certificate_asked_for_and_missing() -> None:
    client, server = sessions()
    flight = to_server_flight(client, server, ASC_REQ | MUTUAL)
    first = client.step(token(flight), ISC_REQ)
    check(first, SecStatus.SEC_I_INCOMPLETE_CREDENTIALS, LegOutcome.CONTINUE, "SCH-007")
    assert first.token == b""
    # The caller retries with the same input and no new credential: an empty Certificate.
    retry = check(client.step(token(flight), ISC_REQ), CONTINUE, LegOutcome.CONTINUE, "SCH-007")
    leg = server.step(token(retry.token), ASC_REQ | MUTUAL)
    check(leg, SecStatus.SEC_E_INCOMPLETE_CREDENTIALS, LegOutcome.FAILED, "SCH-008")
    alert_of(leg)


@pytest.mark.rule("SCH-008")
def test_tls13_server_requires_a_client_certificate() -> None:
    client, server = sessions({"protocols": "tls1.3"}, {"protocols": "tls1.3"})
    flight = to_server_flight(client, server, ASC_REQ | MUTUAL)
    check(client.step(token(flight), ISC_REQ), INCOMPLETE_CREDS, MORE)
    fin = check(client.step(token(flight), ISC_REQ), OK, LegOutcome.ESTABLISHED)
    leg = server.step(token(fin.token), ASC_REQ | MUTUAL)
    check(leg, SecStatus.SEC_E_INCOMPLETE_CREDENTIALS, LegOutcome.FAILED, "SCH-008")
    assert alert_of(leg)[6] == 116  # certificate_required


@pytest.mark.rule("SCH-007")
def test_retry_with_a_certificate_bearing_credential() -> None:
    client, server = sessions()
    flight = to_server_flight(client, server, ASC_REQ | MUTUAL)
    check(client.step(token(flight), ISC_REQ), INCOMPLETE_CREDS, MORE)
    client.use_credential(credential(CredentialUse.OUTBOUND, certificate=CLIENT_CERT))
    leg = check(client.step(token(flight), ISC_REQ), CONTINUE, LegOutcome.CONTINUE, "SCH-007")
    final = check(server.step(token(leg.token), ASC_REQ | MUTUAL), OK, LegOutcome.ESTABLISHED)
    done = check(client.step(token(final.token), ISC_REQ), OK, LegOutcome.ESTABLISHED)
    assert server.user_name == CLIENT_CERT.subject
    assert final.context_attr & MUTUAL and done.context_attr & MUTUAL


@pytest.mark.rule("SCH-007")
def test_client_with_a_certificate_is_not_asked_again() -> None:
    client, server = sessions({"certificate": CLIENT_CERT}, {"protocols": "tls1.2"})
    flight = to_server_flight(client, server, ASC_REQ | MUTUAL)
    leg = check(client.step(token(flight), ISC_REQ), CONTINUE, LegOutcome.CONTINUE)
    assert "SCH-007" not in leg.rules
    check(server.step(token(leg.token), ASC_REQ | MUTUAL), OK, LegOutcome.ESTABLISHED)
    assert server.user_name == "CN=alice"


@pytest.mark.rule("SCH-004")
def test_partial_record_reports_missing_then_succeeds() -> None:
    client, server = sessions()
    flight = to_server_flight(client, server)
    record_len = 5 + int.from_bytes(flight[3:5], "big")
    part = flight[:7]
    buffers = (SecBuffer(SECBUFFER_TOKEN, part), SecBuffer(SECBUFFER_EMPTY))
    leg = check(client.step(buffers, ISC_REQ), INCOMPLETE, REJECTED, "SCH-004")
    assert leg.input_after == (buffers[0], SecBuffer(SECBUFFER_MISSING, b"", size=record_len - 7))
    assert leg.token == b"" and leg.extra_output == ()
    # The bytes shorthand stands for TOKEN + EMPTY; the context was left as it was.
    leg = client.step(token(flight[:record_len]), ISC_REQ)  # a whole record, flight unfinished
    assert leg.status == SecStatus.SEC_E_INCOMPLETE_MESSAGE
    whole = token(flight[:record_len])
    assert leg.input_after == (*whole, SecBuffer(SECBUFFER_MISSING, b"", size=5))
    check(client.step(token(flight), ISC_REQ), CONTINUE, LegOutcome.CONTINUE)


@pytest.mark.rule("SCH-004")
def test_every_prefix_of_a_flight_is_incomplete_and_never_overstates() -> None:
    client, server = sessions()
    flight = to_server_flight(client, server)
    for cut in range(len(flight)):
        leg = client.step(token(flight[:cut]), ISC_REQ)
        assert (leg.status, leg.outcome) == (INCOMPLETE, REJECTED)
        assert leg.input_after is not None
        missing = leg.input_after[-1]
        assert missing.buffer_type == SECBUFFER_MISSING
        assert 0 < missing.cb <= len(flight) - cut
    check(client.step(token(flight), ISC_REQ), CONTINUE, LegOutcome.CONTINUE)


@pytest.mark.rule("SCH-004")
def test_server_first_leg_partial_client_hello() -> None:
    client, server = sessions()
    hello = client.step(None, ISC_REQ).token
    leg = server.step(token(hello[:3]), ASC_REQ)
    check(leg, SecStatus.SEC_E_INCOMPLETE_MESSAGE, LegOutcome.REJECTED, "SCH-004")
    assert leg.input_after == (*token(hello[:3]), SecBuffer(SECBUFFER_MISSING, b"", size=2))
    check(server.step(token(hello), ASC_REQ), CONTINUE, LegOutcome.CONTINUE)


@pytest.mark.rule("SCH-005")
def test_extra_bytes_after_the_flight_are_reported() -> None:
    client, server = sessions()
    flight = to_server_flight(client, server)
    buffers = (SecBuffer(SECBUFFER_TOKEN, flight + b"\x17\x03"), SecBuffer(SECBUFFER_EMPTY))
    leg = check(client.step(buffers, ISC_REQ), CONTINUE, LegOutcome.CONTINUE, "SCH-005", "SCH-012")
    assert leg.input_after == (buffers[0], SecBuffer(SECBUFFER_EXTRA, b"", size=2))
    final = server.step(token(leg.token), ASC_REQ)
    assert final.input_after is None and "SCH-005" not in final.rules


@pytest.mark.rule("SCH-010")
@pytest.mark.parametrize(
    "garbage", [b"hello, world", b"\x16\x03\x03\x00\x00", b"\x16\x09\x09\x00\x01\x01"]
)
def test_garbage_first_leg_is_invalid_token_with_alert(garbage: bytes) -> None:
    _client, server = sessions()
    leg = server.step(token(garbage), ASC_REQ)
    check(leg, SecStatus.SEC_E_INVALID_TOKEN, LegOutcome.FAILED, "SCH-010")
    alert_of(leg)


@pytest.mark.rule("SCH-010")
def test_wrong_message_and_tampered_finished() -> None:
    client, server = sessions()
    hello = client.step(None, ISC_REQ).token
    leg = client.step(token(hello), ISC_REQ)  # a ClientHello where the server flight belongs
    check(leg, SecStatus.SEC_E_INVALID_TOKEN, LegOutcome.FAILED, "SCH-010")
    alert_of(leg)
    client, server = sessions()
    flight = to_server_flight(client, server)
    out = client.step(token(flight), ISC_REQ).token
    tampered = out[:-1] + bytes([out[-1] ^ 1])
    leg = check(server.step(token(tampered), ASC_REQ), INVALID, FAILED)
    assert alert_of(leg)[6] == DECRYPT_ERROR


@pytest.mark.rule("SCH-010")
def test_no_input_token_is_rejected_without_alert() -> None:
    client, server = sessions()
    client.step(None, ISC_REQ)
    for leg in (client.step(None, ISC_REQ), server.step(None, ASC_REQ)):
        check(leg, SecStatus.SEC_E_INVALID_TOKEN, LegOutcome.REJECTED, "SCH-010")
        assert leg.extra_output == ()


@pytest.mark.rule("SCH-011")
@pytest.mark.parametrize("flag", [0x1, 0x40])
def test_isc_delegate_and_prompt_are_unsupported(flag: int) -> None:
    client, _server = sessions()
    leg = client.step(None, ISC_REQ | flag)
    check(leg, SecStatus.SEC_E_UNSUPPORTED_FUNCTION, LegOutcome.FAILED, "SCH-011")


@pytest.mark.rule("SCH-011")
def test_asc_delegate_is_unsupported() -> None:
    client, server = sessions()
    hello = client.step(None, ISC_REQ).token
    check(server.step(token(hello), ASC_REQ | 0x1), UNSUPPORTED, FAILED, "SCH-011")


@pytest.mark.rule("SCH-001", "SCH-002", "SCH-003", "ACH-007")
def test_acquire() -> None:
    inbound, outbound, both = CredentialUse.INBOUND, CredentialUse.OUTBOUND, CredentialUse.BOTH
    status, material, rules = PKG.acquire(outbound, None, None, ENV)
    assert (status, rules) == (OK, ("SCH-001",)) and material.cred == SchannelCred()
    assert PKG.acquire(outbound, None, AuthIdentity("u", "p"), ENV) == (
        SecStatus.SEC_E_UNKNOWN_CREDENTIALS, None, ("ACH-007",)
    )
    served = SchannelCred(SERVER_CERT)
    unknown = (SecStatus.SEC_E_UNKNOWN_CREDENTIALS, None, ("SCH-002",))
    assert PKG.acquire(both, None, served, ENV) == unknown
    no_creds = (SecStatus.SEC_E_NO_CREDENTIALS, None, ("SCH-003",))
    assert PKG.acquire(inbound, None, None, ENV) == no_creds
    assert PKG.acquire(inbound, None, SchannelCred(), ENV) == no_creds
    expired = Certificate("CN=old", expired=True)
    assert PKG.acquire(inbound, None, SchannelCred(expired), ENV) == no_creds
    assert PKG.acquire(outbound, None, SchannelCred(expired), ENV) == no_creds
    assert PKG.acquire(inbound, None, served, ENV)[0] == OK


def test_value_types_validate() -> None:
    with pytest.raises(TypeError):
        Certificate(b"CN=x")  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        Certificate("CN=x", expired="no")  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        SchannelCred(certificate="CN=x")  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        SchannelCred(protocols=3)  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        SchannelCred(protocols="ssl3")


def test_package_info_and_names() -> None:
    assert PKG.info.name == "Schannel" and PKG.info.rpc_id == 14 and PKG.info.version == 1
    assert PKG.names() == ("Schannel", "Microsoft Unified Security Protocol Provider")
    assert PKG.can_initiate(CredentialUse.OUTBOUND) and not PKG.can_initiate(CredentialUse.INBOUND)
    assert PKG.can_accept(CredentialUse.INBOUND) and not PKG.can_accept(CredentialUse.OUTBOUND)


def _without_random(flight: bytes) -> bytes:
    """The server flight with ServerHello's 32-byte random (after its record header, type and
    version: bytes 8..40) blanked: every handshake has its own (MSG-006)."""
    return flight[:8] + bytes(32) + flight[40:]


@pytest.mark.rule("SCH-012", "MSG-006")
def test_restart_and_determinism() -> None:
    client, server = sessions()
    first = to_server_flight(client, server)
    client.restart()
    server.restart()
    again = to_server_flight(client, server)
    assert again != first and _without_random(again) == _without_random(first)
    other_client, other_server = sessions()
    assert _without_random(to_server_flight(other_client, other_server)) == _without_random(first)
