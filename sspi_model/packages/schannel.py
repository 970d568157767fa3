"""Schannel: a TLS handshake modelled as structured records the model parses itself.

Wire shape (big endian, TLS-like so dumps look familiar). Every message is its own record:
    u8 content type, u16 record version 0x0303, u16 body length (1..16384), then the body
    0x16 handshake            u8 message type + fields
    0x14 change_cipher_spec   b"\\x01"
    0x15 alert                u8 level (2 = fatal) + u8 description
Handshake messages (TLS type numbers; str is u16 length + UTF-8):
    1  ClientHello          u16 highest version offered (0x0303 TLS 1.2, 0x0304 TLS 1.3)
    2  ServerHello          u16 chosen version, 32-byte server random (so every handshake,
                            and every context's record key, differs: MSG-006)
    8  EncryptedExtensions  (TLS 1.3 only) no fields
    11 Certificate          str subject ("" = the client has no certificate to send)
    13 CertificateRequest   no fields
    14 ServerHelloDone      no fields
    16 ClientKeyExchange    no fields
    20 Finished             12 bytes: SHA-256 over a label and the handshake records so far
No real cryptography (no key exchange, no CertificateVerify): Finished only binds the
transcript, so a tampered or spliced flight fails (SCH-010).

Legs; a flight is the records one side sends at once, [..] only when the server asked for a
client certificate (ASC_REQ_MUTUAL_AUTH):
    TLS 1.2 (SCH-012)
    ISC 1  -             -> ClientHello                                        CONTINUE
    ASC 1  ClientHello   -> ServerHello Certificate [CertificateRequest] ServerHelloDone
                                                                               CONTINUE
    ISC 2  server flight -> [Certificate] ClientKeyExchange CCS Finished       CONTINUE
    ASC 2  client flight -> CCS Finished                     SEC_E_OK with a token (ASC-009)
    ISC 3  CCS Finished  -> -                                                  SEC_E_OK
    TLS 1.3, only when both credentials ask for it, else TLS 1.2 (SCH-009)
    ISC 1  -             -> ClientHello                                        CONTINUE
    ASC 1  ClientHello   -> ServerHello EncryptedExtensions [CertificateRequest] Certificate
                            Finished                                           CONTINUE
    ISC 2  server flight -> [Certificate] Finished                             SEC_E_OK
    ASC 2  client flight -> -                                                  SEC_E_OK
Other outcomes (all legs unless named):
    input ends inside the flight   SEC_E_INCOMPLETE_MESSAGE, REJECTED, EMPTY -> MISSING (SCH-004)
    input goes past the flight     the flight's status, EMPTY -> EXTRA (SCH-005)
    ISC 2: subject CN != target    SEC_E_WRONG_PRINCIPAL + alert, FAILED (SCH-006)
    ISC 2: no client certificate   SEC_I_INCOMPLETE_CREDENTIALS, no token; the retry with the
                                   same input sends the certificate of a credential passed
                                   meanwhile, or an empty Certificate (SCH-007)
    ASC 2: no client certificate   SEC_E_INCOMPLETE_CREDENTIALS + alert, FAILED (SCH-008)
    garbage, wrong message, bad Finished: SEC_E_INVALID_TOKEN + SECBUFFER_ALERT, FAILED (SCH-010)
    ISC_REQ_DELEGATE|PROMPT_FOR_CREDS, ASC_REQ_DELEGATE: SEC_E_UNSUPPORTED_FUNCTION (SCH-011)
A single TOKEN buffer (the bytes shorthand) stands for the TOKEN + EMPTY pair Schannel wants.
"""

from __future__ import annotations

import hashlib
import itertools
import struct
from collections.abc import Callable
from typing import Any

import attrs

from sspi_model.buffers import (
    SECBUFFER_ALERT,
    SECBUFFER_EMPTY,
    SECBUFFER_EXTRA,
    SECBUFFER_MISSING,
    SECBUFFER_TOKEN,
    SecBuffer,
    first_token,
)
from sspi_model.constants import (
    CALG_AES_256,
    CALG_ECDH_EPHEM,
    CALG_SHA_384,
    SCHANNEL_ALERT,
    SCHANNEL_SESSION,
    SCHANNEL_SHUTDOWN,
    CredentialUse,
    SecPkgAttr,
)
from sspi_model.lifecycle import Call, LegOutcome, MessageOutcome
from sspi_model.packages import alpn, schannel_creds, tls_records
from sspi_model.packages.base import (
    Environment,
    LegResult,
    MessageLeg,
)
from sspi_model.packages.catalog import SCHANNEL_INFO, SCHANNEL_NAMES
from sspi_model.packages.protection import Channel, derive_key
from sspi_model.packages.schannel_creds import PROTOCOLS, TLS12, TLS13
from sspi_model.packages.schannel_creds import Certificate as Certificate
from sspi_model.packages.schannel_creds import SchannelCred as SchannelCred
from sspi_model.results import (
    ApplicationProtocol,
    CertificateContext,
    CipherInfo,
    CipherStrengths,
    ConnectionInfo,
    ContextBindings,
    ContextKeyInfo,
    ContextSessionKey,
    ContextSizes,
    CredentialNames,
    IssuerListInfoEx,
    SessionInfo,
    StreamSizes,
    SupportedAlgs,
    SupportedProtocols,
)
from sspi_model.status import SecStatus
from sspi_model.values import Value

