"""The example database a campaign shares: a directory, Redis, or nothing kept.

`open_database(spec, fresh=...)`:
  fresh                 an in-memory database: nothing is replayed, nothing kept
  None                  a directory under the user's cache ($SSPI_MODEL_DATABASE, else
                        $XDG_CACHE_HOME/sspi-model/examples, else ~/.cache/sspi-model/examples)
  "redis://H:P/N"       Hypothesis's RedisExampleDatabase (`pip install 'sspi-model[redis]'`)
  "DIR"                 Hypothesis's DirectoryBasedExampleDatabase (a shared directory works)

A campaign wraps it in a `CampaignDatabase` per backend. Each round of a campaign suppresses
what the earlier rounds found, so Hypothesis, replaying a saved failure that no longer fails
in this round, would delete it from the shared database, and the next run would not replay it.
The wrapper keeps what is saved under its own key space and forgets nothing from round 2 on.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from datetime import timedelta
from pathlib import Path

from hypothesis.database import (
    DirectoryBasedExampleDatabase,
    ExampleDatabase,
    InMemoryExampleDatabase,
)

REDIS_INSTALL = "pip install 'sspi-model[redis]'"
_SUB_KEYS = (b".secondary", b".pareto")  # Hypothesis's keys beside a test's primary key
_YEAR = timedelta(days=365)  # Redis entries expire; a campaign's findings should not


class DatabaseUnavailable(OSError):
    """The database cannot be opened here (the redis package missing, a bad URL)."""


def default_database_path() -> Path:
    configured = os.environ.get("SSPI_MODEL_DATABASE")
    if configured:
        return Path(configured)
    cache = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(cache) / "sspi-model" / "examples"


def open_database(spec: str | None, *, fresh: bool = False) -> ExampleDatabase:
    if fresh:
        return InMemoryExampleDatabase()
    if spec is not None and spec.startswith(("redis://", "rediss://", "unix://")):
        try:
            import redis
            from hypothesis.extra.redis import RedisExampleDatabase
        except ImportError as error:
            raise DatabaseUnavailable(
                f"--database {spec} needs the redis package: {REDIS_INSTALL}"
            ) from error
        try:
            client = redis.Redis.from_url(spec)
            client.ping()
        except (redis.RedisError, ValueError) as error:
            raise DatabaseUnavailable(f"cannot reach the Redis database {spec}: {error}") from error
        return RedisExampleDatabase(client, expire_after=_YEAR)
    return DirectoryBasedExampleDatabase(str(spec or default_database_path()))


class CampaignDatabase(ExampleDatabase):
    """One backend's corner of a shared database, as one campaign uses it.

    Keys are prefixed with the backend, the profile and the mode (check or discovery), since
    every round's machine class has the same name and so the same Hypothesis key. From
    `start_round(2)` on, deleting or moving away a primary entry that was there before the
    round is ignored: those are the failures found so far (by this campaign or another sharing
    the database), which pass now only because this campaign suppresses them. (Entries saved
    in the round are Hypothesis's shrinking steps, and go as usual.) `finish()` saves back
    anything this campaign saw in a primary key, in case another campaign deleted it meanwhile.
    With a `campaign` id, share_finding() and shared_findings() pass the signatures found
    between the jobs of one campaign, under a key of their own that no test reads.
    """

    def __init__(self, inner: ExampleDatabase, namespace: str, *, campaign: str = "") -> None:
        super().__init__()
        self.inner = inner
        self.prefix = namespace.encode() + b"/"
        # CMP-006: where the jobs of one campaign put the signatures they found ("": alone).
        self._findings = b"findings/" + campaign.encode() if campaign else b""
        self.keep_failures = False
        self._seen: set[tuple[bytes, bytes]] = set()
        self._this_round: set[tuple[bytes, bytes]] = set()
        self.replayable = 0  # primary entries found when the campaign started

    def __repr__(self) -> str:
        return f"CampaignDatabase({self.inner!r}, {self.prefix[:-1].decode()!r})"

    def __eq__(self, other: object) -> bool:
        return (
            isinstance(other, CampaignDatabase)
            and self.inner == other.inner
            and self.prefix == other.prefix
        )

    def __hash__(self) -> int:
        return hash(self.prefix)

    def _primary(self, key: bytes) -> bool:
        return not key.endswith(_SUB_KEYS)

    def start_round(self, number: int) -> None:
        self.keep_failures = number > 1
        self._this_round = set()

    def _kept(self, key: bytes, value: bytes) -> bool:
        return self.keep_failures and self._primary(key) and (key, value) not in self._this_round

    def fetch(self, key: bytes) -> Iterable[bytes]:
        values = list(self.inner.fetch(self.prefix + key))
        if self._primary(key):
            fresh = {(key, value) for value in values} - self._seen
            if not self._seen:
                self.replayable = len(values)
            self._seen |= fresh
        yield from values

    def save(self, key: bytes, value: bytes) -> None:
        if self._primary(key):
            self._seen.add((key, value))
            self._this_round.add((key, value))
        self.inner.save(self.prefix + key, value)

    def delete(self, key: bytes, value: bytes) -> None:
        if self._kept(key, value):
            return
        self._seen.discard((key, value))
        self.inner.delete(self.prefix + key, value)

    def move(self, src: bytes, dest: bytes, value: bytes) -> None:
        if self._kept(src, value):
            self.inner.save(self.prefix + dest, value)
            return
        self._seen.discard((src, value))
        self.inner.move(self.prefix + src, self.prefix + dest, value)

    def share_finding(self, signature: tuple[str, ...]) -> None:
        if self._findings:
            self.inner.save(self.prefix + self._findings, json.dumps(signature).encode())

    def shared_findings(self) -> set[tuple[str, ...]]:
        """The signatures the jobs of this campaign have found so far (CMP-006)."""
        if not self._findings:
            return set()
        values = self.inner.fetch(self.prefix + self._findings)
        return {tuple(json.loads(value)) for value in values}

    def finish(self) -> None:
        for key, value in self._seen:
            self.inner.save(self.prefix + key, value)
