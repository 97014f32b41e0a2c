"""Worker processes and a client, shared by the per-system ``fleet_*.py`` scripts.

A fleet is K worker processes on one store, each printing ``ready <pid>``
once it serves; the client (the script's own process) starts runs and
polls for their end. Both systems' clients wait the same way: they poll
the oldest run in flight every ``POLL`` seconds through the system's
public status call (so neither system's default wait interval, 50 ms for
Proctor's ``Client``, 1 s for DBOS's ``get_result``, sets the pace).

Takeover: runs that hold their step until a ``release`` file exists mark
``<key>.<pid>`` (the step's CLOCK_MONOTONIC start, one clock for every
process of a Linux host) each time an attempt starts; the worker holding
the most is killed with SIGKILL, and the time until each of its runs'
steps starts again in another worker is the takeover time.
"""

from __future__ import annotations

import os
import signal
import statistics
import subprocess
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

#: How often a client looks whether the oldest run in flight has ended, in seconds.
POLL = 0.005


def spawn(commands: Sequence[list[str]], *, timeout: float = 60.0) -> list[subprocess.Popen[str]]:
    """Start one worker per command; return once every one printed ``ready``."""
    workers = [
        subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        for command in commands
    ]
    deadline = time.monotonic() + timeout
    for worker in workers:
        assert worker.stdout is not None
        line = worker.stdout.readline()  # blocks until the worker is up, or dies
        if not line.startswith("ready") or time.monotonic() > deadline:
            stop(workers)
            raise RuntimeError(f"a worker did not start (exit {worker.poll()}): {line!r}")
    return workers


def stop(workers: Sequence[subprocess.Popen[str]], *, timeout: float = 30.0) -> None:
    for worker in workers:
        if worker.poll() is None:
            worker.send_signal(signal.SIGTERM)
    for worker in workers:
        try:
            worker.wait(timeout)
        except subprocess.TimeoutExpired:
            worker.kill()
            worker.wait()


def wait_until(done: Callable[[], bool], timeout: float, pause: float = POLL) -> bool:
    deadline = time.monotonic() + timeout
    while not done():
        if time.monotonic() > deadline:
            return False
        time.sleep(pause)
    return True


def windowed(
    start: Callable[[int], Any], finished: Callable[[Any], bool], runs: int, window: int
) -> float:
    """Start ``runs`` runs, at most ``window`` in flight; runs/s from the first
    start to the last end seen."""
    begin = time.perf_counter()
    pending: list[Any] = []

    def settle(handle: Any) -> None:
        if not wait_until(lambda: finished(handle), 120.0):
            raise TimeoutError("a run did not finish within 120 s")

    for i in range(runs):
        pending.append(start(i))
        if len(pending) >= window:
            settle(pending.pop(0))
    for handle in pending:
        settle(handle)
    return runs / (time.perf_counter() - begin)


def markers(folder: Path, key: str) -> dict[int, float]:
    """pid -> when the step of run ``key`` started in that process."""
    found = {}
    for path in folder.glob(f"{key}.*"):
        text = path.read_text()
        if text:
            found[int(path.suffix[1:])] = float(text)
    return found


def takeover(
    start_held: Callable[[str], Any],
    workers: Sequence[subprocess.Popen[str]],
    folder: Path,
    runs: int,
    *,
    give_up: float,
) -> dict[str, Any]:
    """Kill -9 the worker holding the most held runs; how long until another
    worker runs their steps again (``give_up`` seconds at most)."""
    keys = [f"h{i}" for i in range(runs)]
    for key in keys:
        start_held(key)
    if not wait_until(lambda: all(markers(folder, k) for k in keys), 60.0, 0.01):
        raise TimeoutError("the held runs did not all start within 60 s")
    holder: dict[str, int] = {k: next(iter(markers(folder, k))) for k in keys}
    counts = {w.pid: sum(1 for pid in holder.values() if pid == w.pid) for w in workers}
    victim = max(counts, key=lambda pid: counts[pid])
    lost = [k for k, pid in holder.items() if pid == victim]
    killed_at = time.monotonic()
    os.kill(victim, signal.SIGKILL)
    next(w for w in workers if w.pid == victim).wait()

    def taken(key: str) -> float | None:
        others = [t for pid, t in markers(folder, key).items() if pid != victim]
        return min(others) - killed_at if others else None

    wait_until(lambda: all(taken(k) is not None for k in lost), give_up, 0.01)
    (folder / "release").touch()
    times = sorted(t for k in lost if (t := taken(k)) is not None)
    result: dict[str, Any] = {"killed_runs": len(lost), "taken_over": len(times)}
    if times:
        result |= {
            "first_s": times[0],
            "median_s": statistics.median(times),
            "last_s": times[-1],
        }
    return result
