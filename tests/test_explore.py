"""The explorer: every schedule of a scenario up to a bound, deduplicated, deterministic."""

from __future__ import annotations

import contextlib
import io
import json
from pathlib import Path
from typing import Any

import pytest

from sspi_model import cli
from sspi_model.explore import (
    EXPLORABLE,
    NondeterministicScenario,
    World,
    explore,
    record_schedule,
    replay_choices,
)
from sspi_model.explore.fuzz import hypothesis_test, run_drawn
from sspi_model.sanitizer import SanitizerError
from sspi_model.trace import read_trace, validate

rule = pytest.mark.rule
OVERVIEW = EXPLORABLE["overview"]


ORDERS: list[tuple[str, ...]] = []  # what two_deletes' callbacks saw, run after run


def two_deletes(world: World) -> None:
    """Two async deletes on two async contexts; the callbacks log the order they ran in."""
    server = world.process("server")
    credential = server.acquire_credentials_handle("NTLM", 2).credential
    order: list[str] = []
    contexts = []
    for name in ("first", "second"):
        context = server.initialize_security_context(credential, None, "host/x").new_context
        actx = server.create_async_context()
        server.set_async_notify_callback(actx, lambda ctx, data: order.append(data), name)
        server.delete_security_context_async(actx, context=context)
        contexts.append(actx)
    world.settle()
    ORDERS.append(tuple(order))
    for actx in contexts:
        server.free_async_context(actx)
    server.free_credentials_handle(credential)


@rule("EXP-001", "EXP-007")
def test_overview_race_found_in_every_schedule_where_completion_wins() -> None:
    report = explore(OVERVIEW.run, OVERVIEW.bound, name="overview")
    assert (report.schedules, report.clean) == (3, 1)
    [race] = report.findings
    assert (race.kind, race.rule, race.process, race.schedules) == (
        "misuse",
        "ASY-052",
        "server",
        2,
    )
    assert race.shortest == (1,)  # the call completes inline (EXP-001)
    _world, findings = replay_choices(OVERVIEW.run, (0,), OVERVIEW.bound)
    assert findings == []  # the default schedule is the sample as the demo runs it: clean


@rule("EXP-002")
def test_completion_before_the_next_api_call_is_a_choice() -> None:
    # Deferred, then completed when SspiGetAsyncCallStatus enters: the other racing schedule.
    _world, findings = replay_choices(OVERVIEW.run, (0, 1), OVERVIEW.bound)
    assert [finding.rule for finding in findings] == ["ASY-052"]


@rule("EXP-003", "EXP-005")
def test_settle_tries_every_completion_order_and_dedups_equal_states() -> None:
    ORDERS.clear()
    report = explore(two_deletes, bound=None)
    assert report.findings == () and report.errors == ()
    assert set(ORDERS) == {("first", "second"), ("second", "first")}
    # Every schedule completes both deletes; the runs are fewer than the schedules because
    # states reached twice (the same calls completed, in another order) are explored once.
    assert report.runs < report.schedules
    assert len(ORDERS) < report.schedules


@rule("EXP-004")
def test_threads_interleave_at_their_yields() -> None:
    def lost_update(world: World) -> None:
        client = world.process("client")
        credential = client.acquire_credentials_handle("NTLM", 2).credential
        shared = {"refs": 2}

        def release() -> Any:
            refs = shared["refs"]  # read ...
            yield
            shared["refs"] = refs - 1  # ... modify, write: curl#815's unlocked refcount
            if shared["refs"] == 0:
                client.free_credentials_handle(credential)

        world.run_threads(release(), release())

    report = explore(lost_update, bound=2)
    [leak] = report.findings
    assert (leak.kind, leak.rule) == ("leak", "SAN-005")
    assert 0 < leak.schedules < report.schedules  # only the interleaved schedules lose it


@rule("EXP-006")
def test_same_scenario_and_bound_give_the_same_report() -> None:
    for item in EXPLORABLE.values():
        assert explore(item.run, item.bound) == explore(item.run, item.bound)


@rule("EXP-006")
def test_a_scenario_depending_on_the_outside_is_caught() -> None:
    calls = []

    def flaky(world: World) -> None:
        calls.append(1)
        server = world.process("server", async_any_package=True)
        credential = server.acquire_credentials_handle("NTLM", 2).credential
        if len(calls) > 1:  # behaves differently on the second run
            server.acquire_credentials_handle("NTLM", 2)
        actx = server.create_async_context()
        server.set_async_notify_callback(actx, lambda ctx, data: None)
        server.free_credentials_handle_async(actx, credential=credential)
        server.get_async_call_status(actx)

    with pytest.raises(NondeterministicScenario):
        explore(flaky, bound=2)


