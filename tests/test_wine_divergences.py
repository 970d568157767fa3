"""specs/divergences/wine.toml: every finding of the Wine discovery run is classified.

Data checks only (no Wine needed): each entry has a class, an undecided one names its open
question, its rules exist, and every finding of the recorded discovery run
(specs/divergences/wine-discovery.json) matches an entry.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from sspi_model.rulebook import load_rules
from sspi_model.testing.divergence import DIVERGENCES, Divergence, classify, load_known

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

CLASSES = {"wine", "model-fixed", "model-decision", "undecided"}
ENTRIES = tomllib.loads((DIVERGENCES / "wine.toml").read_text())["divergence"]
DISCOVERY = Path(DIVERGENCES / "wine-discovery.json")


@pytest.mark.parametrize("entry", ENTRIES, ids=lambda entry: entry["id"])
def test_every_entry_is_classified(entry: dict[str, object]) -> None:
    assert entry.get("class") in CLASSES
    if entry["class"] == "undecided":
        assert str(entry.get("question", "")).endswith("?")
    assert set(entry.get("rules", ())) <= set(load_rules())  # type: ignore[call-overload]


def test_every_discovery_finding_is_a_known_divergence() -> None:
    report = json.loads(DISCOVERY.read_text())
    findings = report["backends"][0]["divergences"]
    assert findings, "the discovery run found something"
    known = load_known("wine")
    unmatched = []
    for finding in findings:
        divergence = Divergence(
            finding["call"], finding["args"], finding["situation"], finding["aspect"],
            finding["expected"], finding["observed"],
        )
        if classify(divergence, known).known is None:
            unmatched.append(f"{divergence.call} [{divergence.situation}] {divergence.observed}")
    assert not unmatched, unmatched
