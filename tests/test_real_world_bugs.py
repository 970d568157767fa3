"""Every lifecycle bug of shared/research/real-world-clients.md section 1, as a scenario.

Each bug is flagged with its rule (the model's misuse, an invalid handle, a leak at
teardown, a sequence invariant of the sanitizer), and the fixed sequence beside it runs clean.
Single-threaded bugs run on a Sanitizer-watched pair of processes; the races run under the
explorer, which finds every interleaving that breaks them. Row numbers cite the note's table.
"""

from __future__ import annotations

from typing import Any

import pytest

from sspi_model import (
    AuthIdentity,
    CredentialUse,
    Out,
    SecHandle,
    SecStatus,
    Sspi,
)
from sspi_model.explore import EXPLORABLE, World, explore
from sspi_model.explore.demos import curl_session_cache
from sspi_model.sanitizer import Finding, Sanitizer
from sspi_model.scenarios import TARGET, handshake, schannel_credentials

rule = pytest.mark.rule
INBOUND, OUTBOUND = CredentialUse.INBOUND, CredentialUse.OUTBOUND
ACCOUNTS = {"CONTOSO\\alice": "Passw0rd!", "CONTOSO\\bob": "Hunter2!"}


def processes(*names: str) -> tuple[Sanitizer, list[Sspi]]:
    sanitizer = Sanitizer()
    return sanitizer, [sanitizer.watch(Sspi(accounts=ACCOUNTS), name) for name in names]


def rules(findings: Any) -> list[tuple[str, str]]:
    return sorted({(finding.kind, finding.rule) for finding in findings})


def explored(scenario: Any, bound: int = 2) -> dict[str, int]:
    """Rule -> the number of schedules reaching it; "clean" -> the clean ones."""
    report = explore(scenario, bound)
    assert report.errors == ()
    return {"clean": report.clean, **{found.rule: found.schedules for found in report.findings}}


# -- 1: the documentation sample's race ----------------------------------------------------


def overview_fixed(world: World) -> None:
    """The sample with the callback not freeing: the issuing thread frees after it waited."""
    client, server = world.process("client"), world.process("server")
    server_credential, client_credential = schannel_credentials(server, client)
    hello = client.initialize_security_context(client_credential, None, TARGET, 0)
    actx = server.create_async_context()
    out = Out()
    server.set_async_notify_callback(actx, lambda ctx, data: server.get_async_call_status(ctx))
    server.accept_security_context_async(
        actx, credential=server_credential, input=hello.output_token, out=out
    )
    server.get_async_call_status(actx)
    world.settle()
    server.free_async_context(actx)  # after the caller's last use
    server.delete_security_context(out.new_context)
    client.delete_security_context(hello.new_context)
    server.free_credentials_handle(server_credential)
    client.free_credentials_handle(client_credential)


@rule("ASY-052")
def test_row1_documentation_sample_race() -> None:
    found = explored(EXPLORABLE["overview"].run, bound=3)
    assert found == {"clean": 1, "ASY-052": 2}  # every schedule where completion wins
    assert explored(overview_fixed, bound=3) == {"clean": 3}


# -- 5: MsQuic frees its async context inside its own callback ------------------------------


def msquic_acquire(world: World, *, caller_frees_too: bool) -> None:
    """Async mode: the callback frees AchContext. The bug variant also frees it after waiting,
    as the synchronous mode does: ownership must be exactly one of the two."""
    server = world.process("msquic")
    actx = server.create_async_context()
    out = Out()

    def on_acquired(context: Any, data: Any) -> None:
        server.get_async_call_status(context)
        server.free_async_context(context)

    server.set_async_notify_callback(actx, on_acquired, "SecConfig")
    server.acquire_credentials_handle_async(
        actx, package="Schannel", credential_use=INBOUND, out=out
    )
    world.settle()  # sync mode: KeWaitForSingleObject on the event the callback sets
    if caller_frees_too:
        server.free_async_context(actx)
    server.free_credentials_handle(out.credential)


@rule("ASY-053", "ASY-055")
def test_row5_msquic_frees_its_async_context_exactly_once() -> None:
    def buggy(world: World) -> None:
        msquic_acquire(world, caller_frees_too=True)

    def fixed(world: World) -> None:
        msquic_acquire(world, caller_frees_too=False)

    assert set(explored(buggy)) == {"clean", "ASY-053"} and explored(buggy)["clean"] == 0
    assert set(explored(fixed)) == {"clean"}


# -- 6: mstsc reuses a freed credential handle after re-acquiring (sspi-rs PR #744) ----------


