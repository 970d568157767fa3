"""The public asynchronous API of a host (Sspi, or AsyncAdapter over a backend).

Each method is one envelope (envelope.api_call) around the host's composed AsyncLayer
(`self._async`), where the behaviour lives. The five queueing calls report their own CallEvent
(before any completion can run), so their envelopes do not.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sspi_model.async_api import AsyncContext, NotifyCallback, Out
from sspi_model.async_layer import AsyncLayer
from sspi_model.buffers import SecBuffer
from sspi_model.envelope import EnvelopeHost, api_call
from sspi_model.handles import SecHandle
from sspi_model.lifecycle import Call
from sspi_model.scheduling import Scheduler
from sspi_model.status import NtStatus, SecStatus


class AsyncCalls(EnvelopeHost):
    """SspiCreateAsyncContext and its ten siblings, for a host holding `_async`."""

    _async: AsyncLayer

    @property
    def scheduler(self) -> Scheduler:
        """Decides when queued async calls complete (see sspi_model.scheduling)."""
        return self._async.scheduler

    @api_call(Call.CREATE_ASYNC_CONTEXT, delegate="_async")
    def create_async_context(self) -> AsyncContext | None:
        """SspiCreateAsyncContext: a fresh context, or None on an (injected) allocation
        failure (ASY-001)."""
        return self._async.create_async_context()

    @api_call(Call.FREE_ASYNC_CONTEXT, entry=False, delegate="_async")
    def free_async_context(self, async_context: AsyncContext | None) -> None:
        """SspiFreeAsyncContext. NULL is a no-op (ASY-050)."""
        return self._async.free_async_context(async_context)

    @api_call(Call.REINIT_ASYNC_CONTEXT, delegate="_async")
    def reinit_async_context(self, async_context: AsyncContext | None) -> NtStatus:
        """SspiReinitAsyncContext: back to the fresh state; the callback stays (ASY-011)."""
        return self._async.reinit_async_context(async_context)

    @api_call(Call.SET_ASYNC_NOTIFY_CALLBACK, delegate="_async")
    def set_async_notify_callback(
        self,
        async_context: AsyncContext | None,
        callback: NotifyCallback | None,
        callback_data: Any = None,
    ) -> SecStatus:
        """SspiSetAsyncNotifyCallback: a None callback removes it (ASY-016, ASY-018)."""
        return self._async.set_async_notify_callback(async_context, callback, callback_data)

    @api_call(Call.ASYNC_CONTEXT_REQUIRES_NOTIFY, entry=False, delegate="_async")
    def async_context_requires_notify(self, async_context: AsyncContext | None) -> bool:
        """SspiAsyncContextRequiresNotify: TRUE iff a callback is registered (ASY-019)."""
        return self._async.async_context_requires_notify(async_context)

    @api_call(Call.GET_ASYNC_CALL_STATUS, delegate="_async")
    def get_async_call_status(self, async_context: AsyncContext | None) -> SecStatus | int:
        """SspiGetAsyncCallStatus: PENDING until completion, then the call's status (ASY-006)."""
        return self._async.get_async_call_status(async_context)

    @api_call(Call.ACQUIRE_CREDENTIALS_HANDLE_ASYNC, observe=False, delegate="_async")
    def acquire_credentials_handle_async(
        self,
        async_context: AsyncContext | None,
        *,
        package: str | None,
        credential_use: int,
        auth_data: Any = None,
        principal: str | None = None,
        out: Out | None = None,
    ) -> SecStatus:
        """SspiAcquireCredentialsHandleAsyncW: the handle lands in out.credential."""
        return self._async.acquire_credentials_handle_async(
            async_context,
            package=package,
            credential_use=credential_use,
            auth_data=auth_data,
            principal=principal,
            out=out,
        )

    @api_call(Call.INITIALIZE_SECURITY_CONTEXT_ASYNC, observe=False)
    def initialize_security_context_async(
        self,
        async_context: AsyncContext | None,
        *,
        credential: SecHandle | None = None,
        context: SecHandle | None = None,
        target_name: str | None = None,
        context_req: int = 0,
        input: bytes | Sequence[SecBuffer] | None = None,
        output: Sequence[SecBuffer] | None = None,
        out: Out | None = None,
    ) -> SecStatus:
        """SspiInitializeSecurityContextAsyncW."""
        return self._async.leg_async(
            Call.INITIALIZE_SECURITY_CONTEXT_ASYNC,
            async_context,
            credential,
            context,
            target_name,
            context_req,
            input,
            output,
            out,
        )

    @api_call(Call.ACCEPT_SECURITY_CONTEXT_ASYNC, observe=False)
    def accept_security_context_async(
        self,
        async_context: AsyncContext | None,
        *,
        credential: SecHandle | None = None,
        context: SecHandle | None = None,
        input: bytes | Sequence[SecBuffer] | None = None,
        context_req: int = 0,
        output: Sequence[SecBuffer] | None = None,
        out: Out | None = None,
    ) -> SecStatus:
        """SspiAcceptSecurityContextAsync."""
        return self._async.leg_async(
            Call.ACCEPT_SECURITY_CONTEXT_ASYNC,
            async_context,
            credential,
            context,
            None,
            context_req,
            input,
            output,
            out,
        )

    @api_call(Call.FREE_CREDENTIALS_HANDLE_ASYNC, observe=False, delegate="_async")
    def free_credentials_handle_async(
        self, async_context: AsyncContext | None, *, credential: SecHandle | None
    ) -> SecStatus:
        """SspiFreeCredentialsHandleAsync (a stub in the analysed ksecdd: ASY-031)."""
        return self._async.free_credentials_handle_async(async_context, credential=credential)

    @api_call(Call.DELETE_SECURITY_CONTEXT_ASYNC, observe=False, delegate="_async")
    def delete_security_context_async(
        self, async_context: AsyncContext | None, *, context: SecHandle | None
    ) -> SecStatus:
        """SspiDeleteSecurityContextAsync: the handle is invalid from the moment it is queued."""
        return self._async.delete_security_context_async(async_context, context=context)
