"""The world a scenario runs in: its processes, its threads, and every choice made for it.

A scenario is a function `scenario(world)` written against the public API. It makes its
processes with `world.process(name, **options)` (an Sspi whose scheduler is the world's
ChoosingScheduler), lets queued calls complete with `world.settle()` (or the scheduler's
ManualScheduler-style `run_all()` / `run_one(i)`), and runs threads with
`world.run_threads(gen_a(), gen_b())`, where each thread is a generator that yields between
its API calls (each `yield` is a point where another thread may run).

Every source of non-determinism asks `world.choose(n)`: a queued call completes inline or
later (EXP-001), a pending call completes before the next API call or not, and which one
(EXP-002), which pending call completes next when the scenario settles (EXP-003), which thread
runs next (EXP-004). A Chooser answers from a prefix and then with 0, the default: the
schedule a ManualScheduler and one thread running to completion would give.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any, Protocol

from sspi_model.events import CallEvent, CompletionEvent, MisuseReport, NotifyEvent
from sspi_model.sanitizer import Finding, Sanitizer
from sspi_model.sspi import Sspi
from sspi_model.trace import Recorder
from sspi_model.trace.format import ReplayError

ACCOUNTS = {"CONTOSO\\alice": "Passw0rd!"}


class Chooser(Protocol):
    def choose(self, alternatives: int, world: World) -> int: ...


class _FirstChoice:
    def choose(self, alternatives: int, world: World) -> int:
        return 0


class ChoosingScheduler:
    """A scheduler whose every decision is a choice point of its World.

    Also offers ManualScheduler's `pending`, `run_one(index)` and `run_all()`, so scenario
    code written for a ManualScheduler runs unchanged; `run_all()` completes in a chosen order.
    """

    def __init__(self, world: World) -> None:
        self._world = world
        self._pending: list[Any] = []
        self._running = 0

    def __repr__(self) -> str:
        return "ChoosingScheduler()"  # informational in a trace header; replay uses its own

    @property
    def pending(self) -> tuple[Any, ...]:
        return tuple(self._pending)

    def submit(self, call: Any) -> None:
        # EXP-001: inline completion (before the queueing call returns) or later.
        describe = ("{0} stays pending", "{0} completes inline, before the call returns")
        if not self._running and not self._world.quiet:
            if self._world.choose(2, lambda i: describe[i].format(call.description)):
                self._complete(call)
            else:
                self._pending.append(call)
        else:
            self._pending.append(call)

    def on_api_entry(self) -> None:
        # EXP-002: pending calls may complete "on another thread" before any API call.
        world = self._world
        while self._pending and not self._running and not world.quiet:
            index = world.choose(len(self._pending) + 1, self._early) - 1
            if index < 0:
                return
            self._complete(self._pending.pop(index))

    def run_one(self, index: int = 0) -> None:
        self._complete(self._pending.pop(index))

    def run_all(self) -> int:
        """EXP-003: complete every pending call (and those callbacks queue) in a chosen order."""
        count = 0
        while self._pending:
            index = self._world.choose(len(self._pending), self._next)
            self._complete(self._pending.pop(index))
            count += 1
        return count

    def _early(self, choice: int) -> str:
        if choice == 0:
            return "nothing completes before the next API call"
        return f"{self._pending[choice - 1].description} completes before the next API call"

    def _next(self, choice: int) -> str:
        return f"{self._pending[choice].description} completes next"

    def _complete(self, call: Any) -> None:
        world = self._world
        actor = world.actor
        self._running += 1
        try:
            call.complete()
        finally:
            self._running -= 1
            world.actor = actor


class World:
    """The processes, threads, findings and observations of one run of a scenario."""

    def __init__(self, chooser: Chooser | None = None, recorder: Recorder | None = None) -> None:
        self.chooser: Chooser = chooser if chooser is not None else _FirstChoice()
        self.recorder = recorder
        self.scheduler = ChoosingScheduler(self)
        self.sanitizer = Sanitizer()
        self.processes: dict[str, Sspi] = {}
        self.quiet = False  # reading the state for a fingerprint: no choices, no records
        self.actor: Any = "main"
        self._labels: dict[int, tuple[str, int]] = {}  # id(async context) -> (process, n)
        self._freed: set[int] = set()
        self._contexts: list[Any] = []
        self._calls: dict[int, str] = {}  # pending id -> label of its call
        self._seen: dict[Any, list[Any]] = {}  # actor -> what its calls returned
        self._steps: list[int] = []  # per running thread: steps taken
        self.misuse: list[MisuseReport] = []
        self.decisions: list[str] = []  # every choice made, in words

    # -- what a scenario uses ----------------------------------------------------------------

    def process(self, name: str, **options: Any) -> Sspi:
        """A new Sspi process named `name`, scheduled by this world; options go to Sspi()."""
        options.setdefault("accounts", ACCOUNTS)
        sspi = Sspi(scheduler=self.scheduler, **options)
        sspi.observer = self._observe
        self.sanitizer.register(sspi, name)
        if self.recorder is not None:
            self.recorder.attach(sspi, name)
        self.processes[name] = sspi
        return sspi

    def choose(self, alternatives: int, describe: Callable[[int], str] | None = None) -> int:
        """A choice point: 0 is the default; the explorer tries every other answer too.

        `describe(choice)` says what the chosen alternative means, for `decisions`.
        """
        if alternatives < 2 or self.quiet:
            return 0
        choice = self.chooser.choose(alternatives, self)
        if not 0 <= choice < alternatives:
            raise ReplayError(f"choice {choice} out of range({alternatives})")
        text = describe(choice) if describe is not None else f"alternative {choice}"
        self.decisions.append(f"{text}{' (default)' if choice == 0 else ''}")
        return choice

    def settle(self) -> int:
        """Let every pending call complete, in each order the explorer tries (EXP-003)."""
        return self.scheduler.run_all()

    def run_threads(self, *threads: Iterator[Any]) -> None:
        """Run generator threads, interleaved at their yields (EXP-004).

        The default keeps running the thread that ran last; every other runnable thread is
        an alternative (a preemption).
        """
        running = list(enumerate(threads))
        base = len(self._steps)
        self._steps.extend(0 for _ in running)
        current = 0
        outer = self.actor
        try:
            while running:
                order = running[current : current + 1] + running[:current] + running[current + 1 :]
                names = [
                    f"thread {number + 1} ({getattr(thread, '__name__', 'generator')}) runs"
                    for number, thread in order
                ]
                pick = order[self.choose(len(order), names.__getitem__)]
                current = running.index(pick)
                number, thread = pick
                self.actor = ("thread", base + number)
                try:
                    next(thread)
                    self._steps[base + number] += 1
                except StopIteration:
                    running.pop(current)
                    current = 0
        finally:
            self.actor = outer

    # -- observation -------------------------------------------------------------------------

    def _observe(self, event: Any) -> None:
        if self.quiet:
            return
        self.sanitizer(event)
        if isinstance(event, CallEvent):
            self._seen.setdefault(self.actor, []).append(_observed(event.call.value, event.result))
            name = event.call.value
            if name == "SspiCreateAsyncContext" and event.result is not None:
                process = self._name(event.sspi)
                count = sum(1 for label in self._labels.values() if label[0] == process)
                self._labels[id(event.result)] = (process, count + 1)
                self._contexts.append(event.result)
            elif name == "SspiFreeAsyncContext" and event.args.get("async_context") is not None:
                self._freed.add(id(event.args["async_context"]))
            if event.pending is not None:
                actx = self._labels.get(id(event.args.get("async_context")))
                self._calls[event.pending] = f"{name}{actx}"
        elif isinstance(event, NotifyEvent):
            self.actor = ("callback", self._labels.get(id(event.async_context)))
        elif isinstance(event, CompletionEvent):
            self._calls.pop(event.pending, None)
        elif isinstance(event, MisuseReport):
            self.misuse.append(event)

    def _name(self, sspi: Any) -> str:
        for name, target in self.processes.items():
            if target is sspi:
                return name
        return "?"

    def fingerprint(self) -> Any:
        """The state from the public view (EXP-005): each process's statistics(), each live
        async context's status, the pending calls in order, what each thread and callback
        has seen returned, the threads' program counters and the misuse so far."""
        self.quiet = True
        try:
            statuses = tuple(
                (label, int(self.processes[label[0]].get_async_call_status(context)))
                for context in self._contexts
                if id(context) not in self._freed
                for label in (self._labels[id(context)],)
            )
        finally:
            self.quiet = False
        return (
            tuple((name, sspi.statistics()) for name, sspi in self.processes.items()),
            statuses,
            tuple(self._calls.get(call.id, "?") for call in self.scheduler.pending),
            tuple(sorted((repr(actor), tuple(seen)) for actor, seen in self._seen.items())),
            tuple(self._steps),
            repr(self.actor),
            tuple(report.rule for report in self.misuse),
        )

    def findings(self) -> tuple[Finding, ...]:
        """What the sanitizer found; misuse reported by the model comes first."""
        return self.sanitizer.check()


def _observed(call: str, result: Any) -> Any:
    """A call's result as the calling code can see it, without handle values (which differ
    between runs)."""
    status = getattr(result, "status", result)
    if isinstance(status, int) or status is None:
        return (call, status, getattr(result, "new_context", None) is not None)
    return (call, type(status).__name__)


Scenario = Callable[[World], Any]
