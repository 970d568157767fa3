"""The built wheel stands alone (issue 12, CLI-007): installed in a fresh venv outside the
repository, its commands run and every path they print exists.

Marked `wheel`; it runs in CI with the rest of the suite (about 30 s: building the wheel, a venv,
installing the wheel's dependencies from the package index). Deselect it locally with
`-m "not wheel"`.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import venv
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SOURCES = ("pyproject.toml", "README.md", "LICENSE", "sspi_model", "specs")
_IGNORED = shutil.ignore_patterns("__pycache__", "*.pyc")
pytestmark = [pytest.mark.wheel, pytest.mark.rule("CLI-007")]


def _run(*argv: str | Path, cwd: Path, expect: int = 0) -> str:
    env = {key: value for key, value in os.environ.items() if key != "PYTHONPATH"}
    done = subprocess.run(
        [str(arg) for arg in argv],
        cwd=cwd, capture_output=True, text=True, env=env, timeout=300, check=False,
    )
    assert done.returncode == expect, f"{argv}: {done.returncode}\n{done.stdout}\n{done.stderr}"
    return done.stdout


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(the venv's bin folder, a work folder outside the repository)."""
    base = tmp_path_factory.mktemp("wheel")
    assert ROOT not in base.parents, "the venv must live outside the repository"
    # Build from a clean copy: setuptools reuses a build/ folder, whose stale files (a module
    # since removed) would end up in the wheel, and a build must not write into the checkout.
    source = base / "source"
    for name in SOURCES:
        if (ROOT / name).is_dir():
            shutil.copytree(ROOT / name, source / name, symlinks=True, ignore=_IGNORED)
        else:
            source.mkdir(exist_ok=True)
            shutil.copy2(ROOT / name, source / name)
    dist = base / "dist"
    _run(sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", dist, source, cwd=base)
    (wheel,) = dist.glob("sspi_model-*.whl")
    env_dir = base / "venv"
    venv.create(env_dir, with_pip=True)
    bin_dir = env_dir / ("Scripts" if os.name == "nt" else "bin")
    _run(bin_dir / "python", "-m", "pip", "install", "-q", wheel, "pytest", cwd=base)
    work = base / "work"
    work.mkdir()
    return bin_dir, work


def test_the_installed_package_is_not_the_checkout(installed: tuple[Path, Path]) -> None:
    bin_dir, work = installed
    program = "import sspi_model; print(sspi_model.__file__)"
    where = _run(bin_dir / "python", "-c", program, cwd=work)
    installed_package = Path(where.strip()).parent
    assert ROOT not in installed_package.parents
    # The wheel holds the package as it is in the checkout: every module and data file, no
    # stale or missing one.
    def files(folder: Path) -> set[str]:  # following sspi_model/data, a link in a checkout
        return {
            str((Path(top) / name).relative_to(folder))
            for top, _dirs, names in os.walk(folder, followlinks=True)
            for name in names
            if "__pycache__" not in Path(top).parts and not name.endswith(".pyc")
        }

    assert files(installed_package) == files(ROOT / "sspi_model")


def test_docs_version_rules_explain_diagram(installed: tuple[Path, Path]) -> None:
    bin_dir, work = installed
    tool = bin_dir / "sspi-model"
    assert _run(tool, "--version", cwd=work).startswith("sspi-model 0.")
    docs = json.loads(_run(tool, "docs", "--json", cwd=work))
    assert {"rules", "trace-schema", "trace-format", "lifecycle", "diagrams", "sources"} <= set(
        docs
    )
    for path in docs.values():
        assert Path(path).exists(), path
        assert ROOT not in Path(path).parents, path
    assert "rules" in _run(tool, "rules", "--grep", "CLI-007", cwd=work)
    explained = _run(tool, "explain", "0x80090301", cwd=work)
    assert "SEC_E_INVALID_HANDLE" in explained
    assert "stateDiagram" in _run(tool, "diagram", cwd=work)
    help_text = "".join(
        _run(tool, *command, "--help", cwd=work) for command in ([], ["replay"], ["check"])
    )
    # A `specs/X` that --help names is shipped: <the specs folder of `docs`>/X.
    for mention in re.findall(r"specs/([\w./*-]+\w)", help_text):
        assert list(Path(docs["specs"]).glob(mention)), mention


def test_demo_replay_and_check(installed: tuple[Path, Path]) -> None:
    bin_dir, work = installed
    tool = bin_dir / "sspi-model"
    printed = _run(tool, "demo", "--trace", "t.jsonl", cwd=work)
    assert (work / "t.jsonl").is_file() and "t.jsonl" in printed
    assert "OK" in _run(tool, "replay", "t.jsonl", cwd=work)
    # sspilib is not installed in this venv: the native backend is skipped loudly (CLI-005).
    checked = _run(tool, "check", "--examples", "10", cwd=work)
    assert "skipped: sspi-rs:" in checked
    assert checked.rstrip().splitlines()[-1].startswith("verdict: PASSED")


def test_the_kit_runs_from_the_wheel(installed: tuple[Path, Path]) -> None:
    bin_dir, work = installed
    out = _run(bin_dir / "python", "-m", "pytest", "-q", "--pyargs", "sspi_model.testing.kit",
               cwd=work)
    assert " passed" in out and "failed" not in out
