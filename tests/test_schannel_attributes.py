"""Schannel's CIPHER_INFO, REMOTE_CERT_CONTEXT and LOCAL_CERT_CONTEXT (ATT-024, ATT-025)."""

from __future__ import annotations

from typing import Any

import pytest

from sspi_model import Certificate, CredentialUse, SchannelCred, SecStatus, Sspi
from sspi_model.constants import SecPkgAttr
from sspi_model.lifecycle import CALL_CODES, Call
from sspi_model.results import CertificateContext, CipherInfo

OK = SecStatus.SEC_E_OK
SERVER = Certificate("CN=srv.contoso.com")
CLIENT = Certificate("CN=alice")
MUTUAL = 0x2


class Tls:
    """An established Schannel pair; `client_certificate` asks for and sends one."""

    def __init__(self, protocols: str = "tls1.2", client_certificate: bool = False) -> None:
        self.client, self.server = Sspi(), Sspi()
        scred = self.server.acquire_credentials_handle(
            "Schannel", CredentialUse.INBOUND, SchannelCred(SERVER, protocols)
        ).credential
        mine = CLIENT if client_certificate else None
        ccred = self.client.acquire_credentials_handle(
            "Schannel", CredentialUse.OUTBOUND, SchannelCred(mine, protocols)
        ).credential
        req = MUTUAL if client_certificate else 0
        self.partial: Any = None
        context: Any = None
        server_context: Any = None
        token: bytes | None = None
        for _ in range(4):
            leg = self.client.initialize_security_context(
                ccred, context, "srv.contoso.com", 0, token
            )
            context = leg.new_context or context
            self.partial = self.partial or context
            if not leg.output_token:
                break
            reply = self.server.accept_security_context(
                scred, server_context, leg.output_token, req
            )
            server_context = reply.new_context or server_context
            token = reply.output_token
            if leg.status == OK or not token:
                break
        self.c, self.s = context, server_context

    def query(self, side: str, attribute: int) -> Any:
        sspi, handle = (self.client, self.c) if side == "client" else (self.server, self.s)
        return sspi.query_context_attributes(handle, attribute)


@pytest.mark.rule("ATT-024")
@pytest.mark.parametrize(
    ("protocols", "suite", "name"),
    [("tls1.2", 0xC030, "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384"),
     ("tls1.3", 0x1302, "TLS_AES_256_GCM_SHA384")],
)  # fmt: skip
def test_cipher_info_names_the_suite_of_the_version(protocols: str, suite: int, name: str) -> None:
    tls = Tls(protocols)
    client = tls.query("client", SecPkgAttr.SECPKG_ATTR_CIPHER_INFO).buffer
    server = tls.query("server", SecPkgAttr.SECPKG_ATTR_CIPHER_INFO).buffer
    assert isinstance(client, CipherInfo) and isinstance(server, CipherInfo)
    assert (client.cipher_suite, client.cipher_suite_name, client.version) == (suite, name, 1)
    connection = tls.query("client", SecPkgAttr.SECPKG_ATTR_CONNECTION_INFO).buffer
    assert client.protocol == connection.protocol and client.cipher_length == 256
    assert server.protocol != client.protocol  # the side's SP_PROT bit
    assert tls.client.statistics().context_buffers == 0  # flat: nothing to free


@pytest.mark.rule("ATT-025")
def test_certificate_contexts_without_a_client_certificate() -> None:
    tls = Tls()
    remote = tls.query("client", SecPkgAttr.SECPKG_ATTR_REMOTE_CERT_CONTEXT)
    assert remote.buffer == CertificateContext("CN=srv.contoso.com")
    local = tls.query("server", SecPkgAttr.SECPKG_ATTR_LOCAL_CERT_CONTEXT)
    assert local.buffer == CertificateContext("CN=srv.contoso.com")
    for side, attribute in (
        ("client", SecPkgAttr.SECPKG_ATTR_LOCAL_CERT_CONTEXT),
        ("server", SecPkgAttr.SECPKG_ATTR_REMOTE_CERT_CONTEXT),
    ):
        result = tls.query(side, attribute)
        assert (result.status, result.buffer) == (SecStatus.SEC_E_NO_CREDENTIALS, None)
        assert result.status in CALL_CODES[Call.QUERY_CONTEXT_ATTRIBUTES]
        assert "ATT-025" in (tls.client if side == "client" else tls.server).last_rules
    # CertFreeCertificateContext is not SSPI: statistics() counts no buffer for them.
    assert tls.client.statistics().context_buffers == 0


