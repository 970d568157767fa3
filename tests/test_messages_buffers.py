"""The buffer-level API of ISC/ASC: a NULL output descriptor, caller descriptors written in
place (BUF-005, BUF-006)."""

from __future__ import annotations

import pytest

from sspi_model import NULL_DESCRIPTOR, AuthIdentity, CredentialUse, SecBuffer, SecStatus, Sspi
from sspi_model.lifecycle import CtxState
from sspi_model.packages.schannel import SchannelCred

ACCOUNTS = {"CONTOSO\\alice": "Passw0rd!"}
EMPTY, TOKEN, ALERT = 0, 2, 17
ALLOCATE = 0x100


def ntlm() -> tuple[Sspi, object]:
    sspi = Sspi(accounts=ACCOUNTS)
    identity = AuthIdentity("alice", "Passw0rd!", "CONTOSO")
    return sspi, sspi.acquire_credentials_handle(
        "NTLM", CredentialUse.OUTBOUND, identity
    ).credential


@pytest.mark.rule("BUF-005", "LIF-005")
@pytest.mark.parametrize("context_req", [0, ALLOCATE])
def test_a_null_output_descriptor_cannot_take_a_token(context_req: int) -> None:
    sspi, cred = ntlm()
    result = sspi.initialize_security_context(
        cred,
        None,
        "host/srv",
        context_req,
        output=NULL_DESCRIPTOR,  # type: ignore[arg-type]
    )
    assert (result.status, result.new_context) == (SecStatus.SEC_E_BUFFER_TOO_SMALL, None)
    assert sspi.last_rules == ("BUF-005", "LIF-005")
    assert not sspi.statistics().contexts
    assert repr(NULL_DESCRIPTOR) == "NULL_DESCRIPTOR"


@pytest.mark.rule("BUF-006", "BUF-001")
def test_the_callers_descriptor_comes_back_written() -> None:
    sspi, cred = ntlm()
    given = [SecBuffer(EMPTY), SecBuffer(TOKEN, size=2888), SecBuffer(ALERT, size=2)]
    result = sspi.initialize_security_context(cred, None, "host/srv", 0, output=given)
    assert [b.base_type for b in result.output] == [EMPTY, TOKEN, ALERT]
    assert result.output[1].data.startswith(b"NTLMSSP\0") and result.output[2] == given[2]
    # With ALLOCATE_MEMORY and only an EMPTY buffer (curl), the EMPTY buffer becomes the TOKEN.
    allocated = sspi.initialize_security_context(
        cred, None, "host/srv", ALLOCATE, output=[SecBuffer(EMPTY)]
    )
    (token,) = allocated.output
    assert token.base_type == TOKEN and token.allocation is not None
    assert sspi.free_context_buffer(token.allocation) == SecStatus.SEC_E_OK


@pytest.mark.rule("BUF-006", "SCH-010")
def test_an_alert_lands_in_the_callers_alert_buffer_or_nowhere() -> None:
    sspi = Sspi()
    cred = sspi.acquire_credentials_handle("Schannel", 2, SchannelCred()).credential
    hello = sspi.initialize_security_context(cred, None, "srv", 0)
    with_alert = sspi.initialize_security_context(
        cred,
        hello.new_context,
        "srv",
        0,
        b"garbage!",
        output=[SecBuffer(TOKEN, size=100), SecBuffer(ALERT, size=16)],
    )
    assert with_alert.status == SecStatus.SEC_E_INVALID_TOKEN
    assert with_alert.output[1].base_type == ALERT and with_alert.output[1].data
    assert sspi.lifecycle_state(hello.new_context) is CtxState.FAILED
    other = sspi.initialize_security_context(cred, None, "srv", 0)
    without = sspi.initialize_security_context(
        cred, other.new_context, "srv", 0, b"garbage!", output=[SecBuffer(TOKEN, size=100)]
    )
    assert [b.base_type for b in without.output] == [TOKEN]


# -- a buffer that claims more than it holds (BUF-008) -----------------------------------------


def _established_ntlm(strict: bool = True) -> tuple[Sspi, object, Sspi, object]:
    from test_messages import established

    pair = established("NTLM")
    pair.client.strict = pair.server.strict = strict
    return pair.client, pair.c, pair.server, pair.s


DATA = 1


