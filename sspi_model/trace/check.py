"""Structural checks of one record: the JSON Schema's rules, without a schema library.

specs/trace.schema.json states the same rules; tests/test_trace.py holds both to the same examples.
"""

from __future__ import annotations

import base64
import binascii
import functools
import sys
from collections.abc import Callable
from typing import Any

from sspi_model.buffers import SecBufferType
from sspi_model.trace.buffers import NULL_DESCRIPTOR_JSON, is_reference
from sspi_model.trace.format import (
    _CALLS,
    _TOKEN_KEYS,
    FORMAT,
    RULE_ID,
    SYMBOL,
    VERSION,
    Record,
    _is_int,
    _show,
    record_kind,
    status_value,
)

_FIELDS: dict[str, tuple[frozenset[str], frozenset[str]]] = {
    "header": (
        frozenset({"trace", "version"}),
        frozenset({"profile", "accounts", "processes"}),
    ),
    "call": (
        frozenset({"seq", "process", "call", "args"}),
        frozenset({"status", "result", "out", "pending"}),
    ),
    "complete": (
        frozenset({"seq", "step", "pending"}),
        frozenset({"process", "call", "status", "out"}),
    ),
    "callback": (
        frozenset({"seq", "event", "async_context"}),
        frozenset({"process", "pending", "data"}),
    ),
    "misuse": (
        frozenset({"seq", "event", "rule"}),
        frozenset({"process", "call", "message", "raised", "args"}),
    ),
}
_OUT_KEYS = frozenset(
    {
        "credential",
        "context",
        "output",
        "input_after",
        "context_attr",
        "expiry",
        "attribute",
        "packages",
        "package",
        "allocation",
        "qop",  # VerifySignature, DecryptMessage (BUF-007)
    }
)
Issue = tuple[str, str]
_BUFFER_NAMES = frozenset(SecBufferType.__members__)
_BUFFER_KEYS = frozenset({"type", "data", "size", "allocation"})
_ALLOWED = {kind: required | optional for kind, (required, optional) in _FIELDS.items()}


# Texts SYMBOL matched, so a symbol seen again costs a set lookup, not a regex (a trace names
# each object on several lines). Cleared when full: it only ever skips SYMBOL.match's "yes".
_SYMBOLS: set[str] = set()
_SYMBOLS_KEPT = 1 << 14


def _is_symbol(value: Any) -> bool:
    if value.__class__ is not str:
        return isinstance(value, str) and SYMBOL.match(value) is not None
    if value in _SYMBOLS:
        return True
    if SYMBOL.match(value) is None:
        return False
    if len(_SYMBOLS) >= _SYMBOLS_KEPT:
        _SYMBOLS.clear()
    _SYMBOLS.add(value)
    return True


def _symbol_issue(value: Any, what: str, *, nullable: bool = False) -> list[Issue]:
    if value is None and nullable:
        return []
    if _is_symbol(value):
        return []
    expected = f'{what} as a symbol like "$ctx1"' + (" or null" if nullable else "")
    return [(expected, _show(value))]


@functools.lru_cache(maxsize=1024)
def _known_status(text: str) -> bool:
    try:
        status_value(text)
    except ValueError:
        return False
    return True


def _status_issue(value: Any) -> list[Issue]:
    if isinstance(value, str) and _known_status(value):
        return []
    return [("a status macro name (such as SEC_E_OK) or a 0x-hex value", _show(value))]


def _is_data(value: Any) -> bool:
    return not _data_issue(value, "")


# base64.b64decode(text, validate=True) without its Python-level wrapper: on 3.11+ it is
# a2b_base64 in strict mode; before, a regex then a2b_base64, so the wrapper itself is called.
if sys.version_info >= (3, 11):
    _decode_base64 = functools.partial(binascii.a2b_base64, strict_mode=True)
else:  # pragma: no cover
    _decode_base64 = functools.partial(base64.b64decode, validate=True)


def _is_base64(text: str) -> bool:
    try:
        _decode_base64(text)
    except ValueError:  # binascii.Error, or a character that is not ASCII
        return False
    return True


def _data_issue(value: Any, where: str) -> list[Issue]:
    if isinstance(value, dict) and set(value) == {"from"} and _is_int(value["from"]):
        return []
    if isinstance(value, dict) and is_reference(value):  # a slice, a buffer, a join (BUF-007)
        return []
    if isinstance(value, str) and _is_base64(value):
        return []
    return [(f'{where} as base64 or {{"from": SEQ}}', _show(value))]


