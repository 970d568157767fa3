"""The one envelope around every public API call: the lock, the scheduler's entry, the observer.

`@api_call(Call.X)` turns a method into one generated wrapper with the method's own signature
that, in this order:
1. holds the host's lock when a second thread can enter (`host._held`, see Sspi.thread_safe);
   otherwise checks the caller is the host's thread (API-006: a clear error naming
   `thread_safe`, never a corrupted dict);
2. gives the scheduler its chance to complete calls "meanwhile" (`host._entry.on_api_entry()`,
   skipped for quiet schedulers); a misuse raised there by a callback says the entered call did
   not run (ASY-074);
3. runs the method;
4. reports a CallEvent to the observer, if there is one.
The wrapper is generated rather than a closure over *args so a call costs one Python frame
more than the bare method and no argument packing (benchmarks/README.md). It is generated when
the method is first looked up (_Deferred), not at import: `import sspi_model` then pays for no
wrapper, a program for those of the calls it makes (issue 9). When the host says steps 1, 2
and 4 have nothing to do (`host._fast` is the calling thread: no lock, a quiet scheduler, no
observer), the same wrapper's first line runs the method at once: the envelope reduced to its
thread check, without the branches that would find nothing to do.
"""

from __future__ import annotations

import functools
import inspect
import threading
from collections.abc import Callable
from typing import Any, TypeVar

from sspi_model.async_api import SspiMisuse
from sspi_model.events import CallEvent
from sspi_model.lifecycle import Call

_F = TypeVar("_F", bound=Callable[..., Any])
_get_ident = threading.get_ident


def api_call(
    call: Call,
    *,
    entry: bool = True,
    observe: bool = True,
    args: tuple[str, ...] | None = None,
    describe: Callable[..., dict[str, Any]] | None = None,
    delegate: str | None = None,
) -> Callable[[_F], _F]:
    """Wrap a host method as the public API call `call`.

    `entry`: call the scheduler's on_api_entry first. `observe`: report a CallEvent afterwards
    (False for calls that report themselves, such as the queueing async calls, whose event must
    precede any completion). `args`: the parameters the event carries (default: all);
    `describe(host, *parameters)` builds them instead when they need normalising.
    `delegate`: the method's body is `return self.<delegate>.<same name>(<same arguments>)`, and
    the wrapper makes that call itself, one frame fewer on the async hot path (benchmarks/;
    tests/test_architecture.py holds each such body to the delegate's signature).
    """

    def decorate(method: _F) -> _F:
        return _Deferred(lambda: build(method), method, call, delegate)  # type: ignore[return-value]

    def build(method: _F) -> _F:
        signature = inspect.signature(method)
        parameters = list(signature.parameters.values())[1:]  # without self
        namespace: dict[str, Any] = {
            "_impl": method,
            "_call": call,
            "_get_ident": _get_ident,
            "_describe": describe,
        }
        declared, forwarded = [], []
        keyword_only = False
        for index, parameter in enumerate(parameters):
            if parameter.kind is parameter.KEYWORD_ONLY and not keyword_only:
                declared.append("*")
                keyword_only = True
            text = parameter.name
            if parameter.default is not parameter.empty:
                namespace[f"_default{index}"] = parameter.default
                text += f"=_default{index}"
            declared.append(text)
            forwarded.append(
                f"{parameter.name}={parameter.name}" if keyword_only else parameter.name
            )
        names = [p.name for p in parameters] if args is None else list(args)
        if describe is not None:
            event_args = f"_describe(self, {', '.join(forwarded)})"
        else:
            event_args = "{" + ", ".join(f"{n!r}: {n}" for n in names) + "}"
        target = "_impl(self" if delegate is None else f"self.{delegate}.{method.__name__}("
        joiner = ", " if delegate is None and forwarded else ""
        body = f"{target}{joiner}{', '.join(forwarded)})"
        lines = [
            f"def {method.__name__}(self, {', '.join(declared)}):",
            "    if self._fast == _get_ident():  # no lock, no scheduler entry, no observer",
            f"        return {body}",
            "    held = self._held",
            "    if held is not None:",
            "        held.acquire()",
            "    elif self._thread != _get_ident():",
            "        self._foreign_thread(_call)",
            "    try:",
        ]
        if entry:
            lines += [
                "        scheduler = self._entry",
                "        if scheduler is not None:",
                "            self._enter_scheduler(scheduler, _call)",
            ]
        lines.append(f"        result = {body}")
        if observe:
            lines += [
                "        if self._observer is not None:",
                f"            self._observe(_call, {event_args}, result)",
            ]
        lines += [
            "    finally:",
            "        if held is not None:",
            "            held.release()",
            "    return result",
        ]
        exec(compile("\n".join(lines), f"<api_call {call.value}>", "exec"), namespace)
        wrapper = namespace[method.__name__]
        functools.update_wrapper(wrapper, method)
        wrapper.__signature__ = signature
        wrapper.api_call = call
        wrapper.api_delegate = delegate
        return wrapper  # type: ignore[no-any-return]

    return decorate


