"""The sanitizer: an observer that checks a client's SSPI use beyond single calls.

`Sanitizer` watches the events of one or more Sspi instances (sspi_model.events) and keeps,
for every credential handle, security context, async context and context buffer still alive,
the call that created it. At teardown `check()` lists what is still alive (SAN-005) together
with the sequence rules broken on the way:

    SAN-001  a context is continued only with the credential it was created with
    SAN-002  every context whose handshake failed is deleted
    SAN-003  every buffer the package returned is freed with FreeContextBuffer
    SAN-004  a handle passed to a call is live: not released, not another instance's, not forged
    SAN-005  at teardown nothing is alive: handles, async contexts, buffers, pending calls

Misuse the model raises or records (SspiMisuse, `misuse_events`) is reported too, under the
model's own rule. For unittest users:

    with sanitized(Sspi(accounts=...)) as sspi:   # raises SanitizerError at exit
        ...client code...
    assert_clean(sspi)                            # or at any point, explicitly

The pytest fixture `sspi_model` (sspi_model.testing.plugin) is the same check at teardown.
"""

from __future__ import annotations

import contextlib
import inspect
import weakref
from collections.abc import Iterator
from typing import Any

import attrs

from sspi_model.events import CallEvent, CompletionEvent, MisuseReport
from sspi_model.handles import SecHandle
from sspi_model.lifecycle import CtxState
from sspi_model.status import is_error

_ACH = "AcquireCredentialsHandleW"
_ACH_ASYNC = "SspiAcquireCredentialsHandleAsyncW"
_FCH = "FreeCredentialsHandle"
_FCH_ASYNC = "SspiFreeCredentialsHandleAsync"
_ISC = "InitializeSecurityContextW"
_ASC = "AcceptSecurityContext"
_LEGS = frozenset({_ISC, _ASC})
_LEGS_ASYNC = frozenset({"SspiInitializeSecurityContextAsyncW", "SspiAcceptSecurityContextAsync"})
_DSC = "DeleteSecurityContext"
_DSC_ASYNC = "SspiDeleteSecurityContextAsync"
_FCB = "FreeContextBuffer"
_CREATE_ASYNC = "SspiCreateAsyncContext"
_FREE_ASYNC = "SspiFreeAsyncContext"
_HANDLE_ARGS = ("credential", "context")
# Calls that act on a context's connection; after its shutdown completed only
# DeleteSecurityContext (and queries, FreeContextBuffer) remain (SAN-006).
_CONNECTION_CALLS = frozenset(
    {_ISC, _ASC, "MakeSignature", "VerifySignature", "EncryptMessage", "DecryptMessage",
     "ApplyControlToken", *_LEGS_ASYNC}
)
_INVALID = SecHandle.invalid()


class SanitizerError(AssertionError):
    """What the sanitizer found, one line per finding."""

    def __init__(self, findings: tuple[Finding, ...]) -> None:
        lines = [f"  {finding}" for finding in findings]
        super().__init__(f"sspi-model sanitizer: {len(findings)} finding(s)\n" + "\n".join(lines))
        self.findings = findings


@attrs.frozen
class Finding:
    """One thing wrong: its kind, the rule it breaks, and what happened in a sentence.

    kind is "misuse" (the model's SspiMisuse), "invalid-handle", "invariant" or "leak";
    `model_rules` are the model's rules that decided the call (Sspi.last_rules), if any.
    """

    kind: str
    rule: str
    message: str
    process: str = ""
    model_rules: tuple[str, ...] = ()

    def __str__(self) -> str:
        where = f"{self.process}: " if self.process else ""
        decided = f" (model: {', '.join(self.model_rules)})" if self.model_rules else ""
        return f"[{self.rule}] {where}{self.message}{decided}"


@attrs.define(eq=False)
class _Object:
    kind: str  # "credential handle", "security context", "async context", "context buffer"
    name: str
    created_by: str
    credential: Any = None  # a context's credential handle (SAN-001)
    failed: bool = False  # a context whose last leg failed (SAN-002)
    closed: str = ""  # the call after which both close_notify records were done (SAN-006)


