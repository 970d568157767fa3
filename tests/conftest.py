"""Shared fixtures: Hypothesis profiles, Sspi factories and a client/server handshake helper.

Hypothesis profiles (pick with HYPOTHESIS_PROFILE; default `ci` when CI is set, else `dev`):
    ci        derandomized, bounded (200 examples), no example database, reproduction blobs
    dev       moderate example counts, a directory database (.hypothesis/ or
              $HYPOTHESIS_DATABASE_DIR)
    thorough  many examples and long stateful runs, for a soak before a release
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import attrs
import pytest
from hypothesis import HealthCheck, settings
from hypothesis.database import DirectoryBasedExampleDatabase

from sspi_model import CredentialUse, SecStatus, Sspi, is_error
from sspi_model.results import SecurityContextResult

# `sspi-model check` run by a test keeps its examples in a scratch directory, not the user's
# cache (sspi_model/testing/database.py); tests of the database pass their own.
os.environ.setdefault(
    "SSPI_MODEL_DATABASE", tempfile.mkdtemp(prefix="sspi-model-db-")
)
# And in one process, so its output reaches capsys; tests of --jobs pass --jobs themselves.
os.environ.setdefault("SSPI_MODEL_JOBS", "1")

# Where failing examples are kept between runs (dev, thorough). HYPOTHESIS_DATABASE_DIR points
# several machines at one shared directory so they pool what they found.
EXAMPLES = DirectoryBasedExampleDatabase(
    os.environ.get("HYPOTHESIS_DATABASE_DIR")
    or Path(__file__).resolve().parent.parent / ".hypothesis" / "examples"
)
settings.register_profile(
    "ci",
    derandomize=True,
    max_examples=200,
    stateful_step_count=40,
    deadline=None,
    print_blob=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.register_profile(
    "dev",
    max_examples=60,
    stateful_step_count=40,
    deadline=None,
    print_blob=True,
    database=EXAMPLES,
)
settings.register_profile(
    "thorough",
    max_examples=2000,
    stateful_step_count=100,
    deadline=None,
    print_blob=True,
    database=EXAMPLES,
    suppress_health_check=[HealthCheck.too_slow],
)
HYPOTHESIS_PROFILE = os.environ.get("HYPOTHESIS_PROFILE") or (
    "ci" if os.environ.get("CI") else "dev"
)
settings.load_profile(HYPOTHESIS_PROFILE)

# The shared account database of the simulated machine: client and server processes see it.
ACCOUNTS = {"DOM\\alice": "alice-pw", "bob": "bob-pw"}


def build_sspi(**kwargs: Any) -> Sspi:
    """An Sspi with the default packages (Negotiate, NTLM, Schannel) and the test accounts."""
    kwargs.setdefault("accounts", ACCOUNTS)
    return Sspi(**kwargs)


@pytest.fixture(scope="session")
def make_sspi() -> Callable[..., Sspi]:
    """The Sspi factory (session-scoped: it is stateless, so @given tests may use it)."""
    return build_sspi


@attrs.define
class Handshake:
    """The results of one client/server exchange, leg by leg."""

    client: Sspi
    server: Sspi
    client_credential: Any
    server_credential: Any
    client_legs: list[SecurityContextResult] = attrs.Factory(list)
    server_legs: list[SecurityContextResult] = attrs.Factory(list)

    @property
    def client_context(self) -> Any:
        return self.client_legs[0].new_context

    @property
    def server_context(self) -> Any:
        return self.server_legs[0].new_context if self.server_legs else None

    @property
    def statuses(self) -> list[SecStatus]:
        """Leg statuses in call order: ISC, ASC, ISC, ASC, ..."""
        out: list[SecStatus] = []
        for index, leg in enumerate(self.client_legs):
            out.append(leg.status)
            if index < len(self.server_legs):
                out.append(self.server_legs[index].status)
        return out


def run_handshake(
    client: Sspi,
    server: Sspi,
    package: str = "NTLM",
    *,
    client_auth: Any = None,
    server_package: str | None = None,
    context_req: int = 0,
    max_legs: int = 4,
) -> Handshake:
    """Drive ISC/ASC until both sides stop asking to continue or a leg fails."""
    ccred = client.acquire_credentials_handle(package, CredentialUse.OUTBOUND, client_auth)
    scred = server.acquire_credentials_handle(server_package or package, CredentialUse.INBOUND)
    assert ccred.status == SecStatus.SEC_E_OK and scred.status == SecStatus.SEC_E_OK
    hs = Handshake(client, server, ccred.credential, scred.credential)
    cctx = sctx = None
    token: bytes | None = None
    for _ in range(max_legs):
        leg = client.initialize_security_context(
            ccred.credential, cctx, "HOST/server", context_req, token
        )
        hs.client_legs.append(leg)
        cctx = leg.new_context
        if is_error(leg.status) or not leg.output_token:
            break
        reply = server.accept_security_context(
            scred.credential, sctx, leg.output_token, context_req
        )
        hs.server_legs.append(reply)
        sctx = reply.new_context
        if reply.status != SecStatus.SEC_I_CONTINUE_NEEDED:
            break
        token = reply.output_token
    return hs


@pytest.fixture(scope="session")
def handshake() -> Callable[..., Handshake]:
    return run_handshake
