"""The replayer: a session that takes a trace one record at a time and judges it.

This is TLA+-style trace validation: fresh instances (one per process) execute the trace's
actions (calls and completion steps), a streaming Recorder watches them, and each trace record
is compared (trace/compare.py) with the record the replay produced; the Verdict names the first
line the model (or a backend) does not allow.

`ReplaySession` streams: it holds the records read but not yet compared (usually one; at most
PENDING_LIMIT, TRC-004), the live symbol bindings (TRC-001), the last output tokens (TRC-002)
and at most PROBLEM_LIMIT problems (TRC-003). Its input can be hostile: every line gets a
verdict (TRC-005), never an exception.
"""

from __future__ import annotations

import base64
import collections
import inspect
import json
from collections.abc import Callable
from typing import Any

from sspi_model.async_api import Out, SspiMisuse
from sspi_model.buffers import SecBuffer
from sspi_model.events import MisuseReport
from sspi_model.handles import SecHandle
from sspi_model.lifecycle import Call
from sspi_model.packages import default_packages
from sspi_model.packages.base import Package
from sspi_model.profiles import Profile, resolve_profile
from sspi_model.scheduling import ManualScheduler
from sspi_model.sspi import Sspi
from sspi_model.trace import buffers as trace_buffers
from sspi_model.trace.check import check_line, check_record
from sspi_model.trace.compare import RETIRED_WINDOW, SEQ_WINDOW, Comparison, same_status
from sspi_model.trace.direct import matched
from sspi_model.trace.files import BLANK, LINE_LIMIT, Problem, decode_line
from sspi_model.trace.format import (
    _CALLS,
    _TOKEN_KEYS,
    BUFFER_TYPE_VALUES,
    SYNC_CALLS,
    Record,
    ReplayError,
    decode_auth,
    record_kind,
)
from sspi_model.trace.record import Recorder
from sspi_model.trace.verdict import Verdict, _failed, describe

PENDING_LIMIT = 4096  # records read ahead while waiting for an action (TRC-004)
PROBLEM_LIMIT = 1000  # malformed lines a verdict lists (TRC-003)
_loads = json.loads
_NO_ARGS: Record = {}  # read only
Factory = Callable[..., Any]
Adapter = Callable[[Any], Any]

# What a matched call record retires (TRC-001): call -> the argument naming the object, for
# calls that end an object's life when they succeed.
_RETIRES = {
    Call.DELETE_SECURITY_CONTEXT.value: "context",
    Call.FREE_CREDENTIALS_HANDLE.value: "credential",
    Call.FREE_CONTEXT_BUFFER.value: "buffer",
}
# C name -> (Call, Sspi method, is it a sync call); keyed by text: hashing a Call runs Python.
_CALL_INFO = {call.value: (call, call.name.lower(), call in SYNC_CALLS) for call in Call}
_FREE_ASYNC = Call.FREE_ASYNC_CONTEXT.value
_DELETE_ASYNC = Call.DELETE_SECURITY_CONTEXT_ASYNC.value
_SETTLING = frozenset({*_RETIRES, _FREE_ASYNC, _DELETE_ASYNC})  # the calls _settle looks at


class _Process:
    """One replaying process: the object taking its sync calls and the one taking async ones."""

    def __init__(
        self,
        sync: Any,
        asynchronous: Any | None,
        *,
        synthesize: bool,
        quiet: bool = False,
        closer: Callable[[], None] | None = None,
    ) -> None:
        self.sync = sync
        self.asynchronous = asynchronous
        self.synthesize = synthesize  # sync calls go to a backend that has no observer
        # A model instance observed only during async actions: its sync calls run as for any
        # caller without an observer, and their events are synthesized (see _execute).
        self.quiet = quiet
        self.observed = False  # a quiet instance's observer is the recorder (see _observe)
        # A quiet instance's misuse log, read around each of its sync calls (one EventLog for
        # the instance's life: cleared in place, never replaced).
        self.misuse_log: Any = sync.misuse_events if quiet else None
        self.closer = closer


def _is_action(record: Record) -> bool:
    """Calls and completion steps are executed; callbacks and misuse are observed.

    A misuse record with args stands for a call that raised SspiMisuse (strict mode), so it is
    executed too. Without args it is observed: the next action must report it.
    """
    # A callback never has args; a call and a completion step have no "event".
    return "event" not in record or "args" in record


