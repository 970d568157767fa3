"""`sspi-model check`: a differential campaign of a backend against the model, and its report.

A campaign runs the differential machine in rounds. Each round ends at the first divergence
that is neither known nor found earlier in the campaign; Hypothesis shrinks the sequence
before it is recorded, and the next round suppresses it and searches on. The campaign ends
when `saturation` rounds of `examples` examples in a row show no kind of divergence (known or
new) not seen before (CMP-005), or after `max_rounds`.
"""

from __future__ import annotations

import importlib
import json
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

import attrs
from hypothesis import HealthCheck, Phase, seed, settings
from hypothesis.database import ExampleDatabase, InMemoryExampleDatabase
from hypothesis.errors import FlakyFailure, FlakyStrategyDefinition
from hypothesis.reporting import with_reporter
from hypothesis.stateful import get_state_machine_test

from sspi_model.backends.base import Backend, BackendFailure
from sspi_model.backends.model import ModelBackend
from sspi_model.constants import CredentialUse, SecPkgAttr
from sspi_model.handles import SecHandle
from sspi_model.testing.campaign import job_count, run_jobs
from sspi_model.testing.conformance import RuleTally, RuleVerdict, render, verdicts
from sspi_model.testing.database import CampaignDatabase, open_database
from sspi_model.testing.differential import ACCOUNTS, DivergenceFound, machine_for
from sspi_model.testing.divergence import Divergence, KnownDivergence, known_for, with_outcomes
from sspi_model.testing.guard import guarded

BUILTIN_BACKENDS = ("model", "sspi-rs", "secur32", "wine", "agent:COMMAND")


class BackendUnavailable(Exception):
    """The backend cannot run here (library missing, wrong platform)."""


def backend_factory(spec: str) -> tuple[str, Callable[[], Backend]]:
    """(name, factory) for a built-in name or MODULE:FACTORY."""
    if spec == "model":
        return "model", lambda: ModelBackend(accounts=ACCOUNTS)
    if spec in ("sspi-rs", "secur32", "native"):
        try:
            from sspi_model.backends.native import LibraryNotFound, NativeBackend
        except ImportError as error:  # pragma: no cover - the native package is part of us
            raise BackendUnavailable(str(error)) from error
        try:
            probe = NativeBackend(isolate=True)
        except LibraryNotFound as error:
            raise BackendUnavailable(str(error)) from error
        actual = probe.capabilities.name
        probe.close()
        if spec == "native":
            spec = actual
        elif actual != spec:
            raise BackendUnavailable(f"{spec} is not available here (found {actual})")
        return spec, lambda: NativeBackend(timeout=DIFFERENTIAL_TIMEOUT)
    if spec == "wine" or spec.startswith("agent:"):
        return _agent_factory(spec)
    module_name, sep, attribute = spec.partition(":")
    if not sep or not module_name or not attribute:
        raise ValueError(
            f"unknown backend {spec!r}; accepted: {', '.join(BUILTIN_BACKENDS)} or MODULE:FACTORY"
        )
    try:
        factory = getattr(importlib.import_module(module_name), attribute)
    except (ImportError, AttributeError) as error:
        raise ValueError(f"cannot load backend {spec!r}: {error}") from error
    except Exception as error:  # the module itself fails: name it and what it raised
        raise ValueError(
            f"cannot load backend {spec!r}: importing {module_name} raised "
            f"{type(error).__name__}: {error}"
        ) from error
    return attribute, factory


def _agent_factory(spec: str) -> tuple[str, Callable[[], Backend]]:
    """`wine` (the agent under Wine) or `agent:COMMAND` (any command starting an agent)."""
    from sspi_model.backends.agent import AgentBackend, AgentUnavailable
    from sspi_model.backends.wine import WINE_TIMEOUT, wine_backend

    command = spec.removeprefix("agent:")

    def make() -> Backend:
        if spec == "wine":
            return wine_backend()
        return AgentBackend(command, timeout=WINE_TIMEOUT)

    try:
        probe = make()  # fails here, once, naming what is missing; warms a spare agent
    except (AgentUnavailable, ValueError) as error:
        raise BackendUnavailable(str(error)) from error
    probe.close()
    return probe.capabilities.name, make


# CMP-005: the rounds in a row that must show no new kind before a campaign ends. One round
# stopped before the rare kinds (each run found a different subset, issue 13).
SATURATION = 3

