"""The asynchronous API as real clients use it, written as examples to read.

(a) the call flow of Microsoft's "Asynchronous Contexts" overview, and the race in its sample;
(b) MsQuic's kernel-mode Schannel use: async ACH, then an async delete nobody waits for;
(c) HTTP.sys tearing a connection down the same way;
(d) whole handshakes leg by leg with one async context per side, Schannel and NTLM.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import attrs
import pytest
from async_helpers import (
    ASC_TLS,
    CONTINUE,
    INBOUND,
    ISC_TLS,
    OK,
    OUTBOUND,
    PENDING,
    TLS_TARGET,
    manual,
    ntlm_sspi,
    schannel_server_cred,
)

from sspi_model import (
    SECPKG_ATTR_NAMES,
    AcceptReq,
    AsyncContext,
    InlineScheduler,
    ManualScheduler,
    NtStatus,
    Out,
    RandomScheduler,
    SecHandle,
    SecStatus,
    Sspi,
    SspiMisuse,
    ThreadedScheduler,
)
from sspi_model.packages.schannel import SchannelCred
from sspi_model.results import ContextNames

rule = pytest.mark.rule

# -- (a) the overview's call flow ------------------------------------------------------------------


@attrs.define
class CallbackData:
    """What the sample's pCallbackData points at: here, a place to note the outcome."""

    statuses: list[int] = attrs.Factory(list)


def make_async_call_completed(api: Sspi) -> Callable[[AsyncContext, CallbackData], None]:
    def async_call_completed(async_context: AsyncContext, callback_data: CallbackData) -> None:
        """The sample's AsyncCallCompleted: read the result, use it, free the context."""
        status = api.get_async_call_status(async_context)
        assert status == SecStatus.SEC_E_OK
        callback_data.statuses.append(status)  # "Perform any additional operations"
        api.free_async_context(async_context)

    return async_call_completed


def do_asc_call(
    api: Sspi, credential: SecHandle, context: SecHandle, input: bytes, data: CallbackData
) -> Out:
    """The sample's DoASCCall, step by step."""
    async_context = api.create_async_context()
    assert async_context is not None  # "Check for out of memory condition"
    status = api.set_async_notify_callback(async_context, make_async_call_completed(api), data)
    assert status == SecStatus.SEC_E_OK
    out = Out()  # phNewContext, pOutput, pfContextAttr, ptsExpiry
    status = api.accept_security_context_async(
        async_context,
        credential=credential,
        context=context,
        input=input,
        context_req=AcceptReq.CONNECTION,
        out=out,
    )
    # "All async functions return the status of queueing the async call, not the call's result."
    assert status == SecStatus.SEC_E_OK
    # "The call can be pending or complete": this read is the sample's race.
    status = api.get_async_call_status(async_context)
    assert status in (SecStatus.SEC_I_ASYNC_CALL_PENDING, SecStatus.SEC_E_OK)
    # "Execution will continue in the callback upon completion".
    return out


@attrs.define
class TlsServerAtLastLeg:
    """A TLS 1.2 handshake driven synchronously up to the server's last ASC."""

    server: Sspi
    credential: SecHandle
    context: SecHandle
    client_flight: bytes


def tls_server_at_last_leg(server: Sspi) -> TlsServerAtLastLeg:
    client = Sspi()
    ccred = client.acquire_credentials_handle("Schannel", OUTBOUND).credential
    scred = server.acquire_credentials_handle("Schannel", INBOUND, schannel_server_cred())
    assert ccred is not None and scred.credential is not None
    hello = client.initialize_security_context(ccred, None, TLS_TARGET, ISC_TLS)
    flight = server.accept_security_context(scred.credential, None, hello.output_token, ASC_TLS)
    assert flight.new_context is not None
    reply = client.initialize_security_context(
        None, hello.new_context, TLS_TARGET, ISC_TLS, flight.output_token
    )
    assert (hello.status, flight.status, reply.status) == (CONTINUE, CONTINUE, CONTINUE)
    return TlsServerAtLastLeg(server, scred.credential, flight.new_context, reply.output_token)


