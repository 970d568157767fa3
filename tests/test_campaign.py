"""Campaigns: the shared example database, several jobs, the merged report, the time budget."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from hypothesis.database import InMemoryExampleDatabase

from sspi_model.testing.campaign import job_count, merge
from sspi_model.testing.check import BackendReport, CheckReport, run_check
from sspi_model.testing.database import CampaignDatabase, default_database_path, open_database
from sspi_model.testing.divergence import Divergence

BROKEN = "toy_backends:BrokenBackend"  # two divergences, found in a few seconds


def _check(database: Path | None, lines: list[str], **options: object) -> CheckReport:
    return run_check(
        [BROKEN], 30, 0, lines.append, jobs=1, database=None if database is None else
        str(database), fresh=database is None, **options,  # type: ignore[arg-type]
    )


def _signatures(report: CheckReport) -> set[tuple[str, ...]]:
    return {d.signature for b in report.backends for d in b.divergences}


def test_a_second_run_replays_the_first_runs_failures_first(tmp_path: Path) -> None:
    first_lines: list[str] = []
    first = _check(tmp_path / "db", first_lines)
    found = len(first.backends[0].new)
    assert found >= 1
    assert not any("replayed first" in line for line in first_lines)
    second_lines: list[str] = []
    second = _check(tmp_path / "db", second_lines)
    assert _signatures(second) >= _signatures(first)
    # Every failure is still in the database after the second run: round 2 did not delete the
    # one round 1 found (it passes in round 2 only because the campaign suppresses it).
    assert f"[broken-toy] replayed first: {found} saved example(s) from the database" in (
        second_lines
    )
    third_lines: list[str] = []
    _check(tmp_path / "db", third_lines)
    kept = len(second.backends[0].new)
    assert f"[broken-toy] replayed first: {kept} saved example(s) from the database" in (
        third_lines
    )


def test_fresh_keeps_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SSPI_MODEL_DATABASE", str(tmp_path / "default"))
    lines: list[str] = []
    _check(None, lines)
    _check(None, lines)
    assert not any("replayed first" in line for line in lines)
    assert not (tmp_path / "default").exists()


def test_the_default_database_is_under_the_cache(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SSPI_MODEL_DATABASE", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", "/somewhere")
    assert default_database_path() == Path("/somewhere/sspi-model/examples")


def test_backends_and_modes_do_not_share_entries(tmp_path: Path) -> None:
    inner = open_database(str(tmp_path))
    check = CampaignDatabase(inner, "sspi-rs/documented/check")
    discovery = CampaignDatabase(inner, "sspi-rs/documented/discovery")
    check.save(b"key", b"value")
    assert list(check.fetch(b"key")) == [b"value"]
    assert list(discovery.fetch(b"key")) == []


def test_from_round_two_earlier_failures_are_not_deleted(tmp_path: Path) -> None:
    database = CampaignDatabase(open_database(str(tmp_path)), "x")
    database.start_round(1)
    database.save(b"k", b"found-in-round-1")
    database.save(b"k", b"stale")
    database.delete(b"k", b"stale")  # round 1: a saved example that no longer fails goes
    database.start_round(2)
    database.delete(b"k", b"found-in-round-1")  # suppressed now, but still a failure
    database.save(b"k", b"shrink-step")
    database.move(b"k", b"k.secondary", b"shrink-step")  # this round's own shrinking
    assert set(database.fetch(b"k")) == {b"found-in-round-1"}


def _report(backend: str, *divergences: Divergence, rounds: int = 1) -> CheckReport:
    return CheckReport((BackendReport(backend, 30, rounds, 1.0, divergences),), 0)


def _divergence(
    observed: str, steps: int, known: str | None = None, situation: str = "context=client-partial"
) -> Divergence:
    return Divergence(
        "DeleteSecurityContext", "ctx1", situation, "status", "SEC_E_OK", observed,
        ("DEL-003",), tuple(f"step{i}" for i in range(steps)), known=known,
    )


def test_merged_reports_keep_each_divergence_once_with_the_shortest_reproducer() -> None:
    merged = merge(
        [
            _report("b", _divergence("SEC_E_INVALID_HANDLE", 5), _divergence("HANG", 2, "k1")),
            _report("b", _divergence("SEC_E_INVALID_HANDLE", 3), rounds=2),
        ],
        seed=7,
        seconds=2.5,
    )
    (backend,) = merged.backends
    assert [(d.observed, len(d.reproducer)) for d in backend.divergences] == [
        ("SEC_E_INVALID_HANDLE", 3),
        ("HANG", 2),
    ]
    assert (backend.rounds, backend.examples, backend.seconds, merged.seed) == (3, 30, 2.5, 7)
    assert merged.new_divergences == 1


@pytest.mark.rule("CMP-004")
def test_undefined_behaviour_is_one_kind_and_the_report_lists_every_outcome() -> None:
    retired = "context=retired"
    crash = _divergence("CRASH:SIGSEGV", 4, situation=retired)
    hang = _divergence("HANG", 2, situation=retired + ",attribute=SECPKG_ATTR_SIZES")
    garbage = _divergence("SEC_E_OUT_OF_SEQUENCE", 3, situation="credential=live," + retired)
    assert crash.signature == hang.signature == garbage.signature
    assert crash.signature[-1] == "UNDEFINED-BEHAVIOUR"
    # A defined situation keeps its outcome classes apart.
    assert _divergence("HANG", 1).signature != _divergence("SEC_E_OK", 1).signature
    merged = merge([_report("b", crash, hang), _report("b", garbage)], seed=0, seconds=1.0)
    (kind,) = merged.backends[0].divergences
    assert kind.observed == "HANG" and kind.outcomes == ("HANG", "CRASH:SIGSEGV",
                                                         "SEC_E_OUT_OF_SEQUENCE")
    text = merged.render("text")
    assert "observed HANG (also seen: CRASH:SIGSEGV, SEC_E_OUT_OF_SEQUENCE)" in text
    assert "CRASH:SIGSEGV" in merged.render("md")
    assert merged.to_json()["divergences"][0]["outcomes"] == list(kind.outcomes)


def test_two_jobs_find_what_one_finds(tmp_path: Path) -> None:
    lines: list[str] = []
    one = _check(tmp_path / "one", lines)
    two = run_check([BROKEN], 30, 0, lines.append, jobs=2, database=str(tmp_path / "two"),
                    fresh=False)
    # Which of the two divergences a round of 30 examples reaches varies from process to
    # process (hash seeds); the NULL-handle one, which every first round finds, is in both.
    for report in (one, two):
        observed = {d.observed for d in report.backends[0].divergences}
        assert "SEC_E_INVALID_PARAMETER" in observed
    divergences = two.backends[0].divergences
    assert len({d.signature for d in divergences}) == len(divergences)  # each once
    assert two.backends[0].rounds >= 2 * 2  # each job's rounds, added up
    assert any(line.startswith("campaign: 2 jobs") for line in lines)


def test_a_time_budget_runs_rounds_until_it_is_spent() -> None:
    lines: list[str] = []
    started = time.monotonic()
    report = run_check(["model"], 10, 0, lines.append, fresh=True, time_budget=3.0)
    assert time.monotonic() - started >= 3.0
    assert report.backends[0].rounds > 1  # it did not stop at the first round finding nothing
    assert any("of the time budget left" in line for line in lines)


def test_job_count_defaults_to_the_cores() -> None:
    assert job_count(None) >= 1
    assert job_count(3) == 3
    with pytest.raises(ValueError, match="at least 1"):
        job_count(0)


def test_the_check_command_passes_the_campaign_options(monkeypatch: pytest.MonkeyPatch) -> None:
    import argparse

    from sspi_model import cli

    seen: dict[str, object] = {}

    def run_check(*args: object, **options: object) -> CheckReport:
        seen.update(options)
        return CheckReport((), 0)

    monkeypatch.setattr("sspi_model.testing.check.run_check", run_check)
    code = cli.main(["check", "--backend", "model", "--jobs", "3", "--database", "/tmp/x",
                     "--fresh", "--time-budget", "1h30m"])
    assert code == 0
    assert seen == {"ignore_known": False, "jobs": 3, "database": "/tmp/x", "fresh": True,
                    "time_budget": 5400.0, "known_files": []}
    assert cli._duration("90s") == 90.0 and cli._duration("10m") == 600.0
    with pytest.raises(argparse.ArgumentTypeError):
        cli._duration("soon")


@pytest.mark.rule("CLI-015")
def test_jobs_report_their_progress_through_the_parent(
    capfd: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """With --jobs 2 off a terminal, the jobs' progress is as quiet as one job's: their lines
    come back to the parent's progress, which writes only the notices (CLI-015)."""
    from sspi_model import cli

    code = cli.main(["check", "--backend", "model", "--jobs", "2", "--examples", "5",
                     "--database", str(tmp_path / "db")])
    err = capfd.readouterr().err  # the file descriptor: what the job processes wrote too
    assert code == 0
    assert "[job" not in err and "round 1" not in err


