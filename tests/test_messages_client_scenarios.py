"""The client scenarios (curl, MsQuic with ALPN, Chromium) run end to end on the model (SCN)."""

from __future__ import annotations

from typing import Any

import pytest

from sspi_model.scenarios import CLIENT_SCENARIOS, SCENARIOS, Narrator, run_scenario
from sspi_model.trace import Recorder, record_kind


def run(name: str) -> tuple[Recorder, list[str]]:
    lines: list[str] = []
    recorder = run_scenario(name, Narrator(write=lines.append))
    return recorder, lines


def calls(recorder: Recorder, process: str) -> list[tuple[Any, Any]]:
    return [
        (record["call"], record["status"])
        for record in recorder.records
        if record_kind(record) == "call" and record["process"] == process
    ]


def alive(recorder: Recorder) -> dict[str, Any]:
    return {name: sspi.statistics() for name, sspi in recorder.processes.items()}


@pytest.mark.rule("SCN-001")
def test_curl_connection_end_to_end() -> None:
    recorder, lines = run("curl")
    curl = calls(recorder, "curl")
    decrypts = [status for call, status in curl if call == "DecryptMessage"]
    assert decrypts == [
        "SEC_E_INCOMPLETE_MESSAGE",
        "SEC_I_RENEGOTIATE",
        "SEC_E_OK",
        "SEC_E_OK",
        "SEC_I_CONTEXT_EXPIRED",
    ]
    assert ("ApplyControlToken", "SEC_E_OK") in curl
    assert "curl received b'HTTP/2 200<html>'." in " ".join(lines)
    for statistics in alive(recorder).values():
        assert not statistics.anything_alive, statistics


@pytest.mark.rule("SCN-002")
def test_msquic_alpn_handshake_and_queries() -> None:
    recorder, _lines = run("msquic-alpn")
    client = calls(recorder, "msquic-client")
    assert [c for c, _ in client].count("QueryContextAttributesW") == 3
    assert all(status == "SEC_E_OK" for call, status in client if call.startswith("Query"))
    assert not any("Message" in call for call, _ in client)  # MsQuic never calls them
    protocol = [
        record["out"]["attribute"]
        for record in recorder.records
        if record.get("call") == "QueryContextAttributesW" and record["args"]["attribute"] == 35
    ]
    assert protocol[0]["status"] == 1  # Success, "h3"
    for statistics in alive(recorder).values():
        assert not statistics.anything_alive, statistics


@pytest.mark.rule("SCN-003")
def test_chromium_negotiate_leaks_only_its_net_log_buffers() -> None:
    recorder, _lines = run("chromium")
    browser = calls(recorder, "chromium")
    assert browser[:2] == [
        ("QuerySecurityPackageInfoW", "SEC_E_OK"),
        ("FreeContextBuffer", "SEC_E_OK"),
    ]
    queries = [status for call, status in browser if call == "QueryContextAttributesW"]
    assert queries == ["SEC_E_INVALID_HANDLE", "SEC_E_OK", "SEC_E_OK", "SEC_E_OK"]
    statistics = alive(recorder)
    assert not statistics["server"].anything_alive
    leaked = statistics["chromium"]
    assert (leaked.credentials, leaked.contexts, leaked.context_buffers) == (0, 0, 4)


@pytest.mark.rule("BUF-007")
def test_the_client_scenarios_are_in_the_replayed_set() -> None:
    assert set(CLIENT_SCENARIOS) == {"curl", "msquic-alpn", "chromium"}
    assert set(CLIENT_SCENARIOS) <= set(SCENARIOS)