@rule("SAN-004", "HDL-003")
@pytest.mark.parametrize("fixed", [False, True])
def test_row6_mstsc_stale_credential_after_reacquire(fixed: bool) -> None:
    sanitizer, (client, _server) = processes("mstsc", "server")
    old = client.acquire_credentials_handle("NTLM", OUTBOUND).credential
    assert client.free_credentials_handle(old) == SecStatus.SEC_E_OK  # auto-reconnect
    new = client.acquire_credentials_handle("NTLM", OUTBOUND).credential
    leg = client.initialize_security_context(new if fixed else old, None, TARGET, 0)
    if fixed:
        client.delete_security_context(leg.new_context)
        client.free_credentials_handle(new)
        assert sanitizer.check() == ()
        return
    assert leg.status == SecStatus.SEC_E_INVALID_HANDLE and "HDL-003" in client.last_rules
    client.free_credentials_handle(new)
    [finding] = sanitizer.check()
    assert (finding.rule, finding.kind) == ("SAN-004", "invalid-handle")
    assert "released" in finding.message and "HDL-003" in finding.model_rules


# -- 7: curl's credential refcount race (#815) ----------------------------------------------


@rule("SAN-004", "EXP-004")
def test_row7_curl_credential_refcount_race() -> None:
    def fixed(world: World) -> None:
        curl_session_cache(world, locked=True)

    found = explored(EXPLORABLE["curl-cache"].run, bound=3)
    assert found.get("SAN-004", 0) > 0  # freed while the other connection still uses it
    assert set(explored(fixed, bound=3)) == {"clean"}


# -- 8: curl's shutdown after teardown (#3412) -----------------------------------------------


@rule("SAN-004", "MSG-005")
def test_row8_curl_shutdown_after_teardown() -> None:
    sanitizer, (client, server) = processes("curl", "server")
    server_credential, client_credential = schannel_credentials(server, client)
    client_context, _server = handshake(client, client_credential, server, server_credential)
    client.delete_security_context(client_context)  # the connection lost its owner first
    result = client.apply_control_token(client_context, b"\x01\x00\x00\x00")  # SHUTDOWN
    assert result.status == SecStatus.SEC_E_INVALID_HANDLE
    assert client.last_rules == ("MSG-005", "HDL-003")
    found = [finding for finding in sanitizer.check() if finding.rule == "SAN-004"]
    assert found and "ApplyControlToken" in found[0].message


# -- 9: curl leaks the contexts of failed handshakes (#7877) --------------------------------


@rule("SAN-002", "SCH-010")
@pytest.mark.parametrize("fixed", [False, True])
def test_row9_curl_failed_handshake_context_leak(fixed: bool) -> None:
    sanitizer, (client, server) = processes("curl", "server")
    server_credential, client_credential = schannel_credentials(server, client)
    hello = client.initialize_security_context(client_credential, None, TARGET, 0)
    failed = client.initialize_security_context(
        client_credential, hello.new_context, TARGET, 0, b"not a TLS record"
    )
    assert failed.status == SecStatus.SEC_E_INVALID_TOKEN
    if fixed:  # 90e74206b9: run the cleanup on failure too
        client.delete_security_context(hello.new_context)
    client.free_credentials_handle(client_credential)
    server.free_credentials_handle(server_credential)
    expected = [] if fixed else [("leak", "SAN-002")]
    assert rules(sanitizer.check()) == expected


# -- 10: curl frees a credential whose acquisition failed (PR #21642) -----------------------


@rule("SAN-004", "HDL-006", "ACH-006")
@pytest.mark.parametrize("fixed", [False, True])
def test_row10_curl_frees_the_credential_of_a_failed_acquisition(fixed: bool) -> None:
    sanitizer, (client,) = processes("curl")
    acquired = client.acquire_credentials_handle("NTLM", OUTBOUND, principal="CONTOSO\\bob")
    assert acquired.status == SecStatus.SEC_E_NOT_OWNER and acquired.credential is None
    calloced = SecHandle(0, 0)  # the calloc'd CredHandle curl keeps referencing
    if not fixed:
        assert client.free_credentials_handle(calloced) == SecStatus.SEC_E_INVALID_HANDLE
        assert "HDL-006" in client.last_rules
    retry = client.acquire_credentials_handle("NTLM", OUTBOUND)  # a retry must be possible
    client.free_credentials_handle(retry.credential)
    expected = [] if fixed else [("invalid-handle", "SAN-004")]
    assert rules(sanitizer.check()) == expected


# -- 12: a Negotiate context reused with other credentials (curl CVE-2015-3148) -------------


