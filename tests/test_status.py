"""sspi_model.status: real values, lookup by value (signed or unsigned) and name, severity."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sspi_model import NtStatus, SecStatus, is_error, is_success, lookup
from sspi_model.status import MEANINGS, NT_MEANINGS, to_unsigned

# (name, value, mingw-w64 winerror.h line) from sspi-async-semantics.md section 6.
WINERROR = [
    ("SEC_E_OK", 0x00000000),
    ("SEC_I_CONTINUE_NEEDED", 0x00090312),
    ("SEC_I_COMPLETE_NEEDED", 0x00090313),
    ("SEC_I_COMPLETE_AND_CONTINUE", 0x00090314),
    ("SEC_I_LOCAL_LOGON", 0x00090315),
    ("SEC_I_INCOMPLETE_CREDENTIALS", 0x00090320),
    ("SEC_I_CONTEXT_EXPIRED", 0x00090317),  # winerror.h (SDK 10.0.22000) line 36342
    ("SEC_I_RENEGOTIATE", 0x00090321),
    ("SEC_I_NO_LSA_CONTEXT", 0x00090323),
    ("SEC_I_ASYNC_CALL_PENDING", 0x00090368),
    ("SEC_E_INSUFFICIENT_MEMORY", 0x80090300),
    ("SEC_E_INVALID_HANDLE", 0x80090301),
    ("SEC_E_UNSUPPORTED_FUNCTION", 0x80090302),
    ("SEC_E_TARGET_UNKNOWN", 0x80090303),
    ("SEC_E_INTERNAL_ERROR", 0x80090304),
    ("SEC_E_SECPKG_NOT_FOUND", 0x80090305),
    ("SEC_E_NOT_OWNER", 0x80090306),
    ("SEC_E_INVALID_TOKEN", 0x80090308),
    ("SEC_E_QOP_NOT_SUPPORTED", 0x8009030A),  # line 36207
    ("SEC_E_LOGON_DENIED", 0x8009030C),
    ("SEC_E_UNKNOWN_CREDENTIALS", 0x8009030D),
    ("SEC_E_NO_CREDENTIALS", 0x8009030E),
    ("SEC_E_MESSAGE_ALTERED", 0x8009030F),
    ("SEC_E_OUT_OF_SEQUENCE", 0x80090310),
    ("SEC_E_NO_AUTHENTICATING_AUTHORITY", 0x80090311),
    ("SEC_E_CONTEXT_EXPIRED", 0x80090317),
    ("SEC_E_INCOMPLETE_MESSAGE", 0x80090318),
    ("SEC_E_INCOMPLETE_CREDENTIALS", 0x80090320),
    ("SEC_E_BUFFER_TOO_SMALL", 0x80090321),
    ("SEC_E_WRONG_PRINCIPAL", 0x80090322),
    ("SEC_E_DECRYPT_FAILURE", 0x80090330),  # line 36469
    ("SEC_E_ALGORITHM_MISMATCH", 0x80090331),
    ("SEC_E_SECURITY_QOS_FAILED", 0x80090332),
    ("SEC_E_SHUTDOWN_IN_PROGRESS", 0x8009033F),
    ("SEC_E_BAD_BINDINGS", 0x80090346),
    ("SEC_E_INVALID_PARAMETER", 0x8009035D),
    ("SEC_E_NO_CONTEXT", 0x80090361),
    ("SEC_E_APPLICATION_PROTOCOL_MISMATCH", 0x80090367),
]
NTSTATUS_H = [
    ("STATUS_SUCCESS", 0x00000000),
    ("STATUS_PENDING", 0x00000103),
    ("STATUS_DEVICE_BUSY", 0x80000011),
    ("STATUS_UNSUCCESSFUL", 0xC0000001),
    ("STATUS_INVALID_HANDLE", 0xC0000008),
    ("STATUS_INVALID_PARAMETER", 0xC000000D),
    ("STATUS_NO_MEMORY", 0xC0000017),
    ("STATUS_LOGON_FAILURE", 0xC000006D),
    ("STATUS_NO_TOKEN", 0xC000007C),
    ("STATUS_INSUFFICIENT_RESOURCES", 0xC000009A),
    ("STATUS_NOT_SUPPORTED", 0xC00000BB),
    ("STATUS_INVALID_DEVICE_STATE", 0xC0000184),
    ("STATUS_SHUTDOWN_IN_PROGRESS", 0xC00002FE),
    ("STATUS_RESOURCE_IN_USE", 0xC0000708),
]


@pytest.mark.rule("STS-001")
@pytest.mark.parametrize(("name", "value"), WINERROR)
def test_security_status_values_match_winerror_h(name: str, value: int) -> None:
    assert int(SecStatus[name]) == value


@pytest.mark.rule("STS-001")
def test_every_member_is_in_the_header_table_and_invalid_handle_is_not_the_doc_misprint() -> None:
    assert {m.name for m in SecStatus} == {name for name, _ in WINERROR}
    assert SecStatus.SEC_E_INVALID_HANDLE != 0x80100003
    assert all(0 <= int(m) <= 0xFFFFFFFF for m in SecStatus)


@pytest.mark.rule("STS-002")
@pytest.mark.parametrize(("name", "value"), NTSTATUS_H)
def test_ntstatus_values_match_ntstatus_h(name: str, value: int) -> None:
    assert int(NtStatus[name]) == value


@pytest.mark.rule("STS-002")
def test_ntstatus_is_a_separate_type() -> None:
    assert {m.name for m in NtStatus} == {name for name, _ in NTSTATUS_H}
    assert NtStatus.STATUS_SUCCESS == SecStatus.SEC_E_OK  # equal integers ...
    assert not isinstance(NtStatus.STATUS_SUCCESS, SecStatus)  # ... different types
    assert lookup(int(NtStatus.STATUS_LOGON_FAILURE)).family == "NTSTATUS"


@pytest.mark.rule("STS-003")
@pytest.mark.parametrize("member", list(SecStatus) + list(NtStatus), ids=str)
def test_lookup_signed_and_unsigned_agree(member: int) -> None:
    unsigned = int(member)
    signed = unsigned - (1 << 32) if unsigned & 0x80000000 else unsigned
    by_unsigned, by_signed = lookup(unsigned), lookup(signed)
    assert by_unsigned == by_signed
    assert by_unsigned.value == unsigned
    assert by_unsigned.signed == signed
    if int(member) != 0:
        assert by_unsigned.name == member.name


@pytest.mark.rule("STS-003")
def test_lookup_of_a_negative_long() -> None:
    info = lookup(-2146893055)  # what a C printf("%ld") shows for SEC_E_INVALID_HANDLE
    assert info.name == "SEC_E_INVALID_HANDLE"
    assert info.family == "SECURITY_STATUS"
    assert to_unsigned(-2146893055) == 0x80090301


@pytest.mark.rule("STS-003", "STS-004")
@given(st.integers(min_value=-(1 << 31), max_value=(1 << 32) - 1))
def test_lookup_total_on_32_bit_values(value: int) -> None:
    info = lookup(value)
    assert info.value == value & 0xFFFFFFFF
    assert info.family in {"SECURITY_STATUS", "NTSTATUS", "unknown"}
    if info.family == "unknown":
        assert info.name == f"0x{value & 0xFFFFFFFF:08X}"


@pytest.mark.rule("STS-004")
def test_lookup_by_name_and_its_errors() -> None:
    assert lookup("SEC_E_LOGON_DENIED").value == 0x8009030C
    assert lookup(" STATUS_PENDING ").family == "NTSTATUS"
    assert lookup(0).name == "SEC_E_OK"
    assert lookup("STATUS_SUCCESS").name == "STATUS_SUCCESS"
    unknown = lookup(0x80091234)
    assert (unknown.name, unknown.family) == ("0x80091234", "unknown")
    with pytest.raises(ValueError, match="unknown status name"):
        lookup("SEC_E_NOPE")
    with pytest.raises(ValueError):
        lookup(1 << 32)
    with pytest.raises(ValueError):
        lookup(-(1 << 31) - 1)
    with pytest.raises(TypeError):
        lookup(1.5)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        lookup(True)


@pytest.mark.rule("STS-005")
def test_severity() -> None:
    assert is_success(SecStatus.SEC_E_OK)
    for member in SecStatus:
        assert is_error(member) == (member.name.startswith("SEC_E_") and member != 0)
        assert is_success(member) != is_error(member)
    assert is_error(SecStatus.SEC_E_INCOMPLETE_MESSAGE)
    assert is_success(SecStatus.SEC_I_CONTINUE_NEEDED)
    assert is_error(-2146893055)
    assert is_error(NtStatus.STATUS_DEVICE_BUSY)  # a warning NTSTATUS still has the top bit
    assert is_success(NtStatus.STATUS_PENDING)


@pytest.mark.rule("STS-006")
def test_every_status_has_a_meaning() -> None:
    for member in SecStatus:
        assert MEANINGS[member].strip()
        assert lookup(member.name).meaning == MEANINGS[member]
    for member in NtStatus:
        assert NT_MEANINGS[member].strip()
        assert lookup(member.name).meaning == NT_MEANINGS[member]


@pytest.mark.rule("STS-007")
def test_repr_round_trips_and_str_is_the_macro() -> None:
    for member in [*SecStatus, *NtStatus]:
        assert eval(repr(member)) is member
        assert str(member) == member.name