HANDSHAKE, CHANGE_CIPHER_SPEC_TYPE, ALERT = 0x16, 0x14, 0x15
RECORD_VERSION = 0x0303
HEADER_LEN = 5
MAX_RECORD = 16384
CLIENT_HELLO, SERVER_HELLO, ENCRYPTED_EXTENSIONS = 1, 2, 8
CERTIFICATE, CERTIFICATE_REQUEST, SERVER_HELLO_DONE = 11, 13, 14
CLIENT_KEY_EXCHANGE, FINISHED = 16, 20
NEW_SESSION_TICKET, KEY_UPDATE = 4, 24  # TLS 1.3 post-handshake messages
CCS = 0x100  # the message key of a change_cipher_spec record (not a handshake type)
# Alert descriptions (RFC 5246 / RFC 8446).
UNEXPECTED_MESSAGE, HANDSHAKE_FAILURE, BAD_CERTIFICATE = 10, 40, 42
DECODE_ERROR, DECRYPT_ERROR, PROTOCOL_VERSION, CERTIFICATE_REQUIRED = 50, 51, 70, 116
NO_APPLICATION_PROTOCOL = 120
# SCHANNEL_SESSION_TOKEN.dwFlags: SSL_SESSION_ENABLE_RECONNECTS 1, SSL_SESSION_DISABLE_RECONNECTS 2
_SESSION_FLAGS = ((1).to_bytes(4, "little"), (2).to_bytes(4, "little"))
_ALERT_WARNING, _ALERT_FATAL = 1, 2  # SCHANNEL_ALERT_TOKEN.dwAlertType (TLS1_ALERT_WARNING/FATAL)

# Model values, not measured: Schannel has no signatures (max_signature 0); TLS 1.2-ish stream
# framing (5-byte record header, MAC + padding trailer, 16 KiB records, 16-byte blocks).
SCHANNEL_SIZES = ContextSizes(max_token=24576, max_signature=0, block_size=16, security_trailer=0)
SCHANNEL_STREAM_SIZES = StreamSizes(
    header=5, trailer=36, max_message=16384, buffers=4, block_size=16
)

ISC_REQ_DELEGATE, ISC_REQ_PROMPT_FOR_CREDS, ASC_REQ_DELEGATE = 0x1, 0x40, 0x1
MUTUAL_AUTH = 0x2  # ISC_REQ/ASC_REQ/_RET_MUTUAL_AUTH; Schannel: a client certificate
# REPLAY|SEQUENCE|CONFIDENTIALITY|ALLOCATE_MEMORY|CONNECTION|STREAM (ISC 0x8000, ASC 0x10000);
# MUTUAL_AUTH is granted only when a client certificate was exchanged.
_GRANTABLE_ISC = 0x4 | 0x8 | 0x10 | 0x100 | 0x800 | 0x8000
_GRANTABLE_ASC = 0x4 | 0x8 | 0x10 | 0x100 | 0x800 | 0x10000


# REMOTE/LOCAL_CERT_CONTEXT with no certificate on that side (ATT-025).
_NO_CERTIFICATE = SecStatus.SEC_E_NO_CREDENTIALS

# Server randoms are deterministic (a counter through a digest) so every run replays.
_random_serial = itertools.count(1)
RANDOM_LEN = 32


class TokenError(Exception):
    """The bytes are not the TLS flight expected here; `alert` is the description to send."""

    def __init__(self, reason: str, alert: int = DECODE_ERROR) -> None:
        super().__init__(reason)
        self.alert = alert


class _Incomplete(Exception):
    """The input ends inside the flight; `missing` more bytes are needed (approximately)."""

    def __init__(self, missing: int) -> None:
        super().__init__(missing)
        self.missing = missing


@attrs.frozen(repr=False, eq=False)
class SchannelCredential(Value):
    """Credential material: what ACH was given, and from a caller's SCHANNEL_CRED or
    SCH_CREDENTIALS the lowest version allowed and whether the server name is checked."""

    use: int
    cred: SchannelCred
    minimum: int = TLS12  # CRD-004
    check_name: bool = True  # CRD-005


def record(content_type: int, body: bytes) -> bytes:
    return struct.pack(">BHH", content_type, RECORD_VERSION, len(body)) + body


def handshake(kind: int, fields: bytes = b"") -> bytes:
    return record(HANDSHAKE, bytes([kind]) + fields)


def alert_record(description: int) -> bytes:
    return record(ALERT, bytes([2, description]))


CHANGE_CIPHER_SPEC = record(CHANGE_CIPHER_SPEC_TYPE, b"\x01")


def certificate_message(subject: str) -> bytes:
    raw = subject.encode("utf-8")
    return handshake(CERTIFICATE, struct.pack(">H", len(raw)) + raw)


def finished(label: bytes, transcript: bytes) -> bytes:
    digest = hashlib.sha256(b"model-tls|" + label + b"|" + transcript).digest()
    return handshake(FINISHED, digest[:12])


def common_name(subject: str) -> str:
    """The CN of a subject like "CN=srv.contoso.com, O=Contoso" (the whole text if none)."""
    for part in subject.split(","):
        key, sep, value = part.partition("=")
        if sep and key.strip().upper() == "CN":
            return value.strip()
    return subject.strip()


def _version(fields: bytes) -> int:
    if len(fields) != 2:
        raise TokenError("bad version field")
    return int.from_bytes(fields, "big")


def _subject(fields: bytes) -> str:
    if len(fields) < 2 or int.from_bytes(fields[:2], "big") != len(fields) - 2:
        raise TokenError("bad certificate message")
    try:
        return fields[2:].decode("utf-8")
    except UnicodeDecodeError as exc:
        raise TokenError("bad certificate subject") from exc