@rule("EXP-007")
def test_bound_zero_is_the_default_schedule_and_more_bound_more_schedules() -> None:
    counts = [explore(EXPLORABLE["schannel"].run, bound).schedules for bound in (0, 1, 2, 3)]
    assert counts[0] == 1
    assert counts == sorted(counts) and counts[-1] > counts[0]


@pytest.mark.parametrize("name", sorted(EXPLORABLE))
def test_every_scenario_explores_and_only_the_two_buggy_ones_find_something(name: str) -> None:
    item = EXPLORABLE[name]
    report = explore(item.run, item.bound, name=name)
    assert report.complete and report.errors == ()
    expected = {"overview": {"ASY-052"}, "curl-cache": {"SAN-004", "SAN-005"}}
    assert {found.rule for found in report.findings} == expected.get(name, set())


@rule("ASY-052", "EXP-007")
def test_the_shortest_schedule_replays_as_a_trace_with_the_misuse() -> None:
    report = explore(OVERVIEW.run, OVERVIEW.bound)
    trace, findings, decisions = record_schedule(
        OVERVIEW.run, report.findings[0].shortest, OVERVIEW.bound
    )
    assert decisions == ["SspiAcceptSecurityContextAsync completes inline, before the call returns"]
    assert [finding.rule for finding in findings] == ["ASY-052"]
    misuse = [record for record in trace if record.get("event") == "misuse"]
    assert [record["rule"] for record in misuse] == ["ASY-052"]
    assert validate(trace).ok
    tampered = [dict(record) for record in trace]
    tampered[-1]["rule"] = "ASY-053"
    assert not validate(tampered).ok  # the replay checks the rule, not only that misuse came


def test_cli_explore_overview_reports_the_count_and_writes_a_replayable_trace(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "race.jsonl"
    assert cli.main(["explore", "overview", "--trace", str(path)]) == 1
    out = capsys.readouterr().out
    assert "misuse ASY-052 [server] in 2 of 3 schedules" in out
    assert "misuse ASY-052 in SspiGetAsyncCallStatus" in out
    assert validate(read_trace(path)).ok
    assert cli.main(["replay", str(path)]) == 0


def test_cli_explore_json_and_usage() -> None:
    assert cli.main(["explore", "schannel", "--json"]) == 0
    assert cli.main(["explore", "nope"]) == 2
    assert cli.main(["explore"]) == 2
    assert cli.main(["explore", "--list"]) == 0
    assert cli.main(["explore", "sspi_model.explore.demos:overview", "--bound", "1"]) == 1
    assert cli.main(["explore", "sspi_model.explore.demos:nothing"]) == 2
    assert cli.main(["explore", "no_such_module_here:run"]) == 2


def test_cli_explore_json_shape(capsys: pytest.CaptureFixture[str]) -> None:
    cli.main(["explore", "overview", "--json", "--bound", "1"])
    data = json.loads(capsys.readouterr().out)
    assert data["bound"] == 1 and data["schedules"] == 3
    assert data["findings"][0]["rule"] == "ASY-052"
    assert data["findings"][0]["trace"][-1].endswith("misuse ASY-052 in SspiGetAsyncCallStatus")


test_demos_clean_under_hypothesis = hypothesis_test(EXPLORABLE["httpsys"].run, max_examples=20)


def test_hypothesis_finds_the_overview_race() -> None:
    from hypothesis import given, settings
    from hypothesis import strategies as st

    @settings(max_examples=50, deadline=None, database=None)
    @given(st.data())
    def check(data: Any) -> None:
        run_drawn(OVERVIEW.run, data)

    with pytest.raises(SanitizerError, match="ASY-052"):
        check()


def test_the_shortest_race_replays_and_names_its_misuse(tmp_path: Path) -> None:
    """Issue 14: `explore overview --trace T` then `replay T` reports the misuse with its rule."""
    from sspi_model.cli import main

    trace = tmp_path / "race.jsonl"
    assert main(["explore", "overview", "--trace", str(trace)]) == 1
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert main(["replay", str(trace)]) == 0
    text = out.getvalue()
    assert "OK: the model allows all" in text
    assert "misuse ASY-052 in SspiGetAsyncCallStatus (server)" in text
