"""A streaming trace validator for the common records, with the verdicts of trace.validate.

`sspi_model.trace.validate` replays a whole parsed trace through a second Recorder and compares
the two record streams; its cost is dominated by re-encoding every replayed call as a record
and by the structural check of every line. This module validates JSON Lines as they stream in:

* a structural fast path accepts the shapes the Recorder writes (and asks the reference
  `check_record` about anything else);
* the replay runs the same instances, `_Replay`'s own argument decoding, symbol binding and
  record comparison, but builds the replay's records straight from the calls' return values
  (the instances have no observer, so their fast paths apply) instead of through a Recorder.

It handles the records of handshakes and deletes: AcquireCredentialsHandleW,
FreeCredentialsHandle, InitializeSecurityContextW, AcceptSecurityContext, DeleteSecurityContext,
SspiCreateAsyncContext, SspiSetAsyncNotifyCallback, SspiDeleteSecurityContextAsync,
SspiGetAsyncCallStatus, SspiFreeAsyncContext, completion steps without out-parameters and
callback events. On anything else (another call, a misuse, a malformed line, any mismatch) it
gives up and returns what `trace.validate` says about the whole trace, so every verdict is
`trace.validate`'s: the fast path only ever answers OK, and only when the replay agrees with
every record.
"""

from __future__ import annotations

import base64
import binascii
import collections
import json
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

from sspi_model.async_api import AsyncContext, SspiMisuse
from sspi_model.buffers import SecBufferType
from sspi_model.events import CompletionEvent, NotifyEvent
from sspi_model.handles import SecHandle
from sspi_model.lifecycle import Call
from sspi_model.profiles import Profile
from sspi_model.results import AcquireCredentialsResult, SecurityContextResult
from sspi_model.scheduling import ManualScheduler
from sspi_model.sspi import Sspi
from sspi_model.trace.check import _OUT_KEYS, check_record
from sspi_model.trace.files import Trace, as_trace, parse_lines, read_trace
from sspi_model.trace.format import (
    _CALLS,
    SYMBOL,
    Record,
    ReplayError,
    _buffer_type,
    _json_value,
    status_name,
    status_value,
)
from sspi_model.trace.replay import _packages, _Process, _Replay, replay_trace
from sspi_model.trace.verdict import Verdict

__all__ = ["TraceValidator", "validate", "validate_file", "validate_lines", "validate_records"]


class _GiveUp(Exception):
    """The fast path cannot vouch for this trace: trace.validate decides."""


# -- structure: True only where check_record would find nothing ------------------------------

_SYMBOL_MATCH = SYMBOL.match
_BUFFER_NAMES = SecBufferType.__members__
_BUFFER_KEYS = frozenset({"type", "data", "size", "allocation"})
_CALL_KEYS = frozenset({"seq", "process", "call", "args"})
_CALL_OPTIONAL = frozenset({"status", "result", "out", "pending"})
_CALL_ALL = _CALL_KEYS | _CALL_OPTIONAL
_COMPLETE_ALL = frozenset({"seq", "step", "pending", "process", "call", "status", "out"})
_CALLBACK_ALL = frozenset({"seq", "event", "async_context", "process", "pending", "data"})
_TOKEN_KEYS = ("input", "token", "output")
_VALID_STATUS: dict[str, int] = {}  # status text -> status_value(text), for valid texts
_known_symbols: set[str] = set()


def _int(value: Any) -> bool:
    return value.__class__ is int  # JSON ints are exact ints; a bool is not one


def _symbol(value: Any) -> bool:
    if value.__class__ is not str:
        return False
    if value in _known_symbols:
        return True
    if _SYMBOL_MATCH(value) is None:
        return False
    if len(_known_symbols) > 50_000:
        _known_symbols.clear()
    _known_symbols.add(value)
    return True


def _status(value: Any) -> int | None:
    """status_value(value) for a valid status text, else None."""
    if value.__class__ is not str:
        return None
    found = _VALID_STATUS.get(value)
    if found is None:
        try:
            found = status_value(value)
        except ValueError:
            return None
        _VALID_STATUS[value] = found
    return found


def _data(value: Any) -> bool:
    if value.__class__ is str:
        try:
            base64.b64decode(value, validate=True)
        except binascii.Error:
            return False
        return True
    return value.__class__ is dict and len(value) == 1 and _int(value.get("from"))


