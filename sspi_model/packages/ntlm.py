"""NTLM: three messages, modelled as structured bytes the model parses itself.

Wire shape (little endian), close to MS-NLMP so the messages look familiar:
    b"NTLMSSP\\0" u32 type u32 flags, then per type:
    1 NEGOTIATE     str workstation
    2 CHALLENGE     8-byte server challenge, str target
    3 AUTHENTICATE  str domain, str user, str workstation, 32-byte proof
where str is u16 length + UTF-16LE. The proof binds user, password and challenge (a SHA-256
digest: no real NTLM cryptography), so a replayed or forged AUTHENTICATE fails (NTLM-007).
Anything else (garbage, empty, truncated, trailing bytes, the wrong message for the leg) is
SEC_E_INVALID_TOKEN (NTLM-005).
"""

from __future__ import annotations

import hashlib
import itertools
import struct
from collections.abc import Callable
from typing import Any

import attrs

from sspi_model.buffers import SecBuffer, first_token
from sspi_model.constants import CredentialUse, SecPkgAttr
from sspi_model.lifecycle import Call, LegOutcome
from sspi_model.packages import ntlm_messages
from sspi_model.packages.base import AuthIdentity as AuthIdentity
from sspi_model.packages.base import (
    Environment,
    LegResult,
    MessageLeg,
)
from sspi_model.packages.catalog import NTLM_INFO, NTLM_NAMES
from sspi_model.packages.protection import Channel, derive_key
from sspi_model.results import (
    ContextKeyInfo,
    ContextSessionKey,
    ContextSizes,
    CredentialNames,
)
from sspi_model.status import SecStatus
from sspi_model.values import Value

SIGNATURE = b"NTLMSSP\x00"
NEGOTIATE, CHALLENGE, AUTHENTICATE = 1, 2, 3
PROOF_LEN = 32

# ISC_REQ/ASC_REQ bits NTLM can grant; DELEGATE and MUTUAL_AUTH never are (NTLM-009).
_GRANTABLE_ISC = 0x4 | 0x8 | 0x10 | 0x100 | 0x200 | 0x400 | 0x800 | 0x4000 | 0x10000
_GRANTABLE_ASC = 0x4 | 0x8 | 0x10 | 0x100 | 0x200 | 0x400 | 0x800 | 0x8000 | 0x20000
# ATT-005: what the model's NTLM reports for SECPKG_ATTR_KEY_INFO (model values: HMAC-MD5
# signatures, RC4 sealing, as MS-NLMP's extended session security uses them).
NTLM_KEY_INFO = ("HMAC_MD5", "RC4", 128, 0xFFFFFF76, 0x17)  # KERB_CHECKSUM_HMAC_MD5, RC4_HMAC
# NTLM-008
NTLM_SIZES = ContextSizes(max_token=2888, max_signature=16, block_size=0, security_trailer=16)

# Server challenges are deterministic (a counter through a digest) so every run replays.
_challenge_serial = itertools.count(1)
# Enum members used on hot paths, bound once: on Python 3.11 `Enum.MEMBER` goes through
# EnumType.__getattr__'s slow attribute hook (about ten times a global load).
_CONTINUE = LegOutcome.CONTINUE
_ESTABLISHED = LegOutcome.ESTABLISHED
_SEC_E_OK = SecStatus.SEC_E_OK
_SEC_I_CONTINUE_NEEDED = SecStatus.SEC_I_CONTINUE_NEEDED
_OUTBOUND = CredentialUse.OUTBOUND
_INBOUND = CredentialUse.INBOUND


class TokenError(Exception):
    """The bytes are not the NTLM message expected here."""


def split_principal(principal: str) -> tuple[str, str]:
    domain, sep, user = principal.rpartition("\\")
    return (domain, user) if sep else ("", principal)


def _pack_str(text: str) -> bytes:
    raw = text.encode("utf-16-le")
    return struct.pack("<H", len(raw)) + raw


def negotiate_message(flags: int, workstation: str) -> bytes:
    return SIGNATURE + struct.pack("<II", NEGOTIATE, flags) + _pack_str(workstation)


def proof(domain: str, user: str, password: str, challenge: bytes) -> bytes:
    who = f"{domain}\\{user}".casefold().encode("utf-8")
    return hashlib.sha256(
        b"model-ntlm|" + who + b"|" + password.encode("utf-8") + b"|" + challenge
    ).digest()


