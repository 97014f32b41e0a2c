"""Embedding in an asyncio service: await a run without blocking the loop."""

import asyncio
import tempfile
from pathlib import Path

from actors import Runtime, step, workflow


@step()
async def fetch_price(sku: str) -> int:  # steps can be async too
    await asyncio.sleep(0)
    return 4999


@workflow()
async def quote(sku: str) -> int:
    return await fetch_price(sku)


async def handler(rt: Runtime, sku: str) -> int:
    run = await rt.start_async(quote, sku)  # the loop runs on while it commits
    return await run  # or: await run.result_async(timeout=30)


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp, Runtime(Path(tmp, "proctor.db")) as rt:
        print(asyncio.run(handler(rt, "lamp")))  # 4999


if __name__ == "__main__":
    main()
