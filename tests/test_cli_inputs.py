"""Input errors as errors (issue 12, item 7): wrong constructor arguments, out-of-range flags,
run_one with nothing behind the index, and explain's async calls."""

from __future__ import annotations

import io
import json
import sys
from collections.abc import Callable
from typing import Any

import pytest

from sspi_model import CredentialUse, ManualScheduler, SecStatus, Sspi
from sspi_model.cli import main


@pytest.mark.rule("API-002")
@pytest.mark.parametrize(
    ("keywords", "error", "parameter"),
    [
        ({"scheduler": 5}, TypeError, "scheduler"),
        ({"scheduler": "manual"}, TypeError, "scheduler"),
        ({"strict": "no"}, TypeError, "strict"),
        ({"strict": 0}, TypeError, "strict"),
        ({"thread_safe": "yes"}, TypeError, "thread_safe"),
        ({"async_any_package": 1}, TypeError, "async_any_package"),
        ({"rotate_context_handles": None}, TypeError, "rotate_context_handles"),
        ({"profile": 5}, TypeError, "profile"),
        ({"profile": "nope"}, ValueError, "profile"),
    ],
)
def test_a_wrong_constructor_argument_names_the_parameter(
    keywords: dict[str, Any], error: type[Exception], parameter: str
) -> None:
    # API-002: a wrong Python type raises TypeError naming the parameter, at construction.
    with pytest.raises(error, match=parameter):
        Sspi(**keywords)


@pytest.mark.rule("API-002")
@pytest.mark.parametrize(
    ("attribute", "value"),
    [
        ("scheduler", 5),
        ("strict", "no"),
        ("thread_safe", "yes"),
        ("async_any_package", 1),
        ("fail_allocations", "on"),
    ],
)
def test_a_wrong_value_assigned_later_names_the_parameter(attribute: str, value: object) -> None:
    # API-002: the setters check as the constructor does (they used to coerce with bool()).
    sspi = Sspi()
    with pytest.raises(TypeError, match=attribute):
        setattr(sspi, attribute, value)


def _calls(sspi: Sspi) -> dict[str, Callable[[int], object]]:
    cred = sspi.acquire_credentials_handle("NTLM", CredentialUse.OUTBOUND).credential
    actx = sspi.create_async_context()
    return {
        "credential_use": lambda v: sspi.acquire_credentials_handle("NTLM", v),
        "context_req": lambda v: sspi.initialize_security_context(cred, None, "x", context_req=v),
        "target_data_rep": lambda v: sspi.accept_security_context(
            cred, None, b"", target_data_rep=v
        ),
        "attribute": lambda v: sspi.query_context_attributes(None, v),
        "context_req ": lambda v: sspi.initialize_security_context_async(
            actx, credential=cred, target_name="x", context_req=v
        ),
        "credential_use ": lambda v: sspi.acquire_credentials_handle_async(
            actx, package="Schannel", credential_use=v
        ),
    }


@pytest.mark.rule("API-007")
@pytest.mark.parametrize("value", [-1, 1 << 32, 1 << 64])
@pytest.mark.parametrize(
    "parameter",
    [
        "credential_use",
        "context_req",
        "target_data_rep",
        "attribute",
        "context_req ",
        "credential_use ",
    ],
)
def test_an_out_of_range_32_bit_flag_is_a_value_error_naming_it(parameter: str, value: int) -> None:
    # API-007: a ULONG outside 0..0xFFFFFFFF is ValueError at the call, sync and async alike
    # (the trailing space marks the async twin of the same parameter).
    call = _calls(Sspi())[parameter]
    with pytest.raises(ValueError, match=rf"{parameter.strip()} must fit in 32 bits"):
        call(value)


@pytest.mark.rule("API-002")
@pytest.mark.parametrize("parameter", ["credential_use", "context_req", "attribute"])
def test_a_flag_of_the_wrong_type_is_a_type_error_naming_it(parameter: str) -> None:
    call = _calls(Sspi())[parameter]
    with pytest.raises(TypeError, match=parameter):
        call("0x10")  # type: ignore[arg-type]


@pytest.mark.rule("CLI-013")
def test_run_one_with_nothing_queued_says_so() -> None:
    # CLI-013: not "pop from empty list".
    pending = r"run_one\(5\): no call is pending \(nothing was queued\)"
    with pytest.raises(IndexError, match=pending):
        ManualScheduler().run_one(5)
    with pytest.raises(IndexError, match="no call is pending"):
        ManualScheduler().run_one()


@pytest.mark.rule("CLI-013")
def test_run_one_past_the_queue_lists_what_is_pending() -> None:
    # CLI-013: the message gives the valid indexes and what each pending call is.
    scheduler = ManualScheduler()
    sspi = Sspi(scheduler=scheduler)
    cred = sspi.acquire_credentials_handle("NTLM", CredentialUse.OUTBOUND).credential
    context = sspi.initialize_security_context(cred, None, "host/srv").new_context
    actx = sspi.create_async_context()
    sspi.set_async_notify_callback(actx, lambda ctx, data: None, None)
    assert sspi.delete_security_context_async(actx, context=context) == SecStatus.SEC_E_OK
    with pytest.raises(IndexError, match=r"only 1 call pending \(indexes 0\.\.0\): 0: ") as caught:
        scheduler.run_one(5)
    assert "SspiDeleteSecurityContextAsync" in str(caught.value)
    with pytest.raises(TypeError, match="index must be an int"):
        scheduler.run_one("0")  # type: ignore[arg-type]
    scheduler.run_one(-1)  # Python indexing still works for what is there
    assert scheduler.pending == ()


