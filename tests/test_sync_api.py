"""sspi_model.sspi: the synchronous calls, their errors, TypeErrors, refusals and statistics()."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import attrs
import pytest

from sspi_model import (
    SECPKG_ATTR_LIFESPAN,
    SECPKG_ATTR_NAMES,
    SECPKG_ATTR_PACKAGE_INFO,
    SECPKG_ATTR_SIZES,
    SECPKG_ATTR_STREAM_SIZES,
    AuthIdentity,
    CredentialUse,
    SecBuffer,
    SecHandle,
    SecStatus,
    Sspi,
    Statistics,
)
from sspi_model.buffers import SECBUFFER_EMPTY, SECBUFFER_READONLY, SECBUFFER_TOKEN
from sspi_model.constants import ISC_REQ_ALLOCATE_MEMORY, TIMESTAMP_NEVER
from sspi_model.events import CallEvent
from sspi_model.lifecycle import CALL_CODES, Call, CtxState, Refusal, context_step
from sspi_model.results import (
    ContextLifespan,
    ContextNames,
    ContextPackageInfo,
    QueryContextAttributesResult,
    SecurityContextResult,
)

OK = SecStatus.SEC_E_OK
CONTINUE = SecStatus.SEC_I_CONTINUE_NEEDED
INVALID = SecStatus.SEC_E_INVALID_HANDLE
OUT_OF_SEQUENCE = SecStatus.SEC_E_OUT_OF_SEQUENCE
INBOUND, OUTBOUND, BOTH = CredentialUse.INBOUND, CredentialUse.OUTBOUND, CredentialUse.BOTH
WRONG = AuthIdentity("alice", "not-the-password", "DOM")
NOTHING = Statistics(0, 0, 0, 0)


@attrs.define
class Pair:
    """A client and a server process and their credentials, with the legs run so far."""

    client: Sspi
    server: Sspi
    ccred: SecHandle
    scred: SecHandle
    cctx: SecHandle | None = None
    sctx: SecHandle | None = None
    legs: list[SecurityContextResult] = attrs.Factory(list)

    def isc(self, token: bytes | None = None, **kw: Any) -> SecurityContextResult:
        kw.setdefault("credential", self.ccred)
        result = self.client.initialize_security_context(
            kw.pop("credential"), self.cctx, "HOST/server", kw.pop("context_req", 0), token, **kw
        )
        self.cctx = result.new_context or self.cctx
        self.legs.append(result)
        return result

    def asc(self, token: bytes | None, **kw: Any) -> SecurityContextResult:
        kw.setdefault("credential", self.scred)
        result = self.server.accept_security_context(
            kw.pop("credential"), self.sctx, token, kw.pop("context_req", 0), **kw
        )
        self.sctx = result.new_context or self.sctx
        self.legs.append(result)
        return result

    def to_partial(self) -> Pair:
        """ISC, ASC: both contexts partial; the client's reply is pending."""
        self.asc(self.isc().output_token)
        return self

    def to_established(self) -> Pair:
        self.to_partial()
        self.asc(self.isc(self.legs[-1].output_token).output_token)
        return self


@pytest.fixture
def pair_factory(make_sspi: Callable[..., Sspi]) -> Callable[..., Pair]:
    def make(package: str = "NTLM", client_auth: Any = None, **kw: Any) -> Pair:
        client, server = make_sspi(**kw), make_sspi(**kw)
        ccred = client.acquire_credentials_handle(package, OUTBOUND, client_auth).credential
        scred = server.acquire_credentials_handle(package, INBOUND).credential
        assert ccred is not None and scred is not None
        return Pair(client, server, ccred, scred)

    return make


@pytest.fixture
def pair(pair_factory: Callable[..., Pair]) -> Pair:
    return pair_factory()


def failed_pair(pair_factory: Callable[..., Pair]) -> Pair:
    p = pair_factory(client_auth=WRONG).to_partial()
    p.asc(p.isc(p.legs[-1].output_token).output_token)
    assert p.legs[-1].status == SecStatus.SEC_E_LOGON_DENIED
    return p


# -- API conventions ------------------------------------------------------------------------------


@pytest.mark.rule("API-001")
def test_results_are_frozen_and_none_is_null(pair: Pair) -> None:
    leg = pair.isc()
    assert isinstance(leg.status, SecStatus)
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        leg.status = OK  # type: ignore[misc]
    refused = pair.client.initialize_security_context(None, None, "t")
    assert (refused.new_context, refused.output, refused.expiry) == (None, (), None)
    acquired = pair.client.acquire_credentials_handle("Nope", OUTBOUND)
    assert acquired.credential is None and acquired.expiry is None
    # Calls without out-parameters return the bare status.
    status = pair.client.delete_security_context(pair.cctx)
    assert type(status) is SecStatus and status == OK


