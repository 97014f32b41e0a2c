"""Workflows the cross-process benchmarks run in a ``proctor worker`` subprocess.

The step and the benchmark meet through files: the step touches
``<key>.started``, checks its mailbox every 1 ms, and writes the
``time.monotonic()`` at which it saw the cancel into ``<key>.seen``
(CLOCK_MONOTONIC is one clock for every process on a Linux host).
"""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

from actors import CancellationError, get_context, step, wait_for_signal, workflow


@step(name="bench.xp_looping")
def xp_looping(folder: str, key: str) -> None:
    ctx = get_context()
    pause = threading.Event()
    Path(folder, f"{key}.started").touch()
    try:
        while True:
            ctx.check_cancellation()
            pause.wait(0.001)
    except CancellationError:
        Path(folder, f"{key}.seen").write_text(repr(time.monotonic()))
        raise


@workflow(name="bench.xp_cancel_me")
async def xp_cancel_me(folder: str, key: str) -> None:
    await xp_looping(folder, key)


@workflow(name="bench.xp_signal_me")
async def xp_signal_me(folder: str, key: str) -> None:
    """Waits for the signal ``go``, then writes when it resumed into ``<key>.seen``."""
    await wait_for_signal("go")
    Path(folder, f"{key}.seen").write_text(repr(time.monotonic()))


@step(name="bench.xp_noop")
def xp_noop(i: int) -> int:
    return i


@workflow(name="bench.xp_three_steps")
async def xp_three_steps(i: int) -> int:
    """The 3-step workflow of ``compare.py``, run by worker processes (``workers.py``)."""
    return await xp_noop(i) + await xp_noop(i + 1) + await xp_noop(i + 2)


@step(name="bench.xp_held")
def xp_held(folder: str, key: str) -> None:
    """Marks ``<key>.<pid>`` (this attempt's process) and checks every 10 ms
    until ``release`` exists: a run a worker holds until it is killed."""
    ctx = get_context()
    pause = threading.Event()
    Path(folder, f"{key}.{os.getpid()}").write_text(repr(time.monotonic()))
    while not Path(folder, "release").exists():
        ctx.check_cancellation()
        pause.wait(0.01)


@workflow(name="bench.xp_held_run")
async def xp_held_run(folder: str, key: str) -> None:
    await xp_held(folder, key)
