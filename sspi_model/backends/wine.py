"""`--backend wine`: the SSPI agent under Wine, in a private prefix, with wineserver kept warm.

What it needs: `wine` (Wine's loader; `wine64` provides the 64-bit one), `ntlm_auth` (Samba's
winbind package: Wine's NTLM runs it for every leg) and, unless $SSPI_AGENT_EXE names a built
agent, the mingw-w64 compiler to build agent/sspi-agent.c. A missing piece is one
`WineUnavailable` naming it and the apt-get line that provides it.

The prefix is $SSPI_MODEL_WINEPREFIX, else <cache>/sspi-model/wine (cache: $XDG_CACHE_HOME or
~/.cache), created on first use (a few seconds). The first backend starts `wineserver -p`
(persistent), so each agent start costs about 0.1 s instead of a server start; it is shut down
(`wineserver -k`) when this Python process exits. The agent is built once per source version
into <cache>/sspi-model/agent-<hash>.exe.
"""

from __future__ import annotations

import atexit
import hashlib
import os
import shutil
import subprocess
import threading
from pathlib import Path

from sspi_model.backends.agent import AgentBackend, AgentUnavailable

APT_INSTALL = (
    "apt-get install -y --no-install-recommends wine wine64 winbind gcc-mingw-w64-x86-64"
)
AGENT_SOURCE = Path(__file__).resolve().parent.parent.parent / "agent"
COMPILER = "x86_64-w64-mingw32-gcc"
# Wine under load (ntlm_auth is a process per context) answers in milliseconds, but a busy
# machine can stall it for a second; five is a hang.
WINE_TIMEOUT = 5.0
_PROVIDERS = {"wine": "wine wine64", "ntlm_auth": "winbind", COMPILER: "gcc-mingw-w64-x86-64"}


class WineUnavailable(AgentUnavailable):
    """Wine, ntlm_auth, the compiler or the agent source is missing."""


def cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "sspi-model"


def wine_prefix() -> Path:
    return Path(os.environ.get("SSPI_MODEL_WINEPREFIX") or cache_dir() / "wine")


def wine_environment() -> dict[str, str]:
    """This process's environment with the private prefix, quiet Wine, and no Mono/Gecko
    installer or menu builder at prefix creation."""
    env = dict(os.environ)
    env["WINEPREFIX"] = str(wine_prefix())
    env.setdefault("WINEDEBUG", "-all")
    env["WINEDLLOVERRIDES"] = "mscoree,mshtml=;winemenubuilder.exe=d"
    return env


def _missing(tools: list[str]) -> None:
    absent = [tool for tool in tools if shutil.which(tool) is None]
    if absent:
        packages = " ".join(_PROVIDERS[tool] for tool in absent)
        raise WineUnavailable(
            f"--backend wine needs {', '.join(absent)} (Debian packages: {packages}); "
            f"install with: {APT_INSTALL}"
        )


def agent_executable() -> Path:
    """$SSPI_AGENT_EXE, else the agent built from agent/ (once per version of its source)."""
    configured = os.environ.get("SSPI_AGENT_EXE")
    if configured:
        if not Path(configured).is_file():
            raise WineUnavailable(f"$SSPI_AGENT_EXE={configured!r} does not exist")
        return Path(configured)
    source = AGENT_SOURCE / "sspi-agent.c"
    if not source.is_file():
        raise WineUnavailable(
            f"the agent source {source} is not here (an installed wheel carries no agent/); "
            "build it with agent/build.sh from a checkout and set $SSPI_AGENT_EXE to the .exe"
        )
    digest = hashlib.sha256(source.read_bytes() + (AGENT_SOURCE / "build.sh").read_bytes())
    target = cache_dir() / f"agent-{digest.hexdigest()[:12]}.exe"
    if not target.is_file():
        _missing([COMPILER])
        target.parent.mkdir(parents=True, exist_ok=True)
        partial = target.with_suffix(f".{os.getpid()}.tmp")
        built = subprocess.run(
            ["sh", str(AGENT_SOURCE / "build.sh"), str(partial)], capture_output=True, text=True
        )
        if built.returncode != 0:
            raise WineUnavailable(f"building the agent failed:\n{built.stderr.strip()}")
        partial.replace(target)  # atomic: a concurrent build never sees half a file
    return target


class _Wineserver:
    """One persistent wineserver per prefix for this process, killed at exit."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._started: set[str] = set()

    def warm(self, env: dict[str, str]) -> None:
        prefix = env["WINEPREFIX"]
        with self._lock:
            if prefix in self._started:
                return
            if not (Path(prefix) / "system.reg").is_file():
                # A new prefix: create it now, under no call's timeout (takes seconds).
                Path(prefix).mkdir(parents=True, exist_ok=True)
                _quietly(["wine", "wineboot", "--init"], env, 300)
            # -p: stay up between agents; the command returns once the server runs.
            _quietly(["wineserver", "-p"], env, 60)
            if not self._started:
                atexit.register(self.stop)
            self._started.add(prefix)

    def stop(self) -> None:
        with self._lock:
            prefixes, self._started = self._started, set()
        for prefix in prefixes:
            env = dict(os.environ, WINEPREFIX=prefix)
            _quietly(["wineserver", "-k"], env, 60)


def _quietly(command: list[str], env: dict[str, str], timeout: float) -> None:
    # No pipes: the wineserver these commands leave running would hold them open, and a
    # capture would wait for it to exit.
    subprocess.run(
        command, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL, timeout=timeout, check=False,
    )


_WINESERVER = _Wineserver()


def wine_backend(*, timeout: float = WINE_TIMEOUT, spare: bool = True) -> AgentBackend:
    """An AgentBackend running sspi-agent.exe under Wine (named "wine" in reports)."""
    _missing(["wine", "ntlm_auth"])
    executable = agent_executable()
    env = wine_environment()
    _WINESERVER.warm(env)
    return AgentBackend(
        ["wine", str(executable)], name="wine", timeout=timeout, spare=spare, env=env
    )