class _Flight:
    """Walks the records of one input flight; handshake records go into the transcript."""

    __slots__ = ("data", "pos", "transcript")

    def __init__(self, data: bytes, transcript: bytes) -> None:
        self.data = data
        self.pos = 0
        self.transcript = transcript

    def _peek(self) -> tuple[int, bytes, bytes]:
        """(message key, fields, raw record) of the next record; raises _Incomplete."""
        have = len(self.data) - self.pos
        if have >= 1 and self.data[self.pos] not in (HANDSHAKE, CHANGE_CIPHER_SPEC_TYPE, ALERT):
            raise TokenError("not a TLS record")
        if have < HEADER_LEN:
            raise _Incomplete(HEADER_LEN - have)
        ctype, version, length = struct.unpack_from(">BHH", self.data, self.pos)
        if version != RECORD_VERSION or not 0 < length <= MAX_RECORD:
            raise TokenError("bad record header")
        if have < HEADER_LEN + length:
            raise _Incomplete(HEADER_LEN + length - have)
        raw = self.data[self.pos : self.pos + HEADER_LEN + length]
        body = raw[HEADER_LEN:]
        if ctype == HANDSHAKE:
            return body[0], body[1:], raw
        if ctype == CHANGE_CIPHER_SPEC_TYPE and body == b"\x01":
            return CCS, b"", raw
        raise TokenError("alert or bad change_cipher_spec", UNEXPECTED_MESSAGE)

    def take(self, kind: int) -> bytes:
        key, fields, raw = self._peek()
        if key != kind:
            raise TokenError("unexpected message", UNEXPECTED_MESSAGE)
        self.pos += len(raw)
        if kind != CCS:
            self.transcript += raw
        return fields

    def take_empty(self, kind: int) -> None:
        if self.take(kind):
            raise TokenError("unexpected fields")

    def maybe_empty(self, kind: int) -> bool:
        if self._peek()[0] != kind:
            return False
        self.take_empty(kind)
        return True

    def take_finished(self, label: bytes) -> None:
        expected = finished(label, self.transcript)
        if self._peek()[2] != expected:
            raise TokenError("Finished does not match the transcript", DECRYPT_ERROR)
        self.take(FINISHED)


def _offered_protocols(fields: bytes) -> tuple[bytes, ...]:
    """The ALPN names after ClientHello's version: u16 length + the 8-bit-prefixed names."""
    if not fields:
        return ()
    if len(fields) < 2 or int.from_bytes(fields[:2], "big") != len(fields) - 2:
        raise TokenError("bad ALPN extension")
    try:
        return alpn.decode_names(fields[2:])
    except alpn.MalformedProtocols as error:
        raise TokenError(str(error)) from None


def _chosen_protocol(fields: bytes, offer: tuple[bytes, ...] | None) -> bytes | None:
    """The protocol after ServerHello's random (u8 length + name); one never offered is bad."""
    if not fields:
        return None
    if fields[0] + 1 != len(fields) or not offer or fields[1:] not in offer:
        raise TokenError("the server chose a protocol not offered", NO_APPLICATION_PROTOCOL)
    return fields[1:]


def _with_buffer(buffers: tuple[SecBuffer, ...], new: SecBuffer) -> tuple[SecBuffer, ...]:
    """The input with its (first) SECBUFFER_EMPTY replaced by `new`; appended if there is none."""
    for index, buffer in enumerate(buffers):
        if buffer.base_type == SECBUFFER_EMPTY:
            return (*buffers[:index], new, *buffers[index + 1 :])
    return (*buffers, new)


def _fatal(status: SecStatus, alert: int, *rules: str) -> LegResult:
    """A fatal handshake failure: the alert goes out in SECBUFFER_ALERT (the ISC and ASC pages)."""
    alert_buffer = SecBuffer(SECBUFFER_ALERT, alert_record(alert))
    return LegResult(status, LegOutcome.FAILED, extra_output=(alert_buffer,), rules=rules)


def _continue(token: bytes, attr: int, *rules: str) -> LegResult:
    return LegResult(SecStatus.SEC_I_CONTINUE_NEEDED, LegOutcome.CONTINUE, token, attr, rules=rules)


def _established(token: bytes, attr: int, *rules: str) -> LegResult:
    return LegResult(SecStatus.SEC_E_OK, LegOutcome.ESTABLISHED, token, attr, rules=rules)


def _unsupported() -> LegResult:
    return LegResult(SecStatus.SEC_E_UNSUPPORTED_FUNCTION, LegOutcome.FAILED, rules=("SCH-011",))


def _unexpected(flight: _Flight, context_req: int) -> LegResult:
    raise TokenError("no more handshake messages expected", UNEXPECTED_MESSAGE)


def _process(
    input: tuple[SecBuffer, ...] | None, transcript: bytes, leg: Callable[[_Flight], LegResult]
) -> LegResult:
    """Run `leg` over the input flight; handle MISSING, EXTRA and bad tokens for every leg.

    `leg` must not change the session before the whole flight has been read, so a partial
    flight (REJECTED) leaves the context as it was.
    """
    data = first_token(input)
    if input is None or data is None:  # nothing was received: nothing to send an alert about
        return LegResult(SecStatus.SEC_E_INVALID_TOKEN, LegOutcome.REJECTED, rules=("SCH-010",))
    flight = _Flight(data, transcript)
    try:
        result = leg(flight)
    except _Incomplete as short:
        after = _with_buffer(input, SecBuffer(SECBUFFER_MISSING, b"", size=short.missing))
        status = SecStatus.SEC_E_INCOMPLETE_MESSAGE
        return LegResult(status, LegOutcome.REJECTED, input_after=after, rules=("SCH-004",))
    except TokenError as error:
        return _fatal(SecStatus.SEC_E_INVALID_TOKEN, error.alert, "SCH-010")
    leftover = len(data) - flight.pos
    if leftover and result.status in (SecStatus.SEC_I_CONTINUE_NEEDED, SecStatus.SEC_E_OK):
        extra = SecBuffer(SECBUFFER_EXTRA, b"", size=leftover)
        result = attrs.evolve(
            result, input_after=_with_buffer(input, extra), rules=(*result.rules, "SCH-005")
        )
    return result