@rule("ASY-055", "ASY-005", "ASY-009", "ASY-022")
def test_overview_sample_runs_cleanly_when_completion_comes_later() -> None:
    server = Sspi()  # its own ManualScheduler: completion comes when we say so
    tls = tls_server_at_last_leg(server)
    data = CallbackData()
    out = do_asc_call(server, tls.credential, tls.context, tls.client_flight, data)
    assert data.statuses == []  # pending: DoASCCall has returned, the callback has not run
    assert server.statistics().pending_calls == 1
    manual(server).run_all()
    assert data.statuses == [SecStatus.SEC_E_OK]
    assert out.new_context == tls.context and out.output_token  # the server's last flight
    assert server.misuse_events == []
    assert server.statistics().async_contexts == 0  # the callback freed it (ASY-055)


@rule("ASY-052", "ASY-071", "ASY-055")
def test_overview_sample_reads_a_freed_context_when_the_call_completes_inline() -> None:
    server = Sspi(scheduler=InlineScheduler())
    tls = tls_server_at_last_leg(server)
    data = CallbackData()
    with pytest.raises(SspiMisuse) as raised:
        do_asc_call(server, tls.credential, tls.context, tls.client_flight, data)
    # The callback ran (and freed the context) before DoASCCall read the status.
    assert raised.value.rule == "ASY-052"
    assert data.statuses == [SecStatus.SEC_E_OK]


@rule("ASY-052", "ASY-073")
def test_overview_sample_race_depends_on_the_interleaving() -> None:
    outcomes = {}
    for seed in range(30):
        server = Sspi(scheduler=RandomScheduler(seed))
        tls = tls_server_at_last_leg(server)
        data = CallbackData()
        try:
            do_asc_call(server, tls.credential, tls.context, tls.client_flight, data)
        except SspiMisuse as misuse:
            assert misuse.rule == "ASY-052"
            outcomes[seed] = "race"
        else:
            server.scheduler.run_all()  # type: ignore[attr-defined]
            assert data.statuses == [SecStatus.SEC_E_OK]
            outcomes[seed] = "clean"
    assert set(outcomes.values()) == {"race", "clean"}


# -- (b) MsQuic ------------------------------------------------------------------------------------


@attrs.define
class AchContext:
    """MsQuic's CXPLAT_SEC_CONFIG + ACH context (tls_schannel.c), cut down."""

    api: Sspi
    async_context: AsyncContext | None = None
    out: Out = attrs.Factory(Out)
    completion_status: int | None = None
    completion_event: threading.Event = attrs.Factory(threading.Event)


def msquic_notify_callback(async_context: AsyncContext, ach: AchContext) -> None:
    """CxPlatTlsSspiNotifyCallback: read the status, then signal the waiter."""
    ach.completion_status = ach.api.get_async_call_status(async_context)
    ach.completion_event.set()


def msquic_sec_config_create(api: Sspi, server_cred: SchannelCred) -> AchContext:
    """CxPlatTlsSecConfigCreate: queue SspiAcquireCredentialsHandleAsyncW."""
    ach = AchContext(api)
    ach.async_context = api.create_async_context()
    assert ach.async_context is not None
    status = api.set_async_notify_callback(ach.async_context, msquic_notify_callback, ach)
    assert status == SecStatus.SEC_E_OK
    status = api.acquire_credentials_handle_async(
        ach.async_context,
        package="Schannel",
        credential_use=INBOUND,
        auth_data=server_cred,
        out=ach.out,
    )
    assert status == SecStatus.SEC_E_OK  # else: a synchronous failure, no callback will come
    return ach  # QUIC_STATUS_PENDING: the callback will come