def _buffers(value: Any, shorthand: bool) -> bool:
    if value is None:
        return True
    if value.__class__ is not list:
        return shorthand and _data(value)
    for item in value:
        if item.__class__ is not dict or "type" not in item or not item.keys() <= _BUFFER_KEYS:
            return False
        kind = item["type"]
        if not (_int(kind) or (kind.__class__ is str and kind in _BUFFER_NAMES)):
            return False
        if "data" in item and not _data(item["data"]):
            return False
        if "size" in item and not _int(item["size"]):
            return False
        if "allocation" in item and not (item["allocation"] is None or _symbol(item["allocation"])):
            return False
    return True


def _args(args: Any) -> bool:
    if args.__class__ is not dict:
        return False
    for key, value in args.items():
        if key == "credential" or key == "context" or key == "async_context":
            if value is not None and not _symbol(value):
                return False  # a literal {"lower", "upper"} handle: the reference decides
        elif key in _TOKEN_KEYS:
            if not _buffers(value, True):
                return False
        elif key == "out" and value not in (None, True):
            return False
    return True


def _out(out: Any) -> bool:
    if out.__class__ is not dict or not out.keys() <= _OUT_KEYS:
        return False
    for key in ("credential", "context", "allocation"):
        if key in out and out[key] is not None and not _symbol(out[key]):
            return False
    for key in ("output", "input_after"):
        if key in out and not _buffers(out[key], False):
            return False
    if "context_attr" in out and not _int(out["context_attr"]):
        return False
    expiry = out.get("expiry")
    return expiry is None or _int(expiry)


def _well_formed(value: Any) -> bool:
    """True only if check_record(value) is [] for a record that is not a header."""
    if value.__class__ is not dict or "trace" in value:
        return False
    keys = value.keys()
    if "step" in value:
        if not keys <= _COMPLETE_ALL or value["step"] != "complete":
            return False
        if not ("seq" in value and "pending" in value):
            return False
    elif "event" in value:
        if value["event"] != "callback" or not keys <= _CALLBACK_ALL:
            return False
        if not ("seq" in value and _symbol(value.get("async_context"))):
            return False
    else:
        if not (keys <= _CALL_ALL and keys >= _CALL_KEYS) or not _args(value["args"]):
            return False
    seq = value["seq"]
    if not (_int(seq) and seq >= 1):
        return False
    if "process" in value:
        process = value["process"]
        if process.__class__ is not str or not process:
            return False
    if "call" in value and (value["call"].__class__ is not str or value["call"] not in _CALLS):
        return False
    if "status" in value and _status(value["status"]) is None:
        return False
    if "out" in value and not _out(value["out"]):
        return False
    return "pending" not in value or _symbol(value["pending"])


# -- the replay ------------------------------------------------------------------------------

_SYNC = {
    Call.ACQUIRE_CREDENTIALS_HANDLE,
    Call.FREE_CREDENTIALS_HANDLE,
    Call.INITIALIZE_SECURITY_CONTEXT,
    Call.ACCEPT_SECURITY_CONTEXT,
    Call.DELETE_SECURITY_CONTEXT,
}
_ASYNC = {
    Call.CREATE_ASYNC_CONTEXT,
    Call.SET_ASYNC_NOTIFY_CALLBACK,
    Call.DELETE_SECURITY_CONTEXT_ASYNC,
    Call.GET_ASYNC_CALL_STATUS,
    Call.FREE_ASYNC_CONTEXT,
}
# C name -> (Call, method name, is it a sync call); keyed by string (hashing a Call member
# runs Python code).
_SUPPORTED = {call.value: (call, call.name.lower(), call in _SYNC) for call in (*_SYNC, *_ASYNC)}
_CREATE = Call.CREATE_ASYNC_CONTEXT
_FREE_ASYNC = Call.FREE_ASYNC_CONTEXT
_TOKEN = int(SecBufferType.SECBUFFER_TOKEN)
_JSON_SCALARS = (str, int, float, bool, type(None))


def _plain(value: Any) -> Any:
    """_json_value(value): a JSON scalar is itself (json.dumps accepts every one)."""
    return value if value.__class__ in _JSON_SCALARS else _json_value(value)


_BUFFER_TYPES: dict[int, str | int] = {}  # buffer type -> _buffer_type(type)
# The argument names _Replay._arg decodes (it passes every other value, and None, unchanged).
_DECODED = frozenset(
    {
        "credential",
        "context",
        "async_context",
        "input",
        "token",
        "output",
        "auth_data",
        "callback",
        "out",
        "buffer",
    }
)


