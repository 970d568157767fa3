"""The fuzz contract (issue 15), bounded for CI: random calls over the whole public API, every
invariant checked after every call (sspi_model.explore.fuzz.ApiFuzzer), and proof that it
catches defects planted in the model.

Long campaigns: `HYPOTHESIS_PROFILE=thorough pytest tests/test_fuzz_contract.py` (more
examples, more calls), or `python -m sspi_model.explore.fuzz --calls 1000000 --seed 7`.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sspi_model import ManualScheduler, SecStatus
from sspi_model import async_layer as async_layer_module
from sspi_model import sync_core as sync_core_module
from sspi_model.async_layer import AsyncLayer
from sspi_model.explore.fuzz import ApiFuzzer, DataSource, FuzzDefect, FuzzReport, fuzz
from sspi_model.handles import HandleMint
from sspi_model.lifecycle import Misuse
from sspi_model.packages.ntlm import NtlmServerSession
from sspi_model.sync_core import SyncCore

THOROUGH = os.environ.get("HYPOTHESIS_PROFILE") == "thorough"  # as tests/conftest.py reads it
SEEDS = range(12 if THOROUGH else 3)
CALLS_PER_SEED = 100_000 if THOROUGH else 6_000  # steps; a step is one or a handshake of calls


def _assert_clean(report: FuzzReport) -> None:
    if report.findings:
        raise FuzzDefect(report.findings)


@pytest.mark.parametrize("seed", SEEDS)
def test_random_calls_keep_every_invariant(seed: int) -> None:
    report = fuzz(CALLS_PER_SEED, seed)
    _assert_clean(report)
    assert report.calls >= CALLS_PER_SEED  # every step made at least one call
    # The campaign got deep: handshakes finished, async calls completed, misuse was raised.
    reached = set(report.outcomes)
    assert {"AcceptSecurityContext SEC_E_OK", "InitializeSecurityContextW SEC_E_OK"} <= reached
    assert any(outcome.startswith("misuse ASY-") for outcome in reached)
    assert "TypeError" in reached and "ValueError" in reached


def test_random_calls_with_threaded_schedulers_keep_every_invariant() -> None:
    _assert_clean(fuzz(1_500 if not THOROUGH else 30_000, 99, threaded=True))


@settings(max_examples=400 if THOROUGH else 20, deadline=None)
@given(st.data())
def test_hypothesis_drives_the_fuzzer(data: Any) -> None:
    """The same fuzzer with Hypothesis choosing: a failure shrinks to a short call sequence."""
    fuzzer = ApiFuzzer(DataSource(data))
    _assert_clean(fuzzer.run(200 if THOROUGH else 50))


# -- planted defects: each must make the fuzzer report a finding -------------------------------


def _reuse_handles(mp: pytest.MonkeyPatch) -> None:
    original = HandleMint.issue
    count = itertools.count()

    def issue(self: HandleMint, kind: Any) -> Any:
        handle = original(self, kind)
        if next(count) % 4 == 3:
            self._next_serial[kind] -= 1  # the next handle repeats this one
        return handle

    mp.setattr(HandleMint, "issue", issue)


def _swap_status_out_of_list(mp: pytest.MonkeyPatch) -> None:
    original = SyncCore.free_credential

    def free_credential(self: SyncCore, handle: Any) -> SecStatus:
        status = original(self, handle)
        return (
            SecStatus.SEC_E_INVALID_PARAMETER
            if status == SecStatus.SEC_E_INVALID_HANDLE
            else status
        )

    mp.setattr(SyncCore, "free_credential", free_credential)


def _swap_status_in_list(mp: pytest.MonkeyPatch) -> None:
    original = SyncCore.delete

    def delete(self: SyncCore, context: Any) -> SecStatus:
        status = original(self, context)
        return SecStatus.SEC_E_INVALID_HANDLE if status == SecStatus.SEC_E_OK else status

    mp.setattr(SyncCore, "delete", delete)


def _package_raises(mp: pytest.MonkeyPatch) -> None:
    original = NtlmServerSession.step
    count = itertools.count()

    def step(self: NtlmServerSession, *args: Any) -> Any:
        if next(count) % 5 == 4:
            raise KeyError("planted")
        return original(self, *args)

    mp.setattr(NtlmServerSession, "step", step)


def _drop_completions(mp: pytest.MonkeyPatch) -> None:
    count = itertools.count()

    def run_all(self: ManualScheduler) -> int:
        while self._pending:
            call = self._pending.pop(0)
            if next(count) % 3 != 2:
                call.complete()
        return 0

    mp.setattr(ManualScheduler, "run_all", run_all)


def _accept_unsendable_strings(mp: pytest.MonkeyPatch) -> None:
    mp.setattr(sync_core_module, "unsendable_credential", lambda auth_data: None)


def _misuse_without_rule(mp: pytest.MonkeyPatch) -> None:
    mp.setattr(async_layer_module, "_FOREIGN", Misuse("ASY-999", "a rule nobody wrote"))


def _free_leaks(mp: pytest.MonkeyPatch) -> None:
    original = SyncCore.free_credential

    def free_credential(self: SyncCore, handle: Any) -> SecStatus:
        record = self.live_credential(handle)
        if record is not None and not record.refs:
            return SecStatus.SEC_E_OK  # says freed, keeps it
        return original(self, handle)

    mp.setattr(SyncCore, "free_credential", free_credential)


def _negative_statistics(mp: pytest.MonkeyPatch) -> None:
    original = AsyncLayer.statistics

    def statistics(self: AsyncLayer) -> dict[str, int]:
        counts = original(self)
        counts["pending_calls"] -= 1 if self.contexts else 0
        return counts

    mp.setattr(AsyncLayer, "statistics", statistics)


def _revive_deleted(mp: pytest.MonkeyPatch) -> None:
    original = SyncCore.delete
    deleted: list[Any] = []

    def delete(self: SyncCore, context: Any) -> SecStatus:
        record = None if context is None else self.contexts.get(context.lower)
        status = original(self, context)
        if record is not None:
            deleted.append((self, record))
        if len(deleted) > 3:  # an older deleted context comes back
            core, old = deleted.pop(0)
            core.contexts[old.handle.lower] = old
        return status

    mp.setattr(SyncCore, "delete", delete)


PLANTED: dict[str, tuple[Callable[[pytest.MonkeyPatch], None], set[str]]] = {
    "a handle issued twice": (
        _reuse_handles,
        {
            "handle issued twice",
            "retired handle revived",
            "statistics disagree with the handles issued",
        },
    ),
    "a status outside the code list": (
        _swap_status_out_of_list,
        {"status outside the call's code list"},
    ),
    "a success reported as an error": (_swap_status_in_list, {"refused call changed state"}),
    "an exception from a package": (
        _package_raises,
        {"undeclared exception", "a completion raised"},
    ),
    "a completion dropped": (_drop_completions, {"call pending after run_all"}),
    "unsendable strings accepted (item 2)": (
        _accept_unsendable_strings,
        {"undeclared exception", "a completion raised"},
    ),
    "misuse naming no rule": (_misuse_without_rule, {"misuse names no rule"}),
    "a free that leaks": (
        _free_leaks,
        {"leak after teardown", "statistics disagree with the handles issued"},
    ),
    "negative statistics": (_negative_statistics, {"negative statistics"}),
    "a deleted context revived": (
        _revive_deleted,
        {"retired handle revived", "statistics disagree with the handles issued"},
    ),
}


@pytest.mark.parametrize("name", list(PLANTED))
def test_the_fuzzer_catches_a_planted_defect(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    plant, expected = PLANTED[name]
    plant(monkeypatch)
    caught: set[str] = set()
    for seed in range(4):  # a budget of 4 x 1,500 steps; most are caught in the first 300
        caught |= {finding.invariant for finding in fuzz(1_500, seed).findings}
        if caught & expected:
            return
    pytest.fail(f"{name}: the fuzzer reported {caught or 'nothing'}, expected one of {expected}")