@attrs.define(eq=False)
class _Process:
    name: str
    live: dict[Any, _Object] = attrs.field(factory=dict)  # key: ("cred"|"ctx"|..., value)
    released: set[Any] = attrs.field(factory=set)
    counts: dict[str, int] = attrs.field(factory=dict)
    calls: int = 0
    pending_args: dict[int, dict[str, Any]] = attrs.field(factory=dict)


_PREFIX = {"cred": "$cred", "ctx": "$ctx", "actx": "$actx", "buf": "$buf"}
_KIND = {
    "cred": "credential handle",
    "ctx": "security context",
    "actx": "async context",
    "buf": "context buffer",
}


class Sanitizer:
    """An observer keeping what is alive and which sequence rules were broken.

    `watch(sspi, "client")` makes it an observer of `sspi` (alongside any observer it has);
    `check()` returns the findings so far plus one leak finding per object still alive;
    `assert_clean()` raises SanitizerError when there is any.
    """

    def __init__(self) -> None:
        self._processes: dict[int, _Process] = {}
        self._targets: list[Any] = []
        self.findings: list[Finding] = []

    # -- attaching ---------------------------------------------------------------------------

    def register(self, sspi: Any, process: str | None = None) -> None:
        """Keep books on `sspi`, whose events the caller feeds to this sanitizer."""
        name = process or f"process{len(self._targets) + 1}"
        self._processes[id(sspi)] = _Process(name)
        self._targets.append(sspi)
        _SANITIZERS[sspi] = self

    def watch(self, sspi: Any, process: str | None = None) -> Any:
        """Keep books on `sspi` and observe it (alongside any observer it already has)."""
        self.register(sspi, process)
        previous = sspi.observer
        if previous is None:
            sspi.observer = self
        else:

            def both(event: Any) -> None:
                previous(event)
                self(event)

            sspi.observer = both
        return sspi

    # -- events ------------------------------------------------------------------------------

    def __call__(self, event: Any) -> None:
        process = self._processes.get(id(event.sspi))
        if process is None:
            return
        if isinstance(event, CallEvent):
            process.calls += 1
            self._call(process, event)
        elif isinstance(event, CompletionEvent):
            self._completion(process, event)
        elif isinstance(event, MisuseReport):
            self.findings.append(Finding("misuse", event.rule, event.message, process.name))

    def _mint(self, process: _Process, key: str, value: Any, created_by: str) -> _Object:
        count = process.counts.get(key, 0) + 1
        process.counts[key] = count
        record = _Object(_KIND[key], f"{_PREFIX[key]}{count}", created_by)
        process.live[(key, _identity(value))] = record
        return record

    def _release(self, process: _Process, key: str, value: Any) -> None:
        identity = (key, _identity(value))
        if process.live.pop(identity, None) is not None:
            process.released.add(identity)

    def _call(self, process: _Process, event: CallEvent) -> None:
        name = event.call.value
        args, result = event.args, event.result
        where = f"{name} (call {process.calls})"
        self._check_handles(process, event, name)
        if name in _CONNECTION_CALLS:
            self._after_shutdown(process, event, where)
        if name == _ACH:
            credential = getattr(result, "credential", None)
            if credential is not None:
                self._mint(process, "cred", credential, where)
        elif name in _LEGS:
            self._leg(process, args, result, where)
        elif name == _DSC and not is_error(int(result)):
            self._release(process, "ctx", args.get("context"))
        elif name == _FCH and not is_error(int(result)):
            self._release(process, "cred", args.get("credential"))
        elif name == _FCB and not is_error(int(result)):
            self._release(process, "buf", args.get("buffer"))
        elif name == _CREATE_ASYNC and result is not None:
            self._mint(process, "actx", result, where)
        elif name == _FREE_ASYNC and args.get("async_context") is not None:
            self._release(process, "actx", args["async_context"])
        elif name == _DSC_ASYNC and event.pending is not None:
            self._release(process, "ctx", args.get("context"))  # invalid at queue (ASY-042)
        if event.pending is not None:
            process.pending_args[event.pending] = {"name": name, "where": where, **args}
        self._buffers(process, result, where)

    def _after_shutdown(self, process: _Process, event: CallEvent, where: str) -> None:
        """SAN-006: no call on a connection after its shutdown completed. The call ran already
        (observers see its result): one made on a closed connection is a finding; one that
        closed it marks the context."""
        context = event.args.get("context")
        record = process.live.get(("ctx", _identity(context))) if context is not None else None
        if record is None:
            return
        if record.closed:
            self.findings.append(
                Finding(
                    "invariant",
                    "SAN-006",
                    f"{where} acts on {record.name} after its shutdown completed "
                    f"({record.closed}): only DeleteSecurityContext remains",
                    process.name,
                    tuple(getattr(event.sspi, "last_rules", ())),
                )
            )
            return
        state_of = getattr(event.sspi, "lifecycle_state", None)
        if state_of is not None and state_of(context) is CtxState.CLOSED:
            record.closed = where

    def _completion(self, process: _Process, event: CompletionEvent) -> None:
        args = process.pending_args.pop(event.pending, {})
        where = f"{args.get('where', event.call.value)}, completed"
        name = event.call.value
        out = event.out
        if name == _ACH_ASYNC and out is not None and out.credential is not None:
            self._mint(process, "cred", out.credential, where)
        elif name in _LEGS_ASYNC and out is not None:
            self._leg(process, args, _AsyncLeg(event.status, out.new_context), where)
            self._buffers(process, out, where)
        elif name == _FCH_ASYNC and not is_error(event.status):
            self._release(process, "cred", args.get("credential"))

    def _leg(self, process: _Process, args: dict[str, Any], result: Any, where: str) -> None:
        context, credential = args.get("context"), args.get("credential")
        new_context = getattr(result, "new_context", None)
        failed = is_error(int(result.status))
        record = process.live.get(("ctx", _identity(context))) if context is not None else None
        if record is not None and credential is not None and credential != record.credential:
            # SAN-001: the CVE-2015-3148 pattern, a context continued with other credentials.
            self.findings.append(
                Finding(
                    "invariant",
                    "SAN-001",
                    f"{where} continues {record.name} (created by {record.created_by}) with a "
                    "credential other than the one it was created with",
                    process.name,
                )
            )
        if record is None and new_context is not None:
            record = self._mint(process, "ctx", new_context, where)
            record.credential = credential
        elif record is not None and new_context is not None and new_context != context:
            # A new handle value for the same context (handle rotation): the old one is stale.
            self._release(process, "ctx", context)
            process.live[("ctx", _identity(new_context))] = record
        if record is not None:
            record.failed = failed

    def _buffers(self, process: _Process, result: Any, where: str) -> None:
        for buffer in getattr(result, "output", ()) or ():
            allocation = getattr(buffer, "allocation", None)
            if allocation is not None:
                self._mint(process, "buf", allocation, where)
        for holder in (result, getattr(result, "buffer", None)):
            allocation = getattr(holder, "allocation", None)
            if isinstance(allocation, int) and not isinstance(allocation, bool):
                self._mint(process, "buf", allocation, where)

    def _check_handles(self, process: _Process, event: CallEvent, name: str) -> None:
        """SAN-004: every handle passed is live in this process (HDL-003, HDL-004, HDL-007)."""
        for key in _HANDLE_ARGS:
            handle = event.args.get(key)
            if not isinstance(handle, SecHandle) or handle == _INVALID:
                continue  # NULL, or SecInvalidateHandle's value: the caller knows it is invalid
            kind = "cred" if key == "credential" else "ctx"
            identity = (kind, _identity(handle))
            if identity in process.live:
                continue
            state = "released" if identity in process.released else "never issued here"
            self.findings.append(
                Finding(
                    "invalid-handle",
                    "SAN-004",
                    f"{name} (call {process.calls}) was given a {key} handle that is {state}",
                    process.name,
                    tuple(getattr(event.sspi, "last_rules", ())),
                )
            )

    # -- verdicts ----------------------------------------------------------------------------

    def alive(self) -> list[Finding]:
        """One leak finding per object still alive, naming the call that created it."""
        found: list[Finding] = []
        for process in self._processes.values():
            for record in process.live.values():
                rule = "SAN-005"  # anything alive at teardown
                if record.kind == "context buffer":
                    rule = "SAN-003"  # a returned buffer never freed
                elif record.kind == "security context" and record.failed:
                    rule = "SAN-002"  # the context of a failed handshake never deleted
                what = "failed security context" if rule == "SAN-002" else record.kind
                message = f"{what} {record.name} created by {record.created_by} is still alive"
                found.append(Finding("leak", rule, message, process.name))
        for target in self._targets:
            pending = target.statistics().pending_calls
            if pending:
                name = self._processes[id(target)].name
                message = f"{pending} async call(s) still pending at teardown"
                found.append(Finding("leak", "SAN-005", message, name))
        return found

    def check(self) -> tuple[Finding, ...]:
        return (*self.findings, *self.alive())

    def assert_clean(self) -> None:
        findings = self.check()
        if findings:
            raise SanitizerError(findings)


