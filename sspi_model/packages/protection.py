"""Structural message protection shared by the model's packages: keys, checksums, sealing.

No real cryptography. A SHA-256 over (key, direction, sequence number, label, bytes) stands for
a MAC, and a SHA-256 counter stream XORed over the bytes stands for sealing (so sealed bytes
differ from the plaintext and a caller cannot read them without the context). That is enough to
make the lifecycle checkable (MSG-006): a changed byte fails the checksum
(SEC_E_MESSAGE_ALTERED), a message protected under another context's key fails it too, and a
replayed or reordered message carries a sequence number other than the one expected
(SEC_E_OUT_OF_SEQUENCE).

Each side of a context holds one Channel: a key both sides derive from the handshake, a
direction label for each way, and one sequence counter per direction (MSG-007, MS-NLMP
3.4.4: "SeqNum ... MUST start at 0 and is incremented by one for each message sent").
"""

from __future__ import annotations

import hashlib

import attrs

CLIENT_TO_SERVER, SERVER_TO_CLIENT = b"c2s", b"s2c"


def derive_key(label: bytes, *parts: bytes) -> bytes:
    """The key both sides of one handshake derive from what they both saw."""
    digest = hashlib.sha256(b"model-key|" + label)
    for part in parts:
        digest.update(b"|" + part)
    return digest.digest()


def checksum(key: bytes, direction: bytes, seq: int, label: bytes, data: bytes, size: int) -> bytes:
    digest = hashlib.sha256(b"%s|%s|%d|%s|" % (key, direction, seq, label) + data)
    return digest.digest()[:size]


def seal(key: bytes, direction: bytes, seq: int, data: bytes) -> bytes:
    """XOR `data` with a stream from (key, direction, seq); the same call unseals."""
    stream = bytearray()
    block = 0
    while len(stream) < len(data):
        stream += hashlib.sha256(b"%s|%s|%d|seal|%d" % (key, direction, seq, block)).digest()
        block += 1
    return bytes(a ^ b for a, b in zip(data, stream, strict=False))


@attrs.define
class Channel:
    """One side's view of a protected connection: the key, the two directions, the counters."""

    key: bytes
    send_direction: bytes
    receive_direction: bytes
    send_seq: int = 0
    receive_seq: int = 0

    @classmethod
    def for_side(cls, key: bytes, is_client: bool) -> Channel:
        if is_client:
            return cls(key, CLIENT_TO_SERVER, SERVER_TO_CLIENT)
        return cls(key, SERVER_TO_CLIENT, CLIENT_TO_SERVER)
