"""Divergences between the model (the oracle) and a backend, and the known ones as data."""

from __future__ import annotations

import fnmatch
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import attrs

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib  # type: ignore[import-not-found, unused-ignore]

DIVERGENCES = Path(__file__).resolve().parent.parent / "data" / "divergences"


def outcome_class(observed: str) -> str:
    """Crashes differ by signal from run to run (probe §1.3); compare them as one class. An
    exception is one finding per exception type, whatever its message (CLI-001), a wrong result
    type one per method (CLI-003)."""
    if observed.startswith("CRASH:"):
        return "CRASH"
    if observed.startswith("EXCEPTION:"):
        return ":".join(observed.split(":", 2)[:2])
    if observed.startswith("WRONG-TYPE:"):
        return "WRONG-TYPE:" + observed[len("WRONG-TYPE:") :].split(" ", 1)[0]
    return observed


# Handle situations that are one finding, not several: NULL and zeroed handles meet the same
# NULL check; invalidated, random and unmapped values are all wild pointers to a library that
# dereferences what it is given.
_SITUATION_GROUPS = {
    "handle=NULL": "handle=null-or-zero",
    "handle=zeroed": "handle=null-or-zero",
    "handle=invalidated": "handle=wild",
    "handle=noncanonical": "handle=wild",
    "handle=unmapped": "handle=wild",
    "use=0x0": "use=invalid",
    "use=0x1234": "use=invalid",
}


_MALFORMED_INPUTS = ("input=empty", "input=ntlm-header-only", "input=garbage")


def situation_group(situation: str) -> str:
    parts = []
    for part in situation.split(","):
        part = _SITUATION_GROUPS.get(part, part)
        if part.startswith("package=NTLM") or part in ("use=client", "use=server"):
            continue  # the role and the right package name are not what diverged
        if part in _MALFORMED_INPUTS or part.endswith("-truncated"):
            part = "input=malformed"
        parts.append(part)
    if "package=ntlm" in parts:  # the case of the name is the finding, whatever the use
        parts = ["package=ntlm"]
    return ",".join(parts)


_NOT_STATUSES = ("CRASH", "HANG", "EXCEPTION", "WRONG-TYPE")

# The observed class of every divergence on a handle that a library without handle checks may
# not survive (CMP-004).
UNDEFINED = "UNDEFINED-BEHAVIOUR"
_UNDEFINED_HANDLES = ("=retired", "=wrong-kind", "handle=wild")


def undefined_parts(group: str) -> list[str]:
    """The parts of a situation group that pass a retired, wrong-kind or wild handle."""
    return [part for part in group.split(",") if part.endswith(_UNDEFINED_HANDLES)]


def signature(d: Divergence) -> tuple[str, str, str, str, str]:
    """What makes two divergences one finding: the same call (unless the handle itself is the
    finding: NULL, wild or of the wrong kind, whatever the call), the same kind of situation,
    the same expected status and the same class of observed outcome."""
    group = situation_group(d.situation)
    undefined = undefined_parts(group)
    if undefined:
        # CMP-004: a deleted, freed, wrong-kind or wild handle is undefined behaviour in a
        # library that does not check handles (sspi-rs: use after free, research/sspi-rs-
        # probe.md 1.3-1.4): a crash, a hang or whatever status the reused memory gives,
        # varying with the heap, not with the call sequence. One finding per call and bad
        # handle; the report lists every outcome observed (Divergence.outcomes).
        group = ",".join(undefined)
        call = "*" if "handle=wild" in group or "wrong-kind" in group else d.call
        return (call, group, d.aspect, d.expected, UNDEFINED)
    call = d.call
    if "null-or-zero" in group or "wild" in group or "wrong-kind" in group:
        call = "*"
    observed = outcome_class(d.observed)
    if d.expected == "SEC_E_NO_CREDENTIALS" and not observed.startswith(_NOT_STATUSES):
        # Whatever the input and whatever the library then says, the unenforced direction of
        # the credential is the finding.
        group, observed = "credential=wrong-direction", "*"
    return (call, group, d.aspect, d.expected, observed)


