"""The SSPI agent under Wine: handshakes leg by leg, crashes, and a short differential check.

Skipped, with the apt-get line as the reason, where Wine, ntlm_auth or mingw-w64 is missing;
never skipped when CI=true (.ci/run installs them). Kept short: a minute or so on CI.
"""

from __future__ import annotations

import os
import shutil
import signal
from collections.abc import Iterator

import pytest

from sspi_model import CredentialUse, SecHandle, SecStatus
from sspi_model.backends.agent import AgentBackend
from sspi_model.backends.base import BackendFailure
from sspi_model.backends.model import ModelBackend
from sspi_model.backends.wine import APT_INSTALL, WineUnavailable, wine_backend
from sspi_model.packages.ntlm import AuthIdentity
from sspi_model.testing.check import check_backend
from sspi_model.testing.differential import ACCOUNTS, DOMAIN, PASSWORD, USER
from sspi_model.testing.divergence import load_known

pytest_plugins = ["pytester"]
NEEDED = ("wine", "ntlm_auth", "x86_64-w64-mingw32-gcc")
_missing = [tool for tool in NEEDED if shutil.which(tool) is None]
pytestmark = pytest.mark.skipif(
    bool(_missing) and os.environ.get("CI") != "true",
    reason=f"needs {', '.join(_missing)}: {APT_INSTALL}",
)

CLIENT = AuthIdentity(USER, PASSWORD, DOMAIN)
TARGET = "host/srv"
CONNECTION = 0x800


@pytest.fixture(scope="module")
def wine() -> Iterator[AgentBackend]:
    backend = wine_backend()
    yield backend
    backend.close()


def test_the_agent_runs_windows_packages(wine: AgentBackend) -> None:
    assert {"NTLM", "Negotiate", "Kerberos", "Schannel"} <= wine.capabilities.packages
    assert wine.capabilities.name == "wine"


@pytest.mark.parametrize("package", ["NTLM", "Negotiate"])
@pytest.mark.rule("AGT-001")
def test_handshake_leg_by_leg(wine: AgentBackend, package: str) -> None:
    """Four legs through Wine's secur32, beside the model's. Wine differs in four documented
    ways (specs/divergences/wine.toml): the challenge comes back in a SECBUFFER_DATA buffer
    (WINE-ASC-OUTPUT-TYPE), no leg reports context attributes (WINE-NO-CONTEXT-ATTR), and the
    server validates the final leg through winbind, which knows no CONTOSO\\alice
    (WINE-ASC-WINBIND-ACCOUNTS); and NTLM's last client leg returns a new handle."""
    wine.reset()
    model = ModelBackend(accounts=ACCOUNTS)
    sides = []
    for backend in (model, wine):
        client = backend.acquire_credentials_handle(package, CredentialUse.OUTBOUND, CLIENT)
        server = backend.acquire_credentials_handle(package, CredentialUse.INBOUND)
        assert (client.status, server.status) == (SecStatus.SEC_E_OK, SecStatus.SEC_E_OK)
        leg1 = backend.initialize_security_context(client.credential, None, TARGET, CONNECTION)
        # The token of each leg is the data of its one output buffer, whatever its type.
        acc1 = backend.accept_security_context(
            server.credential, None, leg1.output[0].data, CONNECTION
        )
        leg2 = backend.initialize_security_context(
            client.credential, leg1.new_context, TARGET, CONNECTION, acc1.output[0].data
        )
        acc2 = backend.accept_security_context(
            server.credential, acc1.new_context, leg2.output[0].data, CONNECTION
        )
        sides.append((leg1, acc1, leg2, acc2))
    (m1, ma1, m2, ma2), (w1, wa1, w2, wa2) = sides
    more = SecStatus.SEC_I_CONTINUE_NEEDED
    assert [m1.status, ma1.status, m2.status] == [more, more, SecStatus.SEC_E_OK]
    assert [w1.status, wa1.status, w2.status] == [m1.status, ma1.status, m2.status]
    assert w1.output[0].data.startswith(b"NTLMSSP\x00\x01")  # NEGOTIATE_MESSAGE
    assert wa1.output[0].data.startswith(b"NTLMSSP\x00\x02")  # CHALLENGE_MESSAGE
    assert w2.output[0].data.startswith(b"NTLMSSP\x00\x03")  # AUTHENTICATE_MESSAGE
    assert w1.new_context is not None and wa1.new_context is not None
    assert wa2.new_context == wa1.new_context
    # NTLM's final ISC leg writes a second, separately deletable handle (WINE-NTLM-NEW-HANDLE).
    assert (w2.new_context == w1.new_context) == (package == "Negotiate")
    assert ma2.status == SecStatus.SEC_E_OK
    assert wa2.status == SecStatus.SEC_E_LOGON_DENIED  # WINE-ASC-WINBIND-ACCOUNTS
    assert wa1.output[0].buffer_type == 1  # WINE-ASC-OUTPUT-TYPE
    assert (w1.context_attr, wa1.context_attr) == (0, 0)  # WINE-NO-CONTEXT-ATTR
    for context in {w1.new_context, w2.new_context, wa1.new_context}:
        assert wine.delete_security_context(context) == SecStatus.SEC_E_OK


