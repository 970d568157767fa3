"""Profiles: where the sources disagree the model offers each reading by name."""

from __future__ import annotations

from collections.abc import Callable

import attrs
import pytest

from sspi_model import PROFILES, CredentialUse, SecHandle, SecStatus, Sspi
from sspi_model.profiles import DOCUMENTED, KSECDD, STRICT_DELETE

OK = SecStatus.SEC_E_OK
INVALID = SecStatus.SEC_E_INVALID_HANDLE


def _delete_twice(sspi: Sspi) -> tuple[SecStatus, SecStatus]:
    cred = sspi.acquire_credentials_handle("NTLM", CredentialUse.OUTBOUND).credential
    context = sspi.initialize_security_context(cred, None, "t").new_context
    return sspi.delete_security_context(context), sspi.delete_security_context(context)


@pytest.mark.rule("PRF-001")
def test_profile_names_and_default(make_sspi: Callable[..., Sspi]) -> None:
    assert set(PROFILES) == {"documented", "ksecdd", "strict-delete", "messages-2025"}
    assert make_sspi().profile is DOCUMENTED
    assert make_sspi(profile="ksecdd").profile is KSECDD
    assert make_sspi(profile=STRICT_DELETE).profile is STRICT_DELETE
    custom = attrs.evolve(DOCUMENTED, name="mine", delete_already_deleted=INVALID)
    assert make_sspi(profile=custom).profile is custom


@pytest.mark.rule("PRF-001")
def test_unknown_profile(make_sspi: Callable[..., Sspi]) -> None:
    with pytest.raises(ValueError, match="documented, ksecdd, messages-2025, strict-delete"):
        make_sspi(profile="Documented")
    with pytest.raises(TypeError, match=r"^profile"):
        make_sspi(profile=None)


@pytest.mark.rule("DEL-003")
@pytest.mark.parametrize("profile", ["documented", "ksecdd"])
def test_delete_already_deleted_is_ok(make_sspi: Callable[..., Sspi], profile: str) -> None:
    sspi = make_sspi(profile=profile)
    assert _delete_twice(sspi) == (OK, OK)
    assert sspi.statistics().contexts == 0


@pytest.mark.rule("DEL-004")
def test_strict_delete_profile(make_sspi: Callable[..., Sspi]) -> None:
    sspi = make_sspi(profile="strict-delete")
    assert _delete_twice(sspi) == (OK, INVALID)
    # Everything else about delete is the same: live contexts delete, never-issued ones do not.
    assert sspi.delete_security_context(None) == INVALID
    assert sspi.delete_security_context(SecHandle(0, 0)) == INVALID
    assert sspi.statistics().contexts == 0


def _script(sspi_of: Callable[[], Sspi]) -> list[object]:
    """Every synchronous call, valid and invalid; returns what a C caller could observe."""
    client, server = sspi_of(), sspi_of()
    seen: list[object] = []
    ccred = client.acquire_credentials_handle("Negotiate", CredentialUse.OUTBOUND).credential
    scred = server.acquire_credentials_handle("ntlm", CredentialUse.INBOUND).credential
    seen.append(client.acquire_credentials_handle("Kerberos", 2).status)
    seen.append(client.acquire_credentials_handle("NTLM", 0).status)
    raw = client.acquire_credentials_handle("NTLM", CredentialUse.OUTBOUND).credential
    first = client.initialize_security_context(raw, None, "t")
    seen.append(server.accept_security_context(scred, None, b"junk").status)
    reply = server.accept_security_context(scred, None, first.output_token)
    seen.append(server.query_context_attributes(reply.new_context, 0).status)
    seen.append(client.free_credentials_handle(raw))
    last = client.initialize_security_context(None, first.new_context, "t", 0, reply.output_token)
    final = server.accept_security_context(None, reply.new_context, last.output_token)
    seen += [first.status, reply.status, last.status, final.status, final.output_token]
    seen.append(server.accept_security_context(None, reply.new_context, b"x").status)
    seen.append(server.complete_auth_token(reply.new_context, b"x"))
    seen.append(client.initialize_security_context(ccred, None, "t").status)
    for sspi, ctx in ((client, first.new_context), (server, reply.new_context)):
        seen.append(sspi.delete_security_context(ctx))
        seen.append(sspi.delete_security_context(ctx))
        seen.append(sspi.query_context_attributes(ctx, 0).status)
    seen.append(client.free_credentials_handle(raw))
    seen.append(server.free_context_buffer(123))
    seen.append(client.statistics().orphaned_credentials)
    return seen


@pytest.mark.rule("PRF-002")
def test_documented_and_ksecdd_agree_on_the_sync_api(make_sspi: Callable[..., Sspi]) -> None:
    documented = _script(lambda: make_sspi(profile="documented"))
    assert documented == _script(lambda: make_sspi(profile="ksecdd"))  # no unknown handle here
    strict = _script(lambda: make_sspi(profile="strict-delete"))
    differences = [i for i, (a, b) in enumerate(zip(documented, strict, strict=True)) if a != b]
    # Only the two second deletes differ.
    assert [(documented[i], strict[i]) for i in differences] == [(OK, INVALID), (OK, INVALID)]


@pytest.mark.rule("DEL-005", "DEL-002")
def test_ksecdd_deletes_an_unknown_handle_with_success(make_sspi: Callable[..., Sspi]) -> None:
    from sspi_model import SecHandle

    forged = SecHandle(0x4141414141414141, 0x4242424242424242)
    for profile, expected in (("documented", INVALID), ("strict-delete", INVALID), ("ksecdd", OK)):
        sspi = make_sspi(profile=profile)
        before = sspi.statistics()
        assert sspi.delete_security_context(forged) == expected
        assert sspi.delete_security_context(SecHandle(0, 0)) == expected
        assert sspi.delete_security_context(None) == INVALID  # NULL is no handle to validate
        assert sspi.statistics() == before  # success or not, nothing changed
        assert sspi.last_rules[0] == "DEL-002"
