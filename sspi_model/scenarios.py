"""Narrated demo scenarios: real client code run step by step on the model.

Each scenario is a function `(narrator, recorder=None) -> Recorder`. The scenario makes API
calls; a Recorder turns them into trace records and the Narrator prints each record as it
happens (the C name, the status name and value) followed by the state of every object.
Pass your own Recorder to keep the trace (`sspi-model demo --trace FILE`).
"""

from __future__ import annotations

import contextlib
import json
import textwrap
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import attrs

from sspi_model.async_api import AsyncContext, Out, SspiMisuse
from sspi_model.buffers import SecBuffer, SecBufferType
from sspi_model.constants import (
    ASC_REQ_CONNECTION,
    ISC_REQ_CONNECTION,
    SCHANNEL_SHUTDOWN,
    CredentialUse,
    SecPkgAttr,
)
from sspi_model.handles import SecHandle
from sspi_model.lifecycle import AsyncState
from sspi_model.packages.alpn import application_protocols
from sspi_model.packages.ntlm import AuthIdentity
from sspi_model.packages.schannel import Certificate, SchannelCred
from sspi_model.scheduling import InlineScheduler, ManualScheduler
from sspi_model.sspi import Sspi
from sspi_model.status import SecStatus, is_error
from sspi_model.trace import Record, Recorder, record_kind, status_name, status_value

ACCOUNTS = {"CONTOSO\\alice": "Passw0rd!"}
SERVER_CERTIFICATE = Certificate("CN=srv.contoso.com")
TARGET = "srv.contoso.com"
INBOUND, OUTBOUND = CredentialUse.INBOUND, CredentialUse.OUTBOUND
_TOKEN_KEYS = ("input", "token", "output", "message")


# -- narration -------------------------------------------------------------------------------


class Narrator:
    """Prints a scenario: headings, commentary, each record and the state after it.

    `write` receives one line at a time (print by default); `lines` keeps them all, so tests
    can read the narration. Colour is the caller's choice (the CLI enables it on a TTY).
    """

    def __init__(self, write: Callable[[str], None] | None = None, *, color: bool = False):
        self._write = write if write is not None else print
        self.color = color
        self.lines: list[str] = []
        self._indent = ""
        self._brief = False
        self._last: tuple[Record, Recorder] | None = None
        self._callbacks: dict[str, str] = {}  # async context symbol -> its callback's name

    def _emit(self, text: str) -> None:
        for line in text.splitlines() or [""]:
            self.lines.append(line)
            self._write(line)

    def _paint(self, text: str, code: str) -> str:
        return f"\033[{code}m{text}\033[0m" if self.color else text

    @contextlib.contextmanager
    def indented(self) -> Iterator[None]:
        """Indent what happens inside a callback."""
        outer = self._indent
        self._indent = outer + "    "
        try:
            yield
        finally:
            self._indent = outer

    @contextlib.contextmanager
    def briefly(self) -> Iterator[None]:
        """Set-up steps: one line per record, and the state of every object once, at the end."""
        self._brief, self._last = True, None
        try:
            yield
        finally:
            self._brief = False
            if self._last is not None:
                record, recorder = self._last
                for line in _state_lines(recorder, record, 92 - len(self._indent)):
                    self._emit(f"{self._indent}     {self._paint(line, '36')}")

    def heading(self, text: str) -> None:
        self._emit("")
        self._emit(self._paint(f"== {text} ==", "1"))

    def say(self, text: str) -> None:
        wrapped = textwrap.fill(
            text, width=96, initial_indent=self._indent, subsequent_indent=self._indent
        )
        self._emit(self._paint(wrapped, "2"))

    def status(self, name: str) -> str:
        value = status_value(name)
        text = f"{name} (0x{value:08X})" if name[:2] != "0x" else f"{name} (poisoned memory)"
        return self._paint(text, "31" if is_error(value) else "32")

    def step(self, record: Record, recorder: Recorder) -> None:
        """Narrate one record, then the state of every object after it."""
        pad = self._indent
        head = f"{pad}[{record['seq']:>2}] {record.get('process', '?'):<13} "
        result = self._result(record)
        if self._brief:
            self._last = (record, recorder)
            name = record.get("call", record_kind(record))
            out = record.get("out") or {}
            made = [str(out[key]) for key in ("credential", "context") if out.get(key)]
            status = self.status(record["status"]) if "status" in record else result
            self._emit(f"{head}{self._paint(name, '1')} -> {'  '.join([status, *made])}")
            return
        if record_kind(record) == "misuse":  # prose: wrap between words
            indent = " " * (len(pad) + 9)
            self._emit(textwrap.fill(head + self._what(record), 100, subsequent_indent=indent))
        else:
            self._emit(_wrap(head, self._what(record), len(pad) + 9))
        if result:
            self._emit(f"{pad}     -> {result}")
        for line in _state_lines(recorder, record, 92 - len(self._indent)):
            self._emit(f"{pad}     {self._paint(line, '36')}")

    def _what(self, record: Record) -> str:
        kind = record_kind(record)
        if kind == "complete":
            return f"the scheduler completes {record['pending']} ({record.get('call', '?')})"
        if kind == "callback":
            data = json.dumps(record.get("data"), ensure_ascii=False)
            name = self._callbacks.get(record["async_context"], "callback")
            return f"callback fires: {name}({record['async_context']}, {data})"
        if kind == "misuse":
            rule = self._paint(f"MISUSE {record['rule']}", "1;33")
            return f"{rule} in {record.get('call', '?')}: {record.get('message', '')}"
        args = record.get("args", {})
        if record.get("call") == "SspiSetAsyncNotifyCallback" and args.get("callback"):
            self._callbacks[str(args["async_context"])] = str(args["callback"])
        parts = [f"{key}={_value(key, value)}" for key, value in args.items()]
        if "async_context" in args:
            parts[0] = _value("async_context", args["async_context"])
        return f"{self._paint(record['call'], '1')}({', '.join(parts)})"

    def _result(self, record: Record) -> str:
        kind = record_kind(record)
        if kind == "misuse":
            return "SspiMisuse raised (strict mode)" if record.get("raised") else ""
        if kind == "callback":
            return ""
        if "result" in record:
            result = record["result"]
            return (
                "NULL"
                if result is None
                else str(result).upper()
                if result in (True, False)
                else str(result)
            )
        if "status" not in record:
            return "(void)"
        notes = _out_notes(record.get("out") or {})
        if "pending" in record and kind == "call":
            notes.insert(0, f"queued as {record['pending']}")
        return "  ".join([self.status(record["status"]), *notes])


