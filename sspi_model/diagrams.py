"""State diagrams generated from the lifecycle tables (Mermaid stateDiagram-v2 and Graphviz dot).

One diagram per table: security contexts, credentials, async contexts. Edges are labelled with
the calls' C names, the outcome when one call leads to several states, and the rule IDs. Calls
a state refuses (a status, state unchanged) and misuse (undefined behaviour, SspiMisuse in
strict mode) go into one note per state, so the arrows show only what a call can change.
specs/diagrams/*.md hold the Mermaid text; tests/test_diagrams.py keeps them current.
"""

from __future__ import annotations

import textwrap
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import attrs

from sspi_model.lifecycle import (
    ASYNC_OPERATIONS,
    ASYNC_TABLE,
    CONTEXT_TABLE,
    CREDENTIAL_TABLE,
    Call,
    Refusal,
    Table,
    Transition,
    refusal_status,
    verdicts,
)
from sspi_model.profiles import DOCUMENTED


@attrs.frozen
class Spec:
    """What a diagram says beside its table: its title and a summary."""

    name: str
    title: str
    table: Table
    summary: str
    remarks: tuple[str, ...] = ()


DIAGRAMS: dict[str, Spec] = {
    spec.name: spec
    for spec in (
        Spec(
            "security-context",
            "Security context lifecycle",
            CONTEXT_TABLE,
            "CONTEXT_TABLE: a leg's outcome (decided by the package) picks the next state; "
            "'new' is the context before its first leg, with no handle yet.",
        ),
        Spec(
            "credential",
            "Credential handle lifecycle",
            CREDENTIAL_TABLE,
            "CREDENTIAL_TABLE: contexts hold references, so a freed credential may live on.",
        ),
        Spec(
            "async-context",
            "Async context (SspiAsyncContext) lifecycle",
            ASYNC_TABLE,
            "ASYNC_TABLE: one async call at a time; the scheduler completes it.",
            (
                "'Any async operation' is any of the five: "
                + ", ".join(call.value for call in ASYNC_OPERATIONS)
                + ".",
            ),
        ),
    )
}


@attrs.frozen
class Edge:
    source: str
    target: str
    label: str


@attrs.frozen
class Graph:
    spec: Spec
    states: tuple[str, ...]
    edges: tuple[Edge, ...]
    notes: Mapping[str, tuple[str, ...]]
    terminals: tuple[str, ...]


def _call_name(call: Call) -> str:
    return "completion (scheduler)" if call is Call.COMPLETE else call.value


def _calls_text(calls: Sequence[Any]) -> str:
    names = [_call_name(call) for call in calls if call not in ASYNC_OPERATIONS]
    if all(operation in calls for operation in ASYNC_OPERATIONS):
        # The five Sspi*Async operations always share their entries: name them once.
        names.insert(0, "any async operation")
    else:
        names = [_call_name(call) for call in calls]
    return " / ".join(names)


Groups = dict[tuple[str, str, str], tuple[list[Any], list[str]]]


def _merge(groups: Groups, key: tuple[str, str, str], call: Any, rules: Iterable[str]) -> None:
    """Entries with the same key become one edge (or note line) naming all their calls."""
    calls, ids = groups.setdefault(key, ([], []))
    if call not in calls:
        calls.append(call)
    ids.extend(rule for rule in rules if rule not in ids)


def _condition(path: str) -> str:
    """' when GUARD' for a verdict reached through guards (see lifecycle.verdicts)."""
    guards = [part[len("guard: ") :] for part in path.split(" / ") if part.startswith("guard: ")]
    return f" when {' and '.join(guards)}" if guards else ""


def _status_name(refusal: Refusal) -> str:
    status = refusal_status(refusal, DOCUMENTED)  # a str names a Profile field
    return str(status.name)


def graph(name: str) -> Graph:
    """The diagram `name` (a key of DIAGRAMS) as states, merged edges and notes."""
    spec = DIAGRAMS[name]
    moves: Groups = {}
    refusals: Groups = {}
    for (state, call), entry in spec.table.items():
        source = str(state.value)
        for path, verdict in verdicts(entry):
            when = _condition(path)
            if isinstance(verdict, Transition):
                targets: dict[str, list[Any]] = {}
                for outcome, next_state in verdict.next.items():
                    targets.setdefault(str(next_state.value), []).append(outcome)
                for target, outcomes in targets.items():
                    labels = [str(outcome.value) for outcome in outcomes if outcome is not None]
                    shown = (", ".join(labels) if len(verdict.next) > 1 else "") + when
                    rules = list(verdict.rules)
                    for outcome in outcomes:
                        rules += verdict.outcome_rules.get(outcome, ())
                    _merge(moves, (source, target, shown.strip()), call, rules)
            elif isinstance(verdict, Refusal):
                detail = _status_name(verdict) + when
                _merge(refusals, (source, "refused", detail), call, verdict.rules)
            else:
                _merge(refusals, (source, "misuse", verdict.rule + when), call, ())
    edges = []
    for (source, target, shown), (calls, rules) in moves.items():
        label = _calls_text(calls) + (f" ({shown})" if shown else "")
        edges.append(Edge(source, target, f"{label} {' '.join(sorted(rules))}"))
    notes: dict[str, list[str]] = {}
    for (source, kind, detail), (calls, rules) in refusals.items():
        text = f"{_calls_text(calls)} → {detail}" if kind == "refused" else _calls_text(calls)
        if kind == "refused":
            line = f"refused: {text} ({', '.join(sorted(rules))})"
        else:
            line = f"MISUSE {detail}: {text}"
        notes.setdefault(source, []).append(line)
    states = tuple(state.value for state in spec.table.states)
    moving = {edge.source for edge in edges if edge.target != edge.source}
    terminals = tuple(state for state in states if state not in moving)
    return Graph(spec, states, tuple(edges), {k: tuple(v) for k, v in notes.items()}, terminals)


