"""Workflows of the run-timeout tests (B4), in a module a worker process imports too.

Steps report through files in a folder the test passes, so a test can see
what they did across processes: ``<key>.started`` when a step begins,
``<key>.cleaned`` when the shielded cleanup ran; ``<key>.release`` lets a
held step return.
"""

from __future__ import annotations

import time
from pathlib import Path

from actors import CancellationError, get_context, shield, step, workflow


@step()
def hold(folder: str, key: str) -> str:
    """Works in 1 ms slices, checking its mailbox, until ``<key>.release`` exists."""
    ctx = get_context()
    Path(folder, f"{key}.started").touch()
    while not Path(folder, f"{key}.release").exists():
        ctx.check_cancellation()
        time.sleep(0.001)
    return key


@step()
def deaf(folder: str, key: str) -> str:
    """Never checks its mailbox until released: only a terminate ends its run."""
    ctx = get_context()
    Path(folder, f"{key}.started").touch()
    while not Path(folder, f"{key}.release").exists():
        time.sleep(0.001)
    ctx.check_cancellation()
    return key


@step()
def clean_up(folder: str, key: str) -> None:
    Path(folder, f"{key}.cleaned").touch()


@step()
def quick(value: int) -> int:
    return value


@workflow(timeout=3600)
async def patient(folder: str, key: str) -> str:
    """An hour to finish; cleans up in a shield when cancelled."""
    try:
        return await hold(folder, key)
    except CancellationError:
        with shield():
            await clean_up(folder, key)
        raise


@workflow(timeout=60, cancel_grace=5)
async def stubborn(folder: str, key: str) -> str:
    return await deaf(folder, key)


@workflow(timeout=60, cancel_grace=3600)
async def shielded(folder: str, key: str) -> str:
    """Its step runs in a shield: a timeout's cancel is buffered until it ends."""
    with shield():
        return await hold(folder, key)


@workflow()
async def unbounded(folder: str, key: str) -> str:
    """No timeout of its own: ``start(timeout=...)`` or ``--run-timeout`` gives one."""
    return await hold(folder, key)


@workflow(timeout=3600)
async def brisk(value: int) -> int:
    return await quick(value)


@workflow(timeout=30)
async def parent_of_unbounded(folder: str, key: str) -> str:
    """A child run with no timeout of its own, under a parent with one."""
    return await unbounded(folder, key)
