"""The same scenarios under Hypothesis: every choice drawn from the test's data.

    test_overview = hypothesis_test(EXPLORABLE["overview"].run)

gives a test function Hypothesis runs with drawn choices; it fails with SanitizerError on any
finding (misuse, invariant break, leak). Choices shrink towards 0, the default schedule, so a
failing example shrinks to a schedule with few deviations. Where the explorer enumerates,
this samples: for scenarios too large to explore exhaustively.
"""

from __future__ import annotations

import collections
import itertools
import random
import time
from collections.abc import Callable, Sequence
from typing import Any, Protocol, TypeVar

import attrs
from hypothesis import given, settings
from hypothesis import strategies as st

from sspi_model.async_api import AsyncContext, Out, SspiMisuse
from sspi_model.buffers import SecBuffer
from sspi_model.explore.engine import run_once
from sspi_model.explore.world import World
from sspi_model.handles import ULONG_PTR_MAX, HandleClass, HandleKind, SecHandle
from sspi_model.lifecycle import ASYNC_CALL_CODES, CALL_CODES, AsyncState, Call
from sspi_model.packages.ntlm import AuthIdentity
from sspi_model.packages.schannel import Certificate, SchannelCred
from sspi_model.profiles import PROFILES
from sspi_model.rulebook import load_rules
from sspi_model.sanitizer import SanitizerError
from sspi_model.scheduling import (
    InlineScheduler,
    ManualScheduler,
    RandomScheduler,
    ThreadedScheduler,
)
from sspi_model.sspi import Sspi
from sspi_model.status import SecStatus, is_error

_T = TypeVar("_T")


class _Drawing:
    def __init__(self, data: Any) -> None:
        self.data = data

    def choose(self, alternatives: int, world: World) -> int:
        choice: int = self.data.draw(st.integers(0, alternatives - 1), label="choice")
        return choice


def run_drawn(scenario: Callable[[World], Any], data: Any) -> World:
    """Run `scenario` once with choices drawn from Hypothesis `data`; raise on any finding."""
    world = World(_Drawing(data))
    outcome, findings = run_once(scenario, world)
    if outcome.error:
        raise AssertionError(f"the scenario failed: {outcome.error}")
    if findings:
        raise SanitizerError(tuple(findings))
    return world


def hypothesis_test(
    scenario: Callable[[World], Any], *, max_examples: int = 100
) -> Callable[..., None]:
    """A test function (pytest collects it) running `scenario` under drawn schedules."""

    @settings(max_examples=max_examples, deadline=None, database=None)
    @given(st.data())
    def test(data: Any) -> None:
        run_drawn(scenario, data)

    test.__name__ = f"test_{getattr(scenario, '__name__', 'scenario')}"
    return test


# -- the API fuzzer: random calls over the whole public API, invariants after every call ------
#
# The fuzz contract of issue 15, kept in the repository: tests/test_fuzz_contract.py runs it
# bounded (and under Hypothesis, which shrinks a failure); `python -m sspi_model.explore.fuzz
# --calls N --seed S` runs it for long. Every call gets live, stale, foreign, forged and random
# handles, wrong types, random and mutated tokens; after every call the invariants hold or a
# Finding is reported: only declared outcomes (a status in the call's code list, TypeError /
# ValueError naming the parameter the fuzzer made wrong, SspiMisuse naming a rule of
# specs/rules.toml), no handle issued twice, no retired handle revived, statistics never
# negative and equal to what the fuzzer saw issued and retired, no call pending once its
# scheduler has run, nothing alive after teardown.


class Source(Protocol):
    """Where the fuzzer's choices come from: a seeded Random, or Hypothesis data."""

    def integer(self, low: int, high: int) -> int: ...


class RandomSource:
    def __init__(self, seed: int) -> None:
        self.random = random.Random(seed)

    def integer(self, low: int, high: int) -> int:
        return self.random.randint(low, high)


class DataSource:
    def __init__(self, data: Any) -> None:
        self.data = data

    def integer(self, low: int, high: int) -> int:
        value: int = self.data.draw(st.integers(low, high))
        return value


@attrs.frozen
class Finding:
    """One broken invariant: the call count, what broke, and the call that broke it."""

    call: int
    invariant: str
    detail: str


