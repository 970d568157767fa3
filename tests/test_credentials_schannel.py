"""SCHANNEL_CRED and SCH_CREDENTIALS as callers build them (CRD rules)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from sspi_model import (
    SCH_CREDENTIALS_VERSION,
    SCHANNEL_CRED_VERSION,
    Certificate,
    CredentialUse,
    LegacySchannelCred,
    SchCredentials,
    SecStatus,
    Sspi,
    TlsParameters,
)
from sspi_model.lifecycle import CALL_CODES, Call
from sspi_model.packages import schannel_creds as sc
from sspi_model.trace import Recorder, validate

OK = SecStatus.SEC_E_OK
SERVER = Certificate("CN=srv.contoso.com")
INBOUND, OUTBOUND = CredentialUse.INBOUND, CredentialUse.OUTBOUND


def acquire(sspi: Sspi, use: int, cred: Any) -> Any:
    return sspi.acquire_credentials_handle("Schannel", use, cred)


def handshake(server_cred: Any, client_cred: Any, target: str = "srv.contoso.com") -> list[Any]:
    """Legs until one side stops; returns every leg's result, both sides."""
    server, client = Sspi(), Sspi()
    scred = acquire(server, INBOUND, server_cred)
    ccred = acquire(client, OUTBOUND, client_cred)
    assert (scred.status, ccred.status) == (OK, OK)
    legs, context, server_context = [], None, None
    token: bytes | None = None
    for _ in range(4):
        leg = client.initialize_security_context(ccred.credential, context, target, 0, token)
        legs.append(leg)
        context = leg.new_context or context
        if leg.status not in (OK, SecStatus.SEC_I_CONTINUE_NEEDED) or not leg.output_token:
            break
        reply = server.accept_security_context(scred.credential, server_context, leg.output_token)
        legs.append(reply)
        server_context = reply.new_context or server_context
        token = reply.output_token
        if reply.status not in (OK, SecStatus.SEC_I_CONTINUE_NEEDED) or not token:
            break
    return legs


def version_of(sspi: Sspi, context: Any) -> int:
    return sspi.query_context_attributes(context, 0x5A).buffer.protocol  # CONNECTION_INFO


def test_the_header_constants() -> None:
    assert (SCHANNEL_CRED_VERSION, SCH_CREDENTIALS_VERSION) == (4, 5)
    assert (sc.SP_PROT_TLS1_2_CLIENT, sc.SP_PROT_TLS1_3_SERVER) == (0x800, 0x1000)
    assert sc.SCH_USE_STRONG_CRYPTO == 0x400000 and sc.SCH_CRED_MANUAL_CRED_VALIDATION == 0x8


@pytest.mark.rule("CRD-001")
@pytest.mark.parametrize(
    "cred",
    [
        LegacySchannelCred(version=sc.SCH_CRED_V3, credentials=(SERVER,)),
        LegacySchannelCred(version=SCH_CREDENTIALS_VERSION, credentials=(SERVER,)),
        SchCredentials(version=SCHANNEL_CRED_VERSION, credentials=(SERVER,)),
        SchCredentials(version=0, credentials=(SERVER,)),
    ],
)
def test_a_version_the_structure_does_not_have_is_not_recognized(cred: Any) -> None:
    sspi = Sspi()
    result = acquire(sspi, INBOUND, cred)
    assert (result.status, result.credential) == (SecStatus.SEC_E_UNKNOWN_CREDENTIALS, None)
    assert "CRD-001" in sspi.last_rules
    assert sspi.statistics().credentials == 0


@pytest.mark.rule("CRD-001", "CRD-003")
def test_both_structures_acquire_with_their_version() -> None:
    sspi = Sspi()
    for cred in (LegacySchannelCred(credentials=(SERVER,)), SchCredentials(credentials=(SERVER,))):
        result = acquire(sspi, INBOUND, cred)
        assert result.status == OK and "CRD-003" in sspi.last_rules
    assert acquire(sspi, OUTBOUND, SchCredentials()).status == OK


