"""Fixtures for the native backend: the real library (skipped if absent) and a fake one."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from sspi_model.backends.native import LibraryNotFound, NativeBackend, find_library

CRASHLIB_SOURCE = Path(__file__).parent.parent / "data" / "crashlib.c"


@pytest.fixture(scope="session")
def library() -> str:
    """The real SSPI library (sspi-rs from sspilib); the tests skip, saying why, without it,
    except in CI, where the README's install brings it and a skip would hide a lost check."""
    try:
        return find_library()
    except LibraryNotFound as missing:
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI=true and no SSPI library: {missing}")
        pytest.skip(str(missing))


@pytest.fixture
def backend(library: str) -> Iterator[NativeBackend]:
    with NativeBackend() as native:  # finds the library itself
        assert native.library == library
        if native.capabilities.name != "sspi-rs":
            # These tests pin what the sspi-rs probe observed; secur32 is checked by the
            # differential run (.github/workflows/windows-secur32.yml).
            pytest.skip(f"the probe expectations are sspi-rs's; this is {native.capabilities.name}")
        yield native


@pytest.fixture(scope="session")
def crashlib(tmp_path_factory: pytest.TempPathFactory) -> str:
    """tests/data/crashlib.c compiled to a shared library."""
    if os.name == "nt":
        pytest.skip("crashlib.c is built with a POSIX cc; Windows is not covered")
    compiler = next((c for c in ("cc", "gcc", "clang") if shutil.which(c)), None)
    if compiler is None:
        pytest.skip("no C compiler (cc, gcc or clang) on PATH to build tests/data/crashlib.c")
    output = tmp_path_factory.mktemp("crashlib") / "libcrash.so"
    subprocess.run(
        [compiler, "-shared", "-fPIC", "-o", str(output), str(CRASHLIB_SOURCE)],
        check=True,
        capture_output=True,
    )
    return str(output)
