"""Events an Sspi instance reports to its observer: the raw material of traces and monitors.

`Sspi(observer=f)` calls `f(event)` after every API call returns (CallEvent), when a scheduler
completes a queued call (CompletionEvent), before a callback runs (NotifyEvent) and when misuse
is detected (MisuseReport). Observers must not call back into the instance.

An event is a value: its repr is valid Python, and evaluates to an equal event when what it
carries is made of values. It compares by what happened, not by who reported it (`sspi` takes
no part in ==). The references it carries that are not values (the emitting Sspi, an async
context, a callback) print as `...`, Python's "something left out", where their own repr
would be the data model's `<...>` form.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import attrs

from sspi_model.lifecycle import Call
from sspi_model.values import Value


def _value_repr(value: Any) -> str:
    """repr(value), with `...` for each object inside it whose repr is not Python."""
    if type(value) is dict:
        items = ", ".join(f"{_value_repr(k)}: {_value_repr(v)}" for k, v in value.items())
        return f"{{{items}}}"
    if type(value) in (list, tuple):
        items = ", ".join(_value_repr(item) for item in value)
        if type(value) is list:
            return f"[{items}]"
        return f"({items},)" if len(value) == 1 else f"({items})"
    text = repr(value)
    # API-008: an opaque reference (the data model's "<...some useful description...>" form)
    # prints as `...`; so does the Ellipsis an evaluated repr put in its place.
    return "..." if value is ... or text.startswith("<") else text


def _contents(value: Any) -> Any:
    """What a field compares by inside an event: an Out holder (an attrs class compared by
    identity, being mutable) by its type and fields, also inside the arguments dict."""
    if type(value) is dict:
        return {key: _contents(item) for key, item in value.items()}
    kind = type(value)
    if attrs.has(kind) and kind.__eq__ is object.__eq__:
        return (kind, attrs.astuple(value, recurse=False))
    return value


@attrs.frozen(repr=False)
class CallEvent(Value):
    """One API call as it returned: the instance, the call, its arguments and its result.

    For a queued async call, `pending` is the id its completion will carry. Arguments that are
    not values (an async context, a callback) print as `...`.
    """

    sspi: Any = attrs.field(repr=_value_repr, eq=False)
    call: Call = attrs.field()
    args: dict[str, Any] = attrs.field(repr=_value_repr, eq=_contents)
    result: Any = attrs.field(repr=_value_repr)
    pending: int | None = None


@attrs.frozen(repr=False)
class CompletionEvent(Value):
    """A scheduler completed queued call `pending`; its effects and status are published."""

    sspi: Any = attrs.field(repr=_value_repr, eq=False)
    pending: int = attrs.field()
    call: Call = attrs.field()
    status: int = attrs.field()
    out: Any = attrs.field(repr=_value_repr, eq=_contents)


@attrs.frozen(repr=False)
class NotifyEvent(Value):
    """The notify callback of call `pending` is about to run."""

    sspi: Any = attrs.field(repr=_value_repr, eq=False)
    pending: int = attrs.field()
    # Opaque (prints as `...`); `pending` already names the call and so its context.
    async_context: Any = attrs.field(repr=_value_repr, eq=False)
    callback_data: Any = attrs.field(repr=_value_repr)


@attrs.frozen(repr=False)
class MisuseReport(Value):
    """Misuse detected during `call`; `args` are the call's arguments when known."""

    sspi: Any = attrs.field(repr=_value_repr, eq=False)
    call: Call = attrs.field()
    rule: str = attrs.field()
    message: str = attrs.field()
    args: dict[str, Any] | None = attrs.field(default=None, repr=_value_repr, eq=_contents)


Event = CallEvent | CompletionEvent | NotifyEvent | MisuseReport
Observer = Callable[[Any], None]
