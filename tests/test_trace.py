"""sspi_model.trace: recording, the JSONL file, structural checks and replay verdicts."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from sspi_model import CredentialUse, Out, SecHandle, Sspi, SspiMisuse
from sspi_model.backends.model import ModelBackend
from sspi_model.scenarios import ACCOUNTS, SCENARIOS, Narrator, run_scenario
from sspi_model.trace import (
    Recorder,
    check_record,
    parse_lines,
    read_trace,
    record_kind,
    validate,
    write_trace,
)

SCHEMA = Path(__file__).resolve().parent.parent / "specs" / "trace.schema.json"


def recorded(name: str) -> list[dict[str, Any]]:
    """A scenario's whole trace (header first), through JSON as a file would carry it."""
    recorder = run_scenario(name, Narrator(write=lambda line: None))
    return [json.loads(json.dumps(record)) for record in recorder.trace()]


def write_lines(path: Path, records: list[dict[str, Any]]) -> list[str]:
    write_trace(path, records)
    return path.read_text(encoding="utf-8").splitlines()


def line_of(lines: list[str], predicate: Any) -> int:
    """The 1-based number of the first line whose record satisfies `predicate`."""
    return next(n for n, text in enumerate(lines, 1) if predicate(json.loads(text)))


@pytest.mark.parametrize("name", list(SCENARIOS))
def test_a_recorded_scenario_written_and_read_back_validates(tmp_path: Path, name: str) -> None:
    path = tmp_path / "t.jsonl"
    count = write_trace(path, run_scenario(name, Narrator(write=lambda line: None)))
    trace = read_trace(path)
    assert trace.problems == ()
    assert trace.header is not None and trace.header["trace"] == "sspi-model"
    assert len(trace.records) == count - 1
    verdict = validate(trace)
    assert verdict.ok, str(verdict)
    assert verdict.replayed == len(trace.records)


def test_one_changed_status_fails_at_that_line(tmp_path: Path) -> None:
    path = tmp_path / "t.jsonl"
    lines = write_lines(path, recorded("ntlm"))
    number = line_of(lines, lambda r: r.get("call") == "AcceptSecurityContext")
    lines[number - 1] = lines[number - 1].replace(
        '"status": "SEC_I_CONTINUE_NEEDED"', '"status": "SEC_E_LOGON_DENIED"'
    )
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    verdict = validate(read_trace(path))
    assert not verdict.ok
    assert verdict.line == number
    assert "status differs" in verdict.what and "AcceptSecurityContext" in verdict.what
    assert verdict.found == "SEC_E_LOGON_DENIED (0x8009030C)"
    assert verdict.expected == "SEC_I_CONTINUE_NEEDED (0x00090312)"
    assert f"line {number}" in str(verdict)


def test_malformed_lines_are_reported_and_the_rest_is_validated(tmp_path: Path) -> None:
    path = tmp_path / "t.jsonl"
    lines = write_lines(path, recorded("async-delete"))
    lines.insert(3, "{not json")
    lines.insert(6, json.dumps({"seq": 1000, "process": "x", "call": "NoSuchFunction", "args": {}}))
    lines.append("")  # blank lines are fine
    lines.append(json.dumps(["an", "array"]))
    lines.append(
        json.dumps(
            {
                "seq": 2000,
                "process": "x",
                "call": "FreeContextBuffer",
                "args": {},
                "stauts": "SEC_E_OK",
            }
        )
    )
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    trace = read_trace(path)
    found = {(problem.line, problem.expected, problem.found) for problem in trace.problems}
    assert (
        4,
        "one JSON object per line",
        "invalid JSON (Expecting property name enclosed in double quotes at column 2)",
    ) in found
    assert (7, "the C name of an SSPI function", '"NoSuchFunction"') in found
    assert (len(lines) - 1, "a JSON object", "list") in found
    assert (len(lines), "only the fields of a call record", "stauts") in found
    verdict = validate(trace)
    assert not verdict.ok
    assert verdict.line is None  # the replay itself went through
    assert verdict.replayed == len(recorded("async-delete")) - 1
    assert [problem.line for problem in verdict.problems] == [4, 7, len(lines) - 1, len(lines)]


def test_the_schema_is_json_and_every_recorded_record_matches_it() -> None:
    schema = json.loads(SCHEMA.read_text(encoding="utf-8"))
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    records = [record for name in SCENARIOS for record in recorded(name)]
    kinds = {record_kind(record) for record in records}
    assert kinds == {"header", "call", "complete", "callback", "misuse"}
    for index, record in enumerate(records):
        assert check_record(record, first=record_kind(record) == "header") == [], (index, record)
    try:
        import jsonschema  # only if already installed: never a dependency
    except ImportError:
        return
    jsonschema.Draft202012Validator.check_schema(schema)
    validator = jsonschema.Draft202012Validator(schema)
    for record in records:
        assert list(validator.iter_errors(record)) == [], record


