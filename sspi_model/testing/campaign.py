"""A campaign on every core: N check jobs with distinct seeds over one example database.

Job 0 runs in this process (CMP-003); each other job is a process of its own (spawned, so it
starts from a clean interpreter; a native backend in it has its own zygote), all running
`run_check` with seed `seed + i * SEED_STRIDE` over
the shared database: a directory, Redis, or (with --fresh) a temporary directory removed at
the end. What one job finds and saves is replayed first by every round another job starts
afterwards, and each job suppresses what the others have found so far (CMP-006), so no two
jobs shrink the same finding. The reports are merged into one of the same shape as a single
job's: per backend, the rounds add up, each divergence appears once (by signature, the shortest
reproducer kept, with every job's outcomes of its kind) and each rule's verdict is the worst
seen (fail, then pass, then the rest).
"""

from __future__ import annotations

import multiprocessing
import os
import shutil
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from typing import Any

import attrs

from sspi_model.testing.conformance import FAIL, FAIL_KNOWN, PASS, RuleVerdict
from sspi_model.testing.divergence import Divergence, with_outcomes

SEED_STRIDE = 100_000  # a job's rounds use seed + 1, seed + 2, ...: far apart, never shared


def job_count(jobs: int | None) -> int:
    """`jobs`, or when it is None $SSPI_MODEL_JOBS, or the number of cores this process may run
    on."""
    from_environment = os.environ.get("SSPI_MODEL_JOBS", "").strip()
    if jobs is None and from_environment:
        try:
            jobs = int(from_environment)
        except ValueError:
            raise ValueError(f"SSPI_MODEL_JOBS is not a number: {from_environment!r}") from None
    if jobs is not None:
        if jobs < 1:
            raise ValueError(f"--jobs must be at least 1, got {jobs}")
        return jobs
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


# check.py's run_check calls run_jobs and hands itself over (`run_check`), so this module does
# not import check.py; reports are CheckReport and BackendReport values, rebuilt with evolve.


def run_jobs(
    run_check: Callable[..., Any],
    backends: list[str],
    examples: int,
    seed: int,
    progress: Callable[[str], None],
    *,
    ignore_known: bool,
    max_rounds: int,
    jobs: int,
    database: str | None,
    fresh: bool,
    time_budget: float | None,
    known_files: list[str],
    saturation: int,
) -> Any:
    scratch = tempfile.mkdtemp(prefix="sspi-model-campaign-") if fresh else None
    shared = scratch if scratch is not None else database
    progress(f"campaign: {jobs} jobs, seeds {seed}, {seed + SEED_STRIDE}, ...; "
             f"example database: {shared or 'the default one'}")
    started = time.monotonic()
    context = multiprocessing.get_context("spawn")
    # The jobs' progress lines come back here and go through this run's `progress`, which
    # decides what a terminal, a pipe or --json shows (CLI-015). The queue reaches each job
    # when it starts (initargs), so no manager process has to be started for it.
    lines = context.Queue()
    relay = threading.Thread(target=_relay, args=(lines, progress), daemon=True)
    relay.start()
    # CMP-006: the jobs of this run share their findings under this id (not a later run's).
    campaign_id = uuid.uuid4().hex
    options = (ignore_known, max_rounds, shared, time_budget, known_files, saturation,
               campaign_id)
    try:
        with ProcessPoolExecutor(
            max_workers=jobs - 1, mp_context=context, initializer=_job_started, initargs=(lines,)
        ) as pool:
            futures = [
                pool.submit(_job, run_check, backends, examples, seed + number * SEED_STRIDE,
                            *options)
                for number in range(1, jobs)
            ]
            # CMP-003: job 0 runs here while the others start: this process has imported
            # everything already, and one fewer process competes for the cores.
            reports = [_run_job(run_check, progress, backends, examples, seed, *options)]
            reports += [future.result() for future in futures]
    finally:
        lines.put(None)
        relay.join(timeout=5)
        lines.close()
        if scratch is not None:
            shutil.rmtree(scratch, ignore_errors=True)
    return merge(reports, seed, time.monotonic() - started)


