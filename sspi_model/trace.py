"""JSON Lines traces: record SSPI calls from the model, check traces, replay them on the model.

One record per line; the format is specified in specs/trace-format.md (JSON Schema:
specs/trace.schema.json). In brief:

    {"trace": "sspi-model", "version": 1, "profile": ..., "accounts": {...}, "processes": {...}}
    {"seq": 1, "process": "client", "call": "AcquireCredentialsHandleW", "args": {...},
     "status": "SEC_E_OK", "out": {"credential": "$cred1", ...}}
    {"seq": 7, "process": "server", "step": "complete", "pending": "$call1", "status": ...}
    {"seq": 8, "process": "server", "event": "callback", "async_context": "$actx1", ...}
    {"seq": 9, "process": "server", "event": "misuse", "rule": "ASY-052", ...}

Handles, async contexts, pending calls and package allocations are symbols ("$ctx1") bound by
the record that first returned them; input tokens are base64 or {"from": SEQ}, the output token
of an earlier record, so a trace replays on a backend whose tokens differ byte for byte.

`validate` replays a trace the way TLA+ trace validation does: it executes the trace's actions
(calls and completion steps) on fresh instances, records what those instances do with a second
Recorder, and compares the two record streams line by line. The verdict names the first line
the model does not allow.
"""

from __future__ import annotations

import base64
import binascii
import collections
import contextlib
import inspect
import json
import re
import sys
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from types import FrameType
from typing import Any

import attrs

from sspi_model.async_api import AsyncContext, Out, SspiMisuse
from sspi_model.buffers import SECBUFFER_ATTRMASK, SecBuffer, SecBufferType, as_buffers
from sspi_model.events import CallEvent, CompletionEvent, MisuseReport, NotifyEvent
from sspi_model.handles import SecHandle
from sspi_model.lifecycle import Call
from sspi_model.packages import default_packages
from sspi_model.packages.base import Package
from sspi_model.packages.ntlm import AuthIdentity
from sspi_model.packages.schannel import Certificate, SchannelCred
from sspi_model.profiles import Profile, resolve_profile
from sspi_model.results import (
    AcquireCredentialsResult,
    EnumerateSecurityPackagesResult,
    QueryContextAttributesResult,
    QuerySecurityPackageInfoResult,
    SecurityContextResult,
)
from sspi_model.scheduling import ManualScheduler
from sspi_model.sspi import Sspi
from sspi_model.status import NtStatus, SecStatus, lookup

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
    }
)
_CALLS = {call.value: call for call in Call}
_LEGS = (Call.INITIALIZE_SECURITY_CONTEXT_ASYNC, Call.ACCEPT_SECURITY_CONTEXT_ASYNC)
SYMBOL = re.compile(r"^\$[A-Za-z_][A-Za-z0-9_.-]*$")
RULE_ID = re.compile(r"^[A-Z]{2,5}-[0-9]{3}$")
_TOKEN_KEYS = frozenset({"input", "token", "output"})


# -- statuses and small values ---------------------------------------------------------------


def status_name(value: int) -> str:
    """The macro name of a status, or 0x-hex for a value no macro names (a poisoned read)."""
    if isinstance(value, (SecStatus, NtStatus)):
        return value.name
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


def _buffer_type(value: int) -> str | int:
    if not value & SECBUFFER_ATTRMASK and value in SecBufferType._value2member_map_:
        return SecBufferType(value).name
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
        }
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
            return SchannelCred(certificate, value.get("protocols", "tls1.2"))
    except (KeyError, TypeError, ValueError) as error:
        raise ReplayError(f"auth_data {kind} is incomplete: {error}") from None
    raise ReplayError(f"cannot rebuild auth_data {value!r}: only AuthIdentity and SchannelCred")


# -- the recorder ----------------------------------------------------------------------------


@attrs.frozen
class Symbol:
    """One symbolic name in a trace and what it stands for."""

    name: str
    kind: str  # "credential", "context", "async", "pending" or "buffer"
    process: str
    value: Any  # SecHandle, AsyncContext, pending id or allocation address


_PREFIXES = {
    "credential": "cred",
    "context": "ctx",
    "async": "actx",
    "pending": "call",
    "buffer": "buf",
}