# A native call answers in well under a millisecond; half a second is a hang, and keeps the
# cost of shrinking a hanging sequence bounded.
DIFFERENTIAL_TIMEOUT = 0.5


@attrs.frozen
class BackendReport:
    backend: str
    examples: int
    rounds: int
    seconds: float
    divergences: tuple[Divergence, ...]  # one per signature, new ones shrunk by Hypothesis
    error: str = ""
    rules: tuple[RuleVerdict, ...] = ()  # the per-rule conformance verdicts
    spec: str = ""  # what --backend named (a built-in name or MODULE:FACTORY)
    known_files: tuple[str, ...] = ()  # the --known files the campaign used
    interrupted: bool = False  # Ctrl-C: what was found before it (CLI-011)

    @property
    def new(self) -> tuple[Divergence, ...]:
        return tuple(d for d in self.divergences if d.known is None)

    def python(self, divergence: Divergence) -> str:
        """A program reproducing a new divergence against this backend (CLI-006)."""
        earlier = self.divergences[: self.divergences.index(divergence)]
        return reproducer_program(
            self.spec or self.backend,
            divergence,
            suppressed=[d.signature for d in earlier if d.known is None],
            known_files=self.known_files,
        )


@attrs.frozen
class CheckReport:
    backends: tuple[BackendReport, ...]
    seed: int

    @property
    def interrupted(self) -> bool:
        return any(b.interrupted for b in self.backends)

    @property
    def new_divergences(self) -> int:
        return sum(len(b.new) for b in self.backends)

    def to_json(self) -> dict[str, Any]:
        def entry(b: BackendReport, d: Divergence) -> dict[str, Any]:
            python = b.python(d) if d.known is None else ""
            return {**d.to_json(), "python": python}

        return {
            "seed": self.seed,
            "new_divergences": self.new_divergences,
            "interrupted": self.interrupted,
            "ran": [b.backend for b in self.backends if not b.error],
            "skipped": {b.backend: b.error for b in self.backends if b.error},
            "backends": [
                {
                    "backend": b.backend,
                    "spec": b.spec or b.backend,
                    "known_files": list(b.known_files),
                    "examples": b.examples,
                    "rounds": b.rounds,
                    "seconds": round(b.seconds, 2),
                    "error": b.error,
                    "divergences": [entry(b, d) for d in b.divergences],
                }
                for b in self.backends
            ],
            # `sspi-model reproduce REPORT.json N` takes the Nth entry of this list (from 1).
            "divergences": [
                {"number": number, "backend": b.backend, "spec": b.spec or b.backend, **data}
                for number, (b, data) in enumerate(
                    ((b, entry(b, d)) for b in self.backends for d in b.divergences), 1
                )
            ],
        }

    def render_rules(self, fmt: str) -> str:
        """The per-rule conformance report of every checked backend."""
        parts = [render(b.backend, list(b.rules), fmt) for b in self.backends if b.rules]
        if fmt == "json":
            return "[" + ",\n".join(parts) + "]"
        return "\n\n".join(parts)

    def render(self, fmt: str) -> str:
        if fmt == "json":
            return json.dumps(self.to_json(), indent=2)
        if fmt == "md":
            return _markdown(self)
        if fmt == "text":
            return _text(self)
        raise ValueError(f"unknown report format {fmt!r}; accepted: text, json, md")


