"""`sspi-model replay TRACE --backend B` judged as `check` judges (CLI-009).

Two things make a replay on a real library agree with a check of it:
- `compared_as_check(trace)`: the trace's records reduced to what the differential machine
  compares of a synchronous call (the status, whether a handle and a token came back, the kind
  of a query's payload). Expiry times, buffer sizes, payload contents and context attributes are
  dropped, so the replayer (which compares what the trace holds) does not compare them. The
  symbols that later records refer to (handles, allocations) stay.
- `known_divergence(trace, verdict, known)`: the first difference, named as check names it (the
  call, the situation of its handles, the aspect, the model's and the backend's outcome) and
  matched against the backend's known divergences. As in check, the first divergence ends the
  comparison: after it the two sides are in different states.

Only these two functions meet the trace code: the replayer itself is not changed.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import attrs

from sspi_model.constants import SecPkgAttr
from sspi_model.testing.divergence import Divergence, KnownDivergence, classify
from sspi_model.testing.suite import C_NAMES
from sspi_model.trace import Trace, Verdict

SYNC_CALLS = frozenset(C_NAMES.values())
_ACH, _FCH = "AcquireCredentialsHandleW", "FreeCredentialsHandle"
_ISC, _ASC = "InitializeSecurityContextW", "AcceptSecurityContext"
_DELETE, _QUERY = "DeleteSecurityContext", "QueryContextAttributesW"
# What check compares of an `out`: the handle and allocation symbols (bound, so later records
# resolve), whether the output buffers hold data, and the type of a query's payload.
_KEPT_OUT = ("credential", "context", "allocation")


def compared_as_check(trace: Trace) -> Trace:
    """The trace with each synchronous call's `out` reduced to what check compares."""
    records = tuple(_reduced(record) for record in trace.records)
    return attrs.evolve(trace, records=records)


def _reduced(record: dict[str, Any]) -> dict[str, Any]:
    out = record.get("out")
    if record.get("call") not in SYNC_CALLS or not isinstance(out, dict):
        return record
    kept: dict[str, Any] = {key: out[key] for key in _KEPT_OUT if key in out}
    if isinstance(out.get("output"), list):
        kept["output"] = [
            {key: buffer[key] for key in ("type", "data", "allocation") if key in buffer}
            for buffer in out["output"]
            if isinstance(buffer, dict)
        ]
    attribute = out.get("attribute")
    if isinstance(attribute, dict):
        kept["attribute"] = {k: attribute[k] for k in ("type", "allocation") if k in attribute}
    return {**record, "out": kept}


@attrs.define
class _Symbols:
    """What check's situations say of each handle, followed through the trace."""

    kind: dict[str, str] = attrs.field(factory=dict)  # "$ctx1" -> "cred" or "ctx"
    state: dict[str, str] = attrs.field(factory=dict)  # "live", "client-partial", "retired"
    role: dict[str, str] = attrs.field(factory=dict)  # "$ctx1" -> "client" or "server"

    def follow(self, record: dict[str, Any]) -> None:
        call, status, out = record.get("call"), str(record.get("status", "")), record.get("out")
        args = record.get("args") or {}
        made = (out or {}).get("credential") or (out or {}).get("context")
        ok = status in ("SEC_E_OK", "SEC_I_CONTINUE_NEEDED", "SEC_I_COMPLETE_NEEDED")
        if call == _ACH and isinstance(made, str):
            self.kind[made], self.state[made] = "cred", "live"
        elif call in (_ISC, _ASC):
            context = args.get("context") or made
            if isinstance(context, str):
                self.kind[context] = "ctx"
                self.role.setdefault(context, "client" if call == _ISC else "server")
                role = self.role[context]
                if status == "SEC_I_CONTINUE_NEEDED":
                    self.state[context] = f"{role}-partial"
                elif ok:
                    self.state[context] = f"{role}-established"
                elif args.get("context"):
                    self.state[context] = f"{role}-failed"
        elif call in (_DELETE, _FCH) and status == "SEC_E_OK":
            target = args.get("context" if call == _DELETE else "credential")
            if isinstance(target, str):
                self.state[target] = "retired"

    def handle(self, name: str, value: Any, wanted: str) -> str:
        if value is None:
            return "null"
        if not isinstance(value, str) or value not in self.kind:
            return "never-issued"
        if self.kind[value] != wanted:
            return "wrong-kind"
        return self.state.get(value, "live")

    def situation(self, record: dict[str, Any]) -> str:
        call, args = record.get("call"), record.get("args") or {}
        if call == _ACH:
            use, package = args.get("credential_use"), args.get("package")
            if package != "NTLM" or use not in (1, 2):
                return f"package={package},use={use:#x}" if isinstance(use, int) else ""
            auth = "explicit" if args.get("auth_data") else "default-logon"
            return f"use={'client' if use == 2 else 'server'},auth={auth}"
        if call in (_DELETE, _QUERY, _FCH):
            key = "credential" if call == _FCH else "context"
            value = args.get(key)
            if value is None:
                return "handle=NULL"
            situation = f"{key}={self.handle(key, value, 'cred' if key == 'credential' else 'ctx')}"
            attribute = args.get("attribute")
            if call == _QUERY and isinstance(attribute, int):
                situation += f",attribute={_attribute_name(attribute)}"
            return situation
        if call in (_ISC, _ASC):
            parts = [
                f"{key}={self.handle(key, args[key], 'cred' if key == 'credential' else 'ctx')}"
                for key in ("credential", "context")
                if args.get(key) is not None
            ]
            source = args.get("input")
            if source is None:
                kind = "none"
            elif isinstance(source, dict) and "from" in source:
                kind = "server-token" if call == _ISC else "client-token"
            else:
                kind = "garbage"
            return ",".join([*parts, f"input={kind}"])
        return ""


_RAISED = "the call raised BackendFailure: "
_RAISED_ANY = "the call raised "


def known_divergence(
    trace: Trace, verdict: Verdict, known: Iterable[KnownDivergence]
) -> Divergence | None:
    """The verdict's first difference as check would name it, if it is a known divergence."""
    if verdict.ok or verdict.unsupported or verdict.line not in trace.lines:
        return None
    index = trace.lines.index(verdict.line)
    record = trace.records[index]
    if record.get("call") not in SYNC_CALLS:
        return None
    symbols = _Symbols()
    for earlier in trace.records[:index]:
        symbols.follow(earlier)
    what = verdict.what
    if what.endswith("status differs"):
        expected, observed = verdict.found.split(" ")[0], verdict.expected.split(" ")[0]
    elif _RAISED in what:
        # str(BackendFailure) is "<outcome>: <detail>", e.g. "CRASH:SIGSEGV: ..." or "HANG: ..."
        expected = str(record.get("status", ""))
        observed = what.split(_RAISED, 1)[1].split(": ", 1)[0]
    elif _RAISED_ANY in what:  # CLI-001: any other exception is the outcome EXCEPTION:...
        expected = str(record.get("status", ""))
        observed = "EXCEPTION:" + what.split(_RAISED_ANY, 1)[1]
    else:
        return None
    return _match(record, symbols, expected, observed, known)


def _attribute_name(value: int) -> str:
    try:
        return SecPkgAttr(value).name
    except ValueError:
        return hex(value)


def _match(
    record: dict[str, Any],
    symbols: _Symbols,
    expected: str,
    observed: str,
    known: Iterable[KnownDivergence],
) -> Divergence | None:
    situation = symbols.situation(record)
    found = classify(
        Divergence(str(record.get("call")), "", situation, "status", expected, observed), known
    )
    return found if found.known is not None else None
