"""What a replay concludes (Verdict), and the few words it uses to describe records."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import attrs

from sspi_model.trace.files import Problem
from sspi_model.trace.format import Record, _show, record_kind, status_name, status_value


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