def check_backend(
    name: str,
    factory: Callable[[], Backend],
    *,
    examples: int = 200,
    seed_value: int = 0,
    max_rounds: int = 60,
    steps: int = 20,
    progress: Callable[[str], None] = lambda line: None,
    ignore_known: bool = False,
    model: Backend | None = None,
    profile: str = "documented",
    known_files: Sequence[str | Path] = (),
    spec: str = "",
    database: ExampleDatabase | None = None,
    deadline: float | None = None,
    saturation: int = SATURATION,
    campaign_id: str = "",
) -> BackendReport:
    """A campaign against one backend; `model` (default: the model in `profile`) is the oracle.
    The report carries the backend's `capabilities.name` (one name everywhere, CLI-004).
    `database` (default: a fresh one per round) is replayed first and keeps what is found (see
    database.py); with a `deadline` (time.monotonic()) rounds go on until it passes. Jobs of one
    campaign (`campaign_id`) share what they found through the database (CMP-006)."""
    started = time.monotonic()
    try:
        subject = make_backend(name, factory)
    except BackendFailure as failure:  # CLI-001: a factory that raises is the backend failing
        found = Divergence(
            "(backend factory)", name, "construction", "status", "a Backend", failure.outcome,
            reproducer=(f"{name}()",),
        )
        return BackendReport(
            name, examples, 0, time.monotonic() - started, (found,), spec=spec or name
        )
    name = subject.capabilities.name
    mode = "discovery" if ignore_known else "check"
    shared = None if database is None else CampaignDatabase(
        database, f"{name}/{profile}/{mode}", campaign=campaign_id
    )
    campaign = _Campaign(
        name=name,
        subject=subject,
        model=model if model is not None else ModelBackend(accounts=ACCOUNTS, profile=profile),
        known=() if ignore_known else known_for(subject, name, known_files),
        examples=examples,
        steps=steps,
        progress=progress,
        database=shared,
        deadline=deadline,
        saturation=max(1, saturation),
    )
    interrupted = False
    try:
        rounds = campaign.run(seed_value, max_rounds)
    except KeyboardInterrupt:  # CLI-011: keep what the campaign found so far
        interrupted, rounds = True, len(campaign.recorded) + 1
        progress(f"[{name}] interrupted: reporting what was found so far")
    finally:
        subject.close()
    rows = tuple(verdicts(campaign.tally, subject.capabilities, profile))
    return BackendReport(
        name,
        examples,
        rounds,
        time.monotonic() - started,
        campaign.with_outcomes(tuple(campaign.recorded) + campaign.known_seen()),
        rules=rows,
        spec=spec or name,
        known_files=tuple(str(path) for path in known_files),
        interrupted=interrupted,
    )


def make_backend(spec: str, factory: Callable[[], Any]) -> Backend:
    """factory(), guarded: an exception is a BackendFailure (CLI-001); a value that is not a
    Backend is a ValueError naming the factory and what it returned (a usage error)."""
    made = guarded(f"the factory of {spec}", factory, timeout=None)
    if not isinstance(made, Backend) or not isinstance(
        getattr(made.capabilities, "name", None), str
    ):
        raise ValueError(
            f"backend {spec!r}: the factory returned {made!r} ({type(made).__name__}), which is "
            "not a Backend (sspi_model.backends.base.Backend: capabilities with a name, the "
            "synchronous calls, reset and close)"
        )
    return made


