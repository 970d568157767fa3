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


def _closed_tls_pair(sanitizer: Sanitizer) -> tuple[Sspi, Sspi, object, object]:
    """A Schannel client and server, watched from the start, that shut the connection down
    on both sides (SHD-004, SHD-005, SHD-003): both contexts end CtxState.CLOSED."""
    from sspi_model.buffers import SecBuffer
    from sspi_model.constants import SCHANNEL_SHUTDOWN
    from sspi_model.lifecycle import CtxState
    from sspi_model.packages.schannel import Certificate

    isc_req, asc_req = 0x4 | 0x8 | 0x10 | 0x8000, 0x4 | 0x8 | 0x10 | 0x10000  # no ALLOCATE_MEMORY
    client = sanitizer.watch(Sspi(), "client")
    server = sanitizer.watch(Sspi(), "server")
    ccred = client.acquire_credentials_handle("Schannel", 2, SchannelCred()).credential
    scred = server.acquire_credentials_handle(
        "Schannel", 1, SchannelCred(Certificate("CN=srv.contoso.com"))
    ).credential
    leg = client.initialize_security_context(ccred, None, "srv.contoso.com", isc_req)
    c = leg.new_context
    acc = server.accept_security_context(scred, None, leg.output_token, asc_req)
    s = acc.new_context
    target = "srv.contoso.com"
    while server.lifecycle_state(s) is not CtxState.ESTABLISHED or leg.status != SecStatus.SEC_E_OK:
        leg = client.initialize_security_context(None, c, target, isc_req, acc.output_token)
        if leg.output_token:
            acc = server.accept_security_context(None, s, leg.output_token, asc_req)
    shutdown = [SecBuffer(2, SCHANNEL_SHUTDOWN.to_bytes(4, "little"))]
    inbox = [SecBuffer(0), SecBuffer(0), SecBuffer(0)]
    assert client.apply_control_token(c, shutdown).status == SecStatus.SEC_E_OK
    notify = client.initialize_security_context(None, c, "srv.contoso.com", isc_req).output_token
    server.decrypt_message(s, [SecBuffer(1, notify), *inbox])
    assert server.apply_control_token(s, shutdown).status == SecStatus.SEC_E_OK
    answer = server.accept_security_context(None, s, None, asc_req).output_token
    client.decrypt_message(c, [SecBuffer(1, answer), *inbox])
    assert client.lifecycle_state(c) is server.lifecycle_state(s) is CtxState.CLOSED
    client.free_credentials_handle(ccred)
    server.free_credentials_handle(scred)
    return client, server, c, s


@rule("SAN-006")
def test_a_call_after_the_shutdown_completed_is_a_finding() -> None:
    """curl#3412: an EncryptMessage after the connection was shut down and torn down."""
    clean = Sanitizer()
    client, server, c, s = _closed_tls_pair(clean)
    client.delete_security_context(c)  # only DeleteSecurityContext remains: clean
    server.delete_security_context(s)
    assert clean.check() == ()
    stray = Sanitizer()
    client, server, c, s = _closed_tls_pair(stray)
    assert client.encrypt_message(c, 0, []).status == SecStatus.SEC_E_CONTEXT_EXPIRED  # SHD-006
    client.delete_security_context(c)
    server.delete_security_context(s)
    findings = stray.check()
    assert [finding.rule for finding in findings] == ["SAN-006"]
    assert "EncryptMessage" in findings[0].message and "after its shutdown completed" in (
        findings[0].message
    )
