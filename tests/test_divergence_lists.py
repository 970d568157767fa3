"""specs/divergences/*.toml: every finding of each recorded discovery run is classified.

Data checks only (no library needed): each entry has a class, an undecided one names its open
question, its rules exist, and every finding of the recorded discovery run
(specs/divergences/<backend>-discovery.json) matches an entry.
"""

from __future__ import annotations

import json
import sys
from typing import Any

import pytest

from sspi_model.rulebook import load_rules
from sspi_model.testing.divergence import DIVERGENCES, Divergence, classify, load_known

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

# The library differs from Windows (the explanation cites the documentation the model's rule
# rests on), the model was fixed, the model or the machine decided, or Windows is not known.
COMMON = {"model-fixed", "model-decision", "undecided"}
CLASSES = {"wine": COMMON | {"wine"}, "sspi-rs": COMMON | {"sspi-rs"}}


def _entries(backend: str) -> list[dict[str, Any]]:
    entries: list[dict[str, Any]] = tomllib.loads(
        (DIVERGENCES / f"{backend}.toml").read_text()
    )["divergence"]
    return entries


ENTRIES = [(backend, entry) for backend in CLASSES for entry in _entries(backend)]


@pytest.mark.parametrize("backend, entry", ENTRIES, ids=lambda value: getattr(value, "get",
                         lambda _key: value)("id"))
def test_every_entry_is_classified(backend: str, entry: dict[str, Any]) -> None:
    assert entry.get("class") in CLASSES[backend]
    if entry["class"] == "undecided":
        assert str(entry.get("question", "")).endswith("?")
    assert set(entry.get("rules", ())) <= set(load_rules())


@pytest.mark.parametrize("backend", sorted(CLASSES))
def test_every_discovery_finding_is_a_known_divergence(backend: str) -> None:
    report = json.loads((DIVERGENCES / f"{backend}-discovery.json").read_text())
    findings = report["backends"][0]["divergences"]
    assert findings, "the discovery run found something"
    known = load_known(backend)
    unmatched = []
    for finding in findings:
        divergence = Divergence(
            finding["call"], finding["args"], finding["situation"], finding["aspect"],
            finding["expected"], finding["observed"],
        )
        if classify(divergence, known).known is None:
            unmatched.append(f"{divergence.call} [{divergence.situation}] {divergence.observed}")
    assert not unmatched, unmatched