@attrs.define
class _Campaign:
    """The state a campaign carries from round to round."""

    name: str
    subject: Backend
    model: Backend
    known: tuple[KnownDivergence, ...]
    examples: int
    steps: int
    progress: Callable[[str], None]
    database: CampaignDatabase | None = None
    deadline: float | None = None
    saturation: int = SATURATION
    found: set[tuple[str, ...]] = attrs.field(factory=set)
    seen: list[Divergence] = attrs.field(factory=list)
    recorded: list[Divergence] = attrs.field(factory=list)
    tally: RuleTally = attrs.field(factory=RuleTally)

    def _kinds(self) -> set[tuple[str, ...]]:
        """The kinds seen so far: a known divergence's id, a new one's signature (CMP-005)."""
        return {("known", d.known) if d.known else d.signature for d in self.seen} | self.found

    def run(self, seed_value: int, max_rounds: int) -> int:
        """Rounds until `saturation` rounds in a row show no new kind (or, with a deadline,
        until it passes); the number of rounds run."""
        rounds = quiet = 0
        try:
            while rounds < max_rounds or self.deadline is not None:
                rounds += 1
                if self.database is not None:
                    self.database.start_round(rounds)
                    self.found |= self.database.shared_findings()  # CMP-006: other jobs'
                before = self._kinds()
                new = self._round(seed_value + rounds, rounds)
                if rounds == 1 and self.database is not None and self.database.replayable:
                    self.progress(f"[{self.name}] replayed first: {self.database.replayable} "
                                  "saved example(s) from the database")
                # CMP-005: a round that recorded a divergence or saw a kind for the first time
                # (a known one included) starts the count again.
                quiet = 0 if new or not self._kinds() <= before else quiet + 1
                if self.deadline is None and quiet >= self.saturation:
                    break
                if self.deadline is not None:
                    left = self.deadline - time.monotonic()
                    if left <= 0:
                        break
                    self.progress(f"[{self.name}] {left:.0f} s of the time budget left")
        finally:
            if self.database is not None:
                self.database.finish()
        return rounds

    def _settings(self) -> settings:
        return settings(
            max_examples=self.examples,
            stateful_step_count=self.steps,
            deadline=None,
            # A fresh database per round unless the campaign shares one (database.py).
            database=self.database if self.database is not None else InMemoryExampleDatabase(),
            suppress_health_check=list(HealthCheck),
            report_multiple_bugs=False,
            phases=(Phase.reuse, Phase.generate, Phase.shrink),
            print_blob=False,
        )

    def _round(self, seed_value: int, number: int) -> bool:
        """One Hypothesis run; True when it found (and recorded) a new divergence."""
        machine = machine_for(
            self.subject,
            model=self.model,
            known=self.known,
            found=self.found,
            seen=self.seen,
            tally=self.tally,
        )
        if self.database is not None:
            # @seed would also switch the database off; this attribute is the seed alone (the
            # one get_state_machine_test copies from a machine class).
            machine._hypothesis_internal_use_seed = seed_value
        # Hypothesis's own hook for running a machine (typed only in newer releases).
        test = get_state_machine_test(  # type: ignore[no-untyped-call, unused-ignore]
            machine, settings=self._settings()
        )
        printed: list[object] = []
        try:
            with with_reporter(printed.append):
                (test if self.database is not None else seed(seed_value)(test))()
        except DivergenceFound as error:
            notes: list[object] = [str(note) for note in getattr(error, "__notes__", ())]
            self._record(
                attrs.evolve(error.divergence, program=_program(printed + notes)), number, "NEW"
            )
            return True
        except (FlakyFailure, FlakyStrategyDefinition) as error:
            # The backend did not behave the same when the sequence was replayed (e.g. a crash
            # that depends on heap reuse): keep the shortest new divergence seen, unshrunk.
            candidates = [d for d in self.seen if d.known is None and d.signature not in self.found]
            if not candidates:
                self.progress(f"[{self.name}] round {number}: flaky run, no divergence: {error}")
                return True
            divergence = attrs.evolve(
                min(candidates, key=lambda d: len(d.reproducer)),
                explanation="flaky: the backend did not repeat this when Hypothesis replayed the "
                "sequence, so it is not shrunk",
            )
            self._record(divergence, number, "NEW (flaky)")
            return True
        self.progress(f"[{self.name}] round {number}: nothing new in {self.examples} examples")
        return False

    def _record(self, divergence: Divergence, number: int, tag: str) -> None:
        self.found.add(divergence.signature)
        if self.database is not None:
            self.database.share_finding(divergence.signature)  # CMP-006
        self.recorded.append(divergence)
        self.progress(f"[{self.name}] round {number}: {tag} {_line(divergence)}")

    def with_outcomes(self, divergences: tuple[Divergence, ...]) -> tuple[Divergence, ...]:
        """Each divergence with every outcome observed for its kind (CMP-004)."""
        outcomes: dict[tuple[str, ...], list[str]] = {}
        for divergence in self.seen:
            kind = outcomes.setdefault(divergence.signature, [])
            if divergence.observed not in kind:
                kind.append(divergence.observed)
        return tuple(with_outcomes(d, outcomes.get(d.signature, ())) for d in divergences)

    def known_seen(self) -> tuple[Divergence, ...]:
        """The known divergences observed, the shortest example of each."""
        best: dict[tuple[str, ...], Divergence] = {}
        for divergence in self.seen:
            if divergence.known is None:
                continue
            current = best.get(divergence.signature)
            if current is None or len(divergence.reproducer) < len(current.reproducer):
                best[divergence.signature] = divergence
        return tuple(best.values())


