"""Every demo scenario runs, narrates each call with its status, and records a valid trace."""

from __future__ import annotations

from typing import Any

import pytest

from sspi_model.scenarios import DEFAULT_SCENARIO, SCENARIOS, Narrator, run_scenario
from sspi_model.trace import Recorder, record_kind, validate


def quiet() -> Narrator:
    return Narrator(write=lambda line: None)


def summary(recorder: Recorder, process: str | None = None) -> list[tuple[str, Any]]:
    """(what, status/result) per record, for the records of one process."""
    rows = []
    for record in recorder.records:
        if process is not None and record.get("process") != process:
            continue
        kind = record_kind(record)
        what = record.get("call") if kind == "call" else kind
        rows.append((what, record.get("status", record.get("result", record.get("rule")))))
    return rows


@pytest.mark.parametrize("name", list(SCENARIOS))
def test_each_scenario_runs_narrates_and_replays(name: str) -> None:
    narrator = quiet()
    recorder = run_scenario(name, narrator)
    assert recorder.records
    text = "\n".join(narrator.lines)
    assert text.strip().splitlines()[0].startswith(f"== {name}:")
    for record in recorder.records:
        assert f"[{record['seq']:>2}] {record['process']}" in text
        if record_kind(record) == "call":
            assert record["call"] in text
    assert "(0x00000000)" in text  # statuses show their hex value
    assert validate(recorder.trace()).ok


def test_the_default_scenario_is_the_async_delete_page() -> None:
    assert DEFAULT_SCENARIO == "async-delete"


@pytest.mark.rule("ASY-005", "ASY-006", "ASY-022", "ASY-040", "ASY-042", "ASY-050")
def test_async_delete_steps_through_queue_pending_complete_callback_free() -> None:
    recorder = run_scenario("async-delete", quiet())
    rows = summary(recorder, "server")
    start = rows.index(("SspiCreateAsyncContext", "$actx1"))
    assert rows[start : start + 8] == [
        ("SspiCreateAsyncContext", "$actx1"),
        ("SspiSetAsyncNotifyCallback", "SEC_E_OK"),
        ("SspiDeleteSecurityContextAsync", "SEC_E_OK"),
        ("SspiGetAsyncCallStatus", "SEC_I_ASYNC_CALL_PENDING"),
        ("complete", "SEC_E_OK"),
        ("callback", None),
        ("SspiGetAsyncCallStatus", "SEC_E_OK"),
        ("SspiFreeAsyncContext", None),
    ]


def test_the_narration_shows_states_and_callbacks() -> None:
    narrator = quiet()
    run_scenario("async-delete", narrator)
    text = "\n".join(narrator.lines)
    assert "$actx1 async context pending, status SEC_I_ASYNC_CALL_PENDING" in text
    assert "$call1 pending SspiDeleteSecurityContextAsync" in text
    assert "$ctx2 context deleted" in text
    assert 'callback fires: on_deleted($actx1, "connection 1")' in text
    assert "$actx1 async context freed" in text
    assert "\033[" not in text


@pytest.mark.rule("ASY-052", "ASY-055", "ASY-070", "ASY-071")
def test_overview_runs_the_sample_then_catches_its_race() -> None:
    narrator = quiet()
    recorder = run_scenario("overview", narrator)
    manual = summary(recorder, "server")
    assert ("SspiGetAsyncCallStatus", "SEC_I_ASYNC_CALL_PENDING") in manual
    inline = summary(recorder, "server-inline")
    assert inline[-4:] == [
        ("callback", None),
        ("SspiGetAsyncCallStatus", "SEC_I_CONTINUE_NEEDED"),
        ("SspiFreeAsyncContext", None),
        ("misuse", "ASY-052"),
    ]
    assert any("SspiMisuse [ASY-052]" in line for line in narrator.lines)


@pytest.mark.rule("ASY-020", "ASY-051", "ASY-056")
@pytest.mark.parametrize(("name", "process"), [("msquic", "msquic"), ("httpsys", "http.sys")])
def test_teardown_frees_the_async_context_while_the_delete_is_pending(
    name: str, process: str
) -> None:
    recorder = run_scenario(name, quiet())
    rows = summary(recorder, process)
    delete = max(i for i, row in enumerate(rows) if row[0] == "SspiDeleteSecurityContextAsync")
    assert rows[delete : delete + 4] == [
        ("SspiDeleteSecurityContextAsync", "SEC_E_OK"),
        ("SspiFreeAsyncContext", None),
        ("complete", "SEC_E_OK"),
        ("DeleteSecurityContext", "SEC_E_INVALID_HANDLE"),  # through the invalidated copy
    ]


@pytest.mark.rule("DEL-003")
def test_ntlm_deletes_twice_with_sec_e_ok() -> None:
    rows = summary(run_scenario("ntlm", quiet()), "server")
    assert rows[-3:-1] == [("DeleteSecurityContext", "SEC_E_OK")] * 2


@pytest.mark.rule("ASY-011", "ASY-060")
def test_schannel_handshake_runs_every_leg_asynchronously() -> None:
    recorder = run_scenario("schannel", quiet())
    legs = [r for r in recorder.records if record_kind(r) == "complete"]
    statuses = [leg["status"] for leg in legs]
    assert statuses == ["SEC_E_OK"] * 2 + ["SEC_I_CONTINUE_NEEDED"] * 3 + ["SEC_E_OK"] * 2
    assert sum(r.get("call") == "SspiReinitAsyncContext" for r in recorder.records) == 5


def test_a_narrator_paints_only_when_asked() -> None:
    narrator = Narrator(write=lambda line: None, color=True)
    run_scenario("ntlm", narrator)
    assert any("\033[32mSEC_E_OK (0x00000000)\033[0m" in line for line in narrator.lines)


def test_unknown_scenarios_name_the_accepted_ones() -> None:
    with pytest.raises(KeyError, match="accepted: async-delete"):
        run_scenario("nope", quiet())
