"""A sync call's result compared with its trace record directly, without recording it first.

The general path records what the replay did (Recorder.record_call builds a record) and then
compares the two records (Comparison.match). For the results of most calls of a trace (a
status, credentials, a leg) `matched` reads the trace record's fields straight off the result
instead, field by field, stopping at the first difference (TRC-009). It only ever answers "the
general path would find these equal": it then makes what recording and matching would have
made (the recorder's seq, symbol and token, the comparison's bindings and seq map) and nothing
else. Any difference, or any field it does not know, and it answers False with nothing
changed: the general path then runs from the same state and words the mismatch, so every
verdict and message is the general path's.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sspi_model.buffers import SecBuffer
from sspi_model.results import AcquireCredentialsResult, SecurityContextResult
from sspi_model.trace.compare import Comparison, same_status
from sspi_model.trace.format import Record, _buffer_type, status_name
from sspi_model.trace.record import Recorder

# The out fields the model's record has, by result class; "input_after" only when not None.
_LEG_FIELDS = frozenset({"context", "output", "context_attr", "expiry", "input_after"})
_CREDENTIAL_FIELDS = frozenset({"credential", "expiry"})
_NO_FIELDS: frozenset[str] = frozenset()  # a status alone


def matched(
    compare: Comparison, recorder: Recorder, record: Record, target: Any, result: Any
) -> bool:
    """Whether `record` (a call record, no "step" or "event") is what sync call `result` of
    `target` records; when it is, the recorder and comparison are left as recording the call and
    matching the two records leaves them. False, with nothing changed, otherwise."""
    cls = result.__class__
    if cls is SecurityContextResult:
        status, kind, handle, fields = result.status, "context", result.new_context, _LEG_FIELDS
        for buffers in (result.output, result.input_after or ()):
            for buffer in buffers:
                if buffer.allocation is not None:
                    return False  # recording binds an allocation symbol: the general path does
    elif cls is AcquireCredentialsResult:
        status, kind, handle = result.status, "credential", result.credential
        fields = _CREDENTIAL_FIELDS
    elif isinstance(result, int):
        status, kind, handle, fields = result, "", None, _NO_FIELDS
    else:
        return False
    try:  # a value no check foresaw: the general path words what it cannot compare
        process = recorder.process_name(target)
        if (
            "result" in record
            or "pending" in record
            or "async_context" in record
            or process is None
            or record.get("process") != process
        ):
            return False  # fields a sync call's record does not have: the general path says so
        if "status" in record:
            text, name = record["status"], status_name(status)
            if text != name and not same_status(text, name):
                return False
        trace_symbol: Any = None
        model_symbol: str | None = None
        out = record.get("out")
        if out:
            if out.__class__ is not dict or not out.keys() <= fields:
                return False
            for key, value in out.items():
                if key == kind:
                    trace_symbol = value
                elif key == "expiry":
                    if (value is None) != (result.expiry is None):
                        return False
                elif key == "context_attr":
                    if value != result.context_attr:
                        return False
                elif key == "output":
                    if not _same_buffers(value, result.output):
                        return False
                elif result.input_after is None or not _same_buffers(value, result.input_after):
                    return False  # input_after
            if kind in out:
                # Comparison._bound(trace_symbol, the symbol recording would give `handle`)
                if trace_symbol is None or handle is None:
                    if trace_symbol is not None or handle is not None:
                        return False
                elif trace_symbol.__class__ is not str:
                    return False
                else:
                    model_symbol = recorder.bound_symbol(kind, process, handle)
                    bound = compare.t2m.get(trace_symbol)
                    if model_symbol is None:  # a new one: free unless the trace's is bound
                        if bound is not None:
                            return False
                    elif bound is None:
                        if model_symbol in compare.m2t:
                            return False
                    elif bound != model_symbol:
                        return False
                    else:
                        trace_symbol = None  # bound already: nothing to bind
    except Exception:
        return False
    seq, model_symbol = recorder.counted_call(target, result, model_symbol)
    if trace_symbol is not None:
        assert model_symbol is not None
        compare.bind(trace_symbol, model_symbol)
    if cls is SecurityContextResult:
        compare.map_seq(record["seq"], seq)  # a leg's token may be referred to
    return True


def _same_buffers(trace: Any, buffers: Sequence[SecBuffer]) -> bool:
    """Comparison._buffers(key, trace, the recorded buffers) is None (no allocations here)."""
    if trace.__class__ is not list or len(trace) != len(buffers):
        return False
    for left, buffer in zip(trace, buffers, strict=True):
        if left.__class__ is not dict or "allocation" in left:
            return False
        if left.get("type") != _buffer_type(buffer.buffer_type):
            return False
        # Token bytes carry nonces: only whether a buffer holds data is compared.
        if "data" in left and bool(left["data"]) != bool(buffer.data):
            return False
        if "size" in left and left["size"] != buffer.size:
            return False
    return True
