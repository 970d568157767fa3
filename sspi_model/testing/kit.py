"""The conformance kit, ready to run on the backend chosen with the plugin's options:

    python -m pytest --sspi-backend mypkg.backend:make_backend --pyargs sspi_model.testing.kit

pytest collects a module named on the command line even though its name does not match
`test_*.py`. Add --sspi-profile NAME to compare with another of the model's profiles.
"""

from __future__ import annotations

from sspi_model.testing.suite import BackendConformance


class TestConformance(BackendConformance):
    """Every kit test, on the plugin's `sspi_backend_factory` and `sspi_profile` fixtures."""
