"""The sspi-model command, run in-process through main()."""

from __future__ import annotations

import json
import sys
import types
from pathlib import Path
from typing import Any

import attrs
import pytest

from sspi_model import cli, diagrams
from sspi_model.backends.model import ModelBackend

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_ENVIRONMENT = 0, 1, 2, 3


@attrs.frozen
class Run:
    code: int
    out: str
    err: str


@pytest.fixture
def run(capsys: pytest.CaptureFixture[str]) -> Any:
    def invoke(*argv: str) -> Run:
        code = cli.main(list(argv))
        captured = capsys.readouterr()
        return Run(code, captured.out, captured.err)

    return invoke


def one_line_usage_error(result: Run, *words: str) -> None:
    assert result.code == EXIT_USAGE
    assert result.out == ""
    assert len(result.err.strip().splitlines()) == 1, result.err
    assert "Traceback" not in result.err
    for word in words:
        assert word in result.err


# -- demo and replay -------------------------------------------------------------------------


def test_demo_with_a_trace_then_replay_succeeds(run: Any, tmp_path: Path) -> None:
    trace = tmp_path / "t.jsonl"
    demo = run("demo", "--trace", str(trace))
    assert demo.code == EXIT_OK
    assert "SspiDeleteSecurityContextAsync" in demo.out
    assert "SEC_I_ASYNC_CALL_PENDING (0x00090368)" in demo.out
    assert f"trace written to {trace}" in demo.out
    assert "\033[" not in demo.out  # not a TTY: no colour
    replay = run("replay", str(trace))
    assert replay.code == EXIT_OK, replay.out
    assert "OK: the model allows all" in replay.out


def test_replay_names_the_line_whose_status_was_edited(run: Any, tmp_path: Path) -> None:
    trace = tmp_path / "t.jsonl"
    run("demo", "ntlm", "--trace", str(trace))
    lines = trace.read_text(encoding="utf-8").splitlines()
    number = next(n for n, text in enumerate(lines, 1) if '"call": "DeleteSecurityContext"' in text)
    lines[number - 1] = lines[number - 1].replace('"SEC_E_OK"', '"SEC_E_INVALID_HANDLE"')
    trace.write_text("\n".join(lines) + "\n", encoding="utf-8")
    replay = run("replay", str(trace))
    assert replay.code == EXIT_FAILED
    assert f"line {number}" in replay.out
    assert "  trace:  SEC_E_INVALID_HANDLE (0x80090301)" in replay.out
    assert "  model:  SEC_E_OK (0x00000000)" in replay.out
    verdict = json.loads(run("replay", str(trace), "--json").out)
    assert verdict["ok"] is False and verdict["line"] == number


def test_replay_json_on_the_model_backend(run: Any, tmp_path: Path) -> None:
    trace = tmp_path / "t.jsonl"
    run("demo", "overview", "--trace", str(trace))
    result = run("replay", str(trace), "--backend", "model", "--json")
    assert result.code == EXIT_OK, result.out
    verdict = json.loads(result.out)
    assert verdict["ok"] is True and verdict["backend"] == "model"


class SyncOnly(ModelBackend):
    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self.capabilities = attrs.evolve(self.capabilities, name="sync-only", async_api=False)


def test_replaying_async_records_on_a_sync_backend_exits_3(
    run: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    module = types.ModuleType("fake_backends")
    module.SyncOnly = SyncOnly  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "fake_backends", module)
    trace = tmp_path / "t.jsonl"
    run("demo", "--trace", str(trace))
    result = run("replay", str(trace), "--backend", "fake_backends:SyncOnly")
    assert result.code == EXIT_ENVIRONMENT
    assert "backend sync-only has no async support" in result.out
    assert "UNSUPPORTED" in result.out


def test_demo_list_names_every_scenario(run: Any) -> None:
    result = run("demo", "--list")
    assert result.code == EXIT_OK
    for name in ("async-delete", "overview", "msquic", "httpsys", "ntlm", "schannel"):
        assert name in result.out


