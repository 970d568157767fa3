"""The direct comparison of sync results (TRC-009) gives the verdicts of the general path."""

from __future__ import annotations

import copy
import json
import re
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sspi_model.scenarios import Narrator, run_scenario
from sspi_model.trace import ReplaySession, replay, validate_lines

rule = pytest.mark.rule


def _trace(name: str) -> list[dict[str, Any]]:
    return run_scenario(name, Narrator(write=lambda line: None)).trace()


TRACES = [_trace(name) for name in ("ntlm", "async-delete", "overview")]
_SYNC = {"AcquireCredentialsHandleW", "InitializeSecurityContextW", "AcceptSecurityContext"}
_SYNC |= {"DeleteSecurityContext", "FreeCredentialsHandle"}


def _verdicts(records: list[dict[str, Any]], monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The verdict of the replay and of the general path alone, token bytes left out (a
    Schannel leg's differ from run to run)."""
    lines = [json.dumps(record) for record in records]
    found = [validate_lines(lines)]
    with monkeypatch.context() as patch:
        patch.setattr(replay, "matched", lambda *args: False)  # the general path only
        found.append(validate_lines(lines))
    return [_DATA.sub('"data": "', repr(verdict)) for verdict in found]


_DATA = re.compile(r'"data": "[A-Za-z0-9+/=]*')


# (field path, new value): edits of a sync call's record the direct comparison must refuse
# exactly when the general path does.
_EDITS: list[tuple[tuple[Any, ...], Any]] = [
    (("status",), "SEC_E_INTERNAL_ERROR"),
    (("status",), "0x00000000"),
    (("status",), "0x00090312"),
    (("process",), "elsewhere"),
    (("out", "context"), "$ctx99"),
    (("out", "context"), None),
    (("out", "credential"), "$cred1"),
    (("out", "credential"), "$ctx1"),
    (("out", "expiry"), None),
    (("out", "expiry"), 5),
    (("out", "context_attr"), 0),
    (("out", "output"), []),
    (("out", "output"), None),
    (("out", "output", 0, "type"), "SECBUFFER_EMPTY"),
    (("out", "output", 0, "data"), ""),
    (("out", "output", 0, "data"), "AAAA"),
    (("out", "output", 0, "size"), 7),
    (("out", "output", 0, "allocation"), "$buf1"),
    (("out", "input_after"), []),
    (("out", "packages"), ["NTLM"]),
    (("result",), "$actx1"),
    (("pending",), "$call1"),
]


def _edit(record: dict[str, Any], path: tuple[Any, ...], value: Any) -> bool:
    target: Any = record
    for key in path[:-1]:
        try:
            target = target[key]
        except (KeyError, IndexError, TypeError):
            return False
    if not isinstance(target, dict):
        return False
    target[path[-1]] = value
    return True


@rule("TRC-009")
def test_recorded_traces_replay_directly_and_generally_alike(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for records in TRACES:
        direct, general = _verdicts(records, monkeypatch)
        assert direct.startswith("Verdict(ok=True") and direct == general


@rule("TRC-009")
@settings(max_examples=150, deadline=None)
@given(st.data())
def test_an_edited_sync_record_gets_the_general_paths_verdict(data: st.DataObject) -> None:
    records = copy.deepcopy(data.draw(st.sampled_from(TRACES)))
    sync = [index for index, record in enumerate(records) if record.get("call") in _SYNC]
    index = data.draw(st.sampled_from(sync))
    path, value = data.draw(st.sampled_from(_EDITS))
    if not _edit(records[index], path, value):
        return
    with pytest.MonkeyPatch.context() as monkeypatch:
        direct, general = _verdicts(records, monkeypatch)
    assert direct == general


@rule("TRC-009")
def test_a_listener_of_the_replays_records_gets_every_one() -> None:
    records = TRACES[0]
    session = ReplaySession()
    heard: list[dict[str, Any]] = []
    session.recorder.listen(heard.append)
    for number, record in enumerate(records, start=1):
        session.feed_line(number, json.dumps(record))
    verdict = session.verdict()
    assert verdict.ok and len(heard) == verdict.replayed == len(records) - 1