class Recorder:
    """An observer that turns the events of one or more Sspi instances into trace records.

    `recorder.attach(sspi, "client")` names a process and makes the recorder its observer;
    `Sspi(observer=recorder)` works too (processes are then named process1, process2, ...).
    Records are plain dicts in causal order: `recorder.trace()` is [header, *records].
    """

    def __init__(self) -> None:
        self._lock = threading.RLock()
        self._records: list[Record] = []
        self._names: dict[int, str] = {}  # id(instance) -> process name
        self._targets: dict[str, Any] = {}  # process name -> the first instance registered
        self._async_only: set[int] = set()
        self._keys: dict[tuple[str, str, Any], Symbol] = {}
        self._symbols: dict[str, Symbol] = {}
        self._counts: dict[str, int] = {}
        self._tokens: dict[int, bytes] = {}  # seq -> its output token
        self._token_seq: dict[bytes, int] = {}  # token -> latest seq that output it
        self._pending_context: dict[int, AsyncContext] = {}
        self._listeners: list[Callable[[Record], None]] = []

    # -- processes ---------------------------------------------------------------------------

    def attach(self, sspi: Any, process: str, *, async_only: bool = False) -> Any:
        """Name `sspi`'s process and observe it (alongside any observer it already has).

        `async_only` ignores its synchronous CallEvents: the replayer synthesizes those itself
        when the synchronous calls go through a backend wrapping this instance.
        """
        self.register(sspi, process)
        if async_only:
            self._async_only.add(id(sspi))
        previous = sspi.observer
        if previous is None or previous is self:
            sspi.observer = self
        else:

            def both(event: Any) -> None:
                previous(event)
                self(event)

            sspi.observer = both
        return sspi

    def register(self, target: Any, process: str) -> None:
        """Name the process of an object whose events are fed to the recorder by hand."""
        with self._lock:
            self._names[id(target)] = process
            self._targets.setdefault(process, target)

    @property
    def processes(self) -> dict[str, Any]:
        return dict(self._targets)

    def _process(self, target: Any) -> str:
        name = self._names.get(id(target))
        if name is None:
            name = f"process{len(self._targets) + 1}"
            self.register(target, name)
        return name

    # -- symbols -----------------------------------------------------------------------------

    def _bind(self, kind: str, process: str, key: Any, value: Any) -> str:
        """The symbol of `key`, minted on first sight.

        Handles and allocations are scoped by process (two real processes may issue equal
        values); async contexts and pending ids are objects and ids unique across processes.
        """
        scope = "" if kind in ("async", "pending") else process
        found = self._keys.get((kind, scope, key))
        if found is not None:
            return found.name
        count = self._counts.get(kind, 0) + 1
        self._counts[kind] = count
        symbol = Symbol(f"${_PREFIXES[kind]}{count}", kind, process, value)
        self._keys[(kind, scope, key)] = symbol
        self._symbols[symbol.name] = symbol
        return symbol.name

    def _find(self, kinds: Sequence[str], process: str, key: Any) -> str | None:
        """A known symbol for `key`: this process first, then any (a foreign handle)."""
        for kind in kinds:
            found = self._keys.get((kind, process, key))
            if found is not None:
                return found.name
        for (kind, _process, other), symbol in self._keys.items():
            if kind in kinds and other == key:
                return symbol.name
        return None

    def symbols(self) -> list[Symbol]:
        with self._lock:
            return list(self._symbols.values())

    def symbol(self, name: str) -> Symbol | None:
        return self._symbols.get(name)

    def pending_context(self, pending: int) -> AsyncContext | None:
        """The async context a queued call was made on."""
        return self._pending_context.get(pending)

    def token(self, seq: int) -> bytes | None:
        """The output token of record `seq` (b"" when it had none), None if it has no output."""
        return self._tokens.get(seq)

    # -- records -----------------------------------------------------------------------------

    @property
    def records(self) -> list[Record]:
        with self._lock:
            return list(self._records)

    def listen(self, listener: Callable[[Record], None]) -> Callable[[], None]:
        """Call `listener(record)` for every new record; returns the function that stops it."""
        self._listeners.append(listener)

        def stop() -> None:
            if listener in self._listeners:
                self._listeners.remove(listener)

        return stop

    def header(self) -> Record:
        processes: dict[str, Record] = {}
        accounts: dict[str, str] = {}
        profiles: list[str] = []
        for name, target in self._targets.items():
            config: Record = {}
            if isinstance(target, Sspi):
                accounts.update(target.env.accounts)
                profiles.append(target.profile.name)
                config = {
                    "profile": target.profile.name,
                    "logon_user": target.env.logon_user,
                    "strict": target.strict,
                    "async_any_package": target.async_any_package,
                    # Read from the instance: Sspi has no public list of its packages.
                    "packages": [package.info.name for package in target._packages],
                    "scheduler": repr(target.scheduler),
                }
            processes[name] = config
        profile = profiles[0] if profiles else "documented"
        for config in processes.values():
            if config.get("profile") == profile:
                del config["profile"]  # only a process that differs names its own
        return {
            "trace": FORMAT,
            "version": VERSION,
            "profile": profile,
            "accounts": accounts,
            "processes": processes,
        }

    def trace(self) -> list[Record]:
        return [self.header(), *self.records]

    def __call__(self, event: Any) -> None:
        with self._lock:
            if self._ignored(event):
                return
            seq = len(self._records) + 1
            if isinstance(event, CallEvent):
                record = self._call(seq, event)
            elif isinstance(event, CompletionEvent):
                record = self._completion(seq, event)
            elif isinstance(event, NotifyEvent):
                record = self._callback(seq, event)
            elif isinstance(event, MisuseReport):
                record = self._misuse(seq, event)
            else:
                return
            self._records.append(record)
            listeners = list(self._listeners)
        for listener in listeners:
            listener(record)

    def _ignored(self, event: Any) -> bool:
        return (
            isinstance(event, CallEvent)
            and event.call in SYNC_CALLS
            and id(event.sspi) in self._async_only
        )

    def _call(self, seq: int, event: CallEvent) -> Record:
        process = self._process(event.sspi)
        call: Call = event.call
        record: Record = {
            "seq": seq,
            "process": process,
            "call": call.value,
            "args": self._args(process, event.args),
        }
        result = event.result
        if call is Call.CREATE_ASYNC_CONTEXT:
            record["result"] = (
                None if result is None else self._bind("async", process, id(result), result)
            )
        elif call is Call.ASYNC_CONTEXT_REQUIRES_NOTIFY:
            record["result"] = bool(result)
        elif call is Call.FREE_ASYNC_CONTEXT:
            pass  # void
        elif isinstance(result, int):
            record["status"] = status_name(result)
        else:
            record["status"] = status_name(result.status)
            record["out"] = self._result(seq, process, result)
        if event.pending is not None:
            record["pending"] = self._bind("pending", process, event.pending, event.pending)
            context = event.args.get("async_context")
            if isinstance(context, AsyncContext):
                self._pending_context[event.pending] = context
        return record

    def _completion(self, seq: int, event: CompletionEvent) -> Record:
        process = self._process(event.sspi)
        record: Record = {
            "seq": seq,
            "process": process,
            "step": "complete",
            "pending": self._bind("pending", process, event.pending, event.pending),
            "call": event.call.value,
            "status": status_name(event.status),
        }
        out = event.out
        if isinstance(out, Out) and out.written:
            if event.call is Call.ACQUIRE_CREDENTIALS_HANDLE_ASYNC:
                record["out"] = {
                    "credential": self._handle_out("credential", process, out.credential),
                    "expiry": out.expiry,
                }
            elif event.call in _LEGS:
                record["out"] = self._leg_out(
                    seq,
                    process,
                    out.new_context,
                    out.output,
                    out.context_attr,
                    out.expiry,
                    out.input_after,
                )
        return record

    def _callback(self, seq: int, event: NotifyEvent) -> Record:
        process = self._process(event.sspi)
        context = event.async_context
        return {
            "seq": seq,
            "process": process,
            "event": "callback",
            "async_context": self._bind("async", process, id(context), context),
            "pending": self._bind("pending", process, event.pending, event.pending),
            "data": _json_value(event.callback_data),
        }

    def _misuse(self, seq: int, event: MisuseReport) -> Record:
        process = self._process(event.sspi)
        raised = bool(getattr(event.sspi, "strict", True))
        record: Record = {
            "seq": seq,
            "process": process,
            "event": "misuse",
            "call": event.call.value,
            "rule": event.rule,
            "message": event.message,
            "raised": raised,
        }
        if raised:
            # The call raises before its CallEvent, so this record stands for the call.
            args = getattr(event, "args", None)
            if args is None:
                args = _calling_args(event.sspi, event.call)
            if args is not None:
                record["args"] = self._args(process, args)
        return record

    # -- encoding ----------------------------------------------------------------------------

    def _args(self, process: str, args: Mapping[str, Any]) -> Record:
        return {key: self._arg(process, key, value) for key, value in args.items()}

    def _arg(self, process: str, key: str, value: Any) -> Any:
        if key == "callback":
            return None if value is None else getattr(value, "__name__", type(value).__name__)
        if key == "callback_data":
            return _json_value(value)
        if key == "out":
            return None if value is None else True
        if key == "auth_data":
            return _encode_auth(value)
        if key == "buffer" and isinstance(value, int) and not isinstance(value, bool):
            return self._find(("buffer",), process, value) or value
        if isinstance(value, SecHandle):
            kinds = ("credential", "context") if key == "credential" else ("context", "credential")
            return self._find(kinds, process, value) or {"lower": value.lower, "upper": value.upper}
        if isinstance(value, AsyncContext):
            return self._bind("async", process, id(value), value)
        if key in _TOKEN_KEYS:
            return self._buffers(process, as_buffers(value, key), shorthand=True)
        if isinstance(value, bool) or value is None or isinstance(value, str):
            return value
        if isinstance(value, int):
            return int(value)  # enums become plain numbers
        return {"repr": repr(value)}

    def _data(self, data: bytes, *, reference: bool) -> Any:
        if reference and data and data in self._token_seq:
            return {"from": self._token_seq[data]}
        return base64.b64encode(data).decode("ascii")

    def _buffers(
        self, process: str, buffers: Sequence[SecBuffer] | None, *, shorthand: bool
    ) -> Any:
        if buffers is None:
            return None
        if shorthand and len(buffers) == 1 and _plain_token(buffers[0]):
            return self._data(buffers[0].data, reference=True)
        items: list[Record] = []
        for buffer in buffers:
            item: Record = {
                "type": _buffer_type(buffer.buffer_type),
                "data": self._data(buffer.data, reference=shorthand),
            }
            if buffer.size is not None:
                item["size"] = buffer.size
            if buffer.allocation is not None:
                item["allocation"] = self._bind(
                    "buffer", process, buffer.allocation, buffer.allocation
                )
            items.append(item)
        return items

    def _handle_out(self, kind: str, process: str, handle: SecHandle | None) -> str | None:
        # A returned handle belongs to the process that returned it: never a foreign symbol.
        return None if handle is None else self._bind(kind, process, handle, handle)

    def _allocation(self, process: str, address: int | None) -> str | None:
        return None if address is None else self._bind("buffer", process, address, address)

    def _remember(self, seq: int, output: Sequence[SecBuffer]) -> None:
        token = next((b.data for b in output if b.base_type == SecBufferType.SECBUFFER_TOKEN), b"")
        self._tokens[seq] = token
        if token:
            self._token_seq[token] = seq

    def _leg_out(
        self,
        seq: int,
        process: str,
        context: SecHandle | None,
        output: Sequence[SecBuffer],
        context_attr: int,
        expiry: int | None,
        input_after: Sequence[SecBuffer] | None,
    ) -> Record:
        out: Record = {
            "context": self._handle_out("context", process, context),
            "output": self._buffers(process, output, shorthand=False),
            "context_attr": context_attr,
            "expiry": expiry,
        }
        if input_after is not None:
            out["input_after"] = self._buffers(process, input_after, shorthand=False)
        self._remember(seq, output)
        return out

    def _result(self, seq: int, process: str, result: Any) -> Record:
        if isinstance(result, AcquireCredentialsResult):
            return {
                "credential": self._handle_out("credential", process, result.credential),
                "expiry": result.expiry,
            }
        if isinstance(result, SecurityContextResult):
            return self._leg_out(
                seq,
                process,
                result.new_context,
                result.output,
                result.context_attr,
                result.expiry,
                result.input_after,
            )
        if isinstance(result, QueryContextAttributesResult):
            return {"attribute": self._attribute(process, result.buffer)}
        if isinstance(result, EnumerateSecurityPackagesResult):
            return {
                "packages": [info.name for info in result.packages],
                "allocation": self._allocation(process, result.allocation),
            }
        if isinstance(result, QuerySecurityPackageInfoResult):
            info = result.package_info
            return {
                "package": None if info is None else info.name,
                "allocation": self._allocation(process, result.allocation),
            }
        return {"repr": repr(result)}

    def _attribute(self, process: str, value: Any) -> Any:
        if value is None:
            return None
        fields: Record = {"type": type(value).__name__}
        for name, item in attrs.asdict(value, recurse=False).items():
            if name == "allocation":
                fields[name] = self._allocation(process, item)
            elif name == "package_info":
                fields["package"] = item.name  # names only: comments and sizes are per library
            else:
                fields[name] = item
        return fields


