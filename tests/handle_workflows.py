"""Workflows for the step-handle process tests: a worker subprocess runs them
and is SIGKILLed (see ``tests/test_step_handle_processes.py``)."""

from __future__ import annotations

from typing import Any

from actors import CancellationError, start_step, workflow
from tests.crash_workflows import deaf, hold, mark


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