@attrs.frozen
class Divergence:
    """One step where the backend did not do what the model says it must."""

    call: str  # the C function name
    args: str  # the arguments, with symbolic handles
    situation: str  # what the handles and state were, e.g. "context=retired"
    aspect: str  # what differed: status, handle, token, attributes, value
    expected: str  # the model's outcome
    # the backend's outcome: a status name, CRASH:<signal>, HANG, EXCEPTION:<type>: <message>
    # or WRONG-TYPE:<what it returned>
    observed: str
    rules: tuple[str, ...] = ()
    reproducer: tuple[str, ...] = ()  # the steps, as Python, that lead to it (shrunk)
    known: str | None = None  # the id of the known divergence it matches
    explanation: str = ""
    program: str = ""  # Hypothesis's own falsifying program (replays against the machine)
    # every distinct observed outcome of this kind in the campaign, this one first (CMP-004)
    outcomes: tuple[str, ...] = ()

    @property
    def signature(self) -> tuple[str, str, str, str, str]:
        return signature(self)

    def to_json(self) -> dict[str, Any]:
        return {
            "call": self.call,
            "args": self.args,
            "situation": self.situation,
            "aspect": self.aspect,
            "expected": self.expected,
            "observed": self.observed,
            "rules": list(self.rules),
            "reproducer": "\n".join(self.reproducer),
            "known": self.known is not None,
            "known_id": self.known,
            "explanation": self.explanation,
            "program": self.program,
            "outcomes": list(self.outcomes or (self.observed,)),
        }


def with_outcomes(divergence: Divergence, outcomes: Iterable[str]) -> Divergence:
    """The divergence listing `outcomes` (its own first, each once) as those of its kind."""
    listed = [divergence.observed]
    listed += [outcome for outcome in outcomes if outcome not in listed]
    return attrs.evolve(divergence, outcomes=tuple(listed))


def _any(value: str, patterns: tuple[str, ...]) -> bool:
    return any(fnmatch.fnmatchcase(value, pattern) for pattern in patterns)


@attrs.frozen
class KnownDivergence:
    """An entry of specs/divergences/<backend>.toml. Every field but id, rules and explanation
    is a list of fnmatch patterns, any of which may match."""

    id: str
    call: tuple[str, ...]
    situation: tuple[str, ...]
    aspect: tuple[str, ...]
    expected: tuple[str, ...]
    observed: tuple[str, ...]  # crash signals vary from run to run: CRASH:*
    rules: tuple[str, ...]
    explanation: str

    def matches(self, divergence: Divergence) -> bool:
        return (
            _any(divergence.call, self.call)
            and _any(divergence.situation, self.situation)
            and _any(divergence.aspect, self.aspect)
            and _any(divergence.expected, self.expected)
            and _any(divergence.observed, self.observed)
        )


def load_known_file(path: str | Path) -> tuple[KnownDivergence, ...]:
    """The [[divergence]] entries of one TOML file (the format of specs/divergences/*.toml)."""
    with Path(path).open("rb") as handle:
        data = tomllib.load(handle)

    def patterns(entry: dict[str, Any], key: str, default: str = "*") -> tuple[str, ...]:
        value = entry.get(key, default)
        return (value,) if isinstance(value, str) else tuple(value)

    return tuple(
        KnownDivergence(
            id=entry["id"],
            call=patterns(entry, "call"),
            situation=patterns(entry, "situation"),
            aspect=patterns(entry, "aspect", "status"),
            expected=patterns(entry, "expected"),
            observed=patterns(entry, "observed"),
            rules=tuple(entry.get("rules", ())),
            explanation=entry["explanation"],
        )
        for entry in data.get("divergence", [])
    )


def load_known(backend_name: str, folder: Path = DIVERGENCES) -> tuple[KnownDivergence, ...]:
    """The list shipped with sspi-model for a backend of this `capabilities.name`."""
    path = folder / f"{backend_name}.toml"
    return load_known_file(path) if path.exists() else ()


def known_for(
    backend: object, name: str, files: Iterable[str | Path] = ()
) -> tuple[KnownDivergence, ...]:
    """Every known divergence of a backend (CLI-004): the list shipped for its name, its own
    `known_divergences` attribute (a TOML path, or KnownDivergence entries) and `files`
    (--known, --sspi-known)."""
    known = list(load_known(name))
    own = getattr(backend, "known_divergences", None)
    if isinstance(own, (str, Path)):
        known += load_known_file(own)
    elif own is not None:
        entries = tuple(own)
        wrong = [entry for entry in entries if not isinstance(entry, KnownDivergence)]
        if wrong:
            raise ValueError(
                f"{name}: known_divergences holds {wrong[0]!r}; expected a TOML path or "
                "KnownDivergence entries"
            )
        known += entries
    for path in files:
        known += load_known_file(path)
    return tuple(known)


def classify(divergence: Divergence, known: Iterable[KnownDivergence]) -> Divergence:
    """The divergence marked with the known entry it matches, if any."""
    for entry in known:
        if entry.matches(divergence):
            return attrs.evolve(divergence, known=entry.id, explanation=entry.explanation)
    return divergence
