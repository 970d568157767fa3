"""Schannel after the handshake: stream-mode EncryptMessage / DecryptMessage, EXTRA, MISSING,
TLS 1.3 post-handshake messages (SEC_I_RENEGOTIATE), close_notify, and the shutdown
(MSG-02x..03x, SHD rules), through the public API."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sspi_model import SecStatus, Sspi
from sspi_model.buffers import SecBuffer
from sspi_model.constants import SCHANNEL_SHUTDOWN, SECPKG_ATTR_STREAM_SIZES
from sspi_model.handles import SecHandle
from sspi_model.lifecycle import CALL_CODES, Call, CtxState
from sspi_model.packages.schannel import Certificate, SchannelCred

OK = SecStatus.SEC_E_OK
EMPTY, DATA, TOKEN, MISSING, EXTRA, TRAILER, HEADER = 0, 1, 2, 4, 5, 6, 7
ISC_REQ = 0x4 | 0x8 | 0x10 | 0x100 | 0x8000  # replay|sequence|confidentiality|alloc|stream
ASC_REQ = 0x4 | 0x8 | 0x10 | 0x100 | 0x10000


class Tls:
    """An established Schannel client/server pair."""

    def __init__(
        self, protocols: str = "tls1.3", tickets: bool = False, profile: str = "documented"
    ) -> None:
        self.client, self.server = Sspi(profile=profile), Sspi(profile=profile)
        self.ccred = self.client.acquire_credentials_handle(
            "Schannel", 2, SchannelCred(protocols=protocols)
        ).credential
        certificate = Certificate("CN=srv.contoso.com")
        self.scred = self.server.acquire_credentials_handle(
            "Schannel", 1, SchannelCred(certificate, protocols, session_tickets=tickets)
        ).credential
        leg = self.client.initialize_security_context(self.ccred, None, "srv.contoso.com", ISC_REQ)
        self.c: SecHandle = leg.new_context  # type: ignore[assignment]
        acc = self.server.accept_security_context(self.scred, None, leg.output_token, ASC_REQ)
        self.s: SecHandle = acc.new_context  # type: ignore[assignment]
        to_server = b""
        while True:  # until both sides are done
            leg = self.client.initialize_security_context(
                None, self.c, "srv.contoso.com", ISC_REQ, acc.output_token
            )
            if leg.output_token:
                acc = self.server.accept_security_context(None, self.s, leg.output_token, ASC_REQ)
            if leg.status == OK and self.server.lifecycle_state(self.s) is CtxState.ESTABLISHED:
                break
        self.to_client = acc.output_token  # a NewSessionTicket, with session tickets
        del to_server


def send(sspi: Sspi, handle: SecHandle, data: bytes) -> bytes:
    result = sspi.encrypt_message(
        handle,
        0,
        [
            SecBuffer(HEADER, size=5),
            SecBuffer(DATA, data),
            SecBuffer(TRAILER, size=36),
            SecBuffer(EMPTY),
        ],
    )
    assert result.status == OK, result
    return b"".join(buffer.data for buffer in result.buffers[:3])


def receive(sspi: Sspi, handle: SecHandle, wire: bytes) -> tuple[SecStatus, list[SecBuffer]]:
    result = sspi.decrypt_message(
        handle, [SecBuffer(DATA, wire), SecBuffer(EMPTY), SecBuffer(EMPTY), SecBuffer(EMPTY)]
    )
    return result.status, list(result.buffers)


def unread(wire: bytes, buffers: list[SecBuffer]) -> bytes:
    """The bytes an EXTRA buffer counts: the last cbBuffer bytes of the input."""
    extra = [b for b in buffers if b.base_type == EXTRA]
    return wire[len(wire) - extra[0].cb :] if extra else b""


@pytest.mark.rule("MSG-001", "MSG-034", "MSG-035", "MSG-036")
@pytest.mark.parametrize("protocols", ["tls1.2", "tls1.3"])
def test_records_round_trip_with_the_stream_sizes(protocols: str) -> None:
    tls = Tls(protocols)
    sizes = tls.client.query_context_attributes(tls.c, SECPKG_ATTR_STREAM_SIZES).buffer
    result = tls.client.encrypt_message(
        tls.c,
        0,
        [
            SecBuffer(HEADER, size=sizes.header),
            SecBuffer(DATA, b"GET / HTTP/1.1"),  # type: ignore[union-attr]
            SecBuffer(TRAILER, size=sizes.trailer),
            SecBuffer(EMPTY),
        ],  # type: ignore[union-attr]
    )
    assert [b.cb for b in result.buffers[:3]] == [5, 14, 36]
    assert result.buffers[1].data != b"GET / HTTP/1.1"
    wire = b"".join(b.data for b in result.buffers[:3])
    status, buffers = receive(tls.server, tls.s, wire)
    assert status == OK
    assert [b.base_type for b in buffers] == [HEADER, DATA, TRAILER, EMPTY]
    assert buffers[1].data == b"GET / HTTP/1.1"
    assert tls.server.last_rules == ("MSG-001", "MSG-036")
    status, buffers = receive(tls.client, tls.c, send(tls.server, tls.s, b"200 OK"))
    assert (status, buffers[1].data) == (OK, b"200 OK")


@pytest.mark.rule("MSG-036")
def test_two_records_at_once_leave_the_second_as_extra() -> None:
    tls = Tls()
    wire = send(tls.client, tls.c, b"one") + send(tls.client, tls.c, b"two")
    status, buffers = receive(tls.server, tls.s, wire)
    assert (status, buffers[1].data, buffers[3].base_type) == (OK, b"one", EXTRA)
    assert buffers[3].data == b""  # no copy: the count of the input's last bytes
    status, buffers = receive(tls.server, tls.s, unread(wire, buffers))
    assert (status, buffers[1].data, buffers[3].base_type) == (OK, b"two", EMPTY)


@pytest.mark.rule("MSG-032")
def test_a_partial_record_is_incomplete_with_missing_and_changes_nothing() -> None:
    tls = Tls()
    wire = send(tls.client, tls.c, b"hello")
    status, buffers = receive(tls.server, tls.s, wire[:3])
    assert status == SecStatus.SEC_E_INCOMPLETE_MESSAGE
    assert (buffers[1].base_type, buffers[1].cb) == (MISSING, 2)
    status, buffers = receive(tls.server, tls.s, wire[:10])
    assert (status, buffers[1].cb) == (SecStatus.SEC_E_INCOMPLETE_MESSAGE, len(wire) - 10)
    assert tls.server.lifecycle_state(tls.s) is CtxState.ESTABLISHED
    assert receive(tls.server, tls.s, wire)[1][1].data == b"hello"


@pytest.mark.rule("MSG-030", "MSG-006", "MSG-008", "MSG-003")
@pytest.mark.parametrize("damage", ["changed byte", "other context", "replay", "garbage"])
def test_a_bad_record_is_fatal(damage: str) -> None:
    tls = Tls()
    wire = send(tls.client, tls.c, b"hello")
    if damage == "changed byte":
        wire, status = wire[:7] + bytes([wire[7] ^ 1]) + wire[8:], SecStatus.SEC_E_MESSAGE_ALTERED
    elif damage == "other context":
        other = Tls()
        wire, status = send(other.client, other.c, b"hello"), SecStatus.SEC_E_MESSAGE_ALTERED
    elif damage == "replay":
        assert receive(tls.server, tls.s, wire)[0] == OK
        status = SecStatus.SEC_E_OUT_OF_SEQUENCE
    else:
        wire, status = b"\x16\x03\x03\x00\x30" + bytes(48), SecStatus.SEC_E_DECRYPT_FAILURE
    assert receive(tls.server, tls.s, wire)[0] == status
    assert tls.server.last_rules[-1] == "MSG-030"
    assert tls.server.lifecycle_state(tls.s) is CtxState.FAILED
    assert receive(tls.server, tls.s, wire)[0] == SecStatus.SEC_E_CONTEXT_EXPIRED


@pytest.mark.rule("MSG-031", "MSG-033")
def test_wrong_stream_descriptors() -> None:
    tls = Tls()
    encrypt = tls.client.encrypt_message
    assert encrypt(tls.c, 0, [SecBuffer(DATA, b"x")]).status == SecStatus.SEC_E_INVALID_TOKEN
    small = [SecBuffer(HEADER, size=4), SecBuffer(DATA, b"x"), SecBuffer(TRAILER, size=36)]
    assert encrypt(tls.c, 0, small).status == SecStatus.SEC_E_BUFFER_TOO_SMALL
    big = [SecBuffer(HEADER, size=5), SecBuffer(DATA, bytes(16385)), SecBuffer(TRAILER, size=36)]
    assert encrypt(tls.c, 0, big).status == SecStatus.SEC_E_INVALID_TOKEN
    fine = [SecBuffer(HEADER, size=5), SecBuffer(DATA, b"x"), SecBuffer(TRAILER, size=36)]
    assert encrypt(tls.c, 0x40000000, fine).status == SecStatus.SEC_E_QOP_NOT_SUPPORTED
    two = [SecBuffer(DATA, b"x"), SecBuffer(EMPTY)]
    assert tls.server.decrypt_message(tls.s, two).status == SecStatus.SEC_E_INVALID_TOKEN
    assert tls.server.last_rules == ("MSG-001", "MSG-031")
    assert tls.client.lifecycle_state(tls.c) is CtxState.ESTABLISHED


@pytest.mark.rule("MSG-020")
def test_schannel_has_no_signatures() -> None:
    tls = Tls()
    buffers = [SecBuffer(DATA, b"x"), SecBuffer(TOKEN, size=16)]
    assert (
        tls.client.make_signature(tls.c, 0, buffers).status == SecStatus.SEC_E_UNSUPPORTED_FUNCTION
    )
    signed = [SecBuffer(DATA, b"x"), SecBuffer(TOKEN, bytes(16))]  # a read TOKEN holds its bytes
    assert tls.client.verify_signature(tls.c, signed).status == SecStatus.SEC_E_UNSUPPORTED_FUNCTION
    assert tls.client.last_rules == ("MSG-001", "MSG-020")


@pytest.mark.rule("SHD-012", "SHD-001", "SHD-002")
def test_a_session_ticket_is_renegotiate_then_the_follow_up_isc() -> None:
    tls = Tls(tickets=True)
    assert tls.to_client  # the server's last leg carried the NewSessionTicket
    wire = tls.to_client + send(tls.server, tls.s, b"after the ticket")
    status, buffers = receive(tls.client, tls.c, wire)
    assert status == SecStatus.SEC_I_RENEGOTIATE
    assert tls.client.last_rules == ("MSG-001", "SHD-001")
    assert tls.client.lifecycle_state(tls.c) is CtxState.RENEGOTIATING
    assert buffers[3].base_type == EXTRA and buffers[3].cb == len(wire)
    # The record layer waits for the follow-up (SHD-002).
    assert tls.client.encrypt_message(tls.c, 0, []).status == SecStatus.SEC_E_CONTEXT_EXPIRED
    pending = unread(wire, buffers)
    short = tls.client.initialize_security_context(
        None, tls.c, "srv.contoso.com", ISC_REQ, [SecBuffer(TOKEN, pending[:20]), SecBuffer(EMPTY)]
    )
    assert short.status == SecStatus.SEC_E_INCOMPLETE_MESSAGE
    follow = tls.client.initialize_security_context(
        None, tls.c, "srv.contoso.com", ISC_REQ, [SecBuffer(TOKEN, pending), SecBuffer(EMPTY)]
    )
    assert (follow.status, follow.output_token) == (OK, b"")
    assert tls.client.lifecycle_state(tls.c) is CtxState.ESTABLISHED
    extra = follow.input_after[1]  # type: ignore[index]
    assert extra.base_type == EXTRA
    status, buffers = receive(tls.client, tls.c, pending[len(pending) - extra.cb :])
    assert (status, buffers[1].data) == (OK, b"after the ticket")


@pytest.mark.rule("SHD-011")
def test_the_2025_page_leaves_the_record_in_data() -> None:
    tls = Tls(tickets=True, profile="messages-2025")
    status, buffers = receive(tls.client, tls.c, tls.to_client)
    assert status == SecStatus.SEC_I_RENEGOTIATE
    assert [b.base_type for b in buffers] == [HEADER, DATA, TRAILER, EMPTY]
    assert buffers[1].data == tls.to_client
    follow = tls.client.initialize_security_context(
        None,
        tls.c,
        "srv.contoso.com",
        ISC_REQ,
        [SecBuffer(TOKEN, buffers[1].data), SecBuffer(EMPTY)],
    )
    assert follow.status == OK


def shutdown_token(kind: int = SCHANNEL_SHUTDOWN) -> list[SecBuffer]:
    return [SecBuffer(TOKEN, kind.to_bytes(4, "little"))]


@pytest.mark.rule("SHD-003", "SHD-004", "SHD-005", "SHD-006", "SHD-007", "SHD-008")
def test_the_client_shuts_down_then_reads_the_servers_close_notify() -> None:
    tls = Tls()
    applied = tls.client.apply_control_token(tls.c, shutdown_token())
    assert applied.status == OK
    assert tls.client.last_rules == ("SHD-008", "SHD-004")
    assert tls.client.lifecycle_state(tls.c) is CtxState.SHUTDOWN
    # curl: pInput NULL, an EMPTY output with ALLOCATE_MEMORY.
    leg = tls.client.initialize_security_context(
        tls.ccred, tls.c, "srv.contoso.com", ISC_REQ, None, output=[SecBuffer(EMPTY)]
    )
    assert leg.status == OK and leg.output_token
    assert tls.client.lifecycle_state(tls.c) is CtxState.CLOSING
    assert tls.client.encrypt_message(tls.c, 0, []).status == SecStatus.SEC_E_CONTEXT_EXPIRED
    stray = tls.client.initialize_security_context(None, tls.c, "srv.contoso.com", ISC_REQ)
    assert (stray.status, tls.client.last_rules) == (SecStatus.SEC_I_CONTEXT_EXPIRED, ("SHD-007",))
    # The server reads the close_notify, then answers with its own.
    status, buffers = receive(tls.server, tls.s, leg.output_token)
    assert (status, buffers[1].data) == (SecStatus.SEC_I_CONTEXT_EXPIRED, b"")
    assert tls.server.lifecycle_state(tls.s) is CtxState.PEER_CLOSED
    assert tls.server.encrypt_message(tls.s, 0, []).status == SecStatus.SEC_E_CONTEXT_EXPIRED
    assert tls.server.apply_control_token(tls.s, shutdown_token()).status == OK
    answer = tls.server.accept_security_context(None, tls.s, None, ASC_REQ)
    assert answer.status == OK and answer.output_token
    assert tls.server.lifecycle_state(tls.s) is CtxState.CLOSED
    status, _ = receive(tls.client, tls.c, answer.output_token)
    assert status == SecStatus.SEC_I_CONTEXT_EXPIRED
    assert tls.client.lifecycle_state(tls.c) is CtxState.CLOSED
    assert receive(tls.client, tls.c, answer.output_token)[0] == SecStatus.SEC_E_CONTEXT_EXPIRED
    assert tls.client.last_rules == ("SHD-006",)
    for sspi, handle in ((tls.client, tls.c), (tls.server, tls.s)):
        assert sspi.delete_security_context(handle) == OK


@pytest.mark.rule("SHD-005")
def test_data_and_a_ticket_still_arrive_while_shutting_down() -> None:
    tls = Tls(tickets=True)
    assert tls.client.apply_control_token(tls.c, shutdown_token()).status == OK
    wire = tls.to_client + send(tls.server, tls.s, b"late data")
    status, buffers = receive(tls.client, tls.c, wire)
    assert (status, buffers[1].data, tls.client.last_rules[-1]) == (OK, b"", "SHD-005")
    status, buffers = receive(tls.client, tls.c, unread(wire, buffers))
    assert (status, buffers[1].data) == (OK, b"late data")


@pytest.mark.rule("SHD-009")
@pytest.mark.parametrize(
    ("buffers", "status"),
    [
        ([SecBuffer(TOKEN, b"\x01")], SecStatus.SEC_E_UNSUPPORTED_FUNCTION),
        (shutdown_token(0), SecStatus.SEC_E_UNSUPPORTED_FUNCTION),
        ([SecBuffer(3, (1).to_bytes(4, "little"))], SecStatus.SEC_E_INVALID_TOKEN),
        ([*shutdown_token(), SecBuffer(EMPTY)], SecStatus.SEC_E_INVALID_TOKEN),
    ],
)
def test_bad_control_tokens_change_nothing(buffers: list[SecBuffer], status: SecStatus) -> None:
    tls = Tls()
    assert tls.client.apply_control_token(tls.c, buffers).status == status
    assert tls.client.last_rules == ("SHD-008", "SHD-009")
    assert tls.client.lifecycle_state(tls.c) is CtxState.ESTABLISHED


@pytest.mark.rule("SHD-002", "MSG-032")
@settings(deadline=None)
@given(garbage=st.binary(max_size=80), cut=st.integers(0, 120))
def test_any_follow_up_or_record_bytes_get_a_documented_status(garbage: bytes, cut: int) -> None:
    tls = Tls(tickets=True)
    status, _ = receive(tls.client, tls.c, tls.to_client[:cut] + garbage)
    assert status in CALL_CODES[Call.DECRYPT_MESSAGE]
    if status == SecStatus.SEC_I_RENEGOTIATE:
        follow = tls.client.initialize_security_context(
            None, tls.c, "srv.contoso.com", ISC_REQ, [SecBuffer(TOKEN, garbage), SecBuffer(EMPTY)]
        )
        assert follow.status in CALL_CODES[Call.INITIALIZE_SECURITY_CONTEXT]


@pytest.mark.rule("BUF-002", "SHD-005", "MSG-007")
def test_a_close_notify_leg_that_did_not_fit_is_rolled_back_with_its_counter() -> None:
    tls = Tls()
    assert tls.client.apply_control_token(tls.c, shutdown_token()).status == OK
    small = tls.client.initialize_security_context(
        None, tls.c, "srv.contoso.com", 0, None, output=[SecBuffer(TOKEN, size=4)]
    )
    assert small.status == SecStatus.SEC_E_BUFFER_TOO_SMALL
    assert tls.client.lifecycle_state(tls.c) is CtxState.SHUTDOWN
    leg = tls.client.initialize_security_context(
        None, tls.c, "srv.contoso.com", 0, None, output=[SecBuffer(TOKEN, size=100)]
    )
    assert leg.status == OK
    status, _ = receive(tls.server, tls.s, leg.output_token)
    assert status == SecStatus.SEC_I_CONTEXT_EXPIRED  # the record carries the expected number


@pytest.mark.rule("SHD-013", "SHD-008")
def test_a_session_token_is_accepted_and_changes_nothing() -> None:
    tls = Tls()
    for flags in (1, 2):
        token = [SecBuffer(TOKEN, (3).to_bytes(4, "little") + flags.to_bytes(4, "little"))]
        assert tls.client.apply_control_token(tls.c, token).status == OK
        assert tls.client.last_rules == ("SHD-008", "SHD-013")
    bad = [SecBuffer(TOKEN, (3).to_bytes(4, "little") + (7).to_bytes(4, "little"))]
    assert tls.client.apply_control_token(tls.c, bad).status == SecStatus.SEC_E_UNSUPPORTED_FUNCTION
    assert tls.client.lifecycle_state(tls.c) is CtxState.ESTABLISHED
    status, buffers = receive(tls.server, tls.s, send(tls.client, tls.c, b"still fine"))
    assert (status, buffers[1].data) == (OK, b"still fine")


def _alert_token(level: int, number: int, size: int = 12) -> bytes:
    fields = (2).to_bytes(4, "little") + level.to_bytes(4, "little") + number.to_bytes(4, "little")
    return fields[:size]


@pytest.mark.rule("SHD-014", "MSG-003", "MSG-030")
@pytest.mark.parametrize(("level", "after"), [(1, CtxState.ESTABLISHED), (2, CtxState.FAILED)])
def test_an_alert_token_goes_out_with_the_next_leg(level: int, after: CtxState) -> None:
    from test_schannel_attributes import Tls as Pair

    tls = Pair("tls1.3")
    assert tls.client.apply_control_token(tls.c, _alert_token(level, 90)).status == OK
    assert tls.client.lifecycle_state(tls.c) is CtxState.ALERTING
    queued = tls.client.encrypt_message(tls.c, 0, [SecBuffer(DATA, b"x")])
    assert queued.status == SecStatus.SEC_E_OUT_OF_SEQUENCE
    leg = tls.client.initialize_security_context(None, tls.c, "srv.contoso.com", 0, None)
    assert leg.status == OK and leg.output_token[:1] == b"\x17"  # a protected record
    assert tls.client.lifecycle_state(tls.c) is after
    # The model's peer takes any alert but close_notify as fatal (MSG-030).
    wire = [SecBuffer(DATA, leg.output_token), SecBuffer(0), SecBuffer(0), SecBuffer(0)]
    assert tls.server.decrypt_message(tls.s, wire).status == SecStatus.SEC_E_DECRYPT_FAILURE


@pytest.mark.rule("SHD-014")
def test_a_bad_or_untimely_alert_token_changes_nothing() -> None:
    from test_schannel_attributes import Tls as Pair

    tls = Pair()
    short = (2).to_bytes(4, "little")  # the DWORD alone, SHD-009 before ALERT was modelled
    for token in (_alert_token(3, 40), _alert_token(2, 256), _alert_token(2, 40, size=8), short):
        assert tls.server.apply_control_token(tls.s, token).status == SecStatus.SEC_E_INVALID_TOKEN
        assert tls.server.lifecycle_state(tls.s) is CtxState.ESTABLISHED
    shutdown = (1).to_bytes(4, "little")
    assert tls.server.apply_control_token(tls.s, shutdown).status == OK
    status = tls.server.apply_control_token(tls.s, _alert_token(2, 40)).status
    assert status == SecStatus.SEC_E_UNSUPPORTED_FUNCTION
    assert tls.server.lifecycle_state(tls.s) is CtxState.SHUTDOWN
    answer = tls.server.accept_security_context(None, tls.s, None)
    assert answer.status == OK and answer.output_token  # still the close_notify (SHD-005)
