"""SecBuffer values and the bytes shorthand for one SECBUFFER_TOKEN."""

from __future__ import annotations

import enum
from collections.abc import Sequence
from typing import Any, cast

import attrs

from sspi_model.values import Value


class SecBufferType(enum.IntEnum):
    SECBUFFER_EMPTY = 0
    SECBUFFER_DATA = 1
    SECBUFFER_TOKEN = 2
    SECBUFFER_PKG_PARAMS = 3
    SECBUFFER_MISSING = 4
    SECBUFFER_EXTRA = 5
    SECBUFFER_STREAM_TRAILER = 6
    SECBUFFER_STREAM_HEADER = 7
    SECBUFFER_PADDING = 9
    SECBUFFER_STREAM = 10
    SECBUFFER_CHANNEL_BINDINGS = 14
    SECBUFFER_ALERT = 17
    SECBUFFER_APPLICATION_PROTOCOLS = 18

    def __repr__(self) -> str:
        return f"SecBufferType.{self.name}"


SECBUFFER_EMPTY = SecBufferType.SECBUFFER_EMPTY
SECBUFFER_DATA = SecBufferType.SECBUFFER_DATA
SECBUFFER_PADDING = SecBufferType.SECBUFFER_PADDING
SECBUFFER_STREAM = SecBufferType.SECBUFFER_STREAM
SECBUFFER_STREAM_HEADER = SecBufferType.SECBUFFER_STREAM_HEADER
SECBUFFER_STREAM_TRAILER = SecBufferType.SECBUFFER_STREAM_TRAILER
SECBUFFER_TOKEN = SecBufferType.SECBUFFER_TOKEN
SECBUFFER_MISSING = SecBufferType.SECBUFFER_MISSING
SECBUFFER_EXTRA = SecBufferType.SECBUFFER_EXTRA
SECBUFFER_ALERT = SecBufferType.SECBUFFER_ALERT
SECBUFFER_READONLY = 0x80000000
SECBUFFER_READONLY_WITH_CHECKSUM = 0x10000000
SECBUFFER_ATTRMASK = 0xF0000000


class NullDescriptor(enum.Enum):
    """A NULL PSecBufferDesc (pOutput = NULL), distinct from `None`, which the convenient API
    reads as "a buffer large enough" (BUF-003, BUF-005)."""

    NULL_DESCRIPTOR = "NULL"

    def __repr__(self) -> str:
        return "NULL_DESCRIPTOR"


NULL_DESCRIPTOR = NullDescriptor.NULL_DESCRIPTOR


def _u32(instance: Any, attribute: attrs.Attribute[int], value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"SecBuffer.{attribute.name} must be an int, got {type(value).__name__}")
    if not 0 <= value <= 0xFFFFFFFF:
        raise ValueError(f"SecBuffer.{attribute.name} must fit 32 bits, got {value}")


def _bytes(instance: Any, attribute: attrs.Attribute[bytes], value: Any) -> None:
    if not isinstance(value, bytes):
        raise TypeError(f"SecBuffer.data must be bytes, got {type(value).__name__}")


@attrs.frozen(repr=False, eq=False)
class SecBuffer(Value):
    """One SecBuffer.

    `data` is what the buffer holds. `size` is cbBuffer: for a caller-supplied output buffer it
    is the capacity, otherwise len(data) (or, for SECBUFFER_MISSING, the count of bytes still
    needed). `allocation` is the package allocation (a pointer the caller must pass to
    FreeContextBuffer) when ISC/ASC_REQ_ALLOCATE_MEMORY was asked for, else None.
    """

    buffer_type: int = attrs.field(validator=_u32)
    data: bytes = attrs.field(default=b"", validator=_bytes)
    size: int | None = attrs.field(default=None, validator=attrs.validators.optional(_u32))
    allocation: int | None = None

    @property
    def base_type(self) -> int:
        return self.buffer_type & ~SECBUFFER_ATTRMASK

    @property
    def cb(self) -> int:
        return len(self.data) if self.size is None else self.size


_new_object = object.__new__
_set_field = object.__setattr__


def token_buffer(data: bytes, allocation: int | None = None) -> SecBuffer:
    """SecBuffer(SECBUFFER_TOKEN, data, allocation=allocation) for `data` known to be bytes: the
    attrs __init__ without its validators, which would pass (the model's hot paths build one
    per leg)."""
    buffer: SecBuffer = _new_object(SecBuffer)
    _set_field(buffer, "buffer_type", 2)
    _set_field(buffer, "data", data)
    _set_field(buffer, "size", None)
    _set_field(buffer, "allocation", allocation)
    return buffer


if tuple(field.name for field in attrs.fields(SecBuffer)) != (
    "buffer_type",
    "data",
    "size",
    "allocation",
):  # pragma: no cover - attrs laid the class out differently: the ordinary way

    def token_buffer(data: bytes, allocation: int | None = None) -> SecBuffer:
        return SecBuffer(2, data, allocation=allocation)


def token(data: bytes) -> tuple[SecBuffer, ...]:
    """The bytes shorthand: one SECBUFFER_TOKEN."""
    return (SecBuffer(SECBUFFER_TOKEN, data),)


def as_buffers(
    value: bytes | Sequence[SecBuffer] | None, parameter: str
) -> tuple[SecBuffer, ...] | None:
    """Normalise an `input`/`output` argument; a wrong type is a TypeError naming `parameter`."""
    if value is None:
        return None
    if value.__class__ is bytes:  # the common case, without the validators (they would pass)
        return (token_buffer(value),)
    if isinstance(value, (bytes, bytearray, memoryview)):
        return token(bytes(value))
    if isinstance(value, (str, SecBuffer)) or not isinstance(value, Sequence):
        raise TypeError(
            f"{parameter} must be bytes, a sequence of SecBuffer or None, "
            f"got {type(value).__name__}"
        )
    buffers: tuple[SecBuffer, ...] = tuple(cast(Sequence[SecBuffer], value))
    for item in buffers:
        if not isinstance(item, SecBuffer):
            raise TypeError(f"{parameter} items must be SecBuffer, got {type(item).__name__}")
    return buffers


def first_token(buffers: tuple[SecBuffer, ...] | None) -> bytes | None:
    """The data of the first SECBUFFER_TOKEN (attribute bits ignored), or None (BUF-004)."""
    if buffers is None:
        return None
    for buffer in buffers:
        if buffer.base_type == SECBUFFER_TOKEN:
            return buffer.data
    return None