def _type_error_cases(
    s: Sspi, cred: SecHandle, ctx: SecHandle
) -> list[tuple[str, Callable[[], Any]]]:
    return [
        ("package", lambda: s.acquire_credentials_handle(b"NTLM", OUTBOUND)),  # type: ignore[arg-type]
        ("credential_use", lambda: s.acquire_credentials_handle("NTLM", "2")),  # type: ignore[arg-type]
        ("credential_use", lambda: s.acquire_credentials_handle("NTLM", True)),
        ("principal", lambda: s.acquire_credentials_handle("NTLM", OUTBOUND, principal=5)),  # type: ignore[arg-type]
        ("logon_id", lambda: s.acquire_credentials_handle("NTLM", OUTBOUND, logon_id="x")),  # type: ignore[arg-type]
        ("credential", lambda: s.free_credentials_handle((1, 2))),  # type: ignore[arg-type]
        ("credential", lambda: s.initialize_security_context("cred")),  # type: ignore[arg-type]
        ("context", lambda: s.initialize_security_context(cred, 7)),  # type: ignore[arg-type]
        ("target_name", lambda: s.initialize_security_context(cred, None, b"t")),  # type: ignore[arg-type]
        ("context_req", lambda: s.initialize_security_context(cred, None, "t", 0.5)),  # type: ignore[arg-type]
        ("input", lambda: s.initialize_security_context(cred, ctx, "t", 0, "tok")),  # type: ignore[arg-type]
        ("input", lambda: s.initialize_security_context(cred, ctx, "t", 0, [b"tok"])),  # type: ignore[list-item]
        ("output", lambda: s.initialize_security_context(cred, None, "t", output=5)),  # type: ignore[arg-type]
        (
            "target_data_rep",
            lambda: s.initialize_security_context(cred, None, "t", target_data_rep=None),
        ),  # type: ignore[arg-type]
        ("credential", lambda: s.accept_security_context(1, None, b"x")),  # type: ignore[arg-type]
        ("context", lambda: s.accept_security_context(cred, "ctx", b"x")),  # type: ignore[arg-type]
        ("input", lambda: s.accept_security_context(cred, None, SecBuffer(2, b"x"))),  # type: ignore[arg-type]
        ("context_req", lambda: s.accept_security_context(cred, None, b"x", None)),  # type: ignore[arg-type]
        ("output", lambda: s.accept_security_context(cred, None, b"x", output=[1])),  # type: ignore[list-item]
        ("context", lambda: s.complete_auth_token([ctx], b"x")),  # type: ignore[arg-type]
        ("token", lambda: s.complete_auth_token(ctx, 5)),  # type: ignore[arg-type]
        ("context", lambda: s.delete_security_context(0)),  # type: ignore[arg-type]
        ("context", lambda: s.query_context_attributes("ctx", 0)),  # type: ignore[arg-type]
        ("attribute", lambda: s.query_context_attributes(ctx, "0")),  # type: ignore[arg-type]
        ("buffer", lambda: s.free_context_buffer("0x10000")),  # type: ignore[arg-type]
        ("buffer", lambda: s.free_context_buffer(False)),
        ("package_name", lambda: s.query_security_package_info(1)),  # type: ignore[arg-type]
    ]


@pytest.mark.rule("API-002", "LIF-005")
def test_wrong_types_raise_type_error_naming_the_parameter(pair: Pair) -> None:
    pair.to_partial()
    s = pair.client
    assert pair.cctx is not None
    events: list[Any] = []
    s.observer = events.append
    before = s.statistics()
    for parameter, call in _type_error_cases(s, pair.ccred, pair.cctx):
        with pytest.raises(TypeError, match=rf"^{parameter}\b"):
            call()
    assert s.statistics() == before
    assert events == []  # no call got as far as returning
    # The context still continues as if nothing had happened.
    assert pair.isc(pair.legs[-1].output_token).status == OK


@pytest.mark.rule("API-002")
def test_constructor_type_errors(make_sspi: Callable[..., Sspi]) -> None:
    with pytest.raises(TypeError, match=r"^accounts"):
        make_sspi(accounts=[("bob", "pw")])
    with pytest.raises(TypeError, match=r"^logon_user"):
        make_sspi(logon_user=5)
    with pytest.raises(TypeError, match=r"^profile"):
        make_sspi(profile=5)


@pytest.mark.rule("API-003")
@pytest.mark.parametrize("flags", [0, 0x40, 2**32 - 1, 0x80000000])
def test_any_c_value_gets_a_status(pair: Pair, flags: int) -> None:
    s = pair.client
    assert s.acquire_credentials_handle("NTLM", flags).status == SecStatus.SEC_E_UNKNOWN_CREDENTIALS
    assert s.acquire_credentials_handle("", OUTBOUND).status == SecStatus.SEC_E_SECPKG_NOT_FOUND
    assert s.free_context_buffer(flags) == INVALID
    leg = s.initialize_security_context(pair.ccred, None, "\x00" * 3, flags, b"\xff" * 70)
    assert leg.status in CALL_CODES[Call.INITIALIZE_SECURITY_CONTEXT]
    assert s.query_context_attributes(leg.new_context, flags).status in (
        SecStatus.SEC_E_UNSUPPORTED_FUNCTION,
        INVALID,
    )


@pytest.mark.rule("API-007")
@pytest.mark.parametrize("flags", [-1, 2**32, 2**63])
def test_flags_outside_32_bits_are_value_errors(pair: Pair, flags: int) -> None:
    """No C caller can pass these: a ULONG parameter outside 0..0xFFFFFFFF is a ValueError
    naming the parameter, before any state changes."""
    s = pair.client
    with pytest.raises(ValueError, match=r"^credential_use"):
        s.acquire_credentials_handle("NTLM", flags)
    with pytest.raises(ValueError, match=r"^context_req"):
        s.initialize_security_context(pair.ccred, None, "t", flags)
    leg = s.initialize_security_context(pair.ccred, None, "t")
    with pytest.raises(ValueError, match=r"^attribute"):
        s.query_context_attributes(leg.new_context, flags)
    assert s.statistics().contexts == 1


@pytest.mark.rule("API-004", "API-005")
def test_every_status_is_in_call_codes_and_observed(pair_factory: Callable[..., Pair]) -> None:
    events: list[CallEvent] = []
    p = pair_factory(client_auth=WRONG)
    for sspi in (p.client, p.server):
        sspi.observer = events.append
    returned: list[Any] = []
    returned.append(p.client.enumerate_security_packages())
    returned.append(p.client.query_security_package_info("Kerberos"))
    p.to_partial()
    returned.append(p.server.query_context_attributes(p.sctx, SECPKG_ATTR_SIZES))
    returned.append(p.server.accept_security_context(p.scred, p.sctx, b"garbage"))
    p.asc(p.isc(p.legs[-1].output_token).output_token)
    returned.append(p.server.complete_auth_token(p.sctx, b"x"))
    returned.append(p.client.initialize_security_context(None, p.cctx, "t", 0, b"x"))
    returned.append(p.server.delete_security_context(p.sctx))
    returned.append(p.server.delete_security_context(p.sctx))
    returned.append(p.client.free_context_buffer(12345))
    returned.append(p.client.free_credentials_handle(None))
    # One event per call, in order, each carrying the very result returned (by identity).
    assert len(events) == 4 + len(returned)
    position = iter(events)
    for result in returned:
        event = next(e for e in position if e.result is result)
        assert event.sspi in (p.client, p.server)
    assert events[0].call is Call.ENUMERATE_SECURITY_PACKAGES and events[0].sspi is p.client
    assert events[-1].call is Call.FREE_CREDENTIALS_HANDLE
    assert events[-1].args == {"credential": None}
    for event in events:
        status = event.result if isinstance(event.result, SecStatus) else event.result.status
        assert status in CALL_CODES[event.call], (event.call, status)


