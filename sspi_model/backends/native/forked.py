"""The parent's side of zygote.py: a zygote per library, and the workers it forks.

A ForkedWorker behaves as worker.py's WorkerProcess does (ready, call, kill, used, packages),
with the same isolation: a worker that dies gives BackendFailure("CRASH:<signal>"), one that
does not answer within the timeout is killed and gives BackendFailure("HANG"), and the detail is
what the worker wrote to stderr during that call. Its stderr goes to an unnamed temporary file,
so nothing has to drain it while it runs.

POSIX only (fork and SCM_RIGHTS); elsewhere the Supervisor starts a fresh worker per reset.
"""

from __future__ import annotations

import atexit
import collections
import contextlib
import marshal
import os
import select
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from sspi_model.backends.base import BackendFailure
from sspi_model.backends.native.frames import read_frame, write_frame
from sspi_model.backends.native.worker import (
    _BOOTSTRAP,
    STARTUP_TIMEOUT,
    WorkerError,
    crash_outcome,
    last_lines,
    wait_for_reply,
    worker_environment,
)
from sspi_model.backends.native.zygote import MESSAGE_LIMIT, send


def forking_supported() -> bool:
    return os.name == "posix" and hasattr(socket, "send_fds") and hasattr(os, "fork")


class Zygote:
    """One zygote process, and the messages it sent that nobody has asked for yet."""

    def __init__(self, library: str) -> None:
        native = str(Path(__file__).resolve().parent)
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        self.process = subprocess.Popen(
            [sys.executable, "-I", "-S", "-c", _BOOTSTRAP, native, library, "--zygote",
             str(theirs.fileno())],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            pass_fds=[theirs.fileno()],
            env=worker_environment(),
        )
        theirs.close()
        self.control = ours
        self._lock = threading.Lock()
        self._exits: dict[int, int] = {}
        self._answers: collections.deque[tuple[Any, ...]] = collections.deque()
        self._forgotten: set[int] = set()
        self._spare: tuple[socket.socket, Any] | None = None  # asked for, not yet collected
        self.alive = True
        kind, value = self._answer(time.monotonic() + STARTUP_TIMEOUT) or ("error", "no answer")
        if kind != "ready":
            self.close()
            raise OSError(f"the native worker could not load the library: {value}")
        self.packages: tuple[Any, ...] = value

    def _receive(self, deadline: float) -> None:
        """Wait until the deadline for one message and file it: an exit report for
        returncode(), anything else for _answer(). The caller holds the lock (or is
        __init__)."""
        remaining = deadline - time.monotonic()
        if remaining <= 0 or not select.select([self.control], [], [], remaining)[0]:
            return
        data = self.control.recv(MESSAGE_LIMIT)
        if not data:
            self.alive = False
            raise OSError("the zygote process is gone")
        message = tuple(marshal.loads(data))
        if message[0] != "exit":
            self._answers.append(message)
            return
        _, pid, returncode = message
        if pid in self._forgotten:
            self._forgotten.discard(pid)
        else:
            self._exits[pid] = returncode

    def _answer(self, deadline: float) -> tuple[Any, ...] | None:
        """The next message other than an exit report, in order; None at the deadline."""
        while not self._answers:
            if time.monotonic() >= deadline:
                return None
            self._receive(deadline)
        return self._answers.popleft()

    def fork(self) -> ForkedWorker:
        """A fresh worker. The zygote forks the next one while this one works, so taking a
        worker costs one message, not a fork."""
        with self._lock:
            pending, self._spare = self._spare or self._request(), None
            worker = self._collect(pending)
            self._spare = self._request()
        return worker

    def _request(self) -> tuple[socket.socket, Any]:
        channel, theirs = socket.socketpair()
        errors = tempfile.TemporaryFile()  # noqa: SIM115 - the worker owns it; closed with it
        try:
            send(self.control, ("fork",), [theirs.fileno(), errors.fileno()])
        except BaseException:
            channel.close()
            errors.close()
            raise
        finally:
            theirs.close()
        return channel, errors

    def _collect(self, pending: tuple[socket.socket, Any]) -> ForkedWorker:
        channel, errors = pending
        try:
            reply = self._answer(time.monotonic() + STARTUP_TIMEOUT)
        except BaseException:
            channel.close()
            errors.close()
            raise
        if reply is None or reply[0] != "forked":
            channel.close()
            errors.close()
            raise OSError(f"the zygote did not fork a worker: {reply}")
        return ForkedWorker(self, reply[1], channel, errors)

    def returncode(self, pid: int, timeout: float) -> int | None:
        """The exit status of worker `pid` once the zygote reaped it (None at the timeout)."""
        deadline = time.monotonic() + timeout
        with self._lock:
            while pid not in self._exits:
                if time.monotonic() >= deadline:
                    return None
                self._receive(deadline)
            return self._exits.pop(pid)

    def kill(self, pid: int, *, forget: bool) -> None:
        with self._lock:
            if forget and self._exits.pop(pid, None) is None:
                self._forgotten.add(pid)
            with contextlib.suppress(OSError):
                send(self.control, ("kill", pid))

    def close(self) -> None:
        self.alive = False
        self.control.close()  # the zygote kills its workers and exits
        try:
            self.process.wait(timeout=STARTUP_TIMEOUT)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