def session_key(challenge: bytes, proof_bytes: bytes) -> bytes:
    """The key both sides derive once the AUTHENTICATE proof verified (MSG-006): it differs for
    every context, since every context has its own challenge."""
    return derive_key(b"ntlm", challenge, proof_bytes)


def authenticate_message(
    flags: int, domain: str, user: str, workstation: str, password: str, challenge: bytes
) -> bytes:
    return (
        SIGNATURE
        + struct.pack("<II", AUTHENTICATE, flags)
        + _pack_str(domain)
        + _pack_str(user)
        + _pack_str(workstation)
        + proof(domain, user, password, challenge)
    )


# -- the sessions' readers: any TokenError is one outcome, SEC_E_INVALID_TOKEN (NTLM-005); they
# read in place with unpack_from, without a reader object per message.

_HEADER = struct.Struct("<II")  # type, flags after the signature
_U16 = struct.Struct("<H")
_U32 = struct.Struct("<I")
_HEAD = {kind: SIGNATURE + _U32.pack(kind) for kind in (NEGOTIATE, CHALLENGE, AUTHENTICATE)}
_SERVER_TARGET = _pack_str("MODEL")
_OK, _CONTINUE_NEEDED = _SEC_E_OK, _SEC_I_CONTINUE_NEEDED


def _flags_of(data: bytes, expected_type: int) -> int:
    """The flags of a message of `expected_type` (its 16-byte header); TokenError otherwise."""
    if len(data) < 16 or data[:8] != SIGNATURE:
        raise TokenError("no NTLMSSP signature, or truncated")
    kind, flags = _HEADER.unpack_from(data, 8)
    if kind != expected_type:
        raise TokenError("wrong message type")
    return int(flags)


def _string_at(data: bytes, pos: int) -> tuple[str, int]:
    """The u16-length-prefixed UTF-16LE string at `pos`, and the position after it."""
    start = pos + 2
    if start > len(data):
        raise TokenError("truncated")
    end = start + _U16.unpack_from(data, pos)[0]
    if end > len(data):
        raise TokenError("truncated")
    try:
        return data[start:end].decode("utf-16-le"), end
    except UnicodeDecodeError as exc:
        raise TokenError("bad string") from exc


# Results that depend on nothing but a few flag bits are made once and shared (LegResult is
# frozen): building an attrs object costs more than the rest of such a leg.
_CLIENT_REJECTED = LegResult(
    SecStatus.SEC_E_INVALID_TOKEN, LegOutcome.REJECTED, rules=("NTLM-005", "ISC-011")
)
_SERVER_REJECTED = LegResult(
    SecStatus.SEC_E_INVALID_TOKEN, LegOutcome.REJECTED, rules=("NTLM-005", "ASC-004")
)
_DENIED = LegResult(SecStatus.SEC_E_LOGON_DENIED, LegOutcome.FAILED, rules=("NTLM-004", "NTLM-007"))
_NEGOTIATE_RESULTS: dict[int, LegResult] = {}  # granted ISC flags -> the first client leg
_ACCEPTED_RESULTS: dict[int, LegResult] = {}  # granted ASC flags -> the last server leg


def _negotiate_result(granted: int) -> LegResult:
    """The first client leg: NEGOTIATE out, CONTINUE. Plain-int flags are cached (at most 2**9
    values: the grantable bits); an int subclass (an IntFlag) keeps its own type, uncached."""
    result = _NEGOTIATE_RESULTS.get(granted) if granted.__class__ is int else None
    if result is None:
        result = LegResult(
            _CONTINUE_NEEDED,
            _CONTINUE,
            negotiate_message(granted, "MODEL-WS"),
            granted,
            rules=("NTLM-001",),
        )
        if granted.__class__ is int:
            _NEGOTIATE_RESULTS[granted] = result
    return result


def _accepted_result(flags: int) -> LegResult:
    """The last server leg: no token, ESTABLISHED."""
    result = _ACCEPTED_RESULTS.get(flags) if flags.__class__ is int else None
    if result is None:
        result = LegResult(_OK, _ESTABLISHED, b"", flags, rules=("NTLM-006",))
        if flags.__class__ is int:
            _ACCEPTED_RESULTS[flags] = result
    return result


@attrs.frozen(repr=False, eq=False)
class NtlmCredential(Value):
    use: int
    principal: str
    password: str | None  # None: the logged-on user's secret is not known to this process


