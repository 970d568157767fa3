"""The envelope's fast path (envelope.py: `host._fast`) and the executor's take() change no
answer: every table path of tests/test_table_conformance.py, driven on an instance that takes
the fast path (no observer, a quiet single-threaded scheduler) and on one that takes the full
envelope (an observer is attached), gives the same result, rules, state and misuse reports."""

from __future__ import annotations

import threading
from typing import Any

import pytest
import test_table_conformance as conformance
from test_table_conformance import CASES, Case

from sspi_model import Sspi
from sspi_model.lifecycle import ASYNC_TABLE, TABLES, Transition, take


def _run(case: Case, observed: bool, monkeypatch: pytest.MonkeyPatch) -> tuple[Any, ...]:
    made: list[Sspi] = []
    plain_model = conformance._model

    def model(**options: Any) -> Sspi:
        if observed:
            options.setdefault("observer", lambda event: None)
        sspi = plain_model(**options)
        made.append(sspi)
        return sspi

    with monkeypatch.context() as patch:
        patch.setattr(conformance, "_model", model)
        situation, result = case.run()
    assert [sspi._fast is None for sspi in made] == [observed] * len(made)
    sspi = situation.sspi
    status = (
        result
        if isinstance(result, int) or result is None
        else getattr(result, "status", type(result).__name__)
    )
    return (
        status,
        sspi.last_rules,
        situation.state(),
        [(event.rule, event.call) for event in sspi.misuse_events],
        sspi.statistics(),
    )


@pytest.mark.rule("API-005", "API-006")
@pytest.mark.parametrize("table_case", CASES, ids=repr)
def test_the_fast_path_answers_as_the_full_envelope(
    table_case: Case, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert _run(table_case, False, monkeypatch) == _run(table_case, True, monkeypatch)


@pytest.mark.parametrize("table", TABLES, ids=lambda table: table.name)
def test_take_enters_exactly_the_plain_transitions_of_the_table(table: Any) -> None:
    """take()'s by-call index holds the plain (guard-less) Transitions, nothing else."""
    found = {
        (state, call): step
        for call, steps in table.by_call.items()
        for state, step in steps.items()
    }
    assert found == table.plain
    assert all(isinstance(step, Transition) and not step.guards for step in found.values())


def test_take_on_a_plain_entry_enters_its_state() -> None:
    class Record:
        state: Any = None

    for (state, call), step in ASYNC_TABLE.plain.items():
        if None not in step.next:
            continue  # a call with outcomes: entered by enter(), never by take()
        record = Record()
        record.state = state
        assert take(record, ASYNC_TABLE, call, None, pytest.fail) is step
        assert record.state is step.next[None]


def test_an_unobserved_default_instance_takes_the_fast_path() -> None:
    """So tests/test_core_contract.py's API-006 test (a second thread entering such an
    instance) exercises the fast path's thread check."""
    sspi = Sspi()
    assert sspi._fast == threading.get_ident()
    sspi.observer = print
    assert sspi._fast is None
    sspi.observer = None
    sspi.thread_safe = True
    assert sspi._fast is None