def _buffers_issue(value: Any, where: str, *, shorthand: bool) -> list[Issue]:
    if value is None:
        return []
    if shorthand and value == NULL_DESCRIPTOR_JSON:
        return []
    if shorthand and not isinstance(value, list):
        return _data_issue(value, where)
    if not isinstance(value, list):
        return [(f"{where} as a list of buffers", _show(value))]
    issues: list[Issue] = []
    for item in value:
        if not isinstance(item, dict) or "type" not in item or not item.keys() <= _BUFFER_KEYS:
            issues.append((f'{where} buffers like {{"type": ..., "data": ...}}', _show(item)))
            continue
        kind = item["type"]
        if not (_is_int(kind) or (isinstance(kind, str) and kind in _BUFFER_NAMES)):
            issues.append(("a SECBUFFER_* type name or number", _show(kind)))
        data = item.get("data", "")
        if not (data == "" or _is_data(data)):
            issues += _data_issue(data, f"{where} data")
        if "size" in item and not _is_int(item["size"]):
            issues.append(("a buffer size as an integer", _show(item["size"])))
        if "allocation" in item:
            issues += _symbol_issue(item["allocation"], "an allocation", nullable=True)
    return issues


def _args_issue(args: Any) -> list[Issue]:
    if not isinstance(args, dict):
        return [("args as an object", _show(args))]
    issues: list[Issue] = []
    for key, value in args.items():
        if value is None:
            continue  # every argument may be null
        if key in ("credential", "context", "async_context") and _is_symbol(value):
            continue
        if key in ("credential", "context"):
            literal = isinstance(value, dict) and set(value) == {"lower", "upper"}
            if not literal or not all(_is_int(part) for part in value.values()):
                issues += _symbol_issue(value, f"args.{key}", nullable=True)
        elif key == "async_context":
            issues += _symbol_issue(value, "args.async_context", nullable=True)
        elif key in _TOKEN_KEYS:
            issues += _buffers_issue(value, f"args.{key}", shorthand=True)
        elif key == "out" and value not in (None, True):
            issues.append(("args.out as true (a holder) or null", _show(value)))
    return issues


def _out_issue(out: Any) -> list[Issue]:
    if not isinstance(out, dict):
        return [("out as an object", _show(out))]
    issues: list[Issue] = []
    unknown = [] if out.keys() <= _OUT_KEYS else sorted(out.keys() - _OUT_KEYS)
    if unknown:
        issues.append((f"out fields among {', '.join(sorted(_OUT_KEYS))}", ", ".join(unknown)))
    for key in ("credential", "context", "allocation"):
        if key in out and not (out[key] is None or _is_symbol(out[key])):
            issues += _symbol_issue(out[key], f"out.{key}", nullable=True)
    for key in ("output", "input_after"):
        if key in out:
            issues += _buffers_issue(out[key], f"out.{key}", shorthand=False)
    for key in ("context_attr",):
        if key in out and not _is_int(out[key]):
            issues.append((f"out.{key} as an integer", _show(out[key])))
    if "expiry" in out and out["expiry"] is not None and not _is_int(out["expiry"]):
        issues.append(("out.expiry as an integer or null", _show(out["expiry"])))
    return issues


def _header_issue(record: Record) -> list[Issue]:
    issues: list[Issue] = []
    if record.get("trace") != FORMAT:
        issues.append((f'"trace": "{FORMAT}"', _show(record.get("trace"))))
    if record.get("version") != VERSION:
        issues.append((f'"version": {VERSION}', _show(record.get("version"))))
    if "profile" in record and not isinstance(record["profile"], str):
        issues.append(("a profile name", _show(record["profile"])))
    accounts = record.get("accounts", {})
    if not isinstance(accounts, dict) or not all(
        isinstance(value, str) for value in accounts.values()
    ):
        issues.append(("accounts as an object of principal -> password", _show(accounts)))
    processes = record.get("processes", {})
    if not isinstance(processes, dict) or not all(
        isinstance(value, dict) for value in processes.values()
    ):
        issues.append(("processes as an object of name -> settings", _show(processes)))
        return issues
    for name, settings in processes.items():
        for key, (expected, valid) in _SETTINGS.items():  # ROB-008: typed before any replay
            if key in settings and not valid(settings[key]):
                issues.append((f"processes.{name}.{key} as {expected}", _show(settings[key])))
    return issues


_SETTINGS: dict[str, tuple[str, Callable[[Any], bool]]] = {
    "logon_user": ("a string or null", lambda v: v is None or isinstance(v, str)),
    "strict": ("true or false", lambda v: isinstance(v, bool)),
    "async_any_package": ("true or false", lambda v: isinstance(v, bool)),
    "packages": (
        "a list of package names or null",
        lambda v: v is None or (isinstance(v, list) and all(isinstance(n, str) for n in v)),
    ),
    "profile": ("a profile name", lambda v: isinstance(v, str)),
    "scheduler": ("a scheduler repr", lambda v: isinstance(v, str)),
}


def check_record(record: Any, *, first: bool = False) -> list[Issue]:
    """(expected, found) pairs for everything malformed in one line's value; [] if fine.

    Any value gets an answer (TRC-005): a check that cannot even look at it says so.
    """
    try:
        return _check(record, first)
    except (RecursionError, ValueError, TypeError) as error:
        return [("a trace record", f"{type(error).__name__}: {error}"[:80])]