def _calling_args(sspi: Any, call: Call) -> dict[str, Any] | None:
    """The arguments of the public call that reported misuse, read from its frame.

    A MisuseReport carries no arguments, and in strict mode the call raises before its
    CallEvent, so its frame is the only place left that has them. Every public method is named
    like its Call in snake_case, and its parameters are the names a trace uses for arguments.
    """
    method = call.name.lower()
    frame: FrameType | None = sys._getframe(1)
    while frame is not None:
        code = frame.f_code
        if code.co_name == method and frame.f_locals.get("self") is sspi:
            count = code.co_argcount + code.co_kwonlyargcount
            names = code.co_varnames[1:count]
            return {name: frame.f_locals[name] for name in names if name in frame.f_locals}
        frame = frame.f_back
    return None


# -- reading and writing ---------------------------------------------------------------------


@attrs.frozen
class Problem:
    """A line that is not a well-formed trace record."""

    line: int
    expected: str
    found: str

    def __str__(self) -> str:
        return f"line {self.line}: expected {self.expected}; found {self.found}"


@attrs.frozen
class Trace:
    """A trace as read: the header, the well-formed records with their line numbers, problems."""

    header: Record | None
    records: tuple[Record, ...]
    lines: tuple[int, ...]
    problems: tuple[Problem, ...] = ()


