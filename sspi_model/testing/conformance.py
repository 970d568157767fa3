"""The per-rule conformance report: for one backend, every rule of specs/rules.toml with
pass, fail (with reproducer), not applicable, or not exercised.

The differential machine credits each compared step to the rules the model named for its
result (Sspi.last_rules): a step that agreed passes them, a step that diverged fails them.
"""

from __future__ import annotations

import json
from typing import Any

import attrs

from sspi_model.backends.base import Capabilities
from sspi_model.rulebook import Rule, load_rules
from sspi_model.testing.divergence import Divergence

PASS, FAIL, NOT_APPLICABLE, NOT_EXERCISED = "pass", "fail", "not applicable", "not exercised"
FAIL_KNOWN = "fail (known)"  # CLI-010: every divergence of the rule is a known one


@attrs.define
class RuleTally:
    """Filled by the differential machine while it runs."""

    passed: dict[str, int] = attrs.field(factory=dict)
    failed: dict[str, Divergence] = attrs.field(factory=dict)

    def agree(self, rules: tuple[str, ...]) -> None:
        for rule in rules:
            self.passed[rule] = self.passed.get(rule, 0) + 1

    def disagree(self, rules: tuple[str, ...], divergence: Divergence) -> None:
        for rule in rules:
            best = self.failed.get(rule)
            # A new divergence outranks a known one (CLI-010), then the shortest is kept.
            rank = (divergence.known is not None, len(divergence.reproducer))
            if best is None or rank < (best.known is not None, len(best.reproducer)):
                self.failed[rule] = divergence


def applicable(rule: Rule, capabilities: Capabilities, profile: str) -> str:
    """Why a rule does not apply to this backend, or "" when it does."""
    if rule.prefix == "ASY" and not capabilities.async_api:
        return "the backend has no asynchronous API"
    package_of = {"SCH": "Schannel", "NEG": "Negotiate", "NTLM": "NTLM"}
    package = package_of.get(rule.prefix)
    if package is not None and package not in capabilities.packages:
        return f"the backend has no {package} package"
    if rule.id == "DEL-004" and profile != "strict-delete":
        return "a rule of profile 'strict-delete'"
    return ""


@attrs.frozen
class RuleVerdict:
    rule: Rule
    verdict: str
    count: int = 0
    reason: str = ""
    divergence: Divergence | None = None


def verdicts(tally: RuleTally, capabilities: Capabilities, profile: str) -> list[RuleVerdict]:
    out = []
    for rule in load_rules().values():
        reason = applicable(rule, capabilities, profile)
        if rule.id in tally.failed:
            divergence = tally.failed[rule.id]
            verdict = FAIL if divergence.known is None else FAIL_KNOWN
            out.append(RuleVerdict(rule, verdict, divergence=divergence))
        elif rule.id in tally.passed:
            out.append(RuleVerdict(rule, PASS, tally.passed[rule.id]))
        elif reason:
            out.append(RuleVerdict(rule, NOT_APPLICABLE, reason=reason))
        else:
            out.append(RuleVerdict(rule, NOT_EXERCISED))
    return out


def render(backend: str, rows: list[RuleVerdict], fmt: str) -> str:
    if fmt == "json":
        return json.dumps({"backend": backend, "rules": [_json(row) for row in rows]}, indent=2)
    counts = {kind: sum(row.verdict == kind for row in rows) for kind in
              (PASS, FAIL, FAIL_KNOWN, NOT_APPLICABLE, NOT_EXERCISED)}
    summary = ", ".join(f"{n} {kind}" for kind, n in counts.items())
    if fmt == "md":
        lines = [f"# Conformance of {backend}, rule by rule", "", summary, "",
                 "| rule | verdict | provenance | detail |", "|---|---|---|---|"]
        for row in rows:
            lines.append(f"| {row.rule.id} | {row.verdict} | {row.rule.provenance} | "
                         f"{_detail(row)} |")
        return "\n".join(lines)
    lines = [f"{backend}: {summary}"]
    for row in rows:
        lines.append(f"  {row.rule.id:<9} {row.verdict:<14} {_detail(row)}")
        if row.divergence is not None:
            lines.extend(f"      | {step}" for step in row.divergence.reproducer)
    return "\n".join(lines)


def _detail(row: RuleVerdict) -> str:
    if row.divergence is not None:
        d = row.divergence
        known = f" (known {d.known})" if d.known else ""
        return f"{d.call}: expected {d.expected}, observed {d.observed}{known}"
    if row.verdict == PASS:
        return f"{row.count} agreeing step(s)"
    return row.reason


def _json(row: RuleVerdict) -> dict[str, Any]:
    return {
        "id": row.rule.id,
        "verdict": row.verdict,
        "provenance": row.rule.provenance,
        "agreeing_steps": row.count,
        "reason": row.reason,
        "divergence": row.divergence.to_json() if row.divergence is not None else None,
    }
