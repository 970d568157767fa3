"""Reading and writing trace files: JSON Lines in, checked records (and Problems) out."""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import attrs

from sspi_model.trace.check import check_record
from sspi_model.trace.format import Record, record_kind
from sspi_model.trace.record import Recorder


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
        except (ValueError, RecursionError) as error:  # ROB-008: too deep, or a huge integer
            found = f"JSON the reader cannot hold ({type(error).__name__}: {str(error)[:80]})"
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
