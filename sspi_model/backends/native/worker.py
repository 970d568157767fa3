"""Crash and hang isolation: the native calls run in a worker process (child.py).

One worker serves a whole sequence of calls. Each call is one request; the parent waits for the
reply with a timeout. A worker that dies gives BackendFailure("CRASH:<signal>"), one that does
not answer in time is killed and gives BackendFailure("HANG"); either way the detail is what the
worker wrote to stderr during that call, and the Supervisor refuses further calls until
reset(). Where fork() exists the Supervisor is given forked.py's fork_worker, and each worker is
forked from a zygote that loaded the library once (zygote.py); elsewhere a spare worker is
started ahead of time, so a reset costs a process swap, not a start.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import queue
import signal
import subprocess
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

from sspi_model.backends.base import BackendFailure
from sspi_model.backends.native.frames import read_frame, write_frame

STARTUP_TIMEOUT = 30.0  # loading a cold 20 MB library from disk can take seconds
_TAIL_BYTES = 64 * 1024
_DETAIL_LINES = 5

# The worker imports only the standard library and this folder's stdlib-only modules. Stub
# packages stand in for sspi_model's __init__ files (which import the model and attrs), and
# `-I -S` skips site-packages: a worker starts in tens of milliseconds instead of hundreds.
_BOOTSTRAP = """\
import os, sys, types
native = sys.argv[1]
for name, path in (
    ("sspi_model", os.path.dirname(os.path.dirname(native))),
    ("sspi_model.backends", os.path.dirname(native)),
    ("sspi_model.backends.native", native),
):
    module = types.ModuleType(name)
    module.__path__ = [path]
    sys.modules[name] = module
if sys.argv[3:4] == ["--zygote"]:
    from sspi_model.backends.native.zygote import serve_zygote
    serve_zygote(sys.argv[2], int(sys.argv[4]))
else:
    from sspi_model.backends.native.child import serve
    serve(sys.argv[2])
