"""The replay's streaming Recorder leaves output buffer data as bytes (TRC-008): the comparison
reads only whether a buffer holds data, and a message that shows the buffers writes them as a
trace does (base64)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from sspi_model import Sspi
from sspi_model.scenarios import ACCOUNTS
from sspi_model.trace import Recorder, validate_lines
from sspi_model.trace.format import encode_data, shown_buffers

rule = pytest.mark.rule
OUTBOUND, REQ = 2, 0x800


def _first_leg(recorder: Recorder) -> list[dict[str, Any]]:
    records: list[dict[str, Any]] = []
    recorder.listen(records.append)
    client = recorder.attach(Sspi(accounts=ACCOUNTS), "client")
    credential = client.acquire_credentials_handle("NTLM", OUTBOUND).credential
    client.initialize_security_context(credential, None, "HOST/srv", REQ)
    return records


@rule("TRC-008")
def test_a_streaming_recorder_keeps_output_bytes_and_shows_them_as_a_trace_writes_them() -> None:
    written = _first_leg(Recorder())[-1]["out"]["output"]
    streamed = _first_leg(Recorder(stream=True))[-1]["out"]["output"]
    assert isinstance(streamed[0]["data"], bytes) and streamed[0]["data"]
    assert [item["type"] for item in streamed] == [item["type"] for item in written]
    shown = shown_buffers(streamed)
    assert shown[0]["data"] == encode_data(streamed[0]["data"])
    assert {key for key in shown[0]} == {key for key in written[0]}
    assert streamed[0]["data"] != shown[0]["data"]  # shown_buffers copies, never edits


@rule("TRC-008")
def test_a_buffer_mismatch_shows_the_replays_output_in_base64() -> None:
    recorder = Recorder()
    records = _first_leg(recorder)
    records[-1]["out"]["output"] = None  # the trace says no buffers; the replay has a token
    lines = [json.dumps(record) for record in [recorder.header(), *records]]
    verdict = validate_lines(lines)
    assert not verdict.ok and verdict.what.endswith("out.output differs")
    shown = f"{verdict.expected} {verdict.found}"
    assert "cannot show" not in shown
    assert '"data": "TlRMTVNTUAAB' in shown  # NTLMSSP\0 negotiate, as base64