# -- statistics -----------------------------------------------------------------------------------


@pytest.mark.rule("STA-001")
def test_statistics_snapshot_and_teardown(pair: Pair) -> None:
    assert pair.client.statistics() == Statistics(1, 0, 0, 0)
    snapshot = pair.client.statistics()
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        snapshot.contexts = 5  # type: ignore[misc]
    pair.to_established()
    names = pair.server.query_context_attributes(pair.sctx, SECPKG_ATTR_NAMES).buffer
    assert isinstance(names, ContextNames)
    enum = pair.server.enumerate_security_packages()
    assert snapshot == Statistics(1, 0, 0, 0)  # a snapshot, not a live view
    assert pair.client.statistics() == Statistics(1, 0, 1, 0)
    assert pair.server.statistics() == Statistics(1, 0, 1, 2)
    assert pair.server.free_credentials_handle(pair.scred) == OK
    assert pair.server.statistics() == Statistics(0, 1, 1, 2)
    assert pair.server.statistics().anything_alive
    assert pair.server.delete_security_context(pair.sctx) == OK
    assert pair.server.free_context_buffer(names.allocation) == OK
    assert pair.server.free_context_buffer(enum.allocation) == OK
    assert pair.server.statistics() == NOTHING
    assert not pair.server.statistics().anything_alive
    pair.client.delete_security_context(pair.cctx)
    pair.client.free_credentials_handle(pair.ccred)
    assert not pair.client.statistics().anything_alive


# -- packages -------------------------------------------------------------------------------------


@pytest.mark.rule("PKG-001", "FCB-001")
def test_enumerate_security_packages(make_sspi: Callable[..., Sspi]) -> None:
    s = make_sspi()
    result = s.enumerate_security_packages()
    assert result.status == OK
    assert [p.name for p in result.packages][:2] == ["Negotiate", "NTLM"]
    assert result.allocation is not None
    assert s.statistics().context_buffers == 1
    assert s.free_context_buffer(result.allocation) == OK
    assert s.statistics().context_buffers == 0


@pytest.mark.rule("PKG-002", "PKG-004")
@pytest.mark.parametrize("name", ["NTLM", "ntlm", "Negotiate", "NEGOTIATE", "nEgOtIaTe"])
def test_query_security_package_info_known(make_sspi: Callable[..., Sspi], name: str) -> None:
    s = make_sspi()
    result = s.query_security_package_info(name)
    assert result.status == OK
    assert result.package_info is not None
    assert result.package_info.name.casefold() == name.casefold()
    assert s.free_context_buffer(result.allocation) == OK


@pytest.mark.rule("PKG-002")
@pytest.mark.parametrize("name", ["Kerberos", "", "NTLM ", None])
def test_query_security_package_info_unknown(
    make_sspi: Callable[..., Sspi], name: str | None
) -> None:
    s = make_sspi()
    result = s.query_security_package_info(name)
    assert (result.status, result.package_info, result.allocation) == (
        SecStatus.SEC_E_SECPKG_NOT_FOUND,
        None,
        None,
    )
    assert s.statistics() == NOTHING


# -- AcquireCredentialsHandle ---------------------------------------------------------------------


@pytest.mark.rule("ACH-001", "ACH-003")
@pytest.mark.parametrize("use", [INBOUND, OUTBOUND, BOTH])
def test_acquire_with_explicit_identity(make_sspi: Callable[..., Sspi], use: int) -> None:
    s = make_sspi()
    result = s.acquire_credentials_handle("NTLM", use, AuthIdentity("bob", "bob-pw"))
    assert result.status == OK
    assert result.credential is not None and result.credential.is_valid
    assert result.expiry == TIMESTAMP_NEVER == 0x7FFFFFFFFFFFFFFF
    again = s.acquire_credentials_handle("NTLM", use, AuthIdentity("bob", "bob-pw"))
    assert again.credential != result.credential
    assert s.statistics().credentials == 2


@pytest.mark.rule("ACH-002", "PKG-004")
@pytest.mark.parametrize("name", ["Kerberos", "Schannel-ish", "", None])
def test_acquire_unknown_package(make_sspi: Callable[..., Sspi], name: str | None) -> None:
    s = make_sspi()
    result = s.acquire_credentials_handle(name, OUTBOUND)
    assert (result.status, result.credential) == (SecStatus.SEC_E_SECPKG_NOT_FOUND, None)
    assert s.acquire_credentials_handle("nTlM", OUTBOUND).status == OK
    assert s.statistics().credentials == 1


@pytest.mark.rule("ACH-004")
@pytest.mark.parametrize(
    ("package", "use"),
    [
        ("NTLM", 0),
        ("NTLM", 0x4),
        ("NTLM", 0x1234),
        ("NTLM", OUTBOUND | 0x10),
        ("NTLM", INBOUND | 0x20),
        ("Negotiate", 0x10),
        ("Negotiate", OUTBOUND | 0x40),
    ],
)
def test_acquire_invalid_credential_use(
    make_sspi: Callable[..., Sspi], package: str, use: int
) -> None:
    s = make_sspi()
    result = s.acquire_credentials_handle(package, use)
    assert (result.status, result.credential) == (SecStatus.SEC_E_UNKNOWN_CREDENTIALS, None)
    assert s.statistics() == NOTHING


@pytest.mark.rule("ACH-008")
@pytest.mark.parametrize("use", [OUTBOUND | 0x10, OUTBOUND | 0x20, INBOUND | 0x30, BOTH | 0x10])
def test_negotiate_only_use_bits(make_sspi: Callable[..., Sspi], use: int) -> None:
    assert make_sspi().acquire_credentials_handle("Negotiate", use).status == OK