def msquic_tls_context_delete(api: Sspi, context: SecHandle) -> SecHandle:
    """CxPlatTlsUninitialize: delete the Schannel context and nobody waits for it."""
    dsc_context = api.create_async_context()
    if dsc_context is not None:
        api.delete_security_context_async(dsc_context, context=context)
        context = SecHandle.invalid()  # SecInvalidateHandle
        # "No callback was registered, so free this immediately."
        api.free_async_context(dsc_context)
    return context


@rule("ASY-056", "ASY-022", "ASY-042", "ASY-040")
def test_msquic_async_ach_then_fire_and_forget_delete() -> None:
    server = Sspi()
    ach = msquic_sec_config_create(server, schannel_server_cred())
    assert not ach.completion_event.is_set()  # QUIC_STATUS_PENDING
    manual(server).run_all()  # the LSA answers
    assert ach.completion_event.is_set()
    assert ach.completion_status == SecStatus.SEC_E_OK
    server.free_async_context(ach.async_context)  # CxPlatTlsFreeAchContext
    certificate_handle = ach.out.credential
    assert certificate_handle is not None

    # A connection: the peer's ClientHello and the server's first (synchronous) leg.
    client = Sspi()
    ccred = client.acquire_credentials_handle("Schannel", OUTBOUND).credential
    hello = client.initialize_security_context(ccred, None, TLS_TARGET, ISC_TLS)
    flight = server.accept_security_context(certificate_handle, None, hello.output_token, ASC_TLS)
    assert flight.status == CONTINUE and flight.new_context is not None

    schannel_context = msquic_tls_context_delete(server, flight.new_context)
    assert not schannel_context.is_valid
    assert server.statistics().contexts == 0  # deleted at queue time (ASY-042)
    assert server.statistics().pending_calls == 1  # the delete itself still completes
    assert server.free_credentials_handle(certificate_handle) == SecStatus.SEC_E_OK
    manual(server).run_all()
    assert server.misuse_events == []
    assert not server.statistics().anything_alive


@rule("ASY-022")
def test_msquic_blocking_ach_waits_for_the_callback_from_another_thread() -> None:
    scheduler = ThreadedScheduler(delay=0.01)
    try:
        server = Sspi(scheduler=scheduler)
        ach = msquic_sec_config_create(server, schannel_server_cred())
        # KeWaitForSingleObject(&CompletionEvent): the callback sets it on the worker thread.
        assert ach.completion_event.wait(timeout=10)
        assert ach.completion_status == SecStatus.SEC_E_OK
        assert server.get_async_call_status(ach.async_context) == SecStatus.SEC_E_OK
        server.free_async_context(ach.async_context)
        assert server.free_credentials_handle(ach.out.credential) == SecStatus.SEC_E_OK
        scheduler.run_all()
        assert not server.statistics().anything_alive
    finally:
        scheduler.close()


@rule("ASY-022", "SCH-003")
def test_msquic_ach_with_a_bad_credential_reports_the_error_in_the_callback() -> None:
    server = Sspi()
    ach = msquic_sec_config_create(server, SchannelCred())  # inbound without a certificate
    manual(server).run_all()
    assert ach.completion_status == SecStatus.SEC_E_NO_CREDENTIALS
    assert ach.out.credential is None
    server.free_async_context(ach.async_context)
    assert not server.statistics().anything_alive


# -- (c) HTTP.sys ----------------------------------------------------------------------------------


@attrs.define
class UxConnection:
    """The part of an HTTP.sys SSL connection object that matters here."""

    async_context: AsyncContext
    server_context: SecHandle


def ux_ssl_free_connection(api: Sspi, connection: UxConnection) -> None:
    """UxSslFreeConnection: delete without a callback, invalidate, free the async context."""
    api.delete_security_context_async(connection.async_context, context=connection.server_context)
    connection.server_context = SecHandle.invalid()
    api.free_async_context(connection.async_context)


