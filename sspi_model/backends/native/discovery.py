"""Finding the SSPI library: a path, $SSPI_MODEL_LIBRARY, secur32.dll, or sspilib's libsspi.

On Linux and macOS the library is sspi-rs, which the `sspilib` wheel ships beside its package as
`sspilib.libs/libsspi-<hash>.so` (or `.dylib`). It is located through the import system without
importing sspilib (whose extension modules load the library themselves).
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

ENV_VAR = "SSPI_MODEL_LIBRARY"
WINDOWS_LIBRARY = "secur32.dll"
INSTALL_HINT = "pip install sspilib"  # the native extra: pip install -e '.[native]' in a clone


class LibraryNotFound(FileNotFoundError):
    """No SSPI library could be located; the message names every place that was searched."""


def find_library(path: str | os.PathLike[str] | None = None) -> str:
    """The library to load: `path`, else $SSPI_MODEL_LIBRARY, else the platform's default."""
    if path is not None:
        return _existing(Path(path), "the library argument")
    configured = os.environ.get(ENV_VAR)
    if configured:
        return _existing(Path(configured), f"${ENV_VAR}")
    if os.name == "nt":
        return WINDOWS_LIBRARY  # a system DLL: the loader's search path finds it
    looked: list[str] = [f"${ENV_VAR} (not set)"]
    found = _sspilib_library(looked)
    if found is not None:
        return found
    raise LibraryNotFound(
        "no SSPI library found; looked in: " + "; ".join(looked)
        + f". Install sspi-rs with `{INSTALL_HINT}`, or set ${ENV_VAR} to a library path."
    )


def _existing(path: Path, source: str) -> str:
    if path.is_file():
        return str(path)
    # A bare name ("secur32.dll") is left to the platform loader.
    if os.name == "nt" and path.name == str(path):
        return str(path)
    raise LibraryNotFound(
        f"no SSPI library at {str(path)!r} (from {source}): the file does not exist. "
        f"For sspi-rs, `{INSTALL_HINT}` and leave the path unset."
    )


def _sspilib_library(looked: list[str]) -> str | None:
    try:
        spec = importlib.util.find_spec("sspilib")
    except (ImportError, ValueError):
        spec = None
    if spec is None or not spec.submodule_search_locations:
        looked.append("the sspilib package (not installed)")
        return None
    for package_dir in spec.submodule_search_locations:
        # auditwheel puts vendored libraries in `<package>.libs` beside the package; delocate
        # (macOS) puts them in `<package>/.dylibs`.
        for folder in (Path(package_dir).parent / "sspilib.libs", Path(package_dir) / ".dylibs"):
            looked.append(f"{folder}/libsspi*")
            candidates = sorted(folder.glob("libsspi*.so*")) + sorted(folder.glob("libsspi*.dylib"))
            if candidates:
                return str(candidates[0])
    return None
