"""The native backend: a real SSPI library (sspi-rs, secur32.dll) behind the Backend protocol."""

from sspi_model.backends.native.backend import NativeBackend
from sspi_model.backends.native.discovery import LibraryNotFound, find_library
from sspi_model.backends.native.worker import NeedsReset, WorkerError

__all__ = ["LibraryNotFound", "NativeBackend", "NeedsReset", "WorkerError", "find_library"]
