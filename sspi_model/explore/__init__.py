"""Explore a scenario under every schedule the async layer allows, up to a bound.

    from sspi_model.explore import explore, EXPLORABLE
    report = explore(EXPLORABLE["overview"].run, bound=3, name="overview")
    report.findings   # ASY-052: how many schedules reach it, and the shortest one's choices

A scenario is a function of a World (sspi_model.explore.world). `record_schedule` runs one
schedule again with a Recorder, giving a trace that `sspi-model replay` accepts;
`hypothesis_test` turns a scenario into a Hypothesis test drawing the choices.
"""

from sspi_model.explore.demos import EXPLORABLE, Explorable
from sspi_model.explore.engine import (
    FoundIssue,
    NondeterministicScenario,
    Report,
    explore,
    record_schedule,
    replay_choices,
)
from sspi_model.explore.world import ChoosingScheduler, World

__all__ = [
    "EXPLORABLE",
    "ChoosingScheduler",
    "Explorable",
    "FoundIssue",
    "NondeterministicScenario",
    "Report",
    "World",
    "explore",
    "record_schedule",
    "replay_choices",
]
