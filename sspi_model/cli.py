"""The `sspi-model` command: demo, replay, explain, rules, diagram, check, explore.

Exit codes (also in `sspi-model --help`):
    0  success
    1  a verdict failed: a trace the model does not allow, or new divergences
    2  usage error: unknown option, scenario, backend, profile or status code; unreadable input
    3  environment problem: a missing library or engine, a backend that cannot run the trace
    130  interrupted (Ctrl-C); check writes its partial report first
No command prints a Python traceback unless --debug is given.
"""

from __future__ import annotations

import argparse
import importlib
import io
import json
import os
import re
import sys
import threading
import time
import traceback
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, NoReturn, TextIO, TypeVar

from sspi_model import diagrams, scenarios
from sspi_model.lifecycle import (
    ASYNC_CALL_CODES,
    ASYNC_TABLE,
    CALL_CODES,
    CONTEXT_TABLE,
    Refusal,
    refusal_status,
    verdicts,
)
from sspi_model.profiles import DOCUMENTED, PROFILES
from sspi_model.rulebook import Rule, load_rules
from sspi_model.sequence import StateNotes, replayed_states, sequence_diagram
from sspi_model.status import NtStatus, SecStatus, StatusInfo, lookup
from sspi_model.trace import Recorder, read_trace, validate, validate_file, write_trace

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_ENVIRONMENT = 0, 1, 2, 3
EXIT_INTERRUPTED = 130  # Ctrl-C, as a shell reports SIGINT
PROG = "sspi-model"
# Names `check` also accepts (sspi_model.testing.check); the native ones find the platform's
# library (secur32.dll on Windows, sspi-rs elsewhere), or $SSPI_MODEL_LIBRARY.
BACKENDS = {
    "model": "sspi_model.backends.model:ModelBackend",
    "sspi-rs": "sspi_model.backends.native:NativeBackend",
    "secur32": "sspi_model.backends.native:NativeBackend",
    "native": "sspi_model.backends.native:NativeBackend",
    # The SSPI agent (agent/sspi-agent.c) under Wine; agent:COMMAND starts any agent.
    "wine": "sspi_model.backends.wine:wine_backend",
}
CHECK_MODULE = "sspi_model.testing.check"
EXIT_CODES = """exit codes:
  0  success
  1  a verdict failed (a trace the model does not allow, new divergences)
  2  usage error (unknown option, scenario, backend, profile or status code)
  3  environment problem (a missing library or engine; a backend that cannot run the trace)
  130  interrupted (Ctrl-C); check writes its partial report first"""


class UsageError(Exception):
    """Exit 2 with this one line."""


