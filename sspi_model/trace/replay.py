"""Replay: execute a trace's actions on fresh instances and compare what they record.

This is TLA+-style trace validation: a second Recorder watches the replaying instances, and
the two record streams are compared line by line; the Verdict names the first line the model
(or a backend) does not allow.
"""

from __future__ import annotations

import base64
import collections
import contextlib
import inspect
import json
from collections.abc import Callable, Iterable
from typing import Any

import attrs

from sspi_model.async_api import Out, SspiMisuse
from sspi_model.buffers import SecBuffer, SecBufferType
from sspi_model.events import CallEvent
from sspi_model.handles import SecHandle
from sspi_model.lifecycle import Call
from sspi_model.packages import default_packages
from sspi_model.packages.base import Package
from sspi_model.profiles import Profile, resolve_profile
from sspi_model.scheduling import ManualScheduler
from sspi_model.sspi import Sspi
from sspi_model.trace.files import Trace, as_trace
from sspi_model.trace.format import (
    _CALLS,
    _TOKEN_KEYS,
    SYNC_CALLS,
    Record,
    ReplayError,
    _show,
    decode_auth,
    record_kind,
    status_value,
)
from sspi_model.trace.record import Recorder
from sspi_model.trace.verdict import Verdict, _failed, _status_text, describe


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
            try:
                sspi = Sspi(**settings)
            except (TypeError, ValueError) as error:  # ROB-008: a header the model refuses
                raise ReplayError(f"process {name}: the header's settings: {error}") from None
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


def replay_trace(
    records: Trace | Iterable[Record],
    *,
    profile: str | Profile | None = None,
    backend: Callable[..., Any] | None = None,
    async_adapter: Callable[[Any], Any] | None = None,
) -> Verdict:
    """The reference replay: fresh instances, one per process, every record judged.

    `profile` overrides the header's. `backend` is a factory of Backend objects (called with
    the header's settings it accepts); sync calls go through it, async calls through
    `async_adapter(backend)` or, by default, the Sspi of a backend declaring async support.
    Malformed lines (a Trace's problems) fail the verdict but the rest is still replayed.
    `sspi_model.trace.validate` tries the streaming fast path first and falls back here.
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
