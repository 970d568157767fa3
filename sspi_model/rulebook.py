"""The rulebook (specs/rules.toml): every behaviour's ID, statement and provenance."""

from __future__ import annotations

import functools
import sys
from pathlib import Path
from typing import Any

import attrs

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib  # type: ignore[import-not-found, unused-ignore]

PROVENANCES = ("doc", "header", "client", "decompiled", "probe", "model")
# sspi_model/data is a link to the repository's specs/ folder, so an installed package and a
# checkout read the same file.
SPECS = Path(__file__).resolve().parent / "data"


@attrs.frozen
class Rule:
    id: str
    statement: str
    provenance: str
    source: str
    note: str = ""

    @property
    def prefix(self) -> str:
        return self.id.split("-", 1)[0]


def _load(path: Path) -> list[Rule]:
    with path.open("rb") as handle:
        data: dict[str, Any] = tomllib.load(handle)
    return [Rule(**entry) for entry in data.get("rule", [])]


@functools.cache
def load_rules(specs: Path = SPECS) -> dict[str, Rule]:
    """Every rule of specs/rules.toml by ID, in the book's order."""
    rules: dict[str, Rule] = {}
    for rule in _load(specs / "rules.toml"):
        if rule.id in rules:
            raise ValueError(f"rule {rule.id} is defined twice")
        rules[rule.id] = rule
    return rules


def rule(rule_id: str) -> Rule:
    return load_rules()[rule_id]


# -- the documents beside the rules (CLI-007) ---------------------------------------------------
# The same files in a checkout (specs/, linked as sspi_model/data) and in an installed wheel
# (package data), so every path the docstrings, `--help` and the rules point to resolves.

# name -> path under the specs folder; `sspi-model docs` prints each with its absolute path.
DOCUMENTS = {
    "rules": "rules.toml",
    "lifecycle": "lifecycle.md",
    "async-lifecycle": "async-lifecycle.md",
    "trace-format": "trace-format.md",
    "trace-schema": "trace.schema.json",
    "diagrams": "diagrams",
    "divergences": "divergences",
    "sources": "sources",
}


def documents(specs: Path = SPECS) -> dict[str, Path]:
    """Each shipped document (or folder) and the files of the folders, by name."""
    # The folder itself first: a `specs/X` that a docstring or --help names is `<specs>/X`.
    found: dict[str, Path] = {"specs": specs}
    for name, relative in DOCUMENTS.items():
        path = specs / relative
        found[name] = path
        if path.is_dir():
            for child in sorted(path.iterdir()):
                found[f"{name}/{child.name}"] = child
    return found