@pytest.mark.rule("CMP-003")
def test_job_zero_runs_here_and_every_job_reports_through_this_progress(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import threading

    from sspi_model.testing import check

    here: list[int] = []
    original = check.check_backend

    def recorded(*args: object, **kwargs: object) -> BackendReport:
        here.append(kwargs["seed_value"])  # type: ignore[arg-type]
        return original(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(check, "check_backend", recorded)  # patched in this process only
    lines: list[str] = []
    lock = threading.Lock()

    def progress(line: str) -> None:
        with lock:
            lines.append(line)

    report = run_check(["model"], 5, 7, progress, jobs=2, fresh=True)
    assert here == [7]  # job 0, seed 7, ran in this process; job 1 (seed 100007) elsewhere
    # Each job: SATURATION rounds without a kind (CMP-005), added up.
    assert report.backends[0].rounds == 2 * check.SATURATION and not report.backends[0].error
    checking = [line for line in lines if "checking against the model" in line]
    assert len(checking) == 2, lines  # each job's own progress came back


@pytest.mark.rule("CMP-005")
def test_a_campaign_ends_after_saturation_rounds_without_a_new_kind() -> None:
    from sspi_model.backends.model import ModelBackend
    from sspi_model.testing.check import check_backend

    for saturation in (1, 3):  # the model against itself: no kind ever appears
        report = check_backend("model", ModelBackend, examples=5, saturation=saturation)
        assert report.rounds == saturation
    broken = run_check([BROKEN], 30, 0, lambda line: None, saturation=2)
    (backend,) = broken.backends
    # Each round that recorded a divergence started the count again.
    assert backend.rounds >= len(backend.new) + 2 and backend.new


@pytest.mark.rule("CMP-006")
def test_the_jobs_of_one_campaign_share_their_findings_and_no_one_else() -> None:
    inner = InMemoryExampleDatabase()
    first = CampaignDatabase(inner, "b/documented/check", campaign="run1")
    second = CampaignDatabase(inner, "b/documented/check", campaign="run1")
    later = CampaignDatabase(inner, "b/documented/check", campaign="run2")
    alone = CampaignDatabase(inner, "b/documented/check")
    first.share_finding(("DeleteSecurityContext", "context=retired", "status", "SEC_E_OK", "X"))
    alone.share_finding(("ignored",))
    assert second.shared_findings() == {
        ("DeleteSecurityContext", "context=retired", "status", "SEC_E_OK", "X")
    }
    assert later.shared_findings() == alone.shared_findings() == set()
    assert not any(key.startswith(b"findings") for key in _keys(inner))  # under the prefix


def _keys(database: InMemoryExampleDatabase) -> list[bytes]:
    return list(database.data)
