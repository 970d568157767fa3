"""sspi_model.handles and the handle checks of every call: NULL, zeroed, invalid, random, forged,
stale, foreign and wrong-kind handles."""

from __future__ import annotations

from collections.abc import Callable

import attrs
import pytest
from hypothesis import given
from hypothesis import strategies as st

from sspi_model import CredentialUse, SecHandle, SecStatus, Sspi
from sspi_model.handles import ULONG_PTR_MAX, HandleClass, HandleKind

INVALID = SecStatus.SEC_E_INVALID_HANDLE
OK = SecStatus.SEC_E_OK


@attrs.define
class Handles:
    """One instance with a handle of every class, plus a second instance for foreign handles."""

    sspi: Sspi
    other: Sspi
    live_cred: SecHandle
    live_client: SecHandle  # partial client context
    live_server: SecHandle  # partial server context
    stale_cred: SecHandle
    stale_client: SecHandle
    stale_server: SecHandle
    foreign_cred: SecHandle
    foreign_client: SecHandle
    foreign_server: SecHandle


def _contexts(sspi: Sspi) -> tuple[SecHandle, SecHandle, SecHandle]:
    cred = sspi.acquire_credentials_handle("NTLM", CredentialUse.BOTH).credential
    client = sspi.initialize_security_context(cred, None, "t")
    server = sspi.accept_security_context(cred, None, client.output_token)
    assert client.new_context is not None and server.new_context is not None
    return cred, client.new_context, server.new_context


@pytest.fixture
def handles(make_sspi: Callable[..., Sspi]) -> Handles:
    sspi, other = make_sspi(), make_sspi()
    stale_cred, stale_client, stale_server = _contexts(sspi)
    assert sspi.delete_security_context(stale_client) == OK
    assert sspi.delete_security_context(stale_server) == OK
    assert sspi.free_credentials_handle(stale_cred) == OK
    live_cred, live_client, live_server = _contexts(sspi)
    foreign = _contexts(other)
    return Handles(
        sspi,
        other,
        live_cred,
        live_client,
        live_server,
        stale_cred,
        stale_client,
        stale_server,
        *foreign,
    )


def forged_like(handle: SecHandle, offset: int = 1000) -> SecHandle:
    """A value shaped like `handle` that was never issued: same upper, a later serial."""
    return SecHandle(handle.lower + offset, handle.upper)


# -- SecHandle -----------------------------------------------------------------------------------


@pytest.mark.rule("HDL-001")
def test_invalid_handle_value() -> None:
    invalid = SecHandle.invalid()
    assert (invalid.lower, invalid.upper) == (2**64 - 1, 2**64 - 1) == (ULONG_PTR_MAX,) * 2
    assert not invalid.is_valid
    assert SecHandle(0, 0).is_valid
    assert SecHandle(2**64 - 1, 0).is_valid
    assert SecHandle(0, 2**64 - 1).is_valid


@pytest.mark.rule("HDL-001")
@given(st.integers(0, ULONG_PTR_MAX), st.integers(0, ULONG_PTR_MAX))
def test_is_valid_false_only_for_the_invalid_value(lower: int, upper: int) -> None:
    handle = SecHandle(lower, upper)
    assert handle.is_valid == (handle != SecHandle.invalid())


@pytest.mark.rule("HDL-009")
def test_sechandle_fields_are_ulong_ptr() -> None:
    with pytest.raises(TypeError, match=r"SecHandle\.lower"):
        SecHandle("1", 0)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"SecHandle\.upper"):
        SecHandle(0, True)
    with pytest.raises(ValueError, match=r"SecHandle\.lower"):
        SecHandle(-1, 0)
    with pytest.raises(ValueError, match=r"SecHandle\.upper"):
        SecHandle(0, 2**64)
    handle = SecHandle(1, 2)
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        handle.lower = 3  # type: ignore[misc]
    assert {handle: 1}[SecHandle(1, 2)] == 1
    assert eval(repr(handle)) == handle


# -- never reused ----------------------------------------------------------------------------------


@pytest.mark.rule("HDL-002")
@given(st.lists(st.sampled_from(["acquire", "free", "isc", "delete"]), max_size=40))
def test_no_handle_value_is_ever_issued_twice(
    make_sspi: Callable[..., Sspi], ops: list[str]
) -> None:
    a, b = make_sspi(), make_sspi()
    issued: list[SecHandle] = []
    for sspi in (a, b):
        creds: list[SecHandle] = []
        contexts: list[SecHandle] = []
        for op in ops:
            if op == "acquire" or not creds:
                result = sspi.acquire_credentials_handle("NTLM", CredentialUse.OUTBOUND)
                creds.append(result.credential)
                issued.append(result.credential)
            elif op == "free":
                assert sspi.free_credentials_handle(creds.pop()) == OK
            elif op == "isc":
                leg = sspi.initialize_security_context(creds[-1], None, "t")
                contexts.append(leg.new_context)
                issued.append(leg.new_context)
            elif contexts:
                assert sspi.delete_security_context(contexts.pop(0)) == OK
    assert len(set(issued)) == len(issued)


