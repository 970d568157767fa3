"""The `sspi_model` fixture of the installed plugin, on a small example client (tests/)."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest_plugins = ["pytester"]
rule = pytest.mark.rule
HERE = Path(__file__).resolve().parent

CLIENT_TEST = """
import pytest
from example_client import NegotiateAuth, authenticate

{marker}
def test_login(sspi_model_factory):
    client_process, server = sspi_model_factory("client"), sspi_model_factory("server")
    client = NegotiateAuth(client_process, {bugs})
    credential, context = authenticate(client, server)
    client.close()
    server.delete_security_context(context)
    server.free_credentials_handle(credential)
"""


def run_inner(pytester: pytest.Pytester, marker: str = "", bugs: str = "") -> pytest.RunResult:
    pytester.syspathinsert(HERE)
    pytester.makepyfile(test_inner=CLIENT_TEST.format(marker=marker, bugs=bugs))
    return pytester.runpytest_inprocess("-p", "no:randomly", "-p", "no:cacheprovider")


@rule("SAN-005")
def test_the_fixture_fails_a_test_that_leaks_naming_the_context_and_its_call(
    pytester: pytest.Pytester,
) -> None:
    result = run_inner(pytester, bugs="leak_context=True")
    result.assert_outcomes(passed=1, errors=1)
    result.stdout.fnmatch_lines(
        [
            "*[[]SAN-005[]] client: security context $ctx1 created by InitializeSecurityContextW"
            " (call 2) is still alive*"
        ]
    )


def test_the_fixture_passes_the_fixed_client(pytester: pytest.Pytester) -> None:
    run_inner(pytester).assert_outcomes(passed=1)


def test_the_plain_fixture_is_a_strict_model(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_plain="""
from sspi_model import Sspi
def test_strict(sspi_model):
    assert isinstance(sspi_model, Sspi) and sspi_model.strict
def test_leak(sspi_model):
    sspi_model.create_async_context()
"""
    )
    result = pytester.runpytest_inprocess("-p", "no:randomly", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=2, errors=1)
    result.stdout.fnmatch_lines(["*async context $actx1 created by SspiCreateAsyncContext*"])


def test_marker_options_reach_the_model(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_options="""
import pytest
@pytest.mark.sspi_model(profile="ksecdd", strict=False)
def test_options(sspi_model):
    assert sspi_model.profile.name == "ksecdd" and not sspi_model.strict
"""
    )
    pytester.runpytest_inprocess("-p", "no:randomly").assert_outcomes(passed=1)


@rule("SAN-004", "ROT-001")
def test_rotation_catches_a_stale_context_handle(pytester: pytest.Pytester) -> None:
    marker = "@pytest.mark.sspi_model(rotate_context_handles=True)"
    result = run_inner(pytester, marker=marker, bugs="stale_handle=True")
    # NTLM's client has two legs: the stale copy of leg 1's handle is next used to delete.
    result.stdout.fnmatch_lines(
        [
            "*[[]SAN-004[]] client: DeleteSecurityContext*released*",
            "*[[]SAN-005[]] client: security context*still alive*",
        ]
    )


def test_rotation_passes_a_client_that_follows_its_handle(pytester: pytest.Pytester) -> None:
    result = run_inner(pytester, marker="@pytest.mark.sspi_model(rotate_context_handles=True)")
    result.assert_outcomes(passed=1)


def test_the_readme_fixture_example_fails_as_its_comment_says(pytester: pytest.Pytester) -> None:
    readme = (HERE.parent / "README.md").read_text(encoding="utf-8")
    block = readme.split("<!-- fixture-example -->\n```python\n", 1)[1].split("```", 1)[0]
    assert len(block.strip().splitlines()) <= 10
    pytester.makepyfile(test_readme_example=block)
    result = pytester.runpytest_inprocess("-p", "no:randomly", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=1, errors=1)
    result.stdout.fnmatch_lines(
        [
            "*[[]SAN-005[]] process: security context $ctx1 created by InitializeSecurityContextW"
            " (call 2) is still alive*"
        ]
    )
