"""The committed discovery run against sspi-rs, and that its shrunk reproducers still replay.

specs/divergences/sspi-rs-discovery.json is the report of
    sspi-model check --backend sspi-rs --ignore-known --seed 0 --report <that file>
(a fresh example database, a fixed seed, the known list ignored): what the differential machine
found on its own. These tests hold it to the issue's bar and replay every shrunk Hypothesis
program against the library, so a reproducer that no longer reproduces is caught.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from sspi_model.backends.native import NativeBackend
from sspi_model.testing.check import replay
from sspi_model.testing.divergence import Divergence, classify, load_known

REPORT = Path(__file__).resolve().parents[2] / "specs" / "divergences" / "sspi-rs-discovery.json"
KNOWN = load_known("sspi-rs")


def _divergences() -> list[dict[str, Any]]:
    data = json.loads(REPORT.read_text(encoding="utf-8"))
    found: list[dict[str, Any]] = data["divergences"]
    return found


def _known_id(entry: dict[str, Any] | Divergence) -> str | None:
    divergence = entry if isinstance(entry, Divergence) else _as_divergence(entry)
    return classify(divergence, KNOWN).known


def test_the_discovery_run_found_what_the_issue_asks_for() -> None:
    found = _divergences()
    assert all(not entry["known"] for entry in found)  # discovery mode: nothing was suppressed
    ids = {_known_id(entry) for entry in found}
    # The wrong code for NULL or zeroed handles.
    assert "RS-NULL-HANDLE" in ids
    # A crash on double free or double delete.
    assert {"RS-DOUBLE-FREE-CREDENTIAL", "RS-DOUBLE-DELETE"} & ids
    assert any(
        e["observed"].startswith("CRASH:") and e["situation"].endswith("=retired")
        and e["call"] in ("DeleteSecurityContext", "FreeCredentialsHandle")
        for e in found
    )
    # A hang on use after delete.
    assert any(e["observed"] == "HANG" and "context=retired" in e["situation"] for e in found)
    # The SEC_I_COMPLETE_NEEDED final leg.
    assert any(e["observed"] == "SEC_I_COMPLETE_NEEDED" for e in found)
    # Every finding is explained by the known list (which is how CI passes on them).
    assert None not in ids, [e for e in found if _known_id(e) is None]


def _as_divergence(entry: dict[str, Any]) -> Divergence:
    return Divergence(
        entry["call"], entry["args"], entry["situation"], entry["aspect"],
        entry["expected"], entry["observed"],
    )


@pytest.mark.parametrize(
    "index",
    [i for i, e in enumerate(_divergences()) if e["program"]],
    ids=lambda i: "{call}[{situation}]->{observed}".format(**_divergences()[i]),
)
def test_each_shrunk_reproducer_replays(library: str, index: int) -> None:
    found = _divergences()
    entry = found[index]
    # The campaign had found the earlier entries when it found this one. The report predates
    # CMP-004, under which some earlier entries are of this entry's kind (an undefined call
    # with another outcome): those would suppress it, so they are not passed.
    own = _as_divergence(entry).signature
    earlier = [_as_divergence(e).signature for e in found[:index]]
    earlier = [signature for signature in earlier if signature != own]
    with NativeBackend(library, timeout=0.5) as backend:
        again = replay(entry["program"], backend, suppressed=earlier)
        if again is None:
            # A heap-dependent outcome (a freed credential: HANG one run, SIGABRT the next) may
            # come out as an earlier finding's class, which is suppressed: the steps must still
            # reach the same divergence.
            again = replay(entry["program"], backend)
    assert again is not None, f"no divergence when replaying:\n{entry['program']}"
    assert again.call == entry["call"]
    # Crash signals and heap-dependent outcomes vary between runs; the finding must not.
    assert _known_id(again) == _known_id(entry)