@pytest.mark.rule("HDL-002")
def test_free_then_acquire_gets_a_new_value(make_sspi: Callable[..., Sspi]) -> None:
    sspi = make_sspi()
    first = sspi.acquire_credentials_handle("NTLM", CredentialUse.OUTBOUND).credential
    assert sspi.free_credentials_handle(first) == OK
    second = sspi.acquire_credentials_handle("NTLM", CredentialUse.OUTBOUND).credential
    assert second != first
    # The stale value stays stale even though a credential is live again.
    assert sspi.free_credentials_handle(first) == INVALID
    assert sspi.free_credentials_handle(second) == OK


# -- classification --------------------------------------------------------------------------------


@pytest.mark.rule("HDL-010")
def test_classify(handles: Handles) -> None:
    s = handles.sspi
    assert s.classify(None, HandleKind.CONTEXT) is HandleClass.NULL
    assert s.classify(handles.live_cred, HandleKind.CREDENTIAL) is HandleClass.LIVE
    assert s.classify(handles.live_client, HandleKind.CONTEXT) is HandleClass.LIVE
    assert s.classify(handles.stale_cred, HandleKind.CREDENTIAL) is HandleClass.RETIRED
    assert s.classify(handles.stale_server, HandleKind.CONTEXT) is HandleClass.RETIRED
    assert s.classify(handles.live_cred, HandleKind.CONTEXT) is HandleClass.WRONG_KIND
    assert s.classify(handles.stale_client, HandleKind.CREDENTIAL) is HandleClass.WRONG_KIND
    assert s.classify(handles.foreign_client, HandleKind.CONTEXT) is HandleClass.FOREIGN
    assert s.classify(handles.foreign_cred, HandleKind.CREDENTIAL) is HandleClass.FOREIGN
    for value in (SecHandle(0, 0), SecHandle.invalid(), forged_like(handles.live_client)):
        assert s.classify(value, HandleKind.CONTEXT) is HandleClass.NEVER_ISSUED


@pytest.mark.rule("HDL-010", "HDL-007")
def test_a_forged_context_value_with_a_credential_serial_is_never_issued(
    make_sspi: Callable[..., Sspi],
) -> None:
    # Regression: serials were shared by both kinds, so a context-shaped value whose serial had
    # gone to a credential was taken for a deleted context, and delete returned SEC_E_OK.
    sspi = make_sspi()
    cred = sspi.acquire_credentials_handle("NTLM", CredentialUse.OUTBOUND).credential
    context = sspi.initialize_security_context(cred, None, "t").new_context
    for _ in range(3):
        sspi.acquire_credentials_handle("NTLM", CredentialUse.OUTBOUND)
    forged = SecHandle(context.lower + 1, context.upper)
    assert sspi.classify(forged, HandleKind.CONTEXT) is HandleClass.NEVER_ISSUED
    assert sspi.delete_security_context(forged) == INVALID


# -- every call against every bad handle ---------------------------------------------------------


def context_calls(sspi: Sspi, handle: SecHandle | None, cred: SecHandle) -> dict[str, SecStatus]:
    return {
        "isc": sspi.initialize_security_context(None, handle, "t", 0, b"x").status,
        "asc": sspi.accept_security_context(cred, handle, b"x").status,
        "qca": sspi.query_context_attributes(handle, 0).status,
        "cat": sspi.complete_auth_token(handle, b"x"),
        "delete": sspi.delete_security_context(handle),
    }


def credential_calls(sspi: Sspi, handle: SecHandle | None) -> dict[str, SecStatus]:
    return {
        "isc": sspi.initialize_security_context(handle, None, "t").status,
        "asc": sspi.accept_security_context(handle, None, b"NTLMSSP\x00").status,
        "free": sspi.free_credentials_handle(handle),
    }


def _assert_all_invalid(statuses: dict[str, SecStatus], delete: SecStatus = INVALID) -> None:
    """Every call refused; `delete` is what DeleteSecurityContext gives (DEL-005 for ksecdd)."""
    expected = dict.fromkeys(statuses, INVALID)
    if "delete" in expected:
        expected["delete"] = delete
    assert statuses == expected


