"""SECBUFFER_APPLICATION_PROTOCOLS: the ALPN lists a caller passes on the first ISC/ASC leg.

Layout (sspi.h SEC_APPLICATION_PROTOCOLS, little endian):
    ULONG ProtocolListsSize, then entries SEC_APPLICATION_PROTOCOL_LIST
        ULONG ProtoNegoExt (SecApplicationProtocolNegotiationExt_ALPN = 2), USHORT
        ProtocolListSize, ProtocolList: 8-bit-length-prefixed names, most preferred first.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence

from sspi_model.buffers import SecBuffer, SecBufferType
from sspi_model.constants import SecApplicationProtocolNegotiationExt_ALPN

_U32 = struct.Struct("<I")
_ENTRY = struct.Struct("<IH")


class MalformedProtocols(Exception):
    """The SECBUFFER_APPLICATION_PROTOCOLS buffer does not parse."""


def encode_names(names: Sequence[bytes]) -> bytes:
    """A ProtocolList: each name with its 8-bit length."""
    return b"".join(bytes([len(name)]) + name for name in names)


def decode_names(data: bytes) -> tuple[bytes, ...]:
    names, pos = list[bytes](), 0
    while pos < len(data):
        end = pos + 1 + data[pos]
        if data[pos] == 0 or end > len(data):
            raise MalformedProtocols("bad protocol name length")
        names.append(data[pos + 1 : end])
        pos = end
    return tuple(names)


def application_protocols(*names: str | bytes) -> SecBuffer:
    """The SECBUFFER_APPLICATION_PROTOCOLS input buffer offering `names` by ALPN (ATT-010)."""
    raw = [name.encode("ascii") if isinstance(name, str) else bytes(name) for name in names]
    for name in raw:
        if not 0 < len(name) < 256:
            raise ValueError(f"an ALPN protocol id is 1..255 bytes, got {name!r}")
    protocol_list = encode_names(raw)
    entry = _ENTRY.pack(SecApplicationProtocolNegotiationExt_ALPN, len(protocol_list))
    entry += protocol_list
    return SecBuffer(SecBufferType.SECBUFFER_APPLICATION_PROTOCOLS, _U32.pack(len(entry)) + entry)


def offered(buffers: tuple[SecBuffer, ...] | None) -> tuple[bytes, ...] | None:
    """The ALPN names of the first APPLICATION_PROTOCOLS buffer; None when there is none;
    MalformedProtocols when it does not parse (ATT-010)."""
    if buffers is None:
        return None
    for buffer in buffers:
        if buffer.base_type == SecBufferType.SECBUFFER_APPLICATION_PROTOCOLS:
            return _parse(buffer.data)
    return None


def _parse(data: bytes) -> tuple[bytes, ...]:
    if len(data) < _U32.size or _U32.unpack_from(data)[0] != len(data) - _U32.size:
        raise MalformedProtocols("bad ProtocolListsSize")
    pos, names = _U32.size, list[bytes]()
    while pos < len(data):
        if pos + _ENTRY.size > len(data):
            raise MalformedProtocols("truncated entry")
        extension, size = _ENTRY.unpack_from(data, pos)
        pos += _ENTRY.size
        if pos + size > len(data):
            raise MalformedProtocols("truncated protocol list")
        if extension == SecApplicationProtocolNegotiationExt_ALPN:
            names.extend(decode_names(data[pos : pos + size]))
        pos += size
    return tuple(names)
