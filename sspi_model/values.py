"""The base of the model's frozen attrs values: one `__repr__` for all of them.

attrs writes and compiles a `__repr__` for every class it builds, about a third of what a class
costs to define; `import sspi_model` defines some sixty (issue 9). A value class is declared
`@attrs.frozen(repr=False)` and derives from Value, whose repr prints what attrs' would:
`Name(field=value, ...)` (valid Python, API-008), each field as its `repr` option says."""

from __future__ import annotations

import threading
from typing import Any

import attrs

_reprs_running = threading.local()  # ids of the values being printed, per thread


class Value:
    __slots__ = ()

    def __repr__(self) -> str:
        running: set[int] | None = getattr(_reprs_running, "ids", None)
        if running is None:
            running = _reprs_running.ids = set()
        if id(self) in running:
            return "..."  # a value inside itself (through a list or dict), as attrs prints it
        running.add(id(self))
        try:
            fields = []
            for field in type(self).__attrs_attrs__:  # type: ignore[attr-defined]
                if field.repr is False:
                    continue
                shown: Any = getattr(self, field.name, attrs.NOTHING)
                text = repr(shown) if field.repr is True else field.repr(shown)
                fields.append(f"{field.name}={text}")
            name = type(self).__qualname__.rsplit(">.", 1)[-1]
            return f"{name}({', '.join(fields)})"
        finally:
            running.discard(id(self))
