"""A zygote: one process that loaded the library once and forks a worker per example.

Starting a worker (an interpreter, then a 20 MB library) costs tens of milliseconds of CPU; a
campaign resets the backend for every example, so on a busy machine start-up is most of its
time. The zygote is started like a worker (worker.py's bootstrap), loads the library, runs
EnumerateSecurityPackagesW as a fresh worker does, and then only forks: each fork is a worker
whose library is exactly as freshly loaded, for the price of a fork().

The parent and the zygote share a SOCK_SEQPACKET socket (one message = one marshal dump):
    parent -> zygote   ("fork",) carrying two descriptors (SCM_RIGHTS): the worker's end of
                       its request socket, and the file its stderr (and stdout) go to
                       ("kill", pid)
    zygote -> parent   ("ready", packages) or ("error", message), once, first
                       ("forked", pid), the answer to each fork
                       ("exit", pid, returncode), when a worker ends (the zygote reaps them;
                       a signal is a negative returncode, as subprocess gives it)
The worker then speaks child.py's protocol on its socket. The zygote exits when the parent's
end closes, killing its workers first.

Runs as `python -I -S -c BOOTSTRAP NATIVE_DIR LIBRARY --zygote FD` (see worker.py): standard
library only, like child.py.
"""

from __future__ import annotations

import gc
import marshal
import os
import select
import signal
import socket

TYPE_CHECKING = False  # see calls.py
if TYPE_CHECKING:
    from typing import Any

MESSAGE_LIMIT = 1 << 20  # the largest message (the package list is a few hundred bytes)


def send(control: socket.socket, message: Any, fds: list[int] | None = None) -> None:
    if fds:
        socket.send_fds(control, [marshal.dumps(message)], fds)
    else:
        control.send(marshal.dumps(message))


def serve_zygote(library: str, control_fd: int) -> None:
    from sspi_model.backends.native.calls import NativeCalls
    from sspi_model.backends.native.child import private_pipes

    private_pipes()
    control = socket.socket(fileno=control_fd)
    try:
        calls = NativeCalls(library)
        packages = calls.startup_packages()
    except Exception as exc:
        send(control, ("error", f"{type(exc).__name__}: {exc}"))
        return
    send(control, ("ready", packages))
    # SIGCHLD wakes the select below through this pipe, so reaping never interrupts a send.
    wake_read, wake_write = os.pipe()
    os.set_blocking(wake_write, False)
    signal.set_wakeup_fd(wake_write)
    signal.signal(signal.SIGCHLD, lambda number, frame: None)
    workers: set[int] = set()
    # Objects that exist now are never collected: a worker's garbage collector then does not
    # write to every object's header, which would copy each page of the heap after a fork.
    gc.freeze()
    try:
        while True:
            readable, _, _ = select.select([control_fd, wake_read], [], [])
            if wake_read in readable:
                os.read(wake_read, 4096)
                _reap(control, workers)
            if control_fd not in readable:
                continue
            data, fds, _, _ = socket.recv_fds(control, MESSAGE_LIMIT, 2)
            if not data:
                return  # the parent is gone
            request = marshal.loads(data)
            if request[0] == "fork":
                pid = os.fork()
                if pid == 0:
                    _become_worker(calls, control, wake_read, wake_write, fds)
                for fd in fds:
                    os.close(fd)
                workers.add(pid)
                send(control, ("forked", pid))
            elif request[0] == "kill" and request[1] in workers:
                # Only a worker not yet reaped: its pid cannot have been reused.
                os.kill(request[1], signal.SIGKILL)
    finally:
        for pid in workers:
            os.kill(pid, signal.SIGKILL)


def _reap(control: socket.socket, workers: set[int]) -> None:
    while workers:
        pid, status = os.waitpid(-1, os.WNOHANG)
        if pid == 0:
            return
        workers.discard(pid)
        send(control, ("exit", pid, os.waitstatus_to_exitcode(status)))


def _become_worker(
    calls: Any, control: socket.socket, wake_read: int, wake_write: int, fds: list[int]
) -> None:
    """In the forked child: drop the zygote's plumbing, answer requests, never return."""
    from sspi_model.backends.native.child import answer

    code = 0
    try:
        signal.set_wakeup_fd(-1)
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        control.close()
        os.close(wake_read)
        os.close(wake_write)
        channel, errors = fds
        os.dup2(errors, 2)
        os.dup2(errors, 1)
        os.close(errors)
        answer(calls, channel, channel)
    except BaseException:  # nothing may unwind into the zygote's loop in this process
        code = 70
    os._exit(code)
