"""The explorer: a scenario under every schedule up to a bound, each distinct state once.

Stateless re-execution (EXP-006): each schedule runs the scenario from the start on fresh
instances, replaying a prefix of choices and then taking the default (0) at every new choice
point. At each choice point the world's fingerprint (World.fingerprint, EXP-005) together with
the deviations still allowed names a state; a state seen before is not explored again, its
subtree is shared. The bound is the number of non-default choices a schedule may make
(deviations: an inline completion, an early completion, another completion order, a
preemption), as CHESS bounds preemptions (EXP-007).

The states and their edges form a DAG, so the report can say how many schedules there are,
how many reach each finding, and which is the shortest (fewest choice points, then the
smallest choices): that one is run again with a Recorder, giving a trace `replay` accepts.
"""

from __future__ import annotations

import collections
import time
from collections.abc import Callable, Sequence
from typing import Any

import attrs

from sspi_model.async_api import SspiMisuse
from sspi_model.explore.world import World
from sspi_model.sanitizer import Finding
from sspi_model.trace import Record, Recorder


class NondeterministicScenario(Exception):
    """Replaying a prefix reached another state: the scenario depends on something outside
    its world (time, a global, a random number not drawn through world.choose)."""


class _Pruned(BaseException):
    """Raised at a state explored before: its subtree is known. A BaseException, so neither
    the model's callback guard (ASY-024) nor a scenario's `except Exception` swallows it."""


@attrs.frozen
class Outcome:
    """How one schedule ended: the findings' (kind, rule, process), and an unexpected error."""

    findings: frozenset[tuple[str, str, str]]
    error: str = ""


@attrs.define(eq=False)
class _Node:
    alternatives: int
    children: list[Any]  # a state key, an Outcome, or None while unexplored


@attrs.frozen
class FoundIssue:
    """A finding, how many schedules reach it, and the shortest of them (its choices)."""

    kind: str
    rule: str
    process: str
    message: str
    schedules: int
    shortest: tuple[int, ...]


@attrs.frozen
class Report:
    scenario: str
    bound: int | None
    runs: int  # executions from the start (pruned ones included)
    states: int  # distinct fingerprints
    schedules: int  # complete schedules within the bound
    clean: int  # schedules without any finding
    findings: tuple[FoundIssue, ...]
    errors: tuple[str, ...] = ()
    complete: bool = True  # False when max_runs stopped the search
    seconds: float = attrs.field(default=0.0, eq=False)

    def to_json(self) -> dict[str, Any]:
        data = attrs.asdict(self)
        data["findings"] = [attrs.asdict(found) for found in self.findings]
        return data


class _Exploring:
    """Replays a prefix (whose states are known: no fingerprint needed), then explores."""

    def __init__(self, engine: _Engine, prefix: Sequence[int], keys: Sequence[Any]) -> None:
        self.engine = engine
        self.prefix = prefix
        self.keys = keys  # the state at each prefix choice point, from the run that found it
        self.path: list[tuple[Any, int]] = []
        self.deviations = 0

    def choose(self, alternatives: int, world: World) -> int:
        engine = self.engine
        bound = engine.bound
        left = None if bound is None else bound - self.deviations
        if left == 0:
            return 0  # no deviation left: the default is forced, not a choice (EXP-007)
        depth = len(self.path)
        if depth < len(self.prefix):
            key = self.keys[depth]
            # One fingerprint per run, where the prefix branches: the state must be the one
            # the branch was taken from (EXP-006); elsewhere the alternatives must agree.
            branching = depth == len(self.prefix) - 1
            if engine.nodes[key].alternatives != alternatives or (
                branching and (world.fingerprint(), left) != key
            ):
                raise NondeterministicScenario(
                    f"replaying choices {list(self.prefix[: depth + 1])} reached a state "
                    "other than the one the first run reached there"
                )
            choice = self.prefix[depth]
        else:
            key = (world.fingerprint(), left)
            engine.link(self.path, key)
            if key in engine.nodes:
                raise _Pruned
            engine.nodes[key] = _Node(alternatives, [None] * alternatives)
            choices = [choice for _key, choice in self.path]
            keys = [*(state for state, _choice in self.path), key]
            for other in range(alternatives - 1, 0, -1):
                engine.stack.append(([*choices, other], keys))
            choice = 0
        self.path.append((key, choice))
        if choice:
            self.deviations += 1
        return choice


class _Replaying:
    """Answers from a list of choices, skipping forced choice points as the explorer did."""

    def __init__(self, choices: Sequence[int], bound: int | None) -> None:
        self.choices = list(choices)
        self.bound = bound
        self.position = 0
        self.deviations = 0

    def choose(self, alternatives: int, world: World) -> int:
        if self.bound is not None and self.deviations >= self.bound:
            return 0
        choice = self.choices[self.position] if self.position < len(self.choices) else 0
        self.position += 1
        if choice:
            self.deviations += 1
        return choice


def run_once(scenario: Callable[[World], Any], world: World) -> tuple[Outcome, list[Finding]]:
    """Run `scenario` in `world` to its end, settle what is pending, and collect findings."""
    error = ""
    cut = False
    try:
        scenario(world)
        world.settle()
    except SspiMisuse:
        cut = True  # strict mode stopped the run; what is alive now is not a leak
    except (_Pruned, NondeterministicScenario):
        raise
    except Exception as problem:  # the scenario's own bug, or a model crash: report it
        error = f"{type(problem).__name__}: {problem}"
        cut = True
    findings = list(world.sanitizer.findings) if cut else list(world.findings())
    key = frozenset((finding.kind, finding.rule, finding.process) for finding in findings)
    return Outcome(key, error), findings


