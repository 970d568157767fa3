"""The work the benchmarks time: NTLM handshakes on the model and on libsspi, a synthetic trace.

Each handshake is the same ten calls on both sides: two AcquireCredentialsHandle (explicit
credentials), ISC, ASC, ISC, ASC, two DeleteSecurityContext and two FreeCredentialsHandle.
The explorer's workload is `explore_fanout`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from typing import Any

from sspi_model.packages.ntlm import AuthIdentity
from sspi_model.sspi import Sspi
from sspi_model.trace import Recorder

ACCOUNTS = {"CONTOSO\\alice": "Passw0rd!"}
IDENTITY = AuthIdentity("alice", "Passw0rd!", "CONTOSO")
NATIVE_IDENTITY = ("alice", "CONTOSO", "Passw0rd!")  # (user, domain, password) for NativeCalls
OUTBOUND, INBOUND = 2, 1
TARGET = "host/srv.contoso.com"
REQ = 0x800  # ISC_REQ_CONNECTION / ASC_REQ_CONNECTION, as in the differential machine
TOKEN = 2  # SECBUFFER_TOKEN


def model_pair() -> tuple[Sspi, Sspi]:
    return Sspi(accounts=ACCOUNTS), Sspi(accounts=ACCOUNTS)


def model_handshake(client: Sspi, server: Sspi) -> int:
    """One handshake and teardown on the model; returns the last leg's status."""
    client_cred = client.acquire_credentials_handle("NTLM", OUTBOUND, IDENTITY).credential
    server_cred = server.acquire_credentials_handle("NTLM", INBOUND, IDENTITY).credential
    isc1 = client.initialize_security_context(client_cred, None, TARGET, REQ)
    asc1 = server.accept_security_context(server_cred, None, isc1.output_token, REQ)
    isc2 = client.initialize_security_context(
        client_cred, isc1.new_context, TARGET, REQ, asc1.output_token
    )
    asc2 = server.accept_security_context(
        server_cred, asc1.new_context, isc2.output_token, REQ
    )
    client.delete_security_context(isc1.new_context)
    server.delete_security_context(asc1.new_context)
    client.free_credentials_handle(client_cred)
    server.free_credentials_handle(server_cred)
    return int(asc2.status)


def native_handshake(calls: Any) -> tuple[int, ...]:
    """The same ten calls on sspi_model.backends.native.calls.NativeCalls (ctypes, in-process).

    Returns every status so the caller can check the handshake really ran."""
    s1, client_cred, _ = calls.acquire_credentials_handle("NTLM", OUTBOUND, NATIVE_IDENTITY, None)
    s2, server_cred, _ = calls.acquire_credentials_handle("NTLM", INBOUND, NATIVE_IDENTITY, None)
    isc1 = calls.initialize_security_context(client_cred, None, TARGET, REQ, None, 0x10)
    token = isc1[2][0][1]
    asc1 = calls.accept_security_context(
        server_cred, None, ((TOKEN, token, len(token)),), REQ, 0x10
    )
    token = asc1[2][0][1]
    isc2 = calls.initialize_security_context(
        client_cred, isc1[1], TARGET, REQ, ((TOKEN, token, len(token)),), 0x10
    )
    token = isc2[2][0][1]
    asc2 = calls.accept_security_context(
        server_cred, asc1[1], ((TOKEN, token, len(token)),), REQ, 0x10
    )
    d1 = calls.delete_security_context(isc1[1])
    d2 = calls.delete_security_context(asc1[1])
    f1 = calls.free_credentials_handle(client_cred)
    f2 = calls.free_credentials_handle(server_cred)
    return (s1, s2, isc1[0], asc1[0], isc2[0], asc2[0], d1, d2, f1, f2)


def backend_handshake(backend: Any) -> int:
    """The same ten calls through NativeBackend (the Backend wrapper over NativeCalls)."""
    client_cred = backend.acquire_credentials_handle("NTLM", OUTBOUND, IDENTITY).credential
    server_cred = backend.acquire_credentials_handle("NTLM", INBOUND, IDENTITY).credential
    isc1 = backend.initialize_security_context(client_cred, None, TARGET, REQ)
    asc1 = backend.accept_security_context(server_cred, None, isc1.output_token, REQ)
    isc2 = backend.initialize_security_context(
        client_cred, isc1.new_context, TARGET, REQ, asc1.output_token
    )
    asc2 = backend.accept_security_context(
        server_cred, asc1.new_context, isc2.output_token, REQ
    )
    backend.delete_security_context(isc1.new_context)
    backend.delete_security_context(asc1.new_context)
    backend.free_credentials_handle(client_cred)
    backend.free_credentials_handle(server_cred)
    return int(asc2.status)


def _notify(async_context: Any, data: Any) -> None:
    """The benchmarks' notify callback: it only has to run."""


