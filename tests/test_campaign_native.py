"""`check --jobs 2 --backend sspi-rs` finds the divergence kinds `--jobs 1` finds (sspilib):
the same set, since a campaign runs until its kinds saturate (CMP-005), an undefined call is one
kind whatever the library did (CMP-004), and the jobs share what they found (CMP-006)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from sspi_model.backends.native import LibraryNotFound, find_library
from sspi_model.testing.check import CheckReport, run_check
from sspi_model.testing.divergence import load_known_file


@pytest.fixture(scope="module")
def library() -> str:
    try:
        return find_library()
    except LibraryNotFound as missing:
        if os.environ.get("CI") == "true":
            raise
        pytest.skip(f"{missing} (pip install 'sspi-model[native]')")


EXAMPLES = 100  # per round: 20 known kinds in 4 of 4 runs of each (7 to 12 rounds, 30-40 s)


# Known divergences of sspi-rs that a campaign of this size reaches only now and then.
RARE = Path(__file__).parent / "data" / "sspi-rs-rare-divergences.toml"
RARE_IDS = {entry.id for entry in load_known_file(RARE)}


def _kinds(report: CheckReport) -> set[str]:
    """A known divergence's id; a new one's signature; the rare ones left out."""
    (backend,) = report.backends
    assert not backend.error
    return {d.known or " ".join(d.signature) for d in backend.divergences} - RARE_IDS


@pytest.mark.rule("CMP-005")
@pytest.mark.rule("CMP-006")
def test_two_jobs_find_the_kinds_one_job_finds(library: str) -> None:
    def campaign(jobs: int) -> CheckReport:
        return run_check(["sspi-rs"], EXAMPLES, 0, lambda line: None, jobs=jobs, fresh=True,
                         known_files=[RARE])

    one, two = campaign(1), campaign(2)
    new = [d for report in (one, two) for d in report.backends[0].new]
    assert not new, [(d.call, d.situation, d.expected, d.observed, d.reproducer) for d in new]
    # Job 1 of two runs other seeds than the single job; both campaigns saturate.
    assert _kinds(one) == _kinds(two)
    assert len(_kinds(two)) >= 15