class FuzzDefect(AssertionError):
    def __init__(self, findings: Sequence[Finding]) -> None:
        self.findings = tuple(findings)
        lines = [f"call {f.call}: [{f.invariant}] {f.detail}" for f in self.findings[:10]]
        super().__init__(f"{len(self.findings)} finding(s):\n" + "\n".join(lines))


@attrs.define
class FuzzReport:
    steps: int = 0  # API calls, scheduler runs, configuration changes, handshakes
    calls: int = 0  # API calls made
    seconds: float = 0.0
    outcomes: dict[str, int] = attrs.field(factory=dict)
    findings: list[Finding] = attrs.field(factory=list)

    @property
    def calls_per_second(self) -> float:
        return self.calls / self.seconds if self.seconds else 0.0


class _Wrong:
    """A marker for an argument the fuzzer made wrong on purpose: TypeError/ValueError must
    name `parameter`."""

    def __init__(self, parameter: str, value: Any = None) -> None:
        self.parameter = parameter
        self.value = object() if value is None else value


class _PlantedCallbackError(Exception):
    """What the fuzzer's raising callback raises: kept in callback_errors (ASY-024)."""


_ACCOUNTS = {"CONTOSO\\alice": "Passw0rd!", "CONTOSO\\bob": "hunter2"}
_PACKAGES = ("NTLM", "Negotiate", "Schannel", "ntlm", "Kerberos", "")
_USES = (1, 2, 1, 2, 3, 0x11, 0x22, 0, 0x40)
_QUEUE_CODES = frozenset(
    {
        SecStatus.SEC_E_OK,
        SecStatus.SEC_E_INVALID_PARAMETER,  # ASY-004, ASY-007, ASY-026
        SecStatus.SEC_E_INVALID_HANDLE,  # ASY-025
        SecStatus.SEC_E_UNSUPPORTED_FUNCTION,  # ASY-031
    }
)
_LIMIT = 40  # tracked objects per process before a teardown, so every check stays cheap


class _Process:
    def __init__(self, index: int, sspi: Sspi, scheduler: Any) -> None:
        self.index = index
        self.sspi = sspi
        self.scheduler = scheduler
        self.async_contexts: list[AsyncContext] = []
        self.outs: list[Out] = []
        self.allocations: list[int] = []


