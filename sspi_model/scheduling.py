"""Schedulers: every source of non-determinism in the async layer is one of these choices.

A scheduler receives each successfully queued call (`submit`) and decides when it completes.
Completing a call applies its effects, writes its Out holder and then runs its callback.
One scheduler may serve several Sspi instances.
"""

from __future__ import annotations

import collections
import threading
import weakref
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
        # Imported here: only this scheduler needs Hypothesis (and random), and `import
        # sspi_model` must not pay for it (ARCHITECTURE: Hypothesis is imported only where it is
        # used).
        import random

        from hypothesis import register_random

        self.seed = seed
        self.random = random.Random(seed)

        register_random(self.random)  # ASY-073: every choice replays from the seed
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


class _Work:
    """What a ThreadedScheduler shares with its worker thread. The worker holds this, never the
    scheduler, so a scheduler nobody closed can still be collected, and its finalizer then
    stops the thread (ROB-007)."""

    def __init__(self, delay: float) -> None:
        self.delay = delay
        self.calls: collections.deque[Completable] = collections.deque()
        self.unfinished = 0  # submitted calls not yet completed (queued or running)
        self.closed = False
        self.errors: collections.deque[BaseException] = collections.deque()
        self.changed = threading.Condition(threading.Lock())
        self.stopping = threading.Event()  # cuts a delay short at close

    def take(self, block: bool) -> Completable | None:
        with self.changed:
            while block and not self.calls and not self.closed:
                self.changed.wait()
            return self.calls.popleft() if self.calls else None

    def run(self, call: Completable) -> None:
        try:
            if self.delay and not self.stopping.is_set():
                self.stopping.wait(self.delay)
            call.complete()
        except BaseException as error:  # kept for the test thread; the worker goes on
            with self.changed:
                self.errors.append(error)
        finally:
            with self.changed:
                self.unfinished -= 1
                self.changed.notify_all()

    def work(self) -> None:
        while True:
            call = self.take(block=True)
            if call is None:
                return
            self.run(call)
            del call  # while waiting, hold nothing that reaches the scheduler (ROB-007)

    def stop(self) -> None:
        with self.changed:
            self.closed = True
            self.changed.notify_all()
        self.stopping.set()


class ThreadedScheduler:
    """A real worker thread completes calls in submission order, after an optional delay.

    For testing client code that is itself concurrent. Exceptions that escape a completion
    (SspiMisuse from a callback, ASY-027's errors) are kept and re-raised, one per call, by
    `run_all()` / `close()` (ROB-006). `run_all()` from a callback completes the queued calls
    on the worker itself (ROB-005); a call submitted after `close()` completes inline on the
    submitting thread (ROB-004); a scheduler dropped without close() stops its thread when it
    is collected (ROB-007).
    """

    def __init__(self, *, delay: float = 0.0) -> None:
        self.delay = delay
        self._work = _Work(delay)
        self._thread = threading.Thread(
            target=self._work.work, name="sspi-model-completions", daemon=True
        )
        self._thread.start()
        weakref.finalize(self, self._work.stop)  # ROB-007: never a thread left behind

    def __repr__(self) -> str:
        return f"ThreadedScheduler(delay={self.delay!r})"

    @property
    def closed(self) -> bool:
        return self._work.closed

    @property
    def pending_errors(self) -> int:
        """Errors kept from completions and not yet re-raised (ROB-006)."""
        return len(self._work.errors)

    def submit(self, call: Completable) -> None:
        work = self._work
        with work.changed:
            if not work.closed:
                work.calls.append(call)
                work.unfinished += 1
                work.changed.notify_all()
                return
        # ROB-004: no worker is left to complete it; the submitting thread does, at once.
        call.complete()

    def on_api_entry(self) -> None:
        pass

    def run_all(self) -> int:
        """Wait until every submitted call (and any it queued) has completed, then re-raise
        the oldest error a completion kept, if any (ROB-006)."""
        work = self._work
        if threading.current_thread() is self._thread:
            # ROB-005: called by a callback on the worker, which cannot wait for itself: it
            # completes what is queued here, and errors stay for the test thread.
            while (call := work.take(block=False)) is not None:
                work.run(call)
            return 0
        with work.changed:
            while work.unfinished and self._thread.is_alive():
                work.changed.wait(timeout=0.1)
        self._raise_error()
        return 0

    def close(self) -> None:
        """Complete what is queued, stop the worker, then re-raise a kept error (ROB-006)."""
        self._work.stop()
        if threading.current_thread() is not self._thread:
            self._thread.join(timeout=10)
            self._raise_error()

    def _raise_error(self) -> None:
        errors = self._work.errors
        with self._work.changed:
            if not errors:
                return
            error = errors.popleft()
            left = len(errors)
        if left and hasattr(error, "add_note"):
            error.add_note(
                f"{left} more completion error(s) kept: each further run_all() or close() "
                "re-raises the next (ROB-006)"
            )
        raise error


AnyScheduler = ManualScheduler | InlineScheduler | RandomScheduler | ThreadedScheduler
SchedulerFactory = Callable[[], Scheduler]
