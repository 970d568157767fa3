"""AgentBackend and the agent protocol (specs/agent-protocol.md), against a scripted fake agent.

The fake is a Python program speaking protocol 1: it logs every request line, so the tests see
exactly what the backend sends, and it crashes, hangs or misbehaves on chosen handles. The real
agent under Wine is tested in tests/test_wine.py.
"""

from __future__ import annotations

import os
import signal
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from sspi_model import SecBuffer, SecHandle, SecStatus
from sspi_model.backends.agent import AgentBackend, AgentUnavailable, split_command
from sspi_model.backends.base import Backend, BackendFailure
from sspi_model.backends.native import NeedsReset, WorkerError
from sspi_model.packages.ntlm import AuthIdentity
from sspi_model.results import ContextNames, ContextSizes
from sspi_model.testing.check import backend_factory

CRASH, HANG, GARBLE = SecHandle(0xDEAD, 0), SecHandle(0xBEEF, 0), SecHandle(0xBAD, 0)

FAKE_AGENT = r'''
import sys, time
log = open(sys.argv[1], "a")
if sys.argv[2:] == ["wrong-greeting"]:
    print("HELLO 0", flush=True)
    sys.exit(0)
print("SSPI-AGENT 1", flush=True)
PACKAGE = "s:" + "Fake".encode("utf-16-le").hex() + " s: i:3 i:1 i:10 i:100"
for line in sys.stdin:
    log.write(line); log.flush()
    call, *args = line.split()
    if call == "EnumerateSecurityPackagesW":
        reply = "OK i:0 n:1 " + PACKAGE + " i:4096"
    elif call == "AcquireCredentialsHandleW":
        reply = "OK i:0 h:4660:22136 i:42"
    elif call == "InitializeSecurityContextW" or call == "AcceptSecurityContext":
        if args[1] == "h:2989:0":
            reply = "OK i:0 h:1:1 n:1"  # a truncated reply
        else:
            reply = "OK i:590610 h:192:0 n:1 i:2 b:6869 i:2048 i:-1 n:1 i:1 i:1 b:78"
    elif call == "DeleteSecurityContext" and args[0] == "h:57005:0":
        sys.stdout.write("CRASH 0xc0000005\n"); sys.stdout.flush()
        sys.stderr.write("fake: access violation\n"); sys.stderr.flush()
        sys.exit(5)
    elif call == "DeleteSecurityContext" and args[0] == "h:48879:0":
        time.sleep(60)
        continue
    elif call == "QueryContextAttributesW" and args[1] == "i:1":
        reply = "OK i:0 k:names s:" + "bob".encode("utf-16-le").hex() + " i:8192"
    elif call == "QueryContextAttributesW":
        reply = "OK i:0 k:sizes i:1 i:2 i:3 i:4"
    elif call == "Nonsense":
        reply = "ERR unknown call Nonsense"
    else:
        reply = "OK i:2148074248"
    print(reply, flush=True)
'''


@pytest.fixture
def fake(tmp_path: Path) -> Iterator[tuple[list[str], Path]]:
    script = tmp_path / "fake_agent.py"
    script.write_text(FAKE_AGENT)
    log = tmp_path / "requests.log"
    yield [sys.executable, str(script), str(log)], log


def requests(log: Path) -> list[str]:
    return log.read_text().splitlines()


@pytest.mark.rule("AGT-001")
def test_requests_carry_the_arguments_exactly_as_given(fake: tuple[list[str], Path]) -> None:
    command, log = fake
    with AgentBackend(command, spare=False) as agent:
        assert isinstance(agent, Backend)
        assert agent.capabilities.packages == frozenset({"Fake"})
        credential = agent.acquire_credentials_handle(
            "NTLM", 2, AuthIdentity("alice", "pw", ""), principal=None
        )
        assert credential.status == SecStatus.SEC_E_OK
        assert credential.credential == SecHandle(0x1234, 0x5678) and credential.expiry == 42
        forged = SecHandle(2**64 - 1, 0x4242424242424242)
        leg = agent.initialize_security_context(
            forged, SecHandle(0, 0), "host/\U0001f600", 0x900,
            [SecBuffer(2, b"\x00\xff"), SecBuffer(3, b"", 16)],
        )
        agent.accept_security_context(None, None, None, 0)
        agent.delete_security_context(None)
    assert requests(log)[1:] == [
        # An empty identity field is a NULL pointer (the domain here).
        "AcquireCredentialsHandleW - s:4e0054004c004d00 i:2 n:3 s:61006c00690063006500 - "
        "s:70007700",
        "InitializeSecurityContextW h:18446744073709551615:4774451407313060418 h:0:0 "
        "s:68006f00730074002f003dd800de i:2304 i:16 n:2 i:2 i:2 b:00ff i:3 i:16 b:",
        "AcceptSecurityContext - - i:0 i:16 -",
        "DeleteSecurityContext -",
    ]
    assert leg.status == SecStatus.SEC_I_CONTINUE_NEEDED
    assert leg.new_context == SecHandle(0xC0, 0) and leg.output_token == b"hi"
    assert leg.context_attr == 0x800 and leg.expiry == -1
    assert leg.input_after == (SecBuffer(1, b"x"),)


