"""Framing of the worker protocol: a 4-byte little-endian length, then a marshal dump.

The messages are plain tuples of ints, bytes and str, and marshal needs no import (pickle would
add 12 ms to a 20 ms worker start). Standard library only: the worker process imports it too.
"""

from __future__ import annotations

import marshal
import os
import struct

TYPE_CHECKING = False  # see calls.py
if TYPE_CHECKING:
    from typing import Any

_HEADER = struct.Struct("<I")


def read_frame(fd: int) -> Any:
    """The next object from `fd`, or None at end of file."""
    header = _read_exact(fd, _HEADER.size)
    if header is None:
        return None
    body = _read_exact(fd, _HEADER.unpack(header)[0])
    return None if body is None else marshal.loads(body)


def write_frame(fd: int, value: Any) -> None:
    body = marshal.dumps(value)
    data = memoryview(_HEADER.pack(len(body)) + body)
    while data:
        data = data[os.write(fd, data) :]


def _read_exact(fd: int, size: int) -> bytes | None:
    chunks = []
    while size:
        chunk = os.read(fd, size)
        if not chunk:
            return None
        chunks.append(chunk)
        size -= len(chunk)
    return b"".join(chunks)
