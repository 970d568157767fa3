"""NativeBackend against sspi-rs (libsspi from the sspilib wheel), leg by leg.

The expected statuses are the ones the sspi-rs probe report (research/sspi-rs-probe.md)
measured; where they differ from Windows the report says so.
"""

from __future__ import annotations

import pytest

from sspi_model import AuthIdentity, SecHandle, SecStatus
from sspi_model.backends.base import Backend, BackendFailure
from sspi_model.backends.native import NativeBackend, NeedsReset
from sspi_model.constants import SECPKG_ATTR_NAMES, SECPKG_ATTR_PACKAGE_INFO, SECPKG_ATTR_SIZES
from sspi_model.results import ContextNames, ContextPackageInfo, ContextSizes, SecurityContextResult

OUTBOUND, INBOUND = 2, 1
ISC_REQ = 0x1091C  # CONNECTION|INTEGRITY|CONFIDENTIALITY|REPLAY|SEQUENCE|ALLOCATE_MEMORY
ASC_REQ = 0x2081C  # the same without ALLOCATE_MEMORY: the caller-buffer path
ALICE = AuthIdentity("alice", "Passw0rd!", "DOMAIN")


def _handshake(
    native: NativeBackend, server_password: str = ALICE.password
) -> list[tuple[str, SecurityContextResult]]:
    client = native.acquire_credentials_handle("NTLM", OUTBOUND, ALICE).credential
    server_identity = AuthIdentity(ALICE.user, server_password, ALICE.domain)
    server = native.acquire_credentials_handle("NTLM", INBOUND, server_identity).credential
    isc1 = native.initialize_security_context(client, None, "host/server", ISC_REQ)
    asc1 = native.accept_security_context(server, None, isc1.output_token, ASC_REQ)
    isc2 = native.initialize_security_context(
        client, isc1.new_context, "host/server", ISC_REQ, asc1.output_token
    )
    asc2 = native.accept_security_context(server, asc1.new_context, isc2.output_token, ASC_REQ)
    return [("ISC1", isc1), ("ASC1", asc1), ("ISC2", isc2), ("ASC2", asc2)]


def test_capabilities(backend: NativeBackend) -> None:
    assert isinstance(backend, Backend)
    assert backend.capabilities.name == "sspi-rs"
    assert {"NTLM", "Negotiate", "Kerberos"} <= backend.capabilities.packages
    assert not backend.capabilities.async_api


def test_ntlm_handshake_leg_by_leg(backend: NativeBackend) -> None:
    legs = dict(_handshake(backend))
    assert {name: leg.status for name, leg in legs.items()} == {
        "ISC1": SecStatus.SEC_I_CONTINUE_NEEDED,
        "ASC1": SecStatus.SEC_I_CONTINUE_NEEDED,
        "ISC2": SecStatus.SEC_E_OK,
        "ASC2": SecStatus.SEC_I_COMPLETE_NEEDED,  # Windows: SEC_E_OK
    }
    for name, message_type in (("ISC1", 1), ("ASC1", 2), ("ISC2", 3)):
        assert legs[name].output_token.startswith(b"NTLMSSP\0" + bytes([message_type]))
    assert [len(legs[n].output_token) for n in ("ISC1", "ASC1")] == [42, 88]
    assert legs["ASC2"].output_token == b""
    assert legs["ISC1"].context_attr == ISC_REQ  # sspi-rs echoes the request
    assert legs["ISC2"].new_context == legs["ISC1"].new_context  # client handles are stable
    server = legs["ASC2"].new_context
    assert server is not None
    assert backend.complete_auth_token(server, legs["ASC2"].output_token) == SecStatus.SEC_E_OK
    sizes = backend.query_context_attributes(server, SECPKG_ATTR_SIZES)
    assert sizes.buffer == ContextSizes(2010, 16, 0, 16)
    names = backend.query_context_attributes(server, SECPKG_ATTR_NAMES).buffer
    assert isinstance(names, ContextNames) and names.user_name == "DOMAIN\\alice"
    assert backend.free_context_buffer(names.allocation) == SecStatus.SEC_E_OK
    info = backend.query_context_attributes(server, SECPKG_ATTR_PACKAGE_INFO).buffer
    assert isinstance(info, ContextPackageInfo) and info.package_info.name == "NTLM"


