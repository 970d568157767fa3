"""The SSPI calls on plain data: what the worker process (or, unisolated, the caller) runs.

Arguments and results are tuples of ints, bytes and str, so they cross a pipe as they are:
  handle   None (a NULL pointer) or (dwLower, dwUpper), passed to the library exactly as given
  buffers  None (a NULL SecBufferDesc*) or ((BufferType, data, cbBuffer), ...)
  package  (name, comment, fCapabilities, wVersion, wRPCID, cbMaxToken)

Memory the library allocates is copied out and released with FreeContextBuffer at once, inside
this process, so nothing leaks when the caller never frees it. Pointers of allocations the
caller owns in C (package infos, user names) are still reported; the caller's later
FreeContextBuffer of such a pointer is answered SEC_E_OK here without calling the library, once
per report. Output tokens are reported without a pointer (the caller has nothing to free).

This module imports only the standard library (see structs.py).
"""

from __future__ import annotations

import ctypes

from sspi_model.backends.native import structs as s

TYPE_CHECKING = False  # typing costs milliseconds of worker start; only mypy needs it
if TYPE_CHECKING:
    from collections.abc import Sequence
    from typing import Any

Handle = tuple[int, int] | None
Buffer = tuple[int, bytes, int]
Buffers = tuple[Buffer, ...] | None
Package = tuple[str, str, int, int, int, int]

# Larger than any cbMaxToken the libraries report (48000): sspi-rs writes past cbBuffer instead
# of failing, so a caller buffer must never be too small.
OUTPUT_CAPACITY = 48256
# ptsExpiry is prefilled with this; if it is still there, the library did not write it.
EXPIRY_SENTINEL = 0x5A5A5A5A5A5A5A5A
# QueryContextAttributes writes an attribute-specific structure; this is room for any of them.
QCA_SCRATCH = 1024
ALLOCATE_MEMORY = 0x100  # ISC_REQ_ALLOCATE_MEMORY == ASC_REQ_ALLOCATE_MEMORY

_SIZES, _NAMES, _LIFESPAN, _STREAM_SIZES, _PACKAGE_INFO = 0, 1, 2, 4, 10
_CRED_NAMES = 1  # SECPKG_CRED_ATTR_NAMES


def _handle_pointer(handle: Handle) -> Any:
    return None if handle is None else ctypes.pointer(s.SecHandle(*handle))


def _values(struct: ctypes.Structure) -> tuple[int, ...]:
    return tuple(getattr(struct, field[0]) for field in struct._fields_)


def _expiry() -> s.TimeStamp:
    stamp = s.TimeStamp()
    stamp.value = EXPIRY_SENTINEL
    return stamp


def _expiry_value(stamp: s.TimeStamp) -> int | None:
    return None if stamp.value == EXPIRY_SENTINEL else stamp.value


class _Descriptor:
    """A SecBufferDesc over copies of the caller's buffers, and what the call did to them."""

    def __init__(self, buffers: Sequence[Buffer]) -> None:
        self.array = (s.SecBuffer * len(buffers))()
        self.storage: list[Any] = []
        self.before: list[tuple[int, int, int | None]] = []
        for index, (buffer_type, data, cb) in enumerate(buffers):
            pointer = None
            if data or cb:
                # At least cbBuffer bytes behind the pointer, so the library never reads beyond.
                store = ctypes.create_string_buffer(data, max(cb, len(data)))
                self.storage.append(store)
                pointer = ctypes.addressof(store)
            self.array[index] = s.SecBuffer(cb, buffer_type, pointer)
            self.before.append((cb, buffer_type, pointer))
        # pBuffers is never NULL, even for no buffers: an empty array, as a C caller's would be.
        self.desc = s.SecBufferDesc(s.SECBUFFER_VERSION, len(buffers), self.array)

    def changed(self) -> tuple[Buffer, ...] | None:
        """The buffers as the call left them, or None when it changed nothing."""
        after = [(b.cbBuffer, b.BufferType, b.pvBuffer) for b in self.array]
        if after == self.before:
            return None
        return tuple((kind, self._read(pointer, cb), cb) for cb, kind, pointer in after)

    def now(self) -> tuple[Buffer, ...]:
        """Every buffer as the call left it (a message call writes in place, so the pointers
        and sizes may not change while the bytes do)."""
        return tuple(
            (b.BufferType, self._read(b.pvBuffer, b.cbBuffer), b.cbBuffer) for b in self.array
        )

    def _read(self, pointer: int | None, cb: int) -> bytes:
        # Only memory this process owns is read: a pointer into one of our copies.
        for store in self.storage:
            start = ctypes.addressof(store)
            if pointer is not None and start <= pointer < start + len(store):
                end = min(pointer + cb, start + len(store))
                return ctypes.string_at(pointer, end - pointer)
        return b""


