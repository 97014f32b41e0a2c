"""A1: the awaitable twins of the public API, on the event loop."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from actors import Runtime, RuntimeClosed, step, workflow
from persistence import RunNotFound


@step()
def double(x: int) -> int:
    return 2 * x


@workflow()
async def doubled(x: int) -> int:
    return await double(x)


def test_A1_reads_have_async_twins_that_agree_with_the_sync_reads(rt: Runtime) -> None:
    handle = rt.start(doubled, 21)
    assert handle.result(timeout=10) == 42

    async def read() -> tuple[object, ...]:
        return (
            await rt.get_run_async(handle.run_id),
            await rt.list_runs_async("completed", workflow=doubled.name),
            await rt.events_async(handle.run_id),
        )

    record, listed, events = asyncio.run(read())
    assert record == rt.get_run(handle.run_id)
    assert listed == rt.list_runs("completed", workflow=doubled.name) == [record]
    assert events == rt.events(handle.run_id)


def test_A1_async_reads_raise_what_the_sync_reads_raise(db: Path) -> None:
    runtime = Runtime(db)
    try:
        with pytest.raises(RunNotFound):
            asyncio.run(runtime.get_run_async("nope"))
        with pytest.raises(RunNotFound):
            asyncio.run(runtime.events_async("nope"))
    finally:
        runtime.close()
    with pytest.raises(RuntimeClosed):
        asyncio.run(runtime.get_run_async("nope"))
    with pytest.raises(RuntimeClosed):
        asyncio.run(runtime.list_runs_async())
