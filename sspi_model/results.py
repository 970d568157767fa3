"""Frozen results of calls whose C form has out-parameters: `.status` plus one field each
(API-001)."""

from __future__ import annotations

import attrs

from sspi_model.buffers import SecBuffer
from sspi_model.handles import SecHandle
from sspi_model.status import SecStatus
from sspi_model.values import Value


@attrs.frozen(repr=False, eq=False)
class PackageInfo(Value):
    """SecPkgInfo."""

    name: str
    comment: str
    capabilities: int
    version: int
    rpc_id: int
    max_token: int


@attrs.frozen(repr=False, eq=False)
class ContextSizes(Value):
    """SecPkgContext_Sizes."""

    max_token: int
    max_signature: int
    block_size: int
    security_trailer: int


@attrs.frozen(repr=False, eq=False)
class StreamSizes(Value):
    """SecPkgContext_StreamSizes."""

    header: int
    trailer: int
    max_message: int
    buffers: int
    block_size: int


@attrs.frozen(repr=False, eq=False)
class AcquireCredentialsResult(Value):
    status: SecStatus
    credential: SecHandle | None = None
    expiry: int | None = None


@attrs.frozen(repr=False, eq=False)
class SecurityContextResult(Value):
    """InitializeSecurityContext / AcceptSecurityContext."""

    status: SecStatus
    new_context: SecHandle | None = None
    output: tuple[SecBuffer, ...] = ()
    context_attr: int = 0
    expiry: int | None = None
    input_after: tuple[SecBuffer, ...] | None = None  # the input as the call left it

    @property
    def output_token(self) -> bytes:
        for buffer in self.output:
            if buffer.base_type == 2:  # SECBUFFER_TOKEN
                return buffer.data
        return b""


@attrs.frozen(repr=False, eq=False)
class MessageResult(Value):
    """MakeSignature / VerifySignature / EncryptMessage / DecryptMessage / ApplyControlToken.

    `buffers` is the descriptor as the call left it (C writes into the caller's SecBuffers:
    a signature into the TOKEN, sealed or unsealed bytes into DATA, buffers retyped to
    STREAM_HEADER / EXTRA / MISSING ...). `qop` is what VerifySignature / DecryptMessage
    report in pfQOP (None where the call has none or the package leaves it alone)."""

    status: SecStatus
    buffers: tuple[SecBuffer, ...] = ()
    qop: int | None = None

    def of_type(self, base_type: int) -> tuple[SecBuffer, ...]:
        """The buffers of one type (attribute bits ignored), in descriptor order."""
        return tuple(b for b in self.buffers if b.base_type == base_type)

    @property
    def data(self) -> bytes:
        """The bytes of every SECBUFFER_DATA buffer, joined."""
        return b"".join(b.data for b in self.of_type(1))


@attrs.frozen(repr=False, eq=False)
class ContextNames(Value):
    """SecPkgContext_Names; the name is package memory (free with FreeContextBuffer)."""

    user_name: str
    allocation: int


@attrs.frozen(repr=False, eq=False)
class ContextLifespan(Value):
    start: int
    expiry: int


@attrs.frozen(repr=False, eq=False)
class ContextPackageInfo(Value):
    """SecPkgContext_PackageInfo; the SecPkgInfo is package memory."""

    package_info: PackageInfo
    allocation: int


@attrs.frozen(repr=False, eq=False)
class ContextNegotiationInfo(Value):
    """SecPkgContext_NegotiationInfo: the package chosen (package memory) and the state
    (SECPKG_NEGOTIATION_COMPLETE 0, IN_PROGRESS 2)."""

    package_info: PackageInfo
    negotiation_state: int
    allocation: int


@attrs.frozen(repr=False, eq=False)
class ContextNativeNames(Value):
    """SecPkgContext_NativeNames: both names are package memory."""

    client_name: str
    server_name: str
    client_allocation: int
    server_allocation: int


@attrs.frozen(repr=False, eq=False)
class ContextFlags(Value):
    """SecPkgContext_Flags: the context attributes granted (ISC_RET_* / ASC_RET_*)."""

    flags: int


@attrs.frozen(repr=False, eq=False)
class ContextKeyInfo(Value):
    """SecPkgContext_KeyInfo; the two names are package memory."""

    signature_algorithm_name: str
    encrypt_algorithm_name: str
    key_size: int
    signature_algorithm: int
    encrypt_algorithm: int
    signature_name_allocation: int
    encrypt_name_allocation: int


@attrs.frozen(repr=False, eq=False)
class ContextSessionKey(Value):
    """SecPkgContext_SessionKey; the key is package memory."""

    session_key: bytes
    allocation: int


@attrs.frozen(repr=False, eq=False)
class ContextBindings(Value):
    """SecPkgContext_Bindings: SEC_CHANNEL_BINDINGS application data (package memory)."""

    application_data: bytes
    allocation: int


