"""The replayer's verdicts are the reference replay's, kept as data.

When trace/fast.py and the old trace/replay.py became one streaming replayer, the old reference
replay judged every trace of `corpus()` (below) and its verdicts were stored in
tests/data/trace_reference_verdicts.json.gz; this test holds the replayer to them, so no
verdict changes unnoticed. A deliberate change of verdicts regenerates the file:
`python tests/test_trace_reference.py --write` (and says why in the commit).
"""

from __future__ import annotations

import gzip
import json
import sys
from pathlib import Path
from typing import Any

from test_trace_streaming import CORRUPTIONS, _edit, _set, cycles

from sspi_model.trace import parse_lines, validate

DATA = Path(__file__).resolve().parent / "data" / "trace_reference_verdicts.json.gz"


def corpus() -> list[list[str]]:
    """Two recorded cycles corrupted every way, lines removed, swapped and added, headers."""
    lines = cycles(2)
    traces = [
        _edit(lines, index, change)
        for _name, change in sorted(CORRUPTIONS.items())
        for index in range(1, len(lines))
    ]
    for index in range(1, len(lines)):
        traces.append([*lines[:index], *lines[index + 1 :]])
        if index + 1 < len(lines):
            traces.append([*lines[:index], lines[index + 1], lines[index], *lines[index + 2 :]])
    traces += [
        [*lines, lines[-1]],
        [*lines[:5], "{not json", *lines[5:]],
        [lines[0], *lines],
        lines[1:],
        lines[:1],
        [],
    ]
    one = cycles(1)
    for change in (
        _set("profile", "no-such-profile"),
        _set("profile", "ksecdd"),
        _set("version", 2),
    ):
        traces.append(_edit(one, 0, change))
    return traces


def verdicts() -> list[dict[str, Any]]:
    return [validate(parse_lines(trace)).to_json() for trace in corpus()]


def test_every_verdict_is_the_reference_replays() -> None:
    with gzip.open(DATA, "rt", encoding="utf-8") as handle:
        expected = [json.loads(line) for line in handle]
    found = verdicts()
    assert len(found) == len(expected)
    changed = [index for index, (a, b) in enumerate(zip(found, expected, strict=True)) if a != b]
    assert not changed, f"{len(changed)} verdicts changed; the first: {found[changed[0]]}"
    assert sum(not verdict["ok"] for verdict in expected) > 500  # the corpus finds failures


if __name__ == "__main__" and sys.argv[1:] == ["--write"]:
    with gzip.open(DATA, "wt", encoding="utf-8") as handle:
        for verdict in verdicts():
            handle.write(json.dumps(verdict, sort_keys=True) + "\n")
