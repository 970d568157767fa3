"""A run drawn as a Mermaid sequence diagram (CLI-016), from its trace records.

One participant per process and one per async context; each call is a message from the process
to itself (or to its async context), with its status and the handles it returned; a token passed
from one process to the other is a dashed message between them; a completion and a callback come
from the async context back to its process; misuse sits in a red box naming its rule. After each
step that changed them, a note gives the states of the acting process's objects as the narrated
demo prints them (`sspi-model demo`), read from the live instances of the run:

    recorder = Recorder()
    notes = StateNotes(recorder)
    ...  # run something recorded by `recorder`
    print(sequence_diagram(recorder.trace(), notes.states))

`replayed_states(trace)` gets the same notes for a trace file by replaying it on the model
(sspi_model.trace.ReplaySession).
"""

from __future__ import annotations

import json
import re
import textwrap
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from sspi_model.async_api import AsyncContext
from sspi_model.trace import Record, Recorder, ReplaySession, Trace, record_kind

# What a state note is made of: seq -> {process: "states of its objects"}.
States = Mapping[int, Mapping[str, str]]

_MISUSE_FILL = "rgb(255, 214, 214)"
_ASYNC_PREFIX = "Sspi"


def _escape(text: str) -> str:
    """Mermaid text: `;` ends a statement and `#` starts an entity, so both become entities;
    `<` and `>` would be read as HTML."""
    return (
        text.replace("#", "#35;")
        .replace(";", "#59;")
        .replace("<", "#lt;")
        .replace(">", "#gt;")
        .replace("\n", " ")
    )


def _ident(prefix: str, name: str) -> str:
    return prefix + re.sub(r"[^0-9A-Za-z_]", "_", name)


def _symbols(value: Any) -> list[str]:
    if isinstance(value, str) and value.startswith("$"):
        return [value]
    return []


class _Drawing:
    def __init__(self, records: Sequence[Record], states: States) -> None:
        self.records = [record for record in records if "seq" in record]
        self.states = states
        self.lines: list[str] = ["sequenceDiagram"]
        self.by_seq = {record["seq"]: record for record in self.records}
        self.lifeline: dict[str, str] = {}  # process or "$actx" symbol -> participant id
        self.callbacks: dict[str, str] = {}  # "$actx" symbol -> the callback's name
        self.last_note: dict[str, str] = {}  # process -> its last state note
        self.queued_on: dict[str, str] = {}  # "$call" symbol -> the "$actx" it was queued on

    def participants(self) -> None:
        for record in self.records:
            process = record.get("process")
            if isinstance(process, str) and process not in self.lifeline:
                self.lifeline[process] = _ident("p_", process)
                self.lines.append(f"    participant {self.lifeline[process]} as {_escape(process)}")
            args = record.get("args") or {}
            pending, context = record.get("pending"), args.get("async_context")
            if "args" in record and isinstance(pending, str) and isinstance(context, str):
                self.queued_on[pending] = context  # a queued call, not its completion step
            result = record.get("result")
            if record.get("call") == "SspiCreateAsyncContext" and isinstance(result, str):
                self.lifeline[result] = _ident("a_", result)
                self.lines.append(
                    f"    participant {self.lifeline[result]} as {_escape(result)} ({process})"
                )

    def say(self, line: str) -> None:
        self.lines.append(f"    {line}")

    def draw(self) -> str:
        self.participants()
        for record in self.records:
            kind = record_kind(record)
            if kind == "misuse":
                self.misuse(record)
            elif kind == "complete":
                self.completion(record)
            elif kind == "callback":
                self.callback(record)
            elif "call" in record:
                self.call(record)
            self.note(record)
        return "\n".join(self.lines) + "\n"

    # -- the records -------------------------------------------------------------------------

    def _process(self, record: Record) -> str:
        return self.lifeline.get(str(record.get("process")), "p_unknown")

    def _async_target(self, record: Record) -> str | None:
        args = record.get("args") or {}
        target = args.get("async_context") if isinstance(args, dict) else None
        if record.get("call") == "SspiCreateAsyncContext":
            target = record.get("result")
        return self.lifeline.get(target) if isinstance(target, str) else None

    def tokens_in(self, record: Record) -> None:
        """A token from an earlier record of another process: a dashed message between them."""
        args = record.get("args") or {}
        source = args.get("input") if isinstance(args, dict) else None
        if not (isinstance(source, dict) and isinstance(source.get("from"), int)):
            return
        earlier = self.by_seq.get(source["from"])
        if earlier is None or earlier.get("process") == record.get("process"):
            return
        frm = self.lifeline.get(str(earlier.get("process")))
        if frm is not None:
            self.say(f"{frm}-->>{self._process(record)}: token of [{source['from']}]")

    def call(self, record: Record) -> None:
        self.tokens_in(record)
        call = str(record["call"])
        args = record.get("args") or {}
        shown = [str(args["package"])] if isinstance(args.get("package"), str) else []
        async_context = args.get("async_context")
        for key, value in args.items():
            if key != "async_context":
                shown += _symbols(value)
        if call == "SspiSetAsyncNotifyCallback" and isinstance(async_context, str):
            self.callbacks[async_context] = str(args.get("callback") or "callback")
        result = [str(record["status"])] if "status" in record else []
        out = record.get("out") or {}
        made = [str(v) for k, v in out.items() if k in ("credential", "context") and v]
        if isinstance(record.get("result"), str):
            made.append(str(record["result"]))
        elif "result" in record and record["result"] is not None:
            result.append(json.dumps(record["result"]))
        if record.get("pending"):
            made.append(f"queued as {record['pending']}")
        answer = " ".join(result + made) or "returns"
        text = f"[{record['seq']}] {call}({', '.join(shown)}) → {answer}"
        target = self._async_target(record) if call.startswith(_ASYNC_PREFIX) else None
        source = self._process(record)
        self.say(f"{source}->>{target or source}: {_escape(text)}")

    def completion(self, record: Record) -> None:
        pending = record.get("pending")
        context = self._context_of(pending)
        source = self.lifeline.get(context) if context else None
        text = f"[{record['seq']}] {pending} ({record.get('call', '?')}) completes → "
        text += str(record.get("status", "?"))
        out = record.get("out") or {}
        made = [str(v) for k, v in out.items() if k in ("credential", "context") and v]
        text += "".join(f" {m}" for m in made)
        target = self._process(record)
        self.say(f"{source or target}-->>{target}: {_escape(text)}")

    def callback(self, record: Record) -> None:
        context = record.get("async_context")
        name = self.callbacks.get(str(context), "callback")
        data = json.dumps(record.get("data"), ensure_ascii=False)
        source = self.lifeline.get(str(context)) or self._process(record)
        text = f"[{record['seq']}] callback {name}({context}, {data})"
        self.say(f"{source}-){self._process(record)}: {_escape(text)}")

    def misuse(self, record: Record) -> None:
        # CLI-016: misuse is highlighted, in red, with the rule that names it.
        args = record.get("args") or {}
        target = self._async_target(record)
        where = self._process(record) if target is None else f"{self._process(record)},{target}"
        raised = "raised SspiMisuse" if record.get("raised") else "recorded (strict=False)"
        symbols = ", ".join(s for v in args.values() for s in _symbols(v))
        head = f"[{record['seq']}] MISUSE {record.get('rule', '?')}: {record.get('call', '?')}"
        lines = [f"{head}({symbols}) {raised}"]
        lines += textwrap.wrap(str(record.get("message", "")), 64)  # a note does not wrap
        text = "<br/>".join(_escape(line) for line in lines)
        self.say(f"rect {_MISUSE_FILL}")
        self.say(f"    Note over {where}: {text}")
        self.say("end")

    def _context_of(self, pending: Any) -> str | None:
        return self.queued_on.get(pending) if isinstance(pending, str) else None

    def note(self, record: Record) -> None:
        """The states of the acting process's objects, when this step changed them."""
        process = str(record.get("process"))
        line = self.states.get(record["seq"], {}).get(process)
        if not line or self.last_note.get(process) == line:
            return
        self.last_note[process] = line
        text = "<br/>".join(_escape(item) for item in line.split("; "))
        self.say(f"Note right of {self._process(record)}: {text}")