class ApiFuzzer:
    """Drives `processes` Sspi instances with random calls from `source`."""

    def __init__(self, source: Source, *, processes: int = 3, threaded: bool = False) -> None:
        self.source = source
        self.threaded = threaded
        self.report = FuzzReport()
        self.rules = frozenset(load_rules())
        self.processes: list[_Process] = []
        self.issued: dict[tuple[int, int], tuple[int, HandleKind]] = {}
        self.live: dict[tuple[int, int], tuple[_Process, SecHandle, HandleKind]] = {}
        self.retired: list[tuple[_Process, SecHandle, HandleKind]] = []
        self.tokens: list[bytes] = [b"", b"NTLMSSP\x00"]
        self.process_count = processes
        self._indices = itertools.count()
        self.trail: collections.deque[tuple[int, str, dict[str, Any]]] = collections.deque(maxlen=6)

    # -- choices -------------------------------------------------------------------------------

    def pick(self, options: Sequence[_T]) -> _T:
        return options[self.source.integer(0, len(options) - 1)]

    def chance(self, percent: int) -> bool:
        return self.source.integer(0, 99) < percent

    def _text(self, parameter: str) -> Any:
        kind = self.source.integer(0, 29)
        if kind == 0:
            return _Wrong(parameter)
        if kind == 1:
            return "x\ud800y"  # a lone surrogate
        if kind == 2:
            return "n" * self.pick((0x7FFF, 0x8000, 0x10001))
        return self.pick(("alice", "bob", "CONTOSO", "", "host/srv", "srv.contoso.com", "é"))

    def _u32(self, parameter: str, usual: Sequence[int]) -> Any:
        kind = self.source.integer(0, 19)
        if kind == 0:
            return _Wrong(parameter)
        if kind == 1:
            return _Wrong(parameter, self.pick((-1, 1 << 32)))  # out of range: ValueError
        if kind == 2:
            return self.source.integer(0, 0xFFFFFFFF)
        return self.pick(usual)

    def _handle(self, process: _Process, kind: HandleKind, parameter: str) -> Any:
        choice = self.source.integer(0, 15)
        if choice > 11:
            choice = 0
        own = [h for p, h, k in self.live.values() if p is process and k is kind]
        if choice <= 4 and own:
            return self.pick(own)  # live
        if choice == 5 and self.retired:
            return self.pick(self.retired)[1]  # stale, maybe of another instance
        if choice == 6 and self.live:
            return self.pick(list(self.live.values()))[1]  # maybe foreign, maybe wrong kind
        if choice == 7:
            return SecHandle(self.source.integer(0, ULONG_PTR_MAX), self.source.integer(0, 3))
        if choice == 8 and self.issued:  # forged: an issued value with its serial moved
            lower, upper = self.pick(list(self.issued))
            return SecHandle(lower + self.source.integer(1, 1000), upper)
        if choice == 9:
            return SecHandle.invalid()
        if choice == 10:
            return _Wrong(parameter)
        return None

    def _token(self, parameter: str) -> Any:
        choice = self.source.integer(0, 19)
        if choice == 0:
            return _Wrong(parameter)
        if choice == 1:
            return None
        # The latest tokens most often, so handshakes get to their later legs.
        token = self.pick(self.tokens[-3:] if choice > 9 else self.tokens)
        if choice == 2:
            return bytes(self.source.integer(0, 255) for _ in range(self.source.integer(0, 24)))
        if choice == 3 and token:  # one byte flipped
            at = self.source.integer(0, len(token) - 1)
            return (
                token[:at] + bytes([token[at] ^ (1 << self.source.integer(0, 7))]) + token[at + 1 :]
            )
        if choice == 4 and token:
            return token[: self.source.integer(0, len(token) - 1)]  # truncated
        if choice == 5:
            return [SecBuffer(self.pick((0, 1, 2, 17, 0x1000)), token, self.pick((None, 0, 8)))]
        return token

    def _output_args(self) -> dict[str, Any]:
        """Caller-supplied output buffers (BUF-002) and the data representation, sometimes."""
        args: dict[str, Any] = {}
        choice = self.source.integer(0, 9)
        if choice == 0:
            args["output"] = _Wrong("output")
        elif choice <= 2:
            size = self.pick((0, 4, 8, 4096, 48256))
            args["output"] = [SecBuffer(self.pick((2, 0, 1)), b"", size)]
        if self.chance(10):
            args["target_data_rep"] = self._u32("target_data_rep", (0x10, 0, 0x10000))
        return args

    def _auth_data(self, package: Any) -> Any:
        choice = self.source.integer(0, 9)
        if choice <= 1:
            return None
        if choice >= 8:
            choice = 3
        if choice == 2:
            return self.pick((5, "alice", object()))  # not understood: ACH-007, never a raise
        if choice <= 4:
            user, password = self.pick(list(_ACCOUNTS.items()))
            return AuthIdentity(user=user.split("\\")[1], password=password, domain="CONTOSO")
        if choice == 5:
            return AuthIdentity(
                user=self._plain_text(), password=self._plain_text(), domain=self._plain_text()
            )
        certificate = None if self.chance(30) else Certificate(self._plain_text())
        return SchannelCred(certificate=certificate, protocols=self.pick(("tls1.2", "tls1.3")))

    def _plain_text(self) -> str:
        """A str for a credential field: one in four is one no message can carry (ROB-001)."""
        if self.chance(25):
            return self.pick(("x\ud800y", "\udfff", "n" * 0x8000, "n" * 0x10001, "é" * 0x8001))
        text = self._text("text")
        return text if isinstance(text, str) else "w"

    def _callback(self) -> Any:
        choice = self.source.integer(0, 5)
        if choice == 0:
            return None
        if choice == 1:

            def raising(ctx: Any, data: Any) -> None:
                raise _PlantedCallbackError("a callback that raises")

            return raising
        if choice == 2:

            def misusing(ctx: Any, process: Any) -> None:
                process.sspi.free_async_context(ctx)
                process.sspi.free_async_context(ctx)  # ASY-053

            return misusing
        return lambda ctx, data: None

    # -- the processes -------------------------------------------------------------------------

    def _new_process(self) -> _Process:
        kinds = 4 if self.threaded else 3
        choice = self.source.integer(0, kinds - 1)
        scheduler: Any = (
            ManualScheduler(),
            InlineScheduler(),
            RandomScheduler(self.source.integer(0, 1 << 16)),
            None,
        )[choice]
        if scheduler is None:
            scheduler = ThreadedScheduler()
        sspi = Sspi(
            accounts=_ACCOUNTS,
            profile=self.pick(tuple(PROFILES)),
            scheduler=scheduler,
            strict=self.chance(60),
            async_any_package=self.chance(50),
            rotate_context_handles=self.chance(25),
        )
        if self.threaded:
            sspi.thread_safe = True
        return _Process(next(self._indices), sspi, scheduler)

    # -- one call ------------------------------------------------------------------------------

    def _arguments(self, process: _Process, method: str) -> dict[str, Any]:
        h = self._handle
        cred, ctx = HandleKind.CREDENTIAL, HandleKind.CONTEXT
        actx: Any = None
        if process.async_contexts and self.chance(90):
            actx = self.pick(process.async_contexts)
        elif self.chance(30) and len(self.processes) > 1:
            other = self.pick(self.processes)
            actx = self.pick(other.async_contexts) if other.async_contexts else None
        elif self.chance(10):
            actx = _Wrong("async_context")
        if method == "acquire_credentials_handle":
            package = self.pick(_PACKAGES) if self.chance(90) else self._text("package")
            return {
                "package": package,
                "credential_use": self._u32("credential_use", _USES),
                "auth_data": self._auth_data(package),
                "principal": None if self.chance(70) else self._text("principal"),
            }
        if method in ("free_credentials_handle",):
            return {"credential": h(process, cred, "credential")}
        if method == "initialize_security_context":
            return {
                "credential": h(process, cred, "credential"),
                "context": h(process, ctx, "context"),
                "target_name": self._text("target_name") if self.chance(50) else "srv.contoso.com",
                "context_req": self._u32("context_req", (0, 0x100, 0x4 | 0x8 | 0x10 | 0x800)),
                "input": self._token("input"),
                **self._output_args(),
            }
        if method == "accept_security_context":
            return {
                "credential": h(process, cred, "credential"),
                "context": h(process, ctx, "context"),
                "input": self._token("input"),
                "context_req": self._u32("context_req", (0, 0x100, 0x10000)),
                **self._output_args(),
            }
        if method == "complete_auth_token":
            return {"context": h(process, ctx, "context"), "token": self._token("token")}
        if method in ("delete_security_context",):
            return {"context": h(process, ctx, "context")}
        if method == "query_context_attributes":
            return {
                "context": h(process, ctx, "context"),
                "attribute": self._u32("attribute", (0, 1, 2, 4, 10, 0x59)),
            }
        if method == "query_security_package_info":
            return {"package_name": self.pick(_PACKAGES)}
        if method == "free_context_buffer":
            if process.allocations and self.chance(70):
                return {"buffer": self.pick(process.allocations)}
            return {"buffer": self.pick((None, 0, 12345, _Wrong("buffer")))}
        if method in (
            "free_async_context",
            "reinit_async_context",
            "get_async_call_status",
            "async_context_requires_notify",
        ):
            return {"async_context": actx}
        if method == "set_async_notify_callback":
            return {"async_context": actx, "callback": self._callback(), "callback_data": process}
        out = Out() if self.chance(90) else None
        if method == "acquire_credentials_handle_async":
            return {
                "async_context": actx,
                "package": self.pick(_PACKAGES),
                "credential_use": self._u32("credential_use", _USES),
                "auth_data": self._auth_data(None),
                "out": out,
            }
        if method in ("initialize_security_context_async", "accept_security_context_async"):
            args = {
                "async_context": actx,
                "credential": h(process, cred, "credential"),
                "context": h(process, ctx, "context"),
                "context_req": self._u32("context_req", (0, 0x100)),
                "input": self._token("input"),
                "out": out,
            }
            if method == "initialize_security_context_async":
                args["target_name"] = "srv.contoso.com"
            return args
        if method == "free_credentials_handle_async":
            return {"async_context": actx, "credential": h(process, cred, "credential")}
        if method == "delete_security_context_async":
            return {"async_context": actx, "context": h(process, ctx, "context")}
        return {}

    def step(self) -> None:
        """One random call (or scheduler action) on a random process, then every check."""
        while len(self.processes) < self.process_count:
            self.processes.append(self._new_process())
        process = self.pick(self.processes)
        method = self.pick(_METHODS)
        self.report.steps += 1
        if method == "run_scheduler":
            return self._settle_all()
        if method == "configure":
            return self._configure(process)
        if method == "converse":
            return self._converse(process)
        self._invoke(process, method, self._arguments(process, method))
        self._check(process)
        if sum(len(p.async_contexts) for p in self.processes) + len(self.live) > _LIMIT * 3:
            self.teardown(final=False)

    def _invoke(self, process: _Process, method: str, args: dict[str, Any]) -> Any:
        """Make one call; classify its outcome (declared or a finding); its result or None."""
        wrong = [v.parameter for v in args.values() if isinstance(v, _Wrong)]
        call_args = {k: (v.value if isinstance(v, _Wrong) else v) for k, v in args.items()}
        if method == "create_async_context":
            call_args, wrong = {}, []
        before = process.sspi.statistics()
        self.report.calls += 1
        self.trail.append((process.index, method, args))
        out = call_args.get("out")
        if isinstance(out, Out):  # written at completion, whatever the call raises
            process.outs.append(out)
        try:
            result = getattr(process.sspi, method)(**call_args)
        except (TypeError, ValueError) as error:
            self._count(f"{type(error).__name__}")
            if not any(name in str(error) for name in wrong):  # must name what was wrong
                self._find("undeclared exception", f"{method}{_show(args)} raised {error!r}")
            elif process.sspi.statistics() != before and type(process.scheduler) in (
                ManualScheduler,
                InlineScheduler,
            ):  # (RandomScheduler may complete calls on entry, before the check raised)
                self._find("refused call changed state", f"{method} raised {error!r}")
        except SspiMisuse as misuse:
            self._count(f"misuse {misuse.rule}")
            if misuse.rule not in self.rules:
                self._find("misuse names no rule", f"{method}: {misuse!r}")
        except Exception as error:  # anything else is undeclared
            self._find("undeclared exception", f"{method}{_show(args)} raised {error!r}")
        else:
            self._check_result(process, method, call_args, result)
            status = getattr(result, "status", result)
            if (
                status.__class__ is SecStatus
                and is_error(status)
                and process.sspi.statistics() != before
                and type(process.scheduler) is ManualScheduler
            ):  # LIF-005: a refused call changes nothing
                self._find("refused call changed state", f"{method}{_show(args)} -> {status!r}")
            return result
        return None

    def _converse(self, client: _Process) -> None:
        """A coherent handshake between two processes, each leg a checked call: the deep
        states (established contexts, final legs, queries) that random calls rarely reach."""
        server = self.pick(self.processes)
        package = self.pick(("NTLM", "Negotiate", "Schannel"))
        schannel = package == "Schannel"
        auth: Any = (
            None if schannel or self.chance(50) else AuthIdentity("alice", "Passw0rd!", "CONTOSO")
        )
        subject = "CN=srv.contoso.com"
        if self.chance(25):  # odd credentials must fail at acquire or run to the end (ROB-001)
            auth = self._auth_data(package)
            subject = self._plain_text()
        ccred = self._invoke(
            client,
            "acquire_credentials_handle",
            {"package": package, "credential_use": 2, "auth_data": auth, "principal": None},
        )
        scred = self._invoke(
            server,
            "acquire_credentials_handle",
            {
                "package": package,
                "credential_use": 1,
                "principal": None,
                "auth_data": SchannelCred(Certificate(subject)) if schannel else None,
            },
        )
        if ccred is None or scred is None or ccred.credential is None or scred.credential is None:
            return
        cctx = sctx = None
        token: bytes | None = None
        for _ in range(4):
            leg = self._invoke(
                client,
                "initialize_security_context",
                {
                    "credential": ccred.credential,
                    "context": cctx,
                    "target_name": "srv.contoso.com",
                    "context_req": 0x4 | 0x8 | 0x10 | 0x800 if schannel else 0,
                    "input": token,
                },
            )
            if leg is None or leg.status not in (
                SecStatus.SEC_E_OK,
                SecStatus.SEC_I_CONTINUE_NEEDED,
            ):
                break
            cctx = leg.new_context or cctx
            token = self._mutated(leg.output_token) if self.chance(5) else leg.output_token
            if not token:
                break
            acc = self._invoke(
                server,
                "accept_security_context",
                {
                    "credential": scred.credential,
                    "context": sctx,
                    "input": token,
                    "context_req": 0x4 | 0x8 | 0x10 | 0x800 if schannel else 0,
                },
            )
            if acc is None or acc.status not in (
                SecStatus.SEC_E_OK,
                SecStatus.SEC_I_CONTINUE_NEEDED,
            ):
                break
            sctx = acc.new_context or sctx
            token = acc.output_token
            if not token:
                break
        for process, context in ((client, cctx), (server, sctx)):
            if context is not None:
                self._invoke(
                    process,
                    "query_context_attributes",
                    {"context": context, "attribute": self.pick((0, 1, 2, 10))},
                )

    def _mutated(self, token: bytes) -> bytes:
        if not token:
            return token
        at = self.source.integer(0, len(token) - 1)
        return token[:at] + bytes([token[at] ^ 0xFF]) + token[at + 1 :]

    def _configure(self, process: _Process) -> None:
        choice = self.source.integer(0, 2)
        if choice == 0:
            process.sspi.profile = self.pick(
                tuple(PROFILES)
            )  # ASY-021: calls in flight keep theirs
        elif choice == 1:
            process.sspi.strict = not process.sspi.strict
        else:
            process.sspi.async_any_package = not process.sspi.async_any_package

    def _count(self, outcome: str) -> None:
        self.report.outcomes[outcome] = self.report.outcomes.get(outcome, 0) + 1

    def _find(self, invariant: str, detail: str) -> None:
        """Record a finding with the calls that led to it (the last few)."""
        recent = "; ".join(f"[{i}] {m}{_show(a)}" for i, m, a in self.trail)
        self.report.findings.append(
            Finding(self.report.calls, invariant, f"{detail}\n    after: {recent}")
        )

    # -- checks --------------------------------------------------------------------------------

    def _check_result(
        self, process: _Process, method: str, args: dict[str, Any], result: Any
    ) -> None:
        call = _CALLS.get(method)
        status = getattr(result, "status", result)
        if call is not None:
            codes = CALL_CODES.get(call) or (_QUEUE_CODES | ASYNC_CALL_CODES.get(call, frozenset()))
            self._count(f"{call.value} {getattr(status, 'name', status)}")
            if status.__class__ is not SecStatus or status not in codes:
                self._find("status outside the call's code list", f"{method} returned {status!r}")
        elif method == "create_async_context" and result is not None:
            process.async_contexts.append(result)
        self._harvest(process, result)

    def _harvest(self, process: _Process, result: Any) -> None:
        credential = getattr(result, "credential", None)
        if isinstance(credential, SecHandle):
            self._see(process, credential, HandleKind.CREDENTIAL)
        new_context = getattr(result, "new_context", None)
        if isinstance(new_context, SecHandle) and new_context.is_valid:
            self._see(process, new_context, HandleKind.CONTEXT)
        token = getattr(result, "output_token", b"")
        if token:
            self.tokens.append(token)
            del self.tokens[:-64]
        output = getattr(result, "output", None) or ()
        for holder in (result, getattr(result, "buffer", None), *output):
            allocation = getattr(holder, "allocation", None)
            if isinstance(allocation, int):
                process.allocations.append(allocation)

    def _see(self, process: _Process, handle: SecHandle, kind: HandleKind) -> None:
        key = (handle.lower, handle.upper)
        if process.sspi.classify(handle, kind) is not HandleClass.LIVE:
            return  # e.g. the context handle of a leg that failed, or written after a delete
        owner = self.issued.get(key)
        if owner is None:
            self.issued[key] = (process.index, kind)
            self.live[key] = (process, handle, kind)
        elif key not in self.live:
            self._find("retired handle revived", f"{handle!r} is live again in {process.index}")
            self.live[key] = (process, handle, kind)
        elif owner != (process.index, kind):
            self._find("handle issued twice", f"{handle!r} by {owner} and {process.index}")

    def _check(self, process: _Process) -> None:
        for out_process in self.processes:
            for out in [o for o in out_process.outs if o.written]:
                out_process.outs.remove(out)
                self._harvest(out_process, out)
        for key, (owner, handle, kind) in list(self.live.items()):
            if owner.sspi.classify(handle, kind) is not HandleClass.LIVE:
                del self.live[key]
                self.retired.append((owner, handle, kind))
        for owner, handle, kind in self.retired[-3:]:
            if owner.sspi.classify(handle, kind) is HandleClass.LIVE:
                self._find("retired handle revived", f"{handle!r} of process {owner.index}")
        for other in self.processes:
            if other is not process and self.live:
                _, handle, kind = next(iter(self.live.values()))
                if (
                    other.sspi.classify(handle, kind) is HandleClass.LIVE
                    and self.live[(handle.lower, handle.upper)][0] is not other
                ):
                    self._find("handle live in two instances", f"{handle!r}")
        for each in self.processes:
            self._check_statistics(each)

    def _check_statistics(self, process: _Process) -> None:
        stats = process.sspi.statistics()
        if any(value < 0 for value in attrs.astuple(stats)):
            self._find("negative statistics", f"process {process.index}: {stats!r}")
        if self.threaded:
            return  # the worker may be mid-completion; checked after settling
        live = [k for p, _, k in self.live.values() if p is process]
        credentials = live.count(HandleKind.CREDENTIAL)
        contexts = live.count(HandleKind.CONTEXT)
        alive = [
            a
            for a in process.async_contexts
            if process.sspi.lifecycle_state(a) is not AsyncState.FREED
        ]
        if (stats.credentials, stats.contexts) != (credentials, contexts):
            self._find(
                "statistics disagree with the handles issued",
                f"process {process.index}: {stats!r}, seen live {credentials} credentials, "
                f"{contexts} contexts",
            )
        if stats.async_contexts != len(alive):
            self._find(
                "statistics disagree with the async contexts",
                f"process {process.index}: {stats!r}, {len(alive)} not freed",
            )

    def _settle_all(self) -> None:
        """Run every scheduler dry (a non-strict foreign call sits in the caller's scheduler
        but pends the owner's context); then nothing may read pending."""
        for _ in range(5):
            for process in self.processes:
                self._run_dry(process)
            if not any(p.sspi.statistics().pending_calls for p in self.processes):
                break
        self._check(self.processes[0])  # harvest what completed, retire what went
        for process in self.processes:
            self._check_settled(process)

    def _run_dry(self, process: _Process) -> None:
        run_all = process.scheduler.run_all
        for _ in range(100):
            try:
                run_all()
            except SspiMisuse as misuse:  # a callback's misuse, raised to the driver (ASY-023)
                self._count(f"misuse {misuse.rule}")
                if misuse.rule not in self.rules:
                    self._find("misuse names no rule", repr(misuse))
                continue
            except Exception as error:
                self._find("undeclared exception", f"run_all() raised {error!r}")
                continue
            break

    def _check_settled(self, process: _Process) -> None:
        stuck = [
            a
            for a in process.async_contexts
            if process.sspi.lifecycle_state(a) is AsyncState.PENDING
        ]
        stats = process.sspi.statistics()
        if stuck or stats.pending_calls:
            self._find(
                "call pending after run_all",
                f"process {process.index}: {len(stuck)} async contexts pending, {stats!r}",
            )
        for error in process.sspi.callback_errors:
            if not error.error.startswith(_PlantedCallbackError.__name__):
                self._find("a completion raised", f"{error.call.value}: {error.error}")
        process.sspi.callback_errors.clear()
        if self.threaded:
            self._check_statistics_settled(process)

    def _check_statistics_settled(self, process: _Process) -> None:
        self.threaded, threaded = False, self.threaded
        try:
            self._check_statistics(process)
        finally:
            self.threaded = threaded

    def teardown(self, final: bool = True) -> None:
        """Settle, free everything the fuzzer saw, and require nothing alive (no leak)."""
        if not self.processes:
            return
        for process in self.processes:
            process.sspi.strict = False  # teardown frees in any order; misuse is recorded
        self._settle_all()
        for process in self.processes:
            sspi = process.sspi
            for owner, handle, kind in list(self.live.values()):
                if owner is process:
                    if kind is HandleKind.CONTEXT:
                        sspi.delete_security_context(handle)
                    else:
                        sspi.free_credentials_handle(handle)
            for allocation in process.allocations:
                sspi.free_context_buffer(allocation)
            for actx in process.async_contexts:
                if sspi.lifecycle_state(actx) is not AsyncState.FREED:
                    sspi.free_async_context(actx)
        for process in self.processes:
            self._run_dry(process)
        for process in self.processes:
            sspi = process.sspi
            stats = sspi.statistics()
            if stats.anything_alive:
                self._find("leak after teardown", f"process {process.index}: {stats!r}")
            process.async_contexts.clear()
            process.allocations.clear()
            process.outs.clear()
            sspi.strict = self.chance(60)
            if final:
                sspi.close()
        self.live.clear()
        self.retired.clear()
        if final:
            self.processes.clear()
        else:  # the instances are empty again: keep them, but for one with a new configuration
            index = self.source.integer(0, len(self.processes) - 1)
            self.processes[index].sspi.close()
            self.processes[index] = self._new_process()

    def run(self, calls: int) -> FuzzReport:
        start = time.perf_counter()
        try:
            for _ in range(calls):
                self.step()
        finally:
            self.teardown()
            self.report.seconds = time.perf_counter() - start
        return self.report


