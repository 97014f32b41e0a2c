"""Workflows for the step-handle process tests: a worker subprocess runs them
and is SIGKILLed (see ``tests/test_step_handle_processes.py``)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from actors import CancellationError, start_step, step, workflow
from tests.crash_workflows import _runs, hold, mark


@step()
def deaf(folder: str, key: str) -> str:
    """Never checks its mailbox: runs until ``<key>.release`` exists (C4)."""
    nth = _runs(folder, key)
    Path(folder, f"{key}.started.{nth}").touch()
    while not Path(folder, f"{key}.release").exists():
        time.sleep(0.001)
    return key


@workflow()
async def cancels_a_deaf_step(folder: str) -> list[Any]:
    """TRY_CANCEL of a step that does not check: the await raises at once."""
    handle = start_step(deaf(folder, "deaf"))
    took = handle.cancel("stop")
    try:
        got: list[Any] = ["value", await handle]
    except CancellationError as exc:
        got = ["cancelled", exc.reason]
    await mark(folder, "after")
    await hold(folder, "wait")
    return [took, got]
