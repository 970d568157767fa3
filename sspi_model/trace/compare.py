"""The comparison of a trace record with the record the replaying side produced.

One `Comparison` per replay: it binds the trace's symbols to the replay's symbols by position
(the first record that returns an object binds its name), keeps the map from trace seq to replay
seq that `{"from": SEQ}` inputs read, and says how two records differ. It keeps only live
bindings (TRC-001, TRC-002): a symbol the trace retired (a deleted context, a freed credential,
a completed call) stays bound for at least the next RETIRED_WINDOW retirements, then it is
forgotten;
seq numbers are kept for the last SEQ_WINDOW records. The memory of a replay is bounded by the
live objects of the trace, not its length.
"""

from __future__ import annotations

import functools
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

import attrs

from sspi_model.lifecycle import Call
from sspi_model.trace.format import (
    VOLATILE_FIELDS,
    Record,
    _show,
    record_kind,
    shown_buffers,
    status_value,
)
from sspi_model.trace.verdict import _status_text, describe

RETIRED_WINDOW = 4096  # retired symbols still bound (TRC-001)
SEQ_WINDOW = 4096  # trace seq -> replay seq entries kept (TRC-002)
_CREATE = Call.CREATE_ASYNC_CONTEXT.value
_BOUND = frozenset({"credential", "context", "allocation"})  # out fields naming objects
_BUFFERS = frozenset({"output", "input_after"})  # out fields holding buffers


@attrs.frozen
class Mismatch:
    """How a trace record differs from the replay's: what differs, and both sides' words."""

    what: str
    found: str
    expected: str


@functools.lru_cache(maxsize=512)
def _status(text: str) -> int:
    return status_value(text)


def same_status(trace: str, model: Any) -> bool:
    """Whether a trace status (a checked status text) is the replay's (a status text)."""
    return trace == model or (isinstance(model, str) and _status(trace) == _status(model))


