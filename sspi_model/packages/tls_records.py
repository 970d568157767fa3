"""Schannel's protected records: EncryptMessage / DecryptMessage in stream mode.

After the handshake every record is protected the TLS 1.3 way (an inner content type under
outer type 23, RFC 8446 5.2), for both protocol versions (MSG-034, a model decision):
    header   u8 23, u16 0x0303, u16 length               cbHeader 5 (SECPKG_ATTR_STREAM_SIZES)
    body     the sealed DATA bytes
    trailer  u8 inner type (23 data, 21 alert, 22 handshake), u32 sequence number,
             31-byte checksum over (key, direction, sequence, inner type, plaintext)
                                                         cbTrailer 36
The sequence number is explicit (TLS keeps it implicit) so that a replayed or reordered record
is told from a changed one: SEC_E_OUT_OF_SEQUENCE and SEC_E_MESSAGE_ALTERED (MSG-008, MSG-006).
"""

from __future__ import annotations

import struct

import attrs

from sspi_model.buffers import (
    SECBUFFER_DATA,
    SECBUFFER_EMPTY,
    SECBUFFER_EXTRA,
    SECBUFFER_MISSING,
    SECBUFFER_STREAM_HEADER,
    SECBUFFER_STREAM_TRAILER,
    SecBuffer,
)
from sspi_model.lifecycle import MessageOutcome
from sspi_model.packages.base import MessageLeg
from sspi_model.packages.protection import Channel, checksum, seal
from sspi_model.status import SecStatus
from sspi_model.values import Value

APPLICATION_DATA, ALERT, HANDSHAKE = 23, 21, 22
RECORD_VERSION = 0x0303
HEADER_SIZE, TRAILER_SIZE = 5, 36
MAX_MESSAGE = 16384  # cbMaximumMessage
CLOSE_NOTIFY = b"\x01\x00"  # alert level warning, description close_notify (RFC 8446 6.1)
_HEADER = struct.Struct(">BHH")
_TRAILER_HEAD = struct.Struct(">BI")
_MAC_SIZE = TRAILER_SIZE - _TRAILER_HEAD.size
_LABEL = b"record"


def protect(channel: Channel, inner_type: int, plaintext: bytes) -> tuple[bytes, bytes, bytes]:
    """(header, sealed body, trailer) of the next record we send; the counter moves on."""
    seq = channel.send_seq
    channel.send_seq += 1  # MSG-007
    mac = checksum(
        channel.key, channel.send_direction, seq, _LABEL, bytes([inner_type]) + plaintext, _MAC_SIZE
    )
    header = _HEADER.pack(APPLICATION_DATA, RECORD_VERSION, len(plaintext) + TRAILER_SIZE)
    body = seal(channel.key, channel.send_direction, seq, plaintext)
    return header, body, _TRAILER_HEAD.pack(inner_type, seq) + mac


def record(channel: Channel, inner_type: int, plaintext: bytes) -> bytes:
    return b"".join(protect(channel, inner_type, plaintext))


@attrs.frozen(repr=False, eq=False)
class Opened(Value):
    """A record read from the front of the received bytes (not yet consumed)."""

    inner_type: int
    plaintext: bytes
    length: int  # of the whole record: header + body + trailer
    seq: int


@attrs.frozen(repr=False, eq=False)
class Short(Value):
    missing: int  # how many more bytes the first record needs (SECBUFFER_MISSING)


def open_record(channel: Channel, data: bytes) -> Opened | Short | SecStatus:
    """The first record of `data`, checked; a status for one that fails (MSG-006, MSG-008)."""
    if len(data) < HEADER_SIZE:
        return Short(HEADER_SIZE - len(data))
    outer, version, length = _HEADER.unpack_from(data)
    if outer != APPLICATION_DATA or version != RECORD_VERSION or length < TRAILER_SIZE:
        return SecStatus.SEC_E_DECRYPT_FAILURE  # not a protected record (MSG-030)
    if len(data) < HEADER_SIZE + length:
        return Short(HEADER_SIZE + length - len(data))
    end = HEADER_SIZE + length
    sealed = data[HEADER_SIZE : end - TRAILER_SIZE]
    inner_type, seq = _TRAILER_HEAD.unpack_from(data, end - TRAILER_SIZE)
    mac = data[end - _MAC_SIZE : end]
    plaintext = seal(channel.key, channel.receive_direction, seq, sealed)
    expected = checksum(
        channel.key,
        channel.receive_direction,
        seq,
        _LABEL,
        bytes([inner_type]) + plaintext,
        _MAC_SIZE,
    )
    if mac != expected:  # a changed byte, or another context's record
        return SecStatus.SEC_E_MESSAGE_ALTERED
    if seq != channel.receive_seq:  # a replayed or reordered record
        return SecStatus.SEC_E_OUT_OF_SEQUENCE
    return Opened(inner_type, plaintext, end, seq)