class _Deferred:
    """An api_call wrapper not generated yet, in the class where the method was. The first
    look-up (through an instance or the class) generates it and puts it there in its place, so
    every later call is the generated wrapper's alone. Until then it answers introspection as
    the method (name, doc, signature through __wrapped__, api_call, api_delegate)."""

    def __init__(
        self, build: Callable[[], Any], method: Any, call: Call, delegate: str | None
    ) -> None:
        functools.update_wrapper(self, method)
        self._build = build
        self._wrapper: Any = None
        self.api_call = call
        self.api_delegate = delegate

    def __set_name__(self, owner: type, name: str) -> None:
        self._owner, self._name = owner, name

    def _generated(self) -> Any:
        if self._wrapper is None:
            self._wrapper = self._build()
        return self._wrapper

    def __get__(self, instance: Any, owner: type | None = None) -> Any:
        wrapper = self._generated()
        setattr(self._owner, self._name, wrapper)  # found in the class: it takes our place
        return wrapper.__get__(instance, owner)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        # Called as a value taken from the class (benchmarks/campaign.py's timers do): the
        # class attribute is someone else's business then, so it is left alone.
        return self._generated()(*args, **kwargs)


class EnvelopeHost:
    """What an object whose methods are wrapped by api_call holds: the envelope's state (kept
    current by the host) and its three hooks."""

    _held: Any  # the RLock while calls must hold it, else None (single-threaded)
    _thread: int  # the thread a single-threaded host serves
    _entry: Any  # the scheduler when its on_api_entry must be called, else None
    _observer: Callable[[Any], None] | None
    # The thread ident while steps 1, 2 and 4 have nothing to do for it (no lock to hold, a
    # quiet scheduler, no observer), else None: the wrapper then only checks the thread
    # (API-006) and runs the method. A host that never sets it takes the full envelope.
    _fast: int | None = None

    def _foreign_thread(self, call: Call) -> None:
        raise RuntimeError(
            f"{call.value}: this Sspi instance serves the thread that created it (API-006); "
            "another thread entered it. Set sspi.thread_safe = True to share it between threads "
            "(every call then holds a lock), or give each thread its own instance."
        )

    def _enter_scheduler(self, scheduler: Any, call: Call) -> None:
        try:
            scheduler.on_api_entry()
        except SspiMisuse as misuse:
            # The misuse came from a callback the scheduler ran "meanwhile": the entered call
            # never ran, and the caller must be able to tell (ASY-074).
            misuse.call_ran = False
            misuse.message += (
                f" (raised by a notify callback that the scheduler ran on entry to {call.value}; "
                f"{call.value} did not run)"
            )
            misuse.args = (misuse.rule, misuse.message, False)
            raise

    def _observe(self, call: Call, args: dict[str, Any], result: Any) -> None:
        if self._observer is not None:  # one CallEvent per call, with its very result (API-005)
            self._observer(CallEvent(self, call, args, result))