class Comparison:
    """Trace symbols bound to replay symbols, trace seq to replay seq, and `match`."""

    def __init__(self, against: str = "model", forget: Callable[[str], None] | None = None) -> None:
        self.against = against
        self.t2m: dict[str, str] = {}  # trace symbol -> replay symbol
        self.m2t: dict[str, str] = {}
        self._young: set[str] = set()  # retired symbols, the newer generation
        self._old: set[str] = set()  # the older one: forgotten when the newer fills up
        self._forget = forget
        self.forgotten = 0  # bindings dropped by TRC-001
        # trace seq -> replay seq of the records with output tokens (what {"from"} reads)
        self.seq_map: OrderedDict[int, int] = OrderedDict()
        self.forgotten_seq = 0  # every trace seq up to this one is no longer mapped

    # -- symbols -------------------------------------------------------------------------------

    def replay_symbol(self, trace: str) -> str | None:
        return self.t2m.get(trace)

    def retire(self, trace: Any) -> None:
        """The trace retired the object `trace` names: forget it after RETIRED_WINDOW more.

        TRC-001: a trace may use a retired object again (DEL-003 deletes a deleted handle), so
        the binding is kept for a while; a use beyond the window reads as an unbound symbol.
        """
        if not isinstance(trace, str) or trace not in self.t2m:
            return
        # Two generations: a symbol is kept for RETIRED_WINDOW to 2 * RETIRED_WINDOW further
        # retirements, and forgetting happens in bulk, not once per retirement.
        self._old.discard(trace)
        young = self._young
        young.add(trace)
        if len(young) > RETIRED_WINDOW:
            t2m, m2t, forget = self.t2m, self.m2t, self._forget
            for symbol in self._old:
                model = t2m.pop(symbol, None)
                if model is not None:
                    m2t.pop(model, None)
                    if forget is not None:
                        forget(model)
            self.forgotten += len(self._old)
            self._old, self._young = young, set()

    def bind(self, trace: str, model: str) -> None:
        """Bind trace symbol `trace` to replay symbol `model` (neither is bound yet)."""
        self.t2m[trace] = model
        self.m2t[model] = trace

    def _name(self, symbol: Any) -> str:
        return self.m2t.get(symbol, symbol) if isinstance(symbol, str) else _show(symbol)

    def _bind(self, what: str, trace: Any, model: Any) -> Mismatch | None:
        return None if self._bound(trace, model) else self._unbound(what, trace, model)

    def _bound(self, trace: Any, model: Any) -> bool:
        """Whether trace symbol `trace` stands for replay symbol `model`, binding the two when
        neither is bound yet (the first record that names an object binds it)."""
        if trace is None or model is None:
            return trace is None and model is None
        if trace.__class__ is not str and not isinstance(trace, str):
            return False  # a field the checks leave open, such as result
        bound = self.t2m.get(trace)
        if bound is None and model not in self.m2t:
            self.t2m[trace] = model  # bind(trace, model), inline: this runs once per symbol
            self.m2t[model] = trace
            return True
        return bool(bound == model)

    def _unbound(self, what: str, trace: Any, model: Any) -> Mismatch:
        """How `trace` and `model` differ, when _bound(trace, model) said they do."""
        if trace is None or model is None or not isinstance(trace, str):
            return Mismatch(f"{what} differs", _show(trace), self._name(model))
        return Mismatch(f"{what} differs", trace, f"{self._name(model)} (another object)")

    # -- seq -----------------------------------------------------------------------------------

    def replay_seq(self, trace_seq: int) -> int | None:
        return self.seq_map.get(trace_seq)

    def map_seq(self, trace_seq: int, model_seq: int) -> None:
        seq_map = self.seq_map
        seq_map[trace_seq] = model_seq
        if len(seq_map) > SEQ_WINDOW:  # TRC-002
            oldest, _ = seq_map.popitem(last=False)
            self.forgotten_seq = max(self.forgotten_seq, oldest)

    # -- records -------------------------------------------------------------------------------

    def _buffers(self, key: str, trace: Any, model: Any) -> Mismatch | None:
        """out.`key` (a list of buffers) compared; the message's name is built on a mismatch."""
        if not isinstance(trace, list) or not isinstance(model, list):
            if trace is None and model is None:
                return None
            return Mismatch(f"out.{key} differs", _show(trace), _show(shown_buffers(model)))
        same_types = len(trace) == len(model)
        for left, right in zip(trace, model, strict=False):  # lengths: same_types
            if left.get("type") != right.get("type"):
                same_types = False
        if not same_types:
            types_t = [item.get("type") for item in trace]
            types_m = [item.get("type") for item in model]
            return Mismatch(f"out.{key} buffer types differ", _show(types_t), _show(types_m))
        for index, (left, right) in enumerate(zip(trace, model, strict=True)):
            # Token bytes carry nonces: only whether a buffer holds data is compared.
            if "data" in left and bool(left["data"]) != bool(right.get("data")):
                empty = {True: "data", False: "no data"}
                found, expected = empty[bool(left["data"])], empty[bool(right.get("data"))]
                return Mismatch(f"out.{key}[{index}] differs", found, expected)
            if "size" in left and left["size"] != right.get("size"):
                return Mismatch(
                    f"out.{key}[{index}].size differs",
                    _show(left["size"]),
                    _show(right.get("size")),
                )
            if "allocation" in left:
                mismatch = self._bind(
                    f"out.{key}[{index}].allocation", left["allocation"], right.get("allocation")
                )
                if mismatch:
                    return mismatch
        return None

    def _out(self, trace: Record, model: Record) -> Mismatch | None:
        for key, value in trace.items():
            if key not in model:
                return Mismatch(f"out.{key} is not returned", _show(value), "no such field")
            other = model[key]
            if key in _BOUND:
                bound = self._bound(value, other)
                mismatch = None if bound else self._unbound(f"out.{key}", value, other)
            elif key in _BUFFERS:
                mismatch = self._buffers(key, value, other)
            elif key == "expiry":
                # Real libraries return real times: only whether there is one is compared.
                same = (value is None) == (other is None)
                mismatch = (
                    None if same else Mismatch(f"out.{key} differs", _show(value), _show(other))
                )
            elif key == "attribute" and isinstance(value, dict) and isinstance(other, dict):
                mismatch = self._out(value, other)
            elif value == other:
                mismatch = None
            elif key in VOLATILE_FIELDS and bool(value) == bool(other):
                mismatch = None  # a run's keys and randoms: only empty or not (BUF-007)
            else:
                mismatch = Mismatch(f"out.{key} differs", _show(value), _show(other))
            if mismatch:
                return mismatch
        return None

    def match(self, trace: Record, model: Record) -> Mismatch | None:
        """None if the replay's record is the trace's (binding new symbols); else how not.

        Every field is checked in this order, and the first difference is the mismatch; the
        bindings of the fields before it stay made (the verdict ends the replay there).
        """
        # record_kind, with a call (most records) told by three absent keys, not a function call
        plain = "trace" not in trace and "step" not in trace and "event" not in trace
        kind = "call" if plain else record_kind(trace)
        plain = "trace" not in model and "step" not in model and "event" not in model
        other = "call" if plain else record_kind(model)
        if kind != other:
            return Mismatch(
                f"the {self.against} records a {other} here", describe(trace), self.describe(model)
            )
        get = model.get
        for key in ("process", "call"):
            if key in trace and trace[key] != get(key):
                return Mismatch(f"{key} differs", _show(trace[key]), _show(get(key)))
        if "status" in trace:
            status = get("status")
            if trace["status"] != status and not same_status(trace["status"], status):
                return Mismatch(
                    "status differs", _status_text(trace["status"]), _status_text(status)
                )
        # Each check below runs (and binds) even after an earlier one failed, as the reference
        # replay always did; the first failure is the verdict.
        found: Mismatch | None = None
        if "result" in trace:
            if trace.get("call") == _CREATE:
                found = self._bind("result", trace["result"], model.get("result"))
            elif trace["result"] != model.get("result"):
                found = Mismatch(
                    "result differs", _show(trace["result"]), _show(model.get("result"))
                )
        bound = self._bound
        for key in ("pending", "async_context"):
            if key in trace and not bound(trace[key], model.get(key)):
                found = found or self._unbound(key, trace[key], model.get(key))
        out = get("out")
        if "out" in trace and isinstance(trace["out"], dict):
            mismatch = self._out(trace["out"], out or {})
            found = found or mismatch
        if found is not None:
            return found
        if kind == "callback" and "data" in trace and trace["data"] != model.get("data"):
            return Mismatch("callback data differs", _show(trace["data"]), _show(model.get("data")))
        if kind == "misuse":
            for key in ("rule", "raised"):
                if key in trace and trace[key] != model.get(key):
                    return Mismatch(
                        f"misuse {key} differs", _show(trace[key]), _show(model.get(key))
                    )
        if out and "output" in out:
            self.map_seq(trace["seq"], model["seq"])  # only a leg has a token to refer to
        return None

    def describe(self, record: Record) -> str:
        """A replay record described with the trace's symbols where they are known."""
        renamed = {
            key: self._name(value) if isinstance(value, str) and value.startswith("$") else value
            for key, value in record.items()
        }
        return describe(renamed)