class _Session:
    """What both sides share: the leg, the transcript, the version and the peer's subject;
    after the handshake, the record channel and where the connection is in its shutdown."""

    __slots__ = (
        "_alert",
        "_alpn",
        "_channel",
        "_is_client",
        "_leg",
        "_peer",
        "_peer_closed",
        "_renegotiating",
        "_shutdown",
        "_transcript",
        "_version",
    )
    _is_client: bool

    def restart(self) -> None:
        self._leg, self._peer, self._transcript, self._version = 0, "", b"", TLS12
        self._channel: Channel | None = None
        self._renegotiating = self._shutdown = self._peer_closed = False
        self._alert: bytes | None = None  # level + description, queued by SHD-014
        self._alpn: bytes | None = None  # the application protocol agreed (ATT-010)

    # -- attributes (ATT rules) ---------------------------------------------------------------

    def query_attribute(self, attribute: int, allocate: Callable[[str], int]) -> Any:
        """The payload of a Schannel-answered attribute on an established context, or None."""
        if attribute == SecPkgAttr.SECPKG_ATTR_ISSUER_LIST_EX:  # ATT-026, any state
            return self._issuers()
        channel = self._channel
        if channel is None:  # pragma: no cover - the table lets only established contexts here
            return None
        if attribute == SecPkgAttr.SECPKG_ATTR_APPLICATION_PROTOCOL:  # ATT-010
            if self._alpn is None:
                return ApplicationProtocol(0, 0, b"")
            return ApplicationProtocol(1, 2, self._alpn)  # Success, ALPN
        if attribute == SecPkgAttr.SECPKG_ATTR_SESSION_INFO:  # ATT-011: no resumption modelled
            return SessionInfo(0, hashlib.sha256(b"session-id|" + self._transcript).digest())
        if attribute == SecPkgAttr.SECPKG_ATTR_CONNECTION_INFO:  # ATT-012
            bits = self._protocol_bit()
            return ConnectionInfo(bits, CALG_AES_256, 256, CALG_SHA_384, 384, CALG_ECDH_EPHEM, 256)
        if attribute == SecPkgAttr.SECPKG_ATTR_CIPHER_INFO:  # ATT-024
            return self._cipher_info()
        if attribute == SecPkgAttr.SECPKG_ATTR_REMOTE_CERT_CONTEXT:  # ATT-025
            return CertificateContext(self._peer) if self._peer else _NO_CERTIFICATE
        if attribute == SecPkgAttr.SECPKG_ATTR_LOCAL_CERT_CONTEXT:  # ATT-025
            mine = self._local_subject()
            return CertificateContext(mine) if mine else _NO_CERTIFICATE
        if attribute == SecPkgAttr.SECPKG_ATTR_KEY_INFO:  # ATT-005
            return ContextKeyInfo(
                "SHA384",
                "AES",
                256,
                CALG_SHA_384,
                CALG_AES_256,
                allocate("signature algorithm name"),
                allocate("encrypt algorithm name"),
            )
        if attribute == SecPkgAttr.SECPKG_ATTR_SESSION_KEY:  # ATT-006
            return ContextSessionKey(channel.key, allocate("session key"))
        if attribute == SecPkgAttr.SECPKG_ATTR_ENDPOINT_BINDINGS:  # ATT-013 (RFC 5929)
            server = self._peer if self._is_client else self._server_subject()
            digest = hashlib.sha256(server.encode("utf-8")).digest()
            return ContextBindings(b"tls-server-end-point:" + digest, allocate("bindings"))
        if attribute == SecPkgAttr.SECPKG_ATTR_UNIQUE_BINDINGS:  # ATT-013
            digest = hashlib.sha256(b"tls-unique|" + self._transcript).digest()[:12]
            return ContextBindings(b"tls-unique:" + digest, allocate("bindings"))
        return None

    def _server_subject(self) -> str:
        return ""

    def _local_subject(self) -> str:
        """The subject of the certificate this side sent ("" for none)."""
        return ""

    def _issuers(self) -> IssuerListInfoEx | None:
        """ISSUER_LIST_EX: a client's, once a server asked for its certificate (ATT-026)."""
        return None

    def _protocol_bit(self) -> int:
        tls13 = self._version == TLS13
        return (0x2000 if tls13 else 0x800) if self._is_client else (0x1000 if tls13 else 0x400)

    def _cipher_info(self) -> CipherInfo:
        """The model's one suite per version (the values of CONNECTION_INFO, ATT-012)."""
        tls13 = self._version == TLS13
        suite, name = (0x1302, "TLS_AES_256_GCM_SHA384") if tls13 else (
            0xC030, "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384")  # fmt: skip
        return CipherInfo(
            1, self._protocol_bit(), suite, suite, name, "AES", 256, 128, "SHA384", 384,
            "ECDH", 256, 256, "RSA", 0,
        )  # fmt: skip

    def __copy__(self) -> Any:
        """A snapshot for the core's rollback of a leg whose output did not fit (BUF-002): the
        record channel is copied too, so its counters roll back with the rest."""
        twin = object.__new__(type(self))
        for cls in type(self).__mro__:
            for slot in getattr(cls, "__slots__", ()):
                if hasattr(self, slot):
                    setattr(twin, slot, getattr(self, slot))
        if self._channel is not None:
            twin._channel = attrs.evolve(self._channel)
        return twin

    def _established_keys(self) -> None:
        """Both sides saw the same handshake: the record key comes from it (MSG-006)."""
        self._channel = Channel.for_side(derive_key(b"tls", self._transcript), self._is_client)

    # -- after the handshake ----------------------------------------------------------------

    def message(self, call: Call, buffers: tuple[SecBuffer, ...], qop: int) -> MessageLeg:
        channel = self._channel
        assert channel is not None, "the table lets message calls reach established contexts"
        if call is Call.MAKE_SIGNATURE or call is Call.VERIFY_SIGNATURE:
            # "not supported by the Schannel SSP" (MSG-020)
            status = SecStatus.SEC_E_UNSUPPORTED_FUNCTION
            return MessageLeg(status, MessageOutcome.REJECTED, buffers, rules=("MSG-020",))
        if call is Call.ENCRYPT_MESSAGE:
            return tls_records.encrypt(channel, buffers, qop)
        return self._decrypt(channel, buffers)

    def _decrypt(self, channel: Channel, buffers: tuple[SecBuffer, ...]) -> MessageLeg:
        shape = tls_records.stream_shape(buffers)
        if shape is None:  # DATA + 3 EMPTY (MSG-031)
            status = SecStatus.SEC_E_INVALID_TOKEN
            return MessageLeg(status, MessageOutcome.REJECTED, buffers, rules=("MSG-031",))
        data, empty = shape
        received = buffers[data].data
        opened = tls_records.open_record(channel, received)
        if isinstance(opened, tls_records.Short):
            return tls_records.incomplete(buffers, empty, opened.missing)
        if isinstance(opened, SecStatus):  # a bad record is fatal in TLS (MSG-030)
            return MessageLeg(opened, MessageOutcome.FAILED, buffers, rules=("MSG-030",))
        unread = len(received) - opened.length
        if opened.inner_type == tls_records.HANDSHAKE and not self._shutdown:
            # A post-handshake message: left unread for the follow-up ISC/ASC (SHD-001).
            self._renegotiating = True
            out = tls_records.stream_result(
                buffers, data, empty, received, None, b"", len(received)
            )
            status = SecStatus.SEC_I_RENEGOTIATE
            return MessageLeg(status, MessageOutcome.RENEGOTIATE, out, rules=("SHD-001",))
        channel.receive_seq += 1  # MSG-007
        out = tls_records.stream_result(buffers, data, empty, received, opened, b"", unread)
        if opened.inner_type == tls_records.ALERT and opened.plaintext == tls_records.CLOSE_NOTIFY:
            self._peer_closed = True  # SHD-003
            status = SecStatus.SEC_I_CONTEXT_EXPIRED
            return MessageLeg(status, MessageOutcome.PEER_CLOSED, out, rules=("SHD-003",))
        if opened.inner_type == tls_records.HANDSHAKE:  # after our shutdown: dropped (SHD-005)
            return MessageLeg(SecStatus.SEC_E_OK, MessageOutcome.DONE, out, rules=("SHD-005",))
        if opened.inner_type != tls_records.APPLICATION_DATA:  # another alert: fatal (MSG-030)
            status = SecStatus.SEC_E_DECRYPT_FAILURE
            return MessageLeg(status, MessageOutcome.FAILED, buffers, rules=("MSG-030",))
        out = tls_records.stream_result(
            buffers, data, empty, received, opened, opened.plaintext, unread
        )
        return MessageLeg(SecStatus.SEC_E_OK, MessageOutcome.DONE, out, rules=("MSG-036",))

    def apply_control_token(self, buffers: tuple[SecBuffer, ...]) -> MessageLeg:
        tokens = [b for b in buffers if b.base_type == SECBUFFER_TOKEN]
        if len(buffers) != 1 or len(tokens) != 1:  # one TOKEN buffer (SHD-009)
            status = SecStatus.SEC_E_INVALID_TOKEN
            return MessageLeg(status, MessageOutcome.REJECTED, buffers, rules=("SHD-009",))
        data = tokens[0].data
        kind = int.from_bytes(data[:4], "little") if len(data) >= 4 else None
        if kind == SCHANNEL_SESSION and len(data) == 8 and data[4:] in _SESSION_FLAGS:
            # SHD-013: reconnects of Session ID-based resumption, which the model never does.
            return MessageLeg(SecStatus.SEC_E_OK, MessageOutcome.DONE, buffers, rules=("SHD-013",))
        if kind == SCHANNEL_ALERT:
            return self._queue_alert(buffers, data)
        if kind != SCHANNEL_SHUTDOWN:
            # SHUTDOWN, SESSION and ALERT are modelled; RENEGOTIATE is not (SHD-009).
            status = SecStatus.SEC_E_UNSUPPORTED_FUNCTION
            return MessageLeg(status, MessageOutcome.REJECTED, buffers, rules=("SHD-009",))
        self._shutdown = True
        return MessageLeg(SecStatus.SEC_E_OK, MessageOutcome.SHUTDOWN, buffers, rules=("SHD-004",))

    def _queue_alert(self, buffers: tuple[SecBuffer, ...], data: bytes) -> MessageLeg:
        """SCHANNEL_ALERT_TOKEN {2, dwAlertType, dwAlertNumber}: the next ISC/ASC sends it
        (SHD-014); only on a connection whose records still flow both ways."""
        fields = [int.from_bytes(data[i : i + 4], "little") for i in (4, 8)]
        level, number = fields if len(data) == 12 else (0, 0)
        if level not in (_ALERT_WARNING, _ALERT_FATAL) or number > 255:
            status = SecStatus.SEC_E_INVALID_TOKEN
            return MessageLeg(status, MessageOutcome.REJECTED, buffers, rules=("SHD-014",))
        if self._shutdown or self._renegotiating or self._peer_closed:
            status = SecStatus.SEC_E_UNSUPPORTED_FUNCTION
            return MessageLeg(status, MessageOutcome.REJECTED, buffers, rules=("SHD-014",))
        self._alert = bytes([level, number])
        return MessageLeg(SecStatus.SEC_E_OK, MessageOutcome.ALERT, buffers, rules=("SHD-014",))

    def _after_handshake(self, input: tuple[SecBuffer, ...] | None) -> LegResult | None:
        """The ISC/ASC legs past the handshake: the close_notify after ApplyControlToken
        (SHD-005), or the follow-up of SEC_I_RENEGOTIATE (SHD-002); None for a handshake leg."""
        channel = self._channel
        if channel is None:
            return None
        if self._alert is not None:  # the queued alert, protected like any record (SHD-014)
            alert, self._alert = self._alert, None
            token = tls_records.record(channel, tls_records.ALERT, alert)
            outcome = LegOutcome.FAILED if alert[0] == _ALERT_FATAL else LegOutcome.ESTABLISHED
            return LegResult(SecStatus.SEC_E_OK, outcome, token)  # the table's SHD-014
        if self._shutdown:
            token = tls_records.record(channel, tls_records.ALERT, tls_records.CLOSE_NOTIFY)
            # CONTINUE: the peer's close_notify is still to come; ESTABLISHED: it came.
            outcome = LegOutcome.ESTABLISHED if self._peer_closed else LegOutcome.CONTINUE
            return LegResult(SecStatus.SEC_E_OK, outcome, token, rules=("SHD-005",))
        if not self._renegotiating:
            return None
        return self._post_handshake(channel, input)

    def _post_handshake(self, channel: Channel, input: tuple[SecBuffer, ...] | None) -> LegResult:
        data = first_token(input)
        if input is None or data is None:
            status = SecStatus.SEC_E_INVALID_TOKEN
            return LegResult(status, LegOutcome.REJECTED, rules=("SHD-002",))
        opened = tls_records.open_record(channel, data)
        if isinstance(opened, tls_records.Short):
            missing = _with_buffer(input, SecBuffer(SECBUFFER_MISSING, b"", size=opened.missing))
            status = SecStatus.SEC_E_INCOMPLETE_MESSAGE
            return LegResult(status, LegOutcome.REJECTED, input_after=missing, rules=("SHD-002",))
        kinds = (NEW_SESSION_TICKET, KEY_UPDATE)  # the post-handshake messages (SHD-002)
        if (
            isinstance(opened, SecStatus)
            or opened.inner_type != tls_records.HANDSHAKE
            or opened.plaintext[:1] not in [bytes([k]) for k in kinds]
        ):
            return LegResult(SecStatus.SEC_E_INVALID_TOKEN, LegOutcome.FAILED, rules=("SHD-002",))
        channel.receive_seq += 1
        self._renegotiating = False
        leftover = len(data) - opened.length
        after: tuple[SecBuffer, ...] | None = None
        if leftover:  # the records after it go back to DecryptMessage (SCH-005)
            after = _with_buffer(input, SecBuffer(SECBUFFER_EXTRA, b"", size=leftover))
        return LegResult(
            SecStatus.SEC_E_OK, LegOutcome.ESTABLISHED, input_after=after, rules=("SHD-002",)
        )

    @property
    def user_name(self) -> str:
        """The peer's certificate subject ("" while unknown, or for a client without one)."""
        return self._peer

    def sizes(self) -> ContextSizes:
        return SCHANNEL_SIZES

    def stream_sizes(self) -> StreamSizes:
        return SCHANNEL_STREAM_SIZES