class _FastReplay(_Replay):
    """_Replay's argument decoding, symbols and comparison over observer-less instances.

    Replay-side symbols are the keys the Recorder would mint them for (kind, scope, value), so
    binding trace symbols to them is the Recorder's binding. Records that _Replay would get from
    its Recorder are built here from the return values, with the fields `match` compares.
    """

    def __init__(self, header: Record | None, profile: str | Profile | None) -> None:
        super().__init__(header, profile, None, None)
        self.expected: collections.deque[Record] = collections.deque()
        self.tokens: dict[int, bytes] = {}  # replay seq -> its output token (legs only)
        self.handles: dict[tuple[str, str, int, int], SecHandle] = {}  # key -> first object
        self.async_objects: dict[int, AsyncContext] = {}
        self.model_seq = 0
        self.status_values: dict[Any, int] = {}
        for name in self.header.get("processes") or {}:
            if isinstance(name, str):
                self.process(name)  # _Replay.run starts these first, whatever the records say

    # -- processes: no observer, so the instances run as they do for any caller ------------

    def _start(self, name: str, settings: Record) -> _Process:
        settings["packages"] = _packages(settings["packages"])
        settings["scheduler"] = ManualScheduler()
        sspi = Sspi(**settings)
        return _Process(name, sspi, sspi, synthesize=False)

    # -- symbols: (kind, scope, value) keys instead of a second Recorder's names -----------

    def _object(self, symbol: str) -> Any:
        key: Any = self.t2m.get(symbol)  # a (kind, scope, value) key: see the class docstring
        if key is None:
            raise ReplayError(f"{symbol} is used before any record bound it")
        kind = key[0]
        if kind == "async":
            return self.async_objects[key[2]]
        if kind == "context" or kind == "credential":
            return self.handles[key]  # the object the key was first seen with (Symbol.value)
        return key[2]  # the pending call's id or the allocation's address

    def _data(self, value: Any) -> bytes:
        if isinstance(value, dict):
            source = value["from"]
            replayed = self.seq_map.get(source)
            token = None if replayed is None else self.tokens.get(replayed)
            if token is None:
                raise ReplayError(f"the input refers to seq {source}, which has no output token")
            return token
        return base64.b64decode(value)

    def _name(self, symbol: Any) -> str:
        return repr(symbol)  # only mismatch messages use it, and a mismatch gives up

    # -- records as the Recorder writes them (the fields match() reads) --------------------

    def _status_value(self, value: Any) -> int:
        """status_value(status_name(value)): what match() compares a replayed status by (the
        produced records carry this number where a Recorder writes the name)."""
        key = (value.__class__, value)
        number = self.status_values.get(key)
        if number is None:
            number = self.status_values[key] = status_value(status_name(value))
        return number

    def _buffers_out(self, process: str, buffers: Sequence[Any]) -> list[Record]:
        items: list[Record] = []
        for buffer in buffers:
            # The Recorder writes base64 here; match() only asks whether there is data.
            kind = buffer.buffer_type
            name = _BUFFER_TYPES.get(kind)
            if name is None:
                name = _BUFFER_TYPES[kind] = _buffer_type(kind)
            item: Record = {"type": name, "data": buffer.data}
            if buffer.size is not None:
                item["size"] = buffer.size
            if buffer.allocation is not None:
                item["allocation"] = ("buffer", process, buffer.allocation)
            items.append(item)
        return items

    def _leg_out(self, seq: int, process: str, result: SecurityContextResult) -> Record:
        handle = result.new_context
        out: Record = {
            "context": None if handle is None else self._handle_key("context", process, handle),
            "output": self._buffers_out(process, result.output),
            "context_attr": result.context_attr,
            "expiry": result.expiry,
        }
        if result.input_after is not None:
            out["input_after"] = self._buffers_out(process, result.input_after)
        token = b""
        for buffer in result.output:
            if buffer.base_type == _TOKEN:
                token = buffer.data
                break
        self.tokens[seq] = token
        return out

    def _handle_key(self, kind: str, process: str, handle: SecHandle) -> tuple[str, str, int, int]:
        """The Recorder's key for a returned handle, (kind, process, handle), with the handle as
        its two ints (hashing a SecHandle runs attrs' Python-level __hash__)."""
        key = (kind, process, handle.lower, handle.upper)
        if key not in self.handles:
            self.handles[key] = handle
        return key

    def _produce(self, record: Record) -> None:
        self.expected.append(record)

    def execute(self, record: Record) -> None:
        if "step" in record:
            self._complete(record["pending"])
            return
        supported = _SUPPORTED.get(record["call"])
        if supported is None:
            raise _GiveUp(record["call"])
        call, method, sync = supported
        name = record["process"]
        process = self.processes.get(name)
        sspi = (process if process is not None else self.process(name)).sync
        args = record["args"]
        kwargs: dict[str, Any] | None = None
        if len(args) == 1:  # as _arg() decodes them, for the one-argument calls
            key, value = next(iter(args.items()))
            if key == "context" or key == "credential":
                kwargs = {key: None if value is None else self._handle(value)}
            elif key == "async_context":
                kwargs = {key: None if value is None else self._object(value)}
        if kwargs is None:
            arg = self._arg
            # _arg(key, value) for every argument: None stays None, other keys pass unchanged
            kwargs = {
                key: value if value is None or key not in _DECODED else arg(key, value)
                for key, value in args.items()
            }
        if sync:
            result = getattr(sspi, method)(**kwargs)
        else:
            misuses = len(sspi.misuse_events)
            pending_calls = sspi._async.pending_calls
            queued = len(pending_calls)
            try:
                result = getattr(sspi, method)(**kwargs)
            except SspiMisuse:
                raise _GiveUp("misuse") from None
            if len(sspi.misuse_events) != misuses:
                raise _GiveUp("misuse")
        self.model_seq += 1
        seq = self.model_seq
        produced: Record = {"seq": seq, "process": name, "call": record["call"]}
        if call is _CREATE:
            if result is not None:
                self.async_objects[id(result)] = result
                produced["result"] = ("async", "", id(result))
            else:
                produced["result"] = None
        elif call is _FREE_ASYNC:
            pass  # void
        elif isinstance(result, int):
            produced["status"] = self._status_value(result)
        elif isinstance(result, SecurityContextResult):
            produced["status"] = self._status_value(result.status)
            produced["out"] = self._leg_out(seq, name, result)
        elif isinstance(result, AcquireCredentialsResult):
            handle = result.credential
            produced["status"] = self._status_value(result.status)
            produced["out"] = {
                "credential": (
                    None if handle is None else self._handle_key("credential", name, handle)
                ),
                "expiry": result.expiry,
            }
        else:
            raise _GiveUp(record["call"])
        if not sync and len(pending_calls) != queued:
            # The call was queued: the CallEvent's pending id is the newest pending call's.
            produced["pending"] = ("pending", "", next(reversed(pending_calls)))
        self.expected.append(produced)

    def _complete(self, symbol: str) -> None:
        wanted = self._object(symbol)
        for process in self.processes.values():
            sspi = process.sync
            scheduler = sspi.scheduler
            for index, call in enumerate(scheduler.pending):
                if call.id == wanted:
                    self._run(process.name, sspi, scheduler, index)
                    return
        raise ReplayError(f"the model has no pending call {symbol} to complete")

    def _run(self, name: str, sspi: Sspi, scheduler: Any, index: int) -> None:
        events: list[Any] = []
        misuses = len(sspi.misuse_events)
        sspi.observer = events.append  # a completion's status and callback are only published
        try:
            scheduler.run_one(index)
        except SspiMisuse:
            raise _GiveUp("misuse") from None
        finally:
            sspi.observer = None
        if len(sspi.misuse_events) != misuses:
            raise _GiveUp("misuse")
        for event in events:
            self.model_seq += 1
            if event.__class__ is CompletionEvent:
                out = event.out
                if out is not None and getattr(out, "written", False):
                    raise _GiveUp("a completion with out-parameters")
                self._produce(
                    {
                        "seq": self.model_seq,
                        "process": name,
                        "step": "complete",
                        "pending": ("pending", "", event.pending),
                        "call": event.call.value,
                        "status": self._status_value(event.status),
                    }
                )
            elif event.__class__ is NotifyEvent:
                context = event.async_context
                self.async_objects[id(context)] = context
                self._produce(
                    {
                        "seq": self.model_seq,
                        "process": name,
                        "event": "callback",
                        "async_context": ("async", "", id(context)),
                        "pending": ("pending", "", event.pending),
                        "data": _plain(event.callback_data),
                    }
                )
            else:
                raise _GiveUp(type(event).__name__)

    # -- comparison: match(), with the checks that can fail giving up at once -------------

    def fast_match(self, trace: Record, model: Record) -> None:
        """What match() decides, for the records this module produces; gives up on any
        difference (the verdict then comes from trace.validate)."""
        if ("step" in trace) != ("step" in model) or trace.get("event") != model.get("event"):
            raise _GiveUp("another kind of record")
        if "process" in trace and trace["process"] != model["process"]:
            raise _GiveUp("process")
        if "call" in trace and trace["call"] != model.get("call"):
            raise _GiveUp("call")
        if "status" in trace:
            text = trace["status"]
            found = _VALID_STATUS.get(text)
            if found is None:
                found = _status(text)
            if found is None or found != model.get("status"):  # a number: see _status_value
                raise _GiveUp("status")
        bind = self._bind
        if "result" in trace:
            if trace.get("call") == _CREATE.value:
                if bind("result", trace["result"], model.get("result")) is not None:
                    raise _GiveUp("result")
            elif trace["result"] != model.get("result"):
                raise _GiveUp("result")
        for key in ("pending", "async_context"):
            if key in trace and bind(key, trace[key], model.get(key)) is not None:
                raise _GiveUp(key)
        if "out" in trace and not self._same_out(trace["out"], model.get("out") or {}):
            raise _GiveUp("out")
        if "event" in trace and "data" in trace and trace["data"] != model.get("data"):
            raise _GiveUp("data")
        self.seq_map[trace["seq"]] = model["seq"]

    def _same_out(self, trace: Record, model: Record) -> bool:
        """_out_match(trace, model) is None, with the same bindings made."""
        bind = self._bind
        for key, value in trace.items():
            if key not in model:
                return False
            other = model[key]
            if key == "credential" or key == "context" or key == "allocation":
                if bind(key, value, other) is not None:
                    return False
            elif key == "output" or key == "input_after":
                if not self._same_buffers(value, other):
                    return False
            elif key == "expiry":
                if (value is None) != (other is None):
                    return False
            elif key == "attribute" and isinstance(value, dict) and isinstance(other, dict):
                if not self._same_out(value, other):
                    return False
            elif value != other:
                return False
        return True

    def _same_buffers(self, trace: Any, model: Any) -> bool:
        """_buffers_match(trace, model) is None, with the same bindings made."""
        if not isinstance(trace, list) or not isinstance(model, list):
            return trace is None and model is None
        if len(trace) != len(model):
            return False
        for left, right in zip(trace, model, strict=True):
            if left.get("type") != right.get("type"):
                return False
        for left, right in zip(trace, model, strict=True):
            if "data" in left and bool(left["data"]) != bool(right.get("data")):
                return False
            if "size" in left and left["size"] != right.get("size"):
                return False
            if "allocation" in left and (
                self._bind("allocation", left["allocation"], right.get("allocation")) is not None
            ):
                return False
        return True

    def step(self, record: Record) -> None:
        """One well-formed record (not the header), in trace order."""
        if not self.expected:
            if "event" in record:
                raise _GiveUp("an observed record with nothing produced")
            self.execute(record)
            if not self.expected:
                raise _GiveUp("nothing produced")
        self.fast_match(record, self.expected.popleft())


