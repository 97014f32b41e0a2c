"""Workflows for the crash tests: a worker subprocess runs them and is SIGKILLed.

Steps count their executions in files (``<name>.runs``, one line each), so a
test can tell exactly which side effects happened, across processes.

``PROCTOR_CRASH_AFTER=<event_type>@<call>`` makes the worker SIGKILL itself
right after the first commit that contains that event (for example
``step_completed@0``): a crash exactly between two records.
"""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

from actors import CancellationError, get_context, shield, step, workflow
from actors._journal import AFTER_COMMIT
from persistence import NewEvent


def _runs(folder: str, key: str) -> int:
    """Count one execution of ``key``; return its number (1 for the first)."""
    with Path(folder, f"{key}.runs").open("a") as f:
        f.write("x\n")
    return len(Path(folder, f"{key}.runs").read_text().splitlines())


@step()
def mark(folder: str, key: str) -> str:
    _runs(folder, key)
    return key


@step()
def hold(folder: str, key: str) -> str:
    """Works in 1 ms slices, checking its mailbox, until ``<key>.release`` exists."""
    ctx = get_context()
    nth = _runs(folder, key)
    Path(folder, f"{key}.started.{nth}").touch()
    while not Path(folder, f"{key}.release").exists():
        ctx.check_cancellation()
        time.sleep(0.001)
    return key


@step()
def deaf(folder: str, key: str) -> str:
    """Does not check its mailbox until released: a cancel waits for it."""
    ctx = get_context()
    nth = _runs(folder, key)
    Path(folder, f"{key}.started.{nth}").touch()
    while not Path(folder, f"{key}.release").exists():
        time.sleep(0.001)
    ctx.check_cancellation()
    return key


@step()
def finishes_late(folder: str, key: str) -> str:
    """Never checks its mailbox: it finishes once its runtime, stopping, has
    asked it to (the request waits unread in its mailbox), as a charge in
    flight at SIGTERM would."""
    ctx = get_context()
    nth = _runs(folder, key)
    Path(folder, f"{key}.started.{nth}").touch()
    inbox = ctx._inbox  # type: ignore[attr-defined]
    while nth == 1 and inbox.empty():
        time.sleep(0.001)
    return key


@workflow()
async def charges(folder: str) -> list[str]:
    return [await mark(folder, "a"), await finishes_late(folder, "b"), await mark(folder, "c")]


@workflow()
async def pipeline(folder: str) -> list[str]:
    return [await mark(folder, "a"), await hold(folder, "b"), await mark(folder, "c")]


@workflow()
async def with_cleanup(folder: str) -> str:
    try:
        return await hold(folder, "work")
    except CancellationError:
        with shield():
            await hold(folder, "cleanup")
        raise


@workflow()
async def buffered(folder: str) -> str:
    with shield():
        inner = await hold(folder, "inner")
    await mark(folder, "after")
    return inner


@workflow()
async def deaf_job(folder: str) -> str:
    try:
        return await deaf(folder, "deaf")
    except CancellationError:
        with shield():
            await mark(folder, "cleanup")
        raise


def _install_crash_hook(spec: str) -> None:
    type_, _, call = spec.partition("@")

    def crash(events: list[NewEvent]) -> None:
        if any(e.type.value == type_ and e.call == int(call) for e in events):
            os.kill(os.getpid(), signal.SIGKILL)

    AFTER_COMMIT.append(crash)


if os.environ.get("PROCTOR_CRASH_AFTER"):
    _install_crash_hook(os.environ["PROCTOR_CRASH_AFTER"])