@rule("SAN-001")
@pytest.mark.parametrize("fixed", [False, True])
def test_row12_negotiate_context_reused_with_other_credentials(fixed: bool) -> None:
    sanitizer, (client, server) = processes("curl", "server")

    def identity(user: str) -> AuthIdentity:
        return AuthIdentity(user=user, domain="CONTOSO", password=ACCOUNTS[f"CONTOSO\\{user}"])

    alice = client.acquire_credentials_handle("Negotiate", OUTBOUND, identity("alice")).credential
    bob = client.acquire_credentials_handle("Negotiate", OUTBOUND, identity("bob")).credential
    listener = server.acquire_credentials_handle("Negotiate", INBOUND).credential
    first = client.initialize_security_context(alice, None, TARGET, 0)
    reply = server.accept_security_context(listener, None, first.output_token)
    # The connection is reused for bob's request: the bug continues alice's context.
    context = None if fixed else first.new_context
    if fixed:
        client.delete_security_context(first.new_context)
        server.delete_security_context(reply.new_context)
        client_context, server_context = handshake(client, bob, server, listener)
    else:
        leg = client.initialize_security_context(bob, context, TARGET, 0, reply.output_token)
        client_context, server_context = leg.new_context, reply.new_context
        server.accept_security_context(listener, server_context, leg.output_token)
    for sspi, handle in ((client, client_context), (server, server_context)):
        sspi.delete_security_context(handle)
    for handle in (alice, bob):
        client.free_credentials_handle(handle)
    server.free_credentials_handle(listener)
    expected = [] if fixed else [("invariant", "SAN-001")]
    assert rules(sanitizer.check()) == expected


# -- 15: Kerberos.NET never deletes its contexts (PR #308) ----------------------------------


@rule("SAN-005")
@pytest.mark.parametrize("fixed", [False, True])
def test_row15_kerberos_net_never_deletes_contexts(fixed: bool) -> None:
    sanitizer, (client, server) = processes("kerberos.net", "server")
    credential = client.acquire_credentials_handle("NTLM", OUTBOUND).credential
    listener = server.acquire_credentials_handle("NTLM", INBOUND).credential
    for _request in range(3):  # Dispose() without DeleteSecurityContext, per request
        client_context, server_context = handshake(client, credential, server, listener)
        server.delete_security_context(server_context)
        if fixed:
            client.delete_security_context(client_context)
    client.free_credentials_handle(credential)
    server.free_credentials_handle(listener)
    leaks = [finding for finding in sanitizer.check() if finding.process == "kerberos.net"]
    assert len(leaks) == (0 if fixed else 3)
    assert all(finding.rule == "SAN-005" for finding in leaks)
    assert all("InitializeSecurityContextW" in finding.message for finding in leaks)


# -- 14: a server creates a fresh acceptor context per HTTP leg (pyspnego #89) --------------


@rule("ASC-004", "SAN-005")
@pytest.mark.parametrize("fixed", [False, True])
def test_row14_fresh_acceptor_context_per_leg(fixed: bool) -> None:
    sanitizer, (client, server) = processes("client", "pyspnego")
    credential = client.acquire_credentials_handle("NTLM", OUTBOUND).credential
    listener = server.acquire_credentials_handle("NTLM", INBOUND).credential
    negotiate = client.initialize_security_context(credential, None, TARGET, 0)
    challenge = server.accept_security_context(listener, None, negotiate.output_token)
    authenticate = client.initialize_security_context(
        credential, negotiate.new_context, TARGET, 0, challenge.output_token
    )
    kept = challenge.new_context if fixed else None  # the bug: a new context per request
    final = server.accept_security_context(listener, kept, authenticate.output_token)
    if fixed:
        assert final.status == SecStatus.SEC_E_OK
        server.delete_security_context(challenge.new_context)
    else:
        assert final.status == SecStatus.SEC_E_INVALID_TOKEN  # 0x80090308, leg 2 on a new one
        assert "ASC-004" in server.last_rules
    client.delete_security_context(negotiate.new_context)
    client.free_credentials_handle(credential)
    server.free_credentials_handle(listener)
    found = sanitizer.check()
    expected = [] if fixed else [("leak", "SAN-005")]  # and the first leg's context leaks
    assert rules(found) == expected


# -- 20: Chromium's NetLog path never frees the names it queried (low confidence) -----------


@rule("SAN-003")
@pytest.mark.parametrize("fixed", [False, True])
def test_row20_queried_names_never_freed(fixed: bool) -> None:
    sanitizer, (client, server) = processes("chromium", "server")
    credential = client.acquire_credentials_handle("NTLM", OUTBOUND).credential
    listener = server.acquire_credentials_handle("NTLM", INBOUND).credential
    client_context, server_context = handshake(client, credential, server, listener)
    names = client.query_context_attributes(client_context, 1)  # SECPKG_ATTR_NAMES
    if fixed:
        client.free_context_buffer(names.buffer.allocation)  # type: ignore[union-attr]
    for sspi, handle, cred in (
        (client, client_context, credential),
        (server, server_context, listener),
    ):
        sspi.delete_security_context(handle)
        sspi.free_credentials_handle(cred)
    found: tuple[Finding, ...] = sanitizer.check()
    assert rules(found) == ([] if fixed else [("leak", "SAN-003")])
    assert fixed or "QueryContextAttributesW" in found[0].message
