"""Recorder: an observer turning the events of Sspi instances into trace records."""

from __future__ import annotations

import sys
import threading
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from types import FrameType
from typing import Any

import attrs

from sspi_model.async_api import AsyncContext, Out
from sspi_model.buffers import SECBUFFER_ATTRMASK, SecBuffer, SecBufferType, as_buffers
from sspi_model.events import CallEvent, CompletionEvent, MisuseReport, NotifyEvent
from sspi_model.handles import SecHandle
from sspi_model.lifecycle import Call
from sspi_model.results import (
    AcquireCredentialsResult,
    EnumerateSecurityPackagesResult,
    MessageResult,
    QueryContextAttributesResult,
    QueryCredentialsAttributesResult,
    QuerySecurityPackageInfoResult,
    SecurityContextResult,
)
from sspi_model.sspi import Sspi
from sspi_model.trace.buffers import Pieces, encode_descriptor
from sspi_model.trace.format import (
    _LEGS,
    _TOKEN_KEYS,
    FORMAT,
    SYNC_CALLS,
    VERSION,
    Record,
    _buffer_type,
    _encode_auth,
    _json_value,
    _plain_token,
    encode_data,
    status_name,
)


@attrs.frozen
class Symbol:
    """One symbolic name in a trace and what it stands for."""

    name: str
    kind: str  # "credential", "context", "async", "pending" or "buffer"
    process: str
    value: Any  # SecHandle, AsyncContext, pending id or allocation address