_METHODS = (
    "enumerate_security_packages",
    "query_security_package_info",
    "acquire_credentials_handle",
    "acquire_credentials_handle",
    "free_credentials_handle",
    "initialize_security_context",
    "initialize_security_context",
    "accept_security_context",
    "accept_security_context",
    "complete_auth_token",
    "delete_security_context",
    "query_context_attributes",
    "free_context_buffer",
    "create_async_context",
    "create_async_context",
    "free_async_context",
    "reinit_async_context",
    "set_async_notify_callback",
    "async_context_requires_notify",
    "get_async_call_status",
    "acquire_credentials_handle_async",
    "initialize_security_context_async",
    "accept_security_context_async",
    "free_credentials_handle_async",
    "delete_security_context_async",
    "run_scheduler",
    "run_scheduler",
    "configure",
    "converse",
    "converse",
)
_CALLS = {
    "enumerate_security_packages": Call.ENUMERATE_SECURITY_PACKAGES,
    "query_security_package_info": Call.QUERY_SECURITY_PACKAGE_INFO,
    "acquire_credentials_handle": Call.ACQUIRE_CREDENTIALS_HANDLE,
    "free_credentials_handle": Call.FREE_CREDENTIALS_HANDLE,
    "initialize_security_context": Call.INITIALIZE_SECURITY_CONTEXT,
    "accept_security_context": Call.ACCEPT_SECURITY_CONTEXT,
    "complete_auth_token": Call.COMPLETE_AUTH_TOKEN,
    "delete_security_context": Call.DELETE_SECURITY_CONTEXT,
    "query_context_attributes": Call.QUERY_CONTEXT_ATTRIBUTES,
    "free_context_buffer": Call.FREE_CONTEXT_BUFFER,
    "acquire_credentials_handle_async": Call.ACQUIRE_CREDENTIALS_HANDLE_ASYNC,
    "initialize_security_context_async": Call.INITIALIZE_SECURITY_CONTEXT_ASYNC,
    "accept_security_context_async": Call.ACCEPT_SECURITY_CONTEXT_ASYNC,
    "free_credentials_handle_async": Call.FREE_CREDENTIALS_HANDLE_ASYNC,
    "delete_security_context_async": Call.DELETE_SECURITY_CONTEXT_ASYNC,
}