@rule("ASY-056", "ASY-042")
def test_http_sys_connection_teardown_leaves_nothing_alive() -> None:
    reports: list[Any] = []
    server = Sspi(observer=reports.append)
    credential = server.acquire_credentials_handle("Schannel", INBOUND, schannel_server_cred())
    client = Sspi()
    ccred = client.acquire_credentials_handle("Schannel", OUTBOUND).credential
    connections = []
    for _ in range(3):
        hello = client.initialize_security_context(ccred, None, TLS_TARGET, ISC_TLS)
        flight = server.accept_security_context(
            credential.credential, None, hello.output_token, ASC_TLS
        )
        async_context = server.create_async_context()
        assert async_context is not None and flight.new_context is not None
        connections.append(UxConnection(async_context, flight.new_context))

    for connection in connections:
        ux_ssl_free_connection(server, connection)
        assert not connection.server_context.is_valid
    assert server.statistics().contexts == 0
    assert server.statistics().async_contexts == 0
    assert server.statistics().pending_calls == 3
    assert server.free_credentials_handle(credential.credential) == SecStatus.SEC_E_OK

    manual(server).run_all()
    assert server.misuse_events == []
    assert not [r for r in reports if type(r).__name__ == "MisuseReport"]
    assert not server.statistics().anything_alive


# -- (d) handshakes leg by leg ---------------------------------------------------------------------


@attrs.define
class AsyncSide:
    """One side of a handshake: its Sspi and one async context, reused leg after leg."""

    api: Sspi
    name: str
    async_context: AsyncContext = attrs.field(init=False)
    notifications: list[tuple[str, int]] = attrs.Factory(list)
    calls: int = 0

    def __attrs_post_init__(self) -> None:
        async_context = self.api.create_async_context()
        assert async_context is not None
        self.async_context = async_context
        status = self.api.set_async_notify_callback(async_context, self._notified, self.name)
        assert status == SecStatus.SEC_E_OK

    def _notified(self, async_context: AsyncContext, data: str) -> None:
        self.notifications.append((data, self.api.get_async_call_status(async_context)))

    def run(self, queue: Callable[..., SecStatus], **kwargs: Any) -> int:
        """Queue one call on the context, watch it pend, complete it; return its status."""
        if self.calls:  # "If reusing the context with SspiReinitAsyncContext ..."
            assert self.api.reinit_async_context(self.async_context) == NtStatus.STATUS_SUCCESS
        self.calls += 1
        out = kwargs.get("out")
        assert queue(self.async_context, **kwargs) == SecStatus.SEC_E_OK
        assert self.api.get_async_call_status(self.async_context) == PENDING
        assert out is None or not out.written
        assert manual(self.api).run_all() == 1
        status = self.api.get_async_call_status(self.async_context)
        assert self.notifications[-1] == (self.name, status)
        assert len(self.notifications) == self.calls  # exactly once per leg
        return status

    def close(self) -> None:
        self.api.free_async_context(self.async_context)


