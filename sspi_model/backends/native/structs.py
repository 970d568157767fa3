"""ctypes mirrors of the sspi.h structures and prototypes, shared by secur32.dll and libsspi.

Windows is LLP64, so ULONG is 32 bits everywhere; sspi-rs uses the same layout on Linux. Wide
strings are UTF-16 on both (sspi-rs takes `*const u16`), so `c_wchar_p` (UTF-32 on Linux) is
never used: strings are built and read as arrays of c_uint16.

This module imports only the standard library: the worker process loads it without site-packages.
"""

from __future__ import annotations

import ctypes
import os

TYPE_CHECKING = False  # see calls.py
if TYPE_CHECKING:
    from typing import Any

ULONG = ctypes.c_uint32
USHORT = ctypes.c_uint16
ULONG_PTR = ctypes.c_uint64
SECURITY_STATUS = ctypes.c_uint32  # a LONG in C; read unsigned so it compares with SecStatus
WCHAR = ctypes.c_uint16
PWSTR = ctypes.POINTER(WCHAR)

SECBUFFER_VERSION = 0
SECBUFFER_TOKEN = 2
SEC_WINNT_AUTH_IDENTITY_UNICODE = 2


class SecHandle(ctypes.Structure):
    _fields_ = [("dwLower", ULONG_PTR), ("dwUpper", ULONG_PTR)]


class SecBuffer(ctypes.Structure):
    _fields_ = [("cbBuffer", ULONG), ("BufferType", ULONG), ("pvBuffer", ctypes.c_void_p)]


class SecBufferDesc(ctypes.Structure):
    _fields_ = [
        ("ulVersion", ULONG),
        ("cBuffers", ULONG),
        ("pBuffers", ctypes.POINTER(SecBuffer)),
    ]


class SEC_WINNT_AUTH_IDENTITY_W(ctypes.Structure):
    _fields_ = [
        ("User", PWSTR),
        ("UserLength", ULONG),
        ("Domain", PWSTR),
        ("DomainLength", ULONG),
        ("Password", PWSTR),
        ("PasswordLength", ULONG),
        ("Flags", ULONG),
    ]


class TimeStamp(ctypes.Structure):
    """LARGE_INTEGER as its two halves; `value` is the signed 64-bit number."""

    _fields_ = [("LowPart", ULONG), ("HighPart", ctypes.c_int32)]

    @property
    def value(self) -> int:
        return int(self.HighPart) << 32 | int(self.LowPart)

    @value.setter
    def value(self, number: int) -> None:
        self.LowPart = number & 0xFFFFFFFF
        self.HighPart = number >> 32


class SecPkgInfoW(ctypes.Structure):
    _fields_ = [
        ("fCapabilities", ULONG),
        ("wVersion", USHORT),
        ("wRPCID", USHORT),
        ("cbMaxToken", ULONG),
        ("Name", PWSTR),
        ("Comment", PWSTR),
    ]


class SecPkgContext_Sizes(ctypes.Structure):
    _fields_ = [
        ("cbMaxToken", ULONG),
        ("cbMaxSignature", ULONG),
        ("cbBlockSize", ULONG),
        ("cbSecurityTrailer", ULONG),
    ]


class SecPkgContext_StreamSizes(ctypes.Structure):
    _fields_ = [
        ("cbHeader", ULONG),
        ("cbTrailer", ULONG),
        ("cbMaximumMessage", ULONG),
        ("cBuffers", ULONG),
        ("cbBlockSize", ULONG),
    ]


class SecPkgContext_NamesW(ctypes.Structure):
    _fields_ = [("sUserName", PWSTR)]


class SecPkgContext_Lifespan(ctypes.Structure):
    _fields_ = [("tsStart", TimeStamp), ("tsExpiry", TimeStamp)]


class SecPkgContext_PackageInfoW(ctypes.Structure):
    _fields_ = [("PackageInfo", ctypes.POINTER(SecPkgInfoW))]