class _Engine:
    def __init__(self, scenario: Callable[[World], Any], bound: int | None) -> None:
        self.scenario = scenario
        self.bound = bound
        self.nodes: dict[Any, _Node] = {}
        self.root: Any = None
        self.stack: list[tuple[list[int], list[Any]]] = [([], [])]
        self.runs = 0
        self.messages: dict[tuple[str, str, str], str] = {}

    def link(self, path: list[tuple[Any, int]], target: Any) -> None:
        if path:
            key, choice = path[-1]
            self.nodes[key].children[choice] = target
        else:
            self.root = target

    def run(self, max_runs: int) -> bool:
        while self.stack:
            if self.runs >= max_runs:
                return False
            prefix, keys = self.stack.pop()
            chooser = _Exploring(self, prefix, keys)
            self.runs += 1
            try:
                outcome, findings = run_once(self.scenario, World(chooser))
            except _Pruned:
                continue
            for finding in findings:
                self.messages.setdefault(
                    (finding.kind, finding.rule, finding.process), finding.message
                )
            self.link(chooser.path, outcome)
        return True


def _count(engine: _Engine) -> tuple[dict[Any, int], list[tuple[Any, int, Outcome]]]:
    """Schedules through each node (from the root), and every terminal edge."""
    order: list[Any] = []  # reverse post-order = topological
    seen: set[Any] = set()
    if engine.root in engine.nodes:
        stack: list[tuple[Any, int]] = [(engine.root, 0)]
        seen.add(engine.root)
        while stack:
            key, index = stack.pop()
            children = engine.nodes[key].children
            if index < len(children):
                stack.append((key, index + 1))
                child = children[index]
                if child in engine.nodes and child not in seen:
                    seen.add(child)
                    stack.append((child, 0))
            else:
                order.append(key)
    order.reverse()
    ways: dict[Any, int] = collections.defaultdict(int)
    terminals: list[tuple[Any, int, Outcome]] = []
    if order:
        ways[engine.root] = 1
    for key in order:
        for choice, child in enumerate(engine.nodes[key].children):
            if isinstance(child, Outcome):
                terminals.append((key, choice, child))
            elif child is not None:
                ways[child] += ways[key]
    return ways, terminals


def _shortest_paths(engine: _Engine) -> dict[Any, tuple[int, ...]]:
    """Breadth first from the root, children in choice order: the shortest, then smallest."""
    paths: dict[Any, tuple[int, ...]] = {}
    if engine.root not in engine.nodes:
        return paths
    paths[engine.root] = ()
    queue = collections.deque([engine.root])
    while queue:
        key = queue.popleft()
        for choice, child in enumerate(engine.nodes[key].children):
            if child in engine.nodes and child not in paths:
                paths[child] = (*paths[key], choice)
                queue.append(child)
    return paths


def explore(
    scenario: Callable[[World], Any],
    bound: int | None = 2,
    *,
    name: str = "",
    max_runs: int = 200_000,
) -> Report:
    """Every schedule of `scenario` with at most `bound` deviations (None: no bound)."""
    started = time.perf_counter()
    engine = _Engine(scenario, bound)
    complete = engine.run(max_runs)
    findings: dict[tuple[str, str, str], list[Any]] = {}
    errors: set[str] = set()
    if isinstance(engine.root, Outcome):  # no choice point at all: one schedule
        ways: dict[Any, int] = {}
        terminals: list[tuple[Any, int, Outcome]] = [(None, -1, engine.root)]
        paths: dict[Any, tuple[int, ...]] = {None: ()}
        weight = {None: 1}
    else:
        ways, terminals = _count(engine)
        paths = _shortest_paths(engine)
        weight = ways
    total = clean = 0
    for key, choice, outcome in terminals:
        count = weight.get(key, 0)
        total += count
        if outcome.error:
            errors.add(outcome.error)
        if not outcome.findings and not outcome.error:
            clean += count
        path = (*paths.get(key, ()), choice) if choice >= 0 else ()
        for finding in outcome.findings:
            entry = findings.setdefault(finding, [0, None])
            entry[0] += count
            if entry[1] is None or (len(path), path) < (len(entry[1]), entry[1]):
                entry[1] = path
    issues = tuple(
        FoundIssue(
            kind, rule, process, engine.messages.get((kind, rule, process), ""), count, shortest
        )
        for (kind, rule, process), (count, shortest) in sorted(findings.items())
    )
    states = len({key[0] for key in engine.nodes})
    return Report(
        scenario=name or getattr(scenario, "__name__", "scenario"),
        bound=bound,
        runs=engine.runs,
        states=states,
        schedules=total,
        clean=clean,
        findings=issues,
        errors=tuple(sorted(errors)),
        complete=complete,
        seconds=time.perf_counter() - started,
    )


def record_schedule(
    scenario: Callable[[World], Any], choices: Sequence[int], bound: int | None = 2
) -> tuple[list[Record], list[Finding], list[str]]:
    """Run one schedule again with a Recorder: its trace (header first), its findings, and
    its decisions in words."""
    recorder = Recorder()
    world = World(_Replaying(choices, bound), recorder)
    _outcome, findings = run_once(scenario, world)
    return recorder.trace(), findings, world.decisions


def replay_choices(
    scenario: Callable[[World], Any], choices: Sequence[int], bound: int | None = 2
) -> tuple[World, list[Finding]]:
    """Run one schedule again, without recording: the world after it, and its findings."""
    world = World(_Replaying(choices, bound))
    _outcome, findings = run_once(scenario, world)
    return world, findings