class ForkedWorker:
    """One forked worker: its socket, its stderr file, its pid in the zygote."""

    def __init__(self, zygote: Zygote, pid: int, channel: socket.socket, errors: Any) -> None:
        self.zygote, self.pid, self._channel, self._errors = zygote, pid, channel, errors
        self.packages: tuple[Any, ...] | None = zygote.packages
        self.used = False
        self._gone = False

    def ready(self) -> tuple[Any, ...]:
        assert self.packages is not None
        return self.packages

    def call(self, name: str, args: tuple[Any, ...], timeout: float) -> Any:
        mark = os.fstat(self._errors.fileno()).st_size
        self.used = True
        fd = self._channel.fileno()
        with contextlib.suppress(OSError):  # if it died already, the read below says how
            write_frame(fd, (name, args))
        def ready(seconds: float) -> bool:
            return bool(select.select([fd], [], [], seconds)[0])

        if not wait_for_reply(ready, self.pid, timeout):  # CMP-007
            self.kill()
            detail = self._detail(mark)
            hang = f"no reply to {name} within {timeout:g} s"
            raise BackendFailure("HANG", f"{hang}\n{detail}" if detail else hang)
        try:
            reply = read_frame(fd)
        except OSError:  # a reset connection: the worker is gone
            reply = None
        if reply is None:
            returncode = self.zygote.returncode(self.pid, STARTUP_TIMEOUT)
            self._gone = True
            self._close()
            outcome = "CRASH:UNKNOWN" if returncode is None else crash_outcome(returncode)
            raise BackendFailure(outcome, self._detail(mark))
        kind, value = reply
        if kind == "error":
            raise WorkerError(f"{name} raised in the worker:\n{value}")
        return value

    def _detail(self, mark: int) -> str:
        size = os.fstat(self._errors.fileno()).st_size
        text = os.pread(self._errors.fileno(), max(0, size - mark), mark)
        return last_lines(text)

    def kill(self) -> None:
        if not self._gone:
            self._gone = True
            self.zygote.kill(self.pid, forget=True)
        self._close()

    def _close(self) -> None:
        self._channel.close()
        # The file stays readable for _detail until the worker object goes.


class ZygotePool:
    """A zygote per library, shared by every Supervisor of this process; restarted if one
    dies (a zygote never runs library calls, so that is rare)."""

    def __init__(self) -> None:
        self._zygotes: dict[str, Zygote] = {}
        self._lock = threading.Lock()
        atexit.register(self.clear)

    def fork(self, library: str) -> ForkedWorker:
        with self._lock:
            zygote = self._zygotes.get(library)
            if zygote is None or not zygote.alive:
                zygote = self._zygotes[library] = Zygote(library)
        try:
            return zygote.fork()
        except OSError:
            with self._lock:
                if self._zygotes.get(library) is zygote:
                    del self._zygotes[library]
            zygote.close()
            with self._lock:
                zygote = self._zygotes[library] = Zygote(library)
            return zygote.fork()

    def clear(self) -> None:
        with self._lock:
            zygotes, self._zygotes = list(self._zygotes.values()), {}
        for zygote in zygotes:
            zygote.close()


ZYGOTES = ZygotePool()


def fork_worker(library: str) -> ForkedWorker:
    return ZYGOTES.fork(library)
