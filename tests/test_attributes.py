"""QueryContextAttributes for the attributes real clients query (ATT rules), and ALPN."""

from __future__ import annotations

import pytest
from test_messages import Pair, established

from sspi_model import (
    ApplicationProtocol,
    CipherStrengths,
    ConnectionInfo,
    ContextBindings,
    ContextFlags,
    ContextKeyInfo,
    ContextNativeNames,
    ContextNegotiationInfo,
    ContextSessionKey,
    CredentialNames,
    SecStatus,
    SessionInfo,
    Sspi,
    SupportedAlgs,
    SupportedProtocols,
    application_protocols,
)
from sspi_model.buffers import SecBuffer
from sspi_model.constants import (
    SECPKG_ATTR_APPLICATION_PROTOCOL,
    SECPKG_ATTR_CONNECTION_INFO,
    SECPKG_ATTR_ENDPOINT_BINDINGS,
    SECPKG_ATTR_FLAGS,
    SECPKG_ATTR_KEY_INFO,
    SECPKG_ATTR_NATIVE_NAMES,
    SECPKG_ATTR_NEGOTIATION_INFO,
    SECPKG_ATTR_PACKAGE_INFO,
    SECPKG_ATTR_SESSION_INFO,
    SECPKG_ATTR_SESSION_KEY,
    SECPKG_ATTR_STREAM_SIZES,
    SECPKG_ATTR_UNIQUE_BINDINGS,
    SECPKG_NEGOTIATION_COMPLETE,
    SECPKG_NEGOTIATION_IN_PROGRESS,
    SP_PROT_TLS1_2_SERVER,
    SP_PROT_TLS1_3_CLIENT,
)
from sspi_model.packages.schannel import Certificate, SchannelCred

OK = SecStatus.SEC_E_OK
UNSUPPORTED = SecStatus.SEC_E_UNSUPPORTED_FUNCTION


@pytest.mark.rule("ATT-001", "ATT-002", "QCA-002", "QCA-005")
def test_negotiation_info_on_a_partial_and_a_complete_negotiate_context() -> None:
    pair = Pair("Negotiate")
    partial = pair.client.query_context_attributes(pair.c, SECPKG_ATTR_NEGOTIATION_INFO)
    assert isinstance(partial.buffer, ContextNegotiationInfo)
    assert partial.buffer.package_info.name == "NTLM"
    assert partial.buffer.negotiation_state == SECPKG_NEGOTIATION_IN_PROGRESS
    names = pair.client.query_context_attributes(pair.c, SECPKG_ATTR_NATIVE_NAMES)
    assert names.status == SecStatus.SEC_E_INVALID_HANDLE  # QCA-002: not before completion
    pair.establish()
    done = pair.server.query_context_attributes(pair.s, SECPKG_ATTR_NEGOTIATION_INFO).buffer
    assert isinstance(done, ContextNegotiationInfo)
    assert done.negotiation_state == SECPKG_NEGOTIATION_COMPLETE
    info = pair.client.query_context_attributes(pair.c, SECPKG_ATTR_PACKAGE_INFO).buffer
    assert info.package_info.name == "Negotiate"  # type: ignore[union-attr]  # ATT-002


@pytest.mark.rule("ATT-003", "ATT-004")
def test_flags_and_native_names() -> None:
    pair = established()
    flags = pair.client.query_context_attributes(pair.c, SECPKG_ATTR_FLAGS).buffer
    assert isinstance(flags, ContextFlags)
    names = pair.client.query_context_attributes(pair.c, SECPKG_ATTR_NATIVE_NAMES).buffer
    assert isinstance(names, ContextNativeNames)
    assert (names.client_name, names.server_name) == ("CONTOSO\\alice", "host/srv")
    server = pair.server.query_context_attributes(pair.s, SECPKG_ATTR_NATIVE_NAMES).buffer
    assert isinstance(server, ContextNativeNames) and server.client_name == "CONTOSO\\alice"


