"""The ``proctor`` command line. Inspect and control commands use only
``persistence``; the commands that host a runtime import ``actors`` lazily."""

# The command modules register their commands on `cli` when imported.
from cli import _control, _hosting, _listing, _prune, _restart, _runs, _signal, _ui  # noqa: F401
from cli._main import cli, main

__all__ = ["cli", "main"]
