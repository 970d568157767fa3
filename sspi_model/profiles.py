"""Named behaviour profiles: where the sources disagree, the model offers each reading.

Every field says which rule it selects between; specs/rules.toml carries both readings.
Where the documents are silent, all profiles follow the observed kernel (the ASY rules whose
provenance is "decompiled").
"""

from __future__ import annotations

import attrs

from sspi_model.status import NtStatus, SecStatus
from sspi_model.values import Value


@attrs.frozen(repr=False, eq=False)
class Profile(Value):
    name: str
    description: str
    # DeleteSecurityContext on an already-deleted handle: SEC_E_OK (the DeleteSecurityContext page
    # and the analysed ksecdd: DEL-003) or SEC_E_INVALID_HANDLE (the async page read
    # strictly: DEL-004).
    delete_already_deleted: SecStatus = SecStatus.SEC_E_OK
    # DeleteSecurityContext (sync or async) on a handle the kernel's validator does not know
    # (never issued, foreign, of the other kind): SEC_E_INVALID_HANDLE as its page says
    # (DEL-002), or success as the analysed ksecdd turns STATUS_INVALID_HANDLE (DEL-005).
    delete_unknown_is_success: bool = False
    # SspiFreeCredentialsHandleAsync: works as documented (ASY-030) or is the analysed build's
    # stub returning SEC_E_UNSUPPORTED_FUNCTION (ASY-031).
    free_credentials_async_supported: bool = True
    # A NULL callback with ACH/ISC/ASC/FreeCreds: unsupported per the SetAsyncNotifyCallback
    # note (ASY-020, a misuse) or accepted as ksecdd does (ASY-021).
    null_callback_only_for_delete: bool = True
    # SspiDeleteSecurityContextAsync on a context with no LSA-side part: completes like any call
    # (ASY-040) or returns SEC_E_OK with no status change and no callback (ASY-041).
    delete_without_lsa_part_is_inline: bool = False
    # SspiReinitAsyncContext on a context whose call is pending: "an error", says its page;
    # no code is documented or observed, so the model picks one (ASY-012, a model decision).
    reinit_pending_status: NtStatus = NtStatus.STATUS_INVALID_DEVICE_STATE
    # A message function (or ApplyControlToken) on a context whose handshake is not complete:
    # no page names a code (MSG-002). SEC_E_INVALID_HANDLE, as the only documented
    # partial-context rule says for QueryContextAttributes (QCAW, QCA-002), or
    # SEC_E_OUT_OF_SEQUENCE, as sspi-rs answers EncryptMessage (sspi-rs-probe.md) (MSG-004).
    message_on_partial_status: SecStatus = SecStatus.SEC_E_INVALID_HANDLE
    # The follow-up of SEC_I_RENEGOTIATE: the post-handshake message comes back as
    # SECBUFFER_EXTRA for the caller to pass as the next ISC/ASC's TOKEN (RENEG/RECOG, 2019:
    # SHD-001), or stays in the DATA buffer as DecryptMessage modified it, which the caller
    # retypes to SECBUFFER_TOKEN (the DecryptMessage (Schannel) page of 2025-11: SHD-011).
    renegotiate_returns_extra: bool = True


DOCUMENTED = Profile(
    name="documented",
    description="Follows Microsoft's pages; where they are silent, the observed kernel.",
)
KSECDD = Profile(
    name="ksecdd",
    description="Follows the analysed ksecdd.sys build where it contradicts the pages.",
    free_credentials_async_supported=False,
    null_callback_only_for_delete=False,
    delete_without_lsa_part_is_inline=True,
    delete_unknown_is_success=True,
)
STRICT_DELETE = attrs.evolve(
    DOCUMENTED,
    name="strict-delete",
    description=(
        "As documented, but DeleteSecurityContext on an already-deleted handle returns "
        "SEC_E_INVALID_HANDLE (the async page's 'the handle is no longer valid', read strictly)."
    ),
    delete_already_deleted=SecStatus.SEC_E_INVALID_HANDLE,
)

# Where the message functions' sources disagree: sspi-rs's answer on a partial context (MSG-004)
# and the 2025 DecryptMessage page's SEC_I_RENEGOTIATE follow-up (SHD-011).
MESSAGES_2025 = attrs.evolve(
    DOCUMENTED,
    name="messages-2025",
    description=(
        "As documented, but with the 2025 DecryptMessage (Schannel) page's renegotiation "
        "follow-up (the DATA buffer as modified, retyped to TOKEN) and SEC_E_OUT_OF_SEQUENCE "
        "for a message call on a partial context, as sspi-rs answers."
    ),
    message_on_partial_status=SecStatus.SEC_E_OUT_OF_SEQUENCE,
    renegotiate_returns_extra=False,
)

PROFILES: dict[str, Profile] = {
    p.name: p for p in (DOCUMENTED, KSECDD, STRICT_DELETE, MESSAGES_2025)
}


def resolve_profile(profile: str | Profile) -> Profile:
    if isinstance(profile, Profile):
        return profile
    if not isinstance(profile, str):
        raise TypeError(f"profile must be a name or a Profile, got {type(profile).__name__}")
    try:
        return PROFILES[profile]
    except KeyError:
        raise ValueError(
            f"unknown profile {profile!r}; accepted: {', '.join(sorted(PROFILES))}"
        ) from None