def test_the_schema_and_the_structural_check_reject_the_same_examples() -> None:
    bad = [
        {"seq": 1, "process": "p", "call": "DeleteSecurityContext", "args": {}, "status": "NOPE"},
        {"seq": 1, "process": "p", "call": "DeleteSecurityContext", "args": {"context": "ctx1"}},
        {"seq": 0, "process": "p", "call": "DeleteSecurityContext", "args": {}},
        {"seq": 1, "step": "done", "pending": "$call1"},
        {"seq": 1, "event": "misuse", "rule": "asy-52"},
        {"seq": 1, "event": "callback"},
        {
            "seq": 1,
            "process": "p",
            "call": "InitializeSecurityContextW",
            "args": {"input": "not base64!"},
        },
        {
            "seq": 1,
            "process": "p",
            "call": "InitializeSecurityContextW",
            "args": {},
            "out": {"contxt": "$ctx1"},
        },
    ]
    for record in bad:
        assert check_record(record), record
    jsonschema = pytest.importorskip("jsonschema")
    validator = jsonschema.Draft202012Validator(json.loads(SCHEMA.read_text(encoding="utf-8")))
    for record in bad:
        assert list(validator.iter_errors(record)), record


def test_a_header_is_only_allowed_first() -> None:
    header = {"trace": "sspi-model", "version": 1}
    trace = parse_lines([json.dumps(header), json.dumps(header)])
    assert [(p.line, p.found) for p in trace.problems] == [(2, "a header")]
    assert check_record({"trace": "sspi-model", "version": 2}, first=True) == [
        ('"version": 1', "2")
    ]


def test_input_tokens_refer_to_earlier_outputs_so_new_challenges_replay() -> None:
    records = recorded("ntlm")
    inputs = [r["args"]["input"] for r in records if r.get("call") == "AcceptSecurityContext"]
    assert inputs and all(set(value) == {"from"} for value in inputs)
    # NTLM challenges differ on every run; the same trace validates twice.
    assert validate(records).ok and validate(records).ok


@pytest.mark.rule("ASY-052")
def test_a_raised_misuse_record_carries_the_call_and_replays() -> None:
    records = recorded("overview")
    misuse = next(r for r in records if record_kind(r) == "misuse")
    assert misuse["rule"] == "ASY-052" and misuse["raised"] is True
    assert misuse["call"] == "SspiGetAsyncCallStatus"
    assert misuse["args"] == {"async_context": "$actx2"}
    assert validate(records).ok
    # The same call with a misuse the model does not raise there is refused.
    misuse["rule"] = "ASY-053"
    verdict = validate(records)
    assert not verdict.ok and "misuse rule differs" in verdict.what


@pytest.mark.rule("ASY-053")
def test_an_unraised_misuse_precedes_its_call_and_replays() -> None:
    recorder = Recorder()
    sspi = recorder.attach(Sspi(strict=False), "p")
    context = sspi.create_async_context()
    sspi.free_async_context(context)
    sspi.free_async_context(context)
    records = recorder.trace()
    assert [record_kind(r) for r in records[1:]] == ["call", "call", "misuse", "call"]
    assert records[3]["raised"] is False and "args" not in records[3]
    assert validate(records).ok


def test_a_callback_the_trace_lacks_fails_at_that_position() -> None:
    records = recorded("async-delete")
    index = next(i for i, r in enumerate(records) if record_kind(r) == "callback")
    del records[index]
    verdict = validate(records)
    assert not verdict.ok
    assert verdict.line == index + 1  # the line now holding the record after the callback
    assert "the model records a callback here" in verdict.what
    assert "callback on $actx1" in verdict.expected


def test_a_symbol_nobody_bound_is_reported() -> None:
    records = recorded("ntlm")
    call = next(r for r in records if r.get("call") == "DeleteSecurityContext")
    call["args"]["context"] = "$ctx99"
    verdict = validate(records)
    assert not verdict.ok and "$ctx99 is used before any record bound it" in verdict.what


def test_symbols_are_matched_by_position_not_by_name() -> None:
    text = json.dumps(recorded("async-delete")).replace("$ctx", "$context_").replace("$", "$x_")
    assert validate(json.loads(text)).ok


def test_a_literal_invalid_handle_is_written_literally_and_replays() -> None:
    recorder = Recorder()
    sspi = recorder.attach(Sspi(), "p")
    sspi.delete_security_context(SecHandle.invalid())
    record = recorder.records[0]
    assert record["args"]["context"] == {"lower": 2**64 - 1, "upper": 2**64 - 1}
    assert record["status"] == "SEC_E_INVALID_HANDLE"
    assert validate(recorder.trace()).ok


def test_a_trace_without_a_header_uses_the_defaults() -> None:
    recorder = Recorder()
    sspi = recorder.attach(Sspi(), "p")
    sspi.acquire_credentials_handle("Schannel", CredentialUse.OUTBOUND)
    assert validate(recorder.records).ok


