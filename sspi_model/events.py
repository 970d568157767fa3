"""Events an Sspi instance reports to its observer: the raw material of traces and monitors.

`Sspi(observer=f)` calls `f(event)` after every API call returns (CallEvent), when a scheduler
completes a queued call (CompletionEvent), before a callback runs (NotifyEvent) and when misuse
is detected (MisuseReport). Observers must not call back into the instance.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import attrs

from sspi_model.lifecycle import Call


@attrs.frozen
class CallEvent:
    """One API call as it returned: the instance, the call, its arguments and its result.

    For a queued async call, `pending` is the id its completion will carry.
    """

    sspi: Any
    call: Call
    args: dict[str, Any]
    result: Any
    pending: int | None = None


@attrs.frozen
class CompletionEvent:
    """A scheduler completed queued call `pending`; its effects and status are published."""

    sspi: Any
    pending: int
    call: Call
    status: int
    out: Any


@attrs.frozen
class NotifyEvent:
    """The notify callback of call `pending` is about to run."""

    sspi: Any
    pending: int
    async_context: Any
    callback_data: Any


@attrs.frozen
class MisuseReport:
    """Misuse detected during `call`; `args` are the call's arguments when known."""

    sspi: Any
    call: Call
    rule: str
    message: str
    args: dict[str, Any] | None = None


Event = CallEvent | CompletionEvent | NotifyEvent | MisuseReport
Observer = Callable[[Any], None]