@pytest.mark.rule("BUF-008")
@pytest.mark.parametrize(
    ("call", "buffers"),
    [
        ("make_signature", [SecBuffer(DATA, b"abc", size=64), SecBuffer(TOKEN, size=16)]),
        ("encrypt_message", [SecBuffer(TOKEN, size=16), SecBuffer(DATA, size=8)]),  # NULL, 8
        ("verify_signature", [SecBuffer(DATA, b"abc"), SecBuffer(TOKEN, bytes(4), size=16)]),
        ("decrypt_message", [SecBuffer(TOKEN, bytes(16)), SecBuffer(DATA, b"x", size=2)]),
        ("apply_control_token", [SecBuffer(TOKEN, b"\x01", size=4)]),
    ],
)
def test_a_read_buffer_larger_than_its_bytes_is_misuse(call: str, buffers: list[SecBuffer]) -> None:
    from sspi_model import SspiMisuse

    client, context, _server, _ = _established_ntlm()
    with_qop = call in ("make_signature", "encrypt_message")
    method = getattr(client, call)
    with pytest.raises(SspiMisuse) as raised:
        method(context, 0, buffers) if with_qop else method(context, buffers)
    assert raised.value.rule == "BUF-008"
    assert client.lifecycle_state(context) is CtxState.ESTABLISHED  # nothing happened
    client.strict = False  # the kernel has no check: the package gets the descriptor
    result = method(context, 0, buffers) if with_qop else method(context, buffers)
    assert isinstance(result.status, SecStatus)
    assert client.misuse_events[-1].rule == "BUF-008"


@pytest.mark.rule("BUF-008")
def test_output_capacities_are_not_misuse() -> None:
    client, context, server, peer = _established_ntlm()
    signed = client.make_signature(context, 0, [SecBuffer(DATA, b"abc"), SecBuffer(TOKEN, size=16)])
    assert signed.status == SecStatus.SEC_E_OK
    assert server.verify_signature(peer, list(signed.buffers)).status == SecStatus.SEC_E_OK
    assert not client.misuse_events


@pytest.mark.rule("BUF-008", "BUF-007")
def test_a_traced_overrun_replays_as_the_same_misuse() -> None:
    from test_trace_messages import ntlm_pair

    from sspi_model import SspiMisuse
    from sspi_model.trace import Recorder, validate

    recorder = Recorder()
    client, context, _server, _ = ntlm_pair(recorder)
    with pytest.raises(SspiMisuse):
        client.make_signature(context, 0, [SecBuffer(DATA, size=5), SecBuffer(TOKEN, size=16)])
    trace = recorder.trace()
    misuse = trace[-1]
    assert (misuse["event"], misuse["rule"], misuse["call"]) == (
        "misuse",
        "BUF-008",
        "MakeSignature",
    )
    assert misuse["args"]["message"][0] == {"type": "SECBUFFER_DATA", "data": "", "size": 5}
    assert validate(trace).ok


@pytest.mark.rule("BUF-008")
def test_a_leg_input_larger_than_its_bytes_is_misuse_and_bytes_are_not_checked() -> None:
    from sspi_model import SspiMisuse

    sspi = Sspi(accounts={"CONTOSO\\alice": "Passw0rd!"})
    alice = AuthIdentity("alice", "Passw0rd!", "CONTOSO")
    client = sspi.acquire_credentials_handle("NTLM", 2, alice).credential
    server = sspi.acquire_credentials_handle("NTLM", 1, alice).credential
    token = sspi.initialize_security_context(client, None, "host/x", 0x800).output_token
    claims_more = [SecBuffer(TOKEN, token, size=len(token) + 10)]
    with pytest.raises(SspiMisuse) as raised:
        sspi.accept_security_context(server, None, claims_more, 0x800)
    assert raised.value.rule == "BUF-008"
    # A written buffer's capacity (EMPTY, where Schannel puts EXTRA) is no claim; bytes are one
    # TOKEN of exactly their size, so the fast path never walks them.
    spare = [SecBuffer(TOKEN, token), SecBuffer(0, size=64)]
    assert sspi.accept_security_context(server, None, spare, 0x800).status == 0x00090312
    assert sspi.accept_security_context(server, None, token, 0x800).status == 0x00090312
    sspi.strict = False  # the kernel has no check: the package gets the input as it is
    assert sspi.accept_security_context(server, None, claims_more, 0x800).status == 0x00090312
    assert sspi.misuse_events[-1].rule == "BUF-008"