def query_attribute(channel: Channel | None, attribute: int, allocate: Callable[[str], int]) -> Any:
    """KEY_INFO (ATT-005) and SESSION_KEY (ATT-006) of an established NTLM context."""
    if channel is None:  # pragma: no cover - the table lets only established contexts here
        return None
    if attribute == SecPkgAttr.SECPKG_ATTR_KEY_INFO:
        sign, seal, size, sign_alg, seal_alg = NTLM_KEY_INFO
        names = allocate("signature algorithm name"), allocate("encrypt algorithm name")
        return ContextKeyInfo(sign, seal, size, sign_alg, seal_alg, *names)
    if attribute == SecPkgAttr.SECPKG_ATTR_SESSION_KEY:
        return ContextSessionKey(channel.key[:16], allocate("session key"))
    return None


# A session's keys: None before the AUTHENTICATE proof, then (challenge, proof) until the first
# message call or key query opens the channel.
_Keys = Channel | tuple[bytes, bytes] | None


def _opened(keys: _Keys, is_client: bool) -> Channel | None:
    if keys is None or isinstance(keys, Channel):
        return keys
    return Channel.for_side(session_key(*keys), is_client)  # MSG-007: counters from 0


class NtlmClientSession:
    """Client legs: 1 NEGOTIATE out -> CONTINUE; 2 CHALLENGE in, AUTHENTICATE out -> OK."""

    __slots__ = ("_channel", "_cred", "_flags", "_leg")

    def __init__(self, cred: NtlmCredential) -> None:
        self._cred = cred
        self._leg = 0
        self._flags = 0
        self._channel: _Keys = None

    def message(self, call: Call, buffers: tuple[SecBuffer, ...], qop: int) -> MessageLeg:
        self._channel = channel = _opened(self._channel, is_client=True)
        return ntlm_messages.message(channel, call, buffers, qop)

    def query_attribute(self, attribute: int, allocate: Callable[[str], int]) -> Any:
        self._channel = channel = _opened(self._channel, is_client=True)
        return query_attribute(channel, attribute, allocate)

    def native_names(self, target: str | None, local: str) -> tuple[str, str]:
        """(client, server) for SECPKG_ATTR_NATIVE_NAMES (ATT-004)."""
        return self._cred.principal, target or ""

    @property
    def user_name(self) -> str:
        return self._cred.principal

    def sizes(self) -> ContextSizes:
        return NTLM_SIZES

    def restart(self) -> None:
        self._leg = 0

    def step(self, input: tuple[SecBuffer, ...] | None, context_req: int) -> LegResult:
        granted = context_req & _GRANTABLE_ISC
        if self._leg == 0:
            self._leg = 1
            self._flags = granted
            return _negotiate_result(granted)
        data = first_token(input)
        try:
            if data is None:
                raise TokenError("no input token")
            flags = _flags_of(data, CHALLENGE)  # parse(data, CHALLENGE)
            if len(data) < 24:
                raise TokenError("truncated")
            challenge = data[16:24]
            if _string_at(data, 24)[1] != len(data):
                raise TokenError("trailing bytes")
        except TokenError:
            return _CLIENT_REJECTED
        domain, user = split_principal(self._cred.principal)
        # The client cannot know the password is wrong: only the server's last leg decides.
        password = self._cred.password or ""
        message = authenticate_message(flags, domain, user, "MODEL-WS", password, challenge)
        # MSG-006: the key comes from the challenge and the proof (the message's last bytes);
        # the channel is opened at its first use, so a handshake costs no key derivation.
        self._channel = (challenge, message[-PROOF_LEN:])
        self._leg = 2
        return LegResult(_SEC_E_OK, _ESTABLISHED, message, self._flags, rules=("NTLM-002",))