def _check(record: Any, first: bool) -> list[Issue]:
    if not isinstance(record, dict):
        return [("a JSON object", type(record).__name__)]
    kind = record_kind(record)
    if kind not in _FIELDS:
        return [('"event": "callback" or "misuse"', _show(record.get("event")))]
    if kind == "header" and not first:
        return [("a record (the header may only be the first line)", "a header")]
    required, optional = _FIELDS[kind]
    issues: list[Issue] = []
    keys = record.keys()
    if not (required <= keys and keys <= _ALLOWED[kind]):
        missing = sorted(required - keys)
        if missing:
            issues.append((f"{', '.join(missing)} (required in a {kind} record)", "missing"))
        extra = sorted(keys - required - optional)
        if extra:
            issues.append((f"only the fields of a {kind} record", ", ".join(extra)))
    if kind == "header":
        return issues + _header_issue(record)
    if "seq" in record and (not _is_int(record["seq"]) or record["seq"] < 1):
        issues.append(("seq as a positive integer", _show(record["seq"])))
    if "process" in record and not (isinstance(record["process"], str) and record["process"]):
        issues.append(("a process name", _show(record["process"])))
    if "call" in record and not (isinstance(record["call"], str) and record["call"] in _CALLS):
        issues.append(("the C name of an SSPI function", _show(record["call"])))
    if "status" in record and not (
        record["status"].__class__ is str and _known_status(record["status"])
    ):
        issues += _status_issue(record["status"])
    if "args" in record:
        issues += _args_issue(record["args"])
    if "out" in record:
        issues += _out_issue(record["out"])
    if "pending" in record and not _is_symbol(record["pending"]):
        issues += _symbol_issue(record["pending"], "pending")
    if kind == "complete" and record.get("step") != "complete":
        issues.append(('"step": "complete"', _show(record.get("step"))))
    if kind == "callback" and not _is_symbol(record.get("async_context")):
        issues += _symbol_issue(record.get("async_context"), "async_context")
    if kind == "misuse":
        if not (isinstance(record.get("rule"), str) and RULE_ID.match(record["rule"])):
            issues.append(("a rule ID such as ASY-052", _show(record.get("rule"))))
        if "raised" in record and not isinstance(record["raised"], bool):
            issues.append(("raised as true or false", _show(record["raised"])))
    return issues


# -- a memo of accepted lines, by shape (TRC-007) ---------------------------------------------
#
# Lines of one trace differ mostly in their numbers: seq, symbol suffixes, {"from": SEQ}. A
# line's shape is its text with every ASCII digit written as 1, and for the lines check_line
# memoizes no check above tells two texts of one shape apart: the JSON structure, keys and key
# order stay (no field name has a digit); a number stays an integer or not, with its sign and
# digit count; a symbol, rule ID or base64 text stays valid or invalid; no call, buffer type
# or status name has a digit. Three checks read more than that, and their lines are left to
# check_record: a seq that is not a positive integer, an args.out other than null or true
# (only 1 means true), and a status that is not text or is hex ("0x" or "0X" first: only the
# status field is read as hex, so only it is looked at, not the whole text). Nor is the header
# memoized, nor a line with an escape (\u0031 is a digit's code). So a shape whose line passed
# check_record passes for every such line of that shape, and check_line skips the check for
# those.

# Bytes: bytes.translate reads a 256-byte table; str.translate looks each character up in a dict.
_SHAPE = bytes.maketrans(b"0123456789", b"1111111111")
_SHAPES: set[bytes] = set()
_SHAPES_KEPT = 1024  # shapes remembered (a recorded cycle has a few dozen)
_SHAPE_LENGTH = 4096  # characters of the longest line remembered
_HEX = ("0x", "0X")  # the prefixes of a hex status (status_value reads its digits)


def check_line(text: str, record: Any, *, first: bool = False) -> list[Issue]:
    """check_record(record) for `record`, the value of JSON line `text`, remembering the shapes
    of lines that passed (see above): a line of a known shape passes without being checked."""
    # Which lines may be memoized (see above), inline: this runs once per line.
    if record.__class__ is not dict or "trace" in record or len(text) > _SHAPE_LENGTH:
        return check_record(record, first=first)
    seq = record.get("seq")
    args = record.get("args")
    status = record.get("status", "")
    if (
        seq.__class__ is not int
        or seq < 1
        or (
            args.__class__ is dict
            and "out" in args
            and args["out"] is not None
            and args["out"] is not True
        )
        or "\\" in text
        or status.__class__ is not str
        or status[:2] in _HEX
    ):
        return check_record(record, first=first)
    shape = text.encode("utf-8", "surrogatepass").translate(_SHAPE)
    if shape in _SHAPES:  # TRC-007: a shape that passed passes
        return []
    issues = check_record(record, first=first)
    if not issues:
        if len(_SHAPES) >= _SHAPES_KEPT:
            _SHAPES.clear()
        _SHAPES.add(shape)
    return issues
