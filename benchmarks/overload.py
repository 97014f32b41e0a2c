"""Overload: N runs whose steps heartbeat every 0.2 s, started, then all
cancelled; N more, then all terminated. Does the runtime degrade or collapse?

For each N it prints the settings beside the numbers: start latency p50/p99
(``start()`` returns once the run is durable), how long until every run is
CANCELLED after cancelling them all (and each ``cancel()`` call's latency),
the same for terminate, RSS per run with every run in flight, peak threads,
and how many step attempts ran at once (``max_concurrent_steps``) while the
others waited.

Every phase has a deadline (``--budget`` seconds); a phase that misses it is
reported as such, and the whole benchmark ends by itself after
``--deadline`` seconds whatever happens (it then prints what it has).

    python benchmarks/overload.py [--runs 1000 5000 10000] [--beat 0.2]
        [--max-concurrent-steps N] [--budget 300] [--deadline 1800]
"""

from __future__ import annotations

import argparse
import inspect
import json
import os
import sqlite3
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from actors import Runtime, get_context, step, workflow

#: The steps' heartbeat period in seconds (``--beat``).
BEAT = [0.2]


@step(name="overload.beating")
def beating(key: str) -> str:
    """Heartbeats every BEAT seconds until cancelled or terminated."""
    ctx = get_context()
    pause = threading.Event()
    i = 0
    while True:
        ctx.heartbeat({"i": i})
        i += 1
        pause.wait(BEAT[0])


@workflow(name="overload.one")
async def one(key: str) -> str:
    return await beating(key)


def rss_mb() -> float:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


class Sampler:
    """Samples thread count and RSS every 50 ms; keeps the peaks."""

    def __init__(self) -> None:
        self.peak_threads = 0
        self.peak_rss = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(0.05):
            self.peak_threads = max(self.peak_threads, threading.active_count())
            self.peak_rss = max(self.peak_rss, rss_mb())

    def reset(self) -> None:
        self.peak_threads, self.peak_rss = threading.active_count(), rss_mb()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()


class LeaseWatch:
    """Reads the runtime's lease renewals from the store every 0.1 s; keeps
    the longest gap between two (renewed every third of the lease: 3.3 s)."""

    def __init__(self, db: str, owner: str) -> None:
        self.max_gap = 0.0
        self._db, self._owner = db, owner
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        conn = sqlite3.connect(f"file:{self._db}?mode=ro", uri=True, timeout=30)
        last = None
        while not self._stop.wait(0.1):
            row = conn.execute(
                "SELECT heartbeat_at FROM runtimes WHERE owner = ?", (self._owner,)
            ).fetchone()
            if row and last is not None and row[0] != last:
                self.max_gap = max(self.max_gap, row[0] - last)
            last = row[0] if row else last
        conn.close()

    def stop(self) -> float:
        self._stop.set()
        self._thread.join()
        return self.max_gap


def pct(samples: list[float], q: float) -> float:
    if not samples:
        return float("nan")
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def count(db: str, status: str, run_ids: list[str]) -> int:
    """How many of ``run_ids`` have ``status`` (a reader of its own)."""
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=30)
    try:
        wanted = set(run_ids)
        rows = conn.execute("SELECT run_id FROM runs WHERE status = ?", (status,))
        return sum(1 for (run_id,) in rows if run_id in wanted)
    finally:
        conn.close()


def step_counts(db: str) -> dict[str, int]:
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=30)
    try:
        return dict(conn.execute("SELECT status, count(*) FROM steps GROUP BY status").fetchall())
    finally:
        conn.close()


def wait_status(db: str, status: str, run_ids: list[str], budget: float) -> float | None:
    """Seconds until every run has ``status``; None if not within ``budget``."""
    begin = time.perf_counter()
    while count(db, status, run_ids) < len(run_ids):
        if time.perf_counter() - begin > budget:
            return None
        time.sleep(0.05)
    return time.perf_counter() - begin


def start_all(rt: Runtime, n: int, tag: str, budget: float) -> tuple[list[str], list[float]]:
    ids, latencies = [], []
    begin = time.perf_counter()
    for i in range(n):
        t0 = time.perf_counter()
        ids.append(rt.start(one, f"{tag}{i}").run_id)
        latencies.append(time.perf_counter() - t0)
        if time.perf_counter() - begin > budget:
            break
    return ids, latencies


def control_all(rt: Runtime, ids: list[str], verb: str, budget: float) -> list[float]:
    latencies = []
    begin = time.perf_counter()
    for run_id in ids:
        t0 = time.perf_counter()
        try:
            if verb == "cancel":
                rt.cancel(run_id, "overload")
            else:
                rt.terminate(run_id, "overload")
        except Exception as exc:  # reported; the benchmark goes on
            print(f"  {verb} {run_id} raised {exc!r}", flush=True)
        latencies.append(time.perf_counter() - t0)
        if time.perf_counter() - begin > budget:
            break
    return latencies


