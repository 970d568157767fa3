"""The per-rule conformance report (testing/conformance.py) of a check run."""

from __future__ import annotations

import json

import pytest

from sspi_model.backends.model import ModelBackend
from sspi_model.rulebook import load_rules
from sspi_model.testing.check import CheckReport, check_backend
from sspi_model.testing.conformance import FAIL, NOT_APPLICABLE, NOT_EXERCISED, PASS
from sspi_model.testing.differential import ACCOUNTS


@pytest.mark.rule("DEL-003", "DEL-004", "CLI-004")
def test_every_rule_gets_a_verdict_and_a_broken_backend_fails_the_rule_it_breaks() -> None:
    report = check_backend(
        "strict-delete-toy",
        lambda: ModelBackend(accounts=ACCOUNTS, profile="strict-delete"),
        examples=60,
        max_rounds=3,
    )
    verdicts = {row.rule.id: row for row in report.rules}
    assert set(verdicts) == set(load_rules())  # every rule of the book, none invented
    assert verdicts["DEL-003"].verdict == FAIL  # the toy answers DEL-004's status instead
    assert verdicts["DEL-003"].divergence is not None
    assert verdicts["DEL-003"].divergence.reproducer  # with the steps that show it
    assert verdicts["DEL-001"].verdict == PASS and verdicts["DEL-001"].count > 0
    assert verdicts["DEL-004"].verdict == NOT_APPLICABLE  # a rule of another profile
    assert {row.verdict for row in report.rules} <= {PASS, FAIL, NOT_APPLICABLE, NOT_EXERCISED}

    both = CheckReport((report,), 0)
    as_json = json.loads(both.render_rules("json"))
    assert as_json[0]["backend"] == "model"  # capabilities.name, whatever it was called (CLI-004)
    assert {r["id"] for r in as_json[0]["rules"]} == set(load_rules())
    text = both.render_rules("text")
    assert "DEL-003" in text and "fail" in text
    assert "| DEL-003 | fail |" in both.render_rules("md")


def test_the_model_against_itself_fails_no_rule() -> None:
    report = check_backend("model", lambda: ModelBackend(accounts=ACCOUNTS), examples=40)
    assert not report.divergences
    assert all(row.verdict != FAIL for row in report.rules)
    assert sum(row.verdict == PASS for row in report.rules) >= 20