def _wrap(head: str, text: str, indent: int, width: int = 100) -> str:
    """Wrap a call at its commas, continuing under the argument list."""
    lines = [head]
    for piece in text.split(", "):
        if len(lines[-1]) + len(piece) + 2 > width and lines[-1] != head:
            lines[-1] += ","
            lines.append(" " * indent + piece)
        else:
            joined = lines[-1] == head or lines[-1].endswith(" ")
            lines[-1] += piece if joined else ", " + piece
    return "\n".join(lines)


def _value(key: str, value: Any) -> str:
    """An argument as a C programmer would read it in a debugger."""
    if value is None:
        return "NULL"
    if key in _TOKEN_KEYS:
        return _token(value)
    if key == "auth_data" and isinstance(value, dict):
        if value.get("type") == "SchannelCred":
            certificate = value.get("certificate")
            return f"SchannelCred({certificate['subject'] if certificate else 'no certificate'})"
        return f"{value.get('type')}({value.get('domain', '')}\\{value.get('user', '')})"
    if key == "out":
        return "&out"
    if key == "credential_use" and isinstance(value, int):
        return f"SECPKG_CRED_{CredentialUse(value).name}" if value in (1, 2, 3) else hex(value)
    if key == "attribute" and isinstance(value, int):
        return SecPkgAttr(value).name if value in SecPkgAttr._value2member_map_ else str(value)
    if key in ("context_req", "context_attr") and isinstance(value, int):
        return f"0x{value:X}"
    if isinstance(value, dict):
        return json.dumps(value)
    if (isinstance(value, str) and not value.startswith("$")) or key == "callback_data":
        return json.dumps(value, ensure_ascii=False)
    return str(value)


def _token(value: Any) -> str:
    if isinstance(value, dict):
        return _reference(value)
    if isinstance(value, list):
        return (
            "["
            + ", ".join(f"{item['type']} {_token(item.get('data', ''))}" for item in value)
            + "]"
        )
    size = len(value) * 3 // 4 - value.count("=")
    return f"<{size}-byte token>" if size else "<empty>"


def _reference(value: Mapping[str, Any]) -> str:
    """A buffer reference of the trace (BUF-007) in words: whose output the bytes are."""
    if "join" in value:
        return " + ".join(_token(part) for part in value["join"])
    if "descriptor" in value:
        return "NULL descriptor"
    source = value.get("from")
    what = f"token of [{source}]"
    if "buffer" in value:
        what = f"buffer {value['buffer']} of [{source}]"
    if "slice" in value:
        start, end = value["slice"]
        what = f"bytes {start}..{end} of the {what}"
    return f"<{what}>"


def _out_notes(out: Mapping[str, Any]) -> list[str]:
    notes: list[str] = []
    for key in ("credential", "context"):
        if out.get(key):
            notes.append(f"{key} {out[key]}")
    for buffer in out.get("output") or []:
        size = len(buffer.get("data", "")) * 3 // 4 - str(buffer.get("data", "")).count("=")
        if size:
            notes.append(f"{buffer['type'].replace('SECBUFFER_', '').lower()} {size} bytes")
    attribute = out.get("attribute")
    if isinstance(attribute, dict):
        fields = {k: v for k, v in attribute.items() if k not in ("type", "allocation")}
        notes.append(f"{attribute['type']} {json.dumps(fields, ensure_ascii=False)}")
    if out.get("allocation"):
        notes.append(f"free {out['allocation']} with FreeContextBuffer")
    return notes


# -- the state of every object ---------------------------------------------------------------


def _credential_state(sspi: Sspi, handle: SecHandle) -> str:
    # The model keeps its objects private; a demo may look, client code may not.
    record = sspi._core.credentials.get(handle.lower)
    if record is not None and record.handle == handle:
        if record.refs:
            return f"live ({record.refs} context{'s' if record.refs > 1 else ''})"
        return "live"
    if any(context.credential.handle == handle for context in sspi._core.contexts.values()):
        return "freed, kept alive by its contexts (orphaned)"
    return "released"


def _context_state(sspi: Sspi, handle: SecHandle) -> str:
    record = sspi._core.contexts.get(handle.lower)
    if record is not None and record.handle == handle:
        return str(record.state.value)
    return "deleted"


def _async_state(context: AsyncContext, completing: int | None) -> str:
    state = context.state
    if state is AsyncState.FREED:
        return "freed"
    if completing is not None:
        # The completion event comes just before the status is published; show it published.
        return f"completed, status {status_name(completing)}"
    return f"{state.value}, status {status_name(context._status)}"