@pytest.mark.rule("ACH-005", "LIF-006")
@pytest.mark.parametrize("principal", [None, "DOM\\alice", "dom\\ALICE"])
def test_default_credentials_are_the_logged_on_user(
    pair_factory: Callable[..., Pair], principal: str | None
) -> None:
    p = pair_factory()
    ccred = p.client.acquire_credentials_handle("NTLM", OUTBOUND, principal=principal)
    assert ccred.status == OK
    p.ccred = ccred.credential
    p.to_established()
    assert p.legs[-1].status == OK
    names = p.server.query_context_attributes(p.sctx, SECPKG_ATTR_NAMES).buffer
    assert isinstance(names, ContextNames) and names.user_name == "DOM\\alice"


@pytest.mark.rule("ACH-006")
@pytest.mark.parametrize("principal", ["bob", "DOM\\bob", "alice"])
def test_default_credentials_of_another_user(
    make_sspi: Callable[..., Sspi], principal: str
) -> None:
    s = make_sspi()
    result = s.acquire_credentials_handle("NTLM", OUTBOUND, principal=principal)
    assert (result.status, result.credential) == (SecStatus.SEC_E_NOT_OWNER, None)
    assert s.statistics() == NOTHING


@pytest.mark.rule("ACH-007", "API-003")
@pytest.mark.parametrize(
    "auth_data", ["alice:pw", b"\x00" * 16, ("bob", "bob-pw"), 0, {"user": "bob"}]
)
def test_unrecognised_auth_data(make_sspi: Callable[..., Sspi], auth_data: Any) -> None:
    s = make_sspi()
    for package in ("NTLM", "Negotiate"):
        result = s.acquire_credentials_handle(package, OUTBOUND, auth_data)
        assert (result.status, result.credential) == (SecStatus.SEC_E_UNKNOWN_CREDENTIALS, None)
    assert s.statistics() == NOTHING


@pytest.mark.rule("LIF-006")
def test_logon_user_defaults(make_sspi: Callable[..., Sspi], handshake: Callable[..., Any]) -> None:
    assert make_sspi().env.logon_user == "DOM\\alice"
    assert make_sspi(accounts={}).env.logon_user == "WORKGROUP\\user"
    assert make_sspi(logon_user="bob").env.logon_user == "bob"
    # WORKGROUP\user has no password anyone knows: the server denies it.
    nobody = make_sspi(accounts={})
    hs = handshake(nobody, make_sspi())
    assert hs.statuses[-1] == SecStatus.SEC_E_LOGON_DENIED
    hs = handshake(make_sspi(logon_user="bob"), make_sspi())
    assert hs.statuses[-1] == OK


# -- FreeCredentialsHandle and reference counts ---------------------------------------------------


@pytest.mark.rule("FCH-001", "FCH-002")
def test_free_credentials_twice(make_sspi: Callable[..., Sspi]) -> None:
    s = make_sspi()
    cred = s.acquire_credentials_handle("NTLM", OUTBOUND).credential
    assert s.free_credentials_handle(cred) == OK
    assert s.statistics() == NOTHING
    assert s.free_credentials_handle(cred) == INVALID
    assert s.initialize_security_context(cred, None, "t").status == INVALID


@pytest.mark.rule("FCH-002")
def test_free_credentials_invalid_handles(pair: Pair) -> None:
    pair.to_partial()
    s = pair.client
    before = s.statistics()
    for handle in (
        None,
        SecHandle(0, 0),
        SecHandle.invalid(),
        SecHandle(12345, 678),
        pair.cctx,
        pair.scred,
    ):
        assert s.free_credentials_handle(handle) == INVALID
    assert s.statistics() == before


@pytest.mark.rule("FCH-003", "FCH-004")
def test_freeing_a_credential_leaves_its_contexts_working(pair: Pair) -> None:
    first = pair.isc()
    assert pair.client.free_credentials_handle(pair.ccred) == OK
    assert pair.client.statistics() == Statistics(0, 1, 1, 0)
    reply = pair.asc(first.output_token)
    assert pair.server.free_credentials_handle(pair.scred) == OK
    # Both contexts finish the handshake with a NULL credential.
    last = pair.isc(reply.output_token, credential=None)
    assert last.status == OK
    assert pair.asc(last.output_token, credential=None).status == OK
    assert pair.server.query_context_attributes(pair.sctx, SECPKG_ATTR_SIZES).status == OK
    assert pair.client.statistics().orphaned_credentials == 1
    assert pair.client.delete_security_context(pair.cctx) == OK
    assert pair.server.delete_security_context(pair.sctx) == OK
    assert pair.client.statistics() == NOTHING
    assert pair.server.statistics() == NOTHING


@pytest.mark.rule("FCH-003", "FCH-004")
def test_reference_count_follows_contexts(make_sspi: Callable[..., Sspi]) -> None:
    s = make_sspi()
    cred = s.acquire_credentials_handle("NTLM", OUTBOUND).credential
    contexts = [s.initialize_security_context(cred, None, "t").new_context for _ in range(3)]
    record = s._core.credentials[cred.lower]
    assert record.refs == 3
    assert s.free_credentials_handle(cred) == OK
    for remaining, ctx in zip((2, 1, 0), contexts, strict=True):
        assert s.statistics().orphaned_credentials == 1
        assert s.delete_security_context(ctx) == OK
        assert record.refs == remaining
    assert s.statistics() == NOTHING
    assert s.free_credentials_handle(cred) == INVALID


# -- InitializeSecurityContext / AcceptSecurityContext --------------------------------------------


@pytest.mark.rule("ISC-001", "ASC-001", "ISC-002", "ASC-002")
def test_first_and_continuation_legs(pair: Pair) -> None:
    first = pair.isc()
    assert first.status == CONTINUE and first.new_context is not None
    reply = pair.asc(first.output_token)
    assert reply.status == CONTINUE and reply.new_context is not None
    assert reply.new_context != first.new_context
    last = pair.isc(reply.output_token)
    assert last.status == OK and last.new_context == first.new_context
    final = pair.asc(last.output_token)
    assert final.status == OK and final.new_context == reply.new_context
    assert pair.client.statistics().contexts == 1 and pair.server.statistics().contexts == 1