class SchannelClientSession(_Session):
    """The ISC side; see the module docstring for the legs."""

    __slots__ = ("_check_name", "_cred", "_mine", "_minimum", "_offer", "_retry", "_target")

    def __init__(self, material: SchannelCredential, target_name: str | None) -> None:
        self.use_credential(material)
        self._target = target_name
        self._is_client = True
        self.restart()

    def restart(self) -> None:
        super().restart()
        self._retry = False  # SEC_I_INCOMPLETE_CREDENTIALS was returned; the next try goes on
        self._mine: str | None = None  # the client certificate subject sent, None if none asked
        self._offer: tuple[bytes, ...] | None = None  # the ALPN names offered (ATT-010)

    def _local_subject(self) -> str:
        return self._mine or ""

    def _issuers(self) -> IssuerListInfoEx | None:
        # The model's CertificateRequest names no CAs: an empty list, nothing to free.
        return IssuerListInfoEx() if self._retry else None

    def use_credential(self, material: Any) -> None:
        """A continuation leg passed a credential: its certificate is used from now on."""
        if isinstance(material, SchannelCredential):
            self._cred = material.cred
            self._minimum, self._check_name = material.minimum, material.check_name

    def _attr(self, context_req: int) -> int:
        return (context_req & _GRANTABLE_ISC) | (MUTUAL_AUTH if self._mine else 0)

    def step(self, input: tuple[SecBuffer, ...] | None, context_req: int) -> LegResult:
        after = self._after_handshake(input)
        if after is not None:
            return after
        if context_req & (ISC_REQ_DELEGATE | ISC_REQ_PROMPT_FOR_CREDS):
            return _unsupported()
        if self._leg == 0:
            try:
                offer = alpn.offered(input)  # ATT-010: the caller's ALPN list, if any
            except alpn.MalformedProtocols:
                return LegResult(
                    SecStatus.SEC_E_INVALID_TOKEN, LegOutcome.REJECTED, rules=("ATT-010",)
                )
            self._version = PROTOCOLS[self._cred.protocols]
            self._offer = offer
            fields = struct.pack(">H", self._version)
            if offer:
                names = alpn.encode_names(offer)
                fields += struct.pack(">H", len(names)) + names
            hello = handshake(CLIENT_HELLO, fields)
            self._transcript = hello
            self._leg = 1
            rule = "SCH-009" if self._version == TLS13 else "SCH-012"
            return _continue(hello, self._attr(context_req), rule)
        legs = {1: self._server_flight, 2: self._server_finished}
        leg = legs.get(self._leg, _unexpected)
        return _process(input, self._transcript, lambda flight: leg(flight, context_req))

    def _server_flight(self, flight: _Flight, context_req: int) -> LegResult:
        hello = flight.take(SERVER_HELLO)
        if len(hello) < 2 + RANDOM_LEN:
            raise TokenError("bad ServerHello")
        version = _version(hello[:2])
        chosen = _chosen_protocol(hello[2 + RANDOM_LEN :], self._offer)
        if version not in (TLS12, TLS13) or version > self._version:
            raise TokenError("server chose a version not offered", PROTOCOL_VERSION)
        if version == TLS13:
            flight.take_empty(ENCRYPTED_EXTENSIONS)
            requested = flight.maybe_empty(CERTIFICATE_REQUEST)
            subject = _subject(flight.take(CERTIFICATE))
            flight.take_finished(b"server")
        else:
            subject = _subject(flight.take(CERTIFICATE))
            requested = flight.maybe_empty(CERTIFICATE_REQUEST)
            flight.take_empty(SERVER_HELLO_DONE)
        if not subject:
            raise TokenError("the server sent no certificate", BAD_CERTIFICATE)
        if version < self._minimum:  # a version the credential disabled (CRD-004)
            return _fatal(SecStatus.SEC_E_ALGORITHM_MISMATCH, PROTOCOL_VERSION, "CRD-004")
        target = self._target if self._check_name else None  # CRD-005: the caller checks it
        if target and common_name(subject).casefold() != target.casefold():
            return _fatal(SecStatus.SEC_E_WRONG_PRINCIPAL, BAD_CERTIFICATE, "SCH-006")
        certificate = self._cred.certificate
        if requested and certificate is None and not self._retry:
            self._retry = True
            status, attr = SecStatus.SEC_I_INCOMPLETE_CREDENTIALS, self._attr(context_req)
            return LegResult(status, LegOutcome.CONTINUE, b"", attr, rules=("SCH-007",))
        rules = ("SCH-007",) if self._retry else ()
        mine = (certificate.subject if certificate else "") if requested else None
        out = certificate_message(mine) if mine is not None else b""
        if version == TLS12:
            out += handshake(CLIENT_KEY_EXCHANGE)
        done = finished(b"client", flight.transcript + out)
        self._transcript = flight.transcript + out + done
        self._version, self._peer, self._mine, self._alpn = version, subject, mine, chosen
        if version == TLS13:
            self._leg = 3
            self._established_keys()
            return _established(out + done, self._attr(context_req), "SCH-009", *rules)
        self._leg = 2
        token = out + CHANGE_CIPHER_SPEC + done
        return _continue(token, self._attr(context_req), "SCH-012", *rules)

    def _server_finished(self, flight: _Flight, context_req: int) -> LegResult:
        flight.take_empty(CCS)
        flight.take_finished(b"server")
        self._transcript = flight.transcript
        self._leg = 3
        self._established_keys()
        return _established(b"", self._attr(context_req), "SCH-012")


