"""Helpers shared by the async-layer tests: Sspi builders, a recording callback, handshake steps.

Kept out of conftest.py (owned elsewhere); imported as `async_helpers` (tests/ is on sys.path).
"""

from __future__ import annotations

from typing import Any

import attrs

from sspi_model import (
    AsyncContext,
    CredentialUse,
    ManualScheduler,
    SecHandle,
    SecStatus,
    Sspi,
)
from sspi_model.packages import NegotiatePackage, NtlmPackage
from sspi_model.packages.schannel import Certificate, SchannelCred

ACCOUNTS = {"DOM\\alice": "alice-pw"}
OK = SecStatus.SEC_E_OK
PENDING = SecStatus.SEC_I_ASYNC_CALL_PENDING
CONTINUE = SecStatus.SEC_I_CONTINUE_NEEDED
FRESH_STATUS = SecStatus.SEC_E_UNSUPPORTED_FUNCTION  # what a context that never ran a call reads
INVALID_PARAMETER = SecStatus.SEC_E_INVALID_PARAMETER
INVALID_HANDLE = SecStatus.SEC_E_INVALID_HANDLE
INBOUND, OUTBOUND = CredentialUse.INBOUND, CredentialUse.OUTBOUND

TLS_TARGET = "srv.contoso.com"
SERVER_CERT = Certificate("CN=srv.contoso.com, O=Contoso")
ISC_TLS = 0x4 | 0x8 | 0x10 | 0x800 | 0x8000  # replay | sequence | confidentiality | conn | stream
ASC_TLS = 0x4 | 0x8 | 0x10 | 0x800 | 0x10000


def ntlm_sspi(**kwargs: Any) -> Sspi:
    """An Sspi over NTLM and Negotiate (no Schannel), sharing ACCOUNTS."""
    ntlm = NtlmPackage()
    kwargs.setdefault("packages", (NegotiatePackage(ntlm), ntlm))
    kwargs.setdefault("accounts", ACCOUNTS)
    return Sspi(**kwargs)


def manual(api: Sspi) -> ManualScheduler:
    """The instance's ManualScheduler (the default one, ASY-070)."""
    scheduler = api.scheduler
    assert isinstance(scheduler, ManualScheduler)
    return scheduler


@attrs.frozen
class Notification:
    """One callback invocation: what it was given and the status it read at that moment."""

    async_context: Any
    data: Any
    status: int


@attrs.define
class Recorder:
    """A notify callback that records each call and reads the context's status, as the
    documented flow does ("on callback, retrieve the result using SspiGetAsyncCallStatus")."""

    api: Sspi
    calls: list[Notification] = attrs.Factory(list)

    def __call__(self, async_context: Any, data: Any) -> None:
        status = self.api.get_async_call_status(async_context)
        self.calls.append(Notification(async_context, data, status))

    @property
    def count(self) -> int:
        return len(self.calls)


def context_with_recorder(api: Sspi, data: Any = "data") -> tuple[AsyncContext, Recorder]:
    """A fresh async context with a Recorder registered as its callback."""
    async_context = api.create_async_context()
    assert async_context is not None
    recorder = Recorder(api)
    assert api.set_async_notify_callback(async_context, recorder, data) == OK
    return async_context, recorder


def credential(api: Sspi, package: str, use: int, auth_data: Any = None) -> SecHandle:
    """A credential handle acquired synchronously."""
    result = api.acquire_credentials_handle(package, use, auth_data)
    assert result.status == OK, result
    assert result.credential is not None
    return result.credential


def ntlm_client_context(api: Sspi) -> SecHandle:
    """A partial NTLM client context (first ISC leg done), made synchronously."""
    leg = api.initialize_security_context(credential(api, "NTLM", OUTBOUND), None, "HOST/srv")
    assert leg.status == CONTINUE and leg.new_context is not None
    return leg.new_context


def schannel_pair(**kwargs: Any) -> tuple[Sspi, Sspi]:
    """A client and a server Sspi with the default packages (Schannel included)."""
    return Sspi(**kwargs), Sspi(**kwargs)


def schannel_server_cred() -> SchannelCred:
    return SchannelCred(certificate=SERVER_CERT)
