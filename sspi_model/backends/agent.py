"""AgentBackend: the Backend protocol over an SSPI agent process (agent/sspi-agent.c).

The agent is a small native program that makes the SSPI calls of its platform's secur32.dll and
speaks the line protocol of specs/agent-protocol.md on stdin/stdout. It runs under Wine
(`--backend wine`, see wine.py), natively on Windows, or anywhere a command reaches one
(`--backend agent:"ssh winbox C:\\tools\\sspi-agent.exe"`).

The agent answers the same plain-data calls as the native worker (native/calls.py), so this
backend is NativeBackend with the worker replaced by an agent: the same argument checks, the same
result types, the same isolation (native/worker.py's Supervisor). A dead agent is
BackendFailure("CRASH:<how>") (a fault the agent caught is named by its exception code, e.g.
CRASH:STATUS_ACCESS_VIOLATION; a killed one by its signal), an unanswered call is
BackendFailure("HANG"), the agent is replaced on reset(), and results already returned stay
valid: they are values, copied out of the reply.
"""

from __future__ import annotations

import contextlib
import io
import queue
import shlex
import subprocess
import threading
import weakref
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from sspi_model.backends.base import BackendFailure, Capabilities
from sspi_model.backends.native.backend import NativeBackend
from sspi_model.backends.native.calls import EXPIRY_SENTINEL, Package
from sspi_model.backends.native.worker import (
    STARTUP_TIMEOUT,
    Supervisor,
    WorkerError,
    WorkerProcess,
    _StderrTail,
    crash_outcome,
)

PROTOCOL_VERSION = 1
HELLO = "SSPI-AGENT"
_DYING = 5.0  # seconds an agent that reported a CRASH gets to terminate by itself

__all__ = ["AgentBackend", "AgentProcess", "AgentUnavailable"]


class AgentUnavailable(OSError):
    """The agent could not be started (command missing, wrong protocol, died at start)."""


# -- the wire format (specs/agent-protocol.md) ---------------------------------------------


def _int(value: int) -> str:
    return f"i:{value}"


def _opt_int(value: int | None) -> str:
    return "-" if value is None else _int(value)


def _handle(handle: tuple[int, int] | None) -> str:
    # AGT-001: the values exactly as given; None is a NULL pointer.
    return "-" if handle is None else f"h:{handle[0]}:{handle[1]}"


def _text(text: str | None) -> str:
    return "-" if text is None else "s:" + text.encode("utf-16-le", "surrogatepass").hex()


def _buffers(buffers: Sequence[tuple[int, bytes, int]] | None) -> str:
    if buffers is None:
        return "-"
    parts = [f"n:{len(buffers)}"]
    for kind, data, cb in buffers:
        parts += [_int(kind), _int(cb), "b:" + data.hex()]
    return " ".join(parts)


def _identity(identity: tuple[str, str, str] | None) -> str:
    if identity is None:
        return "-"
    # AGT-001: an empty field is a NULL pointer with length 0, as C callers write it.
    return " ".join(["n:3", *(_text(part or None) for part in identity)])


class _Fields:
    """The fields of one reply, read in order."""

    def __init__(self, text: str) -> None:
        self._tokens = text.split()
        self._next = 0

    def _take(self, prefix: str) -> str | None:
        if self._next >= len(self._tokens):
            raise WorkerError(f"agent reply ends before its {prefix} field")
        token = self._tokens[self._next]
        self._next += 1
        if token == "-":
            return None
        if not token.startswith(prefix):
            raise WorkerError(f"agent reply field {token[:20]!r} is not {prefix}...")
        return token[len(prefix) :]

    def number(self) -> int:
        value = self.optional_number()
        if value is None:
            raise WorkerError("agent reply: an integer field is '-'")
        return value

    def optional_number(self) -> int | None:
        value = self._take("i:")
        return None if value is None else int(value)

    def handle(self) -> tuple[int, int]:
        value = self._take("h:")
        if value is None:
            raise WorkerError("agent reply: a handle field is '-'")
        lower, upper = value.split(":")
        return int(lower), int(upper)

    def text(self) -> str | None:
        value = self._take("s:")
        return None if value is None else bytes.fromhex(value).decode("utf-16-le", "replace")

    def data(self) -> bytes:
        value = self._take("b:")
        return b"" if value is None else bytes.fromhex(value)

    def count(self) -> int | None:
        value = self._take("n:")
        return None if value is None else int(value)

    def word(self) -> str | None:
        return self._take("k:")

    def package(self) -> Package | None:
        if self._tokens[self._next : self._next + 1] == ["-"]:
            self._next += 1
            return None
        name, comment = self.text(), self.text()
        numbers = (self.number(), self.number(), self.number(), self.number())
        return (name or "", comment or "", *numbers)


def _expiry(value: int) -> int | None:
    return None if value == EXPIRY_SENTINEL else value


# -- the agent process ---------------------------------------------------------------------


