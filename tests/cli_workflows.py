"""Workflows that the CLI tests drive, in-process and from worker subprocesses.

Processes share no memory, so steps and tests meet through marker files in a
folder passed as an argument: a step touches ``<key>.started``; the test
touches ``<key>.release`` to let it finish.
"""

from __future__ import annotations

import time
from pathlib import Path

from actors import CancellationError, get_context, shield, step, workflow


@step()
def hold(folder: str, key: str) -> str:
    """Works in 1 ms slices, checking its mailbox after each, until released."""
    ctx = get_context()
    Path(folder, f"{key}.started").touch()
    while not Path(folder, f"{key}.release").exists():
        ctx.check_cancellation()
        time.sleep(0.001)  # one slice of the step's work
    return key


@step()
def mark(folder: str, name: str) -> None:
    """A side effect the test can count: one line per execution."""
    with Path(folder, name).open("a") as f:
        f.write("x\n")


@step()
def plus(a: int, b: int) -> int:
    return a + b


@workflow()
async def long_job(folder: str, key: str) -> str:
    try:
        return await hold(folder, key)
    except CancellationError:
        with shield():
            await mark(folder, f"{key}.cleanup")
        raise


@workflow()
async def shielded_job(folder: str, key: str) -> str:
    with shield():
        return await hold(folder, key)


@workflow()
async def add(a: int, b: int) -> int:
    return await plus(a, b)


@workflow()
async def counted(folder: str, key: str) -> None:
    await mark(folder, f"{key}.ran")


@workflow()
async def parent_job(folder: str, key: str) -> str:
    return await long_job(folder, key)


@workflow()
async def three_marks(folder: str, key: str) -> int:
    """Calls 0, 1, 2: one marker file each (A7's restart from a call)."""
    for name in ("a", "b", "c"):
        await mark(folder, f"{key}.{name}")
    return 3