def _descriptor(buffers: Buffers) -> tuple[_Descriptor | None, Any]:
    if buffers is None:
        return None, None
    descriptor = _Descriptor(buffers)
    return descriptor, ctypes.pointer(descriptor.desc)


class NativeCalls:
    """The loaded library and the calls the Backend protocol needs, on plain data."""

    def __init__(self, path: str) -> None:
        self.lib = s.load(path)
        self._released: dict[int, int] = {}  # pointer -> reports the caller has not freed yet

    def _release(self, pointer: Any) -> int | None:
        address = ctypes.cast(pointer, ctypes.c_void_p).value
        if address:
            self.lib.FreeContextBuffer(address)
            self._released[address] = self._released.get(address, 0) + 1
        return address

    def startup_packages(self) -> tuple[Package, ...]:
        """The package list for Capabilities. Every worker makes this call first, so all
        workers start from the same library state; its pointer is never reported."""
        _status, packages, allocation = self.enumerate_security_packages()
        self._released.pop(allocation or 0, None)
        return packages

    @staticmethod
    def _package(info: s.SecPkgInfoW) -> Package:
        return (
            s.read_wide(info.Name) or "",
            s.read_wide(info.Comment) or "",
            info.fCapabilities,
            info.wVersion,
            info.wRPCID,
            info.cbMaxToken,
        )

    def enumerate_security_packages(self) -> tuple[int, tuple[Package, ...], int | None]:
        count = s.ULONG(0)
        infos = ctypes.POINTER(s.SecPkgInfoW)()
        status = self.lib.EnumerateSecurityPackagesW(ctypes.byref(count), ctypes.byref(infos))
        packages: tuple[Package, ...] = ()
        if status == 0 and infos:
            packages = tuple(self._package(infos[i]) for i in range(count.value))
        return status, packages, self._release(infos)

    def query_security_package_info(
        self, name: str | None
    ) -> tuple[int, Package | None, int | None]:
        info = ctypes.POINTER(s.SecPkgInfoW)()
        status = self.lib.QuerySecurityPackageInfoW(s.wide(name), ctypes.byref(info))
        package = self._package(info[0]) if status == 0 and info else None
        return status, package, self._release(info)

    def acquire_credentials_handle(
        self,
        package: str | None,
        use: int,
        identity: tuple[str, str, str] | None,
        principal: str | None,
    ) -> tuple[int, Handle, int | None]:
        auth = None
        keep = []  # the strings must outlive the call
        if identity is not None:
            # An empty field is a NULL pointer with length 0, as C callers write it.
            keep = [s.wide(part or None) for part in identity]
            fields: list[Any] = []
            for array in keep:
                fields += [ctypes.cast(array, s.PWSTR), 0 if array is None else len(array) - 1]
            auth = s.SEC_WINNT_AUTH_IDENTITY_W(*fields, s.SEC_WINNT_AUTH_IDENTITY_UNICODE)
        credential = s.SecHandle(0, 0)
        expiry = _expiry()
        status = self.lib.AcquireCredentialsHandleW(
            s.wide(principal), s.wide(package), use, None,
            None if auth is None else ctypes.pointer(auth), None, None,
            ctypes.byref(credential), ctypes.byref(expiry),
        )
        written = (credential.dwLower, credential.dwUpper)
        return status, (None if written == (0, 0) else written), _expiry_value(expiry)

    def free_credentials_handle(self, credential: Handle) -> int:
        return int(self.lib.FreeCredentialsHandle(_handle_pointer(credential)))

    def initialize_security_context(
        self,
        credential: Handle,
        context: Handle,
        target: str | None,
        req: int,
        inputs: Buffers,
        data_rep: int,
    ) -> tuple[Any, ...]:
        return self._leg(True, credential, context, target, req, inputs, data_rep)

    def accept_security_context(
        self, credential: Handle, context: Handle, inputs: Buffers, req: int, data_rep: int
    ) -> tuple[Any, ...]:
        return self._leg(False, credential, context, None, req, inputs, data_rep)

    def _leg(
        self,
        client: bool,
        credential: Handle,
        context: Handle,
        target: str | None,
        req: int,
        inputs: Buffers,
        data_rep: int,
    ) -> tuple[Any, ...]:
        """One ISC/ASC call -> (status, new handle, ((type, token),), attr, expiry, input after).

        phNewContext is a separate struct holding the same values as phContext (what the usual
        in-place `phNewContext == phContext` leaves in the caller's handle), or {0, 0} on a
        first leg, where phContext is NULL.
        """
        new = s.SecHandle(*(context or (0, 0)))
        in_desc, in_pointer = _descriptor(inputs)
        out = s.SecBuffer(0, s.SECBUFFER_TOKEN, None)  # NULL: the library allocates
        store = None
        if not req & ALLOCATE_MEMORY:
            store = ctypes.create_string_buffer(OUTPUT_CAPACITY)
            out.cbBuffer, out.pvBuffer = OUTPUT_CAPACITY, ctypes.addressof(store)
        out_desc = s.SecBufferDesc(s.SECBUFFER_VERSION, 1, ctypes.pointer(out))
        attr = s.ULONG(0)
        expiry = _expiry()
        common = (
            ctypes.byref(new), ctypes.byref(out_desc), ctypes.byref(attr), ctypes.byref(expiry),
        )
        if client:
            status = self.lib.InitializeSecurityContextW(
                _handle_pointer(credential), _handle_pointer(context), s.wide(target), req, 0,
                data_rep, in_pointer, 0, *common,
            )
        else:
            status = self.lib.AcceptSecurityContext(
                _handle_pointer(credential), _handle_pointer(context), in_pointer, req, data_rep,
                *common,
            )
        written = (new.dwLower, new.dwUpper)
        new_handle = None if context is None and written == (0, 0) else written
        output = ((out.BufferType, self._take_token(out, store)),)
        after = None if in_desc is None else in_desc.changed()
        return status, new_handle, output, attr.value, _expiry_value(expiry), after

    def _take_token(self, out: s.SecBuffer, store: Any) -> bytes:
        pointer, cb = out.pvBuffer, out.cbBuffer
        if not pointer:
            return b""
        if store is not None and pointer == ctypes.addressof(store):
            # cbBuffer still equal to the capacity means the library wrote nothing.
            return b"" if cb == OUTPUT_CAPACITY else store.raw[: min(cb, OUTPUT_CAPACITY)]
        token = ctypes.string_at(pointer, cb)
        self.lib.FreeContextBuffer(pointer)  # the library allocated it (ALLOCATE_MEMORY)
        return token

    def complete_auth_token(self, context: Handle, token: Buffers) -> int:
        _desc, pointer = _descriptor(token)
        return int(self.lib.CompleteAuthToken(_handle_pointer(context), pointer))

    def delete_security_context(self, context: Handle) -> int:
        return int(self.lib.DeleteSecurityContext(_handle_pointer(context)))

    def query_context_attributes(
        self, context: Handle, attribute: int
    ) -> tuple[int, tuple[str, Any] | None]:
        """(status, (kind, fields)) for the attributes decoded here, else (status, None)."""
        scratch = ctypes.create_string_buffer(QCA_SCRATCH)
        status = self.lib.QueryContextAttributesW(_handle_pointer(context), attribute, scratch)
        if status != 0:
            return status, None
        if attribute == _SIZES:
            sizes = s.SecPkgContext_Sizes.from_buffer(scratch)
            return status, ("sizes", _values(sizes))
        if attribute == _STREAM_SIZES:
            ss = s.SecPkgContext_StreamSizes.from_buffer(scratch)
            return status, ("stream_sizes", _values(ss))
        if attribute == _LIFESPAN:
            span = s.SecPkgContext_Lifespan.from_buffer(scratch)
            return status, ("lifespan", (span.tsStart.value, span.tsExpiry.value))
        if attribute == _NAMES:
            pointer = s.SecPkgContext_NamesW.from_buffer(scratch).sUserName
            name = s.read_wide(pointer) or ""
            return status, ("names", (name, self._release(pointer) or 0))
        if attribute == _PACKAGE_INFO:
            info = s.SecPkgContext_PackageInfoW.from_buffer(scratch).PackageInfo
            if not info:
                return status, None
            package = self._package(info[0])
            return status, ("package_info", (package, self._release(info) or 0))
        return status, None

    def message(
        self, call: str, context: Handle, qop: int, buffers: Buffers, seq: int
    ) -> tuple[int, tuple[Buffer, ...], int | None]:
        """MakeSignature / VerifySignature / EncryptMessage / DecryptMessage -> (status, the
        buffers as the call left them, pfQOP or None)."""
        function = getattr(self.lib, call, None)
        if function is None:  # the library does not export it
            return 0x80090302, (), None  # SEC_E_UNSUPPORTED_FUNCTION
        descriptor, pointer = _descriptor(buffers)
        handle = _handle_pointer(context)
        found = s.ULONG(0xFFFFFFFF)  # still there: the library did not write pfQOP
        if call in ("MakeSignature", "EncryptMessage"):
            status = function(handle, qop, pointer, seq)
        else:
            status = function(handle, pointer, seq, ctypes.byref(found))
        written = () if descriptor is None else descriptor.now()
        return int(status), written, None if found.value == 0xFFFFFFFF else found.value

    def apply_control_token(
        self, context: Handle, buffers: Buffers
    ) -> tuple[int, tuple[Buffer, ...]]:
        """ApplyControlToken -> (status, the input buffers as the call left them)."""
        function = getattr(self.lib, "ApplyControlToken", None)
        if function is None:
            return 0x80090302, ()  # SEC_E_UNSUPPORTED_FUNCTION: the library does not export it
        descriptor, pointer = _descriptor(buffers)
        status = function(_handle_pointer(context), pointer)
        return int(status), () if descriptor is None else descriptor.now()

    def query_credentials_attributes(
        self, credential: Handle, attribute: int
    ) -> tuple[int, tuple[str, Any] | None]:
        """(status, ("names", (user name, its pointer))) for SECPKG_CRED_ATTR_NAMES, else
        (status, None): the attribute decoded here."""
        function = getattr(self.lib, "QueryCredentialsAttributesW", None)
        if function is None:
            return 0x80090302, None  # SEC_E_UNSUPPORTED_FUNCTION
        scratch = ctypes.create_string_buffer(QCA_SCRATCH)
        status = function(_handle_pointer(credential), attribute, scratch)
        if status != 0 or attribute != _CRED_NAMES:
            return int(status), None
        pointer = s.SecPkgCredentials_NamesW.from_buffer(scratch).sUserName
        name = s.read_wide(pointer) or ""
        return int(status), ("names", (name, self._release(pointer) or 0))

    def free_context_buffer(self, address: int | None) -> int:
        pending = self._released.get(address or 0, 0)
        if address and pending:
            # Already released when it was copied out: answer as the caller's own free would.
            if pending == 1:
                del self._released[address]
            else:
                self._released[address] = pending - 1
            return 0
        return int(self.lib.FreeContextBuffer(address))