@pytest.mark.rule("AGT-001")
def test_statuses_the_model_does_not_know_are_plain_ints(fake: tuple[list[str], Path]) -> None:
    command, _log = fake
    with AgentBackend(command, spare=False) as agent:
        assert agent.free_credentials_handle(SecHandle(1, 1)) == SecStatus.SEC_E_INVALID_TOKEN
        assert agent.query_context_attributes(SecHandle(1, 1), 0).buffer == ContextSizes(1, 2, 3, 4)


@pytest.mark.rule("AGT-003")
def test_pointers_the_agent_released_are_freed_here_once(fake: tuple[list[str], Path]) -> None:
    command, log = fake
    with AgentBackend(command, spare=False) as agent:
        names = agent.query_context_attributes(SecHandle(1, 1), 1)
        assert names.buffer == ContextNames("bob", 8192)
        assert agent.free_context_buffer(8192) == SecStatus.SEC_E_OK
        assert agent.free_context_buffer(8192) == SecStatus.SEC_E_INVALID_TOKEN  # sent on
    assert requests(log)[-1] == "FreeContextBuffer i:8192"


@pytest.mark.rule("AGT-002")
def test_a_fault_the_agent_reports_is_a_crash_and_earlier_results_stay(
    fake: tuple[list[str], Path],
) -> None:
    command, _log = fake
    with AgentBackend(command, spare=False) as agent:
        credential = agent.acquire_credentials_handle("Fake", 2)
        with pytest.raises(BackendFailure) as failure:
            agent.delete_security_context(CRASH)
        assert failure.value.outcome == "CRASH:STATUS_ACCESS_VIOLATION"
        assert failure.value.detail == "fake: access violation"
        assert credential.credential == SecHandle(0x1234, 0x5678)
        with pytest.raises(NeedsReset):
            agent.delete_security_context(None)
        agent.reset()
        assert agent.delete_security_context(None) == SecStatus.SEC_E_INVALID_TOKEN


@pytest.mark.rule("AGT-002")
def test_a_killed_agent_is_a_crash_named_by_its_signal(fake: tuple[list[str], Path]) -> None:
    command, _log = fake
    with AgentBackend(command, spare=False) as agent:
        agent.delete_security_context(None)
        worker = agent._supervisor._worker  # type: ignore[union-attr]
        assert worker is not None
        os.kill(worker.process.pid, signal.SIGKILL)
        with pytest.raises(BackendFailure) as failure:
            agent.delete_security_context(None)
        assert failure.value.outcome == "CRASH:SIGKILL"


@pytest.mark.rule("AGT-002")
def test_an_unanswered_call_is_a_hang(fake: tuple[list[str], Path]) -> None:
    command, _log = fake
    with AgentBackend(command, timeout=0.5, spare=False) as agent:
        start = time.monotonic()
        with pytest.raises(BackendFailure) as failure:
            agent.delete_security_context(HANG)
        assert failure.value.outcome == "HANG"
        assert time.monotonic() - start < 5.0
        agent.reset()
        assert agent.delete_security_context(None) == SecStatus.SEC_E_INVALID_TOKEN


def test_a_malformed_reply_is_a_worker_error(fake: tuple[list[str], Path]) -> None:
    command, _log = fake
    with AgentBackend(command, spare=False) as agent, pytest.raises(WorkerError):
        agent.initialize_security_context(None, GARBLE, None, 0, None)


@pytest.mark.rule("AGT-004")
def test_an_agent_that_is_not_one_is_refused(fake: tuple[list[str], Path]) -> None:
    command, _log = fake
    with pytest.raises(AgentUnavailable, match="protocol 1"):
        AgentBackend([*command, "wrong-greeting"], spare=False)
    with pytest.raises(AgentUnavailable, match="did not start"):
        AgentBackend(["/nonexistent/sspi-agent.exe"], spare=False)


def test_agent_command_is_a_backend_name(fake: tuple[list[str], Path]) -> None:
    command, _log = fake
    name, factory = backend_factory("agent:" + " ".join(command))
    assert name == "agent"
    backend = factory()
    try:
        assert backend.capabilities.packages == frozenset({"Fake"})
    finally:
        backend.close()


@pytest.mark.rule("AGT-001")
def test_a_command_string_keeps_windows_paths() -> None:
    assert split_command(r'ssh winbox C:\tools\sspi-agent.exe') == [
        "ssh", "winbox", r"C:\tools\sspi-agent.exe",
    ]
    assert split_command('wine "/a b/sspi-agent.exe"') == ["wine", "/a b/sspi-agent.exe"]
