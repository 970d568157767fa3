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
(streaming) Recorder, and compares the two record streams line by line. The verdict names the
first line the model does not allow. `validate`, `validate_lines` and `validate_file` are one
ReplaySession fed a record at a time: memory is bounded by the trace's live handles, not its
length, and any input, however malformed, gets a verdict.

The modules, in the order a trace meets them:

    format.py   record kinds, statuses, symbols, value encodings: what every other module shares
    record.py   Recorder, the observer that writes records (and, streaming, a replay's)
    files.py    write_trace, read_trace, parse_lines, file_lines: JSON Lines to checked records
    check.py    check_record, the structural rules of the JSON Schema
    verdict.py  Verdict, and how a verdict describes records
    compare.py  Comparison: a trace record against the replay's, symbols bound by position
    direct.py   a sync call's result against its trace record, without recording it first
    replay.py   ReplaySession, the replayer: executes actions, compares, keeps live state only
    streams.py  validate, validate_lines, validate_file: a trace from memory, lines or a file
"""

from sspi_model.trace.check import Issue, check_record
from sspi_model.trace.files import Problem, Trace, as_trace, parse_lines, read_trace, write_trace
from sspi_model.trace.format import (
    FORMAT,
    RULE_ID,
    SYMBOL,
    SYNC_CALLS,
    VERSION,
    Record,
    ReplayError,
    decode_auth,
    record_kind,
    status_name,
    status_value,
)
from sspi_model.trace.record import Recorder, Symbol
from sspi_model.trace.replay import ReplaySession
from sspi_model.trace.streams import validate, validate_file, validate_lines
from sspi_model.trace.verdict import Verdict, describe, label

__all__ = [
    "FORMAT",
    "RULE_ID",
    "SYMBOL",
    "SYNC_CALLS",
    "VERSION",
    "Issue",
    "Problem",
    "Record",
    "Recorder",
    "ReplayError",
    "ReplaySession",
    "Symbol",
    "Trace",
    "Verdict",
    "as_trace",
    "check_record",
    "decode_auth",
    "describe",
    "label",
    "parse_lines",
    "read_trace",
    "record_kind",
    "status_name",
    "status_value",
    "validate",
    "validate_file",
    "validate_lines",
    "write_trace",
]