def test_a_process_unnamed_when_attached_gets_a_name() -> None:
    recorder = Recorder()
    Sspi(observer=recorder).enumerate_security_packages()
    assert recorder.records[0]["process"] == "process1"
    assert recorder.records[0]["out"]["packages"] == ["Negotiate", "NTLM", "Schannel"]


def test_replay_on_the_model_backend_runs_sync_and_async_records() -> None:
    for name in ("ntlm", "async-delete"):
        verdict = validate(recorded(name), backend=ModelBackend)
        assert verdict.ok, str(verdict)


class SyncOnlyBackend(ModelBackend):
    """A backend declaring no async support."""

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self.capabilities = type(self.capabilities)(name="sync-only", packages=frozenset())


def test_async_records_on_a_backend_without_async_support_are_unsupported() -> None:
    records = recorded("async-delete")
    verdict = validate(records, backend=SyncOnlyBackend)
    first = next(i for i, r in enumerate(records) if r.get("call", "").startswith("Sspi"))
    assert verdict.unsupported and not verdict.ok
    assert verdict.line == first + 1
    assert "backend sync-only has no async support" in verdict.what
    assert validate(recorded("ntlm"), backend=SyncOnlyBackend).ok


def test_out_holders_and_callback_data_are_recorded() -> None:
    recorder = Recorder()
    sspi = recorder.attach(Sspi(accounts=ACCOUNTS), "p")
    context = sspi.create_async_context()
    sspi.set_async_notify_callback(context, lambda *a: None, {"n": 1})
    sspi.acquire_credentials_handle_async(
        context, package="Schannel", credential_use=CredentialUse.OUTBOUND, out=Out()
    )
    sspi.scheduler.run_all()
    kinds = [record_kind(r) for r in recorder.records]
    assert kinds == ["call", "call", "call", "complete", "callback"]
    complete, callback = recorder.records[3], recorder.records[4]
    assert complete["out"] == {"credential": "$cred1", "expiry": 2**63 - 1}
    assert callback["data"] == {"n": 1} and callback["pending"] == complete["pending"]
    assert validate(recorder.trace()).ok


def test_a_misuse_in_strict_mode_still_raises_while_recorded() -> None:
    recorder = Recorder()
    sspi = recorder.attach(Sspi(), "p")
    context = sspi.create_async_context()
    sspi.free_async_context(context)
    with pytest.raises(SspiMisuse):
        sspi.get_async_call_status(context)
    assert recorder.records[-1]["rule"] == "ASY-052"


@pytest.mark.rule("TRC-006")
def test_output_buffers_and_target_data_rep_are_recorded_and_replayed() -> None:
    from sspi_model import SecBuffer, SecBufferType
    from sspi_model.constants import SECURITY_NETWORK_DREP
    from sspi_model.scheduling import ManualScheduler

    recorder = Recorder()
    client = recorder.attach(Sspi(accounts=ACCOUNTS), "client")
    server = recorder.attach(Sspi(accounts=ACCOUNTS, scheduler=ManualScheduler()), "server")
    capacity = (SecBuffer(SecBufferType.SECBUFFER_TOKEN, b"", 8192),)
    client_cred = client.acquire_credentials_handle("NTLM", CredentialUse.OUTBOUND).credential
    server_cred = server.acquire_credentials_handle("NTLM", CredentialUse.INBOUND).credential
    isc = client.initialize_security_context(
        client_cred, None, "HOST/srv", 0, output=capacity, target_data_rep=SECURITY_NETWORK_DREP
    )
    async_context = server.create_async_context()
    server.set_async_notify_callback(async_context, lambda context, data: None, None)
    out = Out()
    server.accept_security_context_async(
        async_context, credential=server_cred, input=isc.output_token, output=capacity, out=out
    )
    server.scheduler.run_all()  # type: ignore[attr-defined]
    records = [json.loads(json.dumps(record)) for record in recorder.trace()]
    legs = [r for r in records if r.get("call", "").startswith(("Accept", "Initialize", "Sspi"))]
    legs = [r for r in legs if "SecurityContext" in r["call"] and "args" in r]
    isc_args, asc_args = legs[0]["args"], legs[1]["args"]
    assert isc_args["target_data_rep"] == SECURITY_NETWORK_DREP
    assert isc_args["output"] == [{"type": "SECBUFFER_TOKEN", "data": "", "size": 8192}]
    assert asc_args["output"] == isc_args["output"] and "target_data_rep" not in asc_args
    for record in records:
        assert check_record(record, first=record_kind(record) == "header") == []
    verdict = validate(records)
    assert verdict.ok, str(verdict)
    # A plain leg writes neither (the caller left both at their defaults).
    plain = client.initialize_security_context(client_cred, None, "HOST/srv", 0)
    assert plain.status >= 0
    last = recorder.records[-1]["args"]
    assert "output" not in last and "target_data_rep" not in last
