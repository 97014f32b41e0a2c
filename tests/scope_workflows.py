"""Workflows for the cancel-scope process tests: a worker runs them and is SIGKILLed.

Importing ``tests.crash_workflows`` brings its ``PROCTOR_CRASH_AFTER`` hook
(``timer_fired@1``: the worker SIGKILLs itself right after the scope's
deadline fired) and its counting step ``mark``.
"""

from __future__ import annotations

from actors import move_on_after, sleep, workflow
from tests.crash_workflows import mark


@workflow()
async def moves_on(folder: str, seconds: float) -> bool:
    await mark(folder, "before")
    with move_on_after(seconds) as scope:  # its deadline's timer is call 1
        await sleep(3600)  # call 2
        await mark(folder, "unreached")
    await mark(folder, "after")
    return scope.cancelled_caught
