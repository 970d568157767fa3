"""The descriptors the differential machine hands the message functions, and what it does to a
sealed or signed message on its way to the receiver.

Each shape and each tampering is one pure function applied alike to the model's and the
backend's buffers, so both sides see the same mistake; the names are what the steps and the
known lists (specs/divergences) print.
"""

from __future__ import annotations

from collections.abc import Callable

from sspi_model.buffers import (
    SECBUFFER_DATA,
    SECBUFFER_EMPTY,
    SECBUFFER_READONLY,
    SECBUFFER_TOKEN,
    SecBuffer,
)
from sspi_model.constants import SECQOP_WRAP_NO_ENCRYPT

Descriptor = tuple[SecBuffer, ...] | None
SIGNATURE = 16  # cbMaxSignature / cbSecurityTrailer of NTLM (MSG-011)

# shape -> (fQOP, descriptor of the data): what a sender passes to MakeSignature/EncryptMessage.
# "plain" is the layout callers use (TOKEN(cbSecurityTrailer), DATA); the others are the
# mistakes MSG-011..013 decide, and the documented variants (READONLY data, an extra EMPTY).
SEND_SHAPES: dict[str, Callable[[bytes], tuple[int, Descriptor]]] = {
    "plain": lambda data: (0, (SecBuffer(SECBUFFER_TOKEN, size=SIGNATURE), SecBuffer(1, data))),
    "data-first": lambda data: (
        0, (SecBuffer(SECBUFFER_DATA, data), SecBuffer(SECBUFFER_TOKEN, size=SIGNATURE)),
    ),
    "wrap-no-encrypt": lambda data: (
        SECQOP_WRAP_NO_ENCRYPT,
        (SecBuffer(SECBUFFER_TOKEN, size=SIGNATURE), SecBuffer(SECBUFFER_DATA, data)),
    ),
    "readonly-data": lambda data: (
        0,
        (
            SecBuffer(SECBUFFER_TOKEN, size=SIGNATURE),
            SecBuffer(SECBUFFER_DATA, b"header"),
            SecBuffer(SECBUFFER_DATA | SECBUFFER_READONLY, data),
        ),
    ),
    "extra-empty": lambda data: (
        0,
        (
            SecBuffer(SECBUFFER_TOKEN, size=SIGNATURE),
            SecBuffer(SECBUFFER_DATA, data),
            SecBuffer(SECBUFFER_EMPTY),
        ),
    ),
    "no-token": lambda data: (0, (SecBuffer(SECBUFFER_DATA, data),)),
    "no-data": lambda data: (0, (SecBuffer(SECBUFFER_TOKEN, size=SIGNATURE),)),
    "short-token": lambda data: (
        0, (SecBuffer(SECBUFFER_TOKEN, size=SIGNATURE // 2), SecBuffer(SECBUFFER_DATA, data)),
    ),
    "unknown-qop": lambda data: (
        7, (SecBuffer(SECBUFFER_TOKEN, size=SIGNATURE), SecBuffer(SECBUFFER_DATA, data)),
    ),
    "null-descriptor": lambda data: (0, None),
}


def _flip(data: bytes, index: int) -> bytes:
    if not data:
        return b"\x00"  # nothing to change: a byte the sender did not send
    index = min(index, len(data) - 1)
    return data[:index] + bytes([data[index] ^ 0x01]) + data[index + 1 :]


def _retyped(buffers: Descriptor, base_type: int, change: Callable[[bytes], bytes]) -> Descriptor:
    """The descriptor with the first buffer of `base_type` holding change(its bytes)."""
    if buffers is None:
        return None
    out = list(buffers)
    for index, buffer in enumerate(out):
        if buffer.base_type == base_type:
            out[index] = SecBuffer(buffer.buffer_type, change(buffer.data))
            break
    return tuple(out)


def _without(buffers: Descriptor, base_type: int) -> Descriptor:
    return None if buffers is None else tuple(b for b in buffers if b.base_type != base_type)


# tampering -> what the wire (or a careless receiver) does to the message's buffers.
TAMPERINGS: dict[str, Callable[[Descriptor], Descriptor]] = {
    "none": lambda buffers: buffers,
    "data-byte": lambda buffers: _retyped(buffers, SECBUFFER_DATA, lambda d: _flip(d, 0)),
    # Byte 4 is inside the checksum of an NTLMSSP_MESSAGE_SIGNATURE (version, checksum, seq).
    "signature-byte": lambda buffers: _retyped(buffers, SECBUFFER_TOKEN, lambda d: _flip(d, 4)),
    "short-signature": lambda buffers: _retyped(buffers, SECBUFFER_TOKEN, lambda d: d[:8]),
    "no-token": lambda buffers: _without(buffers, SECBUFFER_TOKEN),
    "no-data": lambda buffers: _without(buffers, SECBUFFER_DATA),
    "reversed": lambda buffers: None if buffers is None else tuple(reversed(buffers)),
    "null-descriptor": lambda buffers: None,
}


def plaintext(buffers: Descriptor) -> bytes:
    """The bytes of the writable DATA buffers, in order (what the receiver reads)."""
    if buffers is None:
        return b""
    return b"".join(
        b.data for b in buffers
        if b.base_type == SECBUFFER_DATA and not b.buffer_type & SECBUFFER_READONLY
    )
