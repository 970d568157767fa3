"""NativeBackend: the Backend protocol over a real SSPI library (sspi-rs's libsspi, secur32.dll).

Arguments go to the library as a C caller would pass them. Handles are passed exactly as given
(stale, zeroed and random values included; None is a NULL pointer); bytes input is one
SECBUFFER_TOKEN; AuthIdentity becomes SEC_WINNT_AUTH_IDENTITY_W (an empty field is NULL); None
auth data is NULL. Statuses the model does not know are returned as plain ints.

ISC/ASC: a first leg (context None) passes a NULL phContext; a continuation passes the handle and
a separate phNewContext holding the same values, which is what the usual in-place call
(phNewContext == phContext) leaves in the caller's handle. `new_context` is that struct after the
call (None on a first leg the library did not write). `expiry` is None when the library left
ptsExpiry alone; `input_after` is None unless the call changed the input buffers.

Output tokens: with ISC/ASC_REQ_ALLOCATE_MEMORY the library allocates (pvBuffer NULL), otherwise
a 48256-byte caller buffer is supplied (sspi-rs never checks cbBuffer, so it must not be too
small). Either way the bytes are copied out and any library memory is freed in the worker, and
`output` is (SecBuffer(type, token),) with allocation None. Allocations the caller owns in C
(package infos, user names) are freed at once too, but their pointers are reported; see calls.py.
"""

from __future__ import annotations

import os
import weakref
from collections.abc import Sequence
from typing import Any, cast

from sspi_model.backends.base import MESSAGE_CALLS, SYNC_CALLS, Capabilities
from sspi_model.backends.native.calls import Buffers, Handle, NativeCalls, Package
from sspi_model.backends.native.discovery import find_library
from sspi_model.backends.native.forked import fork_worker, forking_supported
from sspi_model.backends.native.ledger import HandleLedger
from sspi_model.backends.native.worker import Supervisor
from sspi_model.buffers import SecBuffer, as_buffers
from sspi_model.handles import SecHandle
from sspi_model.packages.ntlm import AuthIdentity
from sspi_model.results import (
    AcquireCredentialsResult,
    ContextAttribute,
    ContextLifespan,
    ContextNames,
    ContextPackageInfo,
    ContextSizes,
    CredentialNames,
    EnumerateSecurityPackagesResult,
    MessageResult,
    PackageInfo,
    QueryContextAttributesResult,
    QueryCredentialsAttributesResult,
    QuerySecurityPackageInfoResult,
    SecurityContextResult,
    StreamSizes,
)
from sspi_model.status import SecStatus

SECURITY_NATIVE_DREP = 0x10


def status_of(code: int) -> SecStatus:
    """SecStatus(code) when the model knows the value, else the plain int (typed as SecStatus
    so results keep their field types; it still compares and prints as a number)."""
    try:
        return SecStatus(code)
    except ValueError:
        return cast(SecStatus, code)


def _handle(value: Any, parameter: str) -> Handle:
    if value is None:
        return None
    if not isinstance(value, SecHandle):
        raise TypeError(f"{parameter} must be a SecHandle or None, got {type(value).__name__}")
    return (int(value.lower), int(value.upper))


