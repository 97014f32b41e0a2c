"""Event-loop lag while a service starts runs: the async API against the blocking one (A1).

    python benchmarks/loop_lag.py [--rounds 3] [--seconds 10] [--tasks 16]
                                  [--period 0.01] [--synchronous NORMAL|FULL] [--rate N]

``--tasks`` asyncio tasks start runs of a one-step workflow for ``--seconds``
beside a probe that sleeps ``--period`` and records how late it wakes (its
loop lag). Two ways to start, each in a fresh process on a fresh store:

* ``async``: ``await rt.start_async(...)``, the awaitable twin;
* ``blocking``: ``rt.start(...)`` called from the async task, as a service
  that knows no better does (issue 16 measured this one);
* ``threads``: a control: ``--tasks`` plain threads call ``rt.start(...)``
  and the loop runs the probe alone. What lag it shows is not the API's
  doing but the runs' (their actor threads share the GIL with the loop);
* ``client``: ``await client.start_async(...)`` on an actor-free ``Client``,
  while a worker process (``Runtime(claim_runs=True)``, as ``proctor
  worker``) runs the runs: the service process hosts nothing, as a
  Temporal or DBOS client does. The worker shares the machine's cores;
* ``idle``: the floor: the probe alone beside an open runtime that starts
  nothing. On a machine shared with other busy processes it is not zero,
  and no mode can do better than it.

``--rate`` caps the starts per second (all tasks together), as a service's
request rate does; by default they start as fast as they can. ``--gc
tuned`` runs each process with ``gc.freeze()`` after the runtime opens and
``gc.set_threshold(10_000, 50, 1_000)``: the longest lags at full speed are
CPython's full (generation 2) collections over the objects of the runs in
flight, 30-45 ms each, every second or so. ``--modes`` picks modes.

The runs started go on in the runtime's actor threads beside the loop (their
step runs, their end is written), as in a service. The two ways run
alternately, ``--rounds`` times; the table has the medians over rounds of
each round's loop lag p50 / p99 / max (ms), starts/s and completed/s (the
runs that had completed when the round ended, per second: a way that starts
faster than the runs can be run only grows a backlog), and every round's
values are printed under it, so the spread is visible. The settings (CPU
count, Python, store durability, tasks, period) are printed above.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import platform
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from actors import Client, Runtime, step, workflow

MODES = ("async", "blocking", "threads", "client", "idle")


@step(name="loop_lag.add")
def add(a: int, b: int) -> int:
    return a + b


@workflow(name="loop_lag.order")
async def order(n: int) -> int:
    return await add(n, 1)


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def measure(
    rt: Runtime | Client,
    mode: str,
    seconds: float,
    tasks: int,
    period: float,
    *,
    rate: float | None = None,
) -> dict:
    loop = asyncio.get_running_loop()
    lags: list[float] = []
    started = 0
    end = loop.time() + seconds
    interval = tasks / rate if rate else 0.0  # each task's time between starts
    stop = threading.Event()

    async def probe() -> None:
        while loop.time() < end:
            before = loop.time()
            await asyncio.sleep(period)
            lags.append(loop.time() - before - period)

    async def starter(k: int) -> None:
        nonlocal started
        i, due = 0, loop.time()
        while loop.time() < end:
            if mode in ("async", "client"):
                await rt.start_async(order, k * 1_000_000 + i)
            else:
                rt.start(order, k * 1_000_000 + i)
            started += 1
            i += 1
            due += interval
            await asyncio.sleep(max(0.0, due - loop.time()))  # 0: let the others in

    def thread_starter(k: int) -> None:
        nonlocal started
        i, due = 0, time.monotonic()
        while not stop.is_set():
            rt.start(order, k * 1_000_000 + i)  # type: ignore[union-attr]
            started += 1
            i += 1
            due += interval
            stop.wait(max(0.0, due - time.monotonic()))

    t0 = time.perf_counter()
    if mode == "idle":
        await probe()
    elif mode == "threads":
        threads = [threading.Thread(target=thread_starter, args=(k,)) for k in range(tasks)]
        for thread in threads:
            thread.start()
        await probe()
        stop.set()
        for thread in threads:
            thread.join()
    else:
        await asyncio.gather(probe(), *(starter(k) for k in range(tasks)))
    elapsed = time.perf_counter() - t0
    completed = len(await rt.list_runs_async("completed"))
    ms = [lag * 1000 for lag in lags]
    return {
        "mode": mode,
        "lag_p50_ms": percentile(ms, 0.50),
        "lag_p99_ms": percentile(ms, 0.99),
        "lag_max_ms": max(ms),
        "probes": len(ms),
        "starts_per_s": started / elapsed,
        "completed_per_s": completed / elapsed,
    }


def child(args: argparse.Namespace) -> None:
    if args.mode == "client":
        with Client(args.db) as client:
            print(
                json.dumps(
                    asyncio.run(
                        measure(
                            client, "client", args.seconds, args.tasks, args.period, rate=args.rate
                        )
                    )
                )
            )
        return
    with Runtime(args.db, synchronous=args.synchronous) as rt:
        if args.gc == "tuned":
            gc.freeze()
            gc.set_threshold(*GC_TUNED)
        result = asyncio.run(
            measure(rt, args.mode, args.seconds, args.tasks, args.period, rate=args.rate)
        )
    print(json.dumps(result))


def run_worker(args: argparse.Namespace) -> None:
    """The ``client`` mode's host of the runs, until SIGTERM: ``proctor worker``'s loop."""
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    with Runtime(args.db, synchronous=args.synchronous, claim_runs=True):
        print("ready", flush=True)
        stop.wait()


def run_round(args: argparse.Namespace, mode: str, folder: Path, n: int) -> dict[str, Any]:
    db = folder / f"{mode}-{n}.db"
    command = [sys.executable, __file__, "--child", mode, "--db", str(db)]
    command += ["--seconds", str(args.seconds), "--tasks", str(args.tasks)]
    command += ["--period", str(args.period), "--synchronous", args.synchronous]
    command += ["--rate", str(args.rate)] if args.rate else []
    command += ["--gc", args.gc]
    worker = None
    if mode == "client":  # the runs' host: another process, as `proctor worker`
        worker = subprocess.Popen(
            [
                sys.executable,
                __file__,
                "--worker",
                "--db",
                str(db),
                "--synchronous",
                args.synchronous,
            ],
            stdout=subprocess.PIPE,
            text=True,
        )
        assert worker.stdout is not None
        worker.stdout.readline()  # "ready": the store exists and it claims
    try:
        done = subprocess.run(
            command, capture_output=True, text=True, check=False, timeout=args.seconds * 10 + 60
        )
    finally:
        if worker is not None:
            worker.terminate()
            worker.wait(60)
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    if done.returncode != 0 or not lines:
        tail = (done.stderr.strip().splitlines() or ["no output"])[-1]
        return {"mode": mode, "error": f"exit {done.returncode}: {tail[:160]}"}
    result: dict[str, Any] = json.loads(lines[-1])
    return result


#: ``--gc tuned``: far fewer collections of the older generations.
GC_TUNED = (10_000, 50, 1_000)

METRICS = ("lag_p50_ms", "lag_p99_ms", "lag_max_ms", "starts_per_s", "completed_per_s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--tasks", type=int, default=16)
    parser.add_argument("--period", type=float, default=0.01, help="probe period, seconds")
    parser.add_argument("--synchronous", choices=("NORMAL", "FULL"), default="NORMAL")
    parser.add_argument("--rate", type=float, help="cap on starts/s, all tasks together")
    parser.add_argument("--gc", choices=("default", "tuned"), default="default")
    parser.add_argument("--modes", default=",".join(MODES), help="comma-separated")
    parser.add_argument("--child", choices=MODES, help=argparse.SUPPRESS)
    parser.add_argument("--db", help=argparse.SUPPRESS)
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        run_worker(args)
        return
    if args.child:
        args.mode = args.child
        child(args)
        return
    print(
        f"{platform.platform()}, {os.cpu_count()} CPUs, Python {platform.python_version()};"
        f" {args.tasks} tasks starting runs for {args.seconds:g} s beside a"
        f" {args.period * 1000:g} ms loop-lag probe; store synchronous={args.synchronous};"
        f" starts/s capped at {args.rate or 'no cap'}; gc {args.gc}"
        f"{' ' + str(GC_TUNED) + ' after gc.freeze()' if args.gc == 'tuned' else ''};"
        f" medians of {args.rounds} rounds, the modes alternated, each in a fresh process"
    )
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    print(f"load average before (1, 5, 15 min): {load}; other processes share the CPUs")
    modes = [mode for mode in MODES if mode in args.modes.split(",")]
    results: dict[str, list[dict[str, Any]]] = {mode: [] for mode in modes}
    with tempfile.TemporaryDirectory() as tmp:
        for n in range(args.rounds):
            for mode in modes:  # alternately, so drift hits both alike
                results[mode].append(run_round(args, mode, Path(tmp), n))
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    print(f"load average after the rounds (1, 5, 15 min): {load}")
    heads = ("lag p50 ms", "lag p99 ms", "lag max ms", "starts/s", "completed/s")
    print("\n" + f"{'API':<10}" + "".join(f" {h:>11}" for h in heads))
    for mode in modes:
        good = [r for r in results[mode] if "error" not in r]
        cells = [f"{statistics.median(r[m] for r in good):.1f}" if good else "-" for m in METRICS]
        print(f"{mode:<10}" + "".join(f" {c:>11}" for c in cells))
    print()
    for mode in modes:
        for metric in METRICS:
            values = ", ".join(f"{r[metric]:.1f}" for r in results[mode] if metric in r)
            print(f"  {mode} {metric} per round: {values}")
        for r in results[mode]:
            if "error" in r:
                print(f"  {mode}: {r['error']}")


if __name__ == "__main__":
    main()
