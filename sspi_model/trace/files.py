"""Reading and writing trace files: JSON Lines in, checked records (and Problems) out."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
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


LINE_LIMIT = 1 << 24  # bytes in one line (TRC-005); a recorded record is well under 64 KiB
BLANK: Any = object()  # what decode_line returns for a blank line


def decode_line(number: int, text: str | bytes) -> Any:
    """The JSON value of one line, BLANK for a blank line, or a Problem (TRC-005): a line that
    is not UTF-8, not JSON, nested too deeply or holding an integer Python will not convert
    is the trace's problem, never an exception."""
    if len(text) > LINE_LIMIT:
        return Problem(number, f"a line of at most {LINE_LIMIT} bytes", "a longer line")
    if isinstance(text, bytes):
        try:
            text = text.decode("utf-8")
        except UnicodeDecodeError as error:
            found = (
                f"a byte that is not UTF-8 (0x{text[error.start]:02X} at column {error.start + 1})"
            )
            return Problem(number, "UTF-8 text", found)
    try:
        return json.loads(text)
    except json.JSONDecodeError as error:
        if not text.strip():
            return BLANK
        found = f"invalid JSON ({error.msg} at column {error.colno})"
    except RecursionError:
        found = "JSON nested too deeply to read"
    except ValueError as error:  # an integer of more digits than int() converts
        found = f"unreadable JSON ({str(error)[:60]})"
    return Problem(number, "one JSON object per line", found)


def file_lines(path: str | Path) -> Iterator[tuple[int, bytes]]:
    """A trace file's lines as bytes, numbered from 1, without holding more than one line.

    A line longer than LINE_LIMIT is not read into memory: it is yielded as its first
    LINE_LIMIT + 1 bytes (decode_line then reports it) and the rest is skipped.
    """
    with Path(path).open("rb") as handle:
        number = 0
        while True:
            line = handle.readline(LINE_LIMIT + 1)
            if not line:
                return
            number += 1
            if len(line) > LINE_LIMIT and not line.endswith(b"\n"):
                while True:  # the rest of the huge line, discarded a piece at a time
                    rest = handle.readline(LINE_LIMIT)
                    if not rest or rest.endswith(b"\n"):
                        break
                yield number, line  # LINE_LIMIT + 1 bytes: decode_line reports it
                continue
            yield number, line


def read_trace(path: str | Path) -> Trace:
    """Read a trace, checking every line; malformed lines become Problems, the rest is kept."""
    return parse_lines(line for _number, line in file_lines(path))


def parse_lines(lines: Iterable[str | bytes]) -> Trace:
    parsed: list[tuple[int, Any]] = []
    problems: list[Problem] = []
    for number, text in enumerate(lines, start=1):
        value = decode_line(number, text)
        if isinstance(value, Problem):
            problems.append(value)
        elif value is not BLANK:
            parsed.append((number, value))
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