def traced_cycle(client: Sspi, server: Sspi) -> None:
    """One cycle of the recorded trace: a handshake, a sync delete, an async delete with a
    callback, a delete of the already deleted handle (DEL-003), and the credential frees."""
    client_cred = client.acquire_credentials_handle("NTLM", OUTBOUND).credential
    server_cred = server.acquire_credentials_handle("NTLM", INBOUND).credential
    isc1 = client.initialize_security_context(client_cred, None, TARGET, REQ)
    asc1 = server.accept_security_context(server_cred, None, isc1.output_token, REQ)
    isc2 = client.initialize_security_context(
        None, isc1.new_context, TARGET, REQ, asc1.output_token
    )
    server.accept_security_context(None, asc1.new_context, isc2.output_token, REQ)
    client.delete_security_context(isc1.new_context)
    async_context = server.create_async_context()
    server.set_async_notify_callback(async_context, _notify, "connection")
    server.delete_security_context_async(async_context, context=asc1.new_context)
    server.scheduler.run_all()  # type: ignore[attr-defined]
    server.get_async_call_status(async_context)
    server.free_async_context(async_context)
    server.delete_security_context(asc1.new_context)
    client.free_credentials_handle(client_cred)
    server.free_credentials_handle(server_cred)


def record_cycles(count: int) -> list[dict[str, Any]]:
    """A real recording of `count` cycles: [header, *records]."""
    recorder = Recorder()
    client, server = model_pair()
    recorder.attach(client, "client")
    recorder.attach(server, "server")
    for _ in range(count):
        traced_cycle(client, server)
    return recorder.trace()


_NUMBERS = re.compile(r'"seq": (\d+)|\{"from": (\d+)\}|"\$(cred|ctx|actx|call|buf)(\d+)"')


def synthetic_trace(lines: int) -> Iterator[str]:
    """A `lines`-line trace (header included) in the recorded format, made fast.

    One cycle is recorded for real; its lines become templates whose seq numbers, {"from": SEQ}
    references and symbol numbers are shifted by one cycle's worth each time round. The result
    is what recording that many cycles would write, apart from the token bytes (each cycle
    repeats the first cycle's bytes; the replay compares only whether a buffer holds data).
    """
    header, *records = record_cycles(1)
    per_kind: dict[str, int] = {}
    templates: list[tuple[str, list[tuple[str, int]]]] = []
    for record in records:
        text = json.dumps(record, ensure_ascii=False).replace("%", "%%")
        fields: list[tuple[str, int]] = []

        def hole(match: re.Match[str], fields: list[tuple[str, int]] = fields) -> str:
            seq, source, kind, number = match.groups()
            if seq is not None:
                fields.append(("seq", int(seq)))
                return '"seq": %d'
            if source is not None:
                fields.append(("seq", int(source)))
                return '{"from": %d}'
            fields.append((kind, int(number)))
            per_kind[kind] = max(per_kind.get(kind, 0), int(number))
            return f'"${kind}%d"'

        templates.append((_NUMBERS.sub(hole, text), fields))
    per_kind["seq"] = len(records)
    yield json.dumps(header, ensure_ascii=False)
    remaining = lines - 1
    cycle = 0
    while remaining > 0:
        shift = {kind: count * cycle for kind, count in per_kind.items()}
        for template, fields in templates[:remaining]:
            yield template % tuple(base + shift[kind] for kind, base in fields)
        remaining -= len(templates)
        cycle += 1


def explore_fanout(count: int) -> Callable[[Any], None]:
    """An explorer scenario: `count` async deletes on their own async contexts, each callback
    reading its status, then one settle: every completion order (count! of them) and every
    early or inline completion, over 2**count-ish distinct states."""

    def scenario(world: Any) -> None:
        server = world.process("server")
        credential = server.acquire_credentials_handle("NTLM", OUTBOUND).credential
        contexts = []
        for number in range(count):
            context = server.initialize_security_context(credential, None, TARGET).new_context
            async_context = server.create_async_context()
            server.set_async_notify_callback(
                async_context, lambda ctx, data: server.get_async_call_status(ctx), number
            )
            server.delete_security_context_async(async_context, context=context)
            contexts.append(async_context)
        world.settle()
        for async_context in contexts:
            server.free_async_context(async_context)
        server.free_credentials_handle(credential)

    return scenario


class _Everything(set[tuple[str, ...]]):
    """Every divergence counts as already found: it is recorded, and the example runs out its
    steps idle, instead of ending the run to shrink it (the run keeps a fixed size)."""

    def __contains__(self, item: object) -> bool:
        return True


def differential_run(
    subject: Any, known: Any, examples: int, seen: list[Any] | None = None
) -> tuple[int, float]:
    """The differential machine against `subject`: `examples` examples of up to 20 steps,
    generate phase only, seed 0, every divergence suppressed (and appended to `seen`).
    Returns the examples started and the seconds the run took."""
    import time

    from hypothesis import HealthCheck, Phase, seed, settings
    from hypothesis.stateful import get_state_machine_test

    from sspi_model.testing.differential import machine_for

    started = [0]
    machine = machine_for(subject, known=known, found=_Everything(), seen=seen)

    class Counted(machine):  # type: ignore[valid-type,misc]
        def __init__(self) -> None:
            started[0] += 1
            super().__init__()

    test = get_state_machine_test(
        Counted,
        settings=settings(
            max_examples=examples, stateful_step_count=20, deadline=None, database=None,
            suppress_health_check=list(HealthCheck), phases=(Phase.generate,), print_blob=False,
        ),
    )
    begin = time.perf_counter()
    seed(0)(test)()
    return started[0], time.perf_counter() - begin
