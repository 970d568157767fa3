"""The base of the model's frozen attrs values: one `__repr__` for all of them.

attrs writes and compiles a `__repr__` for every class it builds, about a third of what a class
costs to define; `import sspi_model` defines some sixty (issue 9). A value class is declared
`@attrs.frozen(repr=False)` and derives from Value, whose repr prints what attrs' would:
`Name(field=value, ...)` (valid Python, API-008), each field as its `repr` option says.

A class declared `@attrs.frozen(repr=False, eq=False)` also leaves `__eq__` and `__hash__` to
Value: equal when of the same class with equal fields, as attrs compares them. attrs compiles
those for every class it defines; Value compiles the same code for a class on the first
comparison or hash of one of its values, so classes never compared cost nothing and compared
ones run at attrs' speed. Classes whose fields compare by a key of their own (`eq=<callable>`,
events.py) and SecHandle (`cache_hash`) keep attrs' generated ones."""

from __future__ import annotations

import threading
from collections.abc import Callable
from operator import attrgetter
from typing import Any

import attrs

_reprs_running = threading.local()  # ids of the values being printed, per thread
# Per class, worked out on its first repr: a %-template of its fields, a getter of their values
# (a tuple, read in C), and the fields' own formatters where a field names one (else None).
_Layout = tuple[str, Callable[[Any], tuple[Any, ...]], tuple[Callable[[Any], str], ...] | None]
_layouts: dict[type, _Layout] = {}


def _layout(cls: type) -> _Layout:
    fields = [field for field in attrs.fields(cls) if field.repr is not False]
    shown = ", ".join(f"{field.name}=%{'r' if field.repr is True else 's'}" for field in fields)
    template = f"{cls.__qualname__.rsplit('>.', 1)[-1]}({shown})"
    names = [field.name for field in fields]
    many = attrgetter(*names) if len(names) > 1 else None
    getter = many if many is not None else lambda value: tuple(getattr(value, n) for n in names)
    custom = any(field.repr is not True for field in fields)
    formatters = tuple(str if f.repr is True else f.repr for f in fields) if custom else None
    layout = _layouts[cls] = (template, getter, formatters)
    return layout


def _comparison(cls: type) -> Callable[[Any, Any], Any]:
    """Give `cls` its own __eq__ and __hash__ over its compared fields, compiled on the first
    comparison of one of its values (the code attrs would have compiled at class creation, for
    every class, compared or not); returns the __eq__."""
    fields = attrs.fields(cls)
    if any(field.eq_key is not None for field in fields):
        raise TypeError(f"{cls.__name__} compares a field by a key: declare it with attrs' eq")
    mine = "".join(f"self.{field.name}, " for field in fields if field.eq)
    theirs = mine.replace("self.", "other.")
    source = (
        "def __eq__(self, other):\n"
        "    if other.__class__ is not self.__class__:\n"
        "        return NotImplemented\n"
        "    if self.__class__ is not cls:\n"  # a subclass inheriting these: its own fields
        "        return comparison(self.__class__)(self, other)\n"
        f"    return ({mine}) == ({theirs})\n"
        "def __hash__(self):\n"
        "    if self.__class__ is not cls:\n"
        "        comparison(self.__class__)\n"
        "        return hash(self)\n"
        f"    return hash((cls, {mine}))\n"
    )
    namespace: dict[str, Any] = {"cls": cls, "comparison": _comparison}
    exec(compile(source, f"<{cls.__qualname__} comparison>", "exec"), namespace)
    type.__setattr__(cls, "__eq__", namespace["__eq__"])
    type.__setattr__(cls, "__hash__", namespace["__hash__"])
    eq: Callable[[Any, Any], Any] = namespace["__eq__"]
    return eq


class Value:
    __slots__ = ()

    def __eq__(self, other: object) -> Any:
        # The first comparison of a class: it gets its own methods, which answer this one too.
        # Their answer is passed on as it is: NotImplemented for a value of another class lets
        # Python try the other side and then fall back to identity (bool(NotImplemented) is True).
        return _comparison(self.__class__)(self, other)

    def __hash__(self) -> int:
        _comparison(self.__class__)
        return hash(self)

    def __repr__(self) -> str:
        running: set[int] | None = getattr(_reprs_running, "ids", None)
        if running is None:
            running = _reprs_running.ids = set()
        key = id(self)
        if key in running:
            return "..."  # a value inside itself (through a list or dict), as attrs prints it
        running.add(key)
        try:
            cls = type(self)
            template, getter, formatters = _layouts.get(cls) or _layout(cls)
            values = getter(self)
            if formatters is not None:
                values = tuple(
                    value if text is str else text(value)
                    for text, value in zip(formatters, values, strict=True)
                )
            return template % values
        finally:
            running.discard(key)