def write_trace(path: str | Path, records: Recorder | Iterable[Record]) -> int:
    """Write records (or a Recorder's whole trace) as JSON Lines; returns the line count."""
    rows = records.trace() if isinstance(records, Recorder) else list(records)
    with Path(path).open("w", encoding="utf-8", newline="\n") as handle:
        for row in rows:
            handle.write(json.dumps(row, ensure_ascii=False) + "\n")
    return len(rows)


def read_trace(path: str | Path) -> Trace:
    """Read a trace, checking every line; malformed lines become Problems, the rest is kept."""
    with Path(path).open(encoding="utf-8") as handle:
        return parse_lines(handle)


def parse_lines(lines: Iterable[str]) -> Trace:
    parsed: list[tuple[int, Any]] = []
    problems: list[Problem] = []
    for number, text in enumerate(lines, start=1):
        if not text.strip():
            continue
        try:
            parsed.append((number, json.loads(text)))
        except json.JSONDecodeError as error:
            found = f"invalid JSON ({error.msg} at column {error.colno})"
            problems.append(Problem(number, "one JSON object per line", found))
    return _checked(parsed, problems)


def as_trace(records: Trace | Iterable[Record]) -> Trace:
    """A Trace from records in memory (line numbers count from 1, the header included)."""
    if isinstance(records, Trace):
        return records
    return _checked(list(enumerate(records, start=1)), [])


def _checked(parsed: list[tuple[int, Any]], problems: list[Problem]) -> Trace:
    header: Record | None = None
    kept: list[Record] = []
    numbers: list[int] = []
    last_seq = 0
    for index, (number, value) in enumerate(parsed):
        issues = check_record(value, first=index == 0)
        problems.extend(Problem(number, expected, found) for expected, found in issues)
        if issues:
            continue
        if record_kind(value) == "header":
            header = value
            continue
        if value["seq"] <= last_seq:
            problems.append(
                Problem(number, f"a seq greater than {last_seq}", f"seq {value['seq']}")
            )
        last_seq = max(last_seq, value["seq"])
        kept.append(value)
        numbers.append(number)
    problems.sort(key=lambda problem: problem.line)
    return Trace(header, tuple(kept), tuple(numbers), tuple(problems))


# -- structural checks (the JSON Schema's rules, without a schema library) -------------------

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
    }
)
Issue = tuple[str, str]


def _show(value: Any) -> str:
    text = json.dumps(value, ensure_ascii=False)
    return text if len(text) <= 60 else text[:57] + "..."


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _symbol_issue(value: Any, what: str, *, nullable: bool = False) -> list[Issue]:
    if value is None and nullable:
        return []
    if isinstance(value, str) and SYMBOL.match(value):
        return []
    expected = f'{what} as a symbol like "$ctx1"' + (" or null" if nullable else "")
    return [(expected, _show(value))]


def _status_issue(value: Any) -> list[Issue]:
    try:
        if isinstance(value, str):
            status_value(value)
            return []
    except ValueError:
        pass
    return [("a status macro name (such as SEC_E_OK) or a 0x-hex value", _show(value))]


def _data_issue(value: Any, where: str) -> list[Issue]:
    if isinstance(value, dict) and set(value) == {"from"} and _is_int(value["from"]):
        return []
    if isinstance(value, str):
        try:
            base64.b64decode(value, validate=True)
            return []
        except binascii.Error:
            pass
    return [(f'{where} as base64 or {{"from": SEQ}}', _show(value))]


def _buffers_issue(value: Any, where: str, *, shorthand: bool) -> list[Issue]:
    if value is None:
        return []
    if shorthand and not isinstance(value, list):
        return _data_issue(value, where)
    if not isinstance(value, list):
        return [(f"{where} as a list of buffers", _show(value))]
    issues: list[Issue] = []
    for item in value:
        if (
            not isinstance(item, dict)
            or "type" not in item
            or not set(item)
            <= {
                "type",
                "data",
                "size",
                "allocation",
            }
        ):
            issues.append((f'{where} buffers like {{"type": ..., "data": ...}}', _show(item)))
            continue
        kind = item["type"]
        if not (_is_int(kind) or (isinstance(kind, str) and kind in SecBufferType.__members__)):
            issues.append(("a SECBUFFER_* type name or number", _show(kind)))
        issues += _data_issue(item.get("data", ""), f"{where} data")
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
    unknown = sorted(set(out) - _OUT_KEYS)
    if unknown:
        issues.append((f"out fields among {', '.join(sorted(_OUT_KEYS))}", ", ".join(unknown)))
    for key in ("credential", "context", "allocation"):
        if key in out:
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