def _u32(value: Any, parameter: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{parameter} must be an int, got {type(value).__name__}")
    if not 0 <= value <= 0xFFFFFFFF:
        raise ValueError(f"{parameter} must fit a 32-bit ULONG, got {value}")
    return int(value)  # a plain int: the worker has no enum classes to unpickle


def _text(value: Any, parameter: str) -> str | None:
    if value is not None and not isinstance(value, str):
        raise TypeError(f"{parameter} must be a str or None, got {type(value).__name__}")
    return None if value is None else str(value)


# The worker puts at least cbBuffer bytes behind each buffer it passes (calls.py), as a C
# caller's allocation would be; above this it refuses instead of allocating gigabytes (ROB-009).
MAX_CALLER_BUFFER = 1 << 24


def _buffers(value: bytes | Sequence[SecBuffer] | None, parameter: str) -> Buffers:
    buffers = as_buffers(value, parameter)
    if buffers is None:
        return None
    for buffer in buffers:
        if buffer.cb > max(len(buffer.data), MAX_CALLER_BUFFER):  # ROB-009
            raise ValueError(
                f"{parameter}: SecBuffer.size {buffer.cb} is more than the {MAX_CALLER_BUFFER} "
                "bytes the native backend allocates behind a caller's buffer (ROB-009)"
            )
    return tuple((int(b.buffer_type), bytes(b.data), int(b.cb)) for b in buffers)


def _sec_buffers(raw: Sequence[tuple[int, bytes, int]]) -> tuple[SecBuffer, ...]:
    return tuple(
        SecBuffer(kind, data, None if cb == len(data) else cb) for kind, data, cb in raw
    )


def _package(raw: Package) -> PackageInfo:
    return PackageInfo(*raw)


def _library_name(library: str) -> str:
    base = os.path.basename(library).lower()
    if base.startswith("libsspi"):
        return "sspi-rs"
    if base.startswith("secur32"):
        return "secur32"
    return base.split(".")[0]


class NativeBackend:
    """One real SSPI library, normally in an isolated worker process (see worker.py).

    `timeout` bounds each call (HANG after it). `isolate=False` calls the library in this
    process: no crash or hang protection, and reset() cannot forget the library's state.
    `fork` (POSIX; the default there) forks each worker from a zygote that loaded the library
    once (zygote.py), so reset() costs a fork instead of an interpreter and a library load;
    with fork=False, `spare` keeps a worker started ahead of time (one per library, shared by
    all instances in this process), so a new backend or the first call after reset() does not
    wait for a start. With `reuse` (the default) reset() keeps a worker whose library state is
    still defined (ledger.py, CMP-001) for up to `reuse_limit` examples, and retires it after
    a crash, a hang or a call that passed the library a handle it did not issue or already
    freed; the next call then takes a fresh one (a fork, or the spare).
    """

    def __init__(
        self,
        library: str | os.PathLike[str] | None = None,
        *,
        timeout: float = 5.0,
        isolate: bool = True,
        spare: bool = True,
        fork: bool = True,
        reuse: bool = True,
        reuse_limit: int = 200,
    ) -> None:
        self.library = find_library(library)
        self.reuse, self.reuse_limit = reuse, reuse_limit
        self._supervisor: Supervisor | None = None
        self._local: NativeCalls | None = None
        if isolate:
            if fork and forking_supported():
                # A fork from the zygote is the cheap start: no spare is kept beside it.
                library = self.library
                self._supervisor = Supervisor(
                    library, timeout, spare=False, start=lambda: fork_worker(library)
                )
            else:
                self._supervisor = Supervisor(self.library, timeout, spare=spare)
            packages = self._supervisor.packages
            self._finalizer = weakref.finalize(self, self._supervisor.close)
        else:
            self._local = NativeCalls(self.library)
            packages = self._local.startup_packages()
        self.capabilities = Capabilities(
            name=_library_name(self.library),
            packages=frozenset(name for name, *_ in packages),
            calls=frozenset(SYNC_CALLS + MESSAGE_CALLS),
            async_api=False,
        )

    # A subclass that starts its own Supervisor without calling __init__ (the agent backend)
    # keeps a fresh worker per reset, as before CMP-001.
    reuse = False
    reuse_limit = 200
    examples_served = 0  # resets the current worker has been kept through
    _ledger: HandleLedger | None = None

    @property
    def ledger(self) -> HandleLedger:
        """The handles the current worker's library issued (CMP-001)."""
        if self._ledger is None:
            self._ledger = HandleLedger()
        return self._ledger

    def __repr__(self) -> str:
        return f"NativeBackend({self.library!r})"

    @property
    def worker_pid(self) -> int | None:
        """The pid of the isolated worker serving the next call (None without isolation)."""
        return self._supervisor.worker_pid if self._supervisor else None

    @property
    def timeout(self) -> float:
        return self._supervisor.timeout if self._supervisor else float("inf")

    @timeout.setter
    def timeout(self, seconds: float) -> None:
        if self._supervisor is not None:
            self._supervisor.timeout = seconds

    def _call(self, name: str, *args: Any) -> Any:
        if self._supervisor is not None:
            return self._supervisor.call(name, *args)
        assert self._local is not None
        return getattr(self._local, name)(*args)

    # -- packages ----------------------------------------------------------------------------

    def enumerate_security_packages(self) -> EnumerateSecurityPackagesResult:
        status, packages, allocation = self._call("enumerate_security_packages")
        return EnumerateSecurityPackagesResult(
            status_of(status), tuple(_package(p) for p in packages), allocation
        )

    def query_security_package_info(
        self, package_name: str | None
    ) -> QuerySecurityPackageInfoResult:
        name = _text(package_name, "package_name")
        status, package, allocation = self._call("query_security_package_info", name)
        info = None if package is None else _package(package)
        return QuerySecurityPackageInfoResult(status_of(status), info, allocation)

    def free_context_buffer(self, buffer: int | None) -> SecStatus:
        if buffer is not None and (isinstance(buffer, bool) or not isinstance(buffer, int)):
            raise TypeError(f"buffer must be an int or None, got {type(buffer).__name__}")
        if buffer is not None and not 0 <= buffer < 1 << 64:
            raise ValueError(f"buffer must be a 64-bit pointer value, got {buffer}")
        address = None if buffer is None else int(buffer)
        self.ledger.pass_buffer(address)
        return status_of(self._call("free_context_buffer", address))

    # -- credentials -------------------------------------------------------------------------

    def acquire_credentials_handle(
        self,
        package: str | None,
        credential_use: int,
        auth_data: Any = None,
        *,
        principal: str | None = None,
    ) -> AcquireCredentialsResult:
        if auth_data is not None and not isinstance(auth_data, AuthIdentity):
            raise TypeError(
                f"auth_data must be an AuthIdentity or None, got {type(auth_data).__name__}"
            )
        identity = (
            None if auth_data is None
            else (str(auth_data.user), str(auth_data.domain), str(auth_data.password))
        )
        status, handle, expiry = self._call(
            "acquire_credentials_handle",
            _text(package, "package"),
            _u32(credential_use, "credential_use"),
            identity,
            _text(principal, "principal"),
        )
        self.ledger.issued_credential(handle)
        credential = None if handle is None else SecHandle(*handle)
        return AcquireCredentialsResult(status_of(status), credential, expiry)

    def free_credentials_handle(self, credential: SecHandle | None) -> SecStatus:
        handle = self._pass_credential(credential, "FreeCredentialsHandle")
        status = self._call("free_credentials_handle", handle)
        self.ledger.freed_credential(handle)
        return status_of(status)

    # -- security contexts -------------------------------------------------------------------

    def initialize_security_context(
        self,
        credential: SecHandle | None = None,
        context: SecHandle | None = None,
        target_name: str | None = None,
        context_req: int = 0,
        input: bytes | Sequence[SecBuffer] | None = None,
        *,
        target_data_rep: int = SECURITY_NATIVE_DREP,
    ) -> SecurityContextResult:
        handles = self._pass_leg("InitializeSecurityContextW", credential, context)
        raw = self._call(
            "initialize_security_context",
            *handles,
            _text(target_name, "target_name"),
            _u32(context_req, "context_req"),
            _buffers(input, "input"),
            _u32(target_data_rep, "target_data_rep"),
        )
        self.ledger.issued_context(raw[1], handles[0])
        return _context_result(raw)

    def accept_security_context(
        self,
        credential: SecHandle | None = None,
        context: SecHandle | None = None,
        input: bytes | Sequence[SecBuffer] | None = None,
        context_req: int = 0,
        *,
        target_data_rep: int = SECURITY_NATIVE_DREP,
    ) -> SecurityContextResult:
        handles = self._pass_leg("AcceptSecurityContext", credential, context)
        raw = self._call(
            "accept_security_context",
            *handles,
            _buffers(input, "input"),
            _u32(context_req, "context_req"),
            _u32(target_data_rep, "target_data_rep"),
        )
        self.ledger.issued_context(raw[1], handles[0])
        return _context_result(raw)

    def _pass_leg(
        self, call: str, credential: SecHandle | None, context: SecHandle | None
    ) -> tuple[Handle, Handle]:
        handles = _handle(credential, "credential"), _handle(context, "context")
        self.ledger.pass_credential(handles[0], call)  # after both type checks: a TypeError
        self.ledger.pass_context(handles[1], call)  # reaches no library and retires no worker
        return handles

    def _pass_credential(self, credential: SecHandle | None, call: str) -> Handle:
        handle = _handle(credential, "credential")
        self.ledger.pass_credential(handle, call)
        return handle

    def _pass_context(self, context: SecHandle | None, call: str) -> Handle:
        handle = _handle(context, "context")
        self.ledger.pass_context(handle, call)
        return handle

    def complete_auth_token(
        self, context: SecHandle | None, token: bytes | Sequence[SecBuffer] | None
    ) -> SecStatus:
        handle = self._pass_context(context, "CompleteAuthToken")
        return status_of(self._call("complete_auth_token", handle, _buffers(token, "token")))

    def delete_security_context(self, context: SecHandle | None) -> SecStatus:
        handle = self._pass_context(context, "DeleteSecurityContext")
        status = self._call("delete_security_context", handle)
        self.ledger.deleted_context(handle)
        return status_of(status)

    def query_context_attributes(
        self, context: SecHandle | None, attribute: int
    ) -> QueryContextAttributesResult:
        status, decoded = self._call(
            "query_context_attributes",
            self._pass_context(context, "QueryContextAttributesW"),
            _u32(attribute, "attribute"),
        )
        return QueryContextAttributesResult(status_of(status), _attribute(decoded))

    def query_credentials_attributes(
        self, credential: SecHandle | None, attribute: int
    ) -> QueryCredentialsAttributesResult:
        status, decoded = self._call(
            "query_credentials_attributes",
            self._pass_credential(credential, "QueryCredentialsAttributesW"),
            _u32(attribute, "attribute"),
        )
        # calls.py decodes SECPKG_CRED_ATTR_NAMES only (the attribute sspi-rs could answer).
        names = None if decoded is None else CredentialNames(*decoded[1])
        return QueryCredentialsAttributesResult(status_of(status), names)

    def apply_control_token(
        self, context: SecHandle | None, input: bytes | Sequence[SecBuffer] | None
    ) -> MessageResult:
        status, written = self._call(
            "apply_control_token",
            self._pass_context(context, "ApplyControlToken"),
            _buffers(input, "input"),
        )
        return MessageResult(status_of(status), _sec_buffers(written))

    # -- message functions (MSG rules) --------------------------------------------------------

    def _message(
        self, call: str, context: SecHandle | None, qop: int, message: Any, seq_no: int
    ) -> MessageResult:
        status, written, found = self._call(
            "message",
            call,
            self._pass_context(context, call),
            _u32(qop, "qop"),
            _buffers(message, "message"),
            _u32(seq_no, "seq_no"),
        )
        return MessageResult(status_of(status), _sec_buffers(written), found)

    def make_signature(
        self, context: SecHandle | None, qop: int, message: Any, seq_no: int = 0
    ) -> MessageResult:
        return self._message("MakeSignature", context, qop, message, seq_no)

    def verify_signature(
        self, context: SecHandle | None, message: Any, seq_no: int = 0
    ) -> MessageResult:
        return self._message("VerifySignature", context, 0, message, seq_no)

    def encrypt_message(
        self, context: SecHandle | None, qop: int, message: Any, seq_no: int = 0
    ) -> MessageResult:
        return self._message("EncryptMessage", context, qop, message, seq_no)

    def decrypt_message(
        self, context: SecHandle | None, message: Any, seq_no: int = 0
    ) -> MessageResult:
        return self._message("DecryptMessage", context, 0, message, seq_no)

    # -- lifetime ----------------------------------------------------------------------------

    def reset(self) -> None:
        """A worker whose library state is as defined as a fresh one's: the current worker
        while it is (CMP-001), else a fresh one, where every handle of the old one is gone."""
        if self._supervisor is None:
            return
        keep = (
            self.reuse
            and self._supervisor.healthy
            and not self.ledger.suspect
            and self.examples_served < self.reuse_limit
        )
        if keep:  # CMP-001: nothing undefined happened, so the worker serves another example
            self.examples_served += 1
            return
        self._supervisor.reset()  # CMP-001: crashed, hung, misused or served its share
        self._ledger, self.examples_served = HandleLedger(), 0

    def close(self) -> None:
        if self._supervisor is not None:
            self._finalizer()

    def __enter__(self) -> NativeBackend:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def _context_result(raw: tuple[Any, ...]) -> SecurityContextResult:
    status, handle, output, attr, expiry, input_after = raw
    return SecurityContextResult(
        status_of(status),
        None if handle is None else SecHandle(*handle),
        tuple(SecBuffer(kind, data) for kind, data in output),
        attr,
        expiry,
        None if input_after is None else _sec_buffers(input_after),
    )


def _attribute(decoded: tuple[str, Any] | None) -> ContextAttribute | None:
    if decoded is None:
        return None
    kind, fields = decoded
    if kind == "sizes":
        return ContextSizes(*fields)
    if kind == "stream_sizes":
        return StreamSizes(*fields)
    if kind == "lifespan":
        return ContextLifespan(*fields)
    if kind == "names":
        return ContextNames(*fields)
    package, allocation = fields
    return ContextPackageInfo(_package(package), allocation)