@pytest.mark.rule("HDL-005")
def test_null_handles(handles: Handles) -> None:
    s = handles.sspi
    before = s.statistics()
    assert s.delete_security_context(None) == INVALID
    assert s.free_credentials_handle(None) == INVALID
    assert s.query_context_attributes(None, 0).status == INVALID
    assert s.complete_auth_token(None, b"x") == INVALID
    _assert_all_invalid(credential_calls(s, None))
    assert s.statistics() == before


@pytest.mark.rule("HDL-006")
@pytest.mark.parametrize("value", [SecHandle(0, 0), SecHandle.invalid()], ids=["zeroed", "invalid"])
def test_zeroed_and_invalid_handles(handles: Handles, value: SecHandle) -> None:
    s = handles.sspi
    before = s.statistics()
    _assert_all_invalid(context_calls(s, value, handles.live_cred))
    _assert_all_invalid(credential_calls(s, value))
    assert s.statistics() == before


@pytest.mark.rule("HDL-007", "API-003")
@given(lower=st.integers(0, ULONG_PTR_MAX), upper=st.integers(0, ULONG_PTR_MAX))
def test_random_handles(make_sspi: Callable[..., Sspi], lower: int, upper: int) -> None:
    sspi = make_sspi()
    cred, client, server = _contexts(sspi)
    value = SecHandle(lower, upper)
    before = sspi.statistics()
    if value not in (cred, client, server):
        _assert_all_invalid(context_calls(sspi, value, cred))
        _assert_all_invalid(credential_calls(sspi, value))
    assert sspi.statistics() == before


@pytest.mark.rule("HDL-007")
def test_forged_handles(handles: Handles) -> None:
    s = handles.sspi
    before = s.statistics()
    _assert_all_invalid(context_calls(s, forged_like(handles.live_client), handles.live_cred))
    _assert_all_invalid(credential_calls(s, forged_like(handles.live_cred)))
    assert s.statistics() == before


@pytest.mark.rule("HDL-003")
def test_stale_handles(handles: Handles) -> None:
    s = handles.sspi
    before = s.statistics()
    assert s.initialize_security_context(None, handles.stale_client, "t", 0, b"x").status == INVALID
    assert s.accept_security_context(None, handles.stale_server, b"x").status == INVALID
    for stale in (handles.stale_client, handles.stale_server):
        assert s.query_context_attributes(stale, 0).status == INVALID
        assert s.complete_auth_token(stale, b"x") == INVALID
        assert s.delete_security_context(stale) == s.profile.delete_already_deleted
    _assert_all_invalid(credential_calls(s, handles.stale_cred))
    assert s.statistics() == before


@pytest.mark.rule("HDL-004")
@pytest.mark.parametrize("profile", ["documented", "ksecdd", "strict-delete"])
def test_foreign_handles(make_sspi: Callable[..., Sspi], profile: str) -> None:
    sspi, other = make_sspi(profile=profile), make_sspi(profile=profile)
    own_cred = sspi.acquire_credentials_handle("NTLM", CredentialUse.BOTH).credential
    cred, client, server = _contexts(other)
    before, other_before = sspi.statistics(), other.statistics()
    # ksecdd's delete turns the validator's STATUS_INVALID_HANDLE into success (DEL-005).
    delete = OK if profile == "ksecdd" else INVALID
    _assert_all_invalid(context_calls(sspi, client, own_cred), delete)
    _assert_all_invalid(context_calls(sspi, server, own_cred), delete)
    _assert_all_invalid(credential_calls(sspi, cred))
    # Deleted in the other instance: still foreign here, whatever the profile says about DEL-003.
    assert other.delete_security_context(client) == OK
    assert sspi.delete_security_context(client) == delete
    assert sspi.statistics() == before
    # The other instance is untouched by what was tried here.
    assert other.query_context_attributes(server, 10).status == OK
    assert other.statistics().credentials == other_before.credentials


@pytest.mark.rule("HDL-008")
@pytest.mark.parametrize("profile", ["documented", "strict-delete"])
def test_wrong_kind_handles(make_sspi: Callable[..., Sspi], profile: str) -> None:
    sspi = make_sspi(profile=profile)
    cred, client, server = _contexts(sspi)
    before = sspi.statistics()
    # A credential handle where a context is expected.
    _assert_all_invalid(context_calls(sspi, cred, cred))
    # A context handle where a credential is expected.
    _assert_all_invalid(credential_calls(sspi, client))
    _assert_all_invalid(credential_calls(sspi, server))
    assert sspi.statistics() == before
    # Retired handles of the wrong kind too: never "already deleted".
    assert sspi.delete_security_context(client) == OK
    assert sspi.free_credentials_handle(cred) == OK
    assert sspi.delete_security_context(cred) == INVALID
    assert sspi.free_credentials_handle(client) == INVALID