def mermaid(name: str) -> str:
    """Mermaid stateDiagram-v2 text for the diagram `name`."""
    diagram = graph(name)
    spec = diagram.spec
    lines = ["stateDiagram-v2"]
    lines.append(f"    [*] --> {spec.table.initial.value}")
    lines += [f"    {e.source} --> {e.target} : {e.label}" for e in diagram.edges]
    lines += [f"    {state} --> [*]" for state in diagram.terminals]
    for state, notes in diagram.notes.items():
        lines.append(f"    note right of {state}")
        lines += [f"        {note}" for note in notes]
        lines.append("    end note")
    return "\n".join(lines)


def _quote(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def dot(name: str) -> str:
    """Graphviz dot text for the diagram `name`; notes are dashed note-shaped nodes."""
    diagram = graph(name)
    spec = diagram.spec
    lines = [
        f"digraph {_quote(name)} {{",
        f"    label={_quote(spec.title)}; labelloc=t; rankdir=LR;",
        "    node [shape=box, style=rounded, fontname=Helvetica];",
        "    edge [fontname=Helvetica, fontsize=10];",
        '    _start [shape=point, label=""];',
        '    _end [shape=doublecircle, label="", width=0.2];',
        f"    _start -> {_quote(spec.table.initial.value)};",
    ]
    lines += [f"    {_quote(s)};" for s in diagram.states]
    lines += [
        f"    {_quote(e.source)} -> {_quote(e.target)} [label={_quote(e.label)}];"
        for e in diagram.edges
    ]
    lines += [f"    {_quote(state)} -> _end;" for state in diagram.terminals]
    for state, notes in diagram.notes.items():
        node = _quote(f"{state} notes")
        color = "firebrick" if any(note.startswith("MISUSE") for note in notes) else "gray40"
        text = "".join(note.replace("\\", "\\\\").replace('"', '\\"') + "\\l" for note in notes)
        lines.append(f'    {node} [shape=note, style=dashed, color={color}, label="{text}"];')
        lines.append(f"    {_quote(state)} -> {node} [style=dashed, arrowhead=none];")
    lines.append("}")
    return "\n".join(lines)


_LEGEND = (
    "Edges name the C function, the outcome when one call can lead to several states, and the "
    "rule IDs (specs/rules*.toml). A note lists the calls the state refuses (the status "
    "returned; the state does not change) and the calls that are misuse there (undefined "
    "behaviour: strict mode raises SspiMisuse naming the rule)."
)


def markdown(name: str) -> str:
    """The content of specs/diagrams/NAME.md."""
    spec = DIAGRAMS[name]
    text = textwrap.fill(f"{spec.summary} {_LEGEND}", width=96)
    remarks = "".join(f"\n{textwrap.fill(remark, width=96)}\n" for remark in spec.remarks)
    return f"""# {spec.title}

<!-- Generated from sspi_model/lifecycle.py by `sspi-model diagram --write`. Do not edit. -->

{text}

```mermaid
{mermaid(name)}
```
{remarks}"""


def default_directory() -> Path | None:
    """specs/diagrams of the checkout this package runs from, if there is one."""
    specs = Path(__file__).resolve().parent.parent / "specs"
    return specs / "diagrams" if specs.is_dir() else None


def write_markdown(directory: Path, names: Iterable[str] | None = None) -> list[Path]:
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for name in names if names is not None else DIAGRAMS:
        path = directory / f"{name}.md"
        path.write_text(markdown(name), encoding="utf-8", newline="\n")
        written.append(path)
    return written


def stale(directory: Path) -> list[Path]:
    """The diagram files in `directory` that are missing or differ from the tables."""
    return [
        directory / f"{name}.md"
        for name in DIAGRAMS
        if not (directory / f"{name}.md").is_file()
        or (directory / f"{name}.md").read_text(encoding="utf-8") != markdown(name)
    ]
