"""The conformance kit: the model passes it, broken toy backends fail it with readable reports.

The pytester runs use the kit as a third party would: `--sspi-backend MODULE:FACTORY --pyargs
sspi_model.testing.kit`, with the repository root on sys.path for `tests.toy_backends`.
"""

from __future__ import annotations

import os
from importlib.metadata import entry_points
from pathlib import Path

import pytest
from toy_backends import CrashingBackend

from sspi_model.backends import ModelBackend
from sspi_model.testing.differential import ACCOUNTS
from sspi_model.testing.suite import ALICE, OUTBOUND, BackendConformance, Lockstep

pytest_plugins = ["pytester"]

ROOT = Path(__file__).resolve().parent.parent
KIT = ["--pyargs", "sspi_model.testing.kit"]


class TestConformance(BackendConformance):
    """The kit against --sspi-backend: the model by default, so the model runs its own kit;
    `pytest --sspi-backend MODULE:FACTORY` in this repository runs it against that backend."""


def _plugin() -> list[str]:
    """Load the plugin explicitly unless pytest loads it (installed sspi-model's entry point)."""
    installed = any(ep.name == "sspi_model" for ep in entry_points(group="pytest11"))
    if installed and not os.environ.get("PYTEST_DISABLE_PLUGIN_AUTOLOAD"):
        return []
    return ["-p", "sspi_model.testing.plugin"]


@pytest.fixture
def kit(pytester: pytest.Pytester) -> pytest.Pytester:
    pytester.syspathinsert(ROOT)
    return pytester


def test_the_kit_passes_on_the_model_as_a_factory(kit: pytest.Pytester) -> None:
    result = kit.runpytest(*_plugin(), "--sspi-backend", "sspi_model.backends:ModelBackend", *KIT)
    result.assert_outcomes(passed=len(_kit_tests(kit)))


def test_a_broken_backend_fails_with_call_expected_and_observed(kit: pytest.Pytester) -> None:
    broken = ["--sspi-backend", "tests.toy_backends:BrokenBackend"]
    result = kit.runpytest(*_plugin(), *broken, *KIT, "-k", "not differential", "-v")
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines(
        [
            "*test_ntlm_handshake PASSED*",
            "*_ TestConformance.test_delete_twice _*",
            "broken-toy differs from the model at delete_security_context(ctx1)",
            "  expected: SEC_E_OK  (model, profile 'documented'; rules DEL-003)",
            "  observed: SEC_E_INVALID_HANDLE  (broken-toy)",
            "  after these steps (same outcome on both):",
            "    1. cred1 = acquire_credentials_handle('NTLM', OUTBOUND, alice) -> SEC_E_OK, *",
            "    3. delete_security_context(ctx1) -> SEC_E_OK",
        ]
    )
    result.stdout.fnmatch_lines(
        [
            "broken-toy differs from the model at free_credentials_handle(None)",
            "  expected: SEC_E_INVALID_HANDLE  (model, *; rules FCH-002, HDL-005)",
            "  observed: SEC_E_INVALID_PARAMETER  (broken-toy)",
        ]
    )
    outcomes = result.parseoutcomes()
    assert outcomes["failed"] == 8, result.stdout.str()  # 6 NULL/zeroed, 2 deletes twice


def test_a_broken_backend_fails_the_differential_with_its_report(kit: pytest.Pytester) -> None:
    kit.makepyfile(
        test_broken="""
        from sspi_model.testing.suite import BackendConformance
        from tests.toy_backends import BrokenBackend

        class TestBroken(BackendConformance):
            differential_examples = 20  # enough to find one (seeded) without a long shrink

            def make_backend(self):
                return BrokenBackend()
        """
    )
    result = kit.runpytest(*_plugin(), "-k", "differential")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            "broken-toy: * new, 0 known divergence(s)*",
            "  [[]NEW[]] DeleteSecurityContext(*",
            "      rules: DEL-00*",
        ]
    )


def test_expectations_follow_the_profile(kit: pytest.Pytester) -> None:
    """Under strict-delete the broken toy's delete-twice is right and the model's default is not:
    nothing in the kit is hard-coded."""
    broken = ["--sspi-backend", "tests.toy_backends:BrokenBackend"]
    strict = ["--sspi-profile", "strict-delete", "-k", "delete_twice"]
    kit.runpytest(*_plugin(), *broken, *strict, *KIT).assert_outcomes(passed=1)
    model = ["--sspi-backend", "sspi_model.backends:ModelBackend"]
    kit.runpytest(*_plugin(), *model, *strict, *KIT).assert_outcomes(failed=1)


def test_what_the_backend_lacks_is_skipped_with_the_capability(kit: pytest.Pytester) -> None:
    minimal = ["--sspi-backend", "tests.toy_backends:MinimalBackend"]
    result = kit.runpytest(*_plugin(), *minimal, *KIT, "-k", "not differential", "-rs")
    assert result.ret == pytest.ExitCode.OK
    result.stdout.fnmatch_lines(["SKIPPED * minimal-toy: capabilities.packages lacks NTLM"])
    assert result.parseoutcomes()["passed"] >= 7  # the NULL handles, the unknown package


def test_an_unknown_backend_or_profile_is_a_one_line_usage_error(kit: pytest.Pytester) -> None:
    result = kit.runpytest(*_plugin(), "--sspi-backend", "nonsense", *KIT)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        ["ERROR: --sspi-backend: unknown backend 'nonsense'; accepted: model, *MODULE:FACTORY"]
    )
    result = kit.runpytest(*_plugin(), "--sspi-backend", "no_such_module:make", *KIT)
    result.stderr.fnmatch_lines(["ERROR: --sspi-backend: cannot load backend 'no_such_module:*"])
    result = kit.runpytest(*_plugin(), "--sspi-profile", "lenient", *KIT)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        ["ERROR: --sspi-profile: unknown profile 'lenient'; accepted: documented, *"]
    )


def test_a_crash_fails_with_its_outcome_and_resets_the_backend() -> None:
    backend = CrashingBackend()
    lockstep = Lockstep(ModelBackend(accounts=ACCOUNTS), backend)
    cred = lockstep.acquire_credentials_handle("NTLM", OUTBOUND, ALICE).credential
    context = lockstep.initialize_security_context(cred).new_context
    lockstep.delete_security_context(context)
    with pytest.raises(pytest.fail.Exception) as failure:
        lockstep.delete_security_context(context)
    message = str(failure.value)
    assert "at delete_security_context(ctx1)" in message
    assert "expected: SEC_E_OK" in message
    assert "observed: CRASH:SIGSEGV  (crashing-toy; the backend was reset)" in message
    assert backend.resets == 1


def _kit_tests(pytester: pytest.Pytester) -> list[str]:
    result = pytester.runpytest(*_plugin(), "--collect-only", "-q", *KIT)
    return [line for line in result.outlines if "::" in line]