def _first(buffers: tuple[SecBuffer, ...], base_type: int) -> int | None:
    for index, buffer in enumerate(buffers):
        if buffer.base_type == base_type:
            return index
    return None


def _refused(status: SecStatus, buffers: tuple[SecBuffer, ...], *rules: str) -> MessageLeg:
    return MessageLeg(status, MessageOutcome.REJECTED, buffers, rules=rules)


def encrypt(channel: Channel, buffers: tuple[SecBuffer, ...], qop: int) -> MessageLeg:
    """EncryptMessage: STREAM_HEADER, DATA, STREAM_TRAILER (and EMPTY) in, one record out."""
    if qop:  # SECQOP_WRAP_OOB_DATA (an alert) is not modelled (MSG-033)
        return _refused(SecStatus.SEC_E_QOP_NOT_SUPPORTED, buffers, "MSG-033")
    header = _first(buffers, SECBUFFER_STREAM_HEADER)
    data = _first(buffers, SECBUFFER_DATA)
    trailer = _first(buffers, SECBUFFER_STREAM_TRAILER)
    if header is None or data is None or trailer is None:
        return _refused(SecStatus.SEC_E_INVALID_TOKEN, buffers, "MSG-031")
    if buffers[header].cb < HEADER_SIZE or buffers[trailer].cb < TRAILER_SIZE:
        return _refused(SecStatus.SEC_E_BUFFER_TOO_SMALL, buffers, "MSG-031")
    if len(buffers[data].data) > MAX_MESSAGE:
        return _refused(SecStatus.SEC_E_INVALID_TOKEN, buffers, "MSG-031")
    head, body, trail = protect(channel, APPLICATION_DATA, buffers[data].data)
    out = list(buffers)
    # cbBuffer of each is what was written: the caller sends header + DATA + trailer (MSG-035).
    out[header] = SecBuffer(buffers[header].buffer_type, head)
    out[data] = SecBuffer(buffers[data].buffer_type, body)
    out[trailer] = SecBuffer(buffers[trailer].buffer_type, trail)
    return MessageLeg(SecStatus.SEC_E_OK, MessageOutcome.DONE, tuple(out), rules=("MSG-035",))


def stream_shape(buffers: tuple[SecBuffer, ...]) -> tuple[int, list[int]] | None:
    """(the DATA buffer, three EMPTY buffers) of a DecryptMessage descriptor (MSG-031)."""
    data = _first(buffers, SECBUFFER_DATA)
    empty = [i for i, b in enumerate(buffers) if b.base_type == SECBUFFER_EMPTY]
    if data is None or len(empty) < 3:
        return None
    return data, empty[:3]


def incomplete(buffers: tuple[SecBuffer, ...], empty: list[int], missing: int) -> MessageLeg:
    """SEC_E_INCOMPLETE_MESSAGE: an EMPTY buffer turns MISSING; nothing else changes (MSG-032)."""
    out = list(buffers)
    out[empty[0]] = SecBuffer(SECBUFFER_MISSING, b"", size=missing)
    status = SecStatus.SEC_E_INCOMPLETE_MESSAGE
    return MessageLeg(status, MessageOutcome.REJECTED, tuple(out), rules=("MSG-032",))


def stream_result(
    buffers: tuple[SecBuffer, ...],
    data: int,
    empty: list[int],
    received: bytes,
    opened: Opened | None,
    plaintext: bytes,
    unread: int,
) -> tuple[SecBuffer, ...]:
    """The descriptor retyped in place (STREAM): [0] STREAM_HEADER, [1] DATA (the plaintext),
    [2] STREAM_TRAILER, [3] EXTRA (the count of unread bytes at the end of the input) or EMPTY;
    buffers the call does not use keep their place after these four (MSG-036)."""
    if opened is None:
        head, trail = b"", b""
    else:
        head = received[:HEADER_SIZE]
        trail = received[opened.length - TRAILER_SIZE : opened.length]
    last = SecBuffer(SECBUFFER_EXTRA, b"", size=unread) if unread else SecBuffer(SECBUFFER_EMPTY)
    used = {data, *empty}
    rest = tuple(b for i, b in enumerate(buffers) if i not in used)
    return (
        SecBuffer(SECBUFFER_STREAM_HEADER, head),
        SecBuffer(SECBUFFER_DATA, plaintext),
        SecBuffer(SECBUFFER_STREAM_TRAILER, trail),
        last,
        *rest,
    )