def _state_lines(recorder: Recorder, record: Record, width: int = 92) -> list[str]:
    completing: dict[int, int] = {}
    if record_kind(record) == "complete":
        pending = recorder.symbol(record["pending"])
        context = recorder.pending_context(pending.value) if pending else None
        if context is not None:
            completing[id(context)] = status_value(record["status"])
    lines = []
    for process, target in recorder.processes.items():
        if not isinstance(target, Sspi):
            continue
        items = []
        for symbol in recorder.symbols():
            if symbol.process != process:
                continue
            if symbol.kind == "credential":
                items.append(f"{symbol.name} credential {_credential_state(target, symbol.value)}")
            elif symbol.kind == "context":
                items.append(f"{symbol.name} context {_context_state(target, symbol.value)}")
            elif symbol.kind == "async":
                state = _async_state(symbol.value, completing.get(id(symbol.value)))
                items.append(f"{symbol.name} async context {state}")
            elif symbol.kind == "pending" and symbol.value in target._async.pending_calls:
                items.append(
                    f"{symbol.name} pending {target._async.pending_calls[symbol.value].call.value}"
                )
            elif symbol.kind == "buffer" and symbol.value in target._core.allocations:
                items.append(f"{symbol.name} buffer to free")
        lines.extend(_fill(f"{process}:", items or ["nothing"], width))
    return lines


def _fill(head: str, items: list[str], width: int = 92) -> list[str]:
    """Items after a head, wrapped between items rather than inside them."""
    lines = [head]
    for item in items:
        if len(lines[-1]) + len(item) + 2 > width and lines[-1] != head:
            lines[-1] += ";"
            lines.append("    " + item)
        else:
            sep = " " if lines[-1] == head or lines[-1].endswith(" ") else "; "
            lines[-1] += sep + item
    return lines


# -- the stage -------------------------------------------------------------------------------


class _Stage:
    """The processes of one scenario, all recorded and narrated."""

    def __init__(self, narrator: Narrator, recorder: Recorder | None) -> None:
        self.narrator = narrator
        self.recorder = recorder if recorder is not None else Recorder()
        self._stop = self.recorder.listen(lambda record: narrator.step(record, self.recorder))

    def __enter__(self) -> _Stage:
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop()

    def process(self, name: str, **options: Any) -> Sspi:
        sspi = Sspi(accounts=ACCOUNTS, **options)
        self.recorder.attach(sspi, name)
        return sspi

    def handshake(
        self,
        client: Sspi,
        client_credential: SecHandle | None,
        server: Sspi,
        server_credential: SecHandle | None,
        target: str = TARGET,
    ) -> tuple[SecHandle | None, SecHandle | None]:
        return handshake(client, client_credential, server, server_credential, target)


def handshake(
    client: Sspi,
    client_credential: SecHandle | None,
    server: Sspi,
    server_credential: SecHandle | None,
    target: str = TARGET,
) -> tuple[SecHandle | None, SecHandle | None]:
    """Synchronous legs until neither side has a token to send (the demos and the explorer)."""
    client_context = server_context = None
    token: bytes | None = None
    for _leg in range(6):
        leg = client.initialize_security_context(
            client_credential, client_context, target, ISC_REQ_CONNECTION, token
        )
        client_context = leg.new_context or client_context
        if is_error(leg.status) or not leg.output_token:
            break
        reply = server.accept_security_context(
            server_credential, server_context, leg.output_token, ASC_REQ_CONNECTION
        )
        server_context = reply.new_context or server_context
        token = reply.output_token
        if is_error(reply.status) or not token:
            break
    return client_context, server_context


def schannel_credentials(server: Sspi, client: Sspi) -> tuple[SecHandle | None, SecHandle | None]:
    server_credential = server.acquire_credentials_handle(
        "Schannel", INBOUND, SchannelCred(SERVER_CERTIFICATE)
    ).credential
    client_credential = client.acquire_credentials_handle("Schannel", OUTBOUND).credential
    return server_credential, client_credential


# -- the scenarios ---------------------------------------------------------------------------


def async_delete(narrator: Narrator, recorder: Recorder | None = None) -> Recorder:
    """The seed page: SspiDeleteSecurityContextAsync on a live Schannel context."""
    narrator.heading("async-delete: SspiDeleteSecurityContextAsync on a live Schannel context")
    with _Stage(narrator, recorder) as stage:
        scheduler = ManualScheduler()
        client = stage.process("client")
        server = stage.process("server", scheduler=scheduler)
        narrator.say(
            "Set-up: a kernel-mode TLS server and its client acquire Schannel credentials and "
            "complete a handshake, synchronously."
        )
        with narrator.briefly():
            server_credential, client_credential = schannel_credentials(server, client)
            client_context, server_context = stage.handshake(
                client, client_credential, server, server_credential
            )
        narrator.say(
            "The server deletes its context asynchronously: a fresh async context reads "
            "SEC_E_UNSUPPORTED_FUNCTION until it runs a call (ASY-002); it registers a callback."
        )
        async_context = server.create_async_context()

        def on_deleted(context: Any, data: Any) -> None:
            with narrator.indented():
                narrator.say(f"Inside the callback for {data}: the result is published (ASY-006).")
                server.get_async_call_status(context)

        server.set_async_notify_callback(async_context, on_deleted, "connection 1")
        narrator.say(
            "SEC_E_OK from the call means queued, not deleted (ASY-009). The handle is invalid "
            "from this moment (ASY-042); the status reads PENDING until completion (ASY-005)."
        )
        server.delete_security_context_async(async_context, context=server_context)
        server.get_async_call_status(async_context)
        narrator.say(
            "The scheduler completes the call: effects, then status, then the callback (ASY-022)."
        )
        scheduler.run_one(0)
        narrator.say("The call completed and the callback ran: free the async context (ASY-050).")
        server.free_async_context(async_context)
        narrator.say("Tidy up: the client deletes its context; both free their credentials.")
        client.delete_security_context(client_context)
        client.free_credentials_handle(client_credential)
        server.free_credentials_handle(server_credential)
        return stage.recorder


