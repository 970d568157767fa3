"""The message functions on sspi-rs (NativeBackend) beside the model (ModelBackend), NTLM.

What sspi-rs answers where the model follows the pages is pinned here, each difference with
the rule it departs from; the differential machine exercises them on established pairs too
(CLI-018), with the same differences in specs/divergences/sspi-rs.toml.
"""

from __future__ import annotations

from typing import Any

import pytest

from sspi_model import AuthIdentity, SecBuffer, SecStatus
from sspi_model.backends.base import MESSAGE_CALLS
from sspi_model.backends.model import ModelBackend
from sspi_model.backends.native import NativeBackend

OUTBOUND, INBOUND = 2, 1
ISC_REQ = 0x1091C
ASC_REQ = 0x2081C
ALICE = AuthIdentity("alice", "Passw0rd!", "DOMAIN")
OK = SecStatus.SEC_E_OK
TOKEN, DATA = 2, 1


def _pair(backend: Any) -> tuple[Any, Any, Any]:
    """(partial client context, established client context, established server context)."""
    client = backend.acquire_credentials_handle("NTLM", OUTBOUND, ALICE).credential
    server = backend.acquire_credentials_handle("NTLM", INBOUND, ALICE).credential
    isc1 = backend.initialize_security_context(client, None, "host/server", ISC_REQ)
    partial = backend.encrypt_message(isc1.new_context, 0, _message(b"x")).status
    asc1 = backend.accept_security_context(server, None, isc1.output_token, ASC_REQ)
    isc2 = backend.initialize_security_context(
        client, isc1.new_context, "host/server", ISC_REQ, asc1.output_token
    )
    asc2 = backend.accept_security_context(server, asc1.new_context, isc2.output_token, ASC_REQ)
    if asc2.status == SecStatus.SEC_I_COMPLETE_NEEDED:  # sspi-rs decides in CompleteAuthToken
        assert backend.complete_auth_token(asc1.new_context, b"") == OK
    return partial, isc1.new_context, asc1.new_context


def _message(data: bytes) -> list[SecBuffer]:
    return [SecBuffer(TOKEN, size=16), SecBuffer(DATA, data)]


@pytest.fixture
def model() -> ModelBackend:
    return ModelBackend(accounts={"DOMAIN\\alice": ALICE.password})


@pytest.mark.rule("MSG-001", "MSG-006", "MSG-004", "MSG-002")
def test_round_trip_and_tamper_agree(backend: NativeBackend, model: ModelBackend) -> None:
    assert set(MESSAGE_CALLS) <= backend.capabilities.calls
    seen = {}
    for name, side in (("sspi-rs", backend), ("model", model)):
        partial, client, server = _pair(side)
        sealed = side.encrypt_message(client, 0, _message(b"hello"))
        opened = side.decrypt_message(server, sealed.buffers)
        again = side.encrypt_message(client, 0, _message(b"hello"))
        flipped = bytes([again.buffers[1].data[0] ^ 1]) + again.buffers[1].data[1:]
        tampered = side.decrypt_message(server, (again.buffers[0], SecBuffer(DATA, flipped)))
        seen[name] = (
            partial,
            sealed.status,
            opened.status,
            opened.buffers[1].data,
            tampered.status,
        )
    assert (
        seen["sspi-rs"][1:]
        == seen["model"][1:]
        == (OK, OK, b"hello", SecStatus.SEC_E_MESSAGE_ALTERED)
    )
    # A partial context: sspi-rs says SEC_E_OUT_OF_SEQUENCE (MSG-004, the messages-2025
    # profile); the documented profile says SEC_E_INVALID_HANDLE (MSG-002).
    assert seen["sspi-rs"][0] == SecStatus.SEC_E_OUT_OF_SEQUENCE
    assert seen["model"][0] == SecStatus.SEC_E_INVALID_HANDLE


