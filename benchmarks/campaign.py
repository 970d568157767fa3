"""Benchmarks of issue 13: isolation cost, --jobs, discovery, and the model's share of a
stateful example. Each timing is a ratio of two things measured in this run, alternated."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from harness import Row
from workloads import differential_run

ROOT = Path(__file__).resolve().parent.parent


def _native() -> tuple[Any, str] | None:
    try:
        from sspi_model.backends.native import NativeBackend
        from sspi_model.backends.native.discovery import LibraryNotFound, find_library

        return NativeBackend, find_library()
    except (ImportError, LibraryNotFound):
        return None


def _unavailable(name: str, unit: str, goal: str) -> list[Row]:
    note = "sspi-rs not available; pip install 'sspi-model[native]' to measure"
    return [Row(name, None, unit, goal, note)]


# -- differential_isolation_speedup, worker_reset_speedup ------------------------------------


# The modes compared, in the order of the note. "fresh": a fresh interpreter per example (the
# spare started ahead; fork=False, reuse=False), with RUST_BACKTRACE as this environment sets it
# (as every worker ran before CMP-002), "forked": a fork from the zygote per example
# (reuse=False), "reused": the default (a worker kept while its state is defined, CMP-001),
# "in-process": the ceiling (isolate=False; a call that would be undefined behaviour is not made
# but answered as a crash, since in-process it would kill the benchmark).
MODES = ("fresh", "forked", "reused", "in-process")


def _subject(mode: str) -> Any:
    from sspi_model.backends.base import BackendFailure
    from sspi_model.backends.native import NativeBackend
    from sspi_model.backends.native.ledger import HandleLedger
    from sspi_model.testing.check import DIFFERENTIAL_TIMEOUT

    if mode != "in-process":
        fork, reuse = mode != "fresh", mode == "reused"
        return NativeBackend(timeout=DIFFERENTIAL_TIMEOUT, fork=fork, reuse=reuse)

    class InProcess(NativeBackend):
        def _call(self, name: str, *args: Any) -> Any:
            if self.ledger.suspect:
                self._ledger = HandleLedger()
                raise BackendFailure("CRASH:NOT-RUN", "undefined behaviour, not run in-process")
            return super()._call(name, *args)

        def reset(self) -> None:
            self._ledger = HandleLedger()

    return InProcess(isolate=False)


def _examples_per_s(mode: str, examples: int) -> float:
    """The differential machine against sspi-rs, generate phase only, every divergence
    suppressed so the run has a fixed size (as differential_examples_per_s does)."""
    from sspi_model.testing.divergence import load_known

    before = os.environ.get("SSPI_MODEL_RUST_BACKTRACE")
    if mode == "fresh":  # the workers' RUST_BACKTRACE as it was before CMP-002
        os.environ["SSPI_MODEL_RUST_BACKTRACE"] = os.environ.get("RUST_BACKTRACE", "0")
    subject = _subject(mode)
    try:
        started, seconds = differential_run(subject, load_known("sspi-rs"), examples)
        return started / seconds
    finally:
        subject.close()
        if before is None:
            os.environ.pop("SSPI_MODEL_RUST_BACKTRACE", None)
        else:
            os.environ["SSPI_MODEL_RUST_BACKTRACE"] = before


def isolation() -> list[Row]:
    name, goal = "differential_isolation_speedup", ">= 5"
    if _native() is None:
        return _unavailable(name, "x", goal) + _unavailable("worker_reset_speedup", "x", ">= 5")
    rates: dict[str, list[float]] = {mode: [] for mode in MODES}
    for round_number in range(4):
        for mode in MODES if round_number % 2 == 0 else MODES[::-1]:
            rates[mode].append(_examples_per_s(mode, 80))
    ratios = sorted(a / b for a, b in zip(rates["reused"], rates["fresh"], strict=True))
    median = (ratios[1] + ratios[2]) / 2
    ceiling = sorted(a / b for a, b in zip(rates["reused"], rates["in-process"], strict=True))
    note = (
        "differential machine vs sspi-rs, isolation on, 80 examples of up to 20 steps per run, "
        "4 runs of each mode alternated, examples/s: a fresh interpreter per example (the "
        f"spare started ahead, RUST_BACKTRACE={os.environ.get('RUST_BACKTRACE', 'unset')} as "
        f"before CMP-002) {_rates(rates['fresh'])}; forked from the zygote per example "
        f"{_rates(rates['forked'])}; a worker reused while its state is defined (CMP-001) "
        f"{_rates(rates['reused'])}; the ceiling, in-process without isolation (undefined "
        f"calls not run) {_rates(rates['in-process'])}. Value: reused / fresh, ratios "
        f"{_spread(ratios)}; reused / in-process {_spread(ceiling)}"
    )
    return [Row(name, round(median, 2), "x", goal, note), _reset_cost()]


def _rates(values: list[float]) -> str:
    return "/".join(f"{v:.1f}" for v in values)


def _spread(values: list[float]) -> str:
    return f"{min(values):.2f}-{max(values):.2f}"


def _reset_cost() -> Row:
    """reset() and the first call after it: a spawned worker against a forked one."""
    from sspi_model.backends.native import NativeBackend

    def per_reset(fork: bool) -> float:
        backend = NativeBackend(fork=fork, reuse=False)  # a reset that retires the worker
        try:
            backend.query_security_package_info("NTLM")
            begin = time.perf_counter()
            for _ in range(15):
                backend.reset()
                backend.query_security_package_info("NTLM")
            return (time.perf_counter() - begin) / 15
        finally:
            backend.close()

    costs: dict[bool, list[float]] = {True: [], False: []}
    for round_number in range(4):
        for fork in (False, True) if round_number % 2 == 0 else (True, False):
            costs[fork].append(per_reset(fork))
    ratios = sorted(b / a for a, b in zip(costs[True], costs[False], strict=True))
    median = (ratios[1] + ratios[2]) / 2
    spawn_ms = sorted(costs[False])[1] * 1000
    fork_ms = sorted(costs[True])[1] * 1000
    note = (
        f"reset() + QuerySecurityPackageInfoW: spawned worker {spawn_ms:.1f} ms, forked "
        f"{fork_ms:.2f} ms (15 resets per run, 4 runs each alternated); ratios {_spread(ratios)}"
    )
    return Row("worker_reset_speedup", round(median, 1), "x", ">= 5", note)


# -- jobs2_speedup ----------------------------------------------------------------------------


def jobs() -> list[Row]:
    name, goal = "jobs2_speedup", ">= 1.7"
    if _native() is None:
        return _unavailable(name, "x", goal)
    from sspi_model.testing.check import run_check

    def rate(count: int) -> float:
        begin = time.perf_counter()
        report = run_check(["sspi-rs"], 100, 0, lambda line: None, jobs=count, fresh=True)
        backend = report.backends[0]
        return backend.rounds * backend.examples / (time.perf_counter() - begin)

    rates: dict[int, list[float]] = {1: [], 2: []}
    for round_number in range(2):
        for count in (1, 2) if round_number % 2 == 0 else (2, 1):
            rates[count].append(rate(count))
    ratios = [b / a for a, b in zip(rates[1], rates[2], strict=True)]
    note = (
        "check --backend sspi-rs --fresh (100 examples per round, known divergences only; "
        "rounds until CMP-005 saturation), wall clock including the jobs' start: --jobs 1 "
        f"{_rates(rates[1])} examples/s, --jobs 2 {_rates(rates[2])}; 2 runs each alternated, "
        f"value the mean ratio ({_spread(ratios)})"
    )
    return [Row(name, round(sum(ratios) / len(ratios), 2), "x", goal, note)]


# -- discovery_speedup --------------------------------------------------------------------------


def discovery() -> list[Row]:
    """The same discovery campaign (seed 0, 100 examples per round, the campaign rules of now:
    CMP-004 kinds, CMP-005 saturation) with workers as before (a fresh interpreter per example,
    RUST_BACKTRACE as this environment sets it) and as now (reused workers, --jobs 1 and 2)."""
    name, goal = "discovery_speedup", ">= 4"
    native = _native()
    if native is None:
        return _unavailable(name, "x", goal)
    backend_class = native[0]
    from sspi_model.testing.check import DIFFERENTIAL_TIMEOUT, check_backend, run_check

    def kinds(divergences: Any) -> set[str]:
        return {" ".join(d.signature) for d in divergences}

    saved = os.environ.get("SSPI_MODEL_RUST_BACKTRACE")
    os.environ["SSPI_MODEL_RUST_BACKTRACE"] = os.environ.get("RUST_BACKTRACE", "0")
    try:
        begin = time.perf_counter()
        before = check_backend(
            "sspi-rs",
            lambda: backend_class(timeout=DIFFERENTIAL_TIMEOUT, fork=False, reuse=False),
            examples=100, seed_value=0, ignore_known=True,
        )
        before_s = time.perf_counter() - begin
    finally:
        if saved is None:
            os.environ.pop("SSPI_MODEL_RUST_BACKTRACE", None)
        else:
            os.environ["SSPI_MODEL_RUST_BACKTRACE"] = saved
    results: dict[int, tuple[float, set[str], int]] = {}
    for count in (1, 2):
        begin = time.perf_counter()
        report = run_check(["sspi-rs"], 100, 0, lambda line: None, ignore_known=True,
                           jobs=count, fresh=True)
        backend = report.backends[0]
        results[count] = (time.perf_counter() - begin, kinds(backend.divergences),
                          backend.rounds)
    old = kinds(before.divergences)
    (one_s, one, one_rounds), (two_s, two, two_rounds) = results[1], results[2]
    note = (
        "check --backend sspi-rs --ignore-known --fresh, seed 0, 100 examples per round, "
        "CMP-004 kinds and CMP-005 saturation in every run: workers as before (a fresh "
        f"interpreter per example) {before_s:.0f} s, {before.rounds} rounds, {len(old)} kinds; "
        f"reused workers --jobs 1 {one_s:.0f} s, {one_rounds} rounds, {len(one)} kinds; "
        f"--jobs 2 {two_s:.0f} s, {two_rounds} rounds, {len(two)} kinds. Kinds equal: before "
        f"and --jobs 1 {old == one}, --jobs 1 and --jobs 2 {one == two}; only before: "
        f"{sorted(old - one) or 'none'}; only --jobs 1: {sorted(one - old) or 'none'}; only "
        f"--jobs 2: {sorted(two - one) or 'none'}; only --jobs 1 (not 2): "
        f"{sorted(one - two) or 'none'}. Value: before / --jobs 2. Run once each, in this "
        "order, not alternated"
    )
    return [Row(name, round(before_s / two_s, 2), "x", goal, note)]


# -- model_share_sync_stateful ------------------------------------------------------------------


def model_share() -> list[Row]:
    """The sync stateful machine of tests/test_sync_stateful.py; the time inside Sspi's public
    methods (outermost calls only) over the whole run."""
    import sys

    from hypothesis import seed

    from sspi_model.sspi import Sspi

    sys.path.insert(0, str(ROOT / "tests"))
    from conftest import build_sspi  # the tests' accounts
    from test_sync_stateful import SyncMachine

    inside = [0.0]
    depth = [0]
    originals: dict[str, Callable[..., Any]] = {}

    def timed(method: Callable[..., Any]) -> Callable[..., Any]:
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            if depth[0]:
                return method(*args, **kwargs)
            depth[0] += 1
            begin = time.perf_counter()
            try:
                return method(*args, **kwargs)
            finally:
                inside[0] += time.perf_counter() - begin
                depth[0] -= 1

        return wrapper

    for attribute, value in vars(Sspi).items():
        if callable(value) and not attribute.startswith("_"):
            originals[attribute] = value
            setattr(Sspi, attribute, timed(value))
    shares = []
    try:
        for round_number in range(3):
            inside[0] = 0.0
            begin = time.perf_counter()
            seed(round_number)(_run(SyncMachine, build_sspi))()
            shares.append(inside[0] / (time.perf_counter() - begin))
    finally:
        for attribute, value in originals.items():
            setattr(Sspi, attribute, value)
    share = sorted(shares)[1] * 100
    note = (
        "tests/test_sync_stateful.py's SyncMachine, 100 examples of up to 40 steps, generate "
        "phase, 3 seeds: time inside Sspi's public methods (outermost call, perf_counter "
        f"around each) over the run's time: {', '.join(f'{s * 100:.0f}%' for s in shares)}; "
        "the rest is Hypothesis (drawing, rule selection, bundles) and the machine's own checks"
    )
    return [Row("model_share_sync_stateful", round(share, 1), "%", "<= 30", note)]


def _run(machine: Any, factory: Callable[..., Any]) -> Callable[[], None]:
    from hypothesis import HealthCheck, Phase, settings
    from hypothesis.stateful import get_state_machine_test

    timed = type("Timed", (machine,), {"__init__": lambda self: machine.__init__(self, factory)})
    return get_state_machine_test(  # type: ignore[no-any-return]
        timed,
        settings=settings(
            max_examples=100, stateful_step_count=40, deadline=None, database=None,
            suppress_health_check=list(HealthCheck), phases=(Phase.generate,),
        ),
    )
