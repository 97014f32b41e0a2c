"""A1: the awaitable twins of the public API, on the event loop."""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import inspect
import math
import re
import sqlite3
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from actors import (
    EventType,
    InvalidArgument,
    InvalidArgumentType,
    NotSerializable,
    OutcomeUnknown,
    PayloadTooLarge,
    RunCancelled,
    RunHandle,
    RunIdInUse,
    RunState,
    Runtime,
    RuntimeClosed,
    WaitTimeout,
    get_context,
    step,
    workflow,
)
from persistence import RunNotFound
from tests.conftest import GATES, assert_nothing_left, gate, wait_until


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


# -- every twin, and what it raises -------------------------------------------


@step()
def parks(key: str) -> str:
    """Opens its 'started' gate, then checks for a cancel every millisecond."""
    ctx = get_context()
    gate(f"{key}:started").set()
    while not gate(key).wait(0.001):
        ctx.check_cancellation()
    return key


@workflow()
async def parked(key: str) -> str:
    return await parks(key)


@step()
def holds(key: str) -> str:
    """Never checks for a cancel: returns once its gate opens."""
    gate(key).wait(20)
    return key


@workflow()
async def held(key: str) -> str:
    return await holds(key)


def test_A1_every_twin_of_runtime_and_handle_agrees_with_its_sync_call(rt: Runtime) -> None:
    """Each ``*_async`` call returns what its blocking twin returns (A1)."""

    async def drive() -> None:
        handle = await rt.start_async(doubled, 21)
        assert await handle.result_async(timeout=10) == 42
        assert (await handle.wait_finished_async(timeout=10)) == handle.wait_finished(timeout=10)
        assert await handle.status_async() is RunState.COMPLETED == handle.status()
        assert await handle.record_async() == handle.record()
        assert await handle.events_async() == handle.events()
        again = await rt.handle_async(handle.run_id)
        assert again.run_id == handle.run_id
        assert await again == 42
        # C6: control of a finished run changes nothing, and says so, alike.
        done_cancel = await handle.cancel_async("late")
        assert done_cancel == rt.cancel(handle.run_id, "late")
        assert not done_cancel.changed
        assert done_cancel.status is RunState.COMPLETED
        done_terminate = await rt.terminate_async(handle.run_id)
        assert done_terminate == handle.terminate()
        assert not done_terminate.changed

        # A live run: cancel_async(wait=True) awaits its end (C1).
        live = await rt.start_async(parked, "twin-cancel")
        cancelled = await live.cancel_async("ops", wait=True, timeout=10)
        assert cancelled.changed
        assert cancelled.status is RunState.CANCELLED
        with pytest.raises(RunCancelled):
            await live.result_async(timeout=10)
        # terminate_async: durably TERMINATED before it returns (T1).
        doomed = await rt.start_async(parked, "twin-terminate")
        terminated = await doomed.terminate_async("ops")
        assert terminated.changed
        assert terminated.status is RunState.TERMINATED
        assert rt.get_run(doomed.run_id).status is RunState.TERMINATED
        # a wait that runs out is no error (C1), awaited too
        slow = await rt.start_async(held, "twin-wait")
        pending = await rt.cancel_async(slow.run_id, wait=True, timeout=0)
        assert pending.status is RunState.CANCELLING
        with pytest.raises(WaitTimeout):
            await slow.result_async(timeout=0)
        await slow.terminate_async()

    asyncio.run(drive())


def test_A1_async_twins_raise_what_the_sync_calls_raise(db: Path) -> None:
    before = set(threading.enumerate())
    runtime = Runtime(db)

    async def refused() -> None:
        with pytest.raises(RunNotFound):
            await runtime.handle_async("nope")
        with pytest.raises(RunNotFound):
            await runtime.cancel_async("nope")
        with pytest.raises(RunNotFound):
            await runtime.terminate_async("nope")
        with pytest.raises(InvalidArgumentType, match="takes a @workflow"):
            await runtime.start_async(double, 1)  # type: ignore[arg-type]
        with pytest.raises(InvalidArgumentType):
            await runtime.start_async(doubled, 1, 2)  # does not fit its signature
        with pytest.raises(NotSerializable):
            await runtime.start_async(doubled, math.nan)
        with pytest.raises(PayloadTooLarge):
            await runtime.start_async(doubled, "x" * (runtime.max_payload_bytes + 1))
        with pytest.raises(InvalidArgument, match="timeout"):
            await runtime.cancel_async("nope", timeout=-1)
        with pytest.raises(NotSerializable):
            await runtime.terminate_async("nope", reason=b"bytes")  # type: ignore[arg-type]
        # Nothing of any of them was written.
        assert await runtime.list_runs_async() == []
        handle = await runtime.start_async(doubled, 1)
        await handle
        await runtime.close_async()
        await runtime.close_async()  # idempotent, like close()
        for call in (
            runtime.start_async(doubled, 1),
            runtime.handle_async(handle.run_id),
            runtime.cancel_async(handle.run_id),
            runtime.terminate_async(handle.run_id),
            handle.status_async(),
            handle.record_async(),
            handle.events_async(),
            handle.cancel_async(),
            handle.terminate_async(),
            handle.wait_finished_async(),
            handle.result_async(),
        ):
            with pytest.raises(RuntimeClosed):
                await call

    try:
        asyncio.run(refused())
    finally:
        runtime.close()
    assert_nothing_left(before)


