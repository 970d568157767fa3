"""Backends: the model and real SSPI libraries behind one interface."""

from sspi_model.backends.base import SYNC_CALLS, Backend, BackendFailure, Capabilities
from sspi_model.backends.model import ModelBackend

__all__ = ["SYNC_CALLS", "Backend", "BackendFailure", "Capabilities", "ModelBackend"]
