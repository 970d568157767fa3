"""check_line, the memo of accepted line shapes (TRC-007), answers what check_record answers."""

from __future__ import annotations

import binascii
import itertools
import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sspi_model.scenarios import Narrator, run_scenario
from sspi_model.trace import check
from sspi_model.trace.check import check_line, check_record

rule = pytest.mark.rule


def recorded_lines() -> list[str]:
    lines: list[str] = []
    for name in ("ntlm", "async-delete", "overview"):
        recorder = run_scenario(name, Narrator(write=lambda line: None))
        lines += [json.dumps(record, ensure_ascii=False) for record in recorder.trace()[1:]]
    return lines


LINES = recorded_lines()


def answers(text: str) -> tuple[Any, Any]:
    value = json.loads(text)
    return check_line(text, value), check_record(value)


def warm() -> None:
    for text in LINES:
        assert check_line(text, json.loads(text)) == []


@rule("TRC-007")
def test_recorded_lines_are_remembered_and_pass() -> None:
    check._SHAPES.clear()
    warm()
    assert check._SHAPES
    remembered = [text.encode().translate(check._SHAPE) in check._SHAPES for text in LINES]
    assert sum(remembered) >= 0.8 * len(LINES)


@rule("TRC-007")
@pytest.mark.parametrize(
    ("before", "after"),
    [
        ('"seq": 5', '"seq": 0'),  # 0 and 5 have one shape: seq is read by value
        ('"seq": 5', '"seq": -5'),
        ('"status": "SEC_E_OK"', '"status": "1x00090312"'),  # the shape of "0x00090312"
        ('"status": "SEC_E_OK"', '"status": "SEC_E_\\u0031"'),
        ('"status": "SEC_E_OK"', '"status": 1'),  # a status that is not text: always checked
        ('"context_req": 2048', '"out": 2'),  # args.out: only 1 (or true) is a holder
    ],
)
def test_a_remembered_shape_does_not_pass_a_line_the_check_rejects(before: str, after: str) -> None:
    warm()
    rejected = 0
    for text in LINES:
        if before in text:
            found, expected = answers(text.replace(before, after, 1))
            assert found == expected
            rejected += expected != []
    assert rejected


@rule("TRC-007")
def test_hex_statuses_and_args_out_one_are_checked_each_time() -> None:
    warm()
    text = next(line for line in LINES if '"status": "SEC_E_OK"' in line)
    hex_status = text.replace('"status": "SEC_E_OK"', '"status": "0x00000000"')
    assert answers(hex_status) == ([], [])
    assert answers(hex_status.replace("0x00000000", "1x11111111"))[0] != []
    upper = text.replace('"status": "SEC_E_OK"', '"status": "0X00000000"')
    assert answers(upper) == ([], [])
    assert answers(upper.replace("0X00000000", "1X11111111"))[0] != []
    holder = json.loads(text)
    holder["args"]["out"] = 1
    assert check_line(json.dumps(holder), holder) == check_record(holder) == []
    holder["args"]["out"] = 2
    assert check_line(json.dumps(holder), holder) == check_record(holder) != []


def test_base64_validity_does_not_depend_on_which_digits() -> None:
    shape = str.maketrans("0123456789", "1111111111")

    def valid(text: str) -> bool:
        try:
            binascii.a2b_base64(text, strict_mode=True)
        except ValueError:
            return False
        return True

    for length in range(6):
        for chars in itertools.product("A0=9+/", repeat=length):
            text = "".join(chars)
            assert valid(text) == valid(text.translate(shape))


@st.composite
def mutated(draw: st.DrawFn) -> str:
    """A recorded line with a few characters replaced, inserted or deleted."""
    text = draw(st.sampled_from(LINES))
    for _ in range(draw(st.integers(1, 3))):
        where = draw(st.integers(0, len(text)))
        piece = draw(st.text(alphabet='0123456789-.x"$:{}[], eEtruefalsn\\', max_size=3))
        cut = draw(st.integers(0, 2))
        text = text[:where] + piece + text[where + cut :]
    return text


@rule("TRC-007")
@given(mutated())
def test_check_line_is_check_record_on_mutated_lines(text: str) -> None:
    warm()
    try:
        value = json.loads(text)
    except (ValueError, RecursionError):
        return
    found, expected = answers(text)
    assert found == expected
    assert check_line(text, value) == expected  # again: its shape may be remembered now