class SchannelServerSession(_Session):
    """The ASC side; see the module docstring for the legs."""

    __slots__ = ("_max", "_minimum", "_protocols", "_requested", "_subject", "_tickets")

    def __init__(self, material: SchannelCredential) -> None:
        certificate = material.cred.certificate
        self._subject = certificate.subject if certificate else ""
        self._max = PROTOCOLS[material.cred.protocols]
        self._minimum = material.minimum
        self._tickets = material.cred.session_tickets
        self._is_client = False
        self.restart()

    def restart(self) -> None:
        super().restart()
        self._requested = False
        self._protocols: tuple[bytes, ...] | None = None  # the server's ALPN list (ATT-010)

    def _server_subject(self) -> str:
        return self._subject

    def _local_subject(self) -> str:
        return self._subject

    def _attr(self, context_req: int) -> int:
        return (context_req & _GRANTABLE_ASC) | (MUTUAL_AUTH if self._peer else 0)

    def step(self, input: tuple[SecBuffer, ...] | None, context_req: int) -> LegResult:
        after = self._after_handshake(input)
        if after is not None:
            return after
        if context_req & ASC_REQ_DELEGATE:
            return _unsupported()
        if self._leg == 0:
            try:
                self._protocols = alpn.offered(input)  # ATT-010
            except alpn.MalformedProtocols:
                return LegResult(
                    SecStatus.SEC_E_INVALID_TOKEN, LegOutcome.REJECTED, rules=("ATT-010",)
                )
        legs = {0: self._client_hello, 1: self._client_flight}
        leg = legs.get(self._leg, _unexpected)
        return _process(input, self._transcript, lambda flight: leg(flight, context_req))

    def _client_hello(self, flight: _Flight, context_req: int) -> LegResult:
        fields = flight.take(CLIENT_HELLO)
        offered = _version(fields[:2])
        if offered < TLS12:
            raise TokenError("no common protocol version", PROTOCOL_VERSION)
        client_protocols = _offered_protocols(fields[2:])
        chosen = None
        if client_protocols and self._protocols is not None:
            # ATT-010: the server's most preferred protocol the client offered (RFC 7301 3.2).
            chosen = next((p for p in self._protocols if p in client_protocols), None)
            if chosen is None:
                status = SecStatus.SEC_E_APPLICATION_PROTOCOL_MISMATCH
                return _fatal(status, NO_APPLICATION_PROTOCOL, "ATT-010")
        version = min(offered, self._max)
        if version < self._minimum:  # the client's highest is one this credential disabled
            return _fatal(SecStatus.SEC_E_ALGORITHM_MISMATCH, PROTOCOL_VERSION, "CRD-004")
        requested = bool(context_req & MUTUAL_AUTH)
        request = handshake(CERTIFICATE_REQUEST) if requested else b""
        random = hashlib.sha256(b"server-random|%d" % next(_random_serial)).digest()
        selected = b"" if chosen is None else bytes([len(chosen)]) + chosen
        out = handshake(SERVER_HELLO, struct.pack(">H", version) + random + selected)
        self._alpn = chosen
        if version == TLS13:
            out += handshake(ENCRYPTED_EXTENSIONS) + request + certificate_message(self._subject)
            out += finished(b"server", flight.transcript + out)
        else:
            out += certificate_message(self._subject) + request + handshake(SERVER_HELLO_DONE)
        self._transcript = flight.transcript + out
        self._version, self._requested, self._leg = version, requested, 1
        rule = "SCH-009" if version == TLS13 else "SCH-012"
        return _continue(out, self._attr(context_req), rule)

    def _client_flight(self, flight: _Flight, context_req: int) -> LegResult:
        client = _subject(flight.take(CERTIFICATE)) if self._requested else ""
        if self._version == TLS12:
            flight.take_empty(CLIENT_KEY_EXCHANGE)
            flight.take_empty(CCS)
        flight.take_finished(b"client")
        if self._requested and not client:
            alert = CERTIFICATE_REQUIRED if self._version == TLS13 else HANDSHAKE_FAILURE
            return _fatal(SecStatus.SEC_E_INCOMPLETE_CREDENTIALS, alert, "SCH-008")
        self._peer, self._leg = client, 2
        if self._version == TLS13:
            self._transcript = flight.transcript
            self._established_keys()
            if not self._tickets:
                return _established(b"", self._attr(context_req), "SCH-009")
            # SHD-012: a NewSessionTicket follows the handshake, protected like any record.
            assert self._channel is not None
            ticket = bytes([NEW_SESSION_TICKET]) + b"model-ticket"
            token = tls_records.record(self._channel, tls_records.HANDSHAKE, ticket)
            return _established(token, self._attr(context_req), "SCH-009", "SHD-012", "ASC-009")
        done = finished(b"server", flight.transcript)
        self._transcript = flight.transcript + done
        self._established_keys()
        # SEC_E_OK with a token the caller must still send (ASC-009).
        token = CHANGE_CIPHER_SPEC + done
        return _established(token, self._attr(context_req), "SCH-012", "ASC-009")