@attrs.frozen(repr=False, eq=False)
class ApplicationProtocol(Value):
    """SecPkgContext_ApplicationProtocol (flat)."""

    status: int  # SecApplicationProtocolNegotiationStatus_*
    extension: int  # SecApplicationProtocolNegotiationExt_*
    protocol_id: bytes


@attrs.frozen(repr=False, eq=False)
class SessionInfo(Value):
    """SecPkgContext_SessionInfo (flat)."""

    flags: int  # SSL_SESSION_RECONNECT when the session was resumed
    session_id: bytes


@attrs.frozen(repr=False, eq=False)
class ConnectionInfo(Value):
    """SecPkgContext_ConnectionInfo (flat)."""

    protocol: int
    cipher: int
    cipher_strength: int
    hash: int
    hash_strength: int
    exchange: int
    exchange_strength: int


@attrs.frozen(repr=False, eq=False)
class CipherInfo(Value):
    """SecPkgContext_CipherInfo (flat, SECPKGCONTEXT_CIPHERINFO_V1): the names are WCHAR[64]
    arrays inside the structure, nothing to free."""

    version: int
    protocol: int
    cipher_suite: int
    base_cipher_suite: int
    cipher_suite_name: str
    cipher: str
    cipher_length: int
    cipher_block_length: int
    hash: str
    hash_length: int
    exchange: str
    min_exchange_length: int
    max_exchange_length: int
    certificate: str
    key_type: int


@attrs.frozen(repr=False, eq=False)
class CertificateContext(Value):
    """A PCCERT_CONTEXT (REMOTE_CERT_CONTEXT, LOCAL_CERT_CONTEXT), the certificate's subject.
    The caller releases it with CertFreeCertificateContext, a CryptoAPI call outside SSPI, so
    statistics() does not count it (ATT-025)."""

    subject: str


@attrs.frozen(repr=False, eq=False)
class IssuerListInfoEx(Value):
    """SecPkgContext_IssuerListInfoEx: the CAs the server's CertificateRequest names (the
    model's names none); aIssuers is package memory when there are any (FreeContextBuffer)."""

    issuers: tuple[str, ...] = ()
    allocation: int | None = None


ContextAttribute = (
    ContextSizes
    | ContextNames
    | ContextLifespan
    | ContextPackageInfo
    | StreamSizes
    | ContextNegotiationInfo
    | ContextNativeNames
    | ContextFlags
    | ContextKeyInfo
    | ContextSessionKey
    | ContextBindings
    | ApplicationProtocol
    | SessionInfo
    | ConnectionInfo
    | CipherInfo
    | CertificateContext
    | IssuerListInfoEx
)


@attrs.frozen(repr=False, eq=False)
class CredentialNames(Value):
    """SecPkgCredentials_Names; the name is package memory (FreeContextBuffer)."""

    user_name: str
    allocation: int


@attrs.frozen(repr=False, eq=False)
class SupportedAlgs(Value):
    """SecPkgCred_SupportedAlgs; the ALG_ID array is package memory."""

    algorithms: tuple[int, ...]
    allocation: int


@attrs.frozen(repr=False, eq=False)
class CipherStrengths(Value):
    """SecPkgCred_CipherStrengths (flat)."""

    minimum: int
    maximum: int


@attrs.frozen(repr=False, eq=False)
class SupportedProtocols(Value):
    """SecPkgCred_SupportedProtocols (flat): SP_PROT_* bits."""

    protocols: int


CredentialAttribute = CredentialNames | SupportedAlgs | CipherStrengths | SupportedProtocols


@attrs.frozen(repr=False, eq=False)
class QueryCredentialsAttributesResult(Value):
    status: SecStatus
    buffer: CredentialAttribute | None = None


@attrs.frozen(repr=False, eq=False)
class QueryContextAttributesResult(Value):
    status: SecStatus
    buffer: ContextAttribute | None = None


@attrs.frozen(repr=False, eq=False)
class EnumerateSecurityPackagesResult(Value):
    status: SecStatus
    packages: tuple[PackageInfo, ...] = ()
    allocation: int | None = None  # the SecPkgInfo array: free with FreeContextBuffer


@attrs.frozen(repr=False, eq=False)
class QuerySecurityPackageInfoResult(Value):
    status: SecStatus
    package_info: PackageInfo | None = None
    allocation: int | None = None


@attrs.frozen(repr=False, eq=False)
class Statistics(Value):
    """What one Sspi instance holds alive."""

    credentials: int  # live credential handles
    orphaned_credentials: int  # freed handles whose credential contexts still reference
    contexts: int
    context_buffers: int  # package allocations not yet passed to FreeContextBuffer
    async_contexts: int = 0
    pending_calls: int = 0

    @property
    def anything_alive(self) -> bool:
        return any(attrs.astuple(self))
