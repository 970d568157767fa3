"""SecHandle, and the encoding that lets one instance recognise every handle it ever issued.

A handle this model issues carries, in its own bits, which instance issued it, which kind of
object it names and a serial that never repeats (HDL-002, HDL-003). So a stale handle is told
apart from a never-issued one without remembering retired handles: memory stays flat however
many objects come and go.
"""

from __future__ import annotations

import enum
import itertools
from typing import Any

import attrs

from sspi_model.values import Value

ULONG_PTR_MAX = (1 << 64) - 1


def _ulong_ptr(instance: Any, attribute: attrs.Attribute[int], value: Any) -> None:  # HDL-009
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"SecHandle.{attribute.name} must be an int, got {type(value).__name__}")
    if not 0 <= value <= ULONG_PTR_MAX:
        raise ValueError(f"SecHandle.{attribute.name} must fit a 64-bit ULONG_PTR, got {value}")


@attrs.frozen(cache_hash=True, repr=False)
class SecHandle(Value):
    """CredHandle / CtxtHandle: two ULONG_PTR fields (x64)."""

    lower: int = attrs.field(validator=_ulong_ptr)
    upper: int = attrs.field(validator=_ulong_ptr)

    @classmethod
    def invalid(cls) -> SecHandle:  # (ULONG_PTR)(INT_PTR)-1 in both fields (HDL-001)
        """What SecInvalidateHandle writes: both fields (ULONG_PTR)(INT_PTR)-1."""
        return _INVALID

    @property
    def is_valid(self) -> bool:
        """SecIsValidHandle: true unless both fields are (ULONG_PTR)-1."""
        return not (self.lower == ULONG_PTR_MAX and self.upper == ULONG_PTR_MAX)


_INVALID = SecHandle(ULONG_PTR_MAX, ULONG_PTR_MAX)
_new_object = object.__new__
_set_field = object.__setattr__


def _issued_handle(lower: int, upper: int) -> SecHandle:
    """SecHandle(lower, upper) for values the mint made (known to fit), without re-running the
    validators: what the generated __init__ does, less its checks."""
    handle: SecHandle = _new_object(SecHandle)
    _set_field(handle, "lower", lower)
    _set_field(handle, "upper", upper)
    _set_field(handle, "_attrs_cached_hash", None)
    return handle


if getattr(SecHandle, "__slots__", ()) != ("lower", "upper", "__weakref__", "_attrs_cached_hash"):
    # attrs laid the class out differently: build issued handles the ordinary way.
    _issued_handle = SecHandle  # pragma: no cover


class HandleKind(enum.IntEnum):
    CREDENTIAL = 1
    CONTEXT = 2

    def __repr__(self) -> str:
        return f"HandleKind.{self.name}"


class HandleClass(enum.Enum):
    """What a handle value is, from the point of view of one instance."""

    NULL = "null"  # None: a NULL pointer
    LIVE = "live"
    RETIRED = "retired"  # issued by this instance, of this kind, and since deleted or freed
    WRONG_KIND = "wrong-kind"  # issued by this instance for the other kind of object
    FOREIGN = "foreign"  # issued by another instance
    NEVER_ISSUED = "never-issued"  # zeroed, random, invalidated or forged

    def __repr__(self) -> str:
        return f"HandleClass.{self.name}"


# lower = instance << 40 | kind << 36 | serial; upper = tag << 32 | instance.
_SERIAL_BITS = 36
_SERIAL_MASK = (1 << _SERIAL_BITS) - 1
_KIND_SHIFT = _SERIAL_BITS
_INSTANCE_SHIFT = 40
_TAGS = {HandleKind.CREDENTIAL: 0x43524544, HandleKind.CONTEXT: 0x43545854}  # "CRED", "CTXT"
_INSTANCE_LIMIT = (1 << (64 - _INSTANCE_SHIFT)) - 1  # 24 bits of lower hold the instance
_instance_numbers = itertools.count(1)


def next_instance_number() -> int:
    """A process-wide number for each new Sspi instance, so handles of two instances differ.

    The numbers never wrap: past 2**24 - 1 instances the next one is refused (ROB-002), since a
    wrapped number would issue the very handle values of instance 1 (HDL-002)."""
    number = next(_instance_numbers)
    if number > _INSTANCE_LIMIT:  # ROB-002: never reuse an instance number
        raise RuntimeError(
            f"this process has created {_INSTANCE_LIMIT} Sspi instances, all its handle "
            "encoding can tell apart; another would reuse instance 1's handle values (ROB-002)"
        )
    return number


class HandleMint:
    """Issues handles for one instance and classifies any handle value against them."""

    __slots__ = ("_base", "_instance", "_next_serial", "_upper")

    def __init__(self, instance: int) -> None:
        self._instance = instance
        # One serial counter per kind, so "serial below the kind's next serial" means "issued as
        # this kind" and a forged handle of the other kind is never taken for a retired one.
        # Serial 0 is never issued, so {0, 0}-like values never match.
        self._next_serial = dict.fromkeys(HandleKind, 1)
        self._upper = {kind: (tag << 32) | instance for kind, tag in _TAGS.items()}
        self._base = {
            kind: (instance << _INSTANCE_SHIFT) | (int(kind) << _KIND_SHIFT) for kind in HandleKind
        }

    @property
    def instance(self) -> int:
        return self._instance

    def issue(self, kind: HandleKind) -> SecHandle:
        serial = self._next_serial[kind]
        self._next_serial[kind] = serial + 1
        # Every handle of a kind shares one `upper` int object (Sspi's fast paths rely on it).
        return _issued_handle(self._base[kind] | serial, self._upper[kind])

    def base(self, kind: HandleKind) -> int:
        """`lower` of serial 0 of `kind`: issued handles have lower in (base, base + next)."""
        return self._base[kind]

    def upper(self, kind: HandleKind) -> int:
        """The `upper` value (the very int object) of every handle of `kind` issued here."""
        return self._upper[kind]

    def classify_unlisted(self, handle: SecHandle, kind: HandleKind) -> HandleClass:  # HDL-010
        """Class of a handle that is not in the live table for `kind`."""
        lower, upper = handle.lower, handle.upper
        serial = lower & _SERIAL_MASK
        instance = lower >> _INSTANCE_SHIFT
        try:
            issued_kind = HandleKind((lower >> _KIND_SHIFT) & 0xF)
        except ValueError:
            return HandleClass.NEVER_ISSUED
        if upper != (_TAGS[issued_kind] << 32) | instance or not serial > 0:
            return HandleClass.NEVER_ISSUED
        if instance != self._instance:
            return HandleClass.FOREIGN
        if serial >= self._next_serial[issued_kind]:
            return HandleClass.NEVER_ISSUED
        return HandleClass.RETIRED if issued_kind is kind else HandleClass.WRONG_KIND
