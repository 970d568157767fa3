"""validate, validate_lines, validate_file: a trace from memory, lines or a file, one
ReplaySession each. Each streams its input: only the session's live state is held, so a file
of any length validates in the memory of its live handles (TRC-001 to TRC-004)."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from sspi_model.profiles import Profile
from sspi_model.trace.files import Trace, file_lines
from sspi_model.trace.format import Record
from sspi_model.trace.replay import Adapter, Factory, ReplaySession
from sspi_model.trace.verdict import Verdict


def validate(
    records: Trace | Iterable[Record],
    *,
    profile: str | Profile | None = None,
    backend: Factory | None = None,
    async_adapter: Adapter | None = None,
) -> Verdict:
    """Replay a trace on fresh instances, one per process, and judge it.

    `records` is a Trace (read_trace, parse_lines) or the records themselves, header first
    (an iterator is consumed as it is replayed). See ReplaySession for the other arguments.
    """
    session = ReplaySession(profile=profile, backend=backend, async_adapter=async_adapter)
    try:
        if isinstance(records, Trace):
            session.add_problems(records.problems)
            if records.header is not None:
                session.feed_value(1, records.header, checked=True)
            for number, record in zip(records.lines, records.records, strict=True):
                session.feed_value(number, record, checked=True)
        else:
            for number, record in enumerate(records, start=1):
                session.feed_object(number, record)
    except BaseException:
        session.close()
        raise
    return session.verdict()


def validate_lines(
    lines: Iterable[str | bytes],
    *,
    profile: str | Profile | None = None,
    backend: Factory | None = None,
    async_adapter: Adapter | None = None,
) -> Verdict:
    """validate(parse_lines(lines)), streaming: each line is replayed as it is read."""
    session = ReplaySession(profile=profile, backend=backend, async_adapter=async_adapter)
    try:
        for number, line in enumerate(lines, start=1):
            session.feed_line(number, line)
    except BaseException:
        session.close()
        raise
    return session.verdict()


def validate_file(
    path: str | Path,
    *,
    profile: str | Profile | None = None,
    backend: Factory | None = None,
    async_adapter: Adapter | None = None,
) -> Verdict:
    """validate(read_trace(path)), streaming the file a line at a time (OSError if it cannot
    be opened; a line that is not UTF-8 or too long is a problem of the verdict)."""
    lines = (line for _number, line in file_lines(path))
    return validate_lines(lines, profile=profile, backend=backend, async_adapter=async_adapter)