def check_record(record: Any, *, first: bool = False) -> list[Issue]:
    """(expected, found) pairs for everything malformed in one line's value; [] if fine."""
    if not isinstance(record, dict):
        return [("a JSON object", type(record).__name__)]
    kind = record_kind(record)
    if kind not in _FIELDS:
        return [('"event": "callback" or "misuse"', _show(record.get("event")))]
    if kind == "header" and not first:
        return [("a record (the header may only be the first line)", "a header")]
    required, optional = _FIELDS[kind]
    issues: list[Issue] = []
    missing = sorted(required - set(record))
    if missing:
        issues.append((f"{', '.join(missing)} (required in a {kind} record)", "missing"))
    extra = sorted(set(record) - required - optional)
    if extra:
        issues.append((f"only the fields of a {kind} record", ", ".join(extra)))
    if kind == "header":
        return issues + _header_issue(record)
    if "seq" in record and (not _is_int(record["seq"]) or record["seq"] < 1):
        issues.append(("seq as a positive integer", _show(record["seq"])))
    if "process" in record and not (isinstance(record["process"], str) and record["process"]):
        issues.append(("a process name", _show(record["process"])))
    if "call" in record and record["call"] not in _CALLS:
        issues.append(("the C name of an SSPI function", _show(record["call"])))
    if "status" in record:
        issues += _status_issue(record["status"])
    if "args" in record:
        issues += _args_issue(record["args"])
    if "out" in record:
        issues += _out_issue(record["out"])
    if "pending" in record:
        issues += _symbol_issue(record["pending"], "pending")
    if kind == "complete" and record.get("step") != "complete":
        issues.append(('"step": "complete"', _show(record.get("step"))))
    if kind == "callback":
        issues += _symbol_issue(record.get("async_context"), "async_context")
    if kind == "misuse":
        if not (isinstance(record.get("rule"), str) and RULE_ID.match(record["rule"])):
            issues.append(("a rule ID such as ASY-052", _show(record.get("rule"))))
        if "raised" in record and not isinstance(record["raised"], bool):
            issues.append(("raised as true or false", _show(record["raised"])))
    return issues


# -- replay ----------------------------------------------------------------------------------


class ReplayError(Exception):
    """The trace cannot be executed at this record (an unbound symbol, a bad argument, ...)."""


@attrs.frozen
class Verdict:
    """OK, or the first line the model does not allow: `expected` is what the model does,
    `found` what the trace says. `unsupported` means the replay could not run at all."""

    ok: bool
    replayed: int
    line: int | None = None
    seq: int | None = None
    what: str = ""
    expected: str = ""
    found: str = ""
    problems: tuple[Problem, ...] = ()
    unsupported: bool = False
    against: str = "model"  # what replayed it: "model", or the backend's name

    def __str__(self) -> str:
        lines = [str(problem) for problem in self.problems]
        if self.line is not None or self.what:
            where = f"line {self.line}" if self.line is not None else "the trace"
            if self.seq is not None:
                where += f" (seq {self.seq})"
            lines.append(f"{where}: {self.what}")
            if self.found or self.expected:
                lines.extend(self.comparison())
        if self.ok:
            lines.append(f"OK: the model allows every record ({self.replayed} replayed)")
        return "\n".join(lines)

    def comparison(self) -> list[str]:
        """What the trace has and what the replaying side does, aligned."""
        width = max(len("trace"), len(self.against)) + 2
        return [
            f"  {'trace:':<{width}} {self.found}",
            f"  {self.against + ':':<{width}} {self.expected}",
        ]

    def to_json(self) -> Record:
        return {
            "ok": self.ok,
            "replayed": self.replayed,
            "line": self.line,
            "seq": self.seq,
            "what": self.what,
            "expected": self.expected,
            "found": self.found,
            "unsupported": self.unsupported,
            "against": self.against,
            "problems": [attrs.asdict(problem) for problem in self.problems],
        }


@attrs.frozen
class _Mismatch:
    what: str
    found: str
    expected: str


@attrs.define
class _Process:
    name: str
    sync: Any
    asynchronous: Any | None
    synthesize: bool  # sync calls go to a backend that has no observer
    closer: Callable[[], None] | None = None


def _is_action(record: Record) -> bool:
    """Calls and completion steps are executed; callbacks and misuse are observed.

    A misuse record with args stands for a call that raised SspiMisuse (strict mode), so it is
    executed too. Without args it is observed: the next action must report it.
    """
    kind = record_kind(record)
    return kind in ("call", "complete") or (kind == "misuse" and "args" in record)


def _is_async(record: Record) -> bool:
    kind = record_kind(record)
    return kind in ("complete", "callback") or (
        "call" in record and _CALLS.get(record["call"]) not in SYNC_CALLS
    )


def _construct(factory: Callable[..., Any], options: Record) -> Any:
    """Call a backend factory with the settings it accepts (accounts, profile, ...)."""
    try:
        parameters = inspect.signature(factory).parameters.values()
    except (TypeError, ValueError):
        return factory()
    if any(parameter.kind is inspect.Parameter.VAR_KEYWORD for parameter in parameters):
        return factory(**options)
    names = {parameter.name for parameter in parameters}
    return factory(**{key: value for key, value in options.items() if key in names})


def _default_async(backend: Any) -> Any | None:
    """The object running async calls over `backend`: its own Sspi, when it declares one."""
    capabilities = getattr(backend, "capabilities", None)
    if not getattr(capabilities, "async_api", False):
        return None
    for candidate in (getattr(backend, "sspi", None), backend):
        if candidate is not None and hasattr(candidate, "create_async_context"):
            return candidate
    return None


