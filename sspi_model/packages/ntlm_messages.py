"""NTLM's (and so Negotiate's) message functions over a protection Channel.

Descriptors, as MS-NLMP and the NTLM pages have them:
    MakeSignature    DATA..., TOKEN(>= cbMaxSignature 16)       the TOKEN receives the signature
    VerifySignature  DATA..., TOKEN(the signature)
    EncryptMessage   TOKEN(>= cbSecurityTrailer 16), DATA..., [PADDING]   DATA sealed in place
    DecryptMessage   TOKEN(the signature), DATA...                        DATA unsealed in place
The signature is shaped like NTLMSSP_MESSAGE_SIGNATURE (MS-NLMP 2.2.2.9): u32 version 1, an
8-byte checksum, u32 SeqNum (little endian). Buffers are found by type, in any order (USEBUF);
a DATA buffer marked SECBUFFER_READONLY or READONLY_WITH_CHECKSUM is signed but not sealed
(MSG-012). A failed check changes nothing: the expected SeqNum is not incremented, so the next
in-order message still verifies (MSG-010, MS-NLMP 3.4.4).
"""

from __future__ import annotations

import struct

from sspi_model.buffers import (
    SECBUFFER_ATTRMASK,
    SECBUFFER_DATA,
    SECBUFFER_PADDING,
    SECBUFFER_TOKEN,
    SecBuffer,
)
from sspi_model.constants import SECQOP_WRAP_NO_ENCRYPT
from sspi_model.lifecycle import Call, MessageOutcome
from sspi_model.packages.base import MessageLeg
from sspi_model.packages.protection import Channel, checksum, seal
from sspi_model.status import SecStatus

SIGNATURE_SIZE = 16  # cbMaxSignature and cbSecurityTrailer of NTLM (NTLM-008)
_SIGNATURE = struct.Struct("<I8sI")
_VERSION = 1
_SIGN, _SEAL, _WRAP = b"sign", b"seal", b"wrap"  # MakeSignature / sealed / WRAP_NO_ENCRYPT


def _refused(status: SecStatus, buffers: tuple[SecBuffer, ...], *rules: str) -> MessageLeg:
    return MessageLeg(status, MessageOutcome.REJECTED, buffers, rules=rules)


def _index(buffers: tuple[SecBuffer, ...], base_type: int) -> int | None:
    for index, buffer in enumerate(buffers):
        if buffer.base_type == base_type:
            return index
    return None


def _data_indexes(buffers: tuple[SecBuffer, ...]) -> list[int]:
    return [i for i, buffer in enumerate(buffers) if buffer.base_type == SECBUFFER_DATA]


def _sealed(buffer: SecBuffer) -> bool:
    """Whether EncryptMessage seals this DATA buffer (the read-only ones are only signed)."""
    return not buffer.buffer_type & SECBUFFER_ATTRMASK


def _plain(buffers: tuple[SecBuffer, ...]) -> bytes:
    return b"".join(buffers[i].data for i in _data_indexes(buffers))


def _replace(buffers: tuple[SecBuffer, ...], index: int, new: SecBuffer) -> tuple[SecBuffer, ...]:
    return (*buffers[:index], new, *buffers[index + 1 :])


def _signature(channel: Channel, label: bytes, data: bytes) -> bytes:
    seq = channel.send_seq
    mac = checksum(channel.key, channel.send_direction, seq, label, data, 8)
    return _SIGNATURE.pack(_VERSION, mac, seq)


def _read_signature(buffers: tuple[SecBuffer, ...]) -> tuple[bytes, int] | None:
    index = _index(buffers, SECBUFFER_TOKEN)
    if index is None or len(buffers[index].data) != SIGNATURE_SIZE:
        return None
    version, mac, seq = _SIGNATURE.unpack(buffers[index].data)
    return (mac, seq) if version == _VERSION else None


def _check(channel: Channel, mac: bytes, seq: int, label: bytes, data: bytes) -> bool:
    return checksum(channel.key, channel.receive_direction, seq, label, data, 8) == mac


def make_signature(channel: Channel, buffers: tuple[SecBuffer, ...], qop: int) -> MessageLeg:
    if qop:  # NTLM has no signing qualities (MSG-013)
        return _refused(SecStatus.SEC_E_QOP_NOT_SUPPORTED, buffers, "MSG-013")
    index = _index(buffers, SECBUFFER_TOKEN)
    if index is None or buffers[index].cb < SIGNATURE_SIZE:
        return _refused(SecStatus.SEC_E_INVALID_TOKEN, buffers, "MSG-011")
    signature = _signature(channel, _SIGN, _plain(buffers))
    channel.send_seq += 1  # MSG-007
    out = _replace(buffers, index, SecBuffer(buffers[index].buffer_type, signature))
    return MessageLeg(SecStatus.SEC_E_OK, MessageOutcome.DONE, out, rules=("MSG-007",))