@pytest.mark.rule("ATT-005", "ATT-006", "ATT-007")
@pytest.mark.parametrize("package", ["NTLM", "Negotiate"])
def test_key_info_and_the_session_key_are_shared_and_freed(package: str) -> None:
    pair, other = established(package), established(package)
    before = pair.client.statistics().context_buffers
    key_info = pair.client.query_context_attributes(pair.c, SECPKG_ATTR_KEY_INFO).buffer
    assert isinstance(key_info, ContextKeyInfo) and key_info.key_size == 128
    client_key = pair.client.query_context_attributes(pair.c, SECPKG_ATTR_SESSION_KEY).buffer
    server_key = pair.server.query_context_attributes(pair.s, SECPKG_ATTR_SESSION_KEY).buffer
    other_key = other.client.query_context_attributes(other.c, SECPKG_ATTR_SESSION_KEY).buffer
    assert isinstance(client_key, ContextSessionKey) and isinstance(server_key, ContextSessionKey)
    assert client_key.session_key == server_key.session_key != other_key.session_key  # type: ignore[union-attr]
    assert pair.client.statistics().context_buffers == before + 3
    for allocation in (
        key_info.signature_name_allocation,
        key_info.encrypt_name_allocation,
        client_key.allocation,
    ):
        assert pair.client.free_context_buffer(allocation) == OK
    assert pair.client.statistics().context_buffers == before


@pytest.mark.rule("QCA-004", "ATT-004", "ATT-013")
def test_each_package_answers_its_own_attributes() -> None:
    pair = established()
    for attribute in (
        SECPKG_ATTR_STREAM_SIZES,
        SECPKG_ATTR_ENDPOINT_BINDINGS,
        SECPKG_ATTR_APPLICATION_PROTOCOL,
        SECPKG_ATTR_SESSION_INFO,
        SECPKG_ATTR_CONNECTION_INFO,
    ):
        assert pair.client.query_context_attributes(pair.c, attribute).status == UNSUPPORTED
        assert pair.client.last_rules == ("QCA-004",)
    tls = Tls()
    result = tls.client.query_context_attributes(tls.c, SECPKG_ATTR_NATIVE_NAMES)
    assert result.status == UNSUPPORTED


class Tls:
    """A Schannel handshake with optional ALPN lists on the first legs."""

    def __init__(
        self,
        offer: tuple[str, ...] = (),
        server: tuple[str, ...] | None = None,
        protocols: str = "tls1.3",
    ) -> None:
        self.client, self.server = Sspi(), Sspi()
        cred = self.client.acquire_credentials_handle(
            "Schannel", 2, SchannelCred(protocols=protocols)
        ).credential
        scred = self.server.acquire_credentials_handle(
            "Schannel", 1, SchannelCred(Certificate("CN=srv"), protocols)
        ).credential
        first = [application_protocols(*offer)] if offer else None
        leg = self.client.initialize_security_context(cred, None, "srv", 0x8000, first)
        self.c = leg.new_context
        server_input = [SecBuffer(2, leg.output_token), SecBuffer(0)]
        if server is not None:
            server_input.append(application_protocols(*server))
        self.accepted = self.server.accept_security_context(scred, None, server_input, 0x10000)
        self.s = self.accepted.new_context
        if self.s is None:
            return
        acc = self.accepted
        while True:
            leg = self.client.initialize_security_context(
                None, self.c, "srv", 0x8000, acc.output_token
            )
            if leg.output_token:
                acc = self.server.accept_security_context(None, self.s, leg.output_token, 0x10000)
            if leg.status == OK and acc.status == OK:
                break


@pytest.mark.rule("ATT-010")
@pytest.mark.parametrize("protocols", ["tls1.2", "tls1.3"])
def test_alpn_picks_the_servers_preference_and_both_sides_report_it(protocols: str) -> None:
    tls = Tls(("h2", "http/1.1"), ("http/1.1", "h2"), protocols)
    for sspi, handle in ((tls.client, tls.c), (tls.server, tls.s)):
        result = sspi.query_context_attributes(handle, SECPKG_ATTR_APPLICATION_PROTOCOL)
        assert result.buffer == ApplicationProtocol(1, 2, b"http/1.1")
    assert tls.client.statistics().context_buffers == 0  # flat: nothing to free (ATT-007)