@rule("ASY-005", "ASY-006", "ASY-009", "ASY-011", "ASY-022", "ASY-040", "ASY-060")
def test_schannel_handshake_leg_by_leg() -> None:
    client = AsyncSide(Sspi(), "client")
    server = AsyncSide(Sspi(), "server")
    ccred, scred = Out(), Out()
    assert client.run(
        client.api.acquire_credentials_handle_async,
        package="Schannel", credential_use=OUTBOUND, out=ccred,
    ) == OK
    assert server.run(
        server.api.acquire_credentials_handle_async,
        package="Schannel", credential_use=INBOUND, auth_data=schannel_server_cred(), out=scred,
    ) == OK

    hello, flight, reply, finished, done = Out(), Out(), Out(), Out(), Out()
    statuses = [
        client.run(
            client.api.initialize_security_context_async,
            credential=ccred.credential, target_name=TLS_TARGET, context_req=ISC_TLS, out=hello,
        ),
        server.run(
            server.api.accept_security_context_async,
            credential=scred.credential, input=hello.output_token, context_req=ASC_TLS,
            out=flight,
        ),
        client.run(
            client.api.initialize_security_context_async,
            context=hello.new_context, target_name=TLS_TARGET, context_req=ISC_TLS,
            input=flight.output_token, out=reply,
        ),
        server.run(
            server.api.accept_security_context_async,
            context=flight.new_context, input=reply.output_token, context_req=ASC_TLS,
            out=finished,
        ),
        client.run(
            client.api.initialize_security_context_async,
            context=hello.new_context, target_name=TLS_TARGET, context_req=ISC_TLS,
            input=finished.output_token, out=done,
        ),
    ]
    assert statuses == [CONTINUE, CONTINUE, CONTINUE, OK, OK]
    assert finished.output_token  # the server's CCS + Finished come with SEC_E_OK
    assert done.new_context == hello.new_context

    for side, context, credential in (
        (client, hello.new_context, ccred.credential),
        (server, flight.new_context, scred.credential),
    ):
        assert side.run(side.api.delete_security_context_async, context=context) == OK
        assert side.run(side.api.free_credentials_handle_async, credential=credential) == OK
        side.close()
        assert not side.api.statistics().anything_alive
        assert side.api.misuse_events == []


@rule("ASY-011", "ASY-022", "ASY-060", "ASY-061")
def test_ntlm_handshake_leg_by_leg_with_async_any_package() -> None:
    client = AsyncSide(ntlm_sspi(async_any_package=True), "client")
    server = AsyncSide(ntlm_sspi(async_any_package=True), "server")
    ccred, scred = Out(), Out()
    assert client.run(
        client.api.acquire_credentials_handle_async,
        package="Negotiate", credential_use=OUTBOUND, out=ccred,
    ) == OK
    assert server.run(
        server.api.acquire_credentials_handle_async,
        package="Negotiate", credential_use=INBOUND, out=scred,
    ) == OK

    negotiate, challenge, authenticate, accepted = Out(), Out(), Out(), Out()
    statuses = [
        client.run(
            client.api.initialize_security_context_async,
            credential=ccred.credential, target_name="HOST/srv", out=negotiate,
        ),
        server.run(
            server.api.accept_security_context_async,
            credential=scred.credential, input=negotiate.output_token, out=challenge,
        ),
        client.run(
            client.api.initialize_security_context_async,
            context=negotiate.new_context, target_name="HOST/srv",
            input=challenge.output_token, out=authenticate,
        ),
        server.run(
            server.api.accept_security_context_async,
            context=challenge.new_context, input=authenticate.output_token, out=accepted,
        ),
    ]
    assert statuses == [CONTINUE, CONTINUE, OK, OK]
    names = server.api.query_context_attributes(challenge.new_context, SECPKG_ATTR_NAMES).buffer
    assert isinstance(names, ContextNames) and names.user_name.casefold() == "dom\\alice"
    assert server.api.free_context_buffer(names.allocation) == OK

    for side, context, cred in (
        (client, negotiate.new_context, ccred.credential),
        (server, challenge.new_context, scred.credential),
    ):
        assert side.run(side.api.delete_security_context_async, context=context) == OK
        assert side.run(side.api.free_credentials_handle_async, credential=cred) == OK
        side.close()
        assert not side.api.statistics().anything_alive


@rule("ASY-060")
def test_the_same_ntlm_handshake_without_async_any_package_is_unsupported() -> None:
    client = AsyncSide(ntlm_sspi(), "client")
    out = Out()
    status = client.run(
        client.api.acquire_credentials_handle_async,
        package="NTLM", credential_use=OUTBOUND, out=out,
    )
    assert status == SecStatus.SEC_E_UNSUPPORTED_FUNCTION
    assert out.credential is None
    assert isinstance(client.api.scheduler, ManualScheduler)
