"""The rulebook is well formed, every rule has a test, and code and tests name only known rules.

Loads specs/rules.toml. Test coverage is found by reading
the test sources for `pytest.mark.rule(...)` markers, so a rule ID must be spelled literally.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path
from typing import Any

import pytest

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

ROOT = Path(__file__).resolve().parent.parent
SPECS = ROOT / "specs"
TESTS = ROOT / "tests"
PACKAGE = ROOT / "sspi_model"

PROVENANCES = frozenset({"doc", "header", "client", "decompiled", "probe", "model"})
REQUIRED = ("id", "statement", "provenance", "source")
OPTIONAL = ("note",)
ID_PATTERN = re.compile(r"\b[A-Z]{2,5}-[0-9]{3}\b")
MARKER_PATTERN = re.compile(r"pytest\.mark\.rule\(([^)]*)\)")
ALIAS_PATTERN = re.compile(r"^(\w+)\s*=\s*pytest\.mark\.rule\s*$", re.M)
# Tokens in the code that match ID_PATTERN but are not rule IDs.
NOT_RULE_IDS = frozenset({"SHA-256"})


def rulebook_files() -> list[Path]:
    return [SPECS / "rules.toml"]


def load_rules() -> list[tuple[Path, dict[str, Any]]]:
    rules = []
    for path in rulebook_files():
        with path.open("rb") as handle:
            data = tomllib.load(handle)
        rules.extend((path, rule) for rule in data.get("rule", []))
    return rules


def rule_ids() -> set[str]:
    return {str(rule.get("id")) for _path, rule in load_rules()}


def marked_ids() -> dict[str, set[str]]:
    """Rule ID -> test files whose `pytest.mark.rule(...)` markers name it.

    A module may alias the marker (`rule = pytest.mark.rule`, then `@rule("ABC-001")`); calls
    through such an alias count too.
    """
    found: dict[str, set[str]] = {}
    for path in sorted(TESTS.rglob("*.py")):
        text = path.read_text(encoding="utf-8")
        aliases = ALIAS_PATTERN.findall(text)
        patterns = [MARKER_PATTERN]
        patterns += [re.compile(rf"@{re.escape(alias)}\(([^)]*)\)") for alias in aliases]
        for pattern in patterns:
            for match in pattern.finditer(text):
                for rule_id in re.findall(r"[\"']([^\"']+)[\"']", match.group(1)):
                    found.setdefault(rule_id, set()).add(str(path.relative_to(ROOT)))
    return found


def code_references() -> dict[str, set[str]]:
    """Rule IDs written anywhere in sspi_model/ (comments, strings, docstrings) -> files."""
    found: dict[str, set[str]] = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        for rule_id in ID_PATTERN.findall(path.read_text(encoding="utf-8")):
            if rule_id not in NOT_RULE_IDS:
                found.setdefault(rule_id, set()).add(str(path.relative_to(ROOT)))
    return found


def test_rulebook_schema() -> None:
    problems = []
    seen: dict[str, Path] = {}
    for path, rule in load_rules():
        where = f"{path.name} {rule.get('id', '<no id>')}"
        for key in REQUIRED:
            value = rule.get(key)
            if not isinstance(value, str) or not value.strip():
                problems.append(f"{where}: '{key}' missing or empty")
        unknown = set(rule) - set(REQUIRED) - set(OPTIONAL)
        if unknown:
            problems.append(f"{where}: unknown keys {sorted(unknown)}")
        if "note" in rule and (not isinstance(rule["note"], str) or not rule["note"].strip()):
            problems.append(f"{where}: 'note' is empty")
        rule_id = rule.get("id")
        if isinstance(rule_id, str):
            if not re.fullmatch(r"[A-Z]{2,5}-[0-9]{3}", rule_id):
                problems.append(f"{where}: id does not look like ABC-123")
            if rule_id in seen:
                problems.append(f"{where}: duplicate id (first in {seen[rule_id].name})")
            seen.setdefault(rule_id, path)
        if rule.get("provenance") not in PROVENANCES:
            problems.append(
                f"{where}: provenance {rule.get('provenance')!r} not in {sorted(PROVENANCES)}"
            )
        source = rule.get("source")
        is_doc = rule.get("provenance") == "doc"
        if is_doc and isinstance(source, str) and not source.startswith("https://"):
            problems.append(f"{where}: a 'doc' rule's source must be a URL")
    assert not problems, "rulebook schema problems:\n" + "\n".join(problems)


def test_rulebook_has_at_least_sixty_rules() -> None:
    rules = load_rules()
    main = [rule for path, rule in rules if path.name == "rules.toml"]
    assert len(main) >= 60, f"specs/rules.toml has {len(main)} rules, fewer than 60"


def test_every_rule_has_a_test_and_every_marker_names_a_rule() -> None:
    known = rule_ids()
    marked = marked_ids()
    untested = sorted(known - set(marked))
    unknown = sorted(set(marked) - known)
    message = []
    if untested:
        message.append(f"{len(untested)} rules have no test naming them: {', '.join(untested)}")
    for rule_id in unknown:
        message.append(f"tests name unknown rule {rule_id}: {', '.join(sorted(marked[rule_id]))}")
    assert not message, "\n".join(message)


def test_code_references_only_known_rules() -> None:
    known = rule_ids()
    missing = {
        rule_id: files for rule_id, files in code_references().items() if rule_id not in known
    }
    assert not missing, "code references rules missing from the rulebook:\n" + "\n".join(
        f"{rule_id}: {', '.join(sorted(files))}" for rule_id, files in sorted(missing.items())
    )


@pytest.mark.parametrize("path", rulebook_files(), ids=lambda p: p.name)
def test_rulebook_files_parse(path: Path) -> None:
    with path.open("rb") as handle:
        data = tomllib.load(handle)
    assert set(data) <= {"rule"}, (
        f"{path.name}: unexpected top-level keys {sorted(set(data) - {'rule'})}"
    )
    assert data.get("rule"), f"{path.name} defines no rules"