class EnvironmentProblem(Exception):
    """Exit 3 with this one line."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        # One line instead of argparse's usage dump: what went wrong, and where to look.
        raise UsageError(f"{self.prog}: {message} (see {self.prog} --help)")


def _color(stream: TextIO) -> bool:
    return stream.isatty() and "NO_COLOR" not in os.environ


def _paint(text: str, code: str, enabled: bool) -> str:
    return f"\033[{code}m{text}\033[0m" if enabled else text


def _print_json(value: Any) -> None:
    print(json.dumps(value, indent=2, ensure_ascii=False))


# -- backends --------------------------------------------------------------------------------


def resolve_backend(spec: str) -> Callable[..., Any]:
    """A backend factory from a name (model, native) or MODULE:FACTORY; UsageError if unknown."""
    if spec.startswith("agent:"):  # any command that starts an SSPI agent
        from sspi_model.backends.agent import AgentBackend

        return lambda: AgentBackend(spec.removeprefix("agent:"))
    target = BACKENDS.get(spec, spec)
    module_name, sep, attribute = target.partition(":")
    accepted = f"accepted: {', '.join(BACKENDS)}, or MODULE:FACTORY"
    if not sep or not module_name or not attribute:
        raise UsageError(f"{PROG}: unknown backend {spec!r}; {accepted}")
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as error:
        if error.name is not None and module_name.startswith(error.name):
            message = f"{PROG}: no module {module_name!r} for backend {spec!r}; {accepted}"
            raise UsageError(message) from None
        raise EnvironmentProblem(f"{PROG}: backend {spec!r} needs {error.name!r}") from None
    factory = getattr(module, attribute, None)
    if not callable(factory):
        raise UsageError(f"{PROG}: {module_name} has no factory {attribute!r}; {accepted}")
    return factory  # type: ignore[no-any-return]


# Errors that mean "this machine lacks something" (a library, a module), not "the input is wrong".
_ENVIRONMENT_ERRORS = (OSError, ImportError)


_T = TypeVar("_T")


def _writing(path: str, write: Callable[[], _T]) -> _T:
    """Run `write`; a path that cannot be written is a usage error, not a crash."""
    try:
        return write()
    except OSError as error:
        raise UsageError(f"{PROG}: cannot write {path!r}: {error.strerror or error}") from None


class _Lines:
    """print(), except that a closed pipe (`| head`) silences the rest instead of stopping the
    scenario: its trace is still written whole."""

    def __init__(self) -> None:
        self.closed = False

    def write(self, line: str) -> None:
        if self.closed:
            return
        try:
            print(line, flush=True)
        except BrokenPipeError:
            self.closed = True
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())


# -- demo ------------------------------------------------------------------------------------


def cmd_demo(args: argparse.Namespace) -> int:
    if args.list:
        for scenario in scenarios.DEMO_SCENARIOS.values():
            print(f"{scenario.name:<13} {scenario.title}")
        return EXIT_OK
    name = args.scenario or scenarios.DEFAULT_SCENARIO
    if name not in scenarios.DEMO_SCENARIOS:
        accepted = ", ".join(scenarios.DEMO_SCENARIOS)
        raise UsageError(f"{PROG} demo: unknown scenario {name!r}; accepted: {accepted}")
    mermaid = args.format == "mermaid"
    lines = _Lines()
    narrator = scenarios.Narrator(
        (lambda line: None) if mermaid else lines.write, color=_color(sys.stdout)
    )
    recorder = Recorder()
    notes = StateNotes(recorder) if mermaid else None
    scenarios.run_scenario(name, narrator, recorder)
    if notes is not None:  # CLI-016: the run as a sequence diagram, and nothing else on stdout
        lines.write(sequence_diagram(recorder.trace(), notes.states).rstrip("\n"))
    if args.trace:
        count = _writing(args.trace, lambda: write_trace(args.trace, recorder))
        written = f"trace written to {args.trace} ({count} lines)"
        print(
            f"\n{written}; check it: {PROG} replay {args.trace}",
            file=sys.stderr if mermaid else sys.stdout,
        )
    return EXIT_OK


# -- replay ----------------------------------------------------------------------------------


def cmd_replay(args: argparse.Namespace) -> int:
    if args.profile is not None and args.profile not in PROFILES:
        accepted = ", ".join(PROFILES)
        raise UsageError(f"{PROG} replay: unknown profile {args.profile!r}; accepted: {accepted}")
    backend = resolve_backend(args.backend) if args.backend else None
    try:
        with open(args.trace, "rb"):
            pass  # the file's own errors are usage errors; the backend's are the environment's
    except FileNotFoundError:
        raise UsageError(f"{PROG} replay: no such file {args.trace!r}") from None
    except OSError as error:
        raise UsageError(f"{PROG} replay: cannot read {args.trace!r}: {error}") from None
    known_files = _known_files(args.known, "replay")
    trace = None
    try:
        if backend is None:
            # Streams the file: memory is that of the trace's live handles (TRC-001).
            verdict = validate_file(args.trace, profile=args.profile)
        else:
            # On a backend the records are first reduced to what check compares (CLI-009),
            # which needs them parsed.
            trace = _as_check_compares(read_trace(args.trace))
            verdict = validate(trace, profile=args.profile, backend=backend)
    except _ENVIRONMENT_ERRORS as error:
        raise EnvironmentProblem(f"{PROG} replay: backend {args.backend!r}: {error}") from None
    code = EXIT_OK if verdict.ok else EXIT_ENVIRONMENT if verdict.unsupported else EXIT_FAILED
    known = _known_in_replay(trace, verdict, backend, known_files) if backend else None
    if known is not None:
        code = EXIT_OK
    if args.format == "mermaid":
        if args.json:
            raise UsageError(f"{PROG} replay: --json and --format mermaid: choose one")
        return _replay_mermaid(args, trace, verdict, code)
    if args.json:
        extra = {"known": known.known, "explanation": known.explanation} if known else {}
        report = {"trace": str(args.trace), "backend": args.backend or "model"}
        # ASCII escapes: a trace's text may hold lone surrogates, which no terminal prints.
        print(json.dumps({**report, **verdict.to_json(), **extra}, indent=2))
        return code
    color = _color(sys.stdout)
    # Malformed lines and the replay's verdict, in line order.
    messages = [(problem.line, f"{args.trace}: {problem}") for problem in verdict.problems]
    if verdict.line is not None or verdict.what:
        where = f"line {verdict.line}" if verdict.line is not None else "the trace"
        seq = f" (seq {verdict.seq})" if verdict.seq is not None else ""
        text = f"{args.trace}: {where}{seq}: {verdict.what}"
        if verdict.found or verdict.expected:
            text += "\n" + "\n".join(verdict.comparison())
        messages.append((verdict.line or 0, text))
    for _line, text in sorted(messages, key=lambda item: item[0]):
        # A trace's text may hold lone surrogates ("\\ud800"): printed escaped (TRC-005).
        print(text.encode("utf-8", "backslashreplace").decode("utf-8"))
    if known is not None:
        print(
            f"KNOWN: {verdict.against} diverges here as known divergence {known.known}: "
            f"{known.explanation} (as in check, the comparison stops at the first divergence)"
        )
    elif verdict.ok:
        print(_paint(f"OK: the model allows all {verdict.replayed} records", "32", color))
        for line, record in _recorded_misuse(args.trace):
            # Allowed, misuse included: the replay runs a raised misuse line as an action and
            # the model raised the same rule there (specs/trace-format.md), so say which rule
            # the traced code broke.
            print(
                f"  line {line}: misuse {record.get('rule')} in {record.get('call')} "
                f"({record.get('process')}), as the model raises it: {record.get('message')}"
            )
    elif verdict.unsupported:
        print(_paint("UNSUPPORTED: the trace was not replayed", "33", color))
    else:
        print(_paint(f"FAILED after {verdict.replayed} matching records", "31", color))
    return code


def _replay_mermaid(args: argparse.Namespace, trace: Any, verdict: Any, code: int) -> int:
    """CLI-016: the trace as a sequence diagram on stdout, states from a replay on the model;
    the exit status and, on stderr, the verdict are those of the replay."""
    if trace is None:  # the verdict streamed the file (TRC-001); a drawing needs the records
        trace = read_trace(args.trace)
    states = replayed_states(trace, args.profile)
    _Lines().write(sequence_diagram(trace.records, states).rstrip("\n"))
    for problem in verdict.problems:  # malformed lines, as the text verdict names them
        print(f"{args.trace}: {problem}", file=sys.stderr)
    if verdict.what:
        where = f" at line {verdict.line}" if verdict.line is not None else ""
        print(
            f"{args.trace}: the {verdict.against} does not allow the trace{where}: {verdict.what}",
            file=sys.stderr,
        )
    return code


def _recorded_misuse(path: str) -> Iterator[tuple[int, dict[str, Any]]]:
    """The misuse records of a trace file, with their line numbers, read a line at a time."""
    with open(path, encoding="utf-8", errors="replace") as lines:
        for number, text in enumerate(lines, start=1):
            if '"misuse"' not in text:
                continue
            try:
                record = json.loads(text)
            except ValueError:
                continue  # the verdict already judged the line
            if isinstance(record, dict) and record.get("event") == "misuse":
                yield number, record


def _as_check_compares(trace: Any) -> Any:
    """CLI-009: a replay on a backend compares what check compares."""
    from sspi_model.testing.replay_check import compared_as_check

    return compared_as_check(trace)


def _known_in_replay(trace: Any, verdict: Any, backend: Any, files: list[str]) -> Any:
    """CLI-009: the replay's first difference, if it is one of the backend's known divergences
    (the list shipped for its name, its `known_divergences`, --known)."""
    from sspi_model.testing.divergence import known_for
    from sspi_model.testing.replay_check import known_divergence

    return known_divergence(trace, verdict, known_for(backend, verdict.against, files))


# -- explain ---------------------------------------------------------------------------------

_NUMBER = re.compile(r"[+-]?(0[xX][0-9a-fA-F]+|[0-9]+)")


_BARE_HEX = re.compile(r"[0-9a-fA-F]{8}")


def _bare_hex(raw: str) -> StatusInfo | None:
    """Eight hex digits without 0x (as logs and event viewers print a status) that name a
    known code, else None (CLI-012)."""
    if not _BARE_HEX.fullmatch(raw):
        return None
    info = lookup(int(raw, 16))
    return None if info.family == "unknown" else info


def parse_status(text: str) -> StatusInfo:
    """A status from hex, decimal (signed or unsigned) or a macro name; UsageError if unknown."""
    raw = text.strip()
    accepted = (
        "accepted: a SEC_E_/SEC_I_/STATUS_ macro name, or a 32-bit value in hex (0x80090301), "
        f"decimal (2148074241) or signed decimal (-2146893055); `{PROG} explain --list` shows all"
    )
    bare_hex = _bare_hex(raw)
    try:
        if _NUMBER.fullmatch(raw):
            sign = -1 if raw.startswith("-") else 1
            digits = raw.lstrip("+-")
            info = lookup(sign * int(digits, 16 if digits[:2].lower() == "0x" else 10))
            if info.family == "unknown" and bare_hex is not None:
                info = bare_hex  # 80090301 as logs print it: hex without 0x (CLI-012)
        elif bare_hex is not None:
            info = bare_hex
        else:
            info = lookup(raw.upper())
    except ValueError:
        raise UsageError(f"{PROG} explain: unknown status {text!r}; {accepted}") from None
    if info.family == "unknown":
        raise UsageError(
            f"{PROG} explain: 0x{info.value:08X} is no code this model knows; {accepted}"
        )
    return info


def _mentions(info: StatusInfo, rules: Sequence[Rule]) -> list[Rule]:
    pattern = re.compile(rf"\b({re.escape(info.name)}|0x{info.value:08X})\b", re.IGNORECASE)
    return [rule for rule in rules if pattern.search(rule.statement)]


def _refusals(value: int) -> list[dict[str, Any]]:
    found = []
    for table in (CONTEXT_TABLE, ASYNC_TABLE):
        for (state, call), entry in table.items():
            for _path, verdict in verdicts(entry):
                if not isinstance(verdict, Refusal):
                    continue
                status = refusal_status(verdict, DOCUMENTED)  # a str names a profile field
                if int(status) == value:
                    found.append(
                        {"call": call.value, "state": state.value, "rules": list(verdict.rules)}
                    )
    return found


_NULL_ASYNC = (SecStatus.SEC_E_INVALID_PARAMETER, ("ASY-004", "ASY-007"))
# The async calls' codes beyond ASYNC_CALL_CODES (which lists what a queued operation returns):
# what the async-context calls return, and the refusals every Sspi*Async call shares, each with
# the rule that says so (CLI-014). SspiGetAsyncCallStatus also reports every status an async
# operation completes with (ASY-006), added in _async_returns.
_ASYNC_RETURNS: dict[str, tuple[tuple[int, tuple[str, ...]], ...]] = {
    "SspiGetAsyncCallStatus": (
        (SecStatus.SEC_I_ASYNC_CALL_PENDING, ("ASY-005",)),
        (SecStatus.SEC_E_INVALID_PARAMETER, ("ASY-003",)),
        (SecStatus.SEC_E_UNSUPPORTED_FUNCTION, ("ASY-002", "ASY-013")),
    ),
    "SspiSetAsyncNotifyCallback": (
        (SecStatus.SEC_E_OK, ("ASY-016",)),
        (SecStatus.SEC_E_INVALID_PARAMETER, ("ASY-017",)),
    ),
    "SspiReinitAsyncContext": (
        (NtStatus.STATUS_SUCCESS, ("ASY-011",)),
        (NtStatus.STATUS_INVALID_PARAMETER, ("ASY-010",)),
        (NtStatus.STATUS_INVALID_DEVICE_STATE, ("ASY-012",)),
    ),
    "SspiAcquireCredentialsHandleAsyncW": (
        _NULL_ASYNC,
        (SecStatus.SEC_E_INVALID_PARAMETER, ("ASY-026",)),
    ),
    "SspiInitializeSecurityContextAsyncW": (_NULL_ASYNC,),
    "SspiAcceptSecurityContextAsync": (_NULL_ASYNC,),
    "SspiFreeCredentialsHandleAsync": (_NULL_ASYNC,),
    "SspiDeleteSecurityContextAsync": (_NULL_ASYNC,),
}


def _async_returns(value: int) -> dict[str, list[str]]:
    """The async calls that return `value`, with the rules behind it (CLI-014)."""
    found: dict[str, list[str]] = {}
    for call, returns in _ASYNC_RETURNS.items():
        for status, rules in returns:
            if int(status) == value:
                found.setdefault(call, []).extend(r for r in rules if r not in found[call])
    completed = {int(code) for returned in ASYNC_CALL_CODES.values() for code in returned}
    if value in completed and value != SecStatus.SEC_I_ASYNC_CALL_PENDING:
        found.setdefault("SspiGetAsyncCallStatus", []).append("ASY-006")
    return found


def explain(info: StatusInfo) -> dict[str, Any]:
    codes = {**CALL_CODES, **ASYNC_CALL_CODES}
    calls = [call.value for call, returned in codes.items() if info.value in returned]
    async_rules = _async_returns(info.value)
    calls += [call for call in async_rules if call not in calls]
    rules = _mentions(info, list(load_rules().values()))
    return {
        "name": info.name,
        "value": info.value,
        "hex": f"0x{info.value:08X}",
        "signed": info.signed,
        "family": info.family,
        "meaning": info.meaning,
        "calls": calls,
        "call_rules": async_rules,
        "refused_by": _refusals(info.value),
        "rules": [
            {"id": r.id, "provenance": r.provenance, "statement": r.statement} for r in rules
        ],
    }


def cmd_explain(args: argparse.Namespace) -> int:
    if args.list:
        infos = [lookup(member.name) for family in (SecStatus, NtStatus) for member in family]
        if args.json:  # CLI-012: --list --json is JSON too
            _print_json(
                [
                    {"name": i.name, "value": i.value, "hex": f"0x{i.value:08X}",
                     "family": i.family, "meaning": i.meaning}
                    for i in infos
                ]
            )
            return EXIT_OK
        for info in infos:
            print(f"0x{info.value:08X}  {info.name:<38} {info.meaning}")
        return EXIT_OK
    if args.code is None:
        raise UsageError(f"{PROG} explain: give a status code, or --list")
    result = explain(parse_status(args.code))
    if args.json:
        _print_json(result)
        return EXIT_OK
    color = _color(sys.stdout)
    name = _paint(result["name"], "1", color)
    print(f"{name}  {result['hex']}  (signed {result['signed']}, {result['family']})")
    print(f"  {result['meaning']}")
    print("Returned by:" if result["calls"] else "Returned by: no call in the lifecycle tables")
    for call in result["calls"]:
        rules = result["call_rules"].get(call)
        print(f"  {call} ({', '.join(rules)})" if rules else f"  {call}")
    if result["refused_by"]:
        print("Refusals in the lifecycle tables:")
        for refusal in result["refused_by"]:
            print(
                f"  {refusal['call']} in state {refusal['state']} ({', '.join(refusal['rules'])})"
            )
    print("Rules that mention it:" if result["rules"] else "Rules that mention it: none")
    for rule in result["rules"]:
        print(f"  {rule['id']:<9} [{rule['provenance']}] {rule['statement']}")
    return EXIT_OK


# -- rules -----------------------------------------------------------------------------------


def cmd_rules(args: argparse.Namespace) -> int:
    rules = list(load_rules().values())
    if args.grep:
        word = args.grep.casefold()
        rules = [
            rule
            for rule in rules
            if any(
                word in text.casefold()
                for text in (rule.id, rule.statement, rule.source, rule.note, rule.provenance)
            )
        ]
    if args.json:
        _print_json(
            [
                {
                    "id": r.id,
                    "statement": r.statement,
                    "provenance": r.provenance,
                    "source": r.source,
                    "note": r.note,
                }
                for r in rules
            ]
        )
        return EXIT_OK
    if not rules:
        print(f"no rule matches {args.grep!r}", file=sys.stderr)
        return EXIT_OK
    color = _color(sys.stdout)
    for rule in rules:
        print(f"{_paint(rule.id, '1', color)}  [{rule.provenance}]  {rule.statement}")
        print(f"           source: {rule.source}")
        if rule.note:
            print(f"           note: {rule.note}")
    print(f"{len(rules)} rule{'s' if len(rules) != 1 else ''}")
    return EXIT_OK


# -- diagram ---------------------------------------------------------------------------------


def cmd_diagram(args: argparse.Namespace) -> int:
    names = list(diagrams.DIAGRAMS) if args.which == "all" else [args.which]
    if args.write and args.format == "dot":
        # CLI-012: --write writes the Markdown (Mermaid) files the docs embed; dot is printed.
        raise UsageError(
            f"{PROG} diagram: --write writes Mermaid into specs/diagrams/*.md; for dot, print it: "
            f"{PROG} diagram --format dot > diagrams.dot"
        )
    if args.write:
        directory = Path(args.dir) if args.dir else diagrams.default_directory()
        if directory is None:
            raise EnvironmentProblem(
                f"{PROG} diagram: no specs/ folder beside the package (run from a checkout, "
                "or pass --dir)"
            )
        for path in _writing(str(directory), lambda: diagrams.write_markdown(directory, names)):
            print(f"wrote {path}")
        return EXIT_OK
    render = diagrams.dot if args.format == "dot" else diagrams.mermaid
    print("\n\n".join(render(name) for name in names))
    return EXIT_OK


# -- check -----------------------------------------------------------------------------------


def _default_check_backends() -> list[str]:
    """The model against itself and the platform's native library: when that library is
    missing the check says so, with the install line, rather than leaving it out (CLI-005)."""
    return ["model", "secur32" if os.name == "nt" else "sspi-rs"]


def _known_files(paths: Sequence[str] | None, command: str) -> list[str]:
    """--known FILE...: each must be a readable list of divergences (CLI-004)."""
    from sspi_model.testing.divergence import load_known_file

    for path in paths or ():
        try:
            load_known_file(path)
        except FileNotFoundError:
            raise UsageError(f"{PROG} {command}: --known: no such file {path!r}") from None
        except (OSError, ValueError, KeyError, TypeError) as error:
            raise UsageError(
                f"{PROG} {command}: --known {path}: not a divergence list: {error}"
            ) from None
    return list(paths or ())


def _write_report(path: str | None, render: Callable[[str], str], what: str) -> None:
    if not path:
        return
    fmt = {".json": "json", ".md": "md"}.get(Path(path).suffix.lower(), "text")
    text = render(fmt)
    _writing(path, lambda: Path(path).write_text(text, encoding="utf-8"))
    print(f"{what} written to {path}", file=sys.stderr)


class _Progress:
    """CLI-015: the campaign's progress as one line redrawn on a terminal's stderr (backend,
    round, examples done, divergences so far, elapsed), with the engine's news (a new
    divergence, a skipped backend) kept above it. When not `enabled` only the notices (a backend
    skipped, the campaign interrupted, examples replayed from a database) are written."""

    _NEWS = re.compile(r"SKIPPED|NEW|interrupted|flaky")
    # Written even when not enabled: facts about the run a CI log needs, not progress.
    _NOTICES = re.compile(r"\] (SKIPPED: |interrupted: |replayed first: )")

    def __init__(self, stream: TextIO, examples: int, enabled: bool) -> None:
        self.stream, self.examples, self.enabled = stream, examples, enabled
        self.started = time.monotonic()
        self.backend, self.round, self.done, self.divergences = "", 0, 0, 0
        self._lock = threading.Lock()
        self._stop = threading.Event()
        if enabled:  # elapsed time moves on while Hypothesis runs a round
            threading.Thread(target=self._tick, name="sspi-model progress", daemon=True).start()

    def __call__(self, message: str) -> None:
        if not self.enabled:
            if self._NOTICES.search(message):
                self._write(f"{message}\n")
            return
        backend, tagged, rest = message.partition("] ")
        if not (tagged and backend.startswith("[")):  # not about one backend: news above it
            with self._lock:
                self._write(f"\r\033[K{message}\n")
                if self.backend:
                    self._draw()
            return
        self.backend = backend[1:]
        found = re.match(r"round (\d+): (.*)", rest)
        if rest.startswith("checking against the model"):
            self.round, self.done = 0, 0
        elif found:
            self.round = int(found.group(1))
            news = found.group(2)
            if news.startswith("nothing new"):
                self.done += self.examples
            elif news.startswith("NEW"):
                self.divergences += 1
        with self._lock:
            if self._NEWS.search(rest):
                self._write(f"\r\033[K{message}\n")
            self._draw()

    def _draw(self) -> None:
        elapsed = time.monotonic() - self.started
        plural = "" if self.divergences == 1 else "s"
        rounds = f"{self.round} round{'' if self.round == 1 else 's'}"
        self._write(
            f"\r\033[K[{self.backend}] {self.done} examples done ({rounds}), "
            f"{self.divergences} divergence{plural} so far, {elapsed:.0f} s"
        )

    def _write(self, text: str) -> None:
        try:
            self.stream.write(text)
            self.stream.flush()
        except (OSError, ValueError):  # a terminal that went away stops the progress only
            self.enabled = False
            self.stream = io.StringIO()

    def _tick(self) -> None:
        while not self._stop.wait(1.0):
            with self._lock:
                if self.enabled and self.backend:
                    self._draw()

    def close(self) -> None:
        self._stop.set()
        if self.enabled:
            with self._lock:
                self._write("\r\033[K")
            self.enabled = False


def cmd_check(args: argparse.Namespace) -> int:
    explicit = bool(args.backend)
    specs = args.backend or _default_check_backends()
    for spec in specs:
        if spec not in BACKENDS and ":" not in spec:
            accepted = f"accepted: {', '.join(BACKENDS)}, or MODULE:FACTORY"
            raise UsageError(f"{PROG} check: unknown backend {spec!r}; {accepted}")
    if args.examples < 1:
        raise UsageError(f"{PROG} check: --examples must be at least 1, got {args.examples}")
    known = _known_files(args.known, "check")
    try:
        engine = importlib.import_module(CHECK_MODULE)
    except ModuleNotFoundError as error:
        raise EnvironmentProblem(
            f"{PROG} check: the check engine ({CHECK_MODULE}) is not available: {error}"
        ) from None

    # CLI-015: progress on a terminal only; a pipe, a CI log or --json gets the report alone.
    progress = _Progress(sys.stderr, args.examples, sys.stderr.isatty() and not args.json)
    try:
        report = engine.run_check(
            specs,
            args.examples,
            args.seed,
            progress,
            ignore_known=args.ignore_known,
            known_files=known,
            **_campaign_options(args),
        )
    except ValueError as error:  # the engine's word for a backend spec it cannot load
        raise UsageError(f"{PROG} check: {error}") from None
    except _ENVIRONMENT_ERRORS as error:
        raise EnvironmentProblem(f"{PROG} check: {error}") from None
    finally:
        progress.close()
    _write_report(args.report, lambda fmt: report.render(fmt), "report")
    _write_report(args.rules_report, lambda fmt: report.render_rules(fmt), "per-rule report")
    print(report.render("json" if args.json else "text"))
    if not args.json:
        print("\n".join(engine.summary(report)))
    if getattr(report, "interrupted", False):
        return EXIT_INTERRUPTED  # CLI-011: after the partial report is written
    if report.new_divergences:
        return EXIT_FAILED
    # A backend asked for by name that could not run checked nothing: exit 3 (CLI-005). A
    # default one that is missing is named in the summary and does not fail the run.
    skipped = [b for b in report.backends if b.error]
    ran = [b for b in report.backends if not b.error]
    return EXIT_ENVIRONMENT if skipped and (explicit or not ran) else EXIT_OK


# -- reproduce -------------------------------------------------------------------------------


def cmd_reproduce(args: argparse.Namespace) -> int:
    """Replay divergence N of a JSON check report against its backend (CLI-006)."""
    try:
        data = json.loads(Path(args.report).read_text(encoding="utf-8"))
        entries = data["divergences"]
    except FileNotFoundError:
        raise UsageError(f"{PROG} reproduce: no such file {args.report!r}") from None
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise UsageError(
            f"{PROG} reproduce: {args.report!r} is not a JSON report of `{PROG} check "
            f"--report FILE.json`: {error}"
        ) from None
    if not 1 <= args.number <= len(entries):
        raise UsageError(
            f"{PROG} reproduce: {args.report} has {len(entries)} divergence(s); N is 1 to "
            f"{len(entries)}"
        )
    entry = entries[args.number - 1]
    if not entry.get("program"):
        raise UsageError(
            f"{PROG} reproduce: divergence {args.number} has no shrunk program (known or flaky)"
        )
    from sspi_model.testing import check

    backend = next(b for b in data["backends"] if b["backend"] == entry["backend"])
    earlier = [d for d in backend["divergences"] if not d["known"]]
    earlier = earlier[: next(i for i, d in enumerate(earlier) if d["program"] == entry["program"])]
    try:
        found = check.reproduce(
            entry["spec"],
            entry["program"],
            suppressed=[_signature(d) for d in earlier],
            known_files=backend.get("known_files", []),
        )
    except check.BackendUnavailable as error:
        raise EnvironmentProblem(f"{PROG} reproduce: {entry['spec']}: {error}") from None
    except ValueError as error:
        raise UsageError(f"{PROG} reproduce: {error}") from None
    if found is None:
        print(f"divergence {args.number} no longer reproduces: {entry['spec']} agrees now")
        return EXIT_OK
    print(f"divergence {args.number} reproduces on {entry['spec']}:")
    print(f"  {found.call}({found.args}) [{found.situation}] {found.aspect}: "
          f"expected {found.expected}, observed {found.observed}")
    print("  steps:")
    print("\n".join(f"    {step}" for step in found.reproducer))
    return EXIT_FAILED


def _signature(entry: dict[str, Any]) -> tuple[str, ...]:
    from sspi_model.testing.divergence import Divergence

    fields = ("call", "args", "situation", "aspect", "expected", "observed")
    return Divergence(*(entry[key] for key in fields)).signature


# -- check campaigns (sspi_model/testing/campaign.py, database.py) ---------------------------


def _add_campaign_options(check: argparse.ArgumentParser) -> None:
    check.add_argument(
        "--jobs", type=int, metavar="N",
        help="processes (default: $SSPI_MODEL_JOBS, else one per core)",
    )
    check.add_argument(
        "--database", metavar="DIR|redis://HOST:PORT/N",
        help="the example database to share and replay first (default: the user's cache)",
    )
    check.add_argument("--fresh", action="store_true", help="no example database: a clean run")
    check.add_argument(
        "--time-budget", type=_duration, metavar="T",
        help="run rounds until T is spent (90s, 10m, 1h), then report",
    )


def _duration(text: str) -> float:
    match = re.fullmatch(r"(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s?)?", text.strip())
    if not match or not text.strip() or not any(match.groups()):
        raise argparse.ArgumentTypeError(f"not a duration: {text!r} (try 90s, 10m or 1h)")
    hours, minutes, seconds = (int(group or 0) for group in match.groups())
    return float(hours * 3600 + minutes * 60 + seconds)


def _campaign_options(args: argparse.Namespace) -> dict[str, Any]:
    return {"jobs": args.jobs, "database": args.database, "fresh": args.fresh,
            "time_budget": args.time_budget}


# -- explore ---------------------------------------------------------------------------------


def cmd_explore(args: argparse.Namespace) -> int:
    """Every schedule of a scenario up to a bound; each finding with its shortest schedule."""
    from sspi_model.explore import EXPLORABLE, explore, record_schedule
    from sspi_model.trace import describe

    if args.list:
        for item in EXPLORABLE.values():
            print(f"{item.name:<13} {item.title}")
        return EXIT_OK
    if args.scenario is None:
        raise UsageError(f"{PROG} explore: name a scenario ({', '.join(EXPLORABLE)}), or --list")
    if args.scenario in EXPLORABLE:
        run, bound = EXPLORABLE[args.scenario].run, EXPLORABLE[args.scenario].bound
    elif ":" in args.scenario:  # a user's scenario: MODULE:FUNCTION taking a World
        module_name, _colon, function = args.scenario.partition(":")
        try:
            target = getattr(importlib.import_module(module_name), function, None)
        except ImportError as problem:
            raise UsageError(f"{PROG} explore: cannot import {module_name!r}: {problem}") from None
        if not callable(target):
            raise UsageError(f"{PROG} explore: {module_name} has no function {function!r}")
        run, bound = target, 2
    else:
        accepted = f"{', '.join(EXPLORABLE)}, or MODULE:FUNCTION"
        raise UsageError(
            f"{PROG} explore: unknown scenario {args.scenario!r}; accepted: {accepted}"
        )
    if args.bound is not None:
        bound = None if args.bound < 0 else args.bound
    report = explore(run, bound, name=args.scenario)
    schedules = {found: record_schedule(run, found.shortest, bound) for found in report.findings}
    traces = {found: schedule[0] for found, schedule in schedules.items()}
    if args.trace and report.findings:
        first = min(report.findings, key=lambda found: (found.kind != "misuse", found.rule))
        _writing(args.trace, lambda: write_trace(args.trace, traces[first]))
    if args.json:
        data = report.to_json()
        for entry, found in zip(data["findings"], report.findings, strict=True):
            entry["trace"] = [describe(record) for record in traces[found][1:]]
            entry["decisions"] = schedules[found][2]
        _print_json(data)
        return EXIT_FAILED if report.findings or report.errors else EXIT_OK
    color = _color(sys.stdout)
    shown = "no bound" if bound is None else f"bound {bound}"
    print(
        f"explore {args.scenario} ({shown}): {report.runs} runs, {report.states} distinct states, "
        f"{report.schedules} schedules, {report.clean} clean ({report.seconds:.2f} s)"
    )
    for found in report.findings:
        head = _paint(f"{found.kind} {found.rule}", "1;33", color)
        print(f"  {head} [{found.process}] in {found.schedules} of {report.schedules} schedules:")
        print(f"    {found.message}")
        print(f"    shortest schedule (choices {list(found.shortest)}):")
        for number, decision in enumerate(schedules[found][2], 1):
            print(f"      {number}. {decision}")
        print("    its trace:")
        for record in traces[found][1:]:
            print(f"      [{record['seq']:>2}] {describe(record)}")
    for failure in report.errors:
        print(f"  {_paint('error', '1;31', color)} {failure}")
    if not report.complete:
        print("  (stopped early: too many runs; lower --bound)")
    if args.trace and report.findings:
        print(
            f"trace of the first shortest schedule written to {args.trace}; "
            f"check it: {PROG} replay {args.trace}"
        )
    return EXIT_FAILED if report.findings or report.errors else EXIT_OK


# -- docs ------------------------------------------------------------------------------------


def cmd_docs(args: argparse.Namespace) -> int:
    """Every shipped document with its path (CLI-007): they exist in a checkout and a wheel."""
    from sspi_model.rulebook import documents

    found = documents()
    if args.json:
        _print_json({name: str(path) for name, path in found.items()})
        return EXIT_OK
    for name, path in found.items():
        print(f"{name:<28} {path}")
    return EXIT_OK


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("sspi-model")
    except PackageNotFoundError:  # a source tree that is not installed
        return "unknown (not installed)"


def _add_known(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--known",
        action="append",
        metavar="FILE",
        help="a TOML list of known divergences (specs/divergences/*.toml format), repeatable; "
        "added to the list shipped for the backend and its own known_divergences",
    )


# -- the parser ------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    formatter = argparse.RawDescriptionHelpFormatter
    common = _Parser(add_help=False)
    # SUPPRESS, so a subcommand's default does not undo `sspi-model --debug demo`.
    common.add_argument(
        "--debug", action="store_true", default=argparse.SUPPRESS, help="show Python tracebacks"
    )
    parser = _Parser(
        prog=PROG,
        description="A behavioural reference model of Windows SSPI: demos, traces, rules.",
        epilog=f"""examples:
  {PROG} demo                       narrate SspiDeleteSecurityContextAsync step by step
  {PROG} demo overview --trace t.jsonl
  {PROG} replay t.jsonl             does the model allow every record of this trace?
  {PROG} explain 0x80090301         SEC_E_INVALID_HANDLE: meaning, calls, rules
  {PROG} rules --grep delete
  {PROG} diagram --format dot
  {PROG} check --backend native --examples 200
  {PROG} docs                       where the rules, trace format and diagrams (specs/) are

