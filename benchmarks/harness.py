"""Measuring ratios on a noisy machine: A and B alternate, round by round, in one process.

Absolute times on a shared machine move by tens of percent from one second to the next, so no
headline figure is an absolute time. Each round times a batch of A and then a batch of B (the
order flips every round, so neither always runs first), and the round's figure is A/B. The
reported value is the median over the rounds, with the lowest and highest round as its spread.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

# A batch: does its own untimed set-up, then returns the seconds its timed part took.
Batch = Callable[[], float]


@dataclass
class Ratio:
    """Per-round A/B figures and the per-operation times behind them."""

    rounds: list[float] = field(default_factory=list)
    a_times: list[float] = field(default_factory=list)  # seconds per A operation, per round
    b_times: list[float] = field(default_factory=list)

    @property
    def median(self) -> float:
        return statistics.median(self.rounds)

    @property
    def low(self) -> float:
        return min(self.rounds)

    @property
    def high(self) -> float:
        return max(self.rounds)

    @property
    def a(self) -> float:
        return statistics.median(self.a_times)

    @property
    def b(self) -> float:
        return statistics.median(self.b_times)

    def spread(self, digits: int = 2) -> str:
        low, high = f"{self.low:.{digits}f}", f"{self.high:.{digits}f}"
        return f"median of {len(self.rounds)} rounds; spread {low}-{high}"


def timed(body: Callable[[], Any]) -> float:
    """Seconds `body()` takes (the cyclic GC stays on: its cost is part of what is measured)."""
    start = time.perf_counter()
    body()
    return time.perf_counter() - start


def alternate(
    a: Batch,
    b: Batch,
    *,
    rounds: int,
    a_ops: int,
    b_ops: int,
    invert: bool = False,
) -> Ratio:
    """Run `rounds` rounds of A and B (alternating which goes first); each figure is
    (A per op) / (B per op), or B/A with `invert` (a speed-up of A over B)."""
    ratio = Ratio()
    for index in range(rounds):
        if index % 2 == 0:
            seconds_a = a()
            seconds_b = b()
        else:
            seconds_b = b()
            seconds_a = a()
        per_a, per_b = seconds_a / a_ops, seconds_b / b_ops
        ratio.a_times.append(per_a)
        ratio.b_times.append(per_b)
        ratio.rounds.append(per_b / per_a if invert else per_a / per_b)
    return ratio


@dataclass
class Row:
    """One line of benchmarks/results.json."""

    name: str
    value: float | None
    unit: str
    goal: str  # e.g. ">= 20" or "<= 5", in `unit`
    note: str

    def passed(self) -> bool | None:
        if self.value is None:
            return None
        op, _, number = self.goal.partition(" ")
        target = float(number)
        return self.value >= target if op == ">=" else self.value <= target

    def as_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "value": self.value,
            "unit": self.unit,
            "goal": self.goal,
            "note": self.note,
        }


def fmt_time(seconds: float) -> str:
    if seconds >= 1:
        return f"{seconds:.2f} s"
    if seconds >= 1e-3:
        return f"{seconds * 1e3:.2f} ms"
    if seconds >= 1e-6:
        return f"{seconds * 1e6:.2f} us"
    return f"{seconds * 1e9:.0f} ns"


def table(rows: list[Row]) -> str:
    """The results as a Markdown table (also what run.py prints)."""
    lines = [
        "| benchmark | value | goal | result |",
        "|---|---|---|---|",
    ]
    for row in rows:
        value = "n/a" if row.value is None else f"{row.value:g} {row.unit}"
        verdict = {True: "pass", False: "FAIL", None: "not measured"}[row.passed()]
        lines.append(f"| {row.name} | {value} | {row.goal} {row.unit} | {verdict} |")
    return "\n".join(lines)
