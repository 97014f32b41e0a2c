"""The ``proctor`` command line. Inspect and control commands use only
``persistence``; the commands that host a runtime import ``actors`` lazily."""

from cli._main import main

__all__ = ["main"]
