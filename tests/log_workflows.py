"""Workflows for the structured-log tests (O3): in-process and in worker subprocesses.

Steps and tests meet through marker files in a folder passed as an
argument: ``hold`` touches ``<key>.started`` and works until
``<key>.release`` exists; ``flaky`` fails its first attempt.
"""

from __future__ import annotations

import time
from pathlib import Path

from actors import RetryPolicy, get_context, shield, step, workflow

#: A retry at once: the tests wait on records, not on back-off.
AT_ONCE = RetryPolicy(max_attempts=3, initial_interval=0.0)


@step()
def hold(folder: str, key: str) -> str:
    """Works in 1 ms slices, checking its mailbox after each, until released."""
    ctx = get_context()
    Path(folder, f"{key}.started").touch()
    while not Path(folder, f"{key}.release").exists():
        ctx.check_cancellation()
        time.sleep(0.001)  # one slice of the step's work
    return key


@step(retry=AT_ONCE)
def flaky(folder: str, key: str) -> int:
    """Fails its first attempt (counted in ``<key>.tries``), then returns 2."""
    tries = Path(folder, f"{key}.tries")
    with tries.open("a") as f:
        f.write("x\n")
    if len(tries.read_text().splitlines()) == 1:
        raise ConnectionError(f"{key}: first attempt fails")
    return 2


@step(timeout=5, retry=RetryPolicy(max_attempts=2, initial_interval=1))
def slow(key: str) -> str:
    """Times out when the test kit makes it hang; its retry returns at once."""
    return key


@step()
def echo(value: str) -> str:
    return value


@step()
def boom(what: str) -> None:
    raise ValueError(f"boom: {what}")


@workflow()
async def quick(a: int) -> int:
    return a + 1


@workflow()
async def retried(folder: str, key: str) -> int:
    return await flaky(folder, key)


@workflow()
async def timed(key: str) -> str:
    return await slow(key)


@workflow()
async def failing(what: str) -> None:
    await boom(what)


@workflow()
async def held(folder: str, key: str) -> str:
    return await hold(folder, key)


@workflow()
async def shielded(folder: str, key: str) -> str:
    """Holds inside a shield: a cancel is buffered until the shield ends,
    then delivered at the next await."""
    with shield():
        value = await hold(folder, key)
    return await echo(value)
