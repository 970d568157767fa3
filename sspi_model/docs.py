"""The documents shipped with the package (CLI-007): the same files in a checkout (specs/,
linked as sspi_model/data) and in an installed wheel (package data), so every path the
docstrings, `--help` and the rules point to resolves."""

from __future__ import annotations

from pathlib import Path

from sspi_model.rulebook import SPECS

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
