"""The streaming entry points (validate_lines, validate_file, validate over an iterator) give
validate(Trace)'s verdicts: on recorded scenarios, on handshake/delete traces, and on corrupted
traces of every kind. (These verdicts were also checked equal to the two replayers this module
replaced, trace/fast.py and the old trace/replay.py, when they were merged.)"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from sspi_model import AuthIdentity, Sspi
from sspi_model.scenarios import ACCOUNTS, SCENARIOS, Narrator, run_scenario
from sspi_model.scheduling import ManualScheduler
from sspi_model.trace import (
    Recorder,
    ReplaySession,
    parse_lines,
    read_trace,
    validate,
    validate_file,
    validate_lines,
    write_trace,
)

OUTBOUND, INBOUND, REQ = 2, 1, 0x800


def _cb(async_context: Any, data: Any) -> None:
    pass


def cycles(count: int, *, explicit: bool = False) -> list[str]:
    """A recorded trace of handshakes, deletes, async deletes with callbacks and DEL-003."""
    recorder = Recorder()
    scheduler = ManualScheduler()
    client = Sspi(accounts=ACCOUNTS)
    server = Sspi(accounts=ACCOUNTS, scheduler=scheduler)
    recorder.attach(client, "client")
    recorder.attach(server, "server")
    auth = AuthIdentity("alice", "Passw0rd!", "CONTOSO") if explicit else None
    for _ in range(count):
        client_cred = client.acquire_credentials_handle("NTLM", OUTBOUND, auth).credential
        server_cred = server.acquire_credentials_handle("NTLM", INBOUND).credential
        isc1 = client.initialize_security_context(client_cred, None, "HOST/srv", REQ)
        asc1 = server.accept_security_context(server_cred, None, isc1.output_token, REQ)
        isc2 = client.initialize_security_context(
            None, isc1.new_context, "HOST/srv", REQ, asc1.output_token
        )
        server.accept_security_context(None, asc1.new_context, isc2.output_token, REQ)
        client.delete_security_context(isc1.new_context)
        async_context = server.create_async_context()
        server.set_async_notify_callback(async_context, _cb, "connection")
        server.delete_security_context_async(async_context, context=asc1.new_context)
        scheduler.run_all()
        server.get_async_call_status(async_context)
        server.free_async_context(async_context)
        server.delete_security_context(asc1.new_context)
        client.free_credentials_handle(client_cred)
        server.free_credentials_handle(server_cred)
    return [json.dumps(record) for record in recorder.trace()]


def reference(lines: list[str]) -> Any:
    return validate(parse_lines(lines))


def assert_same(lines: list[str]) -> Any:
    expected = reference(lines)
    assert validate_lines(iter(lines)) == expected
    assert validate_lines([line.encode() for line in lines]) == expected
    return expected


@pytest.mark.parametrize("name", list(SCENARIOS))
def test_recorded_scenarios_get_the_same_verdict(name: str) -> None:
    recorder = run_scenario(name, Narrator(write=lambda line: None))
    lines = [json.dumps(record) for record in recorder.trace()]
    assert assert_same(lines).ok


@pytest.mark.parametrize("explicit", [False, True])
def test_handshake_and_delete_traces_replay_a_line_at_a_time(explicit: bool) -> None:
    lines = cycles(3, explicit=explicit)
    session = ReplaySession()
    for number, line in enumerate(lines, start=1):
        session.feed_line(number, line)
    verdict = session.verdict()
    assert verdict.ok and verdict.replayed == len(lines) - 1
    assert verdict == reference(lines)
    assert validate([json.loads(line) for line in lines]) == verdict


def test_a_file_streams_to_the_same_verdict(tmp_path: Path) -> None:
    path = tmp_path / "t.jsonl"
    path.write_text("\n".join(cycles(2)) + "\n", encoding="utf-8")
    assert validate_file(path) == validate(read_trace(path))
    recorder = run_scenario("overview", Narrator(write=lambda line: None))
    write_trace(path, recorder)
    assert validate_file(path) == validate(read_trace(path))


def _edit(lines: list[str], index: int, change: Any) -> list[str]:
    record = json.loads(lines[index])
    change(record)
    return [*lines[:index], json.dumps(record), *lines[index + 1 :]]


def _set(key: str, value: Any) -> Any:
    return lambda record: record.__setitem__(key, value)


def _drop(key: str) -> Any:
    return lambda record: record.pop(key, None)


def _out(key: str, value: Any) -> Any:
    return lambda record: record.get("out", {}).__setitem__(key, value)


CORRUPTIONS = {
    "status": _set("status", "SEC_E_LOGON_DENIED"),
    "status-hex": _set("status", "0x00000000"),
    "bad-status": _set("status", "SEC_E_NO_SUCH_THING"),
    "no-status": _drop("status"),
    "no-out": _drop("out"),
    "pending": _set("pending", "$call999"),
    "no-pending": _drop("pending"),
    "result": _set("result", "$actx999"),
    "process": _set("process", "elsewhere"),
    "seq": _set("seq", 1),
    "extra-field": _set("stauts", "SEC_E_OK"),
    "context": _out("context", "$ctx1"),
    "credential": _out("credential", "$cred1"),
    "attr": _out("context_attr", 12345),
    "expiry": _out("expiry", None),
    "no-data": _out("output", [{"type": "SECBUFFER_TOKEN", "data": ""}]),
    "buffer-type": _out("output", [{"type": "SECBUFFER_EMPTY", "data": ""}]),
    "args-context": lambda r: r.get("args", {}).__setitem__("context", "$ctx2"),
    "args-literal": lambda r: r.get("args", {}).__setitem__("context", {"lower": 1, "upper": 2}),
    "args-from": lambda r: r.get("args", {}).__setitem__("input", {"from": 1}),
    "data": _set("data", "other"),
    "async-context": _set("async_context", "$actx7"),
}


OPTIONAL = {"no-status", "no-out", "no-pending"}


@pytest.mark.parametrize("corruption", sorted(CORRUPTIONS))
def test_every_record_corrupted_every_way_gets_the_same_verdict(corruption: str) -> None:
    lines = cycles(2)
    failures = 0
    for index in range(1, len(lines)):
        changed = _edit(lines, index, CORRUPTIONS[corruption])
        if changed == lines:
            continue
        verdict = assert_same(changed)
        failures += not verdict.ok
    if corruption not in OPTIONAL:  # leaving out an optional field is still a valid trace
        assert failures, "the corruption was never noticed: the test corrupts nothing"


def test_lines_removed_swapped_or_added_get_the_same_verdict() -> None:
    lines = cycles(2)
    for index in range(1, len(lines)):
        assert_same([*lines[:index], *lines[index + 1 :]])  # a line missing
        if index + 1 < len(lines):  # two lines swapped
            assert_same([*lines[:index], lines[index + 1], lines[index], *lines[index + 2 :]])
    assert_same([*lines, lines[-1]])  # a repeated last line
    assert_same([*lines[:5], "{not json", *lines[5:]])
    assert_same([*lines[:5], "", "   ", *lines[5:]])  # blank lines are fine
    assert_same([*lines[:5], json.dumps(["an", "array"]), *lines[5:]])
    assert_same([lines[0], *lines])  # a second header
    assert_same(lines[1:])  # no header
    assert_same(lines[:1])  # a header alone
    assert_same([])


def test_the_end_of_a_trace_mid_completion_gets_the_same_verdict() -> None:
    lines = cycles(1)
    completion = next(i for i, line in enumerate(lines) if '"step": "complete"' in line)
    assert not assert_same(lines[: completion + 1]).ok  # the callback record is missing
    assert assert_same(lines[:completion]).ok  # stops before the completion: nothing owed


def test_headers_and_profiles_get_the_same_verdict() -> None:
    lines = cycles(1)
    for change in (
        _set("profile", "no-such-profile"),
        _set("profile", "ksecdd"),
        lambda r: r["processes"]["server"].__setitem__("strict", False),
        lambda r: r["processes"]["server"].__setitem__("packages", ["NTLM"]),
        lambda r: r["processes"]["server"].__setitem__("packages", ["Kerberos"]),
        lambda r: r["processes"].__setitem__("ghost", {"profile": "no-such-profile"}),
        _set("version", 2),
    ):
        assert_same(_edit(lines, 0, change))
    for profile in ("documented", "ksecdd", "strict-delete"):
        assert validate_lines(lines, profile=profile) == validate(
            parse_lines(lines), profile=profile
        )