@pytest.mark.rule("ISC-003")
def test_isc_with_a_context_that_is_not_a_live_client_context(pair: Pair) -> None:
    pair.to_partial()
    s = pair.client
    server_ctx_here = s.accept_security_context(
        s.acquire_credentials_handle("NTLM", INBOUND).credential, None, pair.legs[0].output_token
    ).new_context
    before = s.statistics()
    for handle in (server_ctx_here, pair.sctx, pair.ccred, SecHandle(0, 0)):
        assert s.initialize_security_context(pair.ccred, handle, "t", 0, b"x").status == INVALID
    assert s.statistics() == before
    assert pair.isc(pair.legs[-1].output_token).status == OK


@pytest.mark.rule("ASC-003")
def test_asc_with_a_context_that_is_not_a_live_server_context(pair: Pair) -> None:
    pair.to_partial()
    s = pair.server
    client_ctx_here = s.initialize_security_context(
        s.acquire_credentials_handle("NTLM", OUTBOUND).credential, None, "t"
    ).new_context
    before = s.statistics()
    for handle in (client_ctx_here, pair.cctx, pair.scred, SecHandle.invalid()):
        assert s.accept_security_context(pair.scred, handle, b"x").status == INVALID
    assert s.statistics() == before


@pytest.mark.rule("ISC-004", "ASC-005", "LIF-001")
def test_first_leg_with_a_bad_credential(pair: Pair) -> None:
    token = pair.client.initialize_security_context(pair.ccred, None, "t").output_token
    special = (None, SecHandle(0, 0), SecHandle.invalid())
    # Each side also gets the other process's (foreign) credential.
    for client_cred, server_cred in [(h, h) for h in special] + [(pair.scred, pair.ccred)]:
        before_c, before_s = pair.client.statistics(), pair.server.statistics()
        isc = pair.client.initialize_security_context(client_cred, None, "t")
        asc = pair.server.accept_security_context(server_cred, None, token)
        assert (isc.status, isc.new_context) == (INVALID, None)
        assert (asc.status, asc.new_context) == (INVALID, None)
        assert pair.client.statistics() == before_c and pair.server.statistics() == before_s


@pytest.mark.rule("ISC-005", "ASC-006", "LIF-001")
def test_credential_of_the_wrong_direction(pair: Pair) -> None:
    before_c, before_s = pair.client.statistics(), pair.server.statistics()
    inbound = pair.server.initialize_security_context(pair.scred, None, "t")
    assert (inbound.status, inbound.new_context) == (SecStatus.SEC_E_NO_CREDENTIALS, None)
    token = pair.isc().output_token
    outbound_cred = pair.client.acquire_credentials_handle("NTLM", OUTBOUND).credential
    outbound = pair.client.accept_security_context(outbound_cred, None, token)
    assert (outbound.status, outbound.new_context) == (SecStatus.SEC_E_NO_CREDENTIALS, None)
    assert pair.server.statistics() == before_s
    assert pair.client.statistics().contexts == before_c.contexts + 1  # only pair.isc()
    # BOTH works in either direction.
    both = pair.server.acquire_credentials_handle("NTLM", BOTH).credential
    assert pair.server.initialize_security_context(both, None, "t").status == CONTINUE
    assert pair.server.accept_security_context(both, None, token).status == CONTINUE


@pytest.mark.rule("ISC-006")
def test_expiry_only_on_the_completing_leg(pair: Pair) -> None:
    pair.to_established()
    assert [leg.expiry for leg in pair.legs] == [None, None, TIMESTAMP_NEVER, TIMESTAMP_NEVER]


@pytest.mark.rule("ISC-007")
def test_isc_again_on_an_established_context_reauthenticates(pair: Pair) -> None:
    pair.to_established()
    again = pair.isc()
    assert again.status == CONTINUE
    assert again.new_context == pair.legs[0].new_context
    assert again.output_token == pair.legs[0].output_token  # a new NEGOTIATE
    # The context is partial again: queries answer as for a partial context ...
    assert pair.client.query_context_attributes(pair.cctx, SECPKG_ATTR_SIZES).status == INVALID
    # ... and a fresh server context completes the new exchange on the same client handle.
    pair.sctx = None
    reply = pair.asc(again.output_token)
    assert pair.asc(pair.isc(reply.output_token).output_token).status == OK
    assert pair.client.statistics().contexts == 1


@pytest.mark.rule("ISC-008", "LIF-005")
def test_isc_with_input_on_an_established_context(pair: Pair) -> None:
    pair.to_established()
    challenge = pair.legs[1].output_token
    result = pair.client.initialize_security_context(pair.ccred, pair.cctx, "t", 0, challenge)
    assert (result.status, result.new_context) == (OUT_OF_SEQUENCE, None)
    assert pair.client.query_context_attributes(pair.cctx, SECPKG_ATTR_SIZES).status == OK


@pytest.mark.rule("ASC-007")
def test_asc_again_on_an_established_context(pair: Pair) -> None:
    pair.to_established()
    authenticate = pair.legs[2].output_token
    for token in (authenticate, None, b"x"):
        result = pair.server.accept_security_context(pair.scred, pair.sctx, token)
        assert result.status == OUT_OF_SEQUENCE
    assert pair.server.query_context_attributes(pair.sctx, SECPKG_ATTR_SIZES).status == OK


