"""The same scenarios under Hypothesis: every choice drawn from the test's data.

    test_overview = hypothesis_test(EXPLORABLE["overview"].run)

gives a test function Hypothesis runs with drawn choices; it fails with SanitizerError on any
finding (misuse, invariant break, leak). Choices shrink towards 0, the default schedule, so a
failing example shrinks to a schedule with few deviations. Where the explorer enumerates,
this samples: for scenarios too large to explore exhaustively.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from sspi_model.explore.engine import run_once
from sspi_model.explore.world import World
from sspi_model.sanitizer import SanitizerError


class _Drawing:
    def __init__(self, data: Any) -> None:
        self.data = data

    def choose(self, alternatives: int, world: World) -> int:
        choice: int = self.data.draw(st.integers(0, alternatives - 1), label="choice")
        return choice


def run_drawn(scenario: Callable[[World], Any], data: Any) -> World:
    """Run `scenario` once with choices drawn from Hypothesis `data`; raise on any finding."""
    world = World(_Drawing(data))
    outcome, findings = run_once(scenario, world)
    if outcome.error:
        raise AssertionError(f"the scenario failed: {outcome.error}")
    if findings:
        raise SanitizerError(tuple(findings))
    return world


def hypothesis_test(
    scenario: Callable[[World], Any], *, max_examples: int = 100
) -> Callable[..., None]:
    """A test function (pytest collects it) running `scenario` under drawn schedules."""

    @settings(max_examples=max_examples, deadline=None, database=None)
    @given(st.data())
    def test(data: Any) -> None:
        run_drawn(scenario, data)

    test.__name__ = f"test_{getattr(scenario, '__name__', 'scenario')}"
    return test
