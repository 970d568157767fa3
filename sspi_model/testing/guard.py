"""Every call into a backend under test, bounded and checked, so that no verdict is lost.

What a call does besides returning a result of the right type is an outcome, as a crash is for
a native library (CLI-001): an exception becomes `EXCEPTION:KeyError: 'oops'`, a Python call
that does not return within the bound becomes `HANG` (CLI-002), and a result of the wrong type
becomes `WRONG-TYPE:delete_security_context returned 'SEC_E_OK' (str); expected SecStatus`
(CLI-003). Each is raised as a `BackendFailure`, which the differential machine and the kit
report as a divergence with the call and the steps before it.

The bound uses SIGALRM (an interval timer), so it applies on the main thread of a POSIX
process, where Hypothesis and pytest run; elsewhere calls are unbounded. A backend with a
`timeout` attribute (NativeBackend) bounds its own calls and is not timed here.
"""

from __future__ import annotations

import re
import signal
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import FrameType
from typing import Any, TypeVar

from sspi_model.backends.base import BackendFailure

# A Python backend's call answers in microseconds to milliseconds; a second is a hang, and
# bounds the cost of shrinking a sequence that hangs.
PYTHON_CALL_TIMEOUT = 1.0
RESULTS_MODULE = "sspi_model.results"

_T = TypeVar("_T")


class _Hang(BaseException):
    """Raised into the backend's frame by the alarm: a BaseException so that a backend's own
    `except Exception` does not swallow it."""


def python_method(call: str) -> str:
    """The Backend method of a C function name: DeleteSecurityContext -> delete_security_context."""
    name = call[:-1] if call.endswith("W") and call[-2:-1].islower() else call
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


def call_timeout(backend: object) -> float | None:
    """The bound for a backend's calls here: None when the backend bounds them itself."""
    return None if hasattr(backend, "timeout") else PYTHON_CALL_TIMEOUT


@contextmanager
def _alarm(seconds: float | None) -> Iterator[None]:
    usable = (
        seconds is not None
        and hasattr(signal, "setitimer")
        and threading.current_thread() is threading.main_thread()
    )
    if not usable:
        yield
        return
    assert seconds is not None

    def ring(_signum: int, _frame: FrameType | None) -> None:
        raise _Hang

    previous = signal.signal(signal.SIGALRM, ring)
    # Repeating: an alarm that lands in a gc callback (Hypothesis installs one) is swallowed by
    # the interpreter, so the next one rings a moment later.
    remaining, _interval = signal.setitimer(signal.ITIMER_REAL, seconds, min(seconds, 0.1))
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
        if remaining:  # someone else's alarm (pytest-timeout): give it back
            signal.setitimer(signal.ITIMER_REAL, remaining)


def expected_type(model_result: Any) -> type | None:
    """What a backend must return where the model returned `model_result`: a status is any
    int (a SecStatus or the raw value), a result is of the model's result class. Other values
    (an async context) are the backend's own objects and are not checked."""
    if isinstance(model_result, int):
        return int
    if type(model_result).__module__ == RESULTS_MODULE:
        return type(model_result)
    return None


def _type_name(model_result: Any, wanted: type) -> str:
    return type(model_result).__name__ if wanted is int else wanted.__name__


def guarded(
    method: str,
    run: Callable[[], _T],
    *,
    model_result: Any = None,
    timeout: float | None = PYTHON_CALL_TIMEOUT,
) -> _T:
    """run() (one backend call), with what is not a result raised as a BackendFailure."""
    try:
        with _alarm(timeout):
            result = run()
    except BackendFailure:
        raise
    except _Hang:
        # CLI-002: the call did not return within the bound, as a native worker that hangs.
        raise BackendFailure("HANG", f"{method} did not return within {timeout} s") from None
    except Exception as error:
        # CLI-001: an exception is an outcome of the call, reported with the steps to it.
        raise BackendFailure(f"EXCEPTION:{type(error).__name__}: {error}") from error
    wanted = expected_type(model_result)
    if wanted is not None and (
        not isinstance(result, wanted) or (wanted is int and isinstance(result, bool))
    ):
        # CLI-003: a wrong result type is named, rather than breaking the comparison.
        raise BackendFailure(
            f"WRONG-TYPE:{method} returned {result!r} ({type(result).__name__}); "
            f"expected {_type_name(model_result, wanted)}"
        )
    return result
