"""The trace format's vocabulary: record kinds, statuses, symbols and value encodings.

Shared by the package's other modules: recording, reading, structural checks and replay. The
format itself is specified in specs/trace-format.md.
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Mapping
from typing import Any

from sspi_model.buffers import SECBUFFER_ATTRMASK, SecBuffer, SecBufferType
from sspi_model.lifecycle import Call
from sspi_model.packages.ntlm import AuthIdentity
from sspi_model.packages.schannel import Certificate, SchannelCred
from sspi_model.packages.schannel_creds import CALLER_STRUCTS
from sspi_model.status import NtStatus, SecStatus, lookup
from sspi_model.trace import credentials as caller_creds

Record = dict[str, Any]
FORMAT = "sspi-model"
VERSION = 1
SYNC_CALLS = frozenset(
    {
        Call.ENUMERATE_SECURITY_PACKAGES,
        Call.QUERY_SECURITY_PACKAGE_INFO,
        Call.ACQUIRE_CREDENTIALS_HANDLE,
        Call.FREE_CREDENTIALS_HANDLE,
        Call.INITIALIZE_SECURITY_CONTEXT,
        Call.ACCEPT_SECURITY_CONTEXT,
        Call.COMPLETE_AUTH_TOKEN,
        Call.DELETE_SECURITY_CONTEXT,
        Call.QUERY_CONTEXT_ATTRIBUTES,
        Call.FREE_CONTEXT_BUFFER,
        # The message functions, the control token and the credential query (BUF-007).
        Call.MAKE_SIGNATURE,
        Call.VERIFY_SIGNATURE,
        Call.ENCRYPT_MESSAGE,
        Call.DECRYPT_MESSAGE,
        Call.APPLY_CONTROL_TOKEN,
        Call.QUERY_CREDENTIALS_ATTRIBUTES,
    }
)
_CALLS = {call.value: call for call in Call}
_LEGS = (Call.INITIALIZE_SECURITY_CONTEXT_ASYNC, Call.ACCEPT_SECURITY_CONTEXT_ASYNC)
SYMBOL = re.compile(r"^\$[A-Za-z_][A-Za-z0-9_.-]*$")
RULE_ID = re.compile(r"^[A-Z]{2,5}-[0-9]{3}$")
# Attribute fields holding a run's keys and randoms (SESSION_KEY, SESSION_INFO, the bindings):
# compared, like buffer data, only for being empty or not (BUF-007).
VOLATILE_FIELDS = frozenset({"session_key", "session_id", "application_data"})
_TOKEN_KEYS = frozenset({"input", "token", "output", "message"})  # buffer arguments


# -- statuses and small values ---------------------------------------------------------------


_STATUS_NAMES: dict[tuple[type, int], str] = {}  # (enum or int, value) -> name, for members


def status_name(value: int) -> str:
    """The macro name of a status, or 0x-hex for a value no macro names (a poisoned read)."""
    if value.__class__ is SecStatus:  # what a call returns: its member's name, one attribute
        return value._name_
    key = (value.__class__, int(value))  # an enum member's own hash is Python code: not used
    name = _STATUS_NAMES.get(key)
    if name is not None:
        return name
    if isinstance(value, (SecStatus, NtStatus)):
        name = value.name
        _STATUS_NAMES[key] = name  # bounded: one entry per member
        return name
    info = lookup(int(value))
    return info.name if info.family != "unknown" else f"0x{info.value:08X}"


def status_value(text: str) -> int:
    """The 32-bit value of a status written as a macro name or 0x-hex; ValueError otherwise."""
    if text[:2].lower() == "0x":
        return int(text, 16) & 0xFFFFFFFF
    return lookup(text).value


def record_kind(record: Mapping[str, Any]) -> str:
    """One of: header, call, complete, callback, misuse."""
    if "trace" in record:
        return "header"
    if "step" in record:
        return "complete"
    if "event" in record:
        return str(record["event"])
    return "call"


def _json_value(value: Any) -> Any:
    """Callback data as JSON when it is JSON, else its repr (it only has to compare equal)."""
    try:
        json.dumps(value)
    except (TypeError, ValueError):
        return {"repr": repr(value)}
    return value


_BUFFER_TYPE_NAMES = {int(member): member.name for member in SecBufferType}  # canonical names
BUFFER_TYPE_VALUES = {name: member.value for name, member in SecBufferType.__members__.items()}


def encode_data(data: bytes) -> str:
    """Bytes as a trace writes them: base64 text."""
    return base64.b64encode(data).decode("ascii")


def shown_buffers(value: Any) -> Any:
    """Buffers of a replay record as a trace writes them: a streaming Recorder leaves their
    data as bytes (TRC-008), written as base64 only for a message that shows them."""
    if not isinstance(value, list):
        return value
    return [
        {**item, "data": encode_data(item["data"])}
        if isinstance(item, dict) and isinstance(item.get("data"), bytes)
        else item
        for item in value
    ]


def _buffer_type(value: int) -> str | int:
    """A buffer type as its SECBUFFER_* name, or its number when it has attribute bits."""
    number = int(value)  # an enum member hashes in Python code: look up its int
    if not number & SECBUFFER_ATTRMASK:
        name = _BUFFER_TYPE_NAMES.get(number)
        if name is not None:
            return name
    return value


def _plain_token(buffer: SecBuffer) -> bool:
    """A buffer the bytes shorthand stands for: one TOKEN, no capacity, no allocation."""
    return (
        buffer.buffer_type == SecBufferType.SECBUFFER_TOKEN
        and buffer.size is None
        and buffer.allocation is None
    )


def _encode_auth(value: Any) -> Any:
    if value is None:
        return None
    if isinstance(value, AuthIdentity):
        return {
            "type": "AuthIdentity",
            "user": value.user,
            "password": value.password,
            "domain": value.domain,
        }
    if isinstance(value, SchannelCred):
        certificate = value.certificate
        return {
            "type": "SchannelCred",
            "certificate": None
            if certificate is None
            else {"subject": certificate.subject, "expired": certificate.expired},
            "protocols": value.protocols,
            **({"session_tickets": True} if value.session_tickets else {}),
        }
    if isinstance(value, CALLER_STRUCTS):  # SCHANNEL_CRED, SCH_CREDENTIALS (CRD-001)
        return caller_creds.encode(value)
    return {"type": type(value).__name__, "repr": repr(value)}


def decode_auth(value: Any) -> Any:
    """The auth_data object a trace describes; ReplayError for one it cannot rebuild."""
    if value is None:
        return None
    kind = value.get("type") if isinstance(value, dict) else None
    try:
        if kind == "AuthIdentity":
            return AuthIdentity(value["user"], value["password"], value.get("domain", ""))
        if kind == "SchannelCred":
            raw = value.get("certificate")
            certificate = None if raw is None else Certificate(raw["subject"], raw["expired"])
            tickets = value.get("session_tickets", False)
            return SchannelCred(certificate, value.get("protocols", "tls1.2"), tickets)
        if kind in caller_creds.STRUCTS:
            return caller_creds.decode(value)
    except (KeyError, TypeError, ValueError) as error:
        raise ReplayError(f"auth_data {kind} is incomplete: {error}") from None
    raise ReplayError(f"cannot rebuild auth_data {value!r}: only AuthIdentity and SchannelCred")


# -- shared helpers --------------------------------------------------------------------------


# Here rather than in replay.py because decode_auth, above, raises it.
class ReplayError(Exception):
    """The trace cannot be executed at this record (an unbound symbol, a bad argument, ...)."""


def _show(value: Any) -> str:
    """A value in at most 60 characters of JSON, for messages; never raises (TRC-005)."""
    try:
        text = json.dumps(value, ensure_ascii=False)
    except (TypeError, ValueError, RecursionError):  # bytes, a huge int, deep nesting
        text = f"a {type(value).__name__} that JSON cannot show"
    # A lone surrogate (a "\\ud800" escape) cannot be printed: it is shown escaped.
    text = text.encode("utf-8", "backslashreplace").decode("utf-8")
    return text if len(text) <= 60 else text[:57] + "..."


def _is_int(value: Any) -> bool:
    # JSON's integers are exact ints: the class test answers them without two isinstance calls.
    return value.__class__ is int or (isinstance(value, int) and not isinstance(value, bool))