class TraceValidator:
    """Feed it a trace's lines, in order and in as many pieces as you like; then `verdict()`.

    With `keep_lines` (the default) the pieces fed are kept (references only) so that, if the
    fast path gives up, `verdict()` can ask trace.validate about the same lines.
    """

    def __init__(self, *, profile: str | Profile | None = None, keep_lines: bool = True) -> None:
        self.profile = profile
        self._keep = keep_lines
        self._pieces: list[Sequence[str]] = []
        self._replay: _FastReplay | None = None
        self._started = False  # a first (non-blank) line was seen
        self._last_seq = 0
        self._replayed = 0
        self._gave_up: str | None = None

    @property
    def gave_up(self) -> str | None:
        """Why the fast path handed the trace to trace.validate, or None."""
        return self._gave_up

    def feed(self, lines: Sequence[str]) -> None:
        if self._keep:
            self._pieces.append(lines)
        if self._gave_up is not None:
            return
        try:
            self._feed(lines)
        except _GiveUp as error:
            self._gave_up = str(error) or "unsupported"
        except Exception as error:  # anything odd: the reference path reports it
            self._gave_up = f"{type(error).__name__}: {error}"

    def _feed(self, lines: Iterable[str]) -> None:
        loads = json.loads
        last_seq = self._last_seq
        replayed = self._replayed
        replay = self._replay
        try:
            for text in lines:
                if not text or text.isspace():
                    continue  # parse_lines skips blank lines
                value = loads(text)
                if not self._started:
                    self._started = True
                    if value.__class__ is dict and "trace" in value:
                        if check_record(value, first=True):
                            raise _GiveUp("header")
                        replay = self._replay = _FastReplay(value, self.profile)
                        continue
                    replay = self._replay = _FastReplay(None, self.profile)
                if not _well_formed(value) and check_record(value):
                    raise _GiveUp("malformed")
                if "event" in value and value["event"] != "callback":
                    raise _GiveUp(f"a {value['event']} record")
                seq = value["seq"]
                if seq <= last_seq:
                    raise _GiveUp("seq out of order")
                last_seq = seq
                assert replay is not None
                replay.step(value)
                replayed += 1
        finally:
            self._last_seq = last_seq
            self._replayed = replayed

    def fast_verdict(self) -> Verdict | None:
        """The OK verdict, if the fast path vouches for every line fed; else None."""
        if self._gave_up is None and self._replay is not None and self._replay.expected:
            self._gave_up = "the trace ends, but the model records more"
        if self._gave_up is not None:
            return None
        return Verdict(True, self._replayed, against="model")

    def verdict(self) -> Verdict:
        """The verdict trace.validate gives for all the lines fed (which it computes itself
        when the fast path gave up)."""
        verdict = self.fast_verdict()
        if verdict is not None:
            return verdict
        if not self._keep:
            raise ValueError("the fast path gave up and the lines were not kept")
        lines = [line for piece in self._pieces for line in piece]
        return replay_trace(parse_lines(lines), profile=self.profile)