def _is_async(record: Record) -> bool:
    kind = record_kind(record)
    return kind in ("complete", "callback") or (
        "call" in record and _CALLS.get(record["call"]) not in SYNC_CALLS
    )


def _construct(factory: Factory, options: Record) -> Any:
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


def _packages(names: Any) -> tuple[Package, ...] | None:
    if names is None:
        return None
    if not isinstance(names, list) or not all(isinstance(name, str) for name in names):
        raise ReplayError(f"the header's packages are not a list of names: {names!r:.60}")
    available = {package.info.name: package for package in default_packages()}
    unknown = [name for name in names if name not in available]
    if unknown:
        raise ReplayError(
            f"the header names packages the model does not have: {', '.join(unknown)}"
        )
    return tuple(available[name] for name in names)


# TRC-005: header settings of the wrong type are the trace's fault: a verdict names them.
_SETTING_TYPES: dict[str, tuple[type, ...]] = {
    "logon_user": (str, type(None)),
    "strict": (bool,),
    "async_any_package": (bool,),
}


class ReplaySession:
    """Replays a trace fed one line (or record) at a time; `verdict()` ends it.

    `profile` overrides the header's. `backend` is a factory of Backend objects (called with
    the header's settings it accepts); sync calls go through it, async calls through
    `async_adapter(backend)` or, by default, the Sspi of a backend declaring async support.
    Malformed lines fail the verdict but the rest is still replayed.
    """

    def __init__(
        self,
        *,
        profile: str | Profile | None = None,
        backend: Factory | None = None,
        async_adapter: Adapter | None = None,
    ) -> None:
        self.profile = profile
        self.backend = backend
        self.async_adapter = async_adapter
        self.header: Record = {}
        self.recorder = Recorder(stream=True)
        self.produced: collections.deque[Record] = collections.deque()
        self.recorder.listen(self.produced.append)
        self.compare = Comparison(forget=self.recorder.forget)
        self.processes: dict[str, _Process] = {}
        # (line, record, is it an action) read but not yet compared
        self._pending: collections.deque[tuple[int, Record, bool]] = collections.deque()
        self._actions = 0  # actions among _pending
        self._deleting: dict[str, Any] = {}  # pending symbol -> the context its delete names
        self._problems: list[Problem] = []
        self._dropped = 0  # problems beyond PROBLEM_LIMIT
        self._values = 0  # non-blank lines seen
        self._last_seq = 0
        self._last_line = 0  # the line of the last well-formed record
        self._replayed = 0
        self._failure: Verdict | None = None
        self._unsupported: Verdict | None = None
        self._closed = False
        self._decoders = self._argument_decoders()
        # compare.replay_symbol and recorder.symbol, as the dict lookups they are (no Python
        # frame): two per symbol argument. Neither dict is ever replaced.
        self._replay_symbol = self.compare.t2m.get
        self._recorded_symbol = self.recorder.symbol_lookup()
        self._listeners = self.recorder.listener_list()

    @property
    def against(self) -> str:
        return self.compare.against

    # -- input ---------------------------------------------------------------------------------

    def feed_line(self, number: int, text: str | bytes) -> None:
        """Line `number` of a JSON Lines trace (blank lines are skipped)."""
        value: Any = BLANK
        if len(text) <= LINE_LIMIT:
            try:  # the common line; anything else, decode_line says what it is
                if text.__class__ is bytes:
                    text = text.decode("utf-8")
                value = _loads(text)
            except (ValueError, RecursionError):  # UnicodeDecodeError is a ValueError
                value = BLANK
        if value is BLANK:
            value = decode_line(number, text)
        if isinstance(value, Problem):
            self._problem(value)
        elif value is not BLANK:
            self._feed(number, value, text if text.__class__ is str else None, False)

    def feed_object(self, number: int, record: Any) -> None:
        """A record from memory: it is what its JSON would read as (TRC-005: a value JSON
        cannot carry, such as an integer too long to print, is a problem like a bad line)."""
        try:
            value = json.loads(json.dumps(record))
        except (TypeError, ValueError, RecursionError) as error:
            what = f"{type(error).__name__}: {error}"[:80]
            self._values += 1
            self._problem(Problem(number, "a record JSON can carry", what))
            return
        self.feed_value(number, value)

    def feed_value(self, number: int, value: Any, *, checked: bool = False) -> None:
        """The parsed value of line `number`; `checked` when it was checked already (a Trace's
        records: check_record passed them and their seq problems are the Trace's)."""
        self._feed(number, value, None, checked)

    def _feed(self, number: int, value: Any, text: str | None, checked: bool) -> None:
        """feed_value; `text` is the line `value` was parsed from, if known (check_line may
        then skip the check of a known shape, TRC-007)."""
        first = self._values == 0
        self._values += 1
        if not checked:
            if text is None:
                issues = check_record(value, first=first)
            else:
                issues = check_line(text, value, first=first)  # TRC-007
            if issues:
                for expected, found in issues:
                    self._problem(Problem(number, expected, found))
                return
        if "trace" in value:  # the header (record_kind)
            if first:
                self._start_header(value)
            return
        seq = value["seq"]
        if seq > self._last_seq:
            self._last_seq = seq
        elif not checked:
            self._problem(Problem(number, f"a seq greater than {self._last_seq}", f"seq {seq}"))
        self._last_line = number
        # _record, inline (one frame fewer per record; the async check only with a backend)
        if self.backend is not None and self._unsupported is None and _is_async(value):
            self._check_async_support(number, value)
        if self._failure is not None:
            return
        name = value.get("process")
        if isinstance(name, str) and name not in self.processes and not self._start_or_fail(name):
            return
        pending = self._pending
        if len(pending) >= PENDING_LIMIT:  # TRC-004
            what = (
                f"more than {PENDING_LIMIT} callback and misuse records follow one another "
                "with no call: the replay reads no further ahead"
            )
            self._failure = _failed(self._replayed, number, value, what)
            return
        action = "event" not in value or "args" in value  # _is_action(record), inline
        pending.append((number, value, action))
        self._actions += action
        self._advance(final=False)

    def add_problems(self, problems: Any) -> None:
        for problem in problems:
            self._problem(problem)

    def _problem(self, problem: Problem) -> None:
        if len(self._problems) < PROBLEM_LIMIT:  # TRC-003
            self._problems.append(problem)
        else:
            self._dropped += 1

    def _start_header(self, header: Record) -> None:
        self.header = header
        if self._failure is None:
            processes = header.get("processes") or {}
            for name in processes:
                if isinstance(name, str) and not self._start_or_fail(name):
                    return

    def _start_or_fail(self, name: str) -> bool:
        try:
            self.process(name)
        except ReplayError as error:  # the header cannot be replayed: nothing is
            self._failure = Verdict(False, 0, 1, None, str(error))
            return False
        return True

    # -- processes -----------------------------------------------------------------------------

    def _settings(self, name: str) -> Record:
        processes = self.header.get("processes") or {}
        settings = dict(processes.get(name) or {})
        profile = self.profile or settings.get("profile") or self.header.get("profile")
        try:
            resolved = resolve_profile(profile or "documented")
        except (TypeError, ValueError) as error:
            raise ReplayError(f"process {name}: {error}") from None
        for key, types in _SETTING_TYPES.items():
            if key in settings and not isinstance(settings[key], types):
                wanted = " or ".join("null" if t is type(None) else t.__name__ for t in types)
                raise ReplayError(f"process {name}: {key} must be {wanted}: {settings[key]!r:.60}")
        accounts = self.header.get("accounts") or {}
        return {
            "accounts": dict(accounts),
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
            except (TypeError, ValueError) as error:  # TRC-005: settings the header got wrong
                raise ReplayError(f"process {name}: {error}") from None
            self.recorder.register(sspi, name)
            return _Process(sspi, sspi, synthesize=True, quiet=True)
        if settings["packages"] is None:
            del settings["packages"]
        backend = _construct(self.backend, settings)
        self.compare.against = str(
            getattr(getattr(backend, "capabilities", None), "name", "backend")
        )
        self.recorder.register(backend, name)
        target = (self.async_adapter or _default_async)(backend)
        if target is not None:
            self.recorder.attach(target, name, async_only=True)
        return _Process(backend, target, synthesize=True, closer=getattr(backend, "close", None))

    def _check_async_support(self, number: int, record: Record) -> None:
        """An unsupported verdict when an async record meets a backend that cannot run it."""
        if self.async_adapter is not None:
            self._unsupported = Verdict(True, 0)  # checked: supported
            return
        assert self.backend is not None
        probe = _construct(self.backend, {})
        try:
            supported = _default_async(probe) is not None
            name = getattr(getattr(probe, "capabilities", None), "name", repr(probe))
        finally:
            closer = getattr(probe, "close", None)
            if closer is not None:
                closer()
        if supported:
            self._unsupported = Verdict(True, 0)
            return
        what = (
            f"backend {name} has no async support, and the trace has async records "
            f"(the first at line {number}); replay it on the model instead"
        )
        self._unsupported = Verdict(False, 0, number, record["seq"], what, unsupported=True)

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        for process in self.processes.values():
            if process.closer is not None:
                process.closer()

    # -- symbols and arguments -----------------------------------------------------------------

    def _object(self, symbol: Any) -> Any:
        if not isinstance(symbol, str):
            raise ReplayError(f"{symbol!r:.60} is not a symbol")
        replayed = self._replay_symbol(symbol)
        found = self._recorded_symbol(replayed) if replayed is not None else None
        if found is None:
            forgotten = self.compare.forgotten
            later = (
                f" (or was retired more than {RETIRED_WINDOW} retirements ago, TRC-001)"
                if forgotten
                else ""
            )
            raise ReplayError(f"{symbol} is used before any record bound it{later}")
        return found.value

    def _handle(self, value: Any) -> SecHandle | None:
        if value.__class__ is str:  # a bound symbol, without _object's frame (the common case)
            replayed = self._replay_symbol(value)
            found = self._recorded_symbol(replayed) if replayed is not None else None
            if found is not None and found.value.__class__ is SecHandle:
                return found.value
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
            if len(value) != 1 or "from" not in value:  # a slice, a buffer, a join (BUF-007)
                return self._pieces(value)
            source = value["from"]
            replayed = self.compare.replay_seq(source)
            token = None if replayed is None else self.recorder.token(replayed)
            if token is None:
                if source <= self.compare.forgotten_seq:
                    raise ReplayError(
                        f"the input refers to seq {source}, further back than the last "
                        f"{SEQ_WINDOW} records the replay remembers (TRC-002)"
                    )
                raise ReplayError(f"the input refers to seq {source}, which has no output token")
            return token
        return base64.b64decode(value)

    def _pieces(self, value: Any) -> bytes:
        try:
            return trace_buffers.decode(value, self._piece)
        except ValueError as error:
            raise ReplayError(str(error)) from None

    def _piece(self, seq: int, index: int | None) -> bytes:
        """The output token (index None) or message output buffer `index` of trace seq `seq`."""
        if index is None:
            return self._data({"from": seq})
        replayed = self.compare.replay_seq(seq)
        data = None if replayed is None else self.recorder.message_output(replayed, index)
        if data is None:
            raise ReplayError(f"the input refers to buffer {index} of seq {seq}, which has none")
        return data

    def _buffers(self, value: Any) -> Any:
        if value is None:
            return None
        if isinstance(value, dict) and "descriptor" in value:  # NULL_DESCRIPTOR (BUF-005)
            return trace_buffers.decode_descriptor(value)
        if not isinstance(value, list):
            return self._data(value)
        buffers = []
        for item in value:
            kind = item["type"]
            number = BUFFER_TYPE_VALUES[kind] if isinstance(kind, str) else kind
            buffers.append(SecBuffer(number, self._data(item.get("data", "")), item.get("size")))
        return tuple(buffers)

    def _notify(self, async_context: Any, data: Any) -> None:
        """The replay's notify callback: the NotifyEvent published before it is compared."""

    def _arg(self, key: str, value: Any) -> Any:
        """The Python value of argument `key` as the trace writes it (None stays None)."""
        if value is None:
            return None
        decode = self._decoders.get(key)
        return value if decode is None else decode(value)

    def _argument_decoders(self) -> dict[str, Callable[[Any], Any]]:
        """Argument name -> how a non-null value of it is decoded; other names pass as they are
        (one dict lookup per argument instead of a chain of comparisons)."""
        decoders: dict[str, Callable[[Any], Any]] = {
            "credential": self._handle,
            "context": self._handle,
            "async_context": self._object,
            "auth_data": decode_auth,
            "callback": lambda _value: self._notify,
            "out": lambda _value: Out(),
            "buffer": lambda value: self._object(value) if isinstance(value, str) else value,
        }
        for key in _TOKEN_KEYS:
            decoders[key] = self._buffers
        return decoders

    # -- actions -------------------------------------------------------------------------------

    def _execute(self, record: Record, direct: bool) -> bool:
        """Run action `record`; True when its result was compared with it already (`direct`:
        it is the first record pending, so nothing produced before it waits, TRC-009)."""
        if "step" in record:  # a completion step (record_kind "complete")
            self._complete(record["pending"])
            return False
        # Not a misuse record standing for a call, and no listener but the session's own wants
        # the records (sequence.py's state notes read one per replayed record).
        direct = direct and "event" not in record and len(self._listeners) == 1
        call, method, sync = _CALL_INFO[record["call"]]
        name = record["process"]
        process = self.processes.get(name) or self.process(name)
        decoders = self._decoders
        kwargs: dict[str, Any] = {}
        for key, value in (record.get("args") or _NO_ARGS).items():
            if value is not None:  # _arg: every None stays None
                decode = decoders.get(key)
                if decode is not None:
                    value = decode(value)
            kwargs[key] = value
        if sync and process.synthesize:
            target = process.sync
            if not process.quiet:
                result = getattr(target, method)(**kwargs)
                if direct and matched(self.compare, self.recorder, record, target, result):
                    return True  # TRC-009
                self.recorder.record_call(target, call, kwargs, result)
                return False
            if process.observed:
                self._observe(process, False)
            # The events an observer would get: the misuse reports (published before the
            # call's own event, which a call that raises never publishes), then the CallEvent.
            log = process.misuse_log
            before = len(log) + log.dropped
            try:
                result = getattr(target, method)(**kwargs)
            except SspiMisuse:
                self._misuse_reports(target, before)
                return False
            if len(log) + log.dropped != before:
                self._misuse_reports(target, before)  # records before the call's: compared first
            elif direct and matched(self.compare, self.recorder, record, target, result):
                return True  # TRC-009
            self.recorder.record_call(target, call, kwargs, result)
            return False
        target = process.sync if sync else process.asynchronous
        if target is None:
            raise ReplayError(f"the {self.against} has no async API for {call.value}")
        self._observe(process, True)  # stays on until the next quiet sync call (_observe)
        try:
            getattr(target, method)(**kwargs)
        except SspiMisuse:  # not contextlib.suppress: a with-block costs more per call
            return False  # reported to the recorder before it was raised; the comparison decides
        return False

    def _misuse_reports(self, sspi: Any, before: int) -> None:
        log = sspi.misuse_events
        new = len(log) + log.dropped - before
        for event in log[len(log) - min(new, len(log)) :] if new else ():
            self.recorder(MisuseReport(sspi, event.call, event.rule, event.message, None))

    def _observe(self, process: _Process, on: bool) -> None:
        """The recorder observes a quiet process during its async actions.

        It is switched on by an async action and off only by the next sync call (which must
        run unobserved, see _execute): a run of async records switches it twice, not twice per
        record. Between actions nothing runs on the instance, so nothing else is observed.
        """
        if process.quiet and process.observed != on:
            process.sync.observer = self.recorder if on else None
            process.observed = on

    def _complete(self, symbol: str) -> None:
        wanted = self._object(symbol)
        for process in self.processes.values():
            scheduler = getattr(process.asynchronous, "scheduler", None)
            pending = getattr(scheduler, "pending", ())
            for index, call in enumerate(pending):
                if call.id == wanted:
                    assert scheduler is not None
                    self._observe(process, True)  # as for an async call (see _observe)
                    try:
                        scheduler.run_one(index)
                    except SspiMisuse:
                        return  # recorded as it was raised
                    return
        raise ReplayError(f"the {self.against} has no pending call {symbol} to complete")

    def _settle(self, record: Record) -> None:
        """After a matched record: retire what it ended (TRC-001)."""
        if "call" in record and "args" in record and "event" not in record:
            call, args = record["call"], record["args"]
            if call == _FREE_ASYNC:
                self.compare.retire(args.get("async_context"))
            elif call in _RETIRES and _succeeded(record):
                self.compare.retire(args.get(_RETIRES[call]))
            elif call == _DELETE_ASYNC and "pending" in record:
                self._deleting[record["pending"]] = args.get("context")
        elif "step" in record:
            pending = record["pending"]
            context = self._deleting.pop(pending, None)
            if context is not None and _succeeded(record):
                self.compare.retire(context)
            self.compare.retire(pending)

    # -- the loop ------------------------------------------------------------------------------

    def _advance(self, *, final: bool) -> None:
        """Compare the records read with what the replay produces, executing actions as needed.

        An observed record (a callback, an unraised misuse) is compared with what the next
        action produces, so the records up to that action are read first.
        """
        pending, produced, match = self._pending, self.produced, self.compare.match
        while pending and self._failure is None:
            line, record, action = pending[0]
            if not produced:
                if not self._actions:
                    if final:
                        self._failure = _failed(
                            self._replayed,
                            line,
                            record,
                            f"the {self.against} produces no such record",
                            describe(record),
                            "nothing",
                        )
                    return
                if action:
                    action_line, action_record = line, record
                else:
                    action_line, action_record, _ = next(item for item in pending if item[2])
                try:
                    compared = self._execute(action_record, action)
                except ReplayError as error:
                    self._failure = _failed(self._replayed, action_line, action_record, str(error))
                    return
                except Exception as error:  # a backend crash or an argument the API rejects
                    what = f"the call raised {type(error).__name__}: {_words(error)}"
                    self._failure = _failed(self._replayed, action_line, action_record, what)
                    return
                if not compared:
                    if not produced:
                        what = "executing this record produced no record to compare"
                        self._failure = _failed(self._replayed, action_line, action_record, what)
                        return
                    continue
            else:
                model = produced.popleft()
                try:
                    mismatch = match(record, model)
                except Exception as error:  # TRC-005: a value no check foresaw is a verdict
                    what = f"the replay cannot compare this record ({type(error).__name__})"
                    self._failure = _failed(self._replayed, line, record, what)
                    return
                if mismatch is not None:
                    self._failure = _failed(
                        self._replayed,
                        line,
                        record,
                        mismatch.what,
                        mismatch.found,
                        mismatch.expected,
                    )
                    return
            self._replayed += 1
            pending.popleft()
            self._actions -= action
            if record.get("call") in _SETTLING or "step" in record:
                self._settle(record)

    def verdict(self) -> Verdict:
        """The verdict on everything fed; the session's instances are closed."""
        try:
            self._advance(final=True)
        finally:
            self.close()
        verdict = self._failure
        if verdict is None and self.produced:
            extra = self.produced[0]
            what = f"the trace ends, but the {self.against} records more"
            verdict = Verdict(
                False,
                self._replayed,
                self._last_line + 1,
                None,
                what,
                self.compare.describe(extra),
                "the end of the trace",
            )
        if verdict is None:
            verdict = Verdict(True, self._replayed)
        if self._unsupported is not None and self._unsupported.unsupported:
            verdict = self._unsupported
        problems = sorted(self._problems, key=lambda problem: problem.line)
        if self._dropped:
            last = problems[-1].line if problems else 0
            problems.append(
                Problem(last, f"at most {PROBLEM_LIMIT} problems listed", f"{self._dropped} more")
            )
        ok = verdict.ok and not problems
        return Verdict(
            ok,
            verdict.replayed,
            verdict.line,
            verdict.seq,
            verdict.what,
            verdict.expected,
            verdict.found,
            tuple(problems),
            verdict.unsupported,
            self.against,
        )


def _succeeded(record: Record) -> bool:
    return "status" in record and same_status(record["status"], "SEC_E_OK")


def _words(error: BaseException) -> str:
    try:
        return str(error)
    except Exception:  # a str() that fails (a huge int in the message)
        return repr(type(error))
