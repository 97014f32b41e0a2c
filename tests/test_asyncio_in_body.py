"""asyncio in a workflow body fails the run with an error that names the fix.

A body is stepped by its run supervisor, not by an asyncio loop (it is
recorded and replayed await by await, D1/D2). asyncio calls in it raised
asyncio's raw "no running event loop" and left "coroutine was never
awaited" warnings behind. Peer: Temporal's workflow sandbox rejects
non-deterministic calls with an error of its own, failing the workflow
task. A user's own RuntimeError is never renamed.
"""

from __future__ import annotations

import asyncio
import gc
import warnings
from collections.abc import Callable, Coroutine
from typing import Any

import pytest

from actors import Runtime, WorkflowFailed, step, workflow

pytestmark = pytest.mark.timeout(30)


@step()
def one() -> int:
    return 1


async def _nap() -> None:
    await asyncio.sleep(0)


async def _sleeps() -> None:
    await asyncio.sleep(1)


async def _waits_for() -> None:
    await asyncio.wait_for(_nap(), 1)


async def _creates_task() -> None:
    await asyncio.create_task(_nap())


async def _gathers() -> None:
    await asyncio.gather(_nap(), _nap())


CALLS: dict[str, Callable[[], Coroutine[Any, Any, None]]] = {
    "sleep": _sleeps,
    "wait_for": _waits_for,
    "create_task": _creates_task,
    "gather": _gathers,
}


@workflow()
async def uses_asyncio(which: str) -> int:
    await one()
    await CALLS[which]()
    return 2


@workflow()
async def own_runtime_error() -> int:
    await one()
    raise RuntimeError("no running event loop of mine")  # not asyncio's


@pytest.mark.parametrize("which", sorted(CALLS))
def test_D1_asyncio_in_a_body_fails_the_run_naming_proctors_primitives(
    rt: Runtime, which: str
) -> None:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        run = rt.start(uses_asyncio, which)
        with pytest.raises(WorkflowFailed) as failed:
            run.result(timeout=10)
        gc.collect()
    error = failed.value.error
    assert error["type"] == "WorkflowUsesAsyncio", error
    message = error["message"]
    assert "not run by an asyncio event loop" in message
    assert "actors.sleep" in message
    assert "actors.gather" in message
    assert "start_step" in message
    assert "event loop" in message.split("asyncio said:")[1]  # the original, kept
    never_awaited = [w for w in caught if "was never awaited" in str(w.message)]
    assert never_awaited == []


def test_D1_a_users_own_runtime_error_is_not_renamed(rt: Runtime) -> None:
    run = rt.start(own_runtime_error)
    with pytest.raises(WorkflowFailed) as failed:
        run.result(timeout=10)
    assert failed.value.error["type"] == "RuntimeError"
    assert failed.value.error["message"] == "no running event loop of mine"