class NtlmServerSession:
    """Server legs: 1 NEGOTIATE in, CHALLENGE out -> CONTINUE; 2 AUTHENTICATE in -> OK/DENIED."""

    __slots__ = ("_challenge", "_channel", "_env", "_flags", "_leg", "_user")

    def __init__(self, env: Environment) -> None:
        self._env = env
        self._leg = 0
        self._challenge = b""
        self._flags = 0
        self._user = ""
        self._channel: _Keys = None

    def message(self, call: Call, buffers: tuple[SecBuffer, ...], qop: int) -> MessageLeg:
        self._channel = channel = _opened(self._channel, is_client=False)
        return ntlm_messages.message(channel, call, buffers, qop)

    def query_attribute(self, attribute: int, allocate: Callable[[str], int]) -> Any:
        self._channel = channel = _opened(self._channel, is_client=False)
        return query_attribute(channel, attribute, allocate)

    def native_names(self, target: str | None, local: str) -> tuple[str, str]:
        """(client, server) for SECPKG_ATTR_NATIVE_NAMES (ATT-004)."""
        return self._user, local

    @property
    def user_name(self) -> str:
        return self._user

    def sizes(self) -> ContextSizes:
        return NTLM_SIZES

    def restart(self) -> None:
        self._leg = 0

    def step(self, input: tuple[SecBuffer, ...] | None, context_req: int) -> LegResult:
        data = first_token(input)
        if self._leg == 0:
            try:
                if data is None:
                    raise TokenError("no input token")
                _flags_of(data, NEGOTIATE)  # parse(data, NEGOTIATE)
                if _string_at(data, 16)[1] != len(data):
                    raise TokenError("trailing bytes")
            except TokenError:
                return _SERVER_REJECTED
            self._flags = context_req & _GRANTABLE_ASC
            self._challenge = hashlib.sha256(b"challenge|%d" % next(_challenge_serial)).digest()[:8]
            self._leg = 1
            return LegResult(
                _CONTINUE_NEEDED,
                _CONTINUE,
                # CHALLENGE: header, flags, the 8-byte challenge, the target name "MODEL"
                _HEAD[CHALLENGE] + _U32.pack(self._flags) + self._challenge + _SERVER_TARGET,
                self._flags,
                rules=("NTLM-003",),
            )
        try:
            if data is None:
                raise TokenError("no input token")
            _flags_of(data, AUTHENTICATE)  # parse(data, AUTHENTICATE)
            domain, pos = _string_at(data, 16)
            user, pos = _string_at(data, pos)
            pos = _string_at(data, pos)[1]
            claimed = data[pos : pos + PROOF_LEN]
            if len(claimed) != PROOF_LEN or pos + PROOF_LEN != len(data):
                raise TokenError("truncated or trailing bytes")
        except TokenError:
            return _SERVER_REJECTED
        principal = f"{domain}\\{user}" if domain else user
        password = self._env.password_of(principal)
        if password is None or proof(domain, user, password, self._challenge) != claimed:
            return _DENIED
        self._user = principal
        self._leg = 2
        self._channel = (self._challenge, claimed)  # opened at first use (MSG-006)
        return _accepted_result(self._flags)


class NtlmPackage:
    info = NTLM_INFO

    def names(self) -> tuple[str, ...]:
        return NTLM_NAMES

    def can_initiate(self, use: int) -> bool:
        return bool(use & _OUTBOUND)

    def can_accept(self, use: int) -> bool:
        return bool(use & _INBOUND)

    def acquire(
        self, use: int, principal: str | None, auth_data: Any, env: Environment
    ) -> tuple[SecStatus, Any, tuple[str, ...]]:
        if auth_data is None:
            if principal is not None and principal.casefold() != env.logon_user.casefold():
                return SecStatus.SEC_E_NOT_OWNER, None, ("ACH-006",)
            return (
                _SEC_E_OK,
                NtlmCredential(use, env.logon_user, env.password_of(env.logon_user)),
                ("ACH-005",),
            )
        if not isinstance(auth_data, AuthIdentity):
            return SecStatus.SEC_E_UNKNOWN_CREDENTIALS, None, ("ACH-007",)
        return (
            _SEC_E_OK,
            NtlmCredential(use, auth_data.principal, auth_data.password),
            (),  # nothing of NTLM's own: the table's ACH-001 is the whole story
        )

    def credential_attribute(
        self, material: Any, attribute: int, allocate: Callable[[str], int]
    ) -> CredentialNames | None:
        """SECPKG_CRED_ATTR_NAMES: the credential's principal (ATT-022); nothing else."""
        if attribute == 1:
            return CredentialNames(material.principal, allocate("credential name"))
        return None

    def new_client(
        self, material: Any, target_name: str | None, env: Environment
    ) -> NtlmClientSession:
        return NtlmClientSession(material)

    def new_server(self, material: Any, env: Environment) -> NtlmServerSession:
        return NtlmServerSession(env)
