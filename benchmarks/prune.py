"""Retention under load: how long a prune holds the write lock, and what the
Journal's commits pay for it.

Fills a store with ``--runs`` finished 3-step runs (made two days old), then
runs a steady load of new 3-step runs on a Runtime while old runs are pruned
(``--by cli``: ``persistence.prune()`` on a connection of its own, as
``proctor runs prune`` does; ``--by runtime``: a second Runtime with
``retention=1 day`` prunes in its ControlInbox). Prints the longest prune
transaction and the Journal's commit latency (each ``SQLiteStore.append_groups``,
lock wait included) before and during the prune.

    python benchmarks/prune.py [--runs 20000] [--by cli|runtime]
"""

from __future__ import annotations

import argparse
import shutil
import sqlite3
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any, ClassVar

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import persistence._retention as retention
from actors import Runtime, step, workflow
from persistence import SQLiteStore, Store, prune

DAY = 86400.0


@step(name="prune.work")
def work(text: str) -> str:
    return text.upper()


@workflow(name="prune.three_steps")
async def three_steps(order: str) -> str:
    a = await work(order)
    b = await work(a + "-paid")
    return await work(b + "-shipped")


class _Timed:
    """Times every SQLiteStore.append_groups call (one Journal commit each)."""

    samples: ClassVar[list[tuple[float, float]]] = []  # (monotonic at start, seconds)
    _original: Any = None

    @classmethod
    def install(cls) -> None:
        cls._original = SQLiteStore.append_groups

        def timed(self: Store, *args: Any, **kwargs: Any) -> Any:
            t0 = time.monotonic()
            try:
                return cls._original(self, *args, **kwargs)
            finally:
                cls.samples.append((t0, time.monotonic() - t0))

        SQLiteStore.append_groups = timed  # type: ignore[method-assign]


class _PruneTimed:
    """Times every prune transaction (wherever it runs: CLI or ControlInbox)."""

    samples: ClassVar[list[float]] = []

    @classmethod
    def install(cls) -> None:
        original = retention._delete_trees

        def timed(*args: Any, **kwargs: Any) -> int:
            t0 = time.perf_counter()
            try:
                return original(*args, **kwargs)
            finally:
                cls.samples.append(time.perf_counter() - t0)

        retention._delete_trees = timed  # type: ignore[assignment]


def _fill(db: Path, runs: int) -> None:
    with Runtime(db) as rt:
        for base in range(0, runs, 1000):
            handles = [rt.start(three_steps, f"o-{i}") for i in range(base, min(runs, base + 1000))]
            for h in handles:
                h.result(timeout=120)
    conn = sqlite3.connect(db)
    conn.execute(
        "UPDATE runs SET created_at = created_at - ?, finished_at = finished_at - ?",
        (2 * DAY, 2 * DAY),
    )
    conn.commit()
    conn.close()


def _load(rt: Runtime, stop: threading.Event) -> int:
    done = 0
    while not stop.is_set():
        rt.start(three_steps, "load").result(timeout=60)
        done += 1
    return done


def _latency(samples: list[float]) -> str:
    if not samples:
        return "no commits"
    ordered = sorted(samples)
    p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
    return (
        f"{len(ordered)} commits, p50 {statistics.median(ordered) * 1e3:.2f} ms,"
        f" p99 {p99 * 1e3:.2f} ms, max {ordered[-1] * 1e3:.2f} ms"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=20_000)
    parser.add_argument("--by", choices=("cli", "runtime"), default="cli")
    parser.add_argument("--baseline", type=float, default=3.0, help="seconds of load alone")
    parser.add_argument(
        "--filled", type=Path, help="reuse this filled store (made, and kept, if missing)"
    )
    opts = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp, "prune.db")
        if opts.filled is not None and opts.filled.exists():
            shutil.copyfile(opts.filled, db)
        else:
            t0 = time.monotonic()
            _fill(db, opts.runs)
            print(f"filled {opts.runs} runs in {time.monotonic() - t0:.1f}s")
            if opts.filled is not None:
                shutil.copyfile(db, opts.filled)
        _Timed.install()
        _PruneTimed.install()
        stop = threading.Event()
        with Runtime(db, resume=False) as rt:
            loader = threading.Thread(target=_load, args=(rt, stop))
            loader.start()
            time.sleep(opts.baseline)  # a benchmark: a fixed window of load alone
            started = time.monotonic()
            if opts.by == "cli":
                with SQLiteStore.open(db) as store:
                    report = prune(store, DAY)
                what = f"{report.runs} runs in {report.transactions} transactions"
            else:
                probe = sqlite3.connect(db)
                with Runtime(db, resume=False, retention=DAY):
                    old = "SELECT count(*) FROM runs WHERE created_at < ?"
                    while probe.execute(old, (time.time() - DAY,)).fetchone()[0]:
                        time.sleep(0.05)
                probe.close()
                what = f"every old run in {len(_PruneTimed.samples)} transactions"
            ended = time.monotonic()
            stop.set()
            loader.join()
        before = [d for t, d in _Timed.samples if t < started]
        during = [d for t, d in _Timed.samples if started <= t < ended]
        left = sqlite3.connect(db).execute("SELECT count(*) FROM runs").fetchone()[0]
        print(f"pruned {what} by {opts.by} in {ended - started:.2f}s; {left} runs left")
        print(f"prune transactions: {_latency(_PruneTimed.samples).split(' ', 2)[2]}")
        print(f"journal commits before the prune: {_latency(before)}")
        print(f"journal commits during the prune: {_latency(during)}")


if __name__ == "__main__":
    main()
