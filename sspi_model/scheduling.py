"""Schedulers: every source of non-determinism in the async layer is one of these choices.

A scheduler receives each successfully queued call (`submit`) and decides when it completes.
Completing a call applies its effects, writes its Out holder and then runs its callback.
One scheduler may serve several Sspi instances.
"""

from __future__ import annotations

import queue
import random
import threading
from collections.abc import Callable
from typing import Protocol


class Completable(Protocol):
    """A queued call as a scheduler sees it."""

    id: int
    description: str

    def complete(self) -> None: ...


class Scheduler(Protocol):
    def submit(self, call: Completable) -> None: ...

    def on_api_entry(self) -> None:
        """Called at the start of every API call: a chance to complete calls 'meanwhile'."""
        ...


class ManualScheduler:
    """Nothing completes until the test says so: `pending`, `run_one(i)`, `run_all()`.

    The default scheduler of `Sspi()`: nothing happens behind the caller's back (ASY-070).
    """

    def __init__(self) -> None:
        self._pending: list[Completable] = []

    def __repr__(self) -> str:
        return "ManualScheduler()"

    @property
    def pending(self) -> tuple[Completable, ...]:
        return tuple(self._pending)

    def submit(self, call: Completable) -> None:
        self._pending.append(call)

    def on_api_entry(self) -> None:
        pass

    def run_one(self, index: int = 0) -> None:
        """Complete the pending call at `index` (in submission order), callback included.

        An index with no call behind it raises IndexError saying what is queued (CLI-013)."""
        if isinstance(index, bool) or not isinstance(index, int):
            raise TypeError(f"index must be an int, got {type(index).__name__}")
        pending = self._pending
        if not -len(pending) <= index < len(pending):  # CLI-013: say so, not "pop from empty list"
            if not pending:
                raise IndexError(f"run_one({index}): no call is pending (nothing was queued)")
            listed = "; ".join(f"{i}: {call.description}" for i, call in enumerate(pending))
            raise IndexError(
                f"run_one({index}): only {len(pending)} call{'s' if len(pending) != 1 else ''} "
                f"pending (indexes 0..{len(pending) - 1}): {listed}"
            )
        call = pending.pop(index)
        call.complete()

    def run_all(self) -> int:
        """Complete pending calls, oldest first, until none is left (callbacks may queue more)."""
        count = 0
        pending = self._pending
        while pending:
            pending.pop(0).complete()  # run_one(0), inlined
            count += 1
        return count


class InlineScheduler:
    """Completes each call, callback included, before the queueing function returns (ASY-071)."""

    def __repr__(self) -> str:
        return "InlineScheduler()"

    def submit(self, call: Completable) -> None:
        call.complete()

    def on_api_entry(self) -> None:
        pass

    def run_all(self) -> int:
        return 0


class RandomScheduler:
    """Seeded choices: complete inline or later, and which pending call completes when.

    Its Random is registered with Hypothesis, so a failing interleaving replays and shrinks.
    """

    def __init__(
        self,
        seed: int = 0,
        *,
        inline_probability: float = 0.25,
        completion_probability: float = 0.3,
    ) -> None:
        self.seed = seed
        self.random = random.Random(seed)
        # Imported here: only this scheduler needs Hypothesis, and `import sspi_model` must not
        # pay for it (ARCHITECTURE: Hypothesis is imported only where it is used).
        from hypothesis import register_random

        register_random(self.random)
        self.inline_probability = inline_probability
        self.completion_probability = completion_probability
        self._pending: list[Completable] = []
        self._running = False

    def __repr__(self) -> str:
        return f"RandomScheduler({self.seed!r})"

    @property
    def pending(self) -> tuple[Completable, ...]:
        return tuple(self._pending)

    def submit(self, call: Completable) -> None:
        if not self._running and self.random.random() < self.inline_probability:
            self._run(call)
        else:
            self._pending.append(call)

    def on_api_entry(self) -> None:
        # Completions "on another thread" land between the caller's API calls.
        if self._running or not self._pending:
            return
        if self.random.random() < self.completion_probability:
            index = self.random.randrange(len(self._pending))
            self._run(self._pending.pop(index))

    def _run(self, call: Completable) -> None:
        self._running = True
        try:
            call.complete()
        finally:
            self._running = False

    def run_all(self) -> int:
        count = 0
        while self._pending:
            index = self.random.randrange(len(self._pending))
            self._run(self._pending.pop(index))
            count += 1
        return count


class ThreadedScheduler:
    """A real worker thread completes calls in submission order, after an optional delay.

    For testing client code that is itself concurrent. Exceptions that escape a completion
    (SspiMisuse from a callback) are kept and re-raised by `run_all()` / `close()`.
    """

    def __init__(self, *, delay: float = 0.0) -> None:
        self.delay = delay
        self._queue: queue.Queue[Completable | None] = queue.Queue()
        self._errors: list[BaseException] = []
        self._stopped = threading.Event()
        self._thread = threading.Thread(
            target=self._work, name="sspi-model-completions", daemon=True
        )
        self._thread.start()

    def __repr__(self) -> str:
        return f"ThreadedScheduler(delay={self.delay!r})"

    def submit(self, call: Completable) -> None:
        self._queue.put(call)

    def on_api_entry(self) -> None:
        pass

    def _work(self) -> None:
        while True:
            call = self._queue.get()
            try:
                if call is None:
                    return
                if self.delay:
                    self._stopped.wait(self.delay)
                call.complete()
            except BaseException as error:  # kept for the test thread; the worker goes on
                self._errors.append(error)
            finally:
                self._queue.task_done()

    def run_all(self) -> int:
        """Wait until every submitted call (and any it queued) has completed."""
        self._queue.join()
        self._raise_errors()
        return 0

    def close(self) -> None:
        self._queue.put(None)
        self._thread.join(timeout=10)
        self._raise_errors()

    def _raise_errors(self) -> None:
        if self._errors:
            error = self._errors.pop(0)
            self._errors.clear()
            raise error


AnyScheduler = ManualScheduler | InlineScheduler | RandomScheduler | ThreadedScheduler
SchedulerFactory = Callable[[], Scheduler]