class SchannelPackage:
    info = SCHANNEL_INFO

    def names(self) -> tuple[str, ...]:
        return SCHANNEL_NAMES

    def can_initiate(self, use: int) -> bool:
        return bool(use & CredentialUse.OUTBOUND)

    def can_accept(self, use: int) -> bool:
        return bool(use & CredentialUse.INBOUND)

    def acquire(
        self, use: int, principal: str | None, auth_data: Any, env: Environment
    ) -> tuple[SecStatus, Any, tuple[str, ...]]:
        # pszPrincipal is unused by Schannel (ACHG); the certificate says who we are.
        cred = SchannelCred() if auth_data is None else auth_data
        minimum, check_name = TLS12, True
        caller_rules: tuple[str, ...] = ()
        if isinstance(cred, schannel_creds.CALLER_STRUCTS):  # SCHANNEL_CRED, SCH_CREDENTIALS
            status, resolved, caller_rules = schannel_creds.resolve(cred, use)
            if resolved is None:
                return status, None, caller_rules
            highest = "tls1.3" if resolved.maximum == TLS13 else "tls1.2"
            cred = SchannelCred(resolved.certificate, highest)
            minimum, check_name = resolved.minimum, resolved.check_name
        if not isinstance(cred, SchannelCred):
            return SecStatus.SEC_E_UNKNOWN_CREDENTIALS, None, ("ACH-007",)
        if use & CredentialUse.BOTH == CredentialUse.BOTH:
            return SecStatus.SEC_E_UNKNOWN_CREDENTIALS, None, ("SCH-002",)
        if cred.certificate is not None and cred.certificate.expired:
            return SecStatus.SEC_E_NO_CREDENTIALS, None, ("SCH-003",)
        if use & CredentialUse.INBOUND and cred.certificate is None:
            return SecStatus.SEC_E_NO_CREDENTIALS, None, ("SCH-003",)
        material = SchannelCredential(use, cred, minimum, check_name)
        return SecStatus.SEC_E_OK, material, ("SCH-001", *caller_rules)

    def credential_attribute(
        self, material: Any, attribute: int, allocate: Callable[[str], int]
    ) -> Any:
        """QueryCredentialsAttributes on a Schannel credential (ATT-022, ATT-023)."""
        cred, inbound = material.cred, bool(material.use & CredentialUse.INBOUND)
        if attribute == 1:  # SECPKG_CRED_ATTR_NAMES: the certificate subject, if any
            subject = cred.certificate.subject if cred.certificate else ""
            return CredentialNames(subject, allocate("credential name"))
        if attribute == 0x56:  # SUPPORTED_ALGS
            algorithms = (CALG_AES_256, CALG_SHA_384, CALG_ECDH_EPHEM)
            return SupportedAlgs(algorithms, allocate("ALG_ID array"))
        if attribute == 0x57:  # CIPHER_STRENGTHS
            return CipherStrengths(128, 256)
        if attribute != 0x58:  # pragma: no cover - the table lets only these four through
            return None
        # SUPPORTED_PROTOCOLS: TLS 1.2 (unless disabled, CRD-004), and TLS 1.3 where the
        # credential asks for it.
        tls12, tls13 = (0x400, 0x1000) if inbound else (0x800, 0x2000)
        tls12 = tls12 if material.minimum <= TLS12 else 0
        return SupportedProtocols(tls12 | (tls13 if cred.protocols == "tls1.3" else 0))

    def new_client(
        self, material: Any, target_name: str | None, env: Environment
    ) -> SchannelClientSession:
        return SchannelClientSession(material, target_name)

    def new_server(self, material: Any, env: Environment) -> SchannelServerSession:
        return SchannelServerSession(material)