# -- explain ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "code", ["0x80090301", "-2146893055", "2148074241", "SEC_E_INVALID_HANDLE", "0X80090301"]
)
def test_explain_accepts_every_spelling(run: Any, code: str) -> None:
    result = run("explain", code)
    assert result.code == EXIT_OK
    assert result.out.startswith("SEC_E_INVALID_HANDLE  0x80090301  (signed -2146893055")
    assert "The handle passed to the function is not valid." in result.out
    assert "DeleteSecurityContext" in result.out and "SspiDeleteSecurityContextAsync" in result.out
    assert "HDL-004" in result.out  # a rule whose statement names the code


def test_explain_json_lists_calls_refusals_and_rules(run: Any) -> None:
    result = json.loads(run("explain", "SEC_E_INVALID_PARAMETER", "--json").out)
    assert result["hex"] == "0x8009035D"
    assert {"call": "SspiSetAsyncNotifyCallback", "state": "pending", "rules": ["ASY-017"]} in (
        result["refused_by"]
    )
    assert "ASY-003" in [rule["id"] for rule in result["rules"]]


def test_explain_an_ntstatus_and_the_list(run: Any) -> None:
    assert "STATUS_INVALID_DEVICE_STATE" in run("explain", "0xC0000184").out
    listing = run("explain", "--list").out
    assert "0x80090301  SEC_E_INVALID_HANDLE" in listing and "STATUS_SUCCESS" in listing


# -- rules and diagrams ----------------------------------------------------------------------


def test_rules_grep_shows_matching_rules_with_provenance(run: Any) -> None:
    result = run("rules", "--grep", "delete")
    assert result.code == EXIT_OK
    assert "DEL-001  [doc]" in result.out and "source:" in result.out
    rules = json.loads(run("rules", "--grep", "DELETE", "--json").out)
    assert {"DEL-001", "ASY-040"} <= {rule["id"] for rule in rules}
    assert all("delete" in json.dumps(rule).casefold() for rule in rules)


def test_diagram_prints_mermaid_or_dot(run: Any) -> None:
    mermaid = run("diagram")
    assert mermaid.code == EXIT_OK and mermaid.out.count("stateDiagram-v2") == 3
    dot = run("diagram", "async-context", "--format", "dot")
    assert dot.out.startswith('digraph "async-context" {') and "SspiFreeAsyncContext" in dot.out


def test_diagram_write_writes_the_generated_files(run: Any, tmp_path: Path) -> None:
    result = run("diagram", "--write", "--dir", str(tmp_path))
    assert result.code == EXIT_OK
    for name in diagrams.DIAGRAMS:
        assert (tmp_path / f"{name}.md").read_text(encoding="utf-8") == diagrams.markdown(name)


# -- check -----------------------------------------------------------------------------------


@attrs.frozen
class FakeReport:
    new_divergences: int
    backends: tuple[Any, ...] = ()

    def render(self, fmt: str) -> str:
        return f"<{fmt} report: {self.new_divergences} new>"


@pytest.fixture
def engine(monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """A stand-in for sspi_model.testing.check that records how run_check was called."""
    seen: dict[str, Any] = {"new": 0}

    def run_check(
        backends: list[str],
        examples: int,
        seed: int,
        progress: Any,
        *,
        ignore_known: bool,
        known_files: list[str],
        **campaign: Any,
    ) -> FakeReport:
        seen.update(backends=backends, examples=examples, seed=seed)
        if ignore_known:
            seen["ignore_known"] = True
        progress("checking...")
        return FakeReport(seen["new"])

    module = types.ModuleType(cli.CHECK_MODULE)
    module.run_check = run_check  # type: ignore[attr-defined]
    module.summary = lambda report: ["verdict: <fake>"]  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, cli.CHECK_MODULE, module)
    return seen


def test_check_passes_its_options_to_the_engine(run: Any, engine: dict[str, Any]) -> None:
    result = run(
        "check", "--backend", "model", "--backend", "x.y:z", "--examples", "7", "--seed", "3"
    )
    assert result.code == EXIT_OK
    assert engine == {"new": 0, "backends": ["model", "x.y:z"], "examples": 7, "seed": 3}
    assert result.out.strip() == "<text report: 0 new>\nverdict: <fake>"
    assert "checking..." not in result.err  # CLI-015: no progress when stderr is no terminal