_TOKEN = int(SecBufferType.SECBUFFER_TOKEN)  # a plain int: comparing enum members runs Python
_NOT_ATTRIBUTES = ~SECBUFFER_ATTRMASK
_CREATE = Call.CREATE_ASYNC_CONTEXT
_REQUIRES_NOTIFY = Call.ASYNC_CONTEXT_REQUIRES_NOTIFY
_FREE_ASYNC = Call.FREE_ASYNC_CONTEXT
TOKEN_WINDOW = 4096  # output tokens a streaming recorder keeps (TRC-002)
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

    `Recorder(stream=True)` is the replay's recorder: records go to listeners only and are not
    kept, calls carry no args (a replay compares none), output buffers keep their data as bytes
    (TRC-008: a replay reads only whether there is some), only the last TOKEN_WINDOW output tokens
    are kept, and `forget(name)` drops a symbol, so its memory is that of the live objects.
    """

    def __init__(self, *, stream: bool = False) -> None:
        self._lock = threading.RLock()
        self._stream = stream
        self._count = 0  # records made
        self._records: list[Record] = []
        self._names: dict[int, str] = {}  # id(instance) -> process name
        self._targets: dict[str, Any] = {}  # process name -> the first instance registered
        self._async_only: set[int] = set()
        self._keys: dict[tuple[str, str, Any], Symbol] = {}
        self._symbols: dict[str, Symbol] = {}
        self._counts: dict[str, int] = {}
        self._tokens: OrderedDict[int, bytes] = OrderedDict()  # seq -> its output token
        self._token_seq: dict[bytes, int] = {}  # token -> latest seq that output it
        self._pieces = Pieces(search=not stream)  # message outputs, as references (BUF-007)
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

    def symbol_lookup(self) -> Callable[[str], Symbol | None]:
        """What `symbol` is, as the bound lookup of the symbol table (for a caller that asks
        once per argument: no Python frame per call). The table is never replaced."""
        return self._symbols.get

    def forget(self, name: str) -> None:
        """Drop a symbol: a later sight of its object mints a new one (TRC-001)."""
        with self._lock:
            symbol = self._symbols.pop(name, None)
            if symbol is None:
                return
            key = id(symbol.value) if symbol.kind == "async" else symbol.value
            scope = "" if symbol.kind in ("async", "pending") else symbol.process
            self._keys.pop((symbol.kind, scope, key), None)

    def pending_context(self, pending: int) -> AsyncContext | None:
        """The async context a queued call was made on."""
        return self._pending_context.get(pending)

    def message_output(self, seq: int, index: int) -> bytes | None:
        """The data of buffer `index` of message call `seq`'s output, None if none (BUF-007)."""
        return self._pieces.output(seq, index)

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

    def listener_list(self) -> list[Callable[[Record], None]]:
        """The listeners, as the live list (never replaced): a caller that only asks whether
        anyone but itself listens reads its length, without a frame per question."""
        return self._listeners

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
                    "packages": [package.info.name for package in target.packages],
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
            if self._async_only and self._ignored(event):
                return
            seq = self._count + 1
            if isinstance(event, CallEvent):
                record = self._call_record(
                    seq, event.sspi, event.call, event.args, event.result, event.pending
                )
            elif isinstance(event, CompletionEvent):
                record = self._completion(seq, event)
            elif isinstance(event, NotifyEvent):
                record = self._callback(seq, event)
            elif isinstance(event, MisuseReport):
                record = self._misuse(seq, event)
            else:
                return
            self._count = seq
            if not self._stream:
                self._records.append(record)
            listeners = tuple(self._listeners)
        for listener in listeners:
            listener(record)

    def record_call(self, target: Any, call: Call, args: Mapping[str, Any], result: Any) -> None:
        """What `recorder(CallEvent(target, call, args, result))` does, without the event: a
        replayer reports the calls it made on an instance that has no observer this way."""
        with self._lock:
            seq = self._count + 1
            record = self._call_record(seq, target, call, args, result, None)
            self._count = seq
            if not self._stream:
                self._records.append(record)
            listeners = tuple(self._listeners)
        for listener in listeners:
            listener(record)

    def counted_call(self, target: Any, result: Any, symbol: str | None) -> tuple[int, str | None]:
        """What record_call(target, call, args, result) does but write the record, for a
        replayer that compared `result` with the trace itself (trace/direct.py): the seq is
        taken, the result's handle bound (unless its `symbol`, from bound_symbol, is given) and
        its output token kept. Only for results of the kinds direct.py compares (a status,
        credentials, a leg without allocations). Returns the seq and the handle's symbol."""
        with self._lock:
            seq = self._count = self._count + 1
            cls = result.__class__
            if cls is SecurityContextResult:
                self._remember(seq, result.output)
                if symbol is None:
                    process = self._names.get(id(target)) or self._process(target)
                    symbol = self._handle_out("context", process, result.new_context)
            elif cls is AcquireCredentialsResult and symbol is None:
                process = self._names.get(id(target)) or self._process(target)
                symbol = self._handle_out("credential", process, result.credential)
            return seq, symbol

    def bound_symbol(self, kind: str, process: str, key: Any) -> str | None:
        """The symbol `key` has, None if recording it would mint one (nothing is minted)."""
        scope = "" if kind in ("async", "pending") else process
        found = self._keys.get((kind, scope, key))
        return None if found is None else found.name

    def process_name(self, target: Any) -> str | None:
        return self._names.get(id(target))

    def _ignored(self, event: Any) -> bool:
        return (
            bool(self._async_only)
            and isinstance(event, CallEvent)
            and id(event.sspi) in self._async_only
            and event.call in SYNC_CALLS
        )

    def _call_record(
        self,
        seq: int,
        target: Any,
        call: Call,
        args: Mapping[str, Any],
        result: Any,
        pending: int | None,
    ) -> Record:
        process = self._names.get(id(target)) or self._process(target)
        record: Record = {
            "seq": seq,
            "process": process,
            "call": call._value_,  # the raw value: Enum.value is a Python-level property
            "args": {} if self._stream else self._args(process, args),
        }
        if call is _CREATE:
            record["result"] = (
                None if result is None else self._bind("async", process, id(result), result)
            )
        elif call is _REQUIRES_NOTIFY:
            record["result"] = bool(result)
        elif call is _FREE_ASYNC:
            pass  # void
        elif isinstance(result, int):
            record["status"] = status_name(result)
        else:
            record["status"] = status_name(result.status)
            record["out"] = self._result(seq, process, result)
        if pending is not None:
            record["pending"] = self._bind("pending", process, pending, pending)
            if not self._stream:  # the replay never asks pending_context
                context = args.get("async_context")
                if isinstance(context, AsyncContext):
                    self._pending_context[pending] = context
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
        if raised and not self._stream:
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
            descriptor = encode_descriptor(value)  # NULL_DESCRIPTOR (BUF-005)
            if descriptor is not None:
                return descriptor
            return self._buffers(process, as_buffers(value, key), shorthand=True)
        if isinstance(value, bool) or value is None or isinstance(value, str):
            return value
        if isinstance(value, int):
            return int(value)  # enums become plain numbers
        return {"repr": repr(value)}

    def _data(self, data: bytes, *, reference: bool) -> Any:
        if reference and data:
            if data in self._token_seq:
                return {"from": self._token_seq[data]}
            pieces = self._pieces.encode(data)  # made of earlier outputs (BUF-007)
            if pieces is not None:
                return pieces
        return encode_data(data)

    def _buffers(
        self, process: str, buffers: Sequence[SecBuffer] | None, *, shorthand: bool
    ) -> Any:
        if buffers is None:
            return None
        if shorthand and len(buffers) == 1 and _plain_token(buffers[0]):
            return self._data(buffers[0].data, reference=True)
        # TRC-008: a replay compares only whether an output buffer holds data, so a streaming
        # recorder leaves the bytes unencoded (format.shown_buffers writes them for messages).
        raw = self._stream and not shorthand
        items: list[Record] = []
        for buffer in buffers:
            item: Record = {
                "type": _buffer_type(buffer.buffer_type),
                "data": buffer.data if raw else self._data(buffer.data, reference=shorthand),
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
        token = b""
        for buffer in output:
            if buffer.buffer_type & _NOT_ATTRIBUTES == _TOKEN:  # base_type, without its frame
                token = buffer.data
                break
        self._tokens[seq] = token
        if self._stream:
            if len(self._tokens) > TOKEN_WINDOW:
                self._tokens.popitem(last=False)
        elif token:
            self._token_seq[token] = seq
            self._pieces.token(seq, token)

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
        if isinstance(result, SecurityContextResult):  # the commonest result: tested first
            return self._leg_out(
                seq,
                process,
                result.new_context,
                result.output,
                result.context_attr,
                result.expiry,
                result.input_after,
            )
        if isinstance(result, AcquireCredentialsResult):
            return {
                "credential": self._handle_out("credential", process, result.credential),
                "expiry": result.expiry,
            }
        if isinstance(result, QueryContextAttributesResult):
            return {"attribute": self._attribute(process, result.buffer)}
        if isinstance(result, MessageResult):  # the descriptor as the call left it (BUF-007)
            out = {"output": self._buffers(process, result.buffers, shorthand=False)}
            if result.qop is not None:
                out["qop"] = result.qop
            self._remember(seq, result.buffers)
            self._pieces.outputs(seq, result.buffers)
            return out
        if isinstance(result, QueryCredentialsAttributesResult):
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
            if name.endswith("allocation"):  # ContextNativeNames has two (ATT-007)
                fields[name] = self._allocation(process, item)
            elif isinstance(item, bytes):  # session keys, bindings, protocol ids
                fields[name] = self._data(item, reference=False)
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
