"""PyWorkflow (local runtime, SQLite storage) in each benchmark scenario."""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import emit, parse
from loguru import logger
from pyworkflow import configure, start, step, workflow
from pyworkflow.storage.sqlite import SQLiteStorageBackend


@step()
async def noop(i: int) -> int:
    return i


@workflow()
async def three_steps(i: int) -> int:
    return await noop(i) + await noop(i + 1) + await noop(i + 2)


async def main() -> None:
    args = parse()
    logger.remove()  # its DEBUG lines to stderr would be measured too
    if args.scenario == "terminate":
        emit({"unsupported": "PyWorkflow has no terminate"})
        return
    if args.scenario == "cancel":
        emit({"unsupported": "not measured yet (a step sees it at ctx.check_cancellation())"})
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
    else:
        emit({"unsupported": "not measured yet (the local runtime runs a workflow inline)"})


if __name__ == "__main__":
    asyncio.run(main())
