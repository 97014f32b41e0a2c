"""Shared by the per-system benchmark scripts: arguments, timing, the JSON line.

Each ``sys_*.py`` runs one scenario of one system in a fresh process and
prints one JSON object: the numbers, or ``{"error": ...}`` /
``{"unsupported": ...}``. ``benchmarks/compare.py`` runs them alternately.
"""

from __future__ import annotations

import argparse
import json
import random
import resource
import sqlite3
import statistics
import sys
import threading
import time
from collections.abc import Callable
from typing import Any

SCENARIOS = ("sequential", "concurrent", "cancel", "terminate", "inflight")


def parse() -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    parser.add_argument("scenario", choices=SCENARIOS)
    parser.add_argument(
        "--db", required=True, help="this run's store: a SQLite path or a PostgreSQL URL"
    )
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument(
        "--synchronous",
        choices=("FULL", "NORMAL"),
        default="FULL",
        help="Proctor's SQLite synchronous level (FULL: an fsync per commit, as the peers)",
    )
    return parser.parse_args()


#: Set by each system's script: says, once the run is over, with what
#: durability it ran (read from the store where the system does not say).
durability: Callable[[], str] = lambda: "unknown"  # noqa: E731


def sqlite_durability(path: str, *, synchronous: str | None = None) -> str:
    """The journal mode of the store at ``path`` (read from the file) and the
    ``synchronous`` level: the one given (set by the system), or SQLite's
    default on a fresh connection (for a system that sets none)."""
    conn = sqlite3.connect(path)
    try:
        journal = conn.execute("PRAGMA journal_mode").fetchone()[0]
        level = synchronous
        if level is None:
            value = conn.execute("PRAGMA synchronous").fetchone()[0]
            level = {0: "OFF", 1: "NORMAL", 2: "FULL", 3: "EXTRA"}[value] + " (SQLite default)"
    finally:
        conn.close()
    fsync = "an fsync per commit" if level.startswith(("FULL", "EXTRA")) else "no fsync per commit"
    if journal == "wal" and level.startswith("NORMAL"):
        fsync = "no fsync per commit: WAL synced at checkpoints only"
    return f"journal_mode={journal}, synchronous={level}: {fsync}"


def is_postgres(target: str) -> bool:
    return target.startswith(("postgresql://", "postgres://"))


def postgres_durability(url: str, *, session: str | None = None) -> str:
    """The server's durability settings, read with ``SHOW`` on a connection
    to the run's database (so a database- or role-level setting shows too),
    and ``session``: what the system sets on its own connections, if any."""
    import psycopg  # noqa: PLC0415 - only the PostgreSQL runs need the driver

    names = ("synchronous_commit", "fsync", "wal_sync_method", "full_page_writes")
    with psycopg.connect(url) as conn:
        values = {n: conn.execute(f"SHOW {n}").fetchone()[0] for n in names}  # type: ignore[index]
    text = ", ".join(f"{n}={v}" for n, v in values.items())
    own = f"; the system's sessions: {session}" if session else "; the system sets none"
    durable = values["fsync"] == "on" and values["synchronous_commit"] in ("on", "remote_apply")
    fsync = "an fsync of the WAL per commit" if durable else "NO fsync per commit"
    if session and "synchronous_commit=off" in session:
        fsync = "NO fsync per commit (asynchronous commit)"
    return f"server {text}{own}: {fsync}"


def durability_of(target: str, *, synchronous: str | None = None) -> str:
    """The settings of the store ``target`` names (see the two functions above)."""
    if is_postgres(target):
        return postgres_durability(target)
    return sqlite_durability(target, synchronous=synchronous)


def emit(result: dict[str, Any]) -> None:
    if "error" not in result and "unsupported" not in result:
        result = {**result, "durability": durability()}
    print(json.dumps(result), flush=True)
    sys.stdout.flush()


def percentiles(samples_ms: list[float]) -> dict[str, float]:
    ordered = sorted(samples_ms)
    p99 = ordered[min(len(ordered) - 1, round(0.99 * (len(ordered) - 1)))]
    return {"p50_ms": statistics.median(ordered), "p99_ms": p99, "n": len(ordered)}


def cancel_phase() -> float:
    """How long to wait after the step started before cancelling: uniform over
    two check periods. Asked right after the step's first check, a cancel
    would always wait out a whole period; a real one lands anywhere in it."""
    return random.uniform(0.0, 0.002)


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def throughput(
    start: Callable[[int], Any], wait: Callable[[Any], Any], runs: int, window: int
) -> None:
    """Start ``runs`` runs, at most ``window`` in flight (1: sequential); emit runs/s."""
    begin = time.perf_counter()
    pending: list[Any] = []
    for i in range(runs):
        pending.append(start(i))
        if len(pending) >= window:
            wait(pending.pop(0))
    for handle in pending:
        wait(handle)
    elapsed = time.perf_counter() - begin
    emit({"runs_per_s": runs / elapsed, "steps_per_s": 3 * runs / elapsed})


def parked_runs(
    start: Callable[[str], Any],
    wait: Callable[[Any], Any],
    started: dict[str, threading.Event],
    release: threading.Event,
    runs: int,
) -> None:
    """Park ``runs`` runs in a step at once; emit the ramp time and memory per run."""
    base = peak_rss_mb()
    begin = time.perf_counter()
    handles: list[Any] = []
    for i in range(runs):
        started[f"p{i}"] = threading.Event()
        handles.append(start(f"p{i}"))
    held = all(started[f"p{i}"].wait(60) for i in range(runs))
    ramp = time.perf_counter() - begin
    peak = peak_rss_mb()
    release.set()
    for handle in handles:
        wait(handle)
    emit(
        {
            "held": held,
            "ramp_s": ramp,
            "total_s": time.perf_counter() - begin,
            "peak_rss_mb": peak,
            "kb_per_run": 1024 * (peak - base) / runs,
        }
    )
