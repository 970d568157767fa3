"""The demo scenarios (sspi_model/scenarios.py) as explorable client code, without narration.

Each function is the client code of the demo of the same name, with the ManualScheduler's
explicit completions replaced by `world.settle()` (the caller waits, as MsQuic's KeWait does)
and a tidy teardown at the end so that only real findings remain. The overview scenario is
part 1 of the demo, the sample as written: the explorer finds its race (part 2 of the demo)
by itself, in every schedule where the completion wins (ASY-052). curl-cache is no demo: it is
curl#815's refcount race (real-world-clients.md row 7), two threads, for the explorer's CLI.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import attrs

from sspi_model.async_api import Out
from sspi_model.constants import ASC_REQ_CONNECTION, ISC_REQ_CONNECTION, CredentialUse
from sspi_model.explore.world import World
from sspi_model.handles import SecHandle
from sspi_model.packages.schannel import SchannelCred
from sspi_model.scenarios import SERVER_CERTIFICATE, TARGET, handshake, schannel_credentials

INBOUND, OUTBOUND = CredentialUse.INBOUND, CredentialUse.OUTBOUND


def async_delete(world: World) -> None:
    """SspiDeleteSecurityContextAsync on a live Schannel context, callback reads the status."""
    client, server = world.process("client"), world.process("server")
    server_credential, client_credential = schannel_credentials(server, client)
    client_context, server_context = handshake(client, client_credential, server, server_credential)
    async_context = server.create_async_context()

    def on_deleted(context: Any, data: Any) -> None:
        server.get_async_call_status(context)

    server.set_async_notify_callback(async_context, on_deleted, "connection 1")
    server.delete_security_context_async(async_context, context=server_context)
    server.get_async_call_status(async_context)
    world.settle()
    server.free_async_context(async_context)
    client.delete_security_context(client_context)
    client.free_credentials_handle(client_credential)
    server.free_credentials_handle(server_credential)


def overview(world: World) -> None:
    """The 'Asynchronous Contexts' sample: DoASCCall, and AsyncCallCompleted frees the context."""
    client, server = world.process("client"), world.process("server")
    server_credential, client_credential = schannel_credentials(server, client)
    hello = client.initialize_security_context(client_credential, None, TARGET, ISC_REQ_CONNECTION)
    async_context = server.create_async_context()
    out = Out()

    def async_call_completed(context: Any, data: Any) -> None:
        server.get_async_call_status(context)
        server.free_async_context(context)  # the sample frees it here (ASY-055)

    server.set_async_notify_callback(async_context, async_call_completed, "pCallbackData")
    server.accept_security_context_async(
        async_context,
        credential=server_credential,
        input=hello.output_token,
        context_req=ASC_REQ_CONNECTION,
        out=out,
    )
    # "can be pending or complete": if the completion won, this reads freed memory (ASY-052).
    server.get_async_call_status(async_context)
    world.settle()  # "execution will continue in the callback upon completion"
    server.delete_security_context(out.new_context)
    client.delete_security_context(hello.new_context)
    server.free_credentials_handle(server_credential)
    client.free_credentials_handle(client_credential)


def _teardown(server: Any, world: World, context: Any, async_context: Any = None) -> None:
    """MsQuic's and HTTP.sys's delete: no callback, invalidate the copy, free at once."""
    if async_context is None:
        async_context = server.create_async_context()
    server.delete_security_context_async(async_context, context=context)
    local = SecHandle.invalid()
    server.free_async_context(async_context)  # "no callback was registered" (ASY-056)
    world.settle()
    server.delete_security_context(local)


def msquic(world: World) -> None:
    """MsQuic: an async credential whose callback frees its context, then the async delete."""
    client, server = world.process("client"), world.process("msquic")
    acquiring = server.create_async_context()
    out = Out()

    def on_acquired(context: Any, data: Any) -> None:
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
    world.settle()
    server_credential = out.credential
    client_credential = client.acquire_credentials_handle("Schannel", OUTBOUND).credential
    client_context, server_context = handshake(client, client_credential, server, server_credential)
    _teardown(server, world, server_context)
    server.free_credentials_handle(server_credential)
    client.delete_security_context(client_context)
    client.free_credentials_handle(client_credential)


def httpsys(world: World) -> None:
    """HTTP.sys: two async accept legs with a callback, then UxSslFreeConnection's teardown."""
    client, server = world.process("client"), world.process("http.sys")
    server_credential, client_credential = schannel_credentials(server, client)
    teardown, accepting = server.create_async_context(), server.create_async_context()
    out = Out()

    def accepted(context: Any, data: Any) -> None:
        server.get_async_call_status(context)

    server.set_async_notify_callback(accepting, accepted, "connection 7")
    hello = client.initialize_security_context(client_credential, None, TARGET, ISC_REQ_CONNECTION)
    token, client_context = hello.output_token, hello.new_context
    for leg in (1, 2):
        if leg == 2:
            server.reinit_async_context(accepting)
        server.accept_security_context_async(
            accepting,
            credential=server_credential,
            context=out.new_context,
            input=token,
            context_req=ASC_REQ_CONNECTION,
            out=out,
        )
        world.settle()
        reply = client.initialize_security_context(
            client_credential, client_context, TARGET, ISC_REQ_CONNECTION, out.output_token
        )
        token = reply.output_token
    server.free_async_context(accepting)
    _teardown(server, world, out.new_context, teardown)
    server.free_credentials_handle(server_credential)
    client.delete_security_context(client_context)
    client.free_credentials_handle(client_credential)


