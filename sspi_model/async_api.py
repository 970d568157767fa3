"""The values of the asynchronous API: async contexts, Out holders, queued calls, misuse.

The behaviour lives in async_layer.AsyncLayer and lifecycle.ASYNC_TABLE; these are the objects
a caller holds or is handed.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from typing import Any, TypeVar

import attrs

from sspi_model.buffers import SecBuffer
from sspi_model.handles import SecHandle
from sspi_model.lifecycle import AsyncState, Call
from sspi_model.status import SecStatus

NotifyCallback = Callable[[Any, Any], None]
POISON = 0xA5A5A5A5  # what a freed context's status reads as: ksecdd fills it with 0xA5 (ASY-052)
EVENT_LOG_LIMIT = 1000  # entries kept by misuse_events and callback_errors (ASY-057)
_T = TypeVar("_T")
_UNSUPPORTED = SecStatus.SEC_E_UNSUPPORTED_FUNCTION  # a global: see async_layer's constants


class SspiMisuse(Exception):
    """Undefined behaviour in the caller's code, named by the rule it breaks.

    `call_ran` is False when the misuse surfaced before the API call that was entered could
    run (a callback that a scheduler ran on entry to that call, ASY-074).
    """

    def __init__(self, rule: str, message: str, call_ran: bool = True) -> None:
        # API-008: args are the constructor's, so repr(e) is Python that rebuilds it.
        super().__init__(rule, message, *(() if call_ran else (False,)))
        self.rule = rule
        self.message = message
        self.call_ran = call_ran

    def __str__(self) -> str:
        return f"[{self.rule}] {self.message}"


@attrs.frozen
class MisuseEvent:
    rule: str
    message: str
    call: Call


@attrs.frozen
class CallbackError:
    """A callback (or a completion's own effect, ASY-027) raised something other than
    SspiMisuse; the model caught and kept it."""

    call: Call
    pending_id: int
    error: str
    traceback: str


class EventLog(list[_T]):
    """A list that keeps the last EVENT_LOG_LIMIT entries and counts the ones it dropped
    (ASY-057), so a long non-strict campaign stays bounded. `clear()` empties it."""

    def __init__(self, limit: int = EVENT_LOG_LIMIT) -> None:
        super().__init__()
        self.limit = limit
        self.dropped = 0

    def append(self, item: _T) -> None:
        if len(self) >= self.limit:
            del self[0]
            self.dropped += 1
        super().append(item)


@attrs.define(eq=False)
class Out:
    """The out-parameters of an async call, written when the call completes (`written` turns
    True then, also for a call that completed with an error and set nothing)."""

    credential: SecHandle | None = None
    new_context: SecHandle | None = None
    output: tuple[SecBuffer, ...] = ()
    context_attr: int = 0
    expiry: int | None = None
    input_after: tuple[SecBuffer, ...] | None = None
    written: bool = False

    @property
    def output_token(self) -> bytes:
        for buffer in self.output:
            if buffer.base_type == 2:
                return buffer.data
        return b""


_async_serials = itertools.count(1)
_pending_ids = itertools.count(1)


class AsyncContext:
    """SspiAsyncContext*: deliberately opaque. Hand it back to the API; do not look inside.

    `state` is written only by lifecycle.enter (ASYNC_TABLE)."""

    __slots__ = (
        "__weakref__",
        "_callback",
        "_callback_data",
        "_owner",
        "_pending",
        "_serial",
        "_status",
        "state",
    )
    state: AsyncState  # written by lifecycle.begin / lifecycle.enter alone

    def __init__(self, owner: Any) -> None:
        self._owner = owner  # the AsyncLayer that created it
        self._serial = next(_async_serials)
        self._status: int = _UNSUPPORTED  # ASY-002
        self._callback: NotifyCallback | None = None
        self._callback_data: Any = None
        self._pending: PendingCall | None = None

    def __repr__(self) -> str:
        state = getattr(self, "state", None)
        return f"<SspiAsyncContext #{self._serial} {state.value if state else 'new'}>"


class PendingCall:
    """One queued async call; a scheduler completes it (deliberately opaque)."""

    __slots__ = (
        "_done",
        "async_context",
        "call",
        "description",
        "effect",
        "id",
        "out",
        "owner",
        "publishes",
    )

    def __init__(
        self,
        owner: Any,
        async_context: AsyncContext,
        call: Call,
        effect: Callable[[], int],
        description: str,
        out: Out | None,
        publishes: bool,
    ) -> None:
        self.id = next(_pending_ids)
        self.out = out
        self.owner = owner  # the AsyncLayer that queued it
        self.async_context = async_context
        self.call = call
        self.effect = effect
        self.description = description
        # Whether completion publishes the status: decided at queue time from the profile, so
        # a later profile change cannot strand the context reading PENDING (ASY-021).
        self.publishes = publishes
        self._done = False

    def __repr__(self) -> str:
        return f"<PendingCall {self.id} {self.description}>"

    def complete(self) -> None:
        self.owner.complete(self)