class AgentProcess(WorkerProcess):
    """One agent: its process, a thread reading reply lines into a queue, its stderr tail.

    Answers the plain-data calls of native/calls.py (NativeCalls) over the protocol. As there,
    memory the caller owns in C (package infos, user names) is released in the agent at once and
    its pointer reported; the caller's later FreeContextBuffer of such a pointer is answered
    SEC_E_OK here, once per report, without asking the agent.
    """

    def __init__(self, command: Sequence[str], env: Mapping[str, str] | None = None) -> None:
        self.process = subprocess.Popen(
            list(command),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            bufsize=0,
            env=None if env is None else dict(env),
        )
        assert self.process.stdin and self.process.stdout and self.process.stderr
        self._replies: queue.Queue[Any] = queue.Queue()
        threading.Thread(target=self._read, args=(self.process.stdout,), daemon=True).start()
        self._stderr = _StderrTail(self.process.stderr)
        self.packages: tuple[Any, ...] | None = None
        self.used = False
        self._released: dict[int, int] = {}

    def _read(self, stream: Any) -> None:
        # The pipe is unbuffered (bufsize=0, for the requests); reading lines from it raw would
        # cost a system call per byte.
        with io.BufferedReader(stream, 1 << 16) as lines:  # closed by its only reader
            try:
                for raw in lines:
                    text = raw.decode("ascii", "replace").rstrip("\r\n")
                    if text:  # a CRASH line after a half-written reply starts a fresh line
                        kind, _, rest = text.partition(" ")
                        self._replies.put((kind, rest))
            except Exception:  # a broken pipe: treated like the end of file
                pass
        self._replies.put(None)

    def ready(self) -> tuple[Any, ...]:
        """Wait for the agent's greeting, then list the packages (as every worker does first,
        so every agent starts from the same library state; that pointer is never reported)."""
        if self.packages is None:
            kind, value = self._wait(0, STARTUP_TIMEOUT, "starting the agent")
            if (kind, value) != (HELLO, str(PROTOCOL_VERSION)):  # AGT-004
                self.kill()
                raise AgentUnavailable(
                    f"not an sspi-agent speaking protocol {PROTOCOL_VERSION}: "
                    f"its first line was {f'{kind} {value}'[:80]!r}"
                )
            _status, packages, allocation = self.call(
                "enumerate_security_packages", (), STARTUP_TIMEOUT
            )
            self._released.pop(allocation or 0, None)
            self.packages = packages
            self.used = False
        return self.packages

    def call(self, name: str, args: tuple[Any, ...], timeout: float) -> Any:
        self.used = True
        if name == "free_context_buffer" and self._answered_here(args[0]):  # AGT-003
            return 0
        encode, decode = _CALLS[name]
        mark = self._stderr.total
        assert self.process.stdin is not None
        with contextlib.suppress(OSError):  # if it died already, _wait reports how
            self.process.stdin.write((encode(*args) + "\n").encode("ascii"))
        kind, value = self._wait(mark, timeout, name)
        if kind == "CRASH":  # AGT-002: the agent caught a fault in the library and is dying
            code = int(value, 16)
            with contextlib.suppress(subprocess.TimeoutExpired):  # let it finish its stderr
                self.process.wait(timeout=_DYING)
            self.kill()
            raise BackendFailure(crash_outcome(code), self._detail(mark))
        if kind != "OK":
            raise WorkerError(f"{name}: the agent answered {kind} {value}")
        return decode(self, _Fields(value), args)

    def _answered_here(self, address: int | None) -> bool:
        pending = self._released.get(address or 0, 0)
        if not address or not pending:
            return False
        if pending == 1:
            del self._released[address]
        else:
            self._released[address] = pending - 1
        return True

    def released(self, address: int | None) -> int | None:
        if address:
            self._released[address] = self._released.get(address, 0) + 1
        return address


# Each call: how its request line is written from NativeCalls' arguments, and how its reply
# fields become NativeCalls' result (the decoder also sees the arguments).
Decoder = Callable[[AgentProcess, _Fields, tuple[Any, ...]], Any]


def _enumerate(agent: AgentProcess, f: _Fields, args: tuple[Any, ...]) -> Any:
    status, count = f.number(), f.count() or 0
    packages = tuple(p for p in (f.package() for _ in range(count)) if p is not None)
    return status, packages, agent.released(f.optional_number())


def _query_package(agent: AgentProcess, f: _Fields, args: tuple[Any, ...]) -> Any:
    status, package = f.number(), f.package()
    return status, package, agent.released(f.optional_number())


def _acquire(agent: AgentProcess, f: _Fields, args: tuple[Any, ...]) -> Any:
    status, written, expiry = f.number(), f.handle(), f.number()
    return status, (None if written == (0, 0) else written), _expiry(expiry)


def _status(agent: AgentProcess, f: _Fields, args: tuple[Any, ...]) -> Any:
    return f.number()


def _leg(agent: AgentProcess, f: _Fields, args: tuple[Any, ...]) -> Any:
    """(status, new handle, ((type, token),), attr, expiry, input after), as calls.py's _leg:
    phNewContext {0, 0} after a first leg (no phContext) means the library wrote nothing."""
    status, written = f.number(), f.handle()
    output = tuple((f.number(), f.data()) for _ in range(f.count() or 0))
    attr, expiry = f.number(), f.number()
    count = f.count()
    after = None
    if count is not None:
        after = tuple(_buffer_after(f) for _ in range(count))
    first = args[1] is None
    new = None if first and written == (0, 0) else written
    return status, new, output, attr, _expiry(expiry), after