def run_check(
    backends: list[str],
    examples: int = 200,
    seed: int = 0,
    progress: Callable[[str], None] = lambda line: None,
    *,
    ignore_known: bool = False,
    max_rounds: int = 60,
    known_files: Sequence[str | Path] = (),
    jobs: int | None = 1,
    database: str | None = None,
    fresh: bool = True,
    time_budget: float | None = None,
    saturation: int = SATURATION,
    campaign_id: str = "",
) -> CheckReport:
    """Check each backend spec against the model. Unavailable built-ins are reported as skipped
    with the reason and the install line (CLI-005), never left out. `jobs` (None: one per core)
    processes share the example `database` (see database.py; with `fresh`, none is kept);
    `time_budget` seconds keep rounds going (campaign.py); a campaign ends after `saturation`
    rounds in a row without a new kind (CMP-005)."""
    if job_count(jobs) > 1:
        merged: CheckReport = run_jobs(
            run_check, backends, examples, seed, progress, ignore_known=ignore_known,
            max_rounds=max_rounds, jobs=job_count(jobs), database=database, fresh=fresh,
            time_budget=time_budget, known_files=[str(path) for path in known_files],
            saturation=saturation,
        )
        return merged
    shared = None if fresh else open_database(database)  # fresh: a new database per round
    deadline = None if time_budget is None else time.monotonic() + time_budget
    reports = []
    for spec in backends:
        try:
            name, factory = backend_factory(spec)
        except BackendUnavailable as error:
            progress(f"[{spec}] SKIPPED: {error}")
            reports.append(BackendReport(spec, 0, 0, 0.0, (), error=str(error)))
            continue
        progress(f"[{name}] checking against the model: {examples} examples per round")
        reports.append(
            check_backend(
                name,
                factory,
                examples=examples,
                seed_value=seed,
                progress=progress,
                ignore_known=ignore_known,
                max_rounds=max_rounds,
                known_files=known_files,
                spec=spec,
                database=shared,
                deadline=deadline,
                saturation=saturation,
                campaign_id=campaign_id,
            )
        )
        if reports[-1].interrupted:
            break  # Ctrl-C ends the run: the backends after this one are not started
    return CheckReport(tuple(reports), seed)


def summary(report: CheckReport) -> list[str]:
    """The closing lines (CLI-005): which backends ran, which were skipped and why, what a run
    against the model alone proves, and one verdict line."""
    ran = [b.backend for b in report.backends if not b.error]
    skipped = [b for b in report.backends if b.error]
    lines = [f"ran: {', '.join(ran) if ran else 'nothing'}"]
    lines += [f"skipped: {b.backend}: {b.error}" for b in skipped]
    if ran == ["model"]:
        lines.append(
            "note: only the model ran, against itself: that proves the harness and the model "
            "agree with themselves, not that any real SSPI library conforms"
        )
    new = report.new_divergences
    known = sum(len(b.divergences) - len(b.new) for b in report.backends)
    if report.interrupted:
        verdict = f"INTERRUPTED: {new} new divergence(s) before Ctrl-C (a partial report)"
    elif new:
        verdict = f"FAILED: {new} new divergence(s)"
    elif not ran:
        verdict = "NOT CHECKED: no backend could run"
    else:
        verdict = f"PASSED: no new divergence ({known} known)"
    names = f"ran: {', '.join(ran) or 'nothing'}; skipped: "
    names += ", ".join(b.backend for b in skipped) or "none"
    lines.append(f"verdict: {verdict} ({names})")
    return lines


def replay(
    program: str,
    subject: Backend,
    *,
    suppressed: Iterable[tuple[str, ...]] = (),
    profile: str = "documented",
    known: Iterable[KnownDivergence] = (),
) -> Divergence | None:
    """Run a divergence's shrunk Hypothesis program again (the `program` field of a report):
    the divergence it raises now, or None if the backend no longer diverges. `suppressed` are
    the signatures the campaign had already found when it found this one (the report lists
    them before it), which the machine passes over as it did then."""
    machine = machine_for(
        subject,
        model=ModelBackend(accounts=ACCOUNTS, profile=profile),
        found=set(suppressed),
        known=known,
    )
    # The names a printed program uses besides the machine (values print as valid Python).
    namespace: dict[str, Any] = {
        "DifferentialMachine": machine,
        "SecPkgAttr": SecPkgAttr,
        "SecHandle": SecHandle,
        "CredentialUse": CredentialUse,
    }
    try:
        exec(compile(program, "<reproducer>", "exec"), namespace)
    except DivergenceFound as found:
        return found.divergence
    return None


def reproduce(
    spec: str,
    program: str,
    *,
    suppressed: Iterable[Sequence[str]] = (),
    known_files: Sequence[str | Path] = (),
    profile: str = "documented",
) -> Divergence | None:
    """Run a report's program against a fresh backend of `spec` (CLI-006), with the known list
    the campaign used: the divergence it raises now, or None if the backend now agrees."""
    _name, factory = backend_factory(spec)
    subject = make_backend(spec, factory)
    try:
        known = known_for(subject, subject.capabilities.name, known_files)
        signatures = [tuple(signature) for signature in suppressed]
        return replay(program, subject, suppressed=signatures, profile=profile, known=known)
    finally:
        subject.close()