@pytest.mark.rule("MSG-008", "MSG-010", "MSG-011", "MSG-013", "MSG-012")
def test_where_sspi_rs_departs_from_the_pages(backend: NativeBackend, model: ModelBackend) -> None:
    """Each line is a divergence the lead may record in specs/divergences/sspi-rs.toml."""
    _partial, client, server = _pair(backend)
    first = backend.encrypt_message(client, 0, _message(b"a"))
    second = backend.encrypt_message(client, 0, _message(b"b"))
    # A reordered message is SEC_E_MESSAGE_ALTERED, not SEC_E_OUT_OF_SEQUENCE (MSG-008), and the
    # in-order one fails afterwards too: a failed DecryptMessage still moves sspi-rs's RC4 state
    # (MS-NLMP 3.4.4: the SeqNum "is not incremented"; MSG-010).
    assert backend.decrypt_message(server, second.buffers).status == SecStatus.SEC_E_MESSAGE_ALTERED
    assert backend.decrypt_message(server, first.buffers).status == SecStatus.SEC_E_MESSAGE_ALTERED
    # EncryptMessage without a DATA buffer succeeds (MSG-011: SEC_E_INVALID_TOKEN) ...
    assert backend.encrypt_message(client, 0, [SecBuffer(TOKEN, size=16)]).status == OK
    # ... a qop of 1 is accepted (MSG-013: SEC_E_QOP_NOT_SUPPORTED) ...
    assert backend.encrypt_message(client, 1, _message(b"x")).status == OK
    # ... SECQOP_WRAP_NO_ENCRYPT still seals (MSG-012) ...
    wrapped = backend.encrypt_message(client, 0x80000001, _message(b"x"))
    assert wrapped.status == OK and wrapped.buffers[1].data != b"x"
    # ... and NTLM MakeSignature is not implemented (MS-NLMP: NTLM signs).
    signature = backend.make_signature(
        client, 0, [SecBuffer(DATA, b"a"), SecBuffer(TOKEN, size=16)]
    )
    assert signature.status == SecStatus.SEC_E_UNSUPPORTED_FUNCTION
    # Where they agree: a too-small trailer and a missing TOKEN.
    for side, (_p, c, _s) in ((backend, (None, client, None)), (model, _pair(model))):
        small = [SecBuffer(TOKEN, size=8), SecBuffer(DATA, b"a")]
        assert side.encrypt_message(c, 0, small).status == SecStatus.SEC_E_BUFFER_TOO_SMALL
        assert side.encrypt_message(c, 0, [SecBuffer(DATA, b"x")]).status == (
            SecStatus.SEC_E_INVALID_TOKEN
        )


@pytest.mark.rule("SHD-010", "ATT-020")
def test_apply_control_token_and_credential_queries_reach_the_library(
    backend: NativeBackend, model: ModelBackend
) -> None:
    """NativeBackend speaks ApplyControlToken and QueryCredentialsAttributesW too: on an NTLM
    context the model answers ApplyControlToken with SEC_E_UNSUPPORTED_FUNCTION, as sspi-rs
    does; SECPKG_CRED_ATTR_NAMES on an NTLM credential the model answers (the user name, package
    memory) where sspi-rs does not export an answer (SEC_E_UNSUPPORTED_FUNCTION)."""
    names = 1  # SECPKG_CRED_ATTR_NAMES
    shutdown = [SecBuffer(TOKEN, (1).to_bytes(4, "little"))]  # SCHANNEL_SHUTDOWN
    seen = {}
    for name, side in (("sspi-rs", backend), ("model", model)):
        _partial, client, _server = _pair(side)
        credential = side.acquire_credentials_handle("NTLM", OUTBOUND, ALICE).credential
        applied = side.apply_control_token(client, shutdown)
        queried = side.query_credentials_attributes(credential, names)
        seen[name] = (applied.status, queried.status)
        if queried.buffer is not None:
            assert queried.buffer.user_name
            assert side.free_context_buffer(queried.buffer.allocation) == OK
    unsupported = SecStatus.SEC_E_UNSUPPORTED_FUNCTION
    assert seen["model"] == (unsupported, OK)
    assert seen["sspi-rs"] == (unsupported, unsupported)