def test_A1_a_start_async_not_confirmed_in_time_names_the_run(tmp_path: Path) -> None:
    """request_timeout holds for the awaited start too: OutcomeUnknown names
    the run (A3), which lands under that id once the store is free."""
    path = tmp_path / "a3.db"
    before = set(threading.enumerate())
    with Runtime(path, busy_timeout=30, lease_ttl=120, request_timeout=0.2) as rt:
        holder = sqlite3.connect(path, isolation_level=None)
        holder.execute("BEGIN EXCLUSIVE")
        try:
            with pytest.raises(OutcomeUnknown, match="may have taken effect") as caught:
                asyncio.run(rt.start_async(doubled, 4))
        finally:
            holder.execute("ROLLBACK")
            holder.close()
        assert caught.value.request == "start"
        run_id = caught.value.run_id
        # The request was still with the Journal: it lands under that id.
        wait_until(lambda: [r.run_id for r in rt.list_runs(workflow=doubled.name)] == [run_id])
        assert asyncio.run(rt.handle(run_id).result_async(timeout=10)) == 8
    assert_nothing_left(before)


# -- none of them blocks the loop -----------------------------------------------


class Probe:
    """A 1 ms-period callback on the loop: how often it ran, and how late."""

    def __init__(self) -> None:
        self.ticks = 0
        self.max_lag = 0.0
        self._wanted: list[tuple[int, asyncio.Event]] = []

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            before = loop.time()
            await asyncio.sleep(0.001)
            self.max_lag = max(self.max_lag, loop.time() - before - 0.001)
            self.ticks += 1
            for count, reached in self._wanted:
                if self.ticks >= count:
                    reached.set()

    async def more_ticks(self, n: int) -> None:
        """Return once the probe ticked ``n`` more times (only a running loop ticks)."""
        reached = asyncio.Event()
        self._wanted.append((self.ticks + n, reached))
        await asyncio.wait_for(reached.wait(), 10)


def test_A1_awaited_writes_leave_the_loop_running_while_the_store_is_locked(
    tmp_path: Path,
) -> None:
    """While another connection holds the store's write lock, 16 start_async,
    2 cancel_async and 2 terminate_async wait for their commit, and the loop
    keeps ticking meanwhile; a blocking start in the same place stalls it.

    A twin that blocked would stall the loop until ``request_timeout``: the
    probe could not tick, the lock could not be released from the loop, and
    the twin would raise OutcomeUnknown.
    """
    path = tmp_path / "a1.db"
    before = set(threading.enumerate())
    holder = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    with Runtime(path, busy_timeout=30, lease_ttl=120, request_timeout=5) as rt:

        async def drive() -> None:
            probe = Probe()
            ticking = asyncio.create_task(probe.run())
            live = [await rt.start_async(parked, f"locked-{i}") for i in range(4)]
            for i in range(4):
                await asyncio.to_thread(gate(f"locked-{i}:started").wait, 10)
            holder.execute("BEGIN EXCLUSIVE")
            requests = [asyncio.create_task(rt.start_async(doubled, i)) for i in range(16)]
            requests += [asyncio.create_task(h.cancel_async("ops")) for h in live[:2]]
            requests += [asyncio.create_task(h.terminate_async()) for h in live[2:]]
            await probe.more_ticks(50)
            assert not any(r.done() for r in requests), "a request finished under the lock"
            holder.execute("ROLLBACK")
            done = await asyncio.gather(*requests)
            assert [await h.result_async(timeout=10) for h in done[:16]] == [
                2 * i for i in range(16)
            ]
            assert all(result.changed for result in done[16:])

            # The contrast: the blocking start holds the loop until the lock
            # goes, which a thread releases once it sees the probe stalled.
            holder.execute("BEGIN EXCLUSIVE")
            stalled_for = 0.05

            def release_when_stalled() -> None:
                seen, since = probe.ticks, time.monotonic()
                while time.monotonic() - since < stalled_for:
                    if probe.ticks != seen:
                        seen, since = probe.ticks, time.monotonic()
                    time.sleep(0.001)
                holder.execute("ROLLBACK")

            releaser = threading.Thread(target=release_when_stalled)
            ticks, probe.max_lag = probe.ticks, 0.0
            releaser.start()
            rt.start(doubled, 100)  # blocks the loop: nothing ticks meanwhile
            assert probe.ticks == ticks
            releaser.join(10)
            await probe.more_ticks(1)
            assert probe.max_lag >= stalled_for
            ticking.cancel()

        try:
            asyncio.run(drive())
        finally:
            if holder.in_transaction:
                holder.execute("ROLLBACK")
            holder.close()
            for key in GATES:
                gate(key).set()
    assert_nothing_left(before)