def reproducer_program(
    spec: str,
    divergence: Divergence,
    *,
    suppressed: Sequence[tuple[str, ...]] = (),
    known_files: Sequence[str] = (),
) -> str:
    """A Python program to paste and run: it replays the shrunk steps on a fresh backend."""
    if not divergence.program:
        steps = "\n".join(f"#   {step}" for step in divergence.reproducer)
        return f"# not replayable (no shrunk program was recorded); the steps were:\n{steps}\n"
    lines = [
        f"# Reproduces: {_line(divergence)}",
        "from sspi_model.testing.check import reproduce",
        "",
        f"PROGRAM = {_literal(divergence.program.strip())}",
        f"found = reproduce({spec!r}, PROGRAM, suppressed={[list(s) for s in suppressed]!r}, "
        f"known_files={list(known_files)!r})",
        'print(found or "no divergence now: the backend agrees with the model")',
        "raise SystemExit(1 if found else 0)",
    ]
    return "\n".join(lines) + "\n"


def _literal(text: str) -> str:
    """`text` as a Python string literal, triple-quoted when that is exact."""
    if "'''" in text or "\\" in text or text.endswith("'"):
        return repr(text + "\n")
    return "'''\\\n" + text + "\n'''"


def _program(printed: list[object]) -> str:
    """Hypothesis's falsifying program, from what it reported."""
    text = "\n".join(str(line) for line in printed)
    start = text.find("state = ")
    return text[start:].strip() if start >= 0 else text.strip()


def _line(d: Divergence) -> str:
    return (
        f"{d.call}({d.args}) [{d.situation}] {d.aspect}: expected {d.expected}, "
        f"observed {_observed(d)}"
    )


def _observed(d: Divergence) -> str:
    """The outcome, and the others seen for the same kind (CMP-004)."""
    others = [outcome for outcome in d.outcomes if outcome != d.observed]
    return d.observed + (f" (also seen: {', '.join(others)})" if others else "")


def _text(report: CheckReport) -> str:
    lines = []
    for backend in report.backends:
        if backend.error:
            lines.append(f"{backend.backend}: not checked: {backend.error}")
            continue
        lines.append(
            f"{backend.backend}: {len(backend.new)} new, "
            f"{len(backend.divergences) - len(backend.new)} known divergence(s); "
            f"{backend.rounds} round(s) of {backend.examples} examples, {backend.seconds:.1f} s"
        )
        for d in backend.divergences:
            tag = f"known {d.known}" if d.known else "NEW"
            lines.append(f"  [{tag}] {_line(d)}")
            if d.rules:
                lines.append(f"      rules: {', '.join(d.rules)}")
            if d.explanation:
                lines.append(f"      why: {d.explanation}")
            if d.known is None:
                lines.extend(f"      | {step}" for step in d.reproducer)
                lines.append("      python (paste and run):")
                lines.extend(backend.python(d).splitlines())
                lines.append("      (end of program)")
    return "\n".join(lines)


def _markdown(report: CheckReport) -> str:
    lines = [f"# sspi-model check (seed {report.seed})", ""]
    for backend in report.backends:
        lines.append(f"## {backend.backend}")
        lines.append("")
        if backend.error:
            lines += [f"Not checked: {backend.error}", ""]
            continue
        lines.append("| | call | situation | aspect | expected | observed | rules |")
        lines.append("|---|---|---|---|---|---|---|")
        for d in backend.divergences:
            tag = f"known `{d.known}`" if d.known else "**new**"
            lines.append(
                f"| {tag} | `{d.call}` | {d.situation} | {d.aspect} | `{d.expected}` | "
                f"`{_observed(d)}` | {', '.join(d.rules)} |"
            )
        for d in backend.new:
            lines += ["", f"### {d.call}: {d.expected} vs {d.observed}", "", "Steps:", ""]
            lines += ["```python", *d.reproducer, "```", ""]
            lines += ["Reproduce (paste and run):", "", "```python"]
            lines += [*backend.python(d).splitlines(), "```"]
        lines.append("")
    return "\n".join(lines)
