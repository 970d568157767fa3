"""Hostile traces get a verdict, never an exception (TRC-005), and validation's memory is that
of the trace's live objects (TRC-001 to TRC-004)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from test_trace_streaming import cycles

from sspi_model.scenarios import Narrator, run_scenario
from sspi_model.trace import (
    ReplaySession,
    Verdict,
    compare,
    files,
    parse_lines,
    read_trace,
    replay,
    validate,
    validate_file,
    validate_lines,
)
from sspi_model.trace import record as recording

rule = pytest.mark.rule


def recorded(name: str = "async-delete") -> list[str]:
    recorder = run_scenario(name, Narrator(write=lambda line: None))
    return [json.dumps(record) for record in recorder.trace()]


def judged(lines: list[Any]) -> Verdict:
    """The verdict of every entry point, which must agree."""
    verdict = validate_lines(lines)
    assert isinstance(verdict, Verdict)
    assert validate(parse_lines(lines)) == verdict
    return verdict


def failed_with_problem(lines: list[Any], words: str) -> Verdict:
    verdict = judged(lines)
    assert not verdict.ok
    assert any(words in str(problem) for problem in verdict.problems), verdict.problems
    return verdict


# -- one test per class of hostile line (TRC-005) ---------------------------------------------


@rule("TRC-005")
def test_invalid_json_is_a_problem() -> None:
    lines = recorded()
    failed_with_problem([*lines[:3], '{"seq": 3,', *lines[3:]], "invalid JSON")


@rule("TRC-005")
def test_bytes_that_are_not_utf8_are_a_problem(tmp_path: Path) -> None:
    lines = [line.encode() for line in recorded()]
    lines.insert(2, b'{"seq": 2, "process": "\xff\xfe"}')
    failed_with_problem(lines, "UTF-8")
    path = tmp_path / "t.jsonl"
    path.write_bytes(b"\n".join(lines) + b"\n")
    verdict = validate_file(path)
    assert not verdict.ok and verdict == validate(read_trace(path))


@rule("TRC-005")
def test_a_line_longer_than_the_limit_is_a_problem_and_is_never_held(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(files, "LINE_LIMIT", 4096)
    lines = recorded()
    path = tmp_path / "t.jsonl"
    huge = '{"seq": 99, "process": "' + "x" * 100_000 + '"}'
    path.write_text("\n".join([*lines[:3], huge, *lines[3:]]) + "\n", encoding="utf-8")
    verdict = validate_file(path)
    assert not verdict.ok
    assert [problem.line for problem in verdict.problems] == [4]
    assert "a line of at most 4096 bytes" in str(verdict.problems[0])
    assert verdict == validate(read_trace(path))
    # What file_lines hands on for the long line is the limit plus one byte, not the line.
    assert max(len(line) for _number, line in files.file_lines(path)) == 4097


@rule("TRC-005")
def test_deep_nesting_is_a_problem() -> None:
    deep = "[" * 200_000 + "]" * 200_000
    lines = recorded()
    failed_with_problem([*lines[:2], deep, *lines[2:]], "nested too deeply")
    deep_value = '{"seq": 3, "process": "p", "call": "SspiFreeAsyncContext", "args": ' + (
        '{"a": ' * 50_000 + "1" + "}" * 50_000 + "}"
    )
    judged([*lines[:2], deep_value, *lines[2:]])


@rule("TRC-005")
def test_huge_integers_are_a_problem() -> None:
    lines = recorded()
    failed_with_problem([*lines[:2], '{"seq": ' + "9" * 5000 + "}", *lines[2:]], "unreadable JSON")
    # In memory, a huge int reaches the checks and the messages: still a verdict.
    records: list[Any] = [json.loads(line) for line in lines]
    records[2]["seq"] = 10**5000
    records[3]["out"] = {"context_attr": 10**5000}
    verdict = validate(records)
    assert not verdict.ok


@rule("TRC-005")
def test_lone_surrogates_give_a_verdict_and_print(tmp_path: Path) -> None:
    lines = recorded()
    edited = json.loads(lines[2])
    edited["process"] = "\ud800"
    verdict = judged([*lines[:2], json.dumps(edited), *lines[3:]])
    assert not verdict.ok
    str(verdict).encode("utf-8", "backslashreplace")
    path = tmp_path / "t.jsonl"
    path.write_text("\n".join([*lines[:2], json.dumps(edited), *lines[3:]]) + "\n")
    for extra in ([], ["--json"]):
        done = subprocess.run(
            [sys.executable, "-m", "sspi_model", "replay", str(path), *extra],
            capture_output=True,
            env={**os.environ, "PYTHONIOENCODING": "utf-8"},
            check=False,
        )
        assert done.returncode == 1, done.stderr  # a failed verdict, not an internal error


@rule("TRC-005")
def test_unknown_calls_and_a_call_that_is_a_list_are_problems() -> None:
    lines = recorded()
    for call in ("NoSuchFunction", [], {}, 7, None):
        bad = {"seq": 2, "process": "server", "call": call, "args": {}}
        failed_with_problem([*lines[:2], json.dumps(bad), *lines[2:]], "the C name of an SSPI")


WRONG = [None, True, 0, -1, 1.5, 10**30, "", "x", "$ctx999", "\ud800", [], [1], {}, {"a": 1}]


@rule("TRC-005")
@pytest.mark.parametrize("wrong", WRONG, ids=repr)
def test_a_wrong_type_in_every_field_of_every_record_gets_a_verdict(wrong: Any) -> None:
    lines = cycles(1)
    for index, line in enumerate(lines):
        record = json.loads(line)
        fields = [(record, key) for key in record]
        for key in ("args", "out"):
            if isinstance(record.get(key), dict):
                fields += [(record[key], inner) for inner in record[key]]
        for holder, key in fields:
            saved = holder[key]
            holder[key] = wrong
            changed = json.dumps(record)
            holder[key] = saved
            verdict = judged([*lines[:index], changed, *lines[index + 1 :]])
            assert isinstance(verdict, Verdict)


@pytest.mark.parametrize(
    "settings_",
    [
        {"strict": "yes"},
        {"async_any_package": 1},
        {"logon_user": 5},
        {"packages": 3},
        {"packages": [1, 2]},
        {"packages": ["NoSuchPackage"]},
        {"profile": 3},
    ],
    ids=repr,
)
@rule("TRC-005")
def test_wrong_header_settings_fail_at_line_1(settings_: dict[str, Any]) -> None:
    lines = cycles(1)
    header = json.loads(lines[0])
    header["processes"]["server"].update(settings_)
    verdict = judged([json.dumps(header), *lines[1:]])
    assert not verdict.ok
    assert verdict.line == 1 or verdict.problems


@rule("TRC-005")
def test_a_header_with_wrong_accounts_is_a_problem() -> None:
    lines = cycles(1)
    header = json.loads(lines[0])
    header["accounts"] = ["alice"]
    failed_with_problem([json.dumps(header), *lines[1:]], "accounts")


@rule("TRC-005")
@settings(max_examples=60, deadline=None)
@given(data=st.data())
def test_mutated_recorded_traces_always_get_a_verdict(data: st.DataObject) -> None:
    """Any line of a recorded trace replaced, cut, duplicated or given random bytes, or any
    field set to any JSON value: the verdict is a Verdict."""
    lines: list[Any] = [line.encode() for line in cycles(1)]
    json_values = st.recursive(
        st.none() | st.booleans() | st.integers() | st.floats() | st.text(),
        lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(), inner, max_size=3),
        max_leaves=8,
    )
    for _ in range(data.draw(st.integers(1, 4))):
        index = data.draw(st.integers(0, len(lines) - 1))
        how = data.draw(st.sampled_from(["field", "bytes", "cut", "repeat", "drop"]))
        if how == "field":
            try:
                value = json.loads(lines[index])
            except ValueError:
                continue  # an earlier mutation left no JSON here
            if isinstance(value, dict) and value:
                key = data.draw(st.sampled_from(sorted(value)))
                value[key] = data.draw(json_values)
            lines[index] = json.dumps(value).encode()
        elif how == "bytes":
            lines[index] = data.draw(st.binary(max_size=40))
        elif how == "cut":
            lines[index] = lines[index][: data.draw(st.integers(0, len(lines[index])))]
        elif how == "repeat":
            lines.insert(index, lines[index])
        elif len(lines) > 1:
            del lines[index]
    verdict = validate_lines(lines)
    assert isinstance(verdict, Verdict)
    assert verdict == validate(parse_lines(lines))


# -- memory: bounded by the live objects (TRC-001 .. TRC-004) ---------------------------------


@rule("TRC-001", "TRC-002")
def test_a_long_trace_keeps_only_live_bindings(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(compare, "RETIRED_WINDOW", 8)
    monkeypatch.setattr(compare, "SEQ_WINDOW", 8)
    monkeypatch.setattr(recording, "TOKEN_WINDOW", 8)
    session = ReplaySession()
    for number, line in enumerate(cycles(40), start=1):
        session.feed_line(number, line)
    comparison = session.compare
    # At most two generations of 8 retired symbols, and the one cycle's live ones.
    assert len(comparison.t2m) <= 2 * 8 + 17 and len(comparison.seq_map) <= 8
    assert len(session.recorder.symbols()) <= 2 * 8 + 17
    assert len(session.recorder._tokens) <= 8
    verdict = session.verdict()
    assert verdict.ok and verdict.replayed == 40 * 17


@rule("TRC-001")
def test_a_symbol_used_after_it_was_forgotten_says_so(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(compare, "RETIRED_WINDOW", 4)
    lines = cycles(6)
    stale = {"seq": 10_000, "process": "client", "call": "DeleteSecurityContext"}
    stale["args"] = {"context": "$ctx1"}
    stale["status"] = "SEC_E_OK"
    verdict = judged([*lines, json.dumps(stale)])
    assert not verdict.ok and "TRC-001" in verdict.what


@rule("TRC-002")
def test_an_input_from_a_forgotten_seq_says_so(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(compare, "SEQ_WINDOW", 2)
    lines = cycles(3)
    last = json.loads(lines[-1])
    late = {"seq": last["seq"] + 1, "process": "server", "call": "AcceptSecurityContext"}
    late["args"] = {"credential": None, "context": None, "input": {"from": 3}, "context_req": 0}
    late["status"] = "SEC_E_OK"
    verdict = judged([*lines, json.dumps(late)])
    assert not verdict.ok and "TRC-002" in verdict.what


@rule("TRC-004")
def test_observed_records_with_no_action_are_read_ahead_only_so_far(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(replay, "PENDING_LIMIT", 5)
    lines = cycles(1)
    callback = next(line for line in lines if '"event": "callback"' in line)
    verdict = judged([*lines, *[callback] * 10])
    assert not verdict.ok


@rule("TRC-003")
def test_problems_beyond_the_limit_are_counted(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(replay, "PROBLEM_LIMIT", 3)
    verdict = validate_lines([*cycles(1), *["{bad"] * 10])
    assert len(verdict.problems) == 4 and "7 more" in str(verdict.problems[-1])
