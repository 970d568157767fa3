"""Buffer data as a trace writes it: the references that let message traffic replay (BUF-007).

A leg's input token is usually an earlier leg's output token, and `{"from": SEQ}` says so. The
message functions move bytes about more freely: curl sends the STREAM_HEADER, DATA and
STREAM_TRAILER of one EncryptMessage as one wire buffer, reads the socket in pieces, and hands
the EXTRA bytes of one DecryptMessage to the next call. Those bytes hold keys and randoms that
differ from run to run, so a trace writes them as what they are made of:

    {"from": SEQ}                        the output token of record SEQ (as before)
    {"from": SEQ, "buffer": I}           the data of out.output[I] of record SEQ (a message call)
    ... "slice": [START, END]            bytes START..END of either
    {"join": [PART, ...]}                the concatenation; a PART is base64 or one of the above

`Pieces` is the memory both sides keep: the Recorder finds a decomposition of an input in the
output buffers it remembers (`encode`), the replayer reads a reference back (`decode`).
"""

from __future__ import annotations

import base64
from collections import OrderedDict, deque
from collections.abc import Callable, Sequence
from typing import Any

from sspi_model.buffers import NULL_DESCRIPTOR, SecBuffer

SEARCH_WINDOW = 64  # output buffers the Recorder searches for an input's pieces
OUTPUT_WINDOW = 4096  # records whose message outputs stay resolvable (as TRC-002's tokens)
_PROBE = 16  # bytes of the input looked for in a remembered buffer
_TRUSTED = 8  # a match this long, or at a buffer's edge, is taken as provenance, not chance
_EDGE = 4  # ... where an edge match is at least this long (or all the input has left)
NULL_DESCRIPTOR_JSON = {"descriptor": "NULL"}  # a NULL PSecBufferDesc (BUF-005)

Source = Callable[[int, "int | None"], bytes]  # (seq, buffer index or None) -> the bytes
Record = dict[str, Any]


class Pieces:
    """The output buffers of recent records: searched by the Recorder, resolved on replay."""

    def __init__(self, *, search: bool) -> None:
        self._search = search
        self._recent: deque[tuple[int, int | None, bytes]] = deque(maxlen=SEARCH_WINDOW)
        self._outputs: OrderedDict[int, tuple[bytes, ...]] = OrderedDict()

    def token(self, seq: int, token: bytes) -> None:
        """A leg's output token (searched only: `{"from": SEQ}` resolves it as before)."""
        if self._search and token:
            self._recent.append((seq, None, token))

    def outputs(self, seq: int, buffers: Sequence[SecBuffer]) -> None:
        """The descriptor a message call left: each buffer becomes referable by index."""
        data = tuple(buffer.data for buffer in buffers)
        self._outputs[seq] = data
        if len(self._outputs) > OUTPUT_WINDOW:
            self._outputs.popitem(last=False)
        if self._search:
            self._recent.extend((seq, index, item) for index, item in enumerate(data) if item)

    def output(self, seq: int, index: int) -> bytes | None:
        found = self._outputs.get(seq)
        return found[index] if found is not None and 0 <= index < len(found) else None

    # -- encoding ------------------------------------------------------------------------------

    def encode(self, data: bytes) -> Any | None:
        """`data` as references to remembered outputs (a join where it takes several), or None
        when its start is not one: the caller then writes it as base64."""
        parts: list[Any] = []
        position, size = 0, len(data)
        while position < size:
            found = self._longest(data, position)
            if found is None:
                if not parts:
                    return None
                parts.append(_b64(data[position:]))
                break
            reference, length = found
            parts.append(reference)
            position += length
        return parts[0] if len(parts) == 1 else {"join": parts}

    def _longest(self, data: bytes, position: int) -> tuple[Record, int] | None:
        best: tuple[Record, int] | None = None
        left = len(data) - position
        for seq, index, blob in reversed(self._recent):  # the newest first wins a tie
            probe = data[position : position + min(_PROBE, len(blob))]
            start = blob.find(probe)
            if start < 0:
                continue
            length = _common(data, position, blob, start, len(probe))
            edge = (start == 0 or start + length == len(blob)) and length >= min(_EDGE, left)
            if (length >= _TRUSTED or edge) and (best is None or length > best[1]):
                reference: Record = (
                    {"from": seq} if index is None else {"from": seq, "buffer": index}
                )
                if not (start == 0 and length == len(blob)):
                    reference["slice"] = [start, start + length]
                best = (reference, length)
        return best


def _common(data: bytes, position: int, blob: bytes, start: int, known: int) -> int:
    """The length of the longest run data[position:] and blob[start:] share (at least `known`):
    a binary search over slice comparisons, which run in C."""
    low, high = known, min(len(data) - position, len(blob) - start)
    while low < high:
        middle = (low + high + 1) // 2
        if data[position : position + middle] == blob[start : start + middle]:
            low = middle
        else:
            high = middle - 1
    return low


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


# -- reading -----------------------------------------------------------------------------------


def is_reference(value: Any) -> bool:
    """Whether `value` is one of the reference forms above (a join included)."""
    if isinstance(value, dict) and value.keys() == {"join"}:
        parts = value["join"]
        return isinstance(parts, list) and all(
            _is_base64(part) or _is_piece(part) for part in parts
        )
    return _is_piece(value)


def _is_piece(value: Any) -> bool:
    if not isinstance(value, dict) or "from" not in value:
        return False
    if not value.keys() <= {"from", "buffer", "slice"} or not _count(value["from"]):
        return False
    if "buffer" in value and not _count(value["buffer"]):
        return False
    bounds = value.get("slice", [0, 0])
    return (
        isinstance(bounds, list)
        and len(bounds) == 2
        and all(_count(bound) for bound in bounds)
        and bounds[0] <= bounds[1]
    )


def _count(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _is_base64(value: Any) -> bool:
    if not isinstance(value, str):
        return False
    try:
        base64.b64decode(value, validate=True)
    except ValueError:
        return False
    return True


def decode(value: Any, source: Source) -> bytes:
    """The bytes a reference (or join) stands for; ValueError for a malformed one, whatever
    `source` raises for a seq or buffer it cannot resolve."""
    if isinstance(value, dict) and "join" in value:
        if not is_reference(value):
            raise ValueError(f"a malformed join: {value!r:.60}")
        return b"".join(
            base64.b64decode(part) if isinstance(part, str) else decode(part, source)
            for part in value["join"]
        )
    if not _is_piece(value):
        raise ValueError(f"a malformed buffer reference: {value!r:.60}")
    data = source(value["from"], value.get("buffer"))
    if "slice" in value:
        start, end = value["slice"]
        if end > len(data):
            raise ValueError(f"slice {start}..{end} of seq {value['from']}: it has {len(data)}")
        data = data[start:end]
    return data


def encode_descriptor(value: Any) -> Any | None:
    """The JSON of an argument that is no buffer list: NULL_DESCRIPTOR (BUF-005), else None."""
    return dict(NULL_DESCRIPTOR_JSON) if value is NULL_DESCRIPTOR else None


def decode_descriptor(value: Any) -> Any:
    """NULL_DESCRIPTOR for its JSON, else `value` unchanged."""
    return NULL_DESCRIPTOR if value == NULL_DESCRIPTOR_JSON else value