def _explain(capsys: pytest.CaptureFixture[str], *argv: str) -> str:
    assert main(["explain", *argv]) == 0
    return capsys.readouterr().out


@pytest.mark.rule("CLI-014")
def test_explain_lists_get_async_call_status_for_the_pending_code(
    capsys: pytest.CaptureFixture[str],
) -> None:
    # CLI-014: it used to say "Returned by: no call in the lifecycle tables".
    out = _explain(capsys, "SEC_I_ASYNC_CALL_PENDING")
    assert "  SspiGetAsyncCallStatus (ASY-005)" in out
    assert "no call in the lifecycle tables" not in out


@pytest.mark.rule("CLI-014")
def test_explain_lists_the_async_calls_that_refuse_a_null_async_context(
    capsys: pytest.CaptureFixture[str],
) -> None:
    out = _explain(capsys, "SEC_E_INVALID_PARAMETER")
    for call in (
        "SspiGetAsyncCallStatus (ASY-003)",
        "SspiSetAsyncNotifyCallback (ASY-017)",
        "SspiDeleteSecurityContextAsync (ASY-004, ASY-007)",
        "SspiAcquireCredentialsHandleAsyncW (ASY-004, ASY-007, ASY-026)",
    ):
        assert f"  {call}\n" in out


@pytest.mark.rule("CLI-014")
def test_explain_lists_reinit_for_its_ntstatus_and_json_carries_the_rules(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert "  SspiReinitAsyncContext (ASY-012)" in _explain(capsys, "STATUS_INVALID_DEVICE_STATE")
    result = json.loads(_explain(capsys, "SEC_E_INVALID_HANDLE", "--json"))
    assert "SspiDeleteSecurityContextAsync" in result["calls"]
    # a completed operation's status is what SspiGetAsyncCallStatus then reports (ASY-006)
    assert result["call_rules"]["SspiGetAsyncCallStatus"] == ["ASY-006"]


# -- check's progress (CLI-015) ----------------------------------------------------------------


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def _check_with_stderr(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    err: io.StringIO,
    *argv: str,
) -> str:
    monkeypatch.setattr(sys, "stderr", err)
    assert main(["check", "--backend", "model", "--examples", "5", *argv]) == 0
    return capsys.readouterr().out


@pytest.mark.rule("CLI-015")
def test_check_shows_progress_on_a_terminal(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    err = _Terminal()
    out = _check_with_stderr(monkeypatch, capsys, err)
    progress = err.getvalue()
    assert "[model] 5 examples done (1 round), 0 divergences so far, " in progress
    assert progress.endswith("\r\033[K")  # the line is cleared before the report
    assert "\r" not in out and "verdict: PASSED" in out


@pytest.mark.rule("CLI-015")
def test_check_is_quiet_when_stderr_is_not_a_terminal(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    err = io.StringIO()  # a pipe or a CI log
    _check_with_stderr(monkeypatch, capsys, err)
    assert err.getvalue() == ""
    from sspi_model.cli import _Progress

    quiet = _Progress(err, 10, False)
    quiet("[lib] round 1: nothing new in 10 examples")
    quiet("[sspi-rs] SKIPPED: libsspi is missing")  # notices, not progress: they stay
    quiet("[lib] replayed first: 2 saved example(s) from the database")
    assert err.getvalue() == (
        "[sspi-rs] SKIPPED: libsspi is missing\n"
        "[lib] replayed first: 2 saved example(s) from the database\n"
    )


@pytest.mark.rule("CLI-015")
def test_check_json_is_quiet_on_a_terminal_too(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    err = _Terminal()
    out = _check_with_stderr(monkeypatch, capsys, err, "--json")
    assert err.getvalue() == ""
    json.loads(out)


@pytest.mark.rule("CLI-015")
def test_progress_keeps_news_above_the_line_and_counts_divergences() -> None:
    from sspi_model.cli import _Progress

    err = _Terminal()
    progress = _Progress(err, 10, True)
    progress("campaign: 1 jobs, seeds 0, ...")  # not about a backend: kept as it is
    progress("[lib] checking against the model: 10 examples per round")
    progress("[lib] round 1: NEW DeleteSecurityContext(NULL) status")
    progress("[lib] round 2: nothing new in 10 examples")
    progress.close()
    text = err.getvalue()
    assert "\r\033[K[lib] round 1: NEW DeleteSecurityContext(NULL) status\n" in text
    assert "[lib] 10 examples done (2 rounds), 1 divergence so far, " in text
    assert text.startswith("\r\033[Kcampaign: 1 jobs, seeds 0, ...\n\r\033[K[lib] 0 examples")