@pytest.mark.rule("ATT-010")
def test_alpn_none_and_mismatch() -> None:
    tls = Tls(("h2",), None)
    result = tls.client.query_context_attributes(tls.c, SECPKG_ATTR_APPLICATION_PROTOCOL)
    assert result.buffer == ApplicationProtocol(0, 0, b"")
    mismatch = Tls(("h2",), ("http/1.1",))
    assert mismatch.accepted.status == SecStatus.SEC_E_APPLICATION_PROTOCOL_MISMATCH
    assert mismatch.accepted.new_context is None
    assert mismatch.accepted.output[-1].data[-1] == 120  # the no_application_protocol alert
    client = Sspi()
    cred = client.acquire_credentials_handle("Schannel", 2, SchannelCred()).credential
    bad = client.initialize_security_context(cred, None, "srv", 0, [SecBuffer(18, b"\x05")])
    assert (bad.status, bad.new_context) == (SecStatus.SEC_E_INVALID_TOKEN, None)
    with pytest.raises(ValueError):
        application_protocols("")


@pytest.mark.rule("ATT-011", "ATT-012", "ATT-013", "ATT-005", "ATT-006")
@pytest.mark.parametrize("protocols", ["tls1.2", "tls1.3"])
def test_schannel_session_connection_and_binding_attributes(protocols: str) -> None:
    tls = Tls(protocols=protocols)

    def both(attribute: int) -> tuple[object, object]:
        return (
            tls.client.query_context_attributes(tls.c, attribute).buffer,
            tls.server.query_context_attributes(tls.s, attribute).buffer,
        )

    client_session, server_session = both(SECPKG_ATTR_SESSION_INFO)
    assert isinstance(client_session, SessionInfo) and client_session == server_session
    assert client_session.flags == 0 and len(client_session.session_id) == 32
    client_info, server_info = both(SECPKG_ATTR_CONNECTION_INFO)
    assert isinstance(client_info, ConnectionInfo) and isinstance(server_info, ConnectionInfo)
    if protocols == "tls1.3":
        assert client_info.protocol == SP_PROT_TLS1_3_CLIENT
    else:
        assert server_info.protocol == SP_PROT_TLS1_2_SERVER
    for attribute in (SECPKG_ATTR_ENDPOINT_BINDINGS, SECPKG_ATTR_UNIQUE_BINDINGS):
        client_bindings, server_bindings = both(attribute)
        assert isinstance(client_bindings, ContextBindings)
        assert client_bindings.application_data == server_bindings.application_data  # type: ignore[union-attr]
    client_key, server_key = both(SECPKG_ATTR_SESSION_KEY)
    assert client_key.session_key == server_key.session_key  # type: ignore[union-attr]
    key_info = tls.client.query_context_attributes(tls.c, SECPKG_ATTR_KEY_INFO).buffer
    assert isinstance(key_info, ContextKeyInfo) and key_info.key_size == 256


@pytest.mark.rule("ATT-020", "ATT-021", "ATT-022", "ATT-023", "ATT-007")
def test_query_credentials_attributes() -> None:
    pair = Pair()
    names = pair.client.query_credentials_attributes(pair.ccred, 1)
    assert isinstance(names.buffer, CredentialNames)
    assert names.buffer.user_name == "CONTOSO\\alice"
    assert pair.client.free_context_buffer(names.buffer.allocation) == OK
    assert pair.client.query_credentials_attributes(pair.ccred, 0x58).status == UNSUPPORTED
    assert pair.client.last_rules == ("ATT-020", "ATT-021")
    assert pair.client.query_credentials_attributes(pair.ccred, 0xDEAD).status == UNSUPPORTED
    assert pair.client.last_rules == ("ATT-021",)
    assert pair.client.query_credentials_attributes(pair.scred, 1).status == (
        SecStatus.SEC_E_INVALID_HANDLE  # another process's handle
    )
    tls = Sspi()
    cred = tls.acquire_credentials_handle(
        "Schannel", 1, SchannelCred(Certificate("CN=srv"), "tls1.3")
    )
    handle = cred.credential
    protocols = tls.query_credentials_attributes(handle, 0x58).buffer
    assert protocols == SupportedProtocols(0x400 | 0x1000)
    assert tls.query_credentials_attributes(handle, 0x57).buffer == CipherStrengths(128, 256)
    algs = tls.query_credentials_attributes(handle, 0x56).buffer
    assert isinstance(algs, SupportedAlgs) and algs.algorithms
    subject = tls.query_credentials_attributes(handle, 1).buffer
    assert isinstance(subject, CredentialNames) and subject.user_name == "CN=srv"
    assert tls.statistics().context_buffers == 2