def _show(args: dict[str, Any]) -> str:
    shown = {k: (f"<wrong {v.parameter}>" if isinstance(v, _Wrong) else v) for k, v in args.items()}
    return "(" + ", ".join(f"{k}={v!r}"[:80] for k, v in shown.items()) + ")"


def fuzz(calls: int, seed: int = 0, *, threaded: bool = False) -> FuzzReport:
    """Run `calls` random calls from a seeded source; the report lists every finding."""
    return ApiFuzzer(RandomSource(seed), threaded=threaded).run(calls)


def main(argv: Sequence[str] | None = None) -> int:
    """`python -m sspi_model.explore.fuzz --calls N --seed S`: a long campaign."""
    import argparse

    parser = argparse.ArgumentParser(prog="python -m sspi_model.explore.fuzz")
    parser.add_argument("--calls", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threaded", action="store_true", help="ThreadedScheduler too")
    options = parser.parse_args(argv)
    report = fuzz(options.calls, options.seed, threaded=options.threaded)
    print(
        f"{report.calls} calls in {report.seconds:.1f} s ({report.calls_per_second:,.0f} calls/s), "
        f"{len(report.findings)} finding(s)"
    )
    for finding in report.findings[:20]:
        print(f"  call {finding.call}: [{finding.invariant}] {finding.detail}")
    return 1 if report.findings else 0


if __name__ == "__main__":
    raise SystemExit(main())
