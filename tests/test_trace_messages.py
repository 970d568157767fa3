"""Traces of the message functions replay, buffers included (BUF-007)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from sspi_model import AuthIdentity, CredentialUse, SecStatus, Sspi
from sspi_model.buffers import NULL_DESCRIPTOR, SecBuffer
from sspi_model.cli import main
from sspi_model.scenarios import CLIENT_SCENARIOS, Narrator, run_scenario
from sspi_model.trace import Recorder, check_record, validate
from sspi_model.trace import buffers as trace_buffers
from sspi_model.trace.buffers import Pieces

ACCOUNTS = {"CONTOSO\\alice": "Passw0rd!"}
TOKEN, DATA = 2, 1


def trace_of(name: str) -> list[dict[str, Any]]:
    recorder = run_scenario(name, Narrator(write=lambda line: None))
    return [json.loads(json.dumps(record)) for record in recorder.trace()]


def ntlm_pair(recorder: Recorder) -> tuple[Sspi, Any, Sspi, Any]:
    client = recorder.attach(Sspi(accounts=ACCOUNTS), "client")
    server = recorder.attach(Sspi(accounts=ACCOUNTS), "server")
    identity = AuthIdentity(user="alice", domain="CONTOSO", password="Passw0rd!")
    ccred = client.acquire_credentials_handle("NTLM", CredentialUse.OUTBOUND, identity).credential
    scred = server.acquire_credentials_handle("NTLM", CredentialUse.INBOUND).credential
    leg1 = client.initialize_security_context(ccred, None, "host/srv")
    acc1 = server.accept_security_context(scred, None, leg1.output_token)
    leg2 = client.initialize_security_context(ccred, leg1.new_context, None, 0, acc1.output_token)
    server.accept_security_context(scred, acc1.new_context, leg2.output_token)
    return client, leg1.new_context, server, acc1.new_context


@pytest.mark.rule("BUF-007", "SCN-001", "SCN-002", "SCN-003")
@pytest.mark.parametrize("name", sorted(CLIENT_SCENARIOS))
def test_demo_trace_then_replay_is_ok_for_each_client_scenario(
    tmp_path: Path, name: str, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "t.jsonl"
    assert main(["demo", name, "--trace", str(path)]) == 0
    capsys.readouterr()
    assert main(["replay", str(path)]) == 0
    assert capsys.readouterr().out.startswith("OK")
    for line in path.read_text(encoding="utf-8").splitlines():
        assert '"repr"' not in line, line[:200]  # every buffer and result is encoded


@pytest.mark.rule("BUF-007")
def test_curl_trace_writes_wire_bytes_as_references_to_encrypt_outputs() -> None:
    records = trace_of("curl")
    decrypts = [r for r in records if r.get("call") == "DecryptMessage"]
    first = decrypts[0]["args"]["message"][0]["data"]  # the server reads the request record
    encrypt = next(r for r in records if r.get("call") == "EncryptMessage")
    assert first == {"join": [{"from": encrypt["seq"], "buffer": i} for i in range(3)]}
    pieces = [r["args"]["message"][0]["data"] for r in decrypts]
    assert any("slice" in piece for piece in pieces if isinstance(piece, dict))
    assert encrypt["out"]["output"][0]["type"] == "SECBUFFER_STREAM_HEADER"
    assert all(check_record(record, first=index == 0) == [] for index, record in enumerate(records))


@pytest.mark.rule("BUF-007")
def test_without_references_the_ciphertext_of_another_run_does_not_decrypt(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Keys come from each run's handshake randoms: literal wire bytes fail on replay, which is
    # what the references are for.
    monkeypatch.setattr(Pieces, "encode", lambda self, data: None)
    verdict = validate(trace_of("curl"))
    assert not verdict.ok
    assert "DecryptMessage" in verdict.what or "InitializeSecurityContext" in verdict.what


@pytest.mark.rule("BUF-007", "MSG-001")
def test_ntlm_sign_verify_seal_unseal_trace_replays() -> None:
    recorder = Recorder()
    client, c, server, s = ntlm_pair(recorder)
    signed = client.make_signature(c, 0, [SecBuffer(DATA, b"hello"), SecBuffer(TOKEN, size=16)])
    assert server.verify_signature(s, list(signed.buffers)).status == SecStatus.SEC_E_OK
    sealed = client.encrypt_message(c, 0, [SecBuffer(TOKEN, size=16), SecBuffer(DATA, b"data")])
    assert server.decrypt_message(s, list(sealed.buffers)).status == SecStatus.SEC_E_OK
    trace = json.loads(json.dumps(recorder.trace()))
    verify = next(r for r in trace if r.get("call") == "VerifySignature")
    assert verify["args"]["message"][1]["data"] == {"from": verify["seq"] - 1}  # the signature
    decrypt = next(r for r in trace if r.get("call") == "DecryptMessage")
    assert decrypt["args"]["message"][1]["data"] == {"from": decrypt["seq"] - 1, "buffer": 1}
    assert "qop" in decrypt["out"]
    assert validate(trace).ok


@pytest.mark.rule("BUF-007", "ATT-022")
def test_query_credentials_attributes_and_a_null_output_descriptor_replay() -> None:
    recorder = Recorder()
    client = recorder.attach(Sspi(accounts=ACCOUNTS), "client")
    credential = client.acquire_credentials_handle("NTLM", CredentialUse.OUTBOUND).credential
    names = client.query_credentials_attributes(credential, 1)
    assert names.status == SecStatus.SEC_E_OK and names.buffer is not None
    client.free_context_buffer(names.buffer.allocation)
    leg = client.initialize_security_context(credential, None, "host/srv", output=NULL_DESCRIPTOR)
    assert leg.status == SecStatus.SEC_E_BUFFER_TOO_SMALL  # BUF-005
    trace = json.loads(json.dumps(recorder.trace()))
    isc = next(r for r in trace if r.get("call") == "InitializeSecurityContextW")
    assert isc["args"]["output"] == {"descriptor": "NULL"}
    query = next(r for r in trace if r.get("call") == "QueryCredentialsAttributesW")
    assert query["out"]["attribute"]["type"] == "CredentialNames"
    assert validate(trace).ok


@pytest.mark.rule("BUF-007")
def test_a_bad_reference_is_a_verdict_not_an_exception() -> None:
    records = trace_of("curl")
    decrypt = next(r for r in records if r.get("call") == "DecryptMessage")
    decrypt["args"]["message"][0]["data"] = {"join": [{"from": 1, "buffer": 7}]}
    verdict = validate(records)
    assert not verdict.ok and "buffer 7 of seq 1" in verdict.what
    decrypt["args"]["message"][0]["data"] = {
        "from": decrypt["seq"] - 1,
        "buffer": 0,
        "slice": [0, 999],
    }
    verdict = validate(records)
    assert not verdict.ok and "slice 0..999" in verdict.what
    assert check_record({**decrypt, "args": {"message": {"from": 1, "slice": [3, 1]}}}) != []


@pytest.mark.rule("BUF-007")
def test_pieces_encode_joins_slices_and_leaves_unrelated_bytes_alone() -> None:
    pieces = Pieces(search=True)
    pieces.token(3, b"\x16\x03\x03" + bytes(range(40)))
    pieces.outputs(
        5, [SecBuffer(7, b"HDR01"), SecBuffer(1, b"ciphertext-0123456789"), SecBuffer(6, b"")]
    )
    wire = b"HDR01" + b"ciphertext-0123456789" + bytes(range(10))
    encoded = pieces.encode(wire)
    assert encoded == {
        "join": [
            {"from": 5, "buffer": 0},
            {"from": 5, "buffer": 1},
            {"from": 3, "slice": [3, 13]},
        ]
    }
    sources = {(3, None): b"\x16\x03\x03" + bytes(range(40)), (5, 0): b"HDR01"}
    sources[(5, 1)] = b"ciphertext-0123456789"
    assert trace_buffers.decode(encoded, lambda seq, index: sources[(seq, index)]) == wire
    assert pieces.encode(b"GET / HTTP/1.1") is None  # caller data: written as base64
    assert pieces.output(5, 1) == b"ciphertext-0123456789" and pieces.output(5, 9) is None