class _Replay:
    """Drives fresh instances through a trace and compares what they record with the trace."""

    def __init__(
        self,
        header: Record | None,
        profile: str | Profile | None,
        backend: Callable[..., Any] | None,
        async_adapter: Callable[[Any], Any] | None,
    ) -> None:
        self.header = header or {}
        self.profile = profile
        self.backend = backend
        self.async_adapter = async_adapter
        self.recorder = Recorder()
        self.produced: collections.deque[Record] = collections.deque()
        self.recorder.listen(self.produced.append)
        self.processes: dict[str, _Process] = {}
        self.t2m: dict[str, str] = {}  # trace symbol -> replay symbol
        self.m2t: dict[str, str] = {}
        self.seq_map: dict[int, int] = {}  # trace seq -> replay seq
        self.notifications: list[tuple[Any, Any]] = []
        self.against = "model"

    # -- processes ---------------------------------------------------------------------------

    def _settings(self, name: str) -> Record:
        processes = self.header.get("processes") or {}
        settings = dict(processes.get(name) or {})
        profile = self.profile or settings.get("profile") or self.header.get("profile")
        try:
            resolved = resolve_profile(profile or "documented")
        except (TypeError, ValueError) as error:
            raise ReplayError(f"process {name}: {error}") from None
        return {
            "accounts": dict(self.header.get("accounts") or {}),
            "profile": resolved,
            "logon_user": settings.get("logon_user"),
            "strict": settings.get("strict", True),
            "async_any_package": settings.get("async_any_package", False),
            "packages": settings.get("packages"),
        }

    def process(self, name: str) -> _Process:
        found = self.processes.get(name)
        if found is None:
            found = self._start(name, self._settings(name))
            self.processes[name] = found
        return found

    def _start(self, name: str, settings: Record) -> _Process:
        settings["packages"] = _packages(settings["packages"])
        # Completion steps need a scheduler that completes nothing on its own.
        settings["scheduler"] = ManualScheduler()
        if self.backend is None:
            sspi = Sspi(**settings)
            self.recorder.attach(sspi, name)
            return _Process(name, sspi, sspi, synthesize=False)
        if settings["packages"] is None:
            del settings["packages"]
        backend = _construct(self.backend, settings)
        self.against = str(getattr(getattr(backend, "capabilities", None), "name", "backend"))
        self.recorder.register(backend, name)
        target = (self.async_adapter or _default_async)(backend)
        if target is not None:
            self.recorder.attach(target, name, async_only=True)
        closer = getattr(backend, "close", None)
        return _Process(name, backend, target, synthesize=True, closer=closer)

    def close(self) -> None:
        for process in self.processes.values():
            if process.closer is not None:
                process.closer()

    # -- symbols and arguments ---------------------------------------------------------------

    def _object(self, symbol: str) -> Any:
        replayed = self.t2m.get(symbol)
        found = self.recorder.symbol(replayed) if replayed is not None else None
        if found is None:
            raise ReplayError(f"{symbol} is used before any record bound it")
        return found.value

    def _handle(self, value: Any) -> SecHandle | None:
        if value is None:
            return None
        if isinstance(value, dict):
            return SecHandle(value["lower"], value["upper"])
        found = self._object(value)
        if not isinstance(found, SecHandle):
            raise ReplayError(f"{value} is not a handle")
        return found

    def _data(self, value: Any) -> bytes:
        if isinstance(value, dict):
            source = value["from"]
            replayed = self.seq_map.get(source)
            token = None if replayed is None else self.recorder.token(replayed)
            if token is None:
                raise ReplayError(f"the input refers to seq {source}, which has no output token")
            return token
        return base64.b64decode(value)

    def _buffers(self, value: Any) -> Any:
        if value is None:
            return None
        if not isinstance(value, list):
            return self._data(value)
        buffers = []
        for item in value:
            kind = item["type"]
            number = SecBufferType[kind].value if isinstance(kind, str) else kind
            buffers.append(SecBuffer(number, self._data(item.get("data", "")), item.get("size")))
        return tuple(buffers)

    def _notify(self, async_context: Any, data: Any) -> None:
        # The NotifyEvent the model published before this call is what gets compared.
        self.notifications.append((async_context, data))

    def _arg(self, key: str, value: Any) -> Any:
        if key in ("credential", "context"):
            return self._handle(value)
        if key == "async_context":
            return None if value is None else self._object(value)
        if key in _TOKEN_KEYS:
            return self._buffers(value)
        if key == "auth_data":
            return decode_auth(value)
        if key == "callback":
            return None if value is None else self._notify
        if key == "out":
            return None if value is None else Out()
        if key == "buffer" and isinstance(value, str):
            return self._object(value)
        return value

    # -- actions -----------------------------------------------------------------------------

    def execute(self, record: Record) -> None:
        if record_kind(record) == "complete":
            self._complete(record["pending"])
            return
        call = _CALLS[record["call"]]
        process = self.process(record["process"])
        kwargs = {key: self._arg(key, value) for key, value in record.get("args", {}).items()}
        method = call.name.lower()
        if call in SYNC_CALLS and process.synthesize:
            target = process.sync
            result = getattr(target, method)(**kwargs)
            self.recorder(CallEvent(target, call, kwargs, result))
            return
        target = process.asynchronous if call not in SYNC_CALLS else process.sync
        # A misuse is reported to the recorder before it is raised; the comparison decides.
        with contextlib.suppress(SspiMisuse):
            getattr(target, method)(**kwargs)

    def _complete(self, symbol: str) -> None:
        wanted = self._object(symbol)
        for process in self.processes.values():
            scheduler = getattr(process.asynchronous, "scheduler", None)
            pending = getattr(scheduler, "pending", ())
            for index, call in enumerate(pending):
                if call.id == wanted:
                    assert scheduler is not None
                    with contextlib.suppress(SspiMisuse):
                        scheduler.run_one(index)
                    return
        raise ReplayError(f"the {self.against} has no pending call {symbol} to complete")

    # -- comparison --------------------------------------------------------------------------

    def _name(self, symbol: Any) -> str:
        return self.m2t.get(symbol, symbol) if isinstance(symbol, str) else json.dumps(symbol)

    def _bind(self, what: str, trace: Any, model: Any) -> _Mismatch | None:
        if trace is None or model is None:
            if trace is None and model is None:
                return None
            return _Mismatch(f"{what} differs", _show(trace), self._name(model))
        bound = self.t2m.get(trace)
        if bound is None and model not in self.m2t:
            self.t2m[trace] = model
            self.m2t[model] = trace
            return None
        if bound == model:
            return None
        return _Mismatch(f"{what} differs", trace, f"{self._name(model)} (another object)")

    def _buffers_match(self, what: str, trace: Any, model: Any) -> _Mismatch | None:
        if not isinstance(trace, list) or not isinstance(model, list):
            if trace is None and model is None:
                return None
            return _Mismatch(f"{what} differs", _show(trace), _show(model))
        if [item.get("type") for item in trace] != [item.get("type") for item in model]:
            types_t = [item.get("type") for item in trace]
            types_m = [item.get("type") for item in model]
            return _Mismatch(f"{what} buffer types differ", _show(types_t), _show(types_m))
        for index, (left, right) in enumerate(zip(trace, model, strict=True)):
            where = f"{what}[{index}]"
            # Token bytes carry nonces: only whether a buffer holds data is compared.
            if "data" in left and bool(left["data"]) != bool(right.get("data")):
                empty = {True: "data", False: "no data"}
                found, expected = empty[bool(left["data"])], empty[bool(right.get("data"))]
                return _Mismatch(f"{where} differs", found, expected)
            if "size" in left and left["size"] != right.get("size"):
                return _Mismatch(
                    f"{where}.size differs", _show(left["size"]), _show(right.get("size"))
                )
            if "allocation" in left:
                mismatch = self._bind(
                    f"{where}.allocation", left["allocation"], right.get("allocation")
                )
                if mismatch:
                    return mismatch
        return None

    def _out_match(self, trace: Record, model: Record) -> _Mismatch | None:
        for key, value in trace.items():
            where = f"out.{key}"
            if key not in model:
                return _Mismatch(f"{where} is not returned", _show(value), "no such field")
            other = model[key]
            if key in ("credential", "context", "allocation"):
                mismatch = self._bind(where, value, other)
            elif key in ("output", "input_after"):
                mismatch = self._buffers_match(where, value, other)
            elif key == "expiry":
                # Real libraries return real times: only whether there is one is compared.
                same = (value is None) == (other is None)
                mismatch = (
                    None if same else _Mismatch(f"{where} differs", _show(value), _show(other))
                )
            elif key == "attribute" and isinstance(value, dict) and isinstance(other, dict):
                mismatch = self._out_match(value, other)
            else:
                mismatch = (
                    None
                    if value == other
                    else _Mismatch(f"{where} differs", _show(value), _show(other))
                )
            if mismatch:
                return mismatch
        return None

    def match(self, trace: Record, model: Record) -> _Mismatch | None:
        kind, other = record_kind(trace), record_kind(model)
        if kind != other:
            return _Mismatch(
                f"the {self.against} records a {other} here", describe(trace), self.describe(model)
            )
        for key in ("process", "call"):
            if key in trace and trace[key] != model.get(key):
                return _Mismatch(f"{key} differs", _show(trace[key]), _show(model.get(key)))
        if "status" in trace:
            found, expected = status_value(trace["status"]), model.get("status")
            if expected is None or found != status_value(expected):
                return _Mismatch(
                    "status differs", _status_text(trace["status"]), _status_text(expected)
                )
        checks: list[_Mismatch | None] = []
        if "result" in trace:
            if trace.get("call") == Call.CREATE_ASYNC_CONTEXT.value:
                checks.append(self._bind("result", trace["result"], model.get("result")))
            elif trace["result"] != model.get("result"):
                checks.append(
                    _Mismatch("result differs", _show(trace["result"]), _show(model.get("result")))
                )
        for key in ("pending", "async_context"):
            if key in trace:
                checks.append(self._bind(key, trace[key], model.get(key)))
        if "out" in trace:
            checks.append(self._out_match(trace["out"], model.get("out") or {}))
        if kind == "callback" and "data" in trace and trace["data"] != model.get("data"):
            checks.append(
                _Mismatch("callback data differs", _show(trace["data"]), _show(model.get("data")))
            )
        if kind == "misuse":
            for key in ("rule", "raised"):
                if key in trace and trace[key] != model.get(key):
                    checks.append(
                        _Mismatch(f"misuse {key} differs", _show(trace[key]), _show(model.get(key)))
                    )
        mismatch = next((check for check in checks if check is not None), None)
        if mismatch is None:
            self.seq_map[trace["seq"]] = model["seq"]
        return mismatch

    def describe(self, record: Record) -> str:
        """A replay record described with the trace's symbols where they are known."""
        renamed = {
            key: self._name(value) if isinstance(value, str) and value.startswith("$") else value
            for key, value in record.items()
        }
        return describe(renamed)

    # -- the loop ----------------------------------------------------------------------------

    def run(self, trace: Trace) -> Verdict:
        # Start every process first, outside the per-record error handling: a backend that
        # cannot start (no library) is the environment's problem, not the trace's.
        named = [*(self.header.get("processes") or {}), *(r.get("process") for r in trace.records)]
        for name in dict.fromkeys(name for name in named if isinstance(name, str)):
            self.process(name)
        items = list(zip(trace.lines, trace.records, strict=True))
        replayed = 0
        index = 0
        while index < len(items):
            line, record = items[index]
            if not self.produced:
                action = next(
                    (i for i in range(index, len(items)) if _is_action(items[i][1])), None
                )
                if action is None:
                    return _failed(
                        replayed,
                        line,
                        record,
                        f"the {self.against} produces no such record",
                        describe(record),
                        "nothing",
                    )
                action_line, action_record = items[action]
                try:
                    self.execute(action_record)
                except ReplayError as error:
                    return _failed(replayed, action_line, action_record, str(error))
                except Exception as error:  # a backend crash or an argument the API rejects
                    what = f"the call raised {type(error).__name__}: {error}"
                    return _failed(replayed, action_line, action_record, what)
                if not self.produced:
                    what = "executing this record produced no record to compare"
                    return _failed(replayed, action_line, action_record, what)
                continue
            model = self.produced.popleft()
            mismatch = self.match(record, model)
            if mismatch is not None:
                return _failed(
                    replayed, line, record, mismatch.what, mismatch.found, mismatch.expected
                )
            replayed += 1
            index += 1
        if self.produced:
            extra = self.produced[0]
            last = trace.lines[-1] + 1 if trace.lines else 1
            what = f"the trace ends, but the {self.against} records more"
            return Verdict(
                False, replayed, last, None, what, self.describe(extra), "the end of the trace"
            )
        return Verdict(True, replayed)