@pytest.mark.rule("ATT-025")
def test_certificate_contexts_with_a_client_certificate() -> None:
    tls = Tls(client_certificate=True)
    assert tls.query("server", SecPkgAttr.SECPKG_ATTR_REMOTE_CERT_CONTEXT).buffer == (
        CertificateContext("CN=alice")
    )
    assert tls.query("client", SecPkgAttr.SECPKG_ATTR_LOCAL_CERT_CONTEXT).buffer == (
        CertificateContext("CN=alice")
    )


@pytest.mark.rule("ATT-024", "ATT-025", "ATT-026", "QCA-002", "QCA-004")
def test_partial_contexts_and_other_packages() -> None:
    client = Sspi()
    credential = client.acquire_credentials_handle("Schannel", CredentialUse.OUTBOUND).credential
    partial = client.initialize_security_context(credential, None, "srv.contoso.com").new_context
    for attribute in (
        SecPkgAttr.SECPKG_ATTR_CIPHER_INFO,
        SecPkgAttr.SECPKG_ATTR_REMOTE_CERT_CONTEXT,
        SecPkgAttr.SECPKG_ATTR_LOCAL_CERT_CONTEXT,
    ):
        result = client.query_context_attributes(partial, attribute)
        assert result.status == SecStatus.SEC_E_INVALID_HANDLE  # QCA-002
    from test_messages import established

    pair = established("NTLM")
    result = pair.client.query_context_attributes(pair.c, SecPkgAttr.SECPKG_ATTR_CIPHER_INFO)
    assert result.status == SecStatus.SEC_E_UNSUPPORTED_FUNCTION  # Schannel only (QCA-004)
    issuers = SecPkgAttr.SECPKG_ATTR_ISSUER_LIST_EX  # asked on a partial context (ATT-026)
    result = pair.client.query_context_attributes(pair.partial_client, issuers)
    assert result.status == SecStatus.SEC_E_UNSUPPORTED_FUNCTION


@pytest.mark.rule("ATT-026", "SCH-007")
def test_issuer_list_after_incomplete_credentials() -> None:
    from sspi_model import IssuerListInfoEx

    client, server = Sspi(), Sspi()
    scred = server.acquire_credentials_handle(
        "Schannel", CredentialUse.INBOUND, SchannelCred(SERVER)
    ).credential
    ccred = client.acquire_credentials_handle("Schannel", CredentialUse.OUTBOUND).credential
    leg = client.initialize_security_context(ccred, None, "srv.contoso.com")
    context = leg.new_context
    issuers = SecPkgAttr.SECPKG_ATTR_ISSUER_LIST_EX
    early = client.query_context_attributes(context, issuers)
    assert early.status == SecStatus.SEC_E_UNSUPPORTED_FUNCTION  # nothing asked yet
    reply = server.accept_security_context(scred, None, leg.output_token, MUTUAL)
    second = client.initialize_security_context(ccred, context, None, 0, reply.output_token)
    assert second.status == SecStatus.SEC_I_INCOMPLETE_CREDENTIALS
    result = client.query_context_attributes(context, issuers)
    assert (result.status, result.buffer) == (OK, IssuerListInfoEx())
    assert client.statistics().context_buffers == 0  # no CA named: nothing to free
    answer = server.query_context_attributes(reply.new_context, issuers)
    assert answer.status == SecStatus.SEC_E_UNSUPPORTED_FUNCTION  # client only
