"""Argument checks shared by the API surfaces: a wrong Python type raises TypeError naming the
parameter (API-002); a ULONG outside 32 bits raises ValueError (API-007). Any value a C caller
could pass gets a status, never an exception (API-003). Each check costs one
class test in the common case, since the hot calls run them on every call."""

from __future__ import annotations

from typing import Any

from sspi_model.handles import SecHandle


def check_handle(value: Any, parameter: str) -> None:
    if value is not None and value.__class__ is not SecHandle and not isinstance(value, SecHandle):
        raise TypeError(f"{parameter} must be a SecHandle or None, got {type(value).__name__}")


def check_u32(value: Any, parameter: str) -> None:
    """A ULONG parameter: an int (TypeError otherwise) in 0..0xFFFFFFFF (ValueError)."""
    if value.__class__ is not int and (isinstance(value, bool) or not isinstance(value, int)):
        raise TypeError(f"{parameter} must be an int, got {type(value).__name__}")
    if not 0 <= value <= 0xFFFFFFFF:
        raise ValueError(f"{parameter} must fit in 32 bits (0..0xFFFFFFFF), got {value}")


def check_str(value: Any, parameter: str) -> None:
    if value is not None and value.__class__ is not str and not isinstance(value, str):
        raise TypeError(f"{parameter} must be a str or None, got {type(value).__name__}")


def check_bool(value: Any, parameter: str) -> None:
    if not isinstance(value, bool):
        raise TypeError(f"{parameter} must be a bool, got {type(value).__name__}")


UNICODE_STRING_MAX_UNITS = 0x7FFF  # UNICODE_STRING.Length is a USHORT count of bytes (ROB-001)


def unsendable_text(
    text: str, max_bytes: int = 2 * UNICODE_STRING_MAX_UNITS, encoding: str = "utf-16-le"
) -> str | None:
    """Why `text` cannot travel in a string field of at most `max_bytes` bytes once encoded
    (a UNICODE_STRING by default), or None when it can (ROB-001)."""
    if text.isascii():  # the common case: the size is known without encoding
        size = len(text) * (2 if encoding == "utf-16-le" else 1)
    else:
        try:
            size = len(text.encode(encoding))
        except UnicodeEncodeError:
            return "holds a lone surrogate, which no well-formed string carries"
    if size > max_bytes:
        return f"is {size} bytes long in {encoding}, over the {max_bytes} bytes its field holds"
    return None


def check_text(value: str, parameter: str, principal: bool = False) -> None:
    """A configuration string the model's packages must be able to send (ROB-003); a
    `principal` (DOMAIN\\user) is sent as two strings, each checked alone."""
    for part in value.rpartition("\\")[::2] if principal else (value,):
        problem = unsendable_text(part)
        if problem is not None:
            raise ValueError(f"{parameter} {problem} (ROB-003)")