def _relay(lines: Any, progress: Callable[[str], None]) -> None:
    while (line := lines.get()) is not None:
        progress(line)


_PROGRESS: list[Any] = []  # in a job process: the queue to the parent's progress


def _job_started(lines: Any) -> None:
    _PROGRESS[:] = [lines]


def _job(
    run_check: Callable[..., Any],
    backends: list[str],
    examples: int,
    seed: int,
    *options: Any,
) -> Any:
    def progress(line: str) -> None:
        _PROGRESS[0].put(line)  # to the parent's progress (run_jobs)

    return _run_job(run_check, progress, backends, examples, seed, *options)


def _run_job(
    run_check: Callable[..., Any],
    progress: Callable[[str], None],
    backends: list[str],
    examples: int,
    seed: int,
    ignore_known: bool,
    max_rounds: int,
    database: str | None,
    time_budget: float | None,
    known_files: list[str],
    saturation: int,
    campaign_id: str,
) -> Any:
    return run_check(backends, examples, seed, progress, ignore_known=ignore_known,
                     max_rounds=max_rounds, jobs=1, database=database, fresh=False,
                     time_budget=time_budget, known_files=known_files, saturation=saturation,
                     campaign_id=campaign_id)


def merge(reports: Sequence[Any], seed: int, seconds: float) -> Any:
    """One CheckReport from several jobs' CheckReports over the same backends."""
    names: list[str] = []
    by_name: dict[str, list[Any]] = {}
    for report in reports:
        for backend in report.backends:
            if backend.backend not in by_name:
                names.append(backend.backend)
            by_name.setdefault(backend.backend, []).append(backend)
    backends = tuple(_merge_backend(by_name[n], seconds) for n in names)
    return attrs.evolve(reports[0], backends=backends, seed=seed)


def _merge_backend(parts: list[Any], seconds: float) -> Any:
    best: dict[tuple[str, ...], Divergence] = {}
    outcomes: dict[tuple[str, ...], list[str]] = {}
    for part in parts:
        for divergence in part.divergences:
            current = best.get(divergence.signature)
            if current is None or len(divergence.reproducer) < len(current.reproducer):
                best[divergence.signature] = divergence
            outcomes.setdefault(divergence.signature, []).extend(
                divergence.outcomes or (divergence.observed,)
            )
    for kind, divergence in best.items():  # every job's outcomes of the kind (CMP-004)
        best[kind] = with_outcomes(divergence, outcomes[kind])
    # New divergences first, as one job lists them, then the known ones.
    ordered = sorted(best.values(), key=lambda d: d.known is not None)
    return attrs.evolve(
        parts[0],  # examples: per round, the same in every job
        rounds=sum(p.rounds for p in parts),
        seconds=seconds,
        divergences=tuple(ordered),
        error=next((p.error for p in parts if p.error), ""),
        rules=_merge_rules([p.rules for p in parts]),
    )


_RANK = {FAIL: 0, FAIL_KNOWN: 1, PASS: 2}  # worst first


def _merge_rules(parts: list[tuple[RuleVerdict, ...]]) -> tuple[RuleVerdict, ...]:
    merged: dict[str, RuleVerdict] = {}
    order: list[str] = []
    for rows in parts:
        for row in rows:
            current = merged.get(row.rule.id)
            if current is None:
                order.append(row.rule.id)
                merged[row.rule.id] = row
            else:
                merged[row.rule.id] = _worse(current, row)
    return tuple(merged[rule] for rule in order)


def _worse(a: RuleVerdict, b: RuleVerdict) -> RuleVerdict:
    rank_a, rank_b = _RANK.get(a.verdict, 3), _RANK.get(b.verdict, 3)
    if rank_a != rank_b:
        return a if rank_a < rank_b else b
    if a.verdict == PASS:
        return attrs.evolve(a, count=a.count + b.count)
    if a.verdict == FAIL and a.divergence and b.divergence:
        shorter = len(b.divergence.reproducer) < len(a.divergence.reproducer)
        return b if shorter else a
    return a