def stop_round(
    rt: Runtime, db: str, ids: list[str], verb: str, *, budget: float, out: dict[str, Any]
) -> None:
    """Cancel (or terminate) every run; record the calls' latency and the time
    until every run is CANCELLED (TERMINATED)."""
    t0 = time.perf_counter()
    calls = control_all(rt, ids, verb, budget)
    out[f"{verb}_call_p50_ms"] = 1000 * pct(calls, 0.5)
    out[f"{verb}_call_p99_ms"] = 1000 * pct(calls, 0.99)
    out[f"{verb}_calls_s"] = sum(calls)  # the calls alone, one after another
    status = "cancelled" if verb == "cancel" else "terminated"
    left = max(1.0, budget - (time.perf_counter() - t0))
    done = wait_status(db, status, ids, left)
    out[f"{verb}_all_s"] = None if done is None else time.perf_counter() - t0


def one_size(n: int, args: argparse.Namespace, sampler: Sampler) -> dict[str, Any]:
    db = os.path.join(tempfile.mkdtemp(prefix="proctor-overload-"), "overload.db")
    options: dict[str, Any] = {"resume": False, "shutdown_timeout": 2.0}
    if args.max_concurrent_steps is not None:
        options["max_concurrent_steps"] = args.max_concurrent_steps
    if "max_concurrent_steps" not in inspect.signature(Runtime).parameters:
        options.pop("max_concurrent_steps", None)  # a runtime without step slots
    out: dict[str, Any] = {"runs": n, "beat_s": BEAT[0]}
    base_rss = rss_mb()
    sampler.reset()
    rt = Runtime(db, **options)
    # The slot settings, reported; absent from a runtime without step slots.
    slots = getattr(rt._census, "slots", None)
    out["max_concurrent_steps"] = slots.limit if slots is not None else "unbounded"
    lease = LeaseWatch(db, rt.id)
    try:
        ids, starts = start_all(rt, n, "c", args.budget)
        out["started"] = len(ids)
        out["start_p50_ms"] = 1000 * pct(starts, 0.5)
        out["start_p99_ms"] = 1000 * pct(starts, 0.99)
        out["start_max_ms"] = 1000 * max(starts)
        out["start_all_s"] = sum(starts)
        time.sleep(2 * BEAT[0])  # let the running ones heartbeat
        out["rss_mb_in_flight"] = rss_mb()
        out["kb_per_run"] = 1024 * (rss_mb() - base_rss) / max(1, len(ids))
        out["steps_in_store"] = step_counts(db)
        if slots is not None:
            out["slots_running_waiting"] = slots.statistics()
        stop_round(rt, db, ids, "cancel", budget=args.budget, out=out)
        out["peak_threads_cancel_round"] = sampler.peak_threads
        sampler.reset()
        ids, starts = start_all(rt, n, "t", args.budget)
        out["start2_p50_ms"] = 1000 * pct(starts, 0.5)
        out["start2_p99_ms"] = 1000 * pct(starts, 0.99)
        time.sleep(2 * BEAT[0])
        stop_round(rt, db, ids, "terminate", budget=args.budget, out=out)
        out["peak_threads_terminate_round"] = sampler.peak_threads
        out["peak_rss_mb"] = sampler.peak_rss
    finally:
        out["lease_renewal_max_gap_s"] = lease.stop()
        t0 = time.perf_counter()
        rt.close()
        out["close_s"] = time.perf_counter() - t0
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, nargs="+", default=[1000, 5000, 10000])
    parser.add_argument("--beat", type=float, default=BEAT[0], help="heartbeat period (s)")
    parser.add_argument("--max-concurrent-steps", type=int, default=None)
    parser.add_argument("--budget", type=float, default=300, help="deadline per phase (s)")
    parser.add_argument("--deadline", type=float, default=1800, help="whole benchmark (s)")
    args = parser.parse_args()
    BEAT[0] = args.beat
    results: list[dict[str, Any]] = []

    def give_up() -> None:
        print(f"deadline of {args.deadline:g}s reached; results so far:", flush=True)
        print(json.dumps(results, indent=1), flush=True)
        os._exit(3)

    watchdog = threading.Timer(args.deadline, give_up)
    watchdog.daemon = True
    watchdog.start()
    print(
        f"python {sys.version.split()[0]}, {os.cpu_count()} CPUs, loadavg "
        f"{' '.join(f'{x:.1f}' for x in os.getloadavg())}, heartbeat every {args.beat:g}s",
        flush=True,
    )
    sampler = Sampler()
    for n in args.runs:
        result = one_size(n, args, sampler)
        results.append(result)
        print(json.dumps(result), flush=True)
    sampler.stop()
    watchdog.cancel()
    print()
    keys = [
        "runs",
        "max_concurrent_steps",
        "start_p50_ms",
        "start_p99_ms",
        "start_max_ms",
        "cancel_call_p99_ms",
        "cancel_calls_s",
        "cancel_all_s",
        "terminate_call_p99_ms",
        "terminate_calls_s",
        "terminate_all_s",
        "kb_per_run",
        "peak_threads_cancel_round",
        "lease_renewal_max_gap_s",
        "close_s",
    ]
    print(" | ".join(keys))
    for r in results:
        print(" | ".join(_fmt(r.get(k)) for k in keys))


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.2f}"
    return "missed" if value is None else str(value)


if __name__ == "__main__":
    main()
