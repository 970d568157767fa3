"""One benchmarks/run.py row measured on two checkouts, alternating, in one run.

    python benchmarks/versus.py /tmp/oldcore --row async_delete_cost_ratio --pairs 4

Each pair runs the row once on the other checkout and once on this one (which goes first
alternates), each in a fresh process that imports that checkout's benchmarks/run.py and
sspi_model; nothing is written (results.json is left alone). Both checkouts' rows must exist
under the same function name.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
_CHILD = """
import json, sys
root = sys.argv[1]
sys.path[:0] = [root + "/benchmarks", root]
import run
rows = getattr(run, sys.argv[2])()
print(json.dumps([[row.name, row.value, row.note] for row in rows]))
"""


def _row(root: Path, function: str) -> list[list[object]]:
    environment = dict(os.environ, PYTHONPATH=str(root))
    with tempfile.TemporaryDirectory() as scratch:
        done = subprocess.run(
            [sys.executable, "-c", _CHILD, str(root), function],
            cwd=scratch,
            env=environment,
            capture_output=True,
            text=True,
            check=True,
        )
    return json.loads(done.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("other", type=Path, help="the other checkout (e.g. a git worktree)")
    parser.add_argument("--row", default="async_delete_cost_ratio", help="run.py's function")
    parser.add_argument("--pairs", type=int, default=4)
    options = parser.parse_args()
    roots = {"other": options.other.resolve(), "this": HERE.parent}
    # Per side, per row name: a function that writes two rows (explorer) gives two medians.
    values: dict[str, dict[str, list[float]]] = {"other": {}, "this": {}}
    for pair in range(options.pairs):
        order = ("other", "this") if pair % 2 == 0 else ("this", "other")
        for side in order:
            for name, value, note in _row(roots[side], options.row):
                print(f"pair {pair} {side:5} {name} {value}  ({note})", flush=True)
                values[side].setdefault(str(name), []).append(float(value))  # type: ignore[arg-type]
    for side, rows in values.items():
        for name, found in rows.items():
            median = statistics.median(found)
            print(f"{side:5} {roots[side]}: {name} median {median:.2f} of {found}")


if __name__ == "__main__":
    main()