def test_wrong_password_is_refused_only_by_complete_auth_token(backend: NativeBackend) -> None:
    legs = dict(_handshake(backend, server_password="wrong"))
    assert legs["ISC2"].status == SecStatus.SEC_E_OK
    assert legs["ASC2"].status == SecStatus.SEC_I_COMPLETE_NEEDED
    server = legs["ASC2"].new_context
    assert server is not None
    assert backend.complete_auth_token(server, b"") == SecStatus.SEC_E_LOGON_DENIED


def test_packages_and_their_buffers(backend: NativeBackend) -> None:
    listing = backend.enumerate_security_packages()
    assert listing.status == SecStatus.SEC_E_OK
    assert [p.name for p in listing.packages] == ["Negotiate", "Kerberos", "Pku2u", "NTLM"]
    assert backend.free_context_buffer(listing.allocation) == SecStatus.SEC_E_OK
    assert backend.free_context_buffer(None) == SecStatus.SEC_E_OK
    ntlm = backend.query_security_package_info("NTLM")
    assert ntlm.package_info is not None and ntlm.package_info.max_token == 2888
    unknown = backend.query_security_package_info("Foo")  # a caught Rust panic
    assert unknown.status == SecStatus.SEC_E_INTERNAL_ERROR
    assert backend.acquire_credentials_handle("ntlm", OUTBOUND, ALICE).status == (
        SecStatus.SEC_E_SECPKG_NOT_FOUND
    )


def test_null_and_zeroed_handles_reach_the_library(backend: NativeBackend) -> None:
    assert backend.delete_security_context(None) == SecStatus.SEC_E_INVALID_PARAMETER
    zero = SecHandle(0, 0)
    assert backend.delete_security_context(zero) == SecStatus.SEC_E_INVALID_PARAMETER
    assert backend.free_credentials_handle(zero) == SecStatus.SEC_E_INVALID_PARAMETER
    isc = backend.initialize_security_context(zero, None, "host/x", ISC_REQ)
    assert isc.status == SecStatus.SEC_E_INVALID_HANDLE  # the one place sspi-rs uses it


def test_double_delete_crashes_and_reset_recovers(backend: NativeBackend) -> None:
    client = backend.acquire_credentials_handle("NTLM", OUTBOUND, ALICE)
    isc1 = backend.initialize_security_context(client.credential, None, "host/x", ISC_REQ)
    assert isc1.new_context is not None
    assert backend.delete_security_context(isc1.new_context) == SecStatus.SEC_E_OK
    with pytest.raises(BackendFailure) as failure:
        backend.delete_security_context(isc1.new_context)
    assert failure.value.outcome in {"CRASH:SIGABRT", "CRASH:SIGSEGV"}
    with pytest.raises(NeedsReset):
        backend.enumerate_security_packages()
    # What was returned before the crash is intact.
    assert isc1.status == SecStatus.SEC_I_CONTINUE_NEEDED and len(isc1.output_token) == 42
    backend.reset()
    assert [leg.status for _, leg in _handshake(backend)][-1] == SecStatus.SEC_I_COMPLETE_NEEDED


def test_use_after_delete_hangs(library: str) -> None:
    with NativeBackend(library, timeout=1.5) as native:
        client = native.acquire_credentials_handle("NTLM", OUTBOUND, ALICE)
        isc1 = native.initialize_security_context(client.credential, None, "host/x", ISC_REQ)
        assert isc1.new_context is not None
        assert native.delete_security_context(isc1.new_context) == SecStatus.SEC_E_OK
        with pytest.raises(BackendFailure) as failure:
            native.query_context_attributes(isc1.new_context, SECPKG_ATTR_SIZES)
        assert failure.value.outcome == "HANG"
        native.reset()
        assert native.delete_security_context(None) == SecStatus.SEC_E_INVALID_PARAMETER


def test_in_process_calls_give_the_same_statuses(library: str) -> None:
    native = NativeBackend(library, isolate=False)
    statuses = [leg.status for _, leg in _handshake(native)]
    assert statuses == [
        SecStatus.SEC_I_CONTINUE_NEEDED,
        SecStatus.SEC_I_CONTINUE_NEEDED,
        SecStatus.SEC_E_OK,
        SecStatus.SEC_I_COMPLETE_NEEDED,
    ]