def sequence_diagram(records: Iterable[Record], states: States | None = None) -> str:
    """The Mermaid sequenceDiagram of a run (CLI-016): the header record, if any, is skipped;
    `states` (seq -> process -> text) adds a state note after each step."""
    return _Drawing(list(records), states or {}).draw()


def _split(lines: Sequence[str]) -> dict[str, str]:
    """Narration state lines ("server: $cred1 credential live; ...") by process."""
    found: dict[str, str] = {}
    for line in lines:
        process, sep, rest = line.partition(":")
        if sep and not line.startswith(" "):
            found[process] = rest.strip()
    return found


class _Remembering:
    """A recorder as the narrator's state reading uses it, that also remembers which async
    context each queued call was made on: a replay's streaming recorder keeps only live state
    and forgets that, which the note after a completion needs (it shows the status published)."""

    def __init__(self, recorder: Recorder) -> None:
        self.recorder = recorder
        self.contexts: dict[int, AsyncContext] = {}

    def __getattr__(self, name: str) -> Any:
        return getattr(self.recorder, name)

    def pending_context(self, pending: int) -> AsyncContext | None:
        return self.recorder.pending_context(pending) or self.contexts.get(pending)

    def remember(self, record: Record) -> None:
        name = record.get("pending")
        symbol = self.recorder.symbol(name) if isinstance(name, str) else None
        if symbol is None or "step" in record:
            return
        for target in self.recorder.processes.values():
            calls = getattr(getattr(target, "_async", None), "pending_calls", {})
            if symbol.value in calls:
                self.contexts[symbol.value] = calls[symbol.value].async_context


class StateNotes:
    """Listens to a Recorder and keeps, for every record, the states of every process's
    objects right after it (the demo's narration lines, from the live instances)."""

    def __init__(self, recorder: Recorder) -> None:
        self.recorder = _Remembering(recorder)
        self.states: dict[int, dict[str, str]] = {}
        self.stop = recorder.listen(self._snapshot)

    def _snapshot(self, record: Record) -> None:
        from sspi_model.scenarios import _state_lines  # the narrator's own reading of states

        self.recorder.remember(record)
        if isinstance(record.get("seq"), int):
            lines = _state_lines(self.recorder, record, 10**6)  # type: ignore[arg-type]
            self.states[record["seq"]] = _split(lines)


def replayed_states(trace: Trace, profile: str | None = None) -> dict[int, dict[str, str]]:
    """The state notes of a trace: its records replayed on fresh model instances (a
    ReplaySession, as `sspi-model replay` runs it), the states read after each one. The replay
    produces one record per trace record, in order; where it stops, the notes stop."""
    session = ReplaySession(profile=profile)
    produced: list[dict[str, str]] = []
    notes = StateNotes(session.recorder)
    session.recorder.listen(lambda record: produced.append(notes.states.get(record["seq"], {})))
    try:
        if trace.header is not None:
            session.feed_value(1, trace.header, checked=True)
        for number, record in zip(trace.lines, trace.records, strict=True):
            session.feed_value(number, record, checked=True)
    finally:
        session.verdict()  # closes the session's instances
    return {record["seq"]: states for record, states in zip(trace.records, produced, strict=False)}