@pytest.mark.rule("ISC-009", "LIF-005")
def test_continuation_credential_must_be_live_if_given(
    pair: Pair, make_sspi: Callable[..., Sspi]
) -> None:
    pair.to_partial()
    challenge = pair.legs[-1].output_token
    stale = pair.client.acquire_credentials_handle("NTLM", OUTBOUND).credential
    pair.client.free_credentials_handle(stale)
    foreign = make_sspi().acquire_credentials_handle("NTLM", OUTBOUND).credential
    before = pair.client.statistics()
    for bad in (stale, foreign, SecHandle(0, 0), pair.cctx):
        result = pair.client.initialize_security_context(bad, pair.cctx, "t", 0, challenge)
        assert (result.status, result.new_context) == (INVALID, None)
    bad_asc = pair.server.accept_security_context(SecHandle(0, 0), pair.sctx, b"x")
    assert bad_asc.status == INVALID
    assert pair.client.statistics() == before
    # Another live credential of this instance is accepted, and so is NULL.
    other = pair.client.acquire_credentials_handle("NTLM", OUTBOUND).credential
    last = pair.isc(challenge, credential=other)
    assert last.status == OK
    assert pair.asc(last.output_token, credential=None).status == OK


# -- the lifecycle --------------------------------------------------------------------------------


@pytest.mark.rule("LIF-001", "ASC-004")
@pytest.mark.parametrize("token", [None, b"", b"garbage", b"NTLMSSP\x00\x03\x00\x00\x00"])
def test_failed_first_asc_returns_no_handle(pair: Pair, token: bytes | None) -> None:
    before = pair.server.statistics()
    result = pair.server.accept_security_context(pair.scred, None, token)
    assert (result.status, result.new_context) == (SecStatus.SEC_E_INVALID_TOKEN, None)
    assert pair.server.statistics() == before


@pytest.mark.rule("LIF-002", "LIF-005")
def test_refused_input_leaves_the_context_partial(pair: Pair) -> None:
    pair.to_partial()
    challenge = pair.legs[-1].output_token
    for _ in range(3):
        bad = pair.isc(b"not a challenge")
        assert (bad.status, bad.new_context) == (SecStatus.SEC_E_INVALID_TOKEN, pair.cctx)
    last = pair.isc(challenge)
    assert last.status == OK
    assert pair.asc(b"NTLMSSP\x00").status == SecStatus.SEC_E_INVALID_TOKEN
    assert pair.asc(last.output_token).status == OK


@pytest.mark.rule("LIF-003", "LIF-004", "QCA-005")
def test_failed_context_stays_alive_until_deleted(pair_factory: Callable[..., Pair]) -> None:
    p = failed_pair(pair_factory)
    s, ctx = p.server, p.sctx
    assert s.statistics().contexts == 1
    authenticate = p.legs[2].output_token
    assert s.accept_security_context(p.scred, ctx, authenticate).status == OUT_OF_SEQUENCE
    assert s.accept_security_context(None, ctx, None).status == OUT_OF_SEQUENCE
    assert s.complete_auth_token(ctx, b"x") == OUT_OF_SEQUENCE
    for attribute in (
        SECPKG_ATTR_SIZES,
        SECPKG_ATTR_NAMES,
        SECPKG_ATTR_LIFESPAN,
        SECPKG_ATTR_STREAM_SIZES,
    ):
        assert s.query_context_attributes(ctx, attribute).status == INVALID
    info = s.query_context_attributes(ctx, SECPKG_ATTR_PACKAGE_INFO)
    assert info.status == OK and isinstance(info.buffer, ContextPackageInfo)
    assert s.free_context_buffer(info.buffer.allocation) == OK
    assert s.delete_security_context(ctx) == OK
    assert s.statistics() == Statistics(1, 0, 0, 0)


@pytest.mark.rule("LIF-003")
@pytest.mark.parametrize(
    "call",
    [Call.INITIALIZE_SECURITY_CONTEXT, Call.ACCEPT_SECURITY_CONTEXT, Call.COMPLETE_AUTH_TOKEN],
)
def test_failed_state_refuses_every_leg(call: Call) -> None:
    # NTLM clients never fail a leg, so the client side of LIF-003 is checked on the table that
    # sspi.py consults for every call.
    step = context_step(CtxState.FAILED, call)
    assert isinstance(step, Refusal) and step.status == OUT_OF_SEQUENCE
    deleting = context_step(CtxState.FAILED, Call.DELETE_SECURITY_CONTEXT)
    assert not isinstance(deleting, Refusal)
    assert deleting.next[None] is CtxState.DELETED


@pytest.mark.rule("LIF-004", "DEL-001")
def test_delete_partial_contexts(pair: Pair) -> None:
    pair.to_partial()
    assert pair.client.delete_security_context(pair.cctx) == OK
    assert pair.server.delete_security_context(pair.sctx) == OK
    assert pair.client.statistics() == pair.server.statistics() == Statistics(1, 0, 0, 0)


@pytest.mark.rule("LIF-005")
def test_refused_calls_change_nothing(pair: Pair) -> None:
    pair.to_partial()
    challenge = pair.legs[-1].output_token
    c = pair.client
    before = c.statistics()
    refused = [
        c.initialize_security_context(
            pair.ccred, pair.cctx, "t", 0, challenge, output=[SecBuffer(SECBUFFER_TOKEN, size=4)]
        ).status,
        c.initialize_security_context(pair.ccred, pair.cctx, "t", 0, challenge[:-1]).status,
        c.initialize_security_context(pair.ccred, SecHandle(1, 1), "t", 0, challenge).status,
        c.query_context_attributes(pair.cctx, SECPKG_ATTR_SIZES).status,
        c.complete_auth_token(pair.cctx, None),
        c.acquire_credentials_handle("NTLM", 0).status,
        c.free_credentials_handle(pair.cctx),
        c.free_context_buffer(1),
    ]
    assert all(status != OK for status in refused)
    assert c.statistics() == before
    assert pair.isc(challenge).status == OK


# -- DeleteSecurityContext ------------------------------------------------------------------------


@pytest.mark.rule("DEL-001", "HDL-003")
def test_query_after_delete(pair: Pair) -> None:
    pair.to_established()
    assert pair.client.delete_security_context(pair.cctx) == OK
    assert pair.client.query_context_attributes(pair.cctx, SECPKG_ATTR_SIZES).status == INVALID
    assert pair.client.statistics() == Statistics(1, 0, 0, 0)
    assert pair.client.free_credentials_handle(pair.ccred) == OK
    assert pair.client.statistics() == NOTHING