@attrs.frozen
class _AsyncLeg:
    status: int
    new_context: SecHandle | None


def _identity(value: Any) -> Any:
    """Handles and allocations compare by value; async contexts by identity."""
    if isinstance(value, (SecHandle, int)):
        return value
    return id(value)


_SANITIZERS: weakref.WeakKeyDictionary[Any, Sanitizer] = weakref.WeakKeyDictionary()


def sanitizer_of(sspi: Any) -> Sanitizer | None:
    """The Sanitizer watching `sspi`, if any."""
    return _SANITIZERS.get(sspi)


def assert_clean(sspi: Any) -> None:
    """Raise SanitizerError naming what `sspi` still holds and the rules broken so far.

    With a Sanitizer watching `sspi` (`sanitized`, the pytest fixture) the message names each
    object and the call that created it; without one it has only statistics() to go on.
    """
    watching = sanitizer_of(sspi)
    if watching is not None:
        watching.assert_clean()
        return
    stats = sspi.statistics()
    if stats.anything_alive:
        alive = ", ".join(f"{key} {value}" for key, value in attrs.asdict(stats).items() if value)
        raise SanitizerError((Finding("leak", "SAN-005", f"still alive: {alive}"),))
    misuse = tuple(Finding("misuse", m.rule, m.message) for m in sspi.misuse_events)
    if misuse:
        raise SanitizerError(misuse)