"""



def worker_environment() -> dict[str, str]:
    """The environment of a worker or a zygote: this process's, with Rust backtraces off.

    CMP-002: with RUST_BACKTRACE set, sspi-rs symbolizes a backtrace of its 20 MB library on
    every panic it catches (SEC_E_INTERNAL_ERROR) and every abort, about 100 ms each, and the
    crash detail (the last lines of stderr) is then the end of the backtrace instead of the
    message ("memory allocation of N bytes failed"). SSPI_MODEL_RUST_BACKTRACE, when set, is
    passed on as RUST_BACKTRACE for whoever wants the backtraces back.
    """
    environment = dict(os.environ)
    environment["RUST_BACKTRACE"] = os.environ.get("SSPI_MODEL_RUST_BACKTRACE", "0")
    return environment


# Windows reports a crash as an NTSTATUS exit code rather than a signal.
_WINDOWS_CRASHES = {
    0xC0000005: "STATUS_ACCESS_VIOLATION",
    0xC00000FD: "STATUS_STACK_OVERFLOW",
    0xC0000374: "STATUS_HEAP_CORRUPTION",
    0xC0000409: "STATUS_STACK_BUFFER_OVERRUN",
}


# CMP-007: a worker still runnable when its timeout expires is waiting for a core, not stuck
# (the machine is busy); it gets up to this many more timeouts before it is a HANG.
MAX_EXTENSIONS = 20


def runnable(pid: int) -> bool:
    """Whether a thread of process `pid` is running or waiting for a core (Linux: state R in
    /proc/PID/task/*/stat). A worker deadlocked in the library sleeps (state S: a futex
    wait); where /proc cannot tell, a silent worker is taken as stuck."""
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return False
    for task in tasks:
        try:
            with open(f"/proc/{pid}/task/{task}/stat", "rb") as stat:
                state = stat.read().rsplit(b")", 1)[1].split()[0]
        except (OSError, IndexError):
            continue
        if state == b"R":
            return True
    return False


def wait_for_reply(ready: Callable[[float], bool], pid: int, timeout: float) -> bool:
    """ready(timeout) until it is true, extending the wait while the worker is runnable
    (CMP-007); False once the worker is silent and asleep (or after MAX_EXTENSIONS)."""
    for _ in range(MAX_EXTENSIONS + 1):
        if ready(timeout):
            return True
        if not runnable(pid):
            return False
    return False


class WorkerError(RuntimeError):
    """The worker raised a Python exception (a bug or a bad argument), not a native failure."""


class NeedsReset(RuntimeError):
    """A call after a BackendFailure: the worker is gone until reset()."""


def crash_outcome(returncode: int) -> str:
    """"CRASH:SIGSEGV" for a signal, "CRASH:STATUS_…" on Windows, else "CRASH:EXIT_<code>"."""
    if returncode < 0:
        try:
            return f"CRASH:{signal.Signals(-returncode).name}"
        except ValueError:
            return f"CRASH:SIG{-returncode}"
    code = returncode & 0xFFFFFFFF
    if code in _WINDOWS_CRASHES:
        return f"CRASH:{_WINDOWS_CRASHES[code]}"
    return f"CRASH:EXIT_{returncode if code < 0x10000 else hex(code)}"


class _StderrTail:
    """Drains a pipe (so the worker never blocks on it) and keeps its last bytes."""

    def __init__(self, stream: Any) -> None:
        self.total = 0
        self._kept = bytearray()
        self._lock = threading.Lock()
        self.thread = threading.Thread(target=self._drain, args=(stream,), daemon=True)
        self.thread.start()

    def _drain(self, stream: Any) -> None:
        with stream:  # closed here, by its only reader, once the worker is gone
            while chunk := stream.read(8192):
                with self._lock:
                    self.total += len(chunk)
                    self._kept += chunk
                    del self._kept[:-_TAIL_BYTES]

    def lines_since(self, mark: int) -> str:
        """The last few non-empty lines written after `mark` (a value of `total`)."""
        with self._lock:
            fresh = min(self.total - mark, len(self._kept))
            text = bytes(self._kept[len(self._kept) - fresh :])
        return last_lines(text)


def last_lines(text: bytes) -> str:
    """The last few non-empty lines of what a worker wrote to stderr."""
    lines = [line for line in text.decode("utf-8", "replace").splitlines() if line.strip()]
    return "\n".join(lines[-_DETAIL_LINES:])


class WorkerProcess:
    """One worker: its process, a thread reading replies into a queue, and its stderr tail."""

    def __init__(self, library: str) -> None:
        native = str(Path(__file__).resolve().parent)
        self.process = subprocess.Popen(
            [sys.executable, "-I", "-S", "-c", _BOOTSTRAP, native, library],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            bufsize=0,
            env=worker_environment(),
        )
        assert self.process.stdin and self.process.stdout and self.process.stderr
        self._replies: queue.Queue[Any] = queue.Queue()
        threading.Thread(target=self._read, args=(self.process.stdout,), daemon=True).start()
        self._stderr = _StderrTail(self.process.stderr)
        self.packages: tuple[Any, ...] | None = None
        self.used = False  # set by the first call: until then the worker is as fresh as a new one

    def _read(self, stream: Any) -> None:
        with stream:  # closed here, by its only reader, once the worker is gone
            try:
                while (reply := read_frame(stream.fileno())) is not None:
                    self._replies.put(reply)
            except Exception:  # a broken pipe or frame: treated like the end of file
                pass
        self._replies.put(None)  # end of file: the worker is gone

    def ready(self) -> tuple[Any, ...]:
        """Wait for the library to load; the package list the worker reported."""
        if self.packages is None:
            kind, value = self._wait(0, STARTUP_TIMEOUT, "starting the worker")
            if kind != "ready":
                self.kill()
                raise OSError(f"the native worker could not load the library: {value}")
            self.packages = value
        return self.packages

    def call(self, name: str, args: tuple[Any, ...], timeout: float) -> Any:
        mark = self._stderr.total
        self.used = True
        assert self.process.stdin is not None
        with contextlib.suppress(OSError):  # if it died already, _wait reports how
            write_frame(self.process.stdin.fileno(), (name, args))
        kind, value = self._wait(mark, timeout, name)
        if kind == "error":
            raise WorkerError(f"{name} raised in the worker:\n{value}")
        return value

    def _wait(self, mark: int, timeout: float, what: str) -> tuple[str, Any]:
        def ready(seconds: float) -> bool:
            with self._replies.not_empty:
                return bool(self._replies.queue) or self._replies.not_empty.wait(seconds)

        try:
            if not wait_for_reply(ready, self.process.pid, timeout):  # CMP-007
                raise queue.Empty
            reply = self._replies.get_nowait()
        except queue.Empty:
            self.kill()
            detail = self._detail(mark)
            hang = f"no reply to {what} within {timeout:g} s"
            raise BackendFailure("HANG", f"{hang}\n{detail}" if detail else hang) from None
        if reply is None:
            try:
                returncode = self.process.wait(timeout=STARTUP_TIMEOUT)
            except subprocess.TimeoutExpired:  # it closed its pipe but lives on
                self.kill()
                returncode = self.process.wait()
            self.kill()
            raise BackendFailure(crash_outcome(returncode), self._detail(mark))
        kind, value = reply
        return kind, value

    def _detail(self, mark: int) -> str:
        self._stderr.thread.join(timeout=1.0)  # the process is gone: read stderr to its end
        return self._stderr.lines_since(mark)

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait()
        if self.process.stdin is not None:
            self.process.stdin.close()


class _SparePool:
    """Started, idle workers (one per library or agent command) shared by every Supervisor in
    this process, so a new backend or a reset takes a worker whose library is already loaded."""

    def __init__(self) -> None:
        self._spares: dict[str, Worker] = {}
        self._lock = threading.Lock()
        atexit.register(self.clear)

    def take(self, key: str, start: Callable[[], Worker]) -> Worker:
        with self._lock:
            spare = self._spares.pop(key, None)
        return spare or start()

    def refill(self, key: str, start: Callable[[], Worker]) -> None:
        with self._lock:
            if key not in self._spares:
                self._spares[key] = start()

    def clear(self) -> None:
        with self._lock:
            spares, self._spares = list(self._spares.values()), {}
        for spare in spares:
            spare.kill()


_SPARES = _SparePool()


class Worker(Protocol):
    """What the Supervisor needs of a worker: a WorkerProcess, or forked.py's ForkedWorker."""

    used: bool

    def ready(self) -> tuple[Any, ...]: ...

    def call(self, name: str, args: tuple[Any, ...], timeout: float) -> Any: ...

    def kill(self) -> None: ...


class Supervisor:
    """The worker serving calls, and whether a failure needs reset().

    reset() only retires the worker; the next call takes a fresh one (a spare from the pool
    when `spare` is set). A worker that has not been called yet is fresh, so reset() keeps it.
    `start` makes a worker (default: a Python worker process loading `library`; forked.py's
    fork_worker forks one from a zygote; the agent backend starts an agent process);
    `library` is then the key of its spares.
    """

    def __init__(
        self,
        library: str,
        timeout: float,
        *,
        spare: bool = True,
        start: Callable[[], Worker] | None = None,
    ) -> None:
        self.library = library
        self.timeout = timeout
        self._start: Callable[[], Worker] = start or (lambda: WorkerProcess(library))
        self._use_spare = spare
        self._failure: BackendFailure | None = None
        self._closed = False
        self._lock = threading.Lock()
        self._worker: Worker | None = self._fresh_worker()
        self.packages = self._worker.ready()

    @property
    def worker_pid(self) -> int | None:
        """The pid of the worker that serves the next call (None before it is started)."""
        worker = self._worker
        if isinstance(worker, WorkerProcess):
            return worker.process.pid
        return getattr(worker, "pid", None)

    def _fresh_worker(self) -> Worker:
        worker = _SPARES.take(self.library, self._start) if self._use_spare else self._start()
        try:
            worker.ready()
        except (OSError, BackendFailure):
            worker.kill()
            if not self._use_spare:
                raise
            worker = self._start()  # the spare died while idle: start afresh
            worker.ready()
        if self._use_spare:
            _SPARES.refill(self.library, self._start)
        return worker

    @property
    def healthy(self) -> bool:
        """A worker is serving calls: none failed (crash or hang) since the last reset()."""
        return self._worker is not None and self._failure is None and not self._closed

    def call(self, name: str, *args: Any) -> Any:
        with self._lock:
            if self._failure is not None or self._closed:
                why = "closed" if self._closed else f"gone ({self._failure})"
                raise NeedsReset(f"the native worker is {why}; call reset()")
            if self._worker is None:
                self._worker = self._fresh_worker()
            try:
                return self._worker.call(name, args, self.timeout)
            except BackendFailure as failure:
                self._failure = failure
                self._worker = None  # WorkerProcess already killed and reaped it
                raise

    def reset(self) -> None:
        """Forget every handle: retire the worker unless it is still unused."""
        with self._lock:
            if self._worker is not None and not self._worker.used:
                return
            if self._worker is not None:
                self._worker.kill()
            self._worker, self._failure, self._closed = None, None, False

    def close(self) -> None:
        with self._lock:
            if self._worker is not None:
                self._worker.kill()
            self._worker, self._closed = None, True
