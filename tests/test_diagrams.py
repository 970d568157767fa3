"""The state diagrams are generated from the lifecycle tables, and the checked-in copies match."""

from __future__ import annotations

from pathlib import Path

import pytest

from sspi_model import diagrams
from sspi_model.lifecycle import Misuse, Refusal, Transition, refusal_status, verdicts
from sspi_model.profiles import DOCUMENTED

DIRECTORY = Path(__file__).resolve().parent.parent / "specs" / "diagrams"


@pytest.mark.parametrize("name", list(diagrams.DIAGRAMS))
def test_checked_in_diagrams_are_current(name: str) -> None:
    path = DIRECTORY / f"{name}.md"
    assert path.is_file(), f"{path} is missing: run `sspi-model diagram --write`"
    assert path.read_text(encoding="utf-8") == diagrams.markdown(name), (
        f"{path} is out of date with sspi_model/lifecycle.py: run `sspi-model diagram --write`"
    )


def test_stale_lists_missing_and_edited_files(tmp_path: Path) -> None:
    assert len(diagrams.stale(tmp_path)) == len(diagrams.DIAGRAMS)
    diagrams.write_markdown(tmp_path)
    assert diagrams.stale(tmp_path) == []
    (tmp_path / "credential.md").write_text("edited", encoding="utf-8")
    assert diagrams.stale(tmp_path) == [tmp_path / "credential.md"]


@pytest.mark.parametrize("name", list(diagrams.DIAGRAMS))
def test_every_table_entry_is_in_the_diagram(name: str) -> None:
    spec = diagrams.DIAGRAMS[name]
    text = diagrams.mermaid(name)
    dot = diagrams.dot(name)
    for (state, _call), entry in spec.table.items():
        assert state.value in text
        for _path, verdict in verdicts(entry):  # the entry, its guards' verdicts, continuations
            if isinstance(verdict, Transition):
                for rule in verdict.rules:
                    assert rule in text and rule in dot
                for target in verdict.next.values():
                    assert f"{state.value} --> {target.value} :" in text
            elif isinstance(verdict, Refusal):
                assert f"→ {refusal_status(verdict, DOCUMENTED).name}" in text
                assert f"note right of {state.value}" in text
            else:
                assert isinstance(verdict, Misuse)
                assert f"MISUSE {verdict.rule}" in text


def test_calls_are_named_by_their_c_names() -> None:
    text = diagrams.mermaid("async-context")
    assert "new --> fresh : SspiCreateAsyncContext ASY-002" in text
    assert "pending --> freed : SspiFreeAsyncContext ASY-051" in text
    assert "refused: SspiReinitAsyncContext → STATUS_INVALID_DEVICE_STATE (ASY-012)" in text
    context = diagrams.mermaid("security-context")
    assert "failed --> deleted : DeleteSecurityContext DEL-001 LIF-004" in context
    assert "deleted --> [*]" in context


def test_dot_output_is_one_graph_with_dashed_notes() -> None:
    dot = diagrams.dot("security-context")
    assert dot.startswith('digraph "security-context" {') and dot.endswith("}")
    assert dot.count("{") == dot.count("}")
    assert '"established notes" [shape=note, style=dashed' in dot
