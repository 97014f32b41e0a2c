"""Workflows for the durable-sleep process tests: a worker runs them and is SIGKILLed.

Importing ``tests.crash_workflows`` brings its ``PROCTOR_CRASH_AFTER`` hook
(``timer_started@1``: the worker SIGKILLs itself right after the sleep's
timer is committed) and its counting step ``mark``.
"""

from __future__ import annotations

from actors import sleep, workflow
from tests.crash_workflows import mark


@workflow()
async def dozes(folder: str, seconds: float) -> str:
    await mark(folder, "before")
    await sleep(seconds)
    await mark(folder, "after")
    return "rested"
