"""`python -m sspi_model`: the same as the `sspi-model` command."""

from sspi_model.cli import main

raise SystemExit(main())