class GatedReads:
    """The facade's store, whose chosen reads wait at a gate: a store made
    slow by contention (a read waits behind the connection's lock)."""

    def __init__(self, store: object, reads: set[str]) -> None:
        self._store = store
        self._reads = reads
        self.entered = threading.Event()
        self.gate = threading.Event()

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._store, name)
        if name not in self._reads:
            return attr

        def gated(*args: object, **kwargs: object) -> object:
            self.entered.set()
            self.gate.wait(5)
            return attr(*args, **kwargs)

        return gated


READS: dict[str, tuple[str, Callable[[Runtime, RunHandle[Any], RunHandle[Any]], Any]]] = {
    "get_run_async": ("get_run", lambda rt, done, live: rt.get_run_async(done.run_id)),
    "list_runs_async": ("list_runs_page", lambda rt, done, live: rt.list_runs_async()),
    "events_async": ("events", lambda rt, done, live: rt.events_async(done.run_id)),
    "handle_async": ("get_run", lambda rt, done, live: rt.handle_async(done.run_id)),
    "RunHandle.status_async": ("get_run", lambda rt, done, live: done.status_async()),
    "RunHandle.record_async": ("get_run", lambda rt, done, live: done.record_async()),
    "RunHandle.events_async": ("events", lambda rt, done, live: done.events_async()),
    "RunHandle.wait_finished_async": (
        "get_run",
        lambda rt, done, live: done.wait_finished_async(timeout=10),
    ),
    "RunHandle.result_async": ("get_run", lambda rt, done, live: done.result_async(timeout=10)),
    # a timeout's explanation reads the run's steps
    "RunHandle.result_async(timeout)": (
        "steps",
        lambda rt, done, live: live.result_async(timeout=0),
    ),
}


@pytest.mark.parametrize("name", sorted(READS))
def test_A1_awaited_reads_leave_the_loop_running_while_the_store_is_slow(
    rt: Runtime, monkeypatch: pytest.MonkeyPatch, name: str
) -> None:
    """Each twin that reads waits for a slow store off the loop: the loop
    ticks while the read is held. A read on the loop would hold the probe
    until the gate's timeout and finish before it ticked again."""
    read, call = READS[name]
    done = rt.start(doubled, 1)
    done.result(timeout=10)
    live = rt.start(parked, f"slow-{name}")
    gated = GatedReads(rt._store, {read})
    monkeypatch.setattr(rt, "_store", gated)
    monkeypatch.setattr(rt._waiter, "_store", gated)

    async def drive() -> None:
        probe = Probe()
        ticking = asyncio.create_task(probe.run())
        task = asyncio.create_task(call(rt, done, live))
        await asyncio.to_thread(gated.entered.wait, 10)
        await probe.more_ticks(20)
        assert not task.done(), f"{name} finished while its read was held"
        gated.gate.set()
        if name == "RunHandle.result_async(timeout)":
            with pytest.raises(WaitTimeout):
                await task
        else:
            await task
        ticking.cancel()

    asyncio.run(drive())
    monkeypatch.undo()
    live.terminate()


# -- every blocking call has a twin, and the docs list them -------------------

DOCS = Path(__file__).resolve().parent.parent / "docs"

#: Public calls with no awaitable twin, and why (nothing else may lack one).
NO_TWIN = {
    # A crash simulation for tests: it writes one lease row and stops the
    # actors as abruptly as SIGKILL; a service never calls it.
    ("Runtime", "kill"): "test-only crash",
}


