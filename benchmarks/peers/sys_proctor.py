"""Proctor in each benchmark scenario (see common.py)."""

from __future__ import annotations

import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import common
from common import cancel_phase, emit, parked_runs, parse, percentiles, throughput

from actors import CancellationError, Runtime, get_context, step, workflow

seen: dict[str, float] = {}
started: dict[str, threading.Event] = {}
release = threading.Event()


@step(name="bench.noop")
def noop(i: int) -> int:
    return i


@workflow(name="bench.three_steps")
async def three_steps(i: int) -> int:
    return await noop(i) + await noop(i + 1) + await noop(i + 2)


@step(name="bench.looping")
def looping(key: str) -> None:
    ctx = get_context()
    pause = threading.Event()
    started[key].set()
    try:
        while True:
            ctx.check_cancellation()  # a check every 1 ms
            pause.wait(0.001)
    except CancellationError:
        seen[key] = time.perf_counter()
        raise


@workflow(name="bench.cancel_me")
async def cancel_me(key: str) -> None:
    await looping(key)


@step(name="bench.parked")
def parked(key: str) -> None:
    ctx = get_context()
    started[key].set()
    while not release.wait(1.0):  # parked: a check a second, not a busy loop
        ctx.check_cancellation()


@workflow(name="bench.in_flight")
async def in_flight(key: str) -> None:
    await parked(key)


def main() -> None:
    args = parse()
    if common.is_postgres(args.db):
        # The PostgreSQL store sets its sessions' synchronous_commit from
        # synchronous: OFF -> off; NORMAL, FULL, EXTRA -> on (the server's
        # default: the commit waits for the WAL flush).
        session = f"synchronous_commit=on (from synchronous={args.synchronous})"
        common.durability = lambda: common.postgres_durability(args.db, session=session)
    else:
        common.durability = lambda: common.sqlite_durability(args.db, synchronous=args.synchronous)
    # In flight: every run parked in its step at once, as the peers run them
    # (DBOS and PyWorkflow do not bound them); so as many step slots as runs.
    slots = {"max_concurrent_steps": args.runs} if args.scenario == "inflight" else {}
    with Runtime(args.db, resume=False, synchronous=args.synchronous, **slots) as rt:
        if args.scenario in ("sequential", "concurrent"):
            window = 1 if args.scenario == "sequential" else args.concurrency
            throughput(
                lambda i: rt.start(three_steps, i),
                lambda handle: handle.result(timeout=60),
                args.runs,
                window,
            )
        elif args.scenario in ("cancel", "terminate"):
            samples = []
            for i in range(min(args.runs, 100)):
                key = f"k{i}"
                started[key] = threading.Event()
                handle = rt.start(cancel_me, key)
                started[key].wait(10)
                time.sleep(cancel_phase())
                begin = time.perf_counter()
                if args.scenario == "cancel":
                    rt.cancel(handle.run_id, "bench")
                    handle.wait_finished(10)
                    samples.append(1000 * (seen[key] - begin))
                else:  # to a durable TERMINATED state
                    rt.terminate(handle.run_id, "bench")
                    samples.append(1000 * (time.perf_counter() - begin))
                    handle.wait_finished(10)
            emit(percentiles(samples))
        else:  # inflight: N runs parked in a step at once
            parked_runs(
                lambda key: rt.start(in_flight, key),
                lambda handle: handle.result(timeout=120),
                started,
                release,
                args.runs,
            )


if __name__ == "__main__":
    main()