def _failed(
    replayed: int,
    line: int,
    record: Record,
    what: str,
    found: str = "",
    expected: str = "",
) -> Verdict:
    return Verdict(
        False, replayed, line, record.get("seq"), f"{label(record)}: {what}", expected, found
    )


def label(record: Mapping[str, Any]) -> str:
    """Who did what, in a few words: "server AcceptSecurityContext", "server callback"."""
    kind = record_kind(record)
    process = record.get("process", "?")
    if kind == "call":
        return f"{process} {record.get('call')}"
    if kind == "complete":
        return f"{process} completion of {record.get('pending')}"
    return f"{process} {kind}"


def _status_text(name: Any) -> str:
    if not isinstance(name, str):
        return "no status"
    value = status_value(name)
    return f"{status_name(value)} (0x{value:08X})"


def describe(record: Mapping[str, Any]) -> str:
    """One line saying what a record says."""
    kind = record_kind(record)
    process = record.get("process", "?")
    if kind == "header":
        return "the header"
    if kind == "complete":
        return f"{process}: {record.get('pending')} completes with {_status_text(record.get('status'))}"  # noqa: E501
    if kind == "callback":
        return f"{process}: callback on {record.get('async_context')} for {record.get('pending')}"
    if kind == "misuse":
        return f"{process}: misuse {record.get('rule')} in {record.get('call', 'a call')}"
    outcome = _status_text(record["status"]) if "status" in record else ""
    if "result" in record:
        outcome = f"returns {_show(record['result'])}"
    return f"{process}: {record.get('call')} -> {outcome or 'void'}".rstrip()


