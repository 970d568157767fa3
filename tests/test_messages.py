"""MakeSignature / VerifySignature / EncryptMessage / DecryptMessage on NTLM and Negotiate
contexts, through the public API (MSG rules)."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from test_schannel_messages import Tls

from sspi_model import AuthIdentity, CredentialUse, SecStatus, Sspi, SspiMisuse
from sspi_model.buffers import (
    SECBUFFER_READONLY,
    SecBuffer,
)
from sspi_model.constants import SECQOP_WRAP_NO_ENCRYPT
from sspi_model.handles import SecHandle
from sspi_model.lifecycle import CALL_CODES, Call, CtxState

ACCOUNTS = {"CONTOSO\\alice": "Passw0rd!"}
OK = SecStatus.SEC_E_OK
TOKEN, DATA, PADDING = 2, 1, 9


class Pair:
    """An established client/server context pair of one package."""

    def __init__(self, package: str = "NTLM", profile: str = "documented") -> None:
        self.client = Sspi(accounts=ACCOUNTS, profile=profile)
        self.server = Sspi(accounts=ACCOUNTS, profile=profile)
        identity = AuthIdentity(user="alice", domain="CONTOSO", password="Passw0rd!")
        self.ccred = self.client.acquire_credentials_handle(
            package, CredentialUse.OUTBOUND, identity
        ).credential
        self.scred = self.server.acquire_credentials_handle(
            package, CredentialUse.INBOUND
        ).credential
        leg1 = self.client.initialize_security_context(self.ccred, None, "host/srv")
        self.c: SecHandle = leg1.new_context  # type: ignore[assignment]
        self.partial_client = self.c
        acc1 = self.server.accept_security_context(self.scred, None, leg1.output_token)
        self.s: SecHandle = acc1.new_context  # type: ignore[assignment]
        self.partial_server_token = acc1.output_token

    def establish(self) -> Pair:
        leg2 = self.client.initialize_security_context(
            self.ccred, self.c, None, 0, self.partial_server_token
        )
        acc2 = self.server.accept_security_context(self.scred, self.s, leg2.output_token)
        assert (leg2.status, acc2.status) == (OK, OK)
        return self


def established(package: str = "NTLM", profile: str = "documented") -> Pair:
    return Pair(package, profile).establish()


def sealed(pair: Pair, data: bytes, qop: int = 0) -> tuple[SecBuffer, ...]:
    result = pair.client.encrypt_message(
        pair.c, qop, [SecBuffer(TOKEN, size=16), SecBuffer(DATA, data)]
    )
    assert result.status == OK
    return result.buffers


def signed(sspi: Sspi, handle: SecHandle, data: bytes) -> tuple[SecBuffer, ...]:
    result = sspi.make_signature(handle, 0, [SecBuffer(DATA, data), SecBuffer(TOKEN, size=16)])
    assert result.status == OK
    return result.buffers


PACKAGES = pytest.mark.parametrize("package", ["NTLM", "Negotiate"])


@pytest.mark.rule("MSG-001", "MSG-006", "MSG-007", "MSG-009", "MSG-012")
@PACKAGES
def test_encrypt_then_decrypt_round_trips_in_both_directions(package: str) -> None:
    pair = established(package)
    buffers = sealed(pair, b"ping from client")
    assert buffers[1].data != b"ping from client"  # sealed in place
    assert len(buffers[0].data) == 16  # the NTLMSSP_MESSAGE_SIGNATURE
    opened = pair.server.decrypt_message(pair.s, buffers)
    assert (opened.status, opened.data, opened.qop) == (OK, b"ping from client", 0)
    assert pair.server.last_rules == ("MSG-001", "MSG-007")
    reply = pair.server.encrypt_message(
        pair.s,
        0,
        [SecBuffer(TOKEN, size=16), SecBuffer(DATA, b"pong"), SecBuffer(PADDING, size=16)],
    )
    assert reply.buffers[2].cb == 0  # NTLM writes no padding
    assert pair.client.decrypt_message(pair.c, reply.buffers).data == b"pong"


@pytest.mark.rule("MSG-006", "MSG-007")
@PACKAGES
def test_signatures_verify_and_a_changed_byte_is_message_altered(package: str) -> None:
    pair = established(package)
    buffers = signed(pair.client, pair.c, b"hello")
    changed = (SecBuffer(DATA, b"hellp"), buffers[1])
    assert pair.server.verify_signature(pair.s, changed).status == SecStatus.SEC_E_MESSAGE_ALTERED
    assert pair.server.last_rules == ("MSG-001", "MSG-006")
    verified = pair.server.verify_signature(pair.s, buffers)
    assert (verified.status, verified.qop) == (OK, 0)


@pytest.mark.rule("MSG-006")
def test_a_changed_signature_byte_or_sealed_byte_is_message_altered() -> None:
    pair = established()
    token, data = sealed(pair, b"secret")
    bad_data = (token, SecBuffer(DATA, bytes([data.data[0] ^ 1]) + data.data[1:]))
    assert pair.server.decrypt_message(pair.s, bad_data).status == SecStatus.SEC_E_MESSAGE_ALTERED
    sig = token.data
    bad_token = (SecBuffer(TOKEN, sig[:5] + bytes([sig[5] ^ 1]) + sig[6:]), data)
    assert pair.server.decrypt_message(pair.s, bad_token).status == SecStatus.SEC_E_MESSAGE_ALTERED
    assert pair.server.decrypt_message(pair.s, (token, data)).data == b"secret"


@pytest.mark.rule("MSG-006")
def test_a_message_sealed_by_another_context_fails() -> None:
    one, other = established(), established()
    buffers = sealed(other, b"for someone else")
    assert one.server.decrypt_message(one.s, buffers).status == SecStatus.SEC_E_MESSAGE_ALTERED
    assert one.server.lifecycle_state(one.s) is CtxState.ESTABLISHED


@pytest.mark.rule("MSG-008", "MSG-010")
def test_a_replay_and_a_reorder_are_out_of_sequence_and_change_nothing() -> None:
    pair = established()
    first, second = sealed(pair, b"one"), sealed(pair, b"two")
    out_of_order = pair.server.decrypt_message(pair.s, second)
    assert out_of_order.status == SecStatus.SEC_E_OUT_OF_SEQUENCE
    assert pair.server.last_rules == ("MSG-001", "MSG-008")
    assert pair.server.decrypt_message(pair.s, first).data == b"one"  # still expected
    assert pair.server.decrypt_message(pair.s, first).status == SecStatus.SEC_E_OUT_OF_SEQUENCE
    assert pair.server.decrypt_message(pair.s, second).data == b"two"


@pytest.mark.rule("MSG-007")
def test_signing_and_sealing_share_one_counter_per_direction() -> None:
    pair = established()
    signature = signed(pair.client, pair.c, b"a")  # client seq 0
    message = sealed(pair, b"b")  # client seq 1
    server_signature = signed(pair.server, pair.s, b"c")  # server seq 0: its own direction
    assert pair.client.verify_signature(pair.c, server_signature).status == OK
    assert pair.server.decrypt_message(pair.s, message).status == SecStatus.SEC_E_OUT_OF_SEQUENCE
    assert pair.server.verify_signature(pair.s, signature).status == OK
    assert pair.server.decrypt_message(pair.s, message).data == b"b"


@pytest.mark.rule("MSG-012")
def test_readonly_data_is_signed_not_sealed_and_wrap_no_encrypt_reports_its_qop() -> None:
    pair = established()
    header = SecBuffer(DATA | SECBUFFER_READONLY, b"header")
    result = pair.client.encrypt_message(
        pair.c, 0, [SecBuffer(TOKEN, size=16), header, SecBuffer(DATA, b"body")]
    )
    assert result.buffers[1].data == b"header" and result.buffers[2].data != b"body"
    tampered = (
        result.buffers[0],
        SecBuffer(DATA | SECBUFFER_READONLY, b"HEADER"),
        result.buffers[2],
    )
    assert pair.server.decrypt_message(pair.s, tampered).status == SecStatus.SEC_E_MESSAGE_ALTERED
    assert pair.server.decrypt_message(pair.s, result.buffers).data == b"headerbody"
    wrapped = sealed(pair, b"clear", SECQOP_WRAP_NO_ENCRYPT)
    assert wrapped[1].data == b"clear"
    opened = pair.server.decrypt_message(pair.s, wrapped)
    assert (opened.status, opened.qop) == (OK, SECQOP_WRAP_NO_ENCRYPT)


@pytest.mark.rule("MSG-011")
@pytest.mark.parametrize(
    ("call", "buffers", "status"),
    [
        ("make_signature", [SecBuffer(DATA, b"x")], SecStatus.SEC_E_INVALID_TOKEN),
        (
            "make_signature",
            [SecBuffer(DATA, b"x"), SecBuffer(TOKEN, size=8)],
            SecStatus.SEC_E_INVALID_TOKEN,
        ),
        (
            "verify_signature",
            [SecBuffer(DATA, b"x"), SecBuffer(TOKEN, b"short")],
            SecStatus.SEC_E_INVALID_TOKEN,
        ),
        ("encrypt_message", [SecBuffer(TOKEN, size=16)], SecStatus.SEC_E_INVALID_TOKEN),
        ("encrypt_message", [SecBuffer(DATA, b"x")], SecStatus.SEC_E_INVALID_TOKEN),
        (
            "encrypt_message",
            [SecBuffer(TOKEN, size=15), SecBuffer(DATA, b"x")],
            SecStatus.SEC_E_BUFFER_TOO_SMALL,
        ),
        ("decrypt_message", [SecBuffer(DATA, b"x")], SecStatus.SEC_E_INVALID_TOKEN),
        ("decrypt_message", [SecBuffer(TOKEN, bytes(16))], SecStatus.SEC_E_INVALID_TOKEN),
        ("decrypt_message", None, SecStatus.SEC_E_INVALID_TOKEN),
    ],
)
def test_wrong_descriptor_shapes(call: str, buffers: Any, status: SecStatus) -> None:
    pair = established()
    method = getattr(pair.client, call)
    result = (
        method(pair.c, 0, buffers)
        if call in ("make_signature", "encrypt_message")
        else method(pair.c, buffers)
    )
    assert result.status == status
    assert "MSG-011" in pair.client.last_rules
    assert pair.client.lifecycle_state(pair.c) is CtxState.ESTABLISHED
    assert pair.server.decrypt_message(pair.s, sealed(pair, b"still seq 0")).status == OK


@pytest.mark.rule("MSG-013")
def test_unsupported_qop() -> None:
    pair = established()
    buffers = [SecBuffer(DATA, b"x"), SecBuffer(TOKEN, size=16)]
    assert (
        pair.client.make_signature(pair.c, 1, buffers).status == SecStatus.SEC_E_QOP_NOT_SUPPORTED
    )
    assert (
        pair.client.encrypt_message(pair.c, 0x40000000, buffers).status
        == SecStatus.SEC_E_QOP_NOT_SUPPORTED
    )


@pytest.mark.rule("MSG-014")
def test_message_seq_no_is_checked_as_a_ulong_and_unused() -> None:
    pair = established()
    result = pair.client.encrypt_message(
        pair.c, 0, [SecBuffer(TOKEN, size=16), SecBuffer(DATA, b"x")], seq_no=41
    )
    assert pair.server.decrypt_message(pair.s, result.buffers, seq_no=7).data == b"x"
    with pytest.raises(ValueError):
        pair.client.encrypt_message(pair.c, 0, result.buffers, seq_no=-1)
    with pytest.raises(TypeError):
        pair.client.encrypt_message(pair.c, 0, "not buffers")  # type: ignore[arg-type]


@pytest.mark.rule("MSG-002", "MSG-004")
@pytest.mark.parametrize(
    ("profile", "status"),
    [
        ("documented", SecStatus.SEC_E_INVALID_HANDLE),
        ("messages-2025", SecStatus.SEC_E_OUT_OF_SEQUENCE),
    ],
)
def test_a_partial_context_protects_nothing(profile: str, status: SecStatus) -> None:
    pair = Pair(profile=profile)
    buffers = [SecBuffer(TOKEN, size=16), SecBuffer(DATA, b"x")]
    assert pair.client.encrypt_message(pair.c, 0, buffers).status == status
    assert pair.client.last_rules == ("MSG-002",)
    assert pair.server.make_signature(pair.s, 0, buffers).status == status
    assert pair.client.lifecycle_state(pair.c) is CtxState.PARTIAL


@pytest.mark.rule("MSG-005")
def test_a_deleted_a_foreign_and_a_null_handle_are_invalid() -> None:
    pair = established()
    buffers = sealed(pair, b"x")
    assert pair.client.decrypt_message(pair.s, buffers).status == SecStatus.SEC_E_INVALID_HANDLE
    assert pair.client.last_rules == ("MSG-005", "HDL-004")
    assert pair.server.decrypt_message(None, buffers).status == SecStatus.SEC_E_INVALID_HANDLE
    assert pair.server.delete_security_context(pair.s) == OK
    assert pair.server.decrypt_message(pair.s, buffers).status == SecStatus.SEC_E_INVALID_HANDLE
    assert pair.server.last_rules == ("MSG-005", "HDL-003")


@pytest.mark.rule("MSG-003", "MSG-001")
def test_a_failed_context_is_expired_for_messages() -> None:
    pair = Pair()
    # A wrong password: the server's last leg fails the context.
    client = Sspi(accounts=ACCOUNTS)
    cred = client.acquire_credentials_handle(
        "NTLM", CredentialUse.OUTBOUND, AuthIdentity("alice", "wrong", "CONTOSO")
    ).credential
    leg1 = client.initialize_security_context(cred, None, "host/srv")
    acc1 = pair.server.accept_security_context(pair.scred, None, leg1.output_token)
    leg2 = client.initialize_security_context(cred, leg1.new_context, None, 0, acc1.output_token)
    acc2 = pair.server.accept_security_context(pair.scred, acc1.new_context, leg2.output_token)
    assert acc2.status == SecStatus.SEC_E_LOGON_DENIED
    buffers = [SecBuffer(TOKEN, size=16), SecBuffer(DATA, b"x")]
    assert (
        pair.server.encrypt_message(acc1.new_context, 0, buffers).status
        == SecStatus.SEC_E_CONTEXT_EXPIRED
    )
    assert pair.server.last_rules == ("MSG-003",)


@pytest.mark.rule("SHD-010")
@PACKAGES
def test_apply_control_token_is_schannel_only(package: str) -> None:
    pair = established(package)
    result = pair.client.apply_control_token(pair.c, (1).to_bytes(4, "little"))
    assert result.status == SecStatus.SEC_E_UNSUPPORTED_FUNCTION
    assert pair.client.last_rules == ("SHD-008", "SHD-010")
    assert pair.client.lifecycle_state(pair.c) is CtxState.ESTABLISHED


@pytest.mark.rule("MSG-001", "MSG-008")
def test_the_readme_message_example_runs_after_the_tour() -> None:
    import re
    from pathlib import Path

    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text(encoding="utf-8")
    blocks = re.findall(r"```python\n(.*?)```", readme, re.S)
    (example,) = [block for block in blocks if "encrypt_message" in block]
    namespace: dict[str, object] = {}
    exec(compile(blocks[0], "README tour", "exec"), namespace)
    exec(compile(example, "README message example", "exec"), namespace)


# -- bad input never raises from inside the model ----------------------------------------------

_TYPES = st.sampled_from([0, 1, 2, 3, 4, 5, 6, 7, 9, 10, 17, 18, 0x80000001, 0x10000002])
_BUFFERS = st.lists(
    st.builds(
        SecBuffer,
        _TYPES,
        st.binary(max_size=64),
        st.none() | st.integers(0, 64),
    ),
    max_size=5,
)


@pytest.mark.rule("MSG-011", "MSG-031", "SHD-009", "BUF-008")
@settings(deadline=None)
@given(
    package=st.sampled_from(["NTLM", "Negotiate", "Schannel"]),
    call=st.sampled_from(
        ["make_signature", "verify_signature", "encrypt_message", "decrypt_message", "apply"]
    ),
    buffers=st.none() | _BUFFERS,
    qop=st.sampled_from([0, 1, 0x80000001, 0x40000000]),
)
def test_any_descriptor_gets_a_documented_status(
    package: str, call: str, buffers: Any, qop: int
) -> None:
    if package == "Schannel":
        tls = Tls()
        sspi, handle = tls.client, tls.c
    else:
        pair = established(package)
        sspi, handle = pair.client, pair.c
    def make_call() -> Any:
        if call == "apply":
            return sspi.apply_control_token(handle, buffers)
        method = getattr(sspi, call)
        with_qop = call in ("make_signature", "encrypt_message")
        return method(handle, qop, buffers) if with_qop else method(handle, buffers)

    codes = CALL_CODES[Call.APPLY_CONTROL_TOKEN if call == "apply" else Call.MAKE_SIGNATURE]
    try:
        result = make_call()
    except SspiMisuse as misuse:  # a buffer it reads claims more than it holds (BUF-008)
        assert misuse.rule == "BUF-008"
        assert any(b.size is not None and b.size > len(b.data) for b in buffers or ())
        sspi.strict = False  # the kernel goes on: still a documented status, never a crash
        result = make_call()
        assert sspi.misuse_events[-1].rule == "BUF-008"
    assert result.status in codes, (result, sspi.last_rules)
    assert sspi.last_rules
