"""Library discovery: argument, then $SSPI_MODEL_LIBRARY, then sspilib's libsspi."""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

import pytest

from sspi_model.backends.native import LibraryNotFound, find_library
from sspi_model.backends.native.discovery import ENV_VAR


def test_explicit_path_wins(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    library = tmp_path / "libsspi-test.so"
    library.write_bytes(b"")
    monkeypatch.setenv(ENV_VAR, str(tmp_path / "elsewhere.so"))
    assert find_library(library) == str(library)


def test_missing_explicit_path(tmp_path: Path) -> None:
    with pytest.raises(LibraryNotFound, match="library argument"):
        find_library(tmp_path / "nope.so")


def test_environment_variable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    library = tmp_path / "libfake.so"
    library.write_bytes(b"")
    monkeypatch.setenv(ENV_VAR, str(library))
    assert find_library() == str(library)
    monkeypatch.setenv(ENV_VAR, str(tmp_path / "gone.so"))
    with pytest.raises(LibraryNotFound, match=ENV_VAR):
        find_library()


@pytest.mark.skipif(os.name == "nt", reason="Windows uses secur32.dll")
def test_nothing_installed_names_every_place(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(ENV_VAR, raising=False)
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None)
    with pytest.raises(LibraryNotFound) as missing:
        find_library()
    message = str(missing.value)
    assert ENV_VAR in message and "sspilib" in message
    assert "pip install sspilib" in message


@pytest.mark.skipif(os.name == "nt", reason="Windows uses secur32.dll")
def test_sspilib_wheel_is_found(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(ENV_VAR, raising=False)
    try:
        found = find_library()
    except LibraryNotFound as missing:
        pytest.skip(str(missing))
    assert Path(found).name.startswith("libsspi")