def _do_asc_call(
    narrator: Narrator, server: Sspi, credential: SecHandle | None, token: bytes
) -> None:
    """DoASCCall from the "Asynchronous Contexts" overview page, call for call."""
    async_context = server.create_async_context()  # ASSERT(AsyncContext)

    def async_call_completed(context: Any, data: Any) -> None:
        with narrator.indented():
            narrator.say(
                "AsyncCallCompleted: the sample asserts SEC_E_OK; a first ASC leg completes "
                "with SEC_I_CONTINUE_NEEDED, also a success. Then it frees the context here, "
                "inside the callback (ASY-055)."
            )
            server.get_async_call_status(context)
            server.free_async_context(context)

    server.set_async_notify_callback(async_context, async_call_completed, "pCallbackData")
    server.accept_security_context_async(
        async_context,
        credential=credential,
        input=token,
        context_req=ASC_REQ_CONNECTION,
        out=Out(),
    )
    narrator.say(
        "SEC_E_OK is the status of queueing. The sample then asserts the call is PENDING or "
        "SEC_E_OK, because it 'can be pending or complete':"
    )
    server.get_async_call_status(async_context)


def overview(narrator: Narrator, recorder: Recorder | None = None) -> Recorder:
    """The overview sample, then its race: the callback frees the context before the check."""
    narrator.heading("overview: the 'Asynchronous Contexts' sample and its race")
    with _Stage(narrator, recorder) as stage:
        scheduler = ManualScheduler()
        client = stage.process("client")
        server = stage.process("server", scheduler=scheduler)
        with narrator.briefly():
            server_credential, client_credential = schannel_credentials(server, client)
        narrator.say("Part 1: the sample as written. Nothing completes behind its back (ASY-070).")
        hello = client.initialize_security_context(
            client_credential, None, TARGET, ISC_REQ_CONNECTION
        )
        _do_asc_call(narrator, server, server_credential, hello.output_token)
        narrator.say("'Execution will continue in the callback upon completion':")
        scheduler.run_all()
        narrator.say(
            "Part 2: the same code, but the call completes before SspiAcceptSecurityContextAsync "
            "returns (InlineScheduler, ASY-071), as it may on another thread. The callback frees "
            "the context, then DoASCCall reads its status: a use after free (ASY-052)."
        )
        racer = stage.process("server-inline", scheduler=InlineScheduler())
        with narrator.briefly():
            racer_credential = racer.acquire_credentials_handle(
                "Schannel", INBOUND, SchannelCred(SERVER_CERTIFICATE)
            ).credential
            hello = client.initialize_security_context(
                client_credential, None, TARGET, ISC_REQ_CONNECTION
            )
        try:
            _do_asc_call(narrator, racer, racer_credential, hello.output_token)
        except SspiMisuse as misuse:
            narrator.say(
                f"Strict mode caught it: SspiMisuse [{misuse.rule}]. In C this reads freed pool "
                "memory (ksecdd fills it with 0xA5). Fix: read the status only in the callback, "
                "or free the context only after the caller's last use."
            )
        return stage.recorder


def msquic(narrator: Narrator, recorder: Recorder | None = None) -> Recorder:
    """MsQuic (tls_schannel.c): an async credential, then the no-callback async delete."""
    narrator.heading("msquic: MsQuic's Schannel credential and connection teardown")
    with _Stage(narrator, recorder) as stage:
        scheduler = ManualScheduler()
        client = stage.process("client")
        server = stage.process("msquic", scheduler=scheduler)
        narrator.say(
            "CxPlatTlsSecConfigCreate (l.899-945): acquire the credential asynchronously. "
            "MsQuic treats SEC_E_OK as 'the callback will come' and never polls."
        )
        acquiring = server.create_async_context()
        out = Out()

        def on_acquired(context: Any, data: Any) -> None:
            with narrator.indented():
                narrator.say("The notify callback (l.844-886): read the status, free the context.")
                server.get_async_call_status(context)
                server.free_async_context(context)

        server.set_async_notify_callback(acquiring, on_acquired, "SecConfig")
        server.acquire_credentials_handle_async(
            acquiring,
            package="Schannel",
            credential_use=INBOUND,
            auth_data=SchannelCred(SERVER_CERTIFICATE),
            out=out,
        )
        scheduler.run_all()
        server_credential = out.credential
        narrator.say("A QUIC handshake carries the TLS flights; the legs run synchronously here.")
        with narrator.briefly():
            client_credential = client.acquire_credentials_handle("Schannel", OUTBOUND).credential
            client_context, server_context = stage.handshake(
                client, client_credential, server, server_credential
            )
        _teardown(narrator, server, scheduler, server_context, fresh=True)
        narrator.say("The credential is freed synchronously (l.1461), as is the peer's state.")
        server.free_credentials_handle(server_credential)
        client.delete_security_context(client_context)
        client.free_credentials_handle(client_credential)
        return stage.recorder


