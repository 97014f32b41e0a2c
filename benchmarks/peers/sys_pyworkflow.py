"""PyWorkflow (local runtime, SQLite storage) in each benchmark scenario."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import common
from common import cancel_phase, emit, parse, peak_rss_mb, percentiles
from loguru import logger
from pyworkflow import (
    CancellationError,
    cancel_workflow,
    configure,
    get_context,
    start,
    step,
    workflow,
)
from pyworkflow.storage.sqlite import SQLiteStorageBackend


@step()
async def noop(i: int) -> int:
    return i


@workflow()
async def three_steps(i: int) -> int:
    return await noop(i) + await noop(i + 1) + await noop(i + 2)


run_ids: dict[str, str] = {}
seen: dict[str, float] = {}
started: dict[str, asyncio.Event] = {}
release = asyncio.Event()


@step()
async def looping(key: str) -> None:
    ctx = get_context()
    run_ids[key] = ctx.run_id
    started[key].set()
    try:
        while True:
            await ctx.check_cancellation()  # a check every 1 ms
            await asyncio.sleep(0.001)
    except CancellationError:
        seen[key] = time.perf_counter()
        raise


@workflow()
async def cancel_me(key: str) -> None:
    await looping(key)


@step()
async def parked(key: str) -> None:
    started[key].set()
    await release.wait()


@workflow()
async def in_flight(key: str) -> None:
    await parked(key)


async def main() -> None:
    args = parse()
    # PyWorkflow's SQLite backend sets neither journal_mode nor synchronous.
    common.durability = lambda: common.sqlite_durability(args.db)
    logger.remove()  # its DEBUG lines to stderr would be measured too
    if args.scenario == "terminate":
        emit({"unsupported": "PyWorkflow has no terminate"})
        return
    storage = SQLiteStorageBackend(args.db)
    await storage.connect()
    try:
        await scenario(args, storage)
    finally:
        await storage.disconnect()  # else its connection thread keeps the process alive


async def scenario(args: argparse.Namespace, storage: SQLiteStorageBackend) -> None:
    configure(storage=storage, default_durable=True, default_runtime="local")
    if args.scenario == "sequential":
        begin = time.perf_counter()
        for i in range(args.runs):
            await start(three_steps, i)
        elapsed = time.perf_counter() - begin
        emit({"runs_per_s": args.runs / elapsed, "steps_per_s": 3 * args.runs / elapsed})
    elif args.scenario == "concurrent":
        begin = time.perf_counter()
        gate = asyncio.Semaphore(args.concurrency)

        async def one(i: int) -> None:
            async with gate:
                await start(three_steps, i)

        await asyncio.gather(*(one(i) for i in range(args.runs)))
        elapsed = time.perf_counter() - begin
        emit({"runs_per_s": args.runs / elapsed, "steps_per_s": 3 * args.runs / elapsed})
    elif args.scenario == "cancel":
        # The local runtime runs a workflow inline in its task: each run is a
        # task, cancelled from this one through the store (cancel_workflow).
        samples = []
        for i in range(min(args.runs, 100)):
            key = f"k{i}"
            started[key] = asyncio.Event()
            task = asyncio.create_task(start(cancel_me, key))
            await asyncio.wait_for(started[key].wait(), 10)
            await asyncio.sleep(cancel_phase())
            begin = time.perf_counter()
            await cancel_workflow(run_ids[key], reason="bench")
            with contextlib.suppress(Exception):
                await asyncio.wait_for(task, 10)
            if key not in seen:
                emit({"error": f"run {i}: the step never saw the cancel"})
                return
            samples.append(1000 * (seen[key] - begin))
        emit(percentiles(samples))
    else:  # inflight: N runs parked in a step at once, each a task
        base = peak_rss_mb()
        begin = time.perf_counter()
        tasks = []
        for i in range(args.runs):
            started[f"p{i}"] = asyncio.Event()
            tasks.append(asyncio.create_task(start(in_flight, f"p{i}")))
        await asyncio.wait_for(
            asyncio.gather(*(started[f"p{i}"].wait() for i in range(args.runs))), 60
        )
        ramp = time.perf_counter() - begin
        peak = peak_rss_mb()
        release.set()
        await asyncio.wait_for(asyncio.gather(*tasks), 120)
        emit(
            {
                "held": True,
                "ramp_s": ramp,
                "total_s": time.perf_counter() - begin,
                "peak_rss_mb": peak,
                "kb_per_run": 1024 * (peak - base) / args.runs,
            }
        )


if __name__ == "__main__":
    asyncio.run(main())
