"""Issue 12: a tool users can trust with their CI. Each test repeats one trial item.

The toy backends live here so that `--backend test_cli_trust:NAME` loads them (tests/ is on
sys.path, as conftest.py's directory) and the subprocess runs get PYTHONPATH=tests.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import attrs
import pytest

from sspi_model import SecHandle, SecStatus, cli
from sspi_model.backends import BackendFailure, Capabilities, ModelBackend
from sspi_model.rulebook import documents
from sspi_model.testing.check import SATURATION, CheckReport, check_backend
from sspi_model.testing.guard import guarded, python_method

TESTS = Path(__file__).resolve().parent
ROOT = TESTS.parent
EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_ENVIRONMENT = 0, 1, 2, 3


class RaisingBackend(ModelBackend):
    """The model, except that deleting what it cannot delete raises KeyError."""

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self.capabilities = Capabilities(name="raising-toy", packages=self.capabilities.packages)

    def delete_security_context(self, context: SecHandle | None) -> SecStatus:
        status = super().delete_security_context(context)
        if status != SecStatus.SEC_E_OK:
            raise KeyError("oops")
        return status


class KnowsItsRaising(RaisingBackend):
    """The raising toy with its own known-divergence list (CLI-004)."""

    known_divergences = str(TESTS / "data" / "raising-toy-known.toml")


class WrongTypeBackend(RaisingBackend):
    def delete_security_context(self, context: SecHandle | None) -> SecStatus:
        return "SEC_E_OK"  # type: ignore[return-value]


def junk_factory() -> int:
    return 5


def exploding_factory() -> ModelBackend:
    raise KeyError("no backend today")


@pytest.fixture
def run(capsys: pytest.CaptureFixture[str]) -> Any:
    def invoke(*argv: str) -> tuple[int, str, str]:
        code = cli.main(list(argv))
        captured = capsys.readouterr()
        return code, captured.out, captured.err

    return invoke


# -- CLI-001..003: no lost verdicts -----------------------------------------------------------


@pytest.mark.rule("CLI-001")
@pytest.mark.rule("CMP-005")
def test_a_raising_backend_is_a_divergence_and_the_campaign_goes_on(run: Any) -> None:
    code, out, err = run("check", "--backend", "test_cli_trust:RaisingBackend", "--examples", "20")
    assert code == EXIT_FAILED
    assert "internal error" not in err
    assert "observed EXCEPTION:KeyError: 'oops'" in out
    assert "| DeleteSecurityContext(" in out  # the steps, shrunk
    assert "python (paste and run):" in out
    # the campaign went on past the raising call, to SATURATION last rounds that found
    # nothing new (CMP-005; stderr has no progress off a terminal, CLI-015: the report's round
    # count shows it)
    rounds = re.search(r"(\d+) new, \d+ known divergence\(s\); (\d+) round\(s\)", out)
    assert rounds is not None
    assert int(rounds.group(2)) >= int(rounds.group(1)) + SATURATION
    assert out.rstrip().splitlines()[-1].startswith("verdict: FAILED")


@pytest.mark.rule("CLI-001")
def test_a_factory_that_raises_is_reported_and_one_returning_junk_is_a_usage_error(
    run: Any,
) -> None:
    report = check_backend("exploding", exploding_factory, examples=5)
    assert [d.observed for d in report.new] == ["EXCEPTION:KeyError: 'no backend today'"]
    code, _out, err = run("check", "--backend", "test_cli_trust:junk_factory")
    assert code == EXIT_USAGE
    assert "the factory returned 5 (int), which is not a Backend" in err


@pytest.mark.rule("CLI-002")
def test_a_python_call_that_does_not_return_is_a_hang() -> None:
    started = time.monotonic()
    with pytest.raises(BackendFailure) as failure:
        guarded("delete_security_context", lambda: time.sleep(5), timeout=0.2)
    assert failure.value.outcome == "HANG"
    assert "did not return within 0.2 s" in failure.value.detail
    assert time.monotonic() - started < 2


@pytest.mark.rule("CLI-003")
def test_a_wrong_result_type_is_named() -> None:
    with pytest.raises(BackendFailure) as failure:
        guarded("delete_security_context", lambda: "SEC_E_OK", model_result=SecStatus.SEC_E_OK)
    assert failure.value.outcome == (
        "WRONG-TYPE:delete_security_context returned 'SEC_E_OK' (str); expected SecStatus"
    )
    assert python_method("AcquireCredentialsHandleW") == "acquire_credentials_handle"
    report = check_backend("wrong", WrongTypeBackend, examples=10, max_rounds=2)
    assert any(d.observed.startswith("WRONG-TYPE:delete_security_context") for d in report.new)


def test_examples_below_one_is_a_usage_error(run: Any) -> None:
    assert run("check", "--examples", "0")[0] == EXIT_USAGE


# -- CLI-008: the exit status survives a closed pipe ------------------------------------------


def _shell(command: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(TESTS)}
    return subprocess.run(
        ["bash", "-c", f"set -o pipefail; {command}"],
        capture_output=True, text=True, env=env, timeout=120, check=False,
    )


@pytest.mark.rule("CLI-008")
def test_a_failed_check_piped_into_head_still_exits_1() -> None:
    sspi_model = f"{sys.executable} -m sspi_model"
    done = _shell(
        f"{sspi_model} check --backend test_cli_trust:RaisingBackend --examples 20 | head -1"
    )
    assert done.returncode == EXIT_FAILED, done.stderr
    assert len(done.stdout.splitlines()) == 1
    assert "Traceback" not in done.stderr
    both = _shell(
        f"{sspi_model} check --backend test_cli_trust:RaisingBackend --examples 20 2>&1 | head -1"
    )
    assert both.returncode == EXIT_FAILED, both.stdout
    ok = _shell(f"{sspi_model} rules | head -1")
    assert ok.returncode == EXIT_OK, ok.stderr


# -- CLI-004: known divergences travel with the backend ---------------------------------------


@pytest.mark.rule("CLI-004")
def test_known_lists_from_a_file_and_from_the_backend(run: Any) -> None:
    known = str(TESTS / "data" / "raising-toy-known.toml")
    spec = "test_cli_trust:RaisingBackend"
    code, out, _err = run("check", "--backend", spec, "--examples", "20", "--known", known)
    assert code == EXIT_OK, out
    assert "[known TOY-RAISES]" in out
    own = "test_cli_trust:KnowsItsRaising"
    code, out, _err = run("check", "--backend", own, "--examples", "20")
    assert code == EXIT_OK, out
    assert out.startswith("raising-toy:")  # one name: capabilities.name
    code, _out, err = run("check", "--backend", spec, "--known", "no-such.toml")
    assert code == EXIT_USAGE and "no such file" in err


# -- CLI-005: honest defaults -----------------------------------------------------------------


@pytest.mark.rule("CLI-005")
def test_a_missing_library_is_said_loudly(run: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SSPI_MODEL_LIBRARY", "/nonexistent/libsspi.so")
    code, out, err = run("check", "--examples", "5")
    assert code == EXIT_OK
    lines = out.rstrip().splitlines()
    assert "ran: model" in lines
    assert any(line.startswith("skipped: sspi-rs: ") and "pip install" in line for line in lines)
    assert any("not that any real SSPI library conforms" in line for line in lines)
    assert lines[-1].startswith("verdict: PASSED")
    assert "SKIPPED" in err
    code, out, _err = run("check", "--backend", "sspi-rs", "--examples", "5")
    assert code == EXIT_ENVIRONMENT
    last = out.rstrip().splitlines()[-1]
    assert last == "verdict: NOT CHECKED: no backend could run (ran: nothing; skipped: sspi-rs)"


# -- CLI-006: reproducers that run ------------------------------------------------------------


@pytest.mark.rule("CLI-006")
def test_every_report_carries_a_program_that_runs(run: Any, tmp_path: Path) -> None:
    spec = "test_cli_trust:RaisingBackend"
    reports = {fmt: tmp_path / f"r.{fmt}" for fmt in ("json", "md", "txt")}
    assert run("check", "--backend", spec, "--examples", "20", "--report", str(reports["json"]))[0]
    checked = check_backend("raising-toy", RaisingBackend, examples=20, spec=spec)
    every = CheckReport((checked,), 0)
    assert "Reproduce (paste and run):" in every.render("md")
    assert "python (paste and run):" in every.render("text")
    data = json.loads(reports["json"].read_text())
    program = tmp_path / "repro.py"
    program.write_text(data["divergences"][0]["python"])
    env = {**os.environ, "PYTHONPATH": str(TESTS)}
    done = subprocess.run(
        [sys.executable, str(program)], capture_output=True, text=True, env=env, check=False
    )
    assert done.returncode == 1, done.stderr
    assert "EXCEPTION:KeyError" in done.stdout
    code, out, _err = run("reproduce", str(reports["json"]), "1")
    assert code == EXIT_FAILED
    assert "reproduces on test_cli_trust:RaisingBackend" in out
    assert run("reproduce", str(reports["json"]), "99")[0] == EXIT_USAGE


# -- CLI-007: what the wheel ships ------------------------------------------------------------


@pytest.mark.rule("CLI-007")
def test_docs_prints_paths_that_exist_and_version(run: Any) -> None:
    code, out, _err = run("docs", "--json")
    assert code == EXIT_OK
    paths = json.loads(out)
    assert {"rules", "trace-schema", "trace-format", "diagrams", "sources"} <= set(paths)
    assert all(Path(path).exists() for path in paths.values())
    assert documents()["rules"].is_file()
    code, out, _err = run("--version")
    assert code == EXIT_OK and out.startswith("sspi-model ")


@pytest.mark.rule("CLI-007")
def test_every_probe_and_decompiled_rule_cites_a_source_in_the_repository() -> None:
    from sspi_model.rulebook import load_rules

    for rule in load_rules().values():
        if rule.provenance not in ("probe", "decompiled"):
            continue
        cited = [word for word in rule.source.split() if word.startswith("specs/sources/")]
        external = rule.source.startswith("https://")
        assert cited or external, f"{rule.id}: {rule.source}"
        for path in cited:
            assert (ROOT / path.rstrip(",;:)")).is_file(), f"{rule.id} cites {path}"
    assert (ROOT / "LICENSE").read_text().startswith("MIT License")


def test_the_readme_install_lines_are_true() -> None:
    readme = (ROOT / "README.md").read_text()
    assert 'pip install "sspi-model[native]"' not in readme
    assert "thread_safe=True" in readme.split("## Performance")[0]



# -- CLI-009: replay --backend judges as check judges -----------------------------------------


class NoExpiryBackend(KnowsItsRaising):
    """Returns no expiry (as sspi-rs): a field check does not compare."""

    def acquire_credentials_handle(self, *args: Any, **kwargs: Any) -> Any:
        result = super().acquire_credentials_handle(*args, **kwargs)
        return attrs.evolve(result, expiry=None)


def _explicit_trace(path: Path) -> None:
    from sspi_model import AuthIdentity, CredentialUse, Sspi
    from sspi_model.trace import Recorder, write_trace

    accounts = {"CONTOSO\\alice": "Passw0rd!"}
    recorder, client = Recorder(), Sspi(accounts=accounts)
    recorder.attach(client, "client")
    alice = AuthIdentity(user="alice", domain="CONTOSO", password="Passw0rd!")
    cred = client.acquire_credentials_handle(
        package="NTLM", credential_use=CredentialUse.OUTBOUND, auth_data=alice
    ).credential
    leg = client.initialize_security_context(credential=cred, target_name="host/srv")
    client.query_context_attributes(leg.new_context, 0)
    client.delete_security_context(leg.new_context)
    client.delete_security_context(None)  # the model refuses: the toy raises (TOY-RAISES)
    write_trace(path, recorder)


@pytest.mark.rule("CLI-009")
def test_replay_on_a_backend_compares_what_check_compares_and_honours_known(
    run: Any, tmp_path: Path
) -> None:
    trace = tmp_path / "t.jsonl"
    _explicit_trace(trace)
    code, out, _err = run("replay", str(trace), "--backend", "test_cli_trust:NoExpiryBackend")
    assert code == EXIT_OK, out
    assert "KNOWN: raising-toy diverges here as known divergence TOY-RAISES" in out
    assert "expiry" not in out
    code, out, _err = run(
        "replay", str(trace), "--backend", "test_cli_trust:RaisingBackend", "--json"
    )
    assert code == EXIT_FAILED  # no known list for this one: the exception fails the replay
    assert "KeyError" in json.loads(out)["what"]
    known = str(TESTS / "data" / "raising-toy-known.toml")
    code, out, _err = run(
        "replay", str(trace), "--backend", "test_cli_trust:RaisingBackend", "--known", known
    )
    assert code == EXIT_OK and "TOY-RAISES" in out


# -- CLI-011: Ctrl-C keeps the partial report -------------------------------------------------


class InterruptedBackend(RaisingBackend):
    """The raising toy, and Ctrl-C arrives during its 100th query."""

    calls = 0

    def query_context_attributes(self, context: Any, attribute: int) -> Any:
        InterruptedBackend.calls += 1
        if InterruptedBackend.calls >= 100:
            raise KeyboardInterrupt
        return super().query_context_attributes(context, attribute)


@pytest.mark.rule("CLI-011")
def test_ctrl_c_writes_the_partial_report_and_exits_130(run: Any, tmp_path: Path) -> None:
    InterruptedBackend.calls = 0
    report = tmp_path / "r.json"
    spec = "test_cli_trust:InterruptedBackend"
    code, out, err = run("check", "--backend", spec, "--examples", "200", "--report", str(report))
    assert code == 130
    assert "interrupted" in err
    data = json.loads(report.read_text())
    assert data["interrupted"] is True
    assert data["new_divergences"] >= 1  # the KeyError found before Ctrl-C
    assert out.rstrip().splitlines()[-1].startswith("verdict: INTERRUPTED")


# -- CLI-012: input errors as errors ----------------------------------------------------------


@pytest.mark.rule("CLI-012")
def test_input_errors_are_errors(run: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    code, out, _err = run("explain", "80090301")
    assert code == EXIT_OK and out.startswith("SEC_E_INVALID_HANDLE")
    code, out, _err = run("explain", "8009030c")
    assert code == EXIT_OK and out.startswith("SEC_E_LOGON_DENIED")
    code, out, _err = run("explain", "--list", "--json")
    assert code == EXIT_OK and any(e["name"] == "SEC_E_OK" for e in json.loads(out))
    code, _out, err = run("diagram", "--write", "--format", "dot", "--dir", str(tmp_path))
    assert code == EXIT_USAGE and "--format dot >" in err
    assert not list(tmp_path.iterdir())
    (tmp_path / "bad_backend.py").write_text("raise RuntimeError('half-installed')\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    code, _out, err = run("check", "--backend", "bad_backend:make")
    assert code == EXIT_USAGE
    assert "importing bad_backend raised RuntimeError: half-installed" in err


class HangingBackend(RaisingBackend):
    """The raising toy, except that deleting what it cannot delete never returns."""

    def delete_security_context(self, context: SecHandle | None) -> SecStatus:
        if ModelBackend.delete_security_context(self, context) != SecStatus.SEC_E_OK:
            time.sleep(30)
        return SecStatus.SEC_E_OK


@pytest.mark.rule("CLI-002")
def test_a_hanging_python_backend_is_reported_as_hang(monkeypatch: pytest.MonkeyPatch) -> None:
    from sspi_model.testing import guard

    monkeypatch.setattr(guard, "PYTHON_CALL_TIMEOUT", 0.05)
    report = check_backend("hanging", HangingBackend, examples=20, max_rounds=2)
    assert report.new and all(d.observed == "HANG" for d in report.new)
    assert report.new[0].call == "DeleteSecurityContext"
