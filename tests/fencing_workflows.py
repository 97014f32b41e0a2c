"""Workflows for the fencing tests, in one process or in worker subprocesses.

The ``beat`` step heartbeats every 10 ms until ``<key>.release`` exists in
its folder. Each attempt keeps a log of its own (``<key>.<uuid>.log``): one
line per event, ``<what> <time.monotonic()>``. The monotonic clock is one per
host, shared by every process and PID namespace, so the logs of two workers
say whether two attempts ever ran at the same time.
"""

from __future__ import annotations

import os
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

from actors import Terminated, get_context, step, workflow


def _line(log: Path, what: str) -> None:
    with log.open("a") as f:
        f.write(f"{what} {time.monotonic()!r} {os.getpid()}\n")


@step()
def beat(folder: str, key: str, heartbeat: bool = True) -> str:
    """Heartbeats (or, with ``heartbeat=False``, only checks) every 10 ms."""
    ctx = get_context()
    log = Path(folder, f"{key}.{uuid.uuid4().hex}.log")
    _line(log, "start")
    try:
        while not Path(folder, f"{key}.release").exists():
            if heartbeat:
                ctx.heartbeat()
            else:
                ctx.check_cancellation()
            _line(log, "beat")
            time.sleep(0.01)
    except Terminated:
        _line(log, "terminated")
        raise
    _line(log, "end")
    return key


@workflow()
async def beating(folder: str) -> str:
    return await beat(folder, "b")


@workflow()
async def checking(folder: str) -> str:
    return await beat(folder, "b", False)


@dataclass(frozen=True)
class Attempt:
    """One attempt's log: when it started, its beats, and how it ended."""

    start: float
    beats: list[float]
    ended: str | None  # "end", "terminated", or None (still running)
    end: float | None

    @property
    def last(self) -> float:
        """When it was last seen running."""
        return self.end if self.end is not None else max([self.start, *self.beats])


def attempts(folder: Path, key: str) -> list[Attempt]:
    """Every attempt of step ``key`` so far, by start time."""
    found = []
    for log in folder.glob(f"{key}.*.log"):
        # Only whole lines: the step may be writing one right now.
        lines = [line.split() for line in log.read_text().splitlines(keepends=True)]
        lines = [fields for fields in lines if len(fields) == 3]
        starts = [float(t) for what, t, _ in lines if what == "start"]
        if not starts:
            continue
        start = starts[0]
        beats = [float(t) for what, t, _ in lines if what == "beat"]
        ends = [(what, float(t)) for what, t, _ in lines if what in ("end", "terminated")]
        found.append(
            Attempt(start, beats, ends[0][0] if ends else None, ends[0][1] if ends else None)
        )
    return sorted(found, key=lambda a: a.start)