@pytest.mark.rule("CRD-002")
@pytest.mark.parametrize(
    "cred",
    [
        LegacySchannelCred(
            flags=sc.SCH_CRED_MANUAL_CRED_VALIDATION | sc.SCH_CRED_AUTO_CRED_VALIDATION
        ),
        SchCredentials(flags=sc.SCH_CRED_NO_DEFAULT_CREDS | sc.SCH_CRED_USE_DEFAULT_CREDS),
        LegacySchannelCred(
            flags=sc.SCH_CRED_REVOCATION_CHECK_CHAIN | sc.SCH_CRED_REVOCATION_CHECK_END_CERT
        ),
        LegacySchannelCred(enabled_protocols=sc.SP_PROT_SSL2_CLIENT | sc.SP_PROT_TLS1_2_CLIENT),
        LegacySchannelCred(minimum_cipher_strength=sc.NULL_CIPHERS_ONLY),
        SchCredentials(tls_parameters=(TlsParameters(), TlsParameters())),
        SchCredentials(tls_parameters=tuple(TlsParameters((f"p{i}",)) for i in range(17))),
        SchCredentials(tls_parameters=(TlsParameters(tuple(f"p{i}" for i in range(17))),)),
    ],
)
def test_conflicting_settings_are_not_recognized(cred: Any) -> None:
    sspi = Sspi()
    result = acquire(sspi, OUTBOUND, cred)
    assert result.status == SecStatus.SEC_E_UNKNOWN_CREDENTIALS
    assert "CRD-002" in sspi.last_rules


@pytest.mark.rule("CRD-002")
def test_compatible_settings_acquire() -> None:
    sspi = Sspi()
    both_null = LegacySchannelCred(
        minimum_cipher_strength=sc.NULL_CIPHERS_ONLY, maximum_cipher_strength=sc.NULL_CIPHERS_ONLY
    )
    per_alpn = SchCredentials(tls_parameters=(TlsParameters(), TlsParameters(("h2",))))
    revocation = LegacySchannelCred(
        flags=sc.SCH_CRED_REVOCATION_CHECK_CHAIN | sc.SCH_CRED_IGNORE_REVOCATION_OFFLINE
    )
    for cred in (both_null, per_alpn, revocation):
        assert acquire(sspi, OUTBOUND, cred).status == OK


@pytest.mark.rule("CRD-003")
@pytest.mark.parametrize(
    ("use", "cred"),
    [
        (OUTBOUND, LegacySchannelCred(enabled_protocols=sc.SP_PROT_TLS1_3_CLIENT)),
        (OUTBOUND, LegacySchannelCred(enabled_protocols=sc.SP_PROT_TLS1_2_SERVER)),
        (OUTBOUND, LegacySchannelCred(enabled_protocols=sc.SP_PROT_TLS1_0_CLIENT)),
        (
            OUTBOUND,
            SchCredentials(
                tls_parameters=(
                    TlsParameters(
                        disabled_protocols=sc.SP_PROT_TLS1_2_CLIENT | sc.SP_PROT_TLS1_3_CLIENT
                    ),
                )
            ),
        ),
    ],
)
def test_no_protocol_left_is_an_algorithm_mismatch(use: int, cred: Any) -> None:
    sspi = Sspi()
    result = acquire(sspi, use, cred)
    assert result.status == SecStatus.SEC_E_ALGORITHM_MISMATCH
    assert "CRD-003" in sspi.last_rules
    assert result.status in CALL_CODES[Call.ACQUIRE_CREDENTIALS_HANDLE]


@pytest.mark.rule("CRD-003", "SCH-009")
def test_schannel_cred_never_negotiates_tls13_and_sch_credentials_does() -> None:
    server = SchCredentials(credentials=(SERVER,))
    legacy = LegacySchannelCred(
        enabled_protocols=sc.SP_PROT_TLS1_2_CLIENT | sc.SP_PROT_TLS1_3_CLIENT
    )
    assert [leg.status for leg in handshake(server, legacy)][-1] == OK
    assert len(handshake(server, legacy)) == 5  # TLS 1.2: ISC, ASC, ISC, ASC, ISC
    assert len(handshake(server, SchCredentials())) == 4  # TLS 1.3: ISC, ASC, ISC, ASC


@pytest.mark.rule("CRD-003", "CRD-004")
def test_a_disabled_tls12_fails_the_handshake_against_a_tls12_peer() -> None:
    only13 = SchCredentials(
        tls_parameters=(TlsParameters(disabled_protocols=sc.SP_PROT_TLS1_2_CLIENT),)
    )
    legs = handshake(LegacySchannelCred(credentials=(SERVER,)), only13)
    assert legs[-1].status == SecStatus.SEC_E_ALGORITHM_MISMATCH
    assert legs[-1].status in CALL_CODES[Call.INITIALIZE_SECURITY_CONTEXT]
    server_only13 = SchCredentials(
        credentials=(SERVER,),
        tls_parameters=(TlsParameters(disabled_protocols=sc.SP_PROT_TLS1_2_SERVER),),
    )
    legs = handshake(server_only13, LegacySchannelCred())
    assert legs[-1].status == SecStatus.SEC_E_ALGORITHM_MISMATCH  # ASC, on the ClientHello
    assert legs[-1].status in CALL_CODES[Call.ACCEPT_SECURITY_CONTEXT]
    assert handshake(server_only13, SchCredentials())[-1].status == OK