def _teardown(
    narrator: Narrator,
    server: Sspi,
    scheduler: ManualScheduler,
    context: SecHandle | None,
    *,
    fresh: bool,
    async_context: AsyncContext | None = None,
) -> None:
    """Delete with no callback, invalidate the handle copy, free the async context at once."""
    if fresh:
        narrator.say("Teardown: a fresh async context with no callback.")
        async_context = server.create_async_context()
    narrator.say(
        "SspiDeleteSecurityContextAsync; the return value is ignored. A NULL callback is "
        "allowed for delete only (ASY-020)."
    )
    server.delete_security_context_async(async_context, context=context)
    local = SecHandle.invalid()
    narrator.say(
        f"SecInvalidateHandle on the caller's copy: now {{0x{local.lower:X}, 0x{local.upper:X}}}."
        " 'No callback was registered, so free this immediately' (ASY-056, ASY-051)."
    )
    server.free_async_context(async_context)
    narrator.say("Later the delete completes; nobody is left to notify.")
    scheduler.run_all()
    narrator.say("A stray delete through the invalidated copy is harmless:")
    server.delete_security_context(local)


def httpsys(narrator: Narrator, recorder: Recorder | None = None) -> Recorder:
    """HTTP.sys: async accept legs with a callback, then UxSslFreeConnection's teardown."""
    narrator.heading("httpsys: HTTP.sys accepts asynchronously and frees the connection")
    with _Stage(narrator, recorder) as stage:
        scheduler = ManualScheduler()
        client = stage.process("client")
        server = stage.process("http.sys", scheduler=scheduler)
        with narrator.briefly():
            server_credential, client_credential = schannel_credentials(server, client)
        narrator.say(
            "The connection object gets an async context for its teardown, never used before. "
            "UxpSslAcceptSecurityContext uses another one, with a callback."
        )
        teardown = server.create_async_context()
        accepting = server.create_async_context()
        out = Out()

        def accepted(context: Any, data: Any) -> None:
            with narrator.indented():
                narrator.say("UxSslAcceptSecurityContextCallback: read the leg's status.")
                server.get_async_call_status(context)

        server.set_async_notify_callback(accepting, accepted, "connection 7")
        hello = client.initialize_security_context(
            client_credential, None, TARGET, ISC_REQ_CONNECTION
        )
        token = hello.output_token
        client_context = hello.new_context
        for leg in (1, 2):
            if leg == 2:
                narrator.say("A new leg on the same async context needs a reinit (ASY-011).")
                server.reinit_async_context(accepting)
            server.accept_security_context_async(
                accepting,
                credential=server_credential,
                context=out.new_context,
                input=token,
                context_req=ASC_REQ_CONNECTION,
                out=out,
            )
            narrator.say("Queued: HTTP.sys returns STATUS_PENDING to its caller.")
            scheduler.run_all()
            reply = client.initialize_security_context(
                client_credential, client_context, TARGET, ISC_REQ_CONNECTION, out.output_token
            )
            token = reply.output_token
        narrator.say("UxSslFreeAscContext frees the accept's async context.")
        server.free_async_context(accepting)
        narrator.say("UxSslFreeConnection tears the connection down with its own async context:")
        _teardown(narrator, server, scheduler, out.new_context, fresh=False, async_context=teardown)
        server.free_credentials_handle(server_credential)
        client.delete_security_context(client_context)
        client.free_credentials_handle(client_credential)
        return stage.recorder


def ntlm(narrator: Narrator, recorder: Recorder | None = None) -> Recorder:
    """A synchronous NTLM handshake, a query, and the deletes (twice: DEL-003)."""
    narrator.heading("ntlm: a synchronous NTLM handshake")
    with _Stage(narrator, recorder) as stage:
        client = stage.process("client")
        server = stage.process("server")
        narrator.say("Both processes see the account database; the client runs as CONTOSO\\alice.")
        client_credential = client.acquire_credentials_handle("NTLM", OUTBOUND).credential
        server_credential = server.acquire_credentials_handle("NTLM", INBOUND).credential
        narrator.say("NEGOTIATE, CHALLENGE, AUTHENTICATE: three tokens, four legs.")
        client_context, server_context = stage.handshake(
            client, client_credential, server, server_credential, "HOST/srv.contoso.com"
        )
        narrator.say("The server asks who the client is; the name is package memory to free.")
        names = server.query_context_attributes(server_context, SecPkgAttr.SECPKG_ATTR_NAMES)
        server.free_context_buffer(getattr(names.buffer, "allocation", None))
        narrator.say("Delete both contexts; deleting one again returns SEC_E_OK (DEL-003).")
        client.delete_security_context(client_context)
        server.delete_security_context(server_context)
        server.delete_security_context(server_context)
        client.free_credentials_handle(client_credential)
        server.free_credentials_handle(server_credential)
        return stage.recorder