@pytest.mark.rule("DEL-002")
def test_delete_never_issued_handles(pair: Pair) -> None:
    pair.to_partial()
    s = pair.client
    before = s.statistics()
    for handle in (
        None,
        SecHandle(0, 0),
        SecHandle.invalid(),
        SecHandle(2**40, 7),
        pair.ccred,
        pair.sctx,
    ):
        assert s.delete_security_context(handle) == INVALID
    assert s.statistics() == before


@pytest.mark.rule("DEL-003")
def test_delete_twice_default_profile(pair: Pair) -> None:
    pair.to_partial()
    assert pair.client.profile.name == "documented"
    assert pair.client.delete_security_context(pair.cctx) == OK
    assert pair.client.delete_security_context(pair.cctx) == OK
    assert pair.client.statistics() == Statistics(1, 0, 0, 0)


# -- QueryContextAttributes -----------------------------------------------------------------------


@pytest.mark.rule("QCA-001", "FCB-001")
def test_query_established(pair: Pair) -> None:
    pair.to_established()
    for sspi, ctx in ((pair.client, pair.cctx), (pair.server, pair.sctx)):
        sizes = sspi.query_context_attributes(ctx, SECPKG_ATTR_SIZES)
        assert sizes.status == OK and sizes.buffer is not None
        names = sspi.query_context_attributes(ctx, SECPKG_ATTR_NAMES)
        assert names.status == OK and isinstance(names.buffer, ContextNames)
        assert names.buffer.user_name == "DOM\\alice"
        lifespan = sspi.query_context_attributes(ctx, SECPKG_ATTR_LIFESPAN)
        assert lifespan == QueryContextAttributesResult(OK, ContextLifespan(0, TIMESTAMP_NEVER))
        info = sspi.query_context_attributes(ctx, SECPKG_ATTR_PACKAGE_INFO)
        assert isinstance(info.buffer, ContextPackageInfo)
        assert info.buffer.package_info.name == "NTLM"
        assert sspi.statistics().context_buffers == 2
        assert sspi.free_context_buffer(names.buffer.allocation) == OK
        assert sspi.free_context_buffer(info.buffer.allocation) == OK
        assert sspi.statistics().context_buffers == 0


@pytest.mark.rule("QCA-002", "QCA-005")
def test_query_partial(pair: Pair) -> None:
    pair.to_partial()
    for sspi, ctx in ((pair.client, pair.cctx), (pair.server, pair.sctx)):
        for attribute in (
            SECPKG_ATTR_SIZES,
            SECPKG_ATTR_NAMES,
            SECPKG_ATTR_LIFESPAN,
            SECPKG_ATTR_STREAM_SIZES,
        ):
            result = sspi.query_context_attributes(ctx, attribute)
            assert result == QueryContextAttributesResult(INVALID)
        info = sspi.query_context_attributes(ctx, SECPKG_ATTR_PACKAGE_INFO)
        assert info.status == OK


@pytest.mark.rule("QCA-003")
@pytest.mark.parametrize("attribute", [3, 6, 7, 0xDEAD, 2**32 - 1])  # 12 is ATT-001 now
def test_query_unknown_attribute(pair: Pair, attribute: int) -> None:
    pair.to_partial()
    assert pair.client.query_context_attributes(pair.cctx, attribute).status == (
        SecStatus.SEC_E_UNSUPPORTED_FUNCTION
    )
    pair.asc(pair.isc(pair.legs[-1].output_token).output_token)
    assert pair.server.query_context_attributes(pair.sctx, attribute).status == (
        SecStatus.SEC_E_UNSUPPORTED_FUNCTION
    )
    assert pair.server.statistics().context_buffers == 0


@pytest.mark.rule("QCA-004")
@pytest.mark.parametrize("package", ["NTLM", "Negotiate"])
def test_query_stream_sizes(pair_factory: Callable[..., Pair], package: str) -> None:
    p = pair_factory(package).to_established()
    for sspi, ctx in ((p.client, p.cctx), (p.server, p.sctx)):
        result = sspi.query_context_attributes(ctx, SECPKG_ATTR_STREAM_SIZES)
        assert (result.status, result.buffer) == (SecStatus.SEC_E_UNSUPPORTED_FUNCTION, None)


# -- CompleteAuthToken ----------------------------------------------------------------------------


@pytest.mark.rule("CAT-001")
def test_complete_auth_token_is_a_no_op(pair: Pair) -> None:
    pair.to_partial()
    assert pair.client.complete_auth_token(pair.cctx, b"x") == OK
    assert pair.server.complete_auth_token(pair.sctx, [SecBuffer(SECBUFFER_TOKEN, b"")]) == OK
    last = pair.isc(pair.legs[-1].output_token)
    assert pair.client.complete_auth_token(pair.cctx, last.output_token) == OK
    assert pair.asc(last.output_token).status == OK
    assert pair.server.complete_auth_token(pair.sctx, []) == OK


@pytest.mark.rule("CAT-002")
def test_complete_auth_token_on_a_failed_context(pair_factory: Callable[..., Pair]) -> None:
    p = failed_pair(pair_factory)
    assert p.server.complete_auth_token(p.sctx, b"x") == OUT_OF_SEQUENCE


@pytest.mark.rule("CAT-003")
def test_complete_auth_token_without_a_token(pair: Pair) -> None:
    pair.to_partial()
    assert pair.client.complete_auth_token(pair.cctx, None) == SecStatus.SEC_E_INVALID_TOKEN


@pytest.mark.rule("CAT-004")
def test_complete_auth_token_bad_handle(pair: Pair) -> None:
    pair.to_partial()
    for handle in (None, SecHandle(0, 0), pair.ccred, pair.sctx):
        assert pair.client.complete_auth_token(handle, None) == INVALID
        assert pair.client.complete_auth_token(handle, b"x") == INVALID


# -- FreeContextBuffer ----------------------------------------------------------------------------


@pytest.mark.rule("FCB-002")
def test_free_context_buffer_null(make_sspi: Callable[..., Sspi]) -> None:
    s = make_sspi()
    assert s.free_context_buffer(None) == OK
    allocation = s.enumerate_security_packages().allocation
    assert s.free_context_buffer(None) == OK
    assert s.statistics().context_buffers == 1
    assert s.free_context_buffer(allocation) == OK