@contextlib.contextmanager
def sanitized(sspi: Any, process: str = "process") -> Iterator[Any]:
    """Watch `sspi` for the block; at exit raise SanitizerError if anything was found."""
    watcher = Sanitizer()
    watcher.watch(sspi, process)
    yield sspi
    watcher.assert_clean()


class SanitizedModels:
    """Makes watched Sspi instances sharing one Sanitizer: what the pytest fixture uses.

    `rotate_context_handles` (a new context handle value on every continuation leg, as
    Chromium's MockSSPILibrary does) is passed to Sspi when its constructor accepts it;
    otherwise asking for it raises NotImplementedError.
    """

    def __init__(
        self,
        *,
        rotate_context_handles: bool = False,
        profile: str = "documented",
        strict: bool = True,
        **options: Any,
    ) -> None:
        self.sanitizer = Sanitizer()
        self.options: dict[str, Any] = {"profile": profile, "strict": strict, **options}
        if rotate_context_handles:
            from sspi_model.sspi import Sspi

            if "rotate_context_handles" not in inspect.signature(Sspi).parameters:
                raise NotImplementedError(
                    "handle rotation needs Sspi(rotate_context_handles=True), which this "
                    "version of sspi-model does not have yet"
                )
            self.options["rotate_context_handles"] = True
        self.instances: list[Any] = []

    def __call__(self, process: str | None = None, **options: Any) -> Any:
        from sspi_model.sspi import Sspi

        name = process or f"process{len(self.instances) + 1}"
        sspi = Sspi(**{**self.options, **options})
        self.sanitizer.watch(sspi, name)
        self.instances.append(sspi)
        return sspi

    def check(self) -> tuple[Finding, ...]:
        return self.sanitizer.check()


__all__ = [
    "Finding",
    "SanitizedModels",
    "Sanitizer",
    "SanitizerError",
    "assert_clean",
    "sanitized",
    "sanitizer_of",
]