def schannel(narrator: Narrator, recorder: Recorder | None = None) -> Recorder:
    """An asynchronous Schannel handshake: both sides kernel-mode, one async context each."""
    narrator.heading("schannel: an asynchronous Schannel (TLS 1.2) handshake")
    with _Stage(narrator, recorder) as stage:
        scheduler = ManualScheduler()  # one scheduler may serve both processes
        client = stage.process("client", scheduler=scheduler)
        server = stage.process("server", scheduler=scheduler)
        contexts: dict[str, AsyncContext | None] = {}
        outs = {"client": Out(), "server": Out()}

        def done(context: Any, side: Any) -> None:
            with narrator.indented():
                (client if side == "client" else server).get_async_call_status(context)

        for side, sspi in (("server", server), ("client", client)):
            contexts[side] = sspi.create_async_context()
            sspi.set_async_notify_callback(contexts[side], done, side)
        narrator.say("Both acquire their credentials asynchronously.")
        server.acquire_credentials_handle_async(
            contexts["server"],
            package="Schannel",
            credential_use=INBOUND,
            auth_data=SchannelCred(SERVER_CERTIFICATE),
            out=outs["server"],
        )
        client.acquire_credentials_handle_async(
            contexts["client"], package="Schannel", credential_use=OUTBOUND, out=outs["client"]
        )
        scheduler.run_all()
        credentials = {side: outs[side].credential for side in outs}
        results = {side: Out() for side in outs}
        token: bytes | None = None
        narrator.say("Each leg: reinit the async context (ASY-011), queue, complete, callback.")
        for turn in range(6):
            side = "client" if turn % 2 == 0 else "server"
            sspi = client if side == "client" else server
            result = results[side]
            if turn and not token:
                break
            sspi.reinit_async_context(contexts[side])
            if side == "client":
                sspi.initialize_security_context_async(
                    contexts[side],
                    credential=credentials[side],
                    context=result.new_context,
                    target_name=TARGET,
                    context_req=ISC_REQ_CONNECTION,
                    input=token,
                    out=result,
                )
            else:
                sspi.accept_security_context_async(
                    contexts[side],
                    credential=credentials[side],
                    context=result.new_context,
                    input=token,
                    context_req=ASC_REQ_CONNECTION,
                    out=result,
                )
            scheduler.run_all()
            token = result.output_token
        narrator.say("Established on both sides. Free the async contexts, then tidy up.")
        for side, sspi in (("client", client), ("server", server)):
            sspi.free_async_context(contexts[side])
            sspi.delete_security_context(results[side].new_context)
            sspi.free_credentials_handle(credentials[side])
        return stage.recorder


# -- client scenarios: a cited client's call sequence, end to end (SCN rules) ----------------

_CURL_REQ = 0x4 | 0x8 | 0x10 | 0x100 | 0x8000  # REPLAY|SEQUENCE|CONFIDENTIALITY|ALLOCATE|STREAM
_ASC_STREAM = 0x4 | 0x8 | 0x10 | 0x10000
_EMPTY, _DATA, _TOKEN, _EXTRA = 0, 1, 2, 5
_SHUTDOWN_TOKEN = SCHANNEL_SHUTDOWN.to_bytes(4, "little")


def _free_output(sspi: Sspi, result: Any) -> None:
    """FreeContextBuffer on every package-allocated output buffer of a leg."""
    for buffer in result.output:
        if buffer.allocation is not None:
            sspi.free_context_buffer(buffer.allocation)


def _encrypt(sspi: Sspi, context: SecHandle | None, sizes: Any, data: bytes) -> bytes:
    """curl's schannel_send: {STREAM_HEADER, DATA, STREAM_TRAILER, EMPTY}, then the three
    buffers' cbBuffer bytes go on the wire (MSG-035)."""
    result = sspi.encrypt_message(
        context,
        0,
        [
            SecBuffer(SecBufferType.SECBUFFER_STREAM_HEADER, size=sizes.header),
            SecBuffer(_DATA, data),
            SecBuffer(SecBufferType.SECBUFFER_STREAM_TRAILER, size=sizes.trailer),
            SecBuffer(_EMPTY),
        ],
    )
    return b"".join(buffer.data for buffer in result.buffers[:3])


def _decrypt(sspi: Sspi, context: SecHandle | None, wire: bytes) -> tuple[Any, bytes]:
    """curl's schannel_recv: {DATA, EMPTY x3}; returns the result and the EXTRA bytes."""
    result = sspi.decrypt_message(
        context, [SecBuffer(_DATA, wire), SecBuffer(_EMPTY), SecBuffer(_EMPTY), SecBuffer(_EMPTY)]
    )
    extra = [b for b in result.buffers if b.base_type == _EXTRA]
    return result, (wire[len(wire) - extra[0].cb :] if extra else b"")