def public_calls(cls: type) -> set[str]:
    return {n for n, v in inspect.getmembers(cls) if not n.startswith("_") and callable(v)}


def documented_twins(text: str) -> set[str]:
    return set(re.findall(r"`(?:handle\.|rt\.)?([a-z_]+_async)\b", text))


def test_A1_every_blocking_call_of_runtime_and_handle_has_an_async_twin_the_docs_list() -> None:
    """Rule A1's promise, walked over the public classes rather than
    trusted to a list: every public call of ``Runtime`` and ``RunHandle``
    has an ``*_async`` coroutine twin (but those in ``NO_TWIN``, each with
    its reason), every twin has its blocking call, and the guide
    (embedding.md) and the A1 row of semantics.md list exactly the twins
    that exist."""
    twins: set[str] = set()
    for cls in (Runtime, RunHandle):
        calls = public_calls(cls)
        for name in sorted(calls):
            if name.endswith("_async"):
                assert name.removesuffix("_async") in calls, f"{cls.__name__}.{name} has no twin"
                assert inspect.iscoroutinefunction(getattr(cls, name)), f"{cls.__name__}.{name}"
                twins.add(name)
            elif (cls.__name__, name) not in NO_TWIN:
                assert f"{name}_async" in calls, f"{cls.__name__}.{name} has no awaitable twin"
    embedding = (DOCS / "guides" / "embedding.md").read_text()
    guide = embedding.split("use the awaitable twins", 1)[1].split("```", 1)[0]
    semantics = (DOCS / "semantics.md").read_text().splitlines()
    row = next(line for line in semantics if line.startswith("| A1 |"))
    for where, text in [("embedding.md", guide), ("semantics.md A1", row)]:
        listed = documented_twins(text)
        assert listed == twins, (where, sorted(twins - listed), sorted(listed - twins))


# -- the FastAPI guide's app ------------------------------------------------------

EXAMPLE = Path(__file__).resolve().parent.parent / "docs" / "examples" / "fastapi_orders.py"


def load_example() -> Any:
    spec = importlib.util.spec_from_file_location("fastapi_orders", EXAMPLE)
    assert spec is not None
    assert spec.loader is not None
    example = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(example)
    return example