{EXIT_CODES}""",
        formatter_class=formatter,
        parents=[common],
    )
    parser.set_defaults(debug=False)
    parser.add_argument("--version", action="version", version=f"{PROG} {_version()}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)

    def command(name: str, help: str, epilog: str) -> argparse.ArgumentParser:
        return commands.add_parser(
            name,
            help=help,
            description=help,
            epilog=f"examples:\n{epilog}\n\n{EXIT_CODES}",
            formatter_class=formatter,
            parents=[common],
        )

    demo = command(
        "demo",
        "run a narrated scenario on the model",
        f"  {PROG} demo\n  {PROG} demo --list\n  {PROG} demo msquic --trace msquic.jsonl\n"
        f"  {PROG} demo overview --format mermaid > overview.mmd",
    )
    demo.add_argument(
        "scenario",
        nargs="?",
        metavar="SCENARIO",
        help=(
            f"one of: {', '.join(scenarios.DEMO_SCENARIOS)} "
            f"(default: {scenarios.DEFAULT_SCENARIO})"
        ),
    )
    demo.add_argument("--trace", metavar="FILE", help="also write the run as a JSONL trace")
    demo.add_argument("--list", action="store_true", help="list the scenarios")
    demo.add_argument(
        "--format",
        choices=["text", "mermaid"],
        default="text",
        help="text: the narration (default); mermaid: the run as a Mermaid sequence diagram",
    )
    demo.set_defaults(handler=cmd_demo)

    replay = command(
        "replay",
        "check that the model allows every record of a JSONL trace",
        f"  {PROG} replay t.jsonl\n  {PROG} replay t.jsonl --profile ksecdd --json\n"
        f"  {PROG} replay t.jsonl --backend mypkg.backend:make_backend\n"
        f"  {PROG} replay t.jsonl --format mermaid",
    )
    replay.add_argument(
        "trace", metavar="TRACE", help="a trace file (specs/trace-format.md; see sspi-model docs)"
    )
    replay.add_argument(
        "--backend",
        metavar="NAME|MODULE:FACTORY",
        help=f"replay on a backend ({', '.join(BACKENDS)})",
    )
    replay.add_argument(
        "--profile", metavar="NAME", help=f"override the trace's profile ({', '.join(PROFILES)})"
    )
    _add_known(replay)
    replay.add_argument("--json", action="store_true", help="print the verdict as JSON")
    replay.add_argument(
        "--format",
        choices=["text", "mermaid"],
        default="text",
        help="text: the verdict (default); mermaid: the trace as a Mermaid sequence diagram",
    )
    replay.set_defaults(handler=cmd_replay)

    explain_cmd = command(
        "explain",
        "explain a status code: name, value, meaning, calls and rules",
        f"  {PROG} explain 0x80090301\n  {PROG} explain -2146893055\n"
        f"  {PROG} explain SEC_E_INVALID_HANDLE --json",
    )
    explain_cmd.add_argument(
        "code", nargs="?", metavar="CODE", help="hex, decimal, signed decimal or macro name"
    )
    explain_cmd.add_argument("--list", action="store_true", help="list every known code")
    explain_cmd.add_argument("--json", action="store_true", help="print JSON")
    explain_cmd.set_defaults(handler=cmd_explain)

    rules = command(
        "rules",
        "browse the rulebook with each rule's provenance",
        f"  {PROG} rules\n  {PROG} rules --grep delete\n  {PROG} rules --grep ASY-052 --json",
    )
    rules.add_argument("--grep", metavar="WORD", help="only rules mentioning WORD (any case)")
    rules.add_argument("--json", action="store_true", help="print JSON")
    rules.set_defaults(handler=cmd_rules)

    diagram = command(
        "diagram",
        "state diagrams generated from the lifecycle tables",
        f"  {PROG} diagram\n  {PROG} diagram async-context --format dot | dot -Tsvg > a.svg\n"
        f"  {PROG} diagram --write          regenerate specs/diagrams/*.md",
    )
    diagram.add_argument(
        "which",
        nargs="?",
        default="all",
        choices=["all", *diagrams.DIAGRAMS],
        metavar="WHICH",
        help=f"all (default) or one of: {', '.join(diagrams.DIAGRAMS)}",
    )
    diagram.add_argument("--format", choices=["mermaid", "dot"], default="mermaid")
    diagram.add_argument(
        "--write", action="store_true", help="write the Mermaid diagrams into specs/diagrams/*.md"
    )
    diagram.add_argument(
        "--dir", metavar="DIR", help="where --write writes (default: specs/diagrams)"
    )
    diagram.set_defaults(handler=cmd_diagram)

    check = command(
        "check",
        "differential check of backends against the model",
        f"  {PROG} check\n  {PROG} check --backend native --examples 500 --seed 7\n"
        f"  {PROG} check --backend native --report divergences.md",
    )
    check.add_argument(
        "--backend",
        action="append",
        metavar="NAME|MODULE:FACTORY",
        help=f"a backend to check, repeatable ({', '.join(BACKENDS)}, "
        "MODULE:FACTORY); default: model, and sspi-rs when sspilib is installed",
    )
    check.add_argument(
        "--ignore-known",
        action="store_true",
        help="discovery mode: treat the known divergences (specs/divergences) as new",
    )
    check.add_argument(
        "--examples", type=int, default=100, metavar="N", help="examples per machine (default 100)"
    )
    check.add_argument("--seed", type=int, default=0, metavar="S", help="random seed (default 0)")
    check.add_argument(
        "--report", metavar="FILE", help="also write the report (.json, .md, else text)"
    )
    check.add_argument(
        "--rules-report",
        metavar="FILE",
        help="write the per-rule conformance report (pass, fail, not applicable, not exercised)",
    )
    _add_known(check)
    check.add_argument("--json", action="store_true", help="print the report as JSON")
    _add_campaign_options(check)
    check.set_defaults(handler=cmd_check)
    reproduce = command(
        "reproduce",
        "run divergence N of a JSON check report again, against its backend",
        f"  {PROG} check --backend sspi-rs --report r.json; {PROG} reproduce r.json 1",
    )
    reproduce.add_argument("report", metavar="REPORT.json", help="a report of check --report")
    reproduce.add_argument("number", type=int, metavar="N", help="the divergence, from 1")
    reproduce.set_defaults(handler=cmd_reproduce)
    docs = command(
        "docs",
        "the paths of the documents shipped with the package (rules, trace format, diagrams)",
        f"  {PROG} docs\n  {PROG} docs --json",
    )
    docs.add_argument("--json", action="store_true", help="print JSON")
    docs.set_defaults(handler=cmd_docs)
    explore_cmd = command(
        "explore",
        "run a scenario under every schedule up to a bound: misuse, leaks, invariant breaks",
        f"  {PROG} explore overview\n  {PROG} explore schannel --bound 2 --json\n"
        f"  {PROG} explore overview --trace race.jsonl && {PROG} replay race.jsonl\n"
        f"  {PROG} explore mypkg.scenarios:login   (a function taking a World)",
    )
    explore_cmd.add_argument(
        "scenario", nargs="?", metavar="SCENARIO", help="a demo name (--list) or MODULE:FUNCTION"
    )
    explore_cmd.add_argument(
        "--bound",
        type=int,
        metavar="N",
        help="deviations per schedule (default: the scenario's; -1: none)",
    )
    explore_cmd.add_argument(
        "--trace", metavar="FILE", help="write the shortest schedule to a finding as a JSONL trace"
    )
    explore_cmd.add_argument("--json", action="store_true", help="print the report as JSON")
    explore_cmd.add_argument("--list", action="store_true", help="list the explorable scenarios")
    explore_cmd.set_defaults(handler=cmd_explore)
    return parser


class _PipeGuard:
    """stdout, except that a reader going away (`| head -1`) silences the rest of the output
    instead of ending the command: the command runs on and its exit status is still its
    verdict (CLI-008)."""

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream
        self.closed_pipe = False

    def write(self, text: str) -> int:
        if not self.closed_pipe:
            try:
                self._stream.write(text)
            except BrokenPipeError:
                self._went_away()
        return len(text)

    def flush(self) -> None:
        if not self.closed_pipe:
            try:
                self._stream.flush()
            except BrokenPipeError:
                self._went_away()

    def _went_away(self) -> None:
        self.closed_pipe = True
        # Python flushes stdout at exit: point the descriptor at /dev/null so that flush
        # cannot fail again and turn the verdict into exit 120.
        os.dup2(os.open(os.devnull, os.O_WRONLY), self._stream.fileno())

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)


def main(argv: Sequence[str] | None = None) -> int:
    # Both streams: `2>&1 | head -1` closes the pipe under the progress lines too.
    out, err = _PipeGuard(sys.stdout), _PipeGuard(sys.stderr)
    sys.stdout, sys.stderr = out, err
    try:
        return _main(argv)
    finally:
        out.flush()
        err.flush()
        sys.stdout, sys.stderr = out._stream, err._stream


def _main(argv: Sequence[str] | None) -> int:
    arguments = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in arguments
    for stream in (sys.stdout, sys.stderr):  # ROB-008: a lone surrogate prints as \udXXX
        reconfigure = getattr(stream, "reconfigure", None)
        if reconfigure is not None:
            reconfigure(errors="backslashreplace")
    try:
        args = build_parser().parse_args(arguments)
        handler: Callable[[argparse.Namespace], int] | None = getattr(args, "handler", None)
        if handler is None:
            build_parser().print_help()
            return EXIT_USAGE
        return handler(args)
    except SystemExit as done:  # --help and --version exit through argparse
        return done.code if isinstance(done.code, int) else EXIT_USAGE
    except UsageError as error:
        print(error, file=sys.stderr)
        return EXIT_USAGE
    except EnvironmentProblem as error:
        print(error, file=sys.stderr)
        return EXIT_ENVIRONMENT
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        # A closed pipe that escaped the guard (a stream other than stdout): the command did
        # not finish, so it cannot claim success (CLI-008).
        return EXIT_ENVIRONMENT
    except Exception as error:
        if debug:
            traceback.print_exc()
        else:
            print(
                f"{PROG}: internal error: {type(error).__name__}: {error} "
                "(run with --debug for the traceback)",
                file=sys.stderr,
            )
        return EXIT_ENVIRONMENT


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
