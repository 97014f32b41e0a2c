"""Workflows for the multi-host tests: every step execution leaves a trace.

Steps write into a folder all hosts share (the hosts are network
namespaces of one machine: one file system, one monotonic clock), so the
test counts executions independently of the store:

- ``mark`` leaves one file per execution, ``<run>.<n>.<uuid>``, holding the
  hostname of the host that ran it, and returns that hostname.
- ``hold`` heartbeats every 50 ms until ``<run>.release`` exists; each
  attempt keeps a log of its own (``<run>.hold.<uuid>.log``), one line per
  event: ``<what> <time.monotonic()> <hostname>``.
"""

from __future__ import annotations

import socket
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

from actors import Terminated, get_context, step, workflow


@step()
def mark(folder: str, run: str, n: int) -> str:
    """Leave one marker naming this host; return the hostname."""
    host = socket.gethostname()
    Path(folder, f"{run}.{n}.{uuid.uuid4().hex}").write_text(host)
    return host


@workflow()
async def three_marks(folder: str, run: str) -> list[str]:
    """Three steps, one after the other: the hosts that ran them."""
    return [await mark(folder, run, n) for n in range(3)]


def _line(log: Path, what: str) -> None:
    with log.open("a") as f:
        f.write(f"{what} {time.monotonic()!r} {socket.gethostname()}\n")


@step()
def hold(folder: str, run: str) -> str:
    """Heartbeat every 50 ms until ``<run>.release`` exists; return the hostname."""
    ctx = get_context()
    log = Path(folder, f"{run}.hold.{uuid.uuid4().hex}.log")
    _line(log, "start")
    try:
        while not Path(folder, f"{run}.release").exists():
            ctx.heartbeat()
            _line(log, "beat")
            time.sleep(0.05)
    except Terminated:
        _line(log, "terminated")
        raise
    _line(log, "end")
    return socket.gethostname()


@workflow()
async def held(folder: str, run: str) -> str:
    """One heartbeating step that runs until the test releases it."""
    return await hold(folder, run)


@dataclass(frozen=True)
class Attempt:
    """One attempt of ``hold``, from its log."""

    host: str
    start: float
    beats: tuple[float, ...]
    ended: str | None  # "end", "terminated", or None (still running, or killed)
    end: float | None

    @property
    def last(self) -> float:
        """When it was last seen running (monotonic)."""
        return self.end if self.end is not None else max([self.start, *self.beats])


def attempts(folder: Path, run: str) -> list[Attempt]:
    """Every attempt of ``hold`` for ``run`` so far, by start time."""
    found = []
    for log in folder.glob(f"{run}.hold.*.log"):
        # Whole lines only: the step may be writing one right now.
        lines = [line.split() for line in log.read_text().splitlines(keepends=True)]
        fields = [f for f in lines if len(f) == 3]
        starts = [(float(t), host) for what, t, host in fields if what == "start"]
        if not starts:
            continue
        beats = tuple(float(t) for what, t, _ in fields if what == "beat")
        ends = [(what, float(t)) for what, t, _ in fields if what in ("end", "terminated")]
        found.append(
            Attempt(
                host=starts[0][1],
                start=starts[0][0],
                beats=beats,
                ended=ends[0][0] if ends else None,
                end=ends[0][1] if ends else None,
            )
        )
    return sorted(found, key=lambda a: a.start)


def markers(folder: Path) -> dict[tuple[str, int], list[str]]:
    """Every execution of ``mark``: (run, n) -> the hosts that ran it."""
    found: dict[tuple[str, int], list[str]] = {}
    for path in folder.iterdir():
        parts = path.name.split(".")
        if len(parts) == 3 and parts[1].isdigit():
            found.setdefault((parts[0], int(parts[1])), []).append(path.read_text())
    return found