@pytest.mark.rule("AGT-002")
def test_killing_the_agent_mid_sequence_is_a_crash_and_keeps_earlier_results(
    wine: AgentBackend,
) -> None:
    wine.reset()
    credential = wine.acquire_credentials_handle("NTLM", CredentialUse.OUTBOUND, CLIENT)
    leg = wine.initialize_security_context(credential.credential, None, TARGET, CONNECTION)
    assert leg.status == SecStatus.SEC_I_CONTINUE_NEEDED
    worker = wine._supervisor._worker  # type: ignore[union-attr]
    assert worker is not None
    os.kill(worker.process.pid, signal.SIGKILL)
    with pytest.raises(BackendFailure) as failure:
        wine.delete_security_context(leg.new_context)
    assert failure.value.outcome == "CRASH:SIGKILL"
    # What the agent reported before it died is still there, as values.
    assert credential.status == SecStatus.SEC_E_OK and credential.credential is not None
    assert leg.output_token.startswith(b"NTLMSSP\x00\x01") and leg.new_context is not None
    wine.reset()  # a fresh agent
    assert wine.delete_security_context(leg.new_context) == SecStatus.SEC_E_INVALID_HANDLE


@pytest.mark.rule("AGT-002")
def test_a_fault_inside_wine_is_named_by_its_exception_code(wine: AgentBackend) -> None:
    """Wine's DeleteSecurityContext dereferences SecInvalidateHandle's -1/-1 (WINE-WILD-HANDLE)."""
    wine.reset()
    with pytest.raises(BackendFailure) as failure:
        wine.delete_security_context(SecHandle.invalid())
    assert failure.value.outcome == "CRASH:STATUS_ACCESS_VIOLATION"
    wine.reset()
    assert wine.delete_security_context(SecHandle(0, 0)) == SecStatus.SEC_E_INVALID_HANDLE


def test_a_missing_wine_names_the_apt_get_line(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", "/nonexistent")
    with pytest.raises(WineUnavailable) as missing:
        wine_backend()
    assert "wine, ntlm_auth" in str(missing.value) and APT_INSTALL in str(missing.value)


@pytest.mark.rule("AGT-001")
def test_check_passes_with_the_known_list(wine: AgentBackend) -> None:
    """A short `sspi-model check --backend wine`: every divergence it meets is in wine.toml."""
    assert load_known("wine"), "specs/divergences/wine.toml lists Wine's divergences"
    report = check_backend("wine", wine_backend, examples=15, max_rounds=2, seed_value=0)
    assert report.new == (), [d.call + " " + d.situation for d in report.new]


@pytest.mark.rule("AGT-002")
def test_accept_with_allocate_memory_faults_in_wine(wine: AgentBackend) -> None:
    """WINE-ASC-ALLOCATE-MEMORY-CRASH: Wine's NTLM writes the challenge through a NULL buffer."""
    wine.reset()
    client = wine.acquire_credentials_handle("NTLM", CredentialUse.OUTBOUND, CLIENT)
    server = wine.acquire_credentials_handle("NTLM", CredentialUse.INBOUND)
    leg = wine.initialize_security_context(client.credential, None, TARGET, CONNECTION | 0x100)
    assert leg.status == SecStatus.SEC_I_CONTINUE_NEEDED  # the client side allocates fine
    with pytest.raises(BackendFailure) as failure:
        wine.accept_security_context(server.credential, None, leg.output_token, CONNECTION | 0x100)
    assert failure.value.outcome == "CRASH:STATUS_ACCESS_VIOLATION"
    wine.reset()


@pytest.mark.rule("AGT-001")
def test_schannel_client_hello_under_wine(wine: AgentBackend) -> None:
    """Wine's Schannel (GnuTLS) writes a ClientHello; a server credential needs a certificate,
    which protocol 1 cannot pass (SCHANNEL_CRED), so it gets SEC_E_NO_CREDENTIALS."""
    wine.reset()
    client = wine.acquire_credentials_handle("Schannel", CredentialUse.OUTBOUND)
    assert client.status == SecStatus.SEC_E_OK
    leg = wine.initialize_security_context(client.credential, None, "srv.contoso.com", 0x811C)
    assert leg.status == SecStatus.SEC_I_CONTINUE_NEEDED
    assert leg.output_token[:1] == b"\x16"  # a TLS handshake record
    server = wine.acquire_credentials_handle("Schannel", CredentialUse.INBOUND)
    assert server.status == SecStatus.SEC_E_NO_CREDENTIALS


def test_the_command_line_names_wine(capsys: pytest.CaptureFixture[str]) -> None:
    from sspi_model.cli import main

    assert main(["check", "--backend", "wine", "--examples", "5"]) == 0
    assert "wine: 0 new" in capsys.readouterr().out


def test_the_kit_runs_on_wine_with_its_known_divergences_as_xfails(
    wine: AgentBackend, pytester: pytest.Pytester
) -> None:
    """Issue 11: `pytest --sspi-backend wine --pyargs sspi_model.testing.kit` runs, and a focused
    test that meets a listed Wine divergence (WINE-ASC-OUTPUT-TYPE: the token comes back as
    SECBUFFER_DATA, a later part of the outcome than the status and the handle) is an xfail."""
    pytester.makeconftest("")
    # As a user runs it: a fresh pytest process, the plugin loaded from its entry point.
    kit = ["--pyargs", "sspi_model.testing.kit", "--sspi-backend", "wine"]
    result = pytester.runpytest_subprocess(*kit, "-k", "not differential", "-rx")
    assert result.ret == pytest.ExitCode.OK, result.stdout.str()
    outcomes = result.parseoutcomes()
    assert "failed" not in outcomes and outcomes["xfailed"] >= 3
    result.stdout.fnmatch_lines(
        ["XFAIL *test_ntlm_handshake* - known divergence WINE-ASC-OUTPUT-TYPE*"]
    )