def curl(narrator: Narrator, recorder: Recorder | None = None) -> Recorder:
    """curl's Schannel connection (lib/vtls/schannel.c @5c61e16): ALPN handshake, a
    DecryptMessage loop with INCOMPLETE_MESSAGE, EXTRA and a TLS 1.3 SEC_I_RENEGOTIATE,
    the shutdown, the teardown (SCN-001)."""
    narrator.heading("curl: a TLS 1.3 connection, from the handshake to the close_notify")
    with _Stage(narrator, recorder) as stage:
        client = stage.process("curl")
        server = stage.process("server")
        with narrator.briefly():
            server_credential = server.acquire_credentials_handle(
                "Schannel",
                INBOUND,
                SchannelCred(SERVER_CERTIFICATE, "tls1.3", session_tickets=True),
            ).credential
            credential = client.acquire_credentials_handle(
                "Schannel", OUTBOUND, SchannelCred(protocols="tls1.3")
            ).credential
        narrator.say(
            "schannel_connect_step1 (l.966-1040): ISC with the ALPN list as the only input "
            "buffer, ALLOCATE_MEMORY, an EMPTY output; the token is sent, then freed."
        )
        leg = client.initialize_security_context(
            credential,
            None,
            TARGET,
            _CURL_REQ,
            [application_protocols("h2", "http/1.1")],
            output=[SecBuffer(_EMPTY)],
        )
        context = leg.new_context
        wire = leg.output_token
        _free_output(client, leg)
        accepted = server.accept_security_context(
            server_credential,
            None,
            [SecBuffer(_TOKEN, wire), SecBuffer(_EMPTY), application_protocols("h2")],
            _ASC_STREAM,
        )
        server_context = accepted.new_context
        narrator.say("schannel_connect_step2 (l.1296-1445): {TOKEN(rx), EMPTY} until SEC_E_OK.")
        while True:
            leg = client.initialize_security_context(
                credential,
                context,
                TARGET,
                _CURL_REQ,
                [SecBuffer(_TOKEN, accepted.output_token), SecBuffer(_EMPTY)],
                output=[
                    SecBuffer(_TOKEN),
                    SecBuffer(SecBufferType.SECBUFFER_ALERT),
                    SecBuffer(_EMPTY),
                ],
            )
            if leg.output_token:
                accepted = server.accept_security_context(
                    None, server_context, leg.output_token, _ASC_STREAM
                )
            _free_output(client, leg)
            if leg.status == SecStatus.SEC_E_OK:
                break
        narrator.say("step3 (l.1596-1748): the negotiated protocol, then STREAM_SIZES once.")
        client.query_context_attributes(context, SecPkgAttr.SECPKG_ATTR_APPLICATION_PROTOCOL)
        sizes = client.query_context_attributes(context, SecPkgAttr.SECPKG_ATTR_STREAM_SIZES).buffer
        server_sizes = server.query_context_attributes(
            server_context, SecPkgAttr.SECPKG_ATTR_STREAM_SIZES
        ).buffer
        request = _encrypt(client, context, sizes, b"GET / HTTP/2")
        _decrypt(server, server_context, request)
        narrator.say(
            "The server's last leg carried a NewSessionTicket; the response follows in two "
            "records. curl reads the socket in pieces: the first read ends inside a record."
        )
        incoming = accepted.output_token + _encrypt(
            server, server_context, server_sizes, b"HTTP/2 200"
        )
        incoming += _encrypt(server, server_context, server_sizes, b"<html>")
        received, pending = b"", incoming[:3]
        rest = incoming[3:]
        while pending or rest:
            result, extra = _decrypt(client, context, pending)
            if result.status == SecStatus.SEC_E_INCOMPLETE_MESSAGE:
                pending, rest = pending + rest, b""  # CURLE_AGAIN: read more, call again
                continue
            if result.status == SecStatus.SEC_I_RENEGOTIATE:
                narrator.say(
                    "SEC_I_RENEGOTIATE for a TLS 1.3 session ticket (curl#18983): back to step 2 "
                    "with the pending bytes as the TOKEN; what is left comes back as EXTRA."
                )
                follow = client.initialize_security_context(
                    credential,
                    context,
                    TARGET,
                    _CURL_REQ,
                    [SecBuffer(_TOKEN, extra), SecBuffer(_EMPTY)],
                    output=[
                        SecBuffer(_TOKEN),
                        SecBuffer(SecBufferType.SECBUFFER_ALERT),
                        SecBuffer(_EMPTY),
                    ],
                )
                left = [b for b in follow.input_after or () if b.base_type == _EXTRA]
                pending = extra[len(extra) - left[0].cb :] if left else b""
                continue
            received += result.data
            pending = extra
        narrator.say(f"curl received {received!r}. Shutdown (l.2440-2530): ApplyControlToken.")
        client.apply_control_token(context, _SHUTDOWN_TOKEN)
        leg = client.initialize_security_context(
            credential, context, TARGET, _CURL_REQ, None, output=[SecBuffer(_EMPTY)]
        )
        close_notify = leg.output_token
        _free_output(client, leg)
        narrator.say("The server reads the close_notify and answers with its own.")
        _decrypt(server, server_context, close_notify)
        server.apply_control_token(server_context, _SHUTDOWN_TOKEN)
        answer = server.accept_security_context(None, server_context, None, _ASC_STREAM)
        _decrypt(client, context, answer.output_token)
        narrator.say("Teardown: delete both contexts, free both credentials; nothing is left.")
        client.delete_security_context(context)
        client.free_credentials_handle(credential)
        server.delete_security_context(server_context)
        server.free_credentials_handle(server_credential)
        return stage.recorder


def msquic_alpn(narrator: Narrator, recorder: Recorder | None = None) -> Recorder:
    """MsQuic's Schannel handshake with ALPN (tls_schannel.c @4984c21 l.1840-1897) and its
    post-handshake queries (l.2207-2392, 3077-3116): APPLICATION_PROTOCOL, SESSION_INFO,
    CONNECTION_INFO; no message function is ever called (SCN-002)."""
    narrator.heading("msquic-alpn: MsQuic's handshake with ALPN and its queries at SEC_E_OK")
    with _Stage(narrator, recorder) as stage:
        client, server = stage.process("msquic-client"), stage.process("msquic-server")
        with narrator.briefly():
            server_credential = server.acquire_credentials_handle(
                "Schannel", INBOUND, SchannelCred(SERVER_CERTIFICATE, "tls1.3")
            ).credential
            credential = client.acquire_credentials_handle(
                "Schannel", OUTBOUND, SchannelCred(protocols="tls1.3")
            ).credential
        narrator.say("The first legs carry SECBUFFER_APPLICATION_PROTOCOLS on both sides.")
        leg = client.initialize_security_context(
            credential,
            None,
            TARGET,
            _CURL_REQ & ~0x100,
            [application_protocols("h3"), SecBuffer(_EMPTY), SecBuffer(_EMPTY)],
        )
        context = leg.new_context
        accepted = server.accept_security_context(
            server_credential,
            None,
            [application_protocols("h3"), SecBuffer(_TOKEN, leg.output_token), SecBuffer(_EMPTY)],
            _ASC_STREAM,
        )
        server_context = accepted.new_context
        leg = client.initialize_security_context(
            None, context, TARGET, _CURL_REQ & ~0x100, accepted.output_token
        )
        server.accept_security_context(None, server_context, leg.output_token, _ASC_STREAM)
        narrator.say(
            "At SEC_E_OK: the negotiated protocol (client), session info; on demand the "
            "connection info. All are flat: nothing to free."
        )
        client.query_context_attributes(context, SecPkgAttr.SECPKG_ATTR_APPLICATION_PROTOCOL)
        for sspi, handle in ((client, context), (server, server_context)):
            sspi.query_context_attributes(handle, SecPkgAttr.SECPKG_ATTR_SESSION_INFO)
            sspi.query_context_attributes(handle, SecPkgAttr.SECPKG_ATTR_CONNECTION_INFO)
        narrator.say("Teardown (l.1623-1643, 1461).")
        client.delete_security_context(context)
        client.free_credentials_handle(credential)
        server.delete_security_context(server_context)
        server.free_credentials_handle(server_credential)
        return stage.recorder


