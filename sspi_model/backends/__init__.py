"""Backends: the model and real SSPI libraries behind one interface."""

from typing import TYPE_CHECKING, Any

from sspi_model.backends.base import SYNC_CALLS, Backend, BackendFailure, Capabilities

if TYPE_CHECKING:
    from sspi_model.backends.model import ModelBackend

__all__ = ["SYNC_CALLS", "Backend", "BackendFailure", "Capabilities", "ModelBackend"]


def __getattr__(name: str) -> Any:
    # The model backend loads on first use: `import sspi_model` reaches backends.base for its
    # BackendFailure and Capabilities, and need not build the backend too (issue 9, PEP 562).
    if name == "ModelBackend":
        from sspi_model.backends.model import ModelBackend

        return ModelBackend
    raise AttributeError(f"module 'sspi_model.backends' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
