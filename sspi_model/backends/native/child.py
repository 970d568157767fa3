"""The worker process: load the library, then answer one request at a time.

The first frame (see frames.py) the worker sends is ("ready", packages) or ("error", message);
then each request (name, args) gets ("ok", result) or ("error", traceback). A crash or a hang
shows up in the parent as a dead or a silent process.

Run by worker.py as `python -I -S -c BOOTSTRAP`, or by hand as
`python -m sspi_model.backends.native.child LIBRARY`. Standard library only, imported lazily.
"""

from __future__ import annotations

import ctypes
import os
import sys

from sspi_model.backends.native.frames import read_frame, write_frame

TYPE_CHECKING = False  # see calls.py
if TYPE_CHECKING:
    from typing import Any


def private_pipes() -> None:
    """Whatever the library prints to stdout goes to stderr, and stdin reads see an empty
    file: the protocol's descriptors are the caller's to keep private."""
    os.dup2(2, 1)
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    if os.name == "nt":
        # No error dialog on a fault: the process must die so the parent sees the crash.
        ctypes.windll.kernel32.SetErrorMode(0x8003)  # type: ignore[attr-defined,unused-ignore]


def serve(library: str) -> None:
    requests, replies = os.dup(0), os.dup(1)
    private_pipes()
    from sspi_model.backends.native.calls import NativeCalls

    try:
        calls = NativeCalls(library)
        packages = calls.startup_packages()
    except Exception as exc:
        write_frame(replies, ("error", f"{type(exc).__name__}: {exc}"))
        return
    write_frame(replies, ("ready", packages))
    answer(calls, requests, replies)


def answer(calls: Any, requests: int, replies: int) -> None:
    """Answer requests until end of file (a forked worker of zygote.py runs this too)."""
    while True:
        try:
            request = read_frame(requests)
            if request is None:
                return
            name, args = request
            reply = ("ok", getattr(calls, name)(*args))
        except Exception:  # a Python error (a bad request): report it and stay up
            import traceback

            reply = ("error", traceback.format_exc())
        write_frame(replies, reply)


if __name__ == "__main__":
    serve(sys.argv[1])