def chromium(narrator: Narrator, recorder: Recorder | None = None) -> Recorder:
    """Chromium's Negotiate HTTP auth (net/http/http_auth_sspi_win.cc @089eb96): cbMaxToken
    from QuerySecurityPackageInfo, the context updated in place each leg, an output buffer of
    cbMaxToken, the net-log queries after each leg, delete then free (SCN-003)."""
    narrator.heading("chromium: Negotiate HTTP authentication, leg by leg")
    with _Stage(narrator, recorder) as stage:
        browser, server = stage.process("chromium"), stage.process("server")
        narrator.say("DetermineMaxTokenLength: cbMaxToken, then FreeContextBuffer.")
        info = browser.query_security_package_info("Negotiate")
        max_token = info.package_info.max_token if info.package_info else 0
        browser.free_context_buffer(info.allocation)
        with narrator.briefly():
            credential = browser.acquire_credentials_handle(
                "Negotiate",
                OUTBOUND,
                AuthIdentity(user="alice", domain="CONTOSO", password="Passw0rd!"),
            ).credential
            server_credential = server.acquire_credentials_handle("Negotiate", INBOUND).credential
        narrator.say(
            "GetNextSecurityToken: ISC into a caller buffer of cbMaxToken; then "
            "ContextAttributesToValue queries NATIVE_NAMES and NEGOTIATION_INFO for the net log "
            "(failures tolerated). Chromium frees neither buffer: statistics() shows them."
        )
        context = server_context = None
        token: bytes | None = None
        while True:
            leg = browser.initialize_security_context(
                credential,
                context,
                "HTTP/srv.contoso.com",
                0,
                None if token is None else [SecBuffer(_TOKEN, token)],
                output=[SecBuffer(_TOKEN, size=max_token)],
            )
            context = leg.new_context or context
            for attribute in (
                SecPkgAttr.SECPKG_ATTR_NATIVE_NAMES,
                SecPkgAttr.SECPKG_ATTR_NEGOTIATION_INFO,
            ):
                browser.query_context_attributes(context, attribute)
            if not leg.output_token:
                break
            reply = server.accept_security_context(
                server_credential, server_context, leg.output_token
            )
            server_context = reply.new_context or server_context
            token = reply.output_token
            if leg.status == SecStatus.SEC_E_OK or not token:
                break
        narrator.say("The destructor: DeleteSecurityContext, then FreeCredentialsHandle.")
        browser.delete_security_context(context)
        browser.free_credentials_handle(credential)
        server.delete_security_context(server_context)
        server.free_credentials_handle(server_credential)
        return stage.recorder


@attrs.frozen
class Scenario:
    name: str
    title: str
    run: Callable[[Narrator, Recorder | None], Recorder]


_HANDLE_SCENARIOS: dict[str, Scenario] = {
    scenario.name: scenario
    for scenario in (
        Scenario("async-delete", "SspiDeleteSecurityContextAsync on a live context", async_delete),
        Scenario("overview", "the overview sample, then its use-after-free race", overview),
        Scenario("msquic", "MsQuic: async credential, no-callback async delete", msquic),
        Scenario("httpsys", "HTTP.sys: async accept legs, connection teardown", httpsys),
        Scenario("ntlm", "a synchronous NTLM handshake", ntlm),
        Scenario("schannel", "an asynchronous Schannel handshake", schannel),
    )
}
# The client scenarios (SCN rules): a cited client's call sequence end to end. Their traces
# replay, message buffers included (BUF-007), so they are scenarios like the others.
CLIENT_SCENARIOS: dict[str, Scenario] = {
    scenario.name: scenario
    for scenario in (
        Scenario("curl", "curl: TLS 1.3, DecryptMessage loop, renegotiate, shutdown", curl),
        Scenario("msquic-alpn", "MsQuic: ALPN handshake and post-handshake queries", msquic_alpn),
        Scenario("chromium", "Chromium: Negotiate HTTP auth, leg by leg", chromium),
    )
}
SCENARIOS: dict[str, Scenario] = {**_HANDLE_SCENARIOS, **CLIENT_SCENARIOS}
DEMO_SCENARIOS = SCENARIOS  # the name the CLI used while the client scenarios stood apart
DEFAULT_SCENARIO = "async-delete"


def run_scenario(name: str, narrator: Narrator, recorder: Recorder | None = None) -> Recorder:
    """Run the scenario called `name`; KeyError names the accepted ones."""
    try:
        scenario = DEMO_SCENARIOS[name]
    except KeyError:
        accepted = ", ".join(DEMO_SCENARIOS)
        raise KeyError(f"unknown scenario {name!r}; accepted: {accepted}") from None
    return scenario.run(narrator, recorder)


__all__ = [
    "CLIENT_SCENARIOS",
    "DEFAULT_SCENARIO",
    "DEMO_SCENARIOS",
    "SCENARIOS",
    "Narrator",
    "Scenario",
    "run_scenario",
]