def validate_lines(lines: Iterable[str], *, profile: str | Profile | None = None) -> Verdict:
    """trace.validate(parse_lines(lines)), streaming when the records allow it."""
    validator = TraceValidator(profile=profile)
    validator.feed(lines if isinstance(lines, Sequence) else list(lines))
    return validator.verdict()


def validate_file(path: str | Path, *, profile: str | Profile | None = None) -> Verdict:
    """trace.validate(read_trace(path)), streaming the file a piece at a time; a trace the fast
    path cannot vouch for is read again, whole, and replayed by trace.validate."""
    validator = TraceValidator(profile=profile, keep_lines=False)
    with Path(path).open(encoding="utf-8") as handle:
        while validator.gave_up is None:
            piece = handle.readlines(1 << 20)
            if not piece:
                break
            validator.feed(piece)
    verdict = validator.fast_verdict()
    return (
        verdict if verdict is not None else replay_trace(read_trace(path), profile=profile)
    )


def validate_records(trace: Trace, *, profile: str | Profile | None = None) -> Verdict | None:
    """The verdict for a parsed trace if the fast path can vouch for it, else None."""
    if trace.problems:
        return None
    replayed = 0
    try:
        replay = _FastReplay(trace.header, profile)
        for record in trace.records:
            if "event" in record and record["event"] != "callback":
                return None
            replay.step(record)
            replayed += 1
    except Exception:  # _GiveUp, or anything the reference path should report itself
        return None
    if replay.expected:
        return None
    return Verdict(True, replayed, against="model")


def validate(
    records: Trace | Iterable[Record],
    *,
    profile: str | Profile | None = None,
    backend: Callable[..., Any] | None = None,
    async_adapter: Callable[[Any], Any] | None = None,
    fast: bool = True,
) -> Verdict:
    """Replay a trace on fresh instances, one per process, and judge it.

    `fast=False` skips the streaming fast path: the reference replay (trace/replay.py) alone.
    The fast path answers only OK, and only when its replay agreed with every record; anything
    else is judged by the reference replay (tests/test_trace_fast.py holds them equal).
    """
    trace = as_trace(records)
    if fast and backend is None and async_adapter is None:
        vouched = validate_records(trace, profile=profile)
        if vouched is not None:
            return vouched
    return replay_trace(trace, profile=profile, backend=backend, async_adapter=async_adapter)
