"""Workflows for the fault-injection suite; ``proctor worker`` subprocesses run them.

Every step attempt keeps a *side file*, one per step call of a run
(``<run_id>.<call>.steplog`` in the folder given as the workflow's first
argument). Each line is appended with ``O_APPEND`` and fsync'd, so it
survives a SIGKILL of its writer the moment it is written::

    start <pid> <attempt> <monotonic> <wall>   the attempt passed its first check
    tick  <pid> <attempt> <monotonic> <wall>   it passed another check, did a slice of work
    end   <pid> <attempt> <monotonic> <wall>   its side effect is done; it returns
    exit  <pid> <attempt> <monotonic> <wall> <exception>   it unwound instead

Every ``start``/``tick``/``end`` timestamp is taken right *before* a heartbeat
(a mailbox check) that then passed: the runtime let this attempt go on at a
moment no earlier than it. A process frozen anywhere between taking the
time and writing the line writes a time from before the freeze; a check
that runs after the freeze and passes writes a time from after it. So two
attempts whose ``[start, last tick or end]`` intervals overlap were both
allowed to work at the same moment, and ``CLOCK_MONOTONIC`` is one clock
for every process of the host.

Environment knobs, read at import (the worker imports this module before it
builds its runtime):

- ``PROCTOR_FAULT_LEASE_TTL``: the runtime's ``lease_ttl`` (seconds);
- ``PROCTOR_FAULT_BUSY_TIMEOUT``: its ``busy_timeout`` (seconds);
- ``PROCTOR_FAULT_CLOCK_SKEW``: seconds added to this process's wall clock
  (``time.time``), as on a host whose clock is off; its monotonic clock,
  which the side files use, is untouched.

``proctor worker`` has no option for either, and the suite needs a lease of
a few seconds, not the default ten, to stay short.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import cast

from actors import (
    CancellationError,
    Runtime,
    StepContext,
    get_context,
    shield,
    start_child,
    step,
    workflow,
)

#: How a side file is named, for the checker.
SIDE_FILE_SUFFIX = ".steplog"


def side_file(folder: str, run_id: str, call: int) -> Path:
    return Path(folder, f"{run_id}.{call}{SIDE_FILE_SUFFIX}")


def _line(path: Path, kind: str, ctx: StepContext, at: float, *extra: str) -> None:
    wall = repr(time.time())
    text = " ".join((kind, str(os.getpid()), str(ctx.attempt), repr(at), wall, *extra))
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, (text + "\n").encode())
        os.fsync(fd)
    finally:
        os.close(fd)


@step()
def work(folder: str, key: str, ticks: int, slice_s: float, tail_s: float = 0.0) -> str:
    """``ticks`` slices of ``slice_s`` seconds, a heartbeat (and a side-file line) each,
    then ``tail_s`` seconds of work that checks nothing before the side effect is done.

    The ``end`` line carries the time of the last passed check; it is written
    when the side effect is complete.
    """
    ctx = cast(StepContext, get_context())
    path = side_file(folder, ctx.run_id, ctx.call)
    at = time.monotonic()
    ctx.heartbeat()
    _line(path, "start", ctx, at)
    try:
        for _ in range(ticks):
            time.sleep(slice_s)
            at = time.monotonic()
            ctx.heartbeat()
            _line(path, "tick", ctx, at)
    except BaseException as exc:
        _line(path, "exit", ctx, time.monotonic(), type(exc).__name__)
        raise
    time.sleep(tail_s)
    _line(path, "end", ctx, at)
    return key


@workflow()
async def chain(
    folder: str, steps: int, ticks: int, slice_s: float, tail_s: float = 0.0
) -> list[str]:
    """``steps`` steps, one after the other."""
    return [await work(folder, f"s{i}", ticks, slice_s, tail_s) for i in range(steps)]


@workflow()
async def cancellable(folder: str, steps: int, ticks: int, slice_s: float) -> list[str]:
    """Like :func:`chain`; on cancel, a shielded cleanup step runs before the run ends."""
    try:
        return [await work(folder, f"s{i}", ticks, slice_s) for i in range(steps)]
    except CancellationError:
        with shield():
            await work(folder, "cleanup", 2, slice_s)
        raise


@workflow()
async def family(folder: str, ticks: int, slice_s: float) -> list[str]:
    """Two child runs: one abandoned that outlives its parent, one awaited; a step between."""
    await start_child(chain, folder, 5, ticks, slice_s, parent_close_policy="abandon")
    kid = await start_child(chain, folder, 2, ticks, slice_s)
    mine = await work(folder, "parent", ticks, slice_s)
    return [mine, *await kid]


def _configure_runtime_defaults() -> None:
    defaults = Runtime.__init__.__kwdefaults__
    assert defaults is not None
    for env, name in (
        ("PROCTOR_FAULT_LEASE_TTL", "lease_ttl"),
        ("PROCTOR_FAULT_BUSY_TIMEOUT", "busy_timeout"),
    ):
        if os.environ.get(env):
            defaults[name] = float(os.environ[env])


def _skew_wall_clock() -> None:
    skew = float(os.environ.get("PROCTOR_FAULT_CLOCK_SKEW") or 0)
    if skew:
        real = time.time
        time.time = lambda: real() + skew


_configure_runtime_defaults()
_skew_wall_clock()