class SecPkgCredentials_NamesW(ctypes.Structure):
    _fields_ = [("sUserName", PWSTR)]


_P = ctypes.POINTER
_VOIDP = ctypes.c_void_p

# name -> (argtypes); every function returns SECURITY_STATUS.
PROTOTYPES: dict[str, tuple[Any, ...]] = {
    "AcquireCredentialsHandleW": (
        PWSTR, PWSTR, ULONG, _VOIDP, _VOIDP, _VOIDP, _VOIDP, _P(SecHandle), _P(TimeStamp),
    ),
    "InitializeSecurityContextW": (
        _P(SecHandle), _P(SecHandle), PWSTR, ULONG, ULONG, ULONG, _P(SecBufferDesc), ULONG,
        _P(SecHandle), _P(SecBufferDesc), _P(ULONG), _P(TimeStamp),
    ),
    "AcceptSecurityContext": (
        _P(SecHandle), _P(SecHandle), _P(SecBufferDesc), ULONG, ULONG, _P(SecHandle),
        _P(SecBufferDesc), _P(ULONG), _P(TimeStamp),
    ),
    "CompleteAuthToken": (_P(SecHandle), _P(SecBufferDesc)),
    "DeleteSecurityContext": (_P(SecHandle),),
    "FreeCredentialsHandle": (_P(SecHandle),),
    "QueryContextAttributesW": (_P(SecHandle), ULONG, _VOIDP),
    "FreeContextBuffer": (_VOIDP,),
    "EnumerateSecurityPackagesW": (_P(ULONG), _P(_P(SecPkgInfoW))),
    "QuerySecurityPackageInfoW": (PWSTR, _P(_P(SecPkgInfoW))),
    # The message functions (MSG rules): context, [fQOP,] pMessage, MessageSeqNo[, pfQOP].
    "MakeSignature": (_P(SecHandle), ULONG, _P(SecBufferDesc), ULONG),
    "VerifySignature": (_P(SecHandle), _P(SecBufferDesc), ULONG, _P(ULONG)),
    "EncryptMessage": (_P(SecHandle), ULONG, _P(SecBufferDesc), ULONG),
    "DecryptMessage": (_P(SecHandle), _P(SecBufferDesc), ULONG, _P(ULONG)),
    "ApplyControlToken": (_P(SecHandle), _P(SecBufferDesc)),
    "QueryCredentialsAttributesW": (_P(SecHandle), ULONG, _VOIDP),
}


OPTIONAL = frozenset({
    "MakeSignature", "VerifySignature", "EncryptMessage", "DecryptMessage", "ApplyControlToken",
    "QueryCredentialsAttributesW",
})


def load(path: str) -> Any:
    """Open the library and give every function its prototype (stdcall DLL on Windows)."""
    loader = ctypes.WinDLL if os.name == "nt" else ctypes.CDLL  # type: ignore[attr-defined,unused-ignore]  # WinDLL exists only on Windows
    library = loader(path)
    for name, argtypes in PROTOTYPES.items():
        if name in OPTIONAL and not hasattr(library, name):
            continue  # a library without the message functions still loads
        function = getattr(library, name)
        function.argtypes = argtypes
        function.restype = SECURITY_STATUS
    return library


def wide(text: str | None) -> Any:
    """A NUL-terminated UTF-16 array for `text` (None -> None, i.e. a NULL pointer)."""
    if text is None:
        return None
    data = text.encode("utf-16-le", "surrogatepass") + b"\0\0"
    return (WCHAR * (len(data) // 2)).from_buffer_copy(data)


def read_wide(pointer: Any) -> str | None:
    """Decode a NUL-terminated UTF-16 string the library returned (NULL -> None)."""
    if not pointer:
        return None
    address = ctypes.cast(pointer, ctypes.c_void_p).value
    assert address is not None
    units = ctypes.cast(address, PWSTR)
    length = 0
    while units[length]:
        length += 1
    return ctypes.string_at(address, 2 * length).decode("utf-16-le", "surrogatepass")