def _buffer_after(f: _Fields) -> tuple[int, bytes, int]:
    kind, cb = f.number(), f.number()
    return kind, f.data(), cb


_WIDTHS = {"sizes": 4, "stream_sizes": 5, "lifespan": 2}


def _query_attribute(agent: AgentProcess, f: _Fields, args: tuple[Any, ...]) -> Any:
    status, kind = f.number(), f.word()
    if kind is None:
        return status, None
    if kind in _WIDTHS:
        return status, (kind, tuple(f.number() for _ in range(_WIDTHS[kind])))
    if kind == "names":
        name = f.text() or ""
        return status, ("names", (name, agent.released(f.optional_number()) or 0))
    package = f.package()
    return status, ("package_info", (package, agent.released(f.optional_number()) or 0))


def _isc(cred: Any, ctx: Any, target: Any, req: int, inputs: Any, rep: int) -> str:
    return " ".join([
        "InitializeSecurityContextW", _handle(cred), _handle(ctx), _text(target), _int(req),
        _int(rep), _buffers(inputs),
    ])


def _asc(cred: Any, ctx: Any, inputs: Any, req: int, rep: int) -> str:
    return " ".join([
        "AcceptSecurityContext", _handle(cred), _handle(ctx), _int(req), _int(rep),
        _buffers(inputs),
    ])


def _ach(package: Any, use: int, identity: Any, principal: Any) -> str:
    return " ".join([
        "AcquireCredentialsHandleW", _text(principal), _text(package), _int(use),
        _identity(identity),
    ])


_CALLS: dict[str, tuple[Callable[..., str], Decoder]] = {
    "enumerate_security_packages": (lambda: "EnumerateSecurityPackagesW", _enumerate),
    "query_security_package_info": (
        lambda name: f"QuerySecurityPackageInfoW {_text(name)}", _query_package,
    ),
    "acquire_credentials_handle": (_ach, _acquire),
    "free_credentials_handle": (lambda h: f"FreeCredentialsHandle {_handle(h)}", _status),
    "initialize_security_context": (_isc, _leg),
    "accept_security_context": (_asc, _leg),
    "complete_auth_token": (
        lambda h, token: f"CompleteAuthToken {_handle(h)} {_buffers(token)}", _status,
    ),
    "delete_security_context": (lambda h: f"DeleteSecurityContext {_handle(h)}", _status),
    "query_context_attributes": (
        lambda h, attribute: f"QueryContextAttributesW {_handle(h)} {_int(attribute)}",
        _query_attribute,
    ),
    "free_context_buffer": (lambda p: f"FreeContextBuffer {_opt_int(p)}", _status),
}


# -- the backend ---------------------------------------------------------------------------


def split_command(command: str) -> list[str]:
    """Words as a POSIX shell splits them (quotes group), except that a backslash is an
    ordinary character: `ssh winbox C:\\tools\\sspi-agent.exe` keeps its Windows path."""
    lexer = shlex.shlex(command, posix=True)
    lexer.whitespace_split = True
    lexer.escape = ""
    lexer.commenters = ""
    return list(lexer)


class AgentBackend(NativeBackend):
    """An agent started from `command` (a list, or a string split like a shell would).

    `name` is the backend's name in reports (known divergences are read from
    specs/divergences/<name>.toml); `env` the agent's environment (default: this process's).
    `timeout` and `spare` are NativeBackend's: HANG after `timeout` seconds, and one agent
    started ahead of time so a reset swaps processes instead of waiting for a start.
    """

    def __init__(
        self,
        command: str | Sequence[str],
        *,
        name: str = "agent",
        timeout: float = 5.0,
        spare: bool = True,
        env: Mapping[str, str] | None = None,
    ) -> None:
        argv = tuple(split_command(command) if isinstance(command, str) else command)
        if not argv:
            raise ValueError("the agent command is empty")
        self.command = argv
        self.library = shlex.join(argv)  # what NativeBackend's messages call the library
        self._local = None
        environment = None if env is None else dict(env)

        def start() -> WorkerProcess:
            return AgentProcess(argv, environment)

        # Spare agents are shared by backends of the same command and environment.
        key = "agent:" + self.library
        if environment is not None:
            key += f" env#{hash(frozenset(environment.items())):x}"
        try:
            self._supervisor = Supervisor(key, timeout, spare=spare, start=start)
        except (OSError, BackendFailure) as error:
            raise AgentUnavailable(f"the agent {self.library!r} did not start: {error}") from None
        self._finalizer = weakref.finalize(self, self._supervisor.close)
        self.capabilities = Capabilities(
            name=name,
            packages=frozenset(package[0] for package in self._supervisor.packages),
            async_api=False,
        )

    def __repr__(self) -> str:
        return f"AgentBackend({list(self.command)!r}, name={self.capabilities.name!r})"
