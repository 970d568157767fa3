"""The README's Python examples run as printed (a reader copies them first)."""

from __future__ import annotations

import re
from pathlib import Path

README = Path(__file__).resolve().parent.parent / "README.md"


def test_the_readme_examples_run() -> None:
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(encoding="utf-8"), re.S)
    assert len(blocks) >= 2
    namespace: dict[str, object] = {}
    for index, block in enumerate(blocks[:2]):  # the sync tour, then the async one on it
        exec(compile(block, f"README.md python block {index}", "exec"), namespace)
