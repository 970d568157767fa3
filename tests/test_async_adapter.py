"""The model's async layer over a backend's synchronous calls (backends/async_adapter.py)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from sspi_model import AuthIdentity, ManualScheduler, Out, SecStatus, SspiMisuse
from sspi_model.backends.async_adapter import AsyncAdapter
from sspi_model.backends.base import Backend
from sspi_model.backends.model import ModelBackend

ALICE = AuthIdentity("alice", "Passw0rd!", "CONTOSO")


def _native() -> Backend:
    native = pytest.importorskip("sspi_model.backends.native")
    try:
        return native.NativeBackend()  # type: ignore[no-any-return]
    except native.LibraryNotFound as missing:
        pytest.skip(str(missing))


def _async_handshake(adapter: AsyncAdapter, scheduler: ManualScheduler) -> list[Any]:
    """Every step as its own async call with a callback; the statuses the callbacks read."""
    seen: list[Any] = []

    def step(operation: Callable[..., SecStatus], **arguments: Any) -> Out:
        async_context = adapter.create_async_context()
        adapter.set_async_notify_callback(
            async_context, lambda ctx, data: seen.append(adapter.get_async_call_status(ctx)), None
        )
        out = Out()
        assert operation(async_context, out=out, **arguments) == SecStatus.SEC_E_OK
        assert adapter.get_async_call_status(async_context) == SecStatus.SEC_I_ASYNC_CALL_PENDING
        assert not out.written  # written only when the call completes (ASY-072)
        scheduler.run_all()
        adapter.free_async_context(async_context)
        return out

    client = step(adapter.acquire_credentials_handle_async, package="NTLM",
                  credential_use=2, auth_data=ALICE).credential
    server = step(adapter.acquire_credentials_handle_async, package="NTLM",
                  credential_use=1, auth_data=ALICE).credential
    isc = adapter.initialize_security_context_async
    asc = adapter.accept_security_context_async
    leg1 = step(isc, credential=client, target_name="host/srv", context_req=0x800)
    acc1 = step(asc, credential=server, input=leg1.output_token, context_req=0x800)
    leg2 = step(isc, credential=client, context=leg1.new_context, input=acc1.output_token,
                context_req=0x800)
    step(asc, credential=server, context=acc1.new_context, input=leg2.output_token,
         context_req=0x800)
    return seen


@pytest.mark.rule("ASY-022", "ASY-072")
def test_an_async_handshake_over_the_model_backend_gives_the_sync_statuses() -> None:
    scheduler = ManualScheduler()
    seen = _async_handshake(AsyncAdapter(ModelBackend(), scheduler=scheduler), scheduler)
    assert seen == [
        SecStatus.SEC_E_OK,
        SecStatus.SEC_E_OK,
        SecStatus.SEC_I_CONTINUE_NEEDED,
        SecStatus.SEC_I_CONTINUE_NEEDED,
        SecStatus.SEC_E_OK,
        SecStatus.SEC_E_OK,
    ]


def test_an_async_handshake_runs_against_a_real_library() -> None:
    backend = _native()
    try:
        scheduler = ManualScheduler()
        seen = _async_handshake(AsyncAdapter(backend, scheduler=scheduler), scheduler)
    finally:
        backend.close()
    # The real library's semantics show through: sspi-rs's final ASC asks for
    # CompleteAuthToken (a known divergence, RS-COMPLETE-NEEDED-FINAL-LEG).
    assert seen[:5] == [
        SecStatus.SEC_E_OK,
        SecStatus.SEC_E_OK,
        SecStatus.SEC_I_CONTINUE_NEEDED,
        SecStatus.SEC_I_CONTINUE_NEEDED,
        SecStatus.SEC_E_OK,
    ]
    assert seen[5] in (SecStatus.SEC_E_OK, SecStatus.SEC_I_COMPLETE_NEEDED)


@pytest.mark.rule("ASY-052", "ASY-042")
def test_the_adapter_keeps_misuse_detection_and_deletes_at_queue_time() -> None:
    backend = ModelBackend()
    scheduler = ManualScheduler()
    adapter = AsyncAdapter(backend, scheduler=scheduler)
    credential = backend.acquire_credentials_handle("NTLM", 2, ALICE).credential
    context = backend.initialize_security_context(credential, None, "host/srv").new_context
    async_context = adapter.create_async_context()
    assert adapter.delete_security_context_async(async_context, context=context) == 0
    # The backend's delete ran when the call was queued: the handle is already invalid.
    assert backend.query_context_attributes(context, 0).status == SecStatus.SEC_E_INVALID_HANDLE
    scheduler.run_all()
    assert adapter.get_async_call_status(async_context) == SecStatus.SEC_E_OK
    adapter.free_async_context(async_context)
    with pytest.raises(SspiMisuse) as misuse:
        adapter.get_async_call_status(async_context)
    assert misuse.value.rule == "ASY-052"
