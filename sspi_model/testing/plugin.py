"""The conformance kit's pytest plugin: which backend to test, and the model's profile.

Registered as the `sspi_model` pytest11 entry point, so it is active wherever sspi-model is
installed (from a source tree that is not installed: `-p sspi_model.testing.plugin`).

    --sspi-backend SPEC   model (the default), sspi-rs, secur32, wine, agent:COMMAND (an SSPI
                          agent, specs/agent-protocol.md) or MODULE:FACTORY, where FACTORY
                          is a zero-argument callable (a class, a function) returning a Backend
    --sspi-known FILE     a TOML list of the backend's known divergences (repeatable); the kit
                          xfails them (besides the shipped list and `known_divergences`)
    --sspi-profile NAME   the model's profile (sspi_model.profiles.PROFILES), default documented

Fixtures: `sspi_backend_factory` (a zero-argument callable making a fresh Backend; a built-in
backend that cannot run here skips the tests using it) and `sspi_profile` (the profile name).

For testing your own SSPI code: `sspi_model`, a strict model whose teardown fails the test
naming every handle, async context and buffer still alive and the call that created it, and
every sanitizer rule broken (sspi_model.sanitizer); `sspi_model_factory(name, **options)` makes
more watched processes (a client and a server). Options by marker:
`@pytest.mark.sspi_model(rotate_context_handles=True, profile="ksecdd", strict=False)`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from sspi_model.backends.base import Backend
from sspi_model.backends.model import ModelBackend
from sspi_model.profiles import PROFILES
from sspi_model.sanitizer import SanitizedModels, SanitizerError
from sspi_model.testing.check import BackendUnavailable, backend_factory
from sspi_model.testing.differential import ACCOUNTS

_FACTORY = pytest.StashKey[Callable[[], Backend]]()
_UNAVAILABLE = pytest.StashKey[str]()


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("sspi-model", "sspi-model conformance kit")
    group.addoption(
        "--sspi-backend",
        metavar="SPEC",
        default="model",
        help="backend under test: model (default), sspi-rs, secur32, wine, agent:COMMAND or "
        "MODULE:FACTORY",
    )
    group.addoption(
        "--sspi-known",
        metavar="FILE",
        action="append",
        default=[],
        help="a TOML list of the backend's known divergences (repeatable): the kit's tests "
        "xfail them and test_differential reports them as known",
    )
    group.addoption(
        "--sspi-profile",
        metavar="NAME",
        default="documented",
        help=f"the model's profile: {', '.join(PROFILES)} (default documented)",
    )


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "rule(*ids): the rulebook rules a test covers")
    config.addinivalue_line(
        "markers", "sspi_model(**options): options of the sspi_model fixture (SanitizedModels)"
    )
    profile = config.getoption("sspi_profile")
    if profile not in PROFILES:
        raise pytest.UsageError(
            f"--sspi-profile: unknown profile {profile!r}; accepted: {', '.join(PROFILES)}"
        )
    spec = config.getoption("sspi_backend")
    if spec == "model":
        config.stash[_FACTORY] = lambda: ModelBackend(accounts=ACCOUNTS, profile=profile)
        return
    try:
        _name, factory = backend_factory(spec)
    except BackendUnavailable as error:
        config.stash[_UNAVAILABLE] = f"--sspi-backend {spec}: {error}"
    except ValueError as error:
        raise pytest.UsageError(f"--sspi-backend: {error}") from None
    else:
        config.stash[_FACTORY] = factory


def pytest_report_header(config: pytest.Config) -> list[str]:
    backend, profile = config.getoption("sspi_backend"), config.getoption("sspi_profile")
    if (backend, profile) == ("model", "documented"):
        return []  # the defaults: say nothing in every other project's test run
    return [f"sspi-model: backend {backend}, model profile {profile}"]


@pytest.fixture
def sspi_backend_factory(request: pytest.FixtureRequest) -> Callable[[], Backend]:
    """A zero-argument callable returning a fresh backend (the one chosen by --sspi-backend)."""
    unavailable = request.config.stash.get(_UNAVAILABLE, None)
    if unavailable is not None:
        pytest.skip(unavailable)
    return request.config.stash[_FACTORY]


@pytest.fixture
def sspi_known_files(request: pytest.FixtureRequest) -> list[str]:
    """The --sspi-known files (CLI-004)."""
    files: list[str] = list(request.config.getoption("sspi_known"))
    return files


@pytest.fixture
def sspi_profile(request: pytest.FixtureRequest) -> str:
    """The model's profile name (--sspi-profile)."""
    profile: str = request.config.getoption("sspi_profile")
    return profile


@pytest.fixture
def sspi_model_factory(request: pytest.FixtureRequest) -> Iterator[SanitizedModels]:
    """Makes watched Sspi processes; at teardown, any finding fails the test (SAN-005)."""
    marker = request.node.get_closest_marker("sspi_model")
    options: dict[str, Any] = {"accounts": ACCOUNTS, **(marker.kwargs if marker else {})}
    try:
        models = SanitizedModels(**options)
    except NotImplementedError as error:
        pytest.fail(str(error), pytrace=False)
    yield models
    findings = models.check()
    if findings:
        pytest.fail(str(SanitizerError(findings)), pytrace=False)


@pytest.fixture
def sspi_model(sspi_model_factory: SanitizedModels) -> Any:
    """A strict model (an Sspi); teardown fails the test on anything leaked or misused."""
    return sspi_model_factory("process")
