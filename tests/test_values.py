"""Value (sspi_model/values.py) compares and hashes as attrs' generated methods would: equal
when of the same class with equal compared fields, never equal to a value of another type, and
equal values hash alike. The methods are compiled on a class's first comparison, so the first
comparison of each class is checked too (it once answered True for any foreign object, because
bool(NotImplemented) is True)."""

from __future__ import annotations

from typing import Any

import attrs
import pytest
from hypothesis import given
from hypothesis import strategies as st
from test_repr_roundtrip import STRATEGIES

from sspi_model.values import Value

VALUE_KINDS = [kind for kind in STRATEGIES if issubclass(kind, Value)]


def _fresh_class() -> type:
    @attrs.frozen(repr=False, eq=False)
    class Pair(Value):
        left: int
        right: str = attrs.field(eq=False)  # left out of == and hash, as attrs does

    return Pair


@pytest.mark.parametrize("other", [5, "x", None, (1, "a"), object()])
def test_the_first_comparison_of_a_class_with_a_foreign_object_is_false(other: Any) -> None:
    pair = _fresh_class()(1, "a")
    assert (pair == other) is False
    assert (pair != other) is True
    assert (pair == other) is False  # the compiled methods answer the same


def test_the_first_hash_of_a_class_agrees_with_its_equality() -> None:
    kind = _fresh_class()
    first, second = kind(1, "a"), kind(1, "b")  # equal: `right` is not compared
    assert hash(first) == hash(second)
    assert first == second
    assert kind(2, "a") != first
    assert {first, second} == {first}


def test_a_subclass_compares_by_its_own_fields() -> None:
    base = _fresh_class()

    @attrs.frozen(repr=False, eq=False)
    class Triple(base):  # type: ignore[valid-type, misc]
        extra: int = 0

    assert base(1, "a") == base(1, "a")  # the base's methods compiled first
    assert Triple(1, "a", 1) != Triple(1, "a", 2)
    assert Triple(1, "a", 1) == Triple(1, "a", 1)
    assert Triple(1, "a", 1) != base(1, "a")
    assert hash(Triple(1, "a", 3)) == hash(Triple(1, "b", 3))


@pytest.mark.parametrize("kind", VALUE_KINDS, ids=lambda kind: kind.__name__)
def test_public_values_compare_as_attrs_would(kind: type) -> None:
    @given(STRATEGIES[kind], STRATEGIES[kind], st.sampled_from([5, "x", None, object()]))
    def check(value: Any, other: Any, foreign: Any) -> None:
        copy = attrs.evolve(value)
        assert copy == value
        assert (copy != value) is False
        fields = tuple(getattr(value, f.name) for f in attrs.fields(kind) if f.eq)
        try:
            hash(fields)
        except TypeError:  # a dict field: unhashable, as with attrs' own __hash__
            with pytest.raises(TypeError):
                hash(value)
        else:
            assert hash(copy) == hash(value)
        assert (value == foreign) is False
        compared = [f for f in attrs.fields(kind) if f.eq]
        key = [f.eq_key or (lambda part: part) for f in compared]
        pairs = zip(compared, key, strict=True)
        same = all(k(getattr(value, f.name)) == k(getattr(other, f.name)) for f, k in pairs)
        assert (value == other) is same

    check()