def ntlm(world: World) -> None:
    """A synchronous NTLM handshake and a query: one schedule, nothing to choose."""
    client, server = world.process("client"), world.process("server")
    client_credential = client.acquire_credentials_handle("NTLM", OUTBOUND).credential
    server_credential = server.acquire_credentials_handle("NTLM", INBOUND).credential
    client_context, server_context = handshake(
        client, client_credential, server, server_credential, "HOST/srv.contoso.com"
    )
    names = server.query_context_attributes(server_context, 1)  # SECPKG_ATTR_NAMES
    server.free_context_buffer(getattr(names.buffer, "allocation", None))
    client.delete_security_context(client_context)
    server.delete_security_context(server_context)
    client.free_credentials_handle(client_credential)
    server.free_credentials_handle(server_credential)


def schannel(world: World) -> None:
    """An asynchronous Schannel handshake: both sides kernel-mode, one scheduler for both."""
    client, server = world.process("client"), world.process("server")
    sides = {"client": client, "server": server}
    contexts = {side: sspi.create_async_context() for side, sspi in sides.items()}

    def done(context: Any, side: Any) -> None:
        sides[side].get_async_call_status(context)

    for side, sspi in sides.items():
        sspi.set_async_notify_callback(contexts[side], done, side)
    outs = {side: Out() for side in sides}
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
    world.settle()
    credentials = {side: outs[side].credential for side in sides}
    results = {side: Out() for side in sides}
    token: bytes | None = None
    for turn in range(6):
        side = "client" if turn % 2 == 0 else "server"
        sspi, result = sides[side], results[side]
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
        world.settle()
        token = result.output_token
    for side, sspi in sides.items():
        sspi.free_async_context(contexts[side])
        sspi.delete_security_context(results[side].new_context)
        sspi.free_credentials_handle(credentials[side])


def curl_session_cache(world: World, *, locked: bool) -> None:
    """One cached Schannel credential: a new connection reuses it (refcount++) while the old
    connection closes (refcount--, FreeCredentialsHandle at 0, out of the cache). Before
    31c521b047 the cache lookup and the refcount change were not under one lock, so the
    read and the write of each side interleave; the fix makes each one step."""
    client = world.process("curl")
    cache: dict[str, Any] = {
        "credential": client.acquire_credentials_handle("Schannel", OUTBOUND).credential,
        "refcount": 1,
    }

    def reuse() -> Iterator[None]:
        credential, refcount = cache["credential"], cache["refcount"]
        if not locked:
            yield  # the closing connection may run between the lookup and the increment
        if credential is None:  # not cached (any more): acquire a fresh one
            credential = client.acquire_credentials_handle("Schannel", OUTBOUND).credential
            cache["credential"], refcount = credential, 0
        cache["refcount"] = refcount + 1
        yield
        leg = client.initialize_security_context(credential, None, TARGET, 0)
        client.delete_security_context(leg.new_context)
        yield
        yield from release()

    def release() -> Iterator[None]:
        credential, refcount = cache["credential"], cache["refcount"]
        if not locked:
            yield
        cache["refcount"] = refcount - 1
        if refcount == 1:
            cache["credential"] = None
            client.free_credentials_handle(credential)

    world.run_threads(reuse(), release())


def curl_cache(world: World) -> None:
    """curl#815 as it was: two threads, the session cache's refcount unlocked."""
    curl_session_cache(world, locked=False)


@attrs.frozen
class Explorable:
    name: str
    title: str
    run: Callable[[World], Any]
    bound: int | None  # the default bound; None: every schedule (the demos are small enough)


EXPLORABLE: dict[str, Explorable] = {
    item.name: item
    for item in (
        Explorable(
            "async-delete", "SspiDeleteSecurityContextAsync on a live context", async_delete, None
        ),
        Explorable(
            "overview", "the overview sample: its callback frees the context", overview, None
        ),
        Explorable("msquic", "MsQuic: async credential, no-callback async delete", msquic, None),
        Explorable("httpsys", "HTTP.sys: async accept legs, connection teardown", httpsys, None),
        Explorable("ntlm", "a synchronous NTLM handshake", ntlm, None),
        Explorable("schannel", "an asynchronous Schannel handshake", schannel, None),
        Explorable(
            "curl-cache",
            "curl#815: two threads share a credential, refcount unlocked",
            curl_cache,
            None,
        ),
    )
}