@pytest.mark.rule("FCB-003")
def test_free_context_buffer_twice_or_unknown(make_sspi: Callable[..., Sspi]) -> None:
    s, other = make_sspi(), make_sspi()
    allocation = s.query_security_package_info("NTLM").allocation
    assert other.free_context_buffer(allocation) == INVALID  # another process's memory
    assert s.free_context_buffer(allocation + 1) == INVALID
    assert s.free_context_buffer(0) == INVALID
    assert s.free_context_buffer(allocation) == OK
    assert s.free_context_buffer(allocation) == INVALID
    assert s.statistics() == NOTHING


# -- buffers --------------------------------------------------------------------------------------


@pytest.mark.rule("BUF-001", "FCB-001")
def test_allocate_memory(pair: Pair) -> None:
    first = pair.isc(context_req=ISC_REQ_ALLOCATE_MEMORY)
    token_buffer = first.output[0]
    assert token_buffer.allocation is not None and token_buffer.data
    assert first.context_attr & 0x100
    reply = pair.asc(first.output_token, context_req=0x100)
    assert reply.output[0].allocation is not None and reply.context_attr & 0x100
    assert pair.client.statistics().context_buffers == 1
    assert pair.client.free_context_buffer(token_buffer.allocation) == OK
    assert pair.client.free_context_buffer(token_buffer.allocation) == INVALID
    # No token, no allocation: the server's last NTLM leg has an empty token.
    last = pair.isc(reply.output_token)
    final = pair.asc(last.output_token, context_req=0x100)
    assert final.status == OK and final.output[0].allocation is None
    assert final.context_attr & 0x100  # requested, so reported, though nothing was allocated
    assert pair.server.statistics().context_buffers == 1


@pytest.mark.rule("BUF-002", "LIF-001")
@pytest.mark.parametrize(
    "output",
    [
        [],
        [SecBuffer(SECBUFFER_EMPTY, size=4096)],
        [SecBuffer(SECBUFFER_TOKEN, size=0)],
        [SecBuffer(SECBUFFER_TOKEN, size=8)],
        [SecBuffer(1, size=4096)],
    ],
    ids=["none", "empty-only", "token-0", "token-8", "data-only"],
)
def test_buffer_too_small_on_a_first_leg(pair: Pair, output: list[SecBuffer]) -> None:
    before = pair.client.statistics()
    result = pair.client.initialize_security_context(pair.ccred, None, "t", output=output)
    assert (result.status, result.new_context) == (SecStatus.SEC_E_BUFFER_TOO_SMALL, None)
    assert pair.client.statistics() == before
    big = pair.client.initialize_security_context(
        pair.ccred,
        None,
        "t",
        output=[SecBuffer(SECBUFFER_EMPTY), SecBuffer(SECBUFFER_TOKEN, size=2888)],
    )
    assert big.status == CONTINUE


@pytest.mark.rule("BUF-002", "LIF-005")
def test_buffer_too_small_on_a_later_leg(pair: Pair) -> None:
    pair.to_partial()
    challenge = pair.legs[-1].output_token
    small = pair.client.initialize_security_context(
        pair.ccred, pair.cctx, "t", 0, challenge, output=[SecBuffer(SECBUFFER_TOKEN, size=16)]
    )
    assert (small.status, small.new_context) == (SecStatus.SEC_E_BUFFER_TOO_SMALL, None)
    assert pair.client.query_context_attributes(pair.cctx, SECPKG_ATTR_SIZES).status == INVALID
    # With ALLOCATE_MEMORY the caller's buffer size does not matter.
    last = pair.isc(
        challenge, context_req=ISC_REQ_ALLOCATE_MEMORY, output=[SecBuffer(SECBUFFER_TOKEN, size=16)]
    )
    assert last.status == OK
    assert pair.asc(last.output_token, output=[SecBuffer(SECBUFFER_TOKEN, size=0)]).status == OK


@pytest.mark.rule("BUF-003")
def test_no_output_buffers_means_a_fresh_token_buffer(pair: Pair) -> None:
    first = pair.isc()
    (token_buffer,) = first.output
    assert token_buffer.buffer_type == SECBUFFER_TOKEN
    assert token_buffer.size is None and token_buffer.cb == len(token_buffer.data) > 0
    assert token_buffer.allocation is None
    assert pair.client.statistics().context_buffers == 0


@pytest.mark.rule("BUF-004")
def test_input_buffers(pair: Pair) -> None:
    first = pair.isc()
    reply = pair.asc(
        [
            SecBuffer(SECBUFFER_EMPTY, b"ignored"),
            SecBuffer(SECBUFFER_TOKEN | SECBUFFER_READONLY, first.output_token),
        ]
    )
    assert reply.status == CONTINUE
    last = pair.isc(bytearray(reply.output_token))
    assert last.status == OK
    assert pair.asc(memoryview(last.output_token)).status == OK


@pytest.mark.rule("BUF-004", "ASC-004")
def test_input_without_a_token_buffer(pair: Pair) -> None:
    first = pair.client.initialize_security_context(pair.ccred, None, "t")
    result = pair.server.accept_security_context(
        pair.scred, None, [SecBuffer(1, first.output_token), SecBuffer(SECBUFFER_EMPTY)]
    )
    assert (result.status, result.new_context) == (SecStatus.SEC_E_INVALID_TOKEN, None)


@pytest.mark.rule("API-001")
def test_the_public_names_the_issues_promise_are_importable_from_the_package() -> None:
    import sspi_model

    promised = [
        *("SecStatus", "SecHandle", "Sspi", "CredentialUse", "AuthIdentity"),  # issue 2
        *("ManualScheduler", "InlineScheduler", "RandomScheduler", "ThreadedScheduler"),
        *("Out", "SspiMisuse", "SchannelCred", "Certificate"),  # issue 3
    ]
    missing = [name for name in promised if not hasattr(sspi_model, name)]
    assert not missing
    assert set(promised) <= set(sspi_model.__all__)