@pytest.mark.rule("CRD-003")
def test_an_optional_server_entry_that_would_leave_nothing_is_ignored() -> None:
    everything = sc.SP_PROT_TLS1_2_SERVER | sc.SP_PROT_TLS1_3_SERVER
    cred = SchCredentials(
        credentials=(SERVER,),
        tls_parameters=(
            TlsParameters(disabled_protocols=everything, flags=sc.TLS_PARAMS_OPTIONAL),
        ),
    )
    assert acquire(Sspi(), INBOUND, cred).status == OK
    required = SchCredentials(
        credentials=(SERVER,), tls_parameters=(TlsParameters(disabled_protocols=everything),)
    )
    assert acquire(Sspi(), INBOUND, required).status == SecStatus.SEC_E_ALGORITHM_MISMATCH


@pytest.mark.rule("SCH-003")
@pytest.mark.parametrize("struct", [LegacySchannelCred, SchCredentials])
def test_a_server_without_a_certificate_has_no_credentials(struct: Any) -> None:
    sspi = Sspi()
    assert acquire(sspi, INBOUND, struct()).status == SecStatus.SEC_E_NO_CREDENTIALS
    expired = struct(credentials=(Certificate("CN=old", expired=True),))
    assert acquire(sspi, INBOUND, expired).status == SecStatus.SEC_E_NO_CREDENTIALS


@pytest.mark.rule("CRD-005", "SCH-006")
@pytest.mark.parametrize(
    "flags", [sc.SCH_CRED_NO_SERVERNAME_CHECK, sc.SCH_CRED_MANUAL_CRED_VALIDATION]
)
def test_manual_validation_skips_the_server_name_check(flags: int) -> None:
    server = SchCredentials(credentials=(SERVER,))
    checked = handshake(server, SchCredentials(), target="other.contoso.com")
    assert checked[-1].status == SecStatus.SEC_E_WRONG_PRINCIPAL
    unchecked = handshake(server, SchCredentials(flags=flags), target="other.contoso.com")
    assert unchecked[-1].status == OK


@pytest.mark.rule("CRD-001")
def test_the_structures_are_typed_values() -> None:
    with pytest.raises(TypeError):
        LegacySchannelCred(enabled_protocols=-1)
    with pytest.raises(TypeError):
        SchCredentials(credentials=[SERVER])  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        SchCredentials(tls_parameters=(object(),))  # type: ignore[arg-type]
    cred = SchCredentials(credentials=(SERVER,), tls_parameters=(TlsParameters(("h2",), 0x800),))
    assert eval(repr(cred), vars(sc) | {"Certificate": Certificate}) == cred


@pytest.mark.rule("CRD-001", "BUF-007")
def test_a_trace_carries_the_structures_and_replays() -> None:
    recorder = Recorder()
    server = recorder.attach(Sspi(), "server")
    client = recorder.attach(Sspi(), "client")
    cred = SchCredentials(
        credentials=(SERVER,),
        flags=sc.SCH_USE_STRONG_CRYPTO,
        tls_parameters=(TlsParameters(disabled_protocols=sc.SP_PROT_TLS1_2_SERVER),),
    )
    acquire(server, INBOUND, cred)
    acquire(client, OUTBOUND, LegacySchannelCred(version=3))
    trace = json.loads(json.dumps(recorder.trace()))
    auth = trace[1]["args"]["auth_data"]
    assert (
        auth["type"] == "SchCredentials"
        and auth["tls_parameters"][0]["disabled_protocols"] == 0x400
    )
    assert trace[2]["status"] == "SEC_E_UNKNOWN_CREDENTIALS"
    assert validate(trace).ok


@pytest.mark.rule("CRD-003", "ATT-023")
def test_supported_protocols_follow_the_caller_structure() -> None:
    sspi = Sspi()
    only13 = SchCredentials(
        tls_parameters=(TlsParameters(disabled_protocols=sc.SP_PROT_TLS1_2_CLIENT),)
    )
    expected = {
        LegacySchannelCred(): sc.SP_PROT_TLS1_2_CLIENT,
        SchCredentials(): sc.SP_PROT_TLS1_2_CLIENT | sc.SP_PROT_TLS1_3_CLIENT,
        only13: sc.SP_PROT_TLS1_3_CLIENT,
    }
    for cred, bits in expected.items():
        handle = acquire(sspi, OUTBOUND, cred).credential
        assert sspi.query_credentials_attributes(handle, 0x58).buffer.protocols == bits