def _packages(names: Any) -> tuple[Package, ...] | None:
    if names is None:
        return None
    available = {package.info.name: package for package in default_packages()}
    unknown = [name for name in names if name not in available]
    if unknown:
        raise ReplayError(
            f"the header names packages the model does not have: {', '.join(unknown)}"
        )
    return tuple(available[name] for name in names)


def validate(
    records: Trace | Iterable[Record],
    *,
    profile: str | Profile | None = None,
    backend: Callable[..., Any] | None = None,
    async_adapter: Callable[[Any], Any] | None = None,
) -> Verdict:
    """Replay a trace on fresh instances, one per process, and judge it.

    `profile` overrides the header's. `backend` is a factory of Backend objects (called with
    the header's settings it accepts); sync calls go through it, async calls through
    `async_adapter(backend)` or, by default, the Sspi of a backend declaring async support.
    Malformed lines (a Trace's problems) fail the verdict but the rest is still replayed.
    """
    trace = as_trace(records)
    if backend is not None:
        verdict = _async_support(trace, backend, async_adapter)
        if verdict is not None:
            return attrs.evolve(verdict, problems=trace.problems)
    replay = _Replay(trace.header, profile, backend, async_adapter)
    try:
        verdict = replay.run(trace)
    except ReplayError as error:
        verdict = Verdict(False, 0, 1, None, str(error))
    finally:
        replay.close()
    ok = verdict.ok and not trace.problems
    return attrs.evolve(verdict, ok=ok, problems=trace.problems, against=replay.against)


def _async_support(
    trace: Trace, backend: Callable[..., Any], adapter: Callable[[Any], Any] | None
) -> Verdict | None:
    """An unsupported verdict when the trace has async records the backend cannot run."""
    first = next((i for i, record in enumerate(trace.records) if _is_async(record)), None)
    if first is None or adapter is not None:
        return None
    probe = _construct(backend, {})
    try:
        if _default_async(probe) is not None:
            return None
        name = getattr(getattr(probe, "capabilities", None), "name", repr(probe))
    finally:
        closer = getattr(probe, "close", None)
        if closer is not None:
            closer()
    what = (
        f"backend {name} has no async support, and the trace has async records "
        f"(the first at line {trace.lines[first]}); replay it on the model instead"
    )
    return Verdict(
        False, 0, trace.lines[first], trace.records[first]["seq"], what, unsupported=True
    )


__all__ = [
    "FORMAT",
    "VERSION",
    "Problem",
    "Recorder",
    "ReplayError",
    "Symbol",
    "Trace",
    "Verdict",
    "as_trace",
    "check_record",
    "decode_auth",
    "describe",
    "parse_lines",
    "read_trace",
    "record_kind",
    "status_name",
    "status_value",
    "validate",
    "write_trace",
]