@pytest.fixture
def example(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """The guide's app, freshly imported, on a store of its own; afterwards
    its warehouse is open (no step left waiting) and nothing is left behind."""
    pytest.importorskip("httpx")
    loaded = load_example()
    monkeypatch.setenv("ORDERS_DB", str(tmp_path / "orders.db"))
    before = set(threading.enumerate())
    try:
        yield loaded
    finally:
        loaded.WAREHOUSE_OPEN.set()
    assert_nothing_left(before)


@contextlib.asynccontextmanager
async def served(app: Any) -> AsyncIterator[Any]:
    """An httpx client of ``app`` through its ASGI transport, inside the app's
    lifespan (which that transport does not run), as a server would enter it."""
    import httpx  # noqa: PLC0415 - a test dependency, skipped without it

    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            yield client


def test_A1_the_fastapi_guide_app_serves_orders_through_the_async_api(
    example: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The guide's app (docs/examples/fastapi_orders.py), served through
    httpx's ASGI transport, its lifespan entered as a server would: start,
    read, cancel, terminate and await orders, all by ORDER id; unknown
    orders are 404s; its runtime closes with the lifespan and leaves
    nothing behind."""
    monkeypatch.setenv("ORDERS_SHIP_DELAY", "inf")  # ships when the test opens it

    async def serve() -> None:
        app = example.app
        async with served(app) as client:
            ids = []
            for n in range(3):
                placed = await client.post("/orders", json={"order_id": f"o-{n}", "amount": n})
                assert placed.status_code == 201
                assert placed.json() == {"order_id": f"o-{n}", "run_id": f"order-o-{n}"}
                ids.append(f"o-{n}")
            # A2: a retried POST is the same order (200, not 201 Created);
            # another order under its id a 409.
            retried = await client.post("/orders", json={"order_id": "o-0", "amount": 0})
            assert retried.status_code == 200
            assert retried.json()["run_id"] == "order-o-0"
            clash = await client.post("/orders", json={"order_id": "o-0", "amount": 9})
            assert clash.status_code == 409
            assert len(await app.state.runtime.list_runs_async()) == 3
            read = (await client.get(f"/orders/{ids[0]}")).json()
            assert read["order_id"] == ids[0]
            assert read["status"] in {"pending", "running"}
            terminated = await client.post(f"/orders/{ids[0]}/terminate", json={})
            assert terminated.json() == {
                "order_id": ids[0],
                "status": "terminated",
                "changed": True,
            }
            cancelled = await client.post(f"/orders/{ids[1]}/cancel", json={"reason": "r"})
            assert cancelled.json()["status"] == "cancelled"
            example.WAREHOUSE_OPEN.set()
            done = await client.get(f"/orders/{ids[2]}/result")
            assert done.status_code == 200
            assert done.json() == {
                "order_id": "o-2",
                "status": "completed",
                "result": "shipped o-2 (receipt-o-2-2)",
            }
            assert (await client.get(f"/orders/{ids[2]}")).json()["status"] == "completed"
            for path, method in [
                ("/orders/nope", "GET"),
                ("/orders/nope/cancel", "POST"),
                ("/orders/nope/terminate", "POST"),
                ("/orders/nope/result", "GET"),
            ]:
                missing = await client.request(method, path, json={})
                assert missing.status_code == 404, path
            runtime = app.state.runtime
        with pytest.raises(RuntimeClosed):  # closed with the lifespan
            await runtime.get_run_async("order-o-2")

    asyncio.run(serve())


def test_A1_the_fastapi_guide_app_answers_ordinary_situations_without_a_500(
    example: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What an HTTP client meets besides success gets a status it can act
    on, never a 500: an order not finished within ``?timeout`` is a 202 with
    its status (ask again later, as HTTP's async request-reply pattern); a
    cancelled or terminated order's result a 409 that says how it ended; an
    order id that cannot be a run id (``x.1``, 300 characters, a ``/``) or a
    timeout out of range (``-1``, ``nan``, ``inf``) a 422; a start whose
    outcome is unknown a 503 naming the run; a cancel or terminate without a
    body works (its reason is optional)."""
    monkeypatch.setenv("ORDERS_SHIP_DELAY", "inf")  # ships when the test opens it

    async def serve() -> None:
        app = example.app
        async with served(app) as client:
            for n in ("a", "b", "c"):
                placed = await client.post("/orders", json={"order_id": n, "amount": 1})
                assert placed.status_code == 201, placed.text
            running = await client.get("/orders/a/result", params={"timeout": 0.05})
            assert running.status_code == 202, running.text
            assert running.json()["status"] in {"pending", "running"}
            assert running.headers["Retry-After"] == "1"
            # Without a body: the reason is optional.
            assert (await client.post("/orders/a/cancel")).json()["status"] == "cancelled"
            assert (await client.post("/orders/b/terminate")).json()["status"] == "terminated"
            for order_id, end in [("a", "cancelled"), ("b", "terminated")]:
                ended = await client.get(f"/orders/{order_id}/result")
                assert ended.status_code == 409, ended.text
                assert ended.json()["status"] == end
            for bad in ["x.1", "x" * 300, "a b", ""]:
                refused = await client.post("/orders", json={"order_id": bad, "amount": 1})
                assert refused.status_code == 422, (bad, refused.text)
            for path in ["/orders/x.1", "/orders/" + "x" * 300, "/orders/x.1/result"]:
                assert (await client.get(path)).status_code == 422, path
            assert (await client.get("/orders/x/y")).status_code == 404
            for timeout in ["-1", "nan", "inf", "61"]:
                wrong = await client.get("/orders/c/result", params={"timeout": timeout})
                assert wrong.status_code == 422, (timeout, wrong.text)
            assert len(await app.state.runtime.list_runs_async()) == 3

            async def unconfirmed(*args: Any, **kwargs: Any) -> RunHandle[Any]:
                raise OutcomeUnknown(kwargs["run_id"], "start", "not confirmed in time")

            with monkeypatch.context() as patched:
                patched.setattr(app.state.runtime, "start_async", unconfirmed)
                unknown = await client.post("/orders", json={"order_id": "d", "amount": 1})
            assert unknown.status_code == 503, unknown.text
            assert unknown.json()["run_id"] == "order-d"
            example.WAREHOUSE_OPEN.set()
            done = await client.get("/orders/c/result")
            assert done.json()["result"] == "shipped c (receipt-c-1)"

    asyncio.run(serve())


def test_A1_the_fastapi_guide_app_ships_by_itself_when_served(
    example: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Served by uvicorn, nobody sets the demo's warehouse event: an order
    still completes, after ``ORDERS_SHIP_DELAY`` seconds (read when the step
    runs), and a cancel during that wait lands (C2)."""
    monkeypatch.setenv("ORDERS_SHIP_DELAY", "0.05")

    async def serve() -> None:
        app = example.app
        async with served(app) as client:
            await client.post("/orders", json={"order_id": "s", "amount": 2})
            done = await client.get("/orders/s/result", params={"timeout": 30})
            assert done.status_code == 200, done.text
            assert done.json()["result"] == "shipped s (receipt-s-2)"
            monkeypatch.setenv("ORDERS_SHIP_DELAY", "inf")
            await client.post("/orders", json={"order_id": "t", "amount": 2})
            cancelled = await client.post("/orders/t/cancel")
            assert cancelled.json()["status"] == "cancelled"

    asyncio.run(serve())
    assert not example.WAREHOUSE_OPEN.is_set()


def test_A1_start_async_checks_large_arguments_off_the_loop(
    rt: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The JSON round trip of a start's arguments is CPU work: small ones
    (microseconds) are checked on the loop's thread, large ones (a 100 KB
    order takes about 0.5 ms, 4 MiB a hundred times that) in the loop's
    default executor, and both fail alike when they are not JSON."""
    import actors._requests as requests_module  # noqa: PLC0415 - the seam observed

    checked_on: list[threading.Thread] = []
    roundtrip = requests_module.roundtrip_arguments

    def observed(*args: Any, **kwargs: Any) -> Any:
        checked_on.append(threading.current_thread())
        return roundtrip(*args, **kwargs)

    monkeypatch.setattr(requests_module, "roundtrip_arguments", observed)

    @workflow(name="test_async_api.sized")
    async def sized(items: list[Any]) -> int:
        return len(items)

    async def drive() -> None:
        loop_thread = threading.current_thread()
        assert await (await rt.start_async(sized, [1, 2, 3])) == 3
        assert checked_on.pop() is loop_thread
        big = [{"sku": f"s{i}", "qty": i} for i in range(2000)]
        assert await (await rt.start_async(sized, big)) == 2000
        assert checked_on.pop() is not loop_thread
        with pytest.raises(NotSerializable):
            await rt.start_async(sized, [*big, math.inf])
        assert checked_on.pop() is not loop_thread
        with pytest.raises(NotSerializable):
            await rt.start_async(sized, [math.inf])
        assert checked_on.pop() is loop_thread

    asyncio.run(drive())


def test_A1_async_with_closes_the_runtime_off_the_loop(db: Path) -> None:
    """``async with Runtime(...)``: the async twin of ``with`` (trio's and
    httpx's async clients close the same way)."""
    before = set(threading.enumerate())

    async def drive() -> Runtime:
        async with Runtime(db) as runtime:
            assert await (await runtime.start_async(doubled, 2)) == 4
        with pytest.raises(RuntimeClosed):
            await runtime.get_run_async("any")
        with pytest.raises(RuntimeClosed):
            async with runtime:
                pass
        return runtime

    asyncio.run(drive())
    assert_nothing_left(before)


def test_A1_A2_start_async_with_a_chosen_id_is_idempotent_and_refuses_another_start(
    rt: Runtime,
) -> None:
    """The awaited start follows A2 as the blocking one does: the same start
    again is the existing run (its body ran once), another is RunIdInUse."""

    async def service() -> tuple[str, str, int]:
        first = await rt.start_async(doubled, 4, run_id="order-async")
        again = await rt.start_async(doubled, 4, run_id="order-async")
        with pytest.raises(RunIdInUse, match="order-async"):
            await rt.start_async(doubled, 5, run_id="order-async")
        return first.run_id, again.run_id, await again

    assert asyncio.run(service()) == ("order-async", "order-async", 8)
    assert [r.run_id for r in rt.list_runs()] == ["order-async"]
    started = [e for e in rt.events("order-async") if e.type is EventType.STEP_STARTED]
    assert len(started) == 1


def test_A1_A7_restart_async_is_restart_awaited(rt: Runtime) -> None:
    """restart_async makes the same linked run restart makes, and refuses
    what it refuses."""
    done = rt.start(doubled, 3)
    assert done.result(timeout=10) == 6

    async def service() -> tuple[str, int]:
        again = await rt.restart_async(done.run_id, run_id="doubled-again")
        with pytest.raises(RunNotFound):
            await rt.restart_async("no-such-run")
        return again.run_id, await again

    assert asyncio.run(service()) == ("doubled-again", 6)
    assert rt.get_run("doubled-again").restarted_from == done.run_id