def test_check_exits_1_on_new_divergences_and_writes_reports(
    run: Any, engine: dict[str, Any], tmp_path: Path
) -> None:
    engine["new"] = 2
    report = tmp_path / "divergences.md"
    result = run("check", "--json", "--report", str(report))
    assert result.code == EXIT_FAILED
    # With no --backend: the model, and the native library when one is installed.
    assert engine["backends"] == cli._default_check_backends()
    assert engine["backends"][0] == "model"
    assert result.out.strip() == "<json report: 2 new>"
    assert report.read_text(encoding="utf-8") == "<md report: 2 new>"


def test_check_without_the_engine_exits_3(run: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, cli.CHECK_MODULE, None)  # type: ignore[arg-type]
    result = run("check")
    assert result.code == EXIT_ENVIRONMENT
    assert "the check engine" in result.err and "Traceback" not in result.err


# -- errors, help, debug ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("argv", "words"),
    [
        (["explain", "SEC_E_NO_SUCH_THING"], ["unknown status", "accepted"]),
        (["explain", "0x12345678"], ["no code this model knows"]),
        (["explain", "99999999999"], ["unknown status"]),
        (["replay", "no-such-file.jsonl"], ["no such file"]),
        (["replay", "t.jsonl", "--backend", "nope"], ["unknown backend 'nope'", "MODULE:FACTORY"]),
        (["replay", "t.jsonl", "--backend", "no_such_module:f"], ["no module"]),
        (["replay", "t.jsonl", "--profile", "nope"], ["unknown profile", "ksecdd"]),
        (["demo", "nope"], ["unknown scenario", "async-delete"]),
        (["check", "--backend", "nope"], ["unknown backend"]),
        (["check", "--examples", "many"], ["invalid int value"]),
        (["diagram", "--format", "svg"], ["invalid choice"]),
        (["frobnicate"], ["invalid choice"]),
    ],
)
def test_bad_input_is_one_line_and_exit_2(run: Any, argv: list[str], words: list[str]) -> None:
    one_line_usage_error(run(*argv), *words)


def test_help_has_examples_and_exit_codes(run: Any) -> None:
    result = run("--help")
    assert result.code == EXIT_OK
    assert "examples:" in result.out and "exit codes:" in result.out
    sub = run("replay", "--help")
    assert sub.code == EXIT_OK and "sspi-model replay t.jsonl" in sub.out


def test_internal_errors_are_one_line_unless_debug(
    run: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(args: Any) -> int:
        raise RuntimeError("boom")

    monkeypatch.setattr(cli, "cmd_rules", broken)
    quiet = run("rules")
    assert quiet.code == EXIT_ENVIRONMENT
    assert quiet.err.strip() == (
        "sspi-model: internal error: RuntimeError: boom (run with --debug for the traceback)"
    )
    loud = run("rules", "--debug")
    assert "Traceback" in loud.err and "RuntimeError: boom" in loud.err


def test_colour_only_on_a_tty_without_no_color(monkeypatch: pytest.MonkeyPatch) -> None:
    class Tty:
        def isatty(self) -> bool:
            return True

    monkeypatch.delenv("NO_COLOR", raising=False)
    assert cli._color(Tty())  # type: ignore[arg-type]
    monkeypatch.setenv("NO_COLOR", "1")
    assert not cli._color(Tty())  # type: ignore[arg-type]


def test_an_unwritable_trace_path_is_a_usage_error(run: Any, tmp_path: Path) -> None:
    result = run("demo", "ntlm", "--trace", str(tmp_path / "missing" / "t.jsonl"))
    assert result.code == EXIT_USAGE
    assert result.err.strip().splitlines() == [
        f"sspi-model: cannot write '{tmp_path / 'missing' / 't.jsonl'}': No such file or directory"
    ]