def verify_signature(channel: Channel, buffers: tuple[SecBuffer, ...]) -> MessageLeg:
    found = _read_signature(buffers)
    if found is None:
        return _refused(SecStatus.SEC_E_INVALID_TOKEN, buffers, "MSG-011")
    mac, seq = found
    if not _check(channel, mac, seq, _SIGN, _plain(buffers)):
        return _refused(SecStatus.SEC_E_MESSAGE_ALTERED, buffers, "MSG-006")
    if seq != channel.receive_seq:  # a replay or a reorder (MSG-008)
        return _refused(SecStatus.SEC_E_OUT_OF_SEQUENCE, buffers, "MSG-008")
    channel.receive_seq += 1
    return MessageLeg(SecStatus.SEC_E_OK, MessageOutcome.DONE, buffers, 0, ("MSG-007",))


def encrypt_message(channel: Channel, buffers: tuple[SecBuffer, ...], qop: int) -> MessageLeg:
    if qop not in (0, SECQOP_WRAP_NO_ENCRYPT):  # MSG-013
        return _refused(SecStatus.SEC_E_QOP_NOT_SUPPORTED, buffers, "MSG-013")
    token = _index(buffers, SECBUFFER_TOKEN)
    data = _data_indexes(buffers)
    if token is None or not data:  # EMG: "No SECBUFFER_DATA type buffer was found"
        return _refused(SecStatus.SEC_E_INVALID_TOKEN, buffers, "MSG-011")
    if buffers[token].cb < SIGNATURE_SIZE:  # the trailer does not fit (EMN, MSG-011)
        return _refused(SecStatus.SEC_E_BUFFER_TOO_SMALL, buffers, "MSG-011")
    label = _WRAP if qop else _SEAL
    signature = _signature(channel, label, _plain(buffers))
    seq = channel.send_seq
    out = list(buffers)
    for index in data:
        buffer = buffers[index]
        if not qop and _sealed(buffer):  # MSG-012: READONLY buffers are signed, not sealed
            sealed = seal(channel.key, channel.send_direction, seq, buffer.data)
            out[index] = SecBuffer(buffer.buffer_type, sealed)
    out[token] = SecBuffer(buffers[token].buffer_type, signature)
    padding = _index(buffers, SECBUFFER_PADDING)
    if padding is not None:  # NTLM's cbBlockSize is 0: no padding is written (NTLM-008)
        out[padding] = SecBuffer(buffers[padding].buffer_type, b"", size=0)
    channel.send_seq += 1
    return MessageLeg(SecStatus.SEC_E_OK, MessageOutcome.DONE, tuple(out), rules=("MSG-007",))


def decrypt_message(channel: Channel, buffers: tuple[SecBuffer, ...]) -> MessageLeg:
    found = _read_signature(buffers)
    data = _data_indexes(buffers)
    if found is None or not data:  # DMN: "At least one of these must be of type SECBUFFER_DATA"
        return _refused(SecStatus.SEC_E_INVALID_TOKEN, buffers, "MSG-011")
    mac, seq = found
    unsealed = list(buffers)
    for index in data:
        buffer = buffers[index]
        if _sealed(buffer):
            plain = seal(channel.key, channel.receive_direction, seq, buffer.data)
            unsealed[index] = SecBuffer(buffer.buffer_type, plain)
    if _check(channel, mac, seq, _SEAL, _plain(tuple(unsealed))):
        out, qop = tuple(unsealed), 0
    elif _check(channel, mac, seq, _WRAP, _plain(buffers)):
        out, qop = buffers, SECQOP_WRAP_NO_ENCRYPT  # DMN: pfQOP says it was not sealed
    else:
        return _refused(SecStatus.SEC_E_MESSAGE_ALTERED, buffers, "MSG-006")
    if seq != channel.receive_seq:
        return _refused(SecStatus.SEC_E_OUT_OF_SEQUENCE, buffers, "MSG-008")
    channel.receive_seq += 1
    return MessageLeg(SecStatus.SEC_E_OK, MessageOutcome.DONE, out, qop, ("MSG-007",))


def message(
    channel: Channel | None, call: Call, buffers: tuple[SecBuffer, ...], qop: int
) -> MessageLeg:
    """One message call on an NTLM context (the table let it through: it is established)."""
    if channel is None:  # pragma: no cover - an established NTLM context always has its keys
        raise AssertionError("an established NTLM context without keys")
    if call is Call.MAKE_SIGNATURE:
        return make_signature(channel, buffers, qop)
    if call is Call.VERIFY_SIGNATURE:
        return verify_signature(channel, buffers)
    if call is Call.ENCRYPT_MESSAGE:
        return encrypt_message(channel, buffers, qop)
    return decrypt_message(channel, buffers)
