"""A2: a start says whether it created its run (``RunHandle.created``).

Temporal's ``StartWorkflowExecutionResponse`` carries ``started`` ("If true,
a new workflow was started") for the same reason: a service that retries a
start must tell "created" from "already there" (an HTTP 201 from a 200).
"""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path
from typing import Any

from actors import Client, RunHandle, Runtime, step, workflow


@step()
def echo(x: int) -> int:
    return x


@workflow(name="test_start_created.echoed")
async def echoed(x: int) -> int:
    return await echo(x)


def test_A2_a_start_says_whether_it_created_its_run(rt: Runtime) -> None:
    fresh = rt.start(echoed, 1)
    assert fresh.created is True  # a random id: always a new run
    first = rt.start(echoed, 2, run_id="order-1")
    again = rt.start(echoed, 2, run_id="order-1")
    assert (first.created, again.created) == (True, False)
    assert again.run_id == first.run_id
    assert again.result(timeout=10) == 2
    done = rt.start(echoed, 2, run_id="order-1")  # a finished run is returned too
    assert done.created is False
    assert rt.handle("order-1").created is None  # not from a start
    assert len(rt.list_runs()) == 2


def test_A2_start_async_says_whether_it_created_its_run(rt: Runtime) -> None:
    async def starts() -> list[bool | None]:
        first = await rt.start_async(echoed, 3, run_id="order-2")
        again = await rt.start_async(echoed, 3, run_id="order-2")
        assert await again == 3
        return [first.created, again.created, (await rt.handle_async("order-2")).created]

    assert asyncio.run(starts()) == [True, False, None]


def test_A2_of_racing_starts_of_one_id_exactly_one_created_the_run(rt: Runtime) -> None:
    """Two threads start the same run at once: one creation is written, the
    other start meets it (in flight or written) and says it did not create."""
    barrier = threading.Barrier(2)
    handles: list[RunHandle[Any]] = []

    def starter() -> None:
        barrier.wait(timeout=10)
        handles.append(rt.start(echoed, 4, run_id="order-3"))

    threads = [threading.Thread(target=starter) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert sorted(h.created for h in handles) == [False, True]
    assert handles[0].result(timeout=10) == 4
    assert len(rt.list_runs()) == 1


def test_A2_A7_a_restart_says_whether_it_created_the_run(rt: Runtime) -> None:
    """A restart under a chosen id is a start (A2): the first creates the new
    run, the same restart again returns it, and both say which."""
    done = rt.start(echoed, 5)
    assert done.result(timeout=10) == 5
    first = rt.restart(done.run_id, run_id="echoed-again")
    again = rt.restart(done.run_id, run_id="echoed-again")
    assert (first.created, again.created) == (True, False)
    assert again.result(timeout=10) == 5

    async def restart_async() -> bool | None:
        return (await rt.restart_async(done.run_id, run_id="echoed-again")).created

    assert asyncio.run(restart_async()) is False


def test_A2_A5_a_client_start_and_restart_say_whether_they_created_the_run(
    rt: Runtime, db: Path
) -> None:
    """The Client's starts answer as the runtime's do."""
    done = rt.start(echoed, 6)
    assert done.result(timeout=10) == 6
    with Client(db) as client:
        first = client.start(echoed, 7, run_id="from-client")
        again = client.start(echoed, 7, run_id="from-client")
        assert (first.created, again.created) == (True, False)
        restarted = client.restart(done.run_id, run_id="client-restart")
        repeated = client.restart(done.run_id, run_id="client-restart")
        assert (restarted.created, repeated.created) == (True, False)
