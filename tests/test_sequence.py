"""Runs drawn as Mermaid sequence diagrams (CLI-016): demo --format mermaid, replay --format
mermaid, and the README's copy kept current."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from sspi_model import scenarios
from sspi_model.cli import main
from sspi_model.sequence import StateNotes, sequence_diagram
from sspi_model.trace import Recorder

README = Path(__file__).resolve().parent.parent / "README.md"
README_MARK = "<!-- sequence: sspi-model demo --format mermaid -->"
rule = pytest.mark.rule
# The scenarios whose traces the model replays (README: curl's does not replay yet).
REPLAYABLE = [name for name in scenarios.SCENARIOS if name != "curl"]


def _demo(capsys: pytest.CaptureFixture[str], *argv: str) -> str:
    assert main(["demo", *argv, "--format", "mermaid"]) == 0
    return capsys.readouterr().out


def _live(name: str) -> str:
    recorder = Recorder()
    notes = StateNotes(recorder)
    scenarios.run_scenario(name, scenarios.Narrator(lambda line: None, color=False), recorder)
    return sequence_diagram(recorder.trace(), notes.states)


@rule("CLI-016")
def test_demo_draws_a_lifeline_per_process_and_per_async_context(
    capsys: pytest.CaptureFixture[str],
) -> None:
    out = _demo(capsys)
    assert out.startswith("sequenceDiagram\n")
    participants = re.findall(r"^    participant (\S+) as (.+)$", out, re.M)
    assert [label for _, label in participants] == ["server", "client", "$actx1 (server)"]
    # the async delete goes to the async context; its completion and callback come back
    assert "p_server->>a__actx1: [10] SspiDeleteSecurityContextAsync($ctx2)" in out
    assert "a__actx1-->>p_server: [12] $call1 (SspiDeleteSecurityContextAsync) completes" in out
    assert 'a__actx1-)p_server: [13] callback on_deleted($actx1, "connection 1")' in out
    # a token passed between the processes, and the states after a step
    assert "p_client-->>p_server: token of [3]" in out
    assert "Note right of p_server: $cred1 credential live<br/>$ctx2 context deleted" in out
    assert "narrat" not in out and "== " not in out  # the diagram only, no narration


@rule("CLI-016")
def test_misuse_is_highlighted_with_its_rule(capsys: pytest.CaptureFixture[str]) -> None:
    out = _demo(capsys, "overview")
    box = re.search(r"    rect rgb\(255, 214, 214\)\n        Note over (.*?): (.*)\n    end", out)
    assert box is not None
    assert box.group(1) == "p_server_inline,a__actx2"
    assert box.group(2).startswith(
        "[21] MISUSE ASY-052: SspiGetAsyncCallStatus($actx2) raised SspiMisuse<br/>"
        "the async context was freed with SspiFreeAsyncContext#59; create"
    )
    # `;` would end a Mermaid statement: it is written as an entity
    assert "#59;" in box.group(2) and ";" not in box.group(2).replace("#59;", "")


@rule("CLI-016")
@pytest.mark.parametrize("name", REPLAYABLE)
def test_replay_draws_a_trace_as_the_demo_draws_the_run(
    name: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # The notes of a trace file come from replaying it on the model: the same as the live run.
    trace = tmp_path / "t.jsonl"
    assert main(["demo", name, "--trace", str(trace)]) == 0
    capsys.readouterr()
    assert main(["replay", str(trace), "--format", "mermaid"]) == 0
    assert capsys.readouterr().out == _live(name)


@rule("CLI-016")
def test_replay_of_a_trace_the_model_rejects_still_draws_and_fails(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    trace = tmp_path / "t.jsonl"
    assert main(["demo", "--trace", str(trace)]) == 0
    capsys.readouterr()
    lines = trace.read_text(encoding="utf-8").splitlines()
    record = json.loads(lines[11])  # seq 11: SspiGetAsyncCallStatus, pending
    record["status"] = "SEC_E_OK"
    lines[11] = json.dumps(record)
    trace.write_text("\n".join(lines) + "\n", encoding="utf-8")
    assert main(["replay", str(trace), "--format", "mermaid"]) == 1
    captured = capsys.readouterr()
    assert captured.out.startswith("sequenceDiagram\n")
    assert "[11] SspiGetAsyncCallStatus() → SEC_E_OK" in captured.out
    assert "does not allow the trace at line 12" in captured.err


@rule("CLI-016")
def test_demo_mermaid_with_a_trace_keeps_stdout_a_diagram(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = _demo(capsys, "--trace", str(tmp_path / "t.jsonl"))
    assert "trace written" not in out
    assert (tmp_path / "t.jsonl").exists()


@rule("CLI-016")
def test_the_readme_embeds_the_current_diagram() -> None:
    text = README.read_text(encoding="utf-8")
    found = re.search(re.escape(README_MARK) + r"\n```mermaid\n(.*?)```", text, re.S)
    assert found is not None, f"README.md has no ```mermaid block after {README_MARK}"
    expected = _live(scenarios.DEFAULT_SCENARIO)
    assert found.group(1) == expected, (
        "README.md's sequence diagram is stale: replace its ```mermaid block with the output "
        "of `sspi-model demo --format mermaid`"
    )


@rule("CLI-016")
def test_replay_mermaid_of_a_bad_trace_says_why_on_stderr(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    trace = tmp_path / "t.jsonl"
    assert main(["demo", "--trace", str(trace)]) == 0
    capsys.readouterr()
    header, *records = trace.read_text(encoding="utf-8").splitlines()
    bad_header = tmp_path / "header.jsonl"
    bad_header.write_text(
        "\n".join([header.replace('"documented"', '"nope"'), *records]) + "\n", encoding="utf-8"
    )
    assert main(["replay", str(bad_header), "--format", "mermaid"]) == 1
    captured = capsys.readouterr()
    assert captured.out.startswith("sequenceDiagram\n")  # the records, without state notes
    assert "Note right of" not in captured.out
    assert "unknown profile 'nope'" in captured.err and "Traceback" not in captured.err
    junk = tmp_path / "junk.jsonl"
    junk.write_text('{"seq": 1, "process": "x", "call": "Nope", "args": {}}\n', encoding="utf-8")
    assert main(["replay", str(junk), "--format", "mermaid"]) == 1
    assert (
        'line 1: expected the C name of an SSPI function; found "Nope"' in capsys.readouterr().err
    )


def test_replay_json_and_mermaid_together_is_a_usage_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    trace = tmp_path / "t.jsonl"
    assert main(["demo", "ntlm", "--trace", str(trace)]) == 0
    assert main(["replay", str(trace), "--format", "mermaid", "--json"]) == 2
    assert "choose one" in capsys.readouterr().err
