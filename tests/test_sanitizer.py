"""The sanitizer without pytest's fixture: `sanitized`, `assert_clean`, and what it tracks."""

from __future__ import annotations

import unittest

import pytest

from sspi_model import CredentialUse, ManualScheduler, Out, SecStatus, Sspi
from sspi_model.packages.schannel import SchannelCred
from sspi_model.sanitizer import (
    SanitizedModels,
    Sanitizer,
    SanitizerError,
    assert_clean,
    sanitized,
    sanitizer_of,
)
from sspi_model.scenarios import ACCOUNTS, SERVER_CERTIFICATE, TARGET

rule = pytest.mark.rule


class UnittestStyle(unittest.TestCase):
    """What a unittest user writes."""

    def test_clean_block_passes(self) -> None:
        with sanitized(Sspi(accounts=ACCOUNTS)) as sspi:
            credential = sspi.acquire_credentials_handle("NTLM", CredentialUse.OUTBOUND).credential
            sspi.free_credentials_handle(credential)

    def test_leaking_block_raises_naming_the_credential(self) -> None:
        leaking = sanitized(Sspi(accounts=ACCOUNTS), "client")
        expected = r"credential handle \$cred1 created by "
        with self.assertRaisesRegex(SanitizerError, expected), leaking as sspi:
            sspi.acquire_credentials_handle("NTLM", CredentialUse.OUTBOUND)


@rule("SAN-005")
def test_assert_clean_with_and_without_a_watching_sanitizer() -> None:
    watched = Sanitizer().watch(Sspi(accounts=ACCOUNTS), "client")
    assert sanitizer_of(watched) is not None
    watched.create_async_context()
    with pytest.raises(SanitizerError, match=r"async context \$actx1 created by SspiCreateAsync"):
        assert_clean(watched)
    bare = Sspi(accounts=ACCOUNTS)
    assert_clean(bare)
    bare.create_async_context()
    with pytest.raises(SanitizerError, match="still alive: async_contexts 1"):
        assert_clean(bare)


@rule("SAN-005", "ASY-040")
def test_pending_calls_and_async_outputs_are_tracked() -> None:
    scheduler = ManualScheduler()
    models = SanitizedModels(accounts=ACCOUNTS)
    server = models("server", scheduler=scheduler)
    actx = server.create_async_context()
    server.set_async_notify_callback(actx, lambda ctx, data: None)
    out = Out()
    server.acquire_credentials_handle_async(
        actx,
        package="Schannel",
        credential_use=CredentialUse.INBOUND,
        auth_data=SchannelCred(SERVER_CERTIFICATE),
        out=out,
    )
    assert any("still pending" in str(finding) for finding in models.check())
    scheduler.run_all()
    messages = [str(finding) for finding in models.check()]
    assert any("SspiAcquireCredentialsHandleAsyncW (call 3), completed" in m for m in messages)
    server.free_credentials_handle(out.credential)
    server.free_async_context(actx)
    assert models.check() == ()


@rule("SAN-004", "DEL-003")
def test_a_second_delete_is_a_finding_though_it_returns_ok() -> None:
    sanitizer = Sanitizer()
    client = sanitizer.watch(Sspi(accounts=ACCOUNTS), "client")
    credential = client.acquire_credentials_handle("NTLM", CredentialUse.OUTBOUND).credential
    context = client.initialize_security_context(credential, None, TARGET, 0).new_context
    assert client.delete_security_context(context) == SecStatus.SEC_E_OK
    assert client.delete_security_context(context) == SecStatus.SEC_E_OK  # DEL-003
    client.free_credentials_handle(credential)
    [finding] = sanitizer.check()
    assert finding.rule == "SAN-004" and finding.model_rules == ("DEL-003",)


@rule("SAN-004")
def test_invalidated_and_null_handles_are_not_findings() -> None:
    from sspi_model import SecHandle

    sanitizer = Sanitizer()
    client = sanitizer.watch(Sspi(accounts=ACCOUNTS), "client")
    client.delete_security_context(SecHandle.invalid())
    client.delete_security_context(None)
    assert sanitizer.check() == ()


def test_rotation_needs_the_core_option() -> None:
    import inspect

    if "rotate_context_handles" in inspect.signature(Sspi).parameters:
        SanitizedModels(rotate_context_handles=True)("client")
    else:
        with pytest.raises(NotImplementedError, match="rotate_context_handles"):
            SanitizedModels(rotate_context_handles=True)


@rule("SAN-004")
def test_a_rotated_context_handle_makes_the_old_one_stale() -> None:
    """What Sspi(rotate_context_handles=True) will report, fed to the sanitizer by hand."""
    from sspi_model import SecHandle, SecurityContextResult
    from sspi_model.events import CallEvent
    from sspi_model.lifecycle import Call

    class Process:
        observer = None
        last_rules = ("ISC-003",)

        def statistics(self) -> object:
            return Sspi().statistics()

    process = Process()
    sanitizer = Sanitizer()
    sanitizer.register(process, "client")
    cred, first, rotated = SecHandle(1, 1), SecHandle(2, 2), SecHandle(3, 3)
    isc = Call.INITIALIZE_SECURITY_CONTEXT
    ok, more = SecStatus.SEC_E_OK, SecStatus.SEC_I_CONTINUE_NEEDED
    events = [
        CallEvent(process, Call.ACQUIRE_CREDENTIALS_HANDLE, {}, _Acquired(ok, cred)),
        CallEvent(
            process, isc, {"credential": cred, "context": None}, SecurityContextResult(more, first)
        ),
        CallEvent(
            process,
            isc,
            {"credential": cred, "context": first},
            SecurityContextResult(more, rotated),
        ),
        CallEvent(
            process,
            isc,
            {"credential": cred, "context": first},  # the stale copy
            SecurityContextResult(SecStatus.SEC_E_INVALID_HANDLE),
        ),
        CallEvent(process, Call.DELETE_SECURITY_CONTEXT, {"context": rotated}, ok),
        CallEvent(process, Call.FREE_CREDENTIALS_HANDLE, {"credential": cred}, ok),
    ]
    for event in events:
        sanitizer(event)
    [finding] = sanitizer.check()
    assert finding.rule == "SAN-004" and "released" in finding.message
    assert finding.model_rules == ("ISC-003",)


class _Acquired:
    def __init__(self, status: SecStatus, credential: object) -> None:
        self.status, self.credential = status, credential
