"""Nothing lost, nothing run twice, nothing stranded: recovery across shutdowns and crashes.

- D2/A4: a step result that arrives while ``close()`` waits, or while a
  run's supervisor stops on a store failure, is recorded (by the run's next
  host, in the second case), and replay returns it without running the step
  again.
- C3/D3: a run cancelled while no runtime lived does not re-run its unshielded
  in-flight step on resume; the body meets the cancel at that await.
- D2: every unfinished run has someone to resume it, child runs included.
- T4/SV4: however a child run ends, its parent hears of it exactly once.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from actors import (
    CancellationError,
    EventType,
    RetryPolicy,
    RunCancelled,
    RunState,
    RunTerminated,
    Runtime,
    gather,
    get_context,
    shield,
    start_child,
    step,
    workflow,
)
from actors._journal import AFTER_COMMIT
from persistence import NewEvent, Store, cancel_request
from tests.conftest import (
    GATES,
    NOTES,
    assert_nothing_left,
    event_types,
    events_of,
    gate,
    note,
    steps_of,
    wait_until,
)

pytestmark = pytest.mark.timeout(30)


@pytest.fixture
def runtimes(db: Path) -> Iterator[list[Runtime]]:
    """Runtimes a test opens on ``db``; all closed, and nothing left, at the end."""
    before = set(threading.enumerate())
    opened: list[Runtime] = []
    try:
        yield opened
    finally:
        for event in GATES.values():
            event.set()
        for runtime in opened:
            runtime.close()
    assert_nothing_left(before)


def open_rt(runtimes: list[Runtime], db: Path, **options: object) -> Runtime:
    runtime = Runtime(db, **options)  # type: ignore[arg-type]
    runtimes.append(runtime)
    return runtime


@step()
def checking(key: str) -> str:
    """Checks its mailbox every millisecond until its gate opens; notes each run."""
    ctx = get_context()
    note(f"{key}:runs", ctx.attempt)
    gate(f"{key}:started:{len(NOTES[f'{key}:runs'])}").set()
    try:
        while not gate(key).wait(0.001):
            ctx.check_cancellation()
    except BaseException as exc:
        note(key, type(exc).__name__)
        raise
    return key


def started(key: str, nth: int = 1) -> None:
    assert gate(f"{key}:started:{nth}").wait(10)


# -- T4/SV4: every way a child ends reaches its parent exactly once -----------------------


@workflow()
async def child(key: str) -> str:
    return await checking(key)


@workflow()
async def awaits_child(key: str) -> str:
    try:
        return await child(key)
    except RunTerminated as exc:
        return f"terminated: {exc.reason}"
    except RunCancelled as exc:
        return f"cancelled: {exc.reason}"


@workflow()
async def starts_child(key: str) -> str:
    handle = await start_child(child, key)
    try:
        return await handle
    except RunTerminated as exc:
        return f"terminated: {exc.reason}"
    except RunCancelled as exc:
        return f"cancelled: {exc.reason}"


def _child_ends(rt: Runtime, run_id: str) -> list[str]:
    return [e.data["status"] for e in events_of(rt, run_id) if e.type is EventType.CHILD_ENDED]


@pytest.mark.parametrize("how", ["terminate", "cancel"])
@pytest.mark.parametrize("parent", [awaits_child, starts_child], ids=["await", "start_child"])
def test_T4_a_child_stopped_right_after_its_creation_reaches_its_parent(
    rt: Runtime, how: str, parent: object
) -> None:
    """Terminate or cancel the child the moment its row exists: the parent
    records the child's end once and goes on (it used to wait forever when
    the terminate came before the child's supervisor existed)."""
    handle = rt.start(parent, "now")  # type: ignore[arg-type]
    child_id = f"{handle.run_id}.0"
    wait_until(lambda: rt._store.find_run(child_id) is not None, timeout=10)
    if how == "terminate":
        rt.terminate(child_id, "at once")
    else:
        rt.cancel(child_id, "at once")
    gate("now").set()  # a cancel that came too late for the step lets it end
    result = handle.result(timeout=10)
    status = rt.get_run(child_id).status
    expected = {
        RunState.TERMINATED: "terminated: at once",
        RunState.CANCELLED: "cancelled: at once",
        RunState.COMPLETED: "now",
    }
    assert result == expected[status]
    assert status is not RunState.COMPLETED or how == "cancel"
    assert _child_ends(rt, handle.run_id) == [status.value]


@pytest.fixture
def terminate_children_on_creation(db: Path) -> Iterator[list[str]]:
    """Terminates every child run from another connection (as `proctor
    terminate` would) right after its creation commits, before the parent
    hears of it and before the child's supervisor exists."""
    terminated: list[str] = []

    def hook(events: list[NewEvent]) -> None:
        for event in events:
            if event.type is EventType.RUN_CREATED and event.data.get("parent_run_id"):
                with Store.open(db) as store:
                    store.terminate_tree(event.run_id, "before it started", source="cli")
                terminated.append(event.run_id)

    AFTER_COMMIT.append(hook)
    try:
        yield terminated
    finally:
        AFTER_COMMIT.remove(hook)


@pytest.mark.parametrize("parent", [awaits_child, starts_child], ids=["await", "start_child"])
def test_T4_a_child_terminated_before_its_supervisor_exists_reaches_its_parent(
    runtimes: list[Runtime], db: Path, terminate_children_on_creation: list[str], parent: object
) -> None:
    """No Terminate message can reach a supervisor that does not exist yet
    (and the ControlInbox, polling once an hour here, forwards none): the
    store's refusal of the child's first record is what tells it."""
    rt = open_rt(runtimes, db, control_interval=3600)
    handle = rt.start(parent, "early")  # type: ignore[arg-type]
    assert handle.result(timeout=10) == "terminated: before it started"
    assert terminate_children_on_creation == [f"{handle.run_id}.0"]
    assert _child_ends(rt, handle.run_id) == ["terminated"]
    assert "early:runs" not in NOTES  # the child's step never started (T2)
    wait_until(lambda: rt._directory.get(f"{handle.run_id}.0") is None)


# -- D2: every unfinished run has someone to resume it ----------------------------------


@workflow()
async def abandons_child(key: str) -> str:
    handle = await start_child(child, key, parent_close_policy="abandon")
    return handle.run_id


def test_D2_an_abandoned_child_of_a_finished_parent_is_resumed_after_a_crash(
    runtimes: list[Runtime], db: Path
) -> None:
    first = open_rt(runtimes, db)
    parent = first.start(abandons_child, "orphan")
    child_id = parent.result(timeout=10)
    started("orphan")  # the child is in its step; its parent has completed
    first.kill()

    second = open_rt(runtimes, db)
    started("orphan", 2)  # resumed by the new runtime (nobody else would)
    gate("orphan").set()
    assert second.handle(child_id).result(timeout=10) == "orphan"
    assert NOTES["orphan:runs"] == [1, 2]
    resumed = [e for e in events_of(second, child_id) if e.type is EventType.RUN_RESUMED]
    assert [e.data["previous_owner"] for e in resumed] == [first.id]
    assert second.get_run(parent.run_id).status is RunState.COMPLETED


@workflow()
async def abandons_and_waits(key: str) -> str:
    handle = await start_child(child, key, parent_close_policy="abandon")
    await checking(f"{key}.parent")
    return handle.run_id


def test_D2_a_child_of_an_unfinished_parent_is_resumed_by_the_parent_alone(
    runtimes: list[Runtime], db: Path
) -> None:
    """The scan never takes a child whose parent's replay will resume it: two
    resumers would race, and the loser's parent would record a false end."""
    first = open_rt(runtimes, db)
    parent = first.start(abandons_and_waits, "tree")
    started("tree")
    started("tree.parent")
    first.kill()

    second = open_rt(runtimes, db)
    started("tree", 2)
    started("tree.parent", 2)
    gate("tree").set()
    gate("tree.parent").set()
    child_id = second.handle(parent.run_id).result(timeout=10)
    assert second.handle(child_id).result(timeout=10) == "tree"
    resumed = [e for e in events_of(second, child_id) if e.type is EventType.RUN_RESUMED]
    assert [e.data["why"] for e in resumed] == [f"its parent {parent.run_id} was resumed"]
    assert _child_ends(second, parent.run_id) == []  # started, never awaited


def test_D2_the_orphan_scan_finds_every_run_nobody_else_resumes(db: Path) -> None:
    """Each shape of unfinished run with a dead owner: resumed by the scan, or
    by its parent's replay, never by both and never by neither."""

    def created(run_id: str, parent: str | None = None) -> NewEvent:
        data = {"workflow": "w", "owner": "dead", "parent_run_id": parent}
        return NewEvent(run_id=run_id, type=EventType.RUN_CREATED, data=data)

    def child_event(parent: str, type_: EventType, child_id: str) -> NewEvent:
        return NewEvent(
            run_id=parent, type=type_, step="w", call=0, data={"child_run_id": child_id}
        )

    with Store.open(db) as store:
        store.register_runtime("dead", ttl=60)
        store.release_runtime("dead")
        store.append([created("top")])
        # A parent that will be resumed resumes its child by replay.
        store.append([created("live-parent"), created("live-parent.0", "live-parent")])
        # A parent that ended leaves nobody to resume its abandoned child.
        store.append([created("done-parent"), created("done-parent.0", "done-parent")])
        store.append([NewEvent(run_id="done-parent", type=EventType.RUN_TERMINATED)])
        store.append(
            [created("gone.0", "gone")]  # its parent's row is gone (pruned, say)
        )
        # A parent that recorded its child's end no longer waits for it.
        store.append([created("moved-on"), created("moved-on.0", "moved-on")])
        store.append([child_event("moved-on", EventType.CHILD_ENDED, "moved-on.0")])
        found = sorted(r.run_id for r, _ in store.orphaned_runs(["w"], me="me"))
    assert found == ["done-parent.0", "gone.0", "live-parent", "moved-on", "moved-on.0", "top"]


# -- C3/D3: a run cancelled while no runtime lived starts nothing new on resume ------------


@workflow()
async def cleans_up(key: str) -> str:
    try:
        return await checking(key)
    except CancellationError:
        with shield():
            await checking(f"{key}.cleanup")
        raise


@workflow()
async def shielded_then_more(key: str) -> str:
    with shield():
        result = await checking(key)
    await checking(f"{key}.after")
    return result


def _cancel_while_down(db: Path, run_id: str) -> None:
    with Store.open(db) as store:  # what `proctor cancel` writes
        store.append([cancel_request(run_id, "while down", source="cli")])


def test_C3_an_unshielded_step_in_flight_is_not_rerun_when_resumed_cancelling(
    runtimes: list[Runtime], db: Path
) -> None:
    first = open_rt(runtimes, db)
    run_id = first.start(cleans_up, "c3").run_id
    started("c3")
    first.kill()
    _cancel_while_down(db, run_id)

    second = open_rt(runtimes, db)
    started("c3.cleanup")
    gate("c3.cleanup").set()
    record = second.handle(run_id).wait_finished(timeout=10)
    assert record.status is RunState.CANCELLED
    assert NOTES["c3:runs"] == [1]  # the lost attempt was not started again (C3)
    assert NOTES["c3.cleanup:runs"] == [1]
    types = event_types(second, run_id)
    assert "step_reexecuted" not in types
    assert types.count("cancel_delivered") == 1
    assert [(s.call, s.attempt, s.status.value) for s in steps_of(second, run_id)] == [
        (0, 1, "abandoned"),
        (1, 1, "completed"),
    ]


def test_C3_a_run_resumed_cancelling_twice_meets_its_cancel_at_the_same_await(
    runtimes: list[Runtime], db: Path
) -> None:
    """Replay of a resume that met the cancel: the same await, no new start."""
    first = open_rt(runtimes, db)
    run_id = first.start(cleans_up, "again").run_id
    started("again")
    first.kill()
    _cancel_while_down(db, run_id)
    second = open_rt(runtimes, db)
    started("again.cleanup")
    second.kill()  # in the cleanup, after the cancel met the body

    third = open_rt(runtimes, db)
    started("again.cleanup", 2)  # shielded and in flight: it runs again (S1)
    gate("again.cleanup").set()
    assert third.handle(run_id).wait_finished(timeout=10).status is RunState.CANCELLED
    assert NOTES["again:runs"] == [1]
    assert event_types(third, run_id).count("cancel_delivered") == 1


def test_D3_a_shielded_step_in_flight_is_rerun_and_the_cancel_waits_for_the_shield(
    runtimes: list[Runtime], db: Path
) -> None:
    first = open_rt(runtimes, db)
    run_id = first.start(shielded_then_more, "sh").run_id
    started("sh")
    first.kill()
    _cancel_while_down(db, run_id)

    second = open_rt(runtimes, db)
    started("sh", 2)  # the shield buffers the cancel: the lost attempt runs again
    gate("sh").set()
    record = second.handle(run_id).wait_finished(timeout=10)
    assert record.status is RunState.CANCELLED
    assert NOTES["sh:runs"] == [1, 2]
    assert "CancellationError" not in NOTES["sh"]  # it never saw the cancel
    assert "sh.after:runs" not in NOTES  # the cancel met the body when the shield ended


@step(retry=RetryPolicy(max_attempts=3, initial_interval=3600))
def fails_first(key: str) -> str:
    note(f"{key}:runs", get_context().attempt)
    if get_context().attempt == 1:
        raise ConnectionError("first attempt fails")
    return key


@workflow()
async def retries(key: str) -> str:
    return await fails_first(key)


def test_C3_a_step_in_back_off_is_not_retried_when_resumed_cancelling(
    runtimes: list[Runtime], db: Path
) -> None:
    first = open_rt(runtimes, db)
    run_id = first.start(retries, "bo").run_id
    wait_until(lambda: "step_retry_scheduled" in event_types(first, run_id))
    first.kill()
    _cancel_while_down(db, run_id)

    second = open_rt(runtimes, db)
    assert second.handle(run_id).wait_finished(timeout=10).status is RunState.CANCELLED
    assert NOTES["bo:runs"] == [1]  # C3 (SV1): cancel is never retried
    starts = [e.attempt for e in events_of(second, run_id) if e.type is EventType.STEP_STARTED]
    assert starts == [1]  # the retry never started


# -- D2/A4: a result that arrives while close() waits is recorded, never run again ---------


@step()
def charge(key: str) -> str:
    """Never checks its mailbox: it finishes its work after the runtime has
    asked it to stop (the request waits unread in its mailbox), then records
    its side effect."""
    ctx = get_context()
    inbox = ctx._inbox  # type: ignore[attr-defined]
    gate(f"{key}:started").set()
    if ctx.attempt == 1:
        wait_until(lambda: not inbox.empty())
    note(key, "charged")
    return f"{key} charged"


@workflow()
async def pays(key: str) -> list[str]:
    return [await charge(key), await checking(f"{key}.next")]


_STEP_ENDS = {EventType.STEP_COMPLETED, EventType.STEP_ABANDONED, EventType.STEP_FAILED}


def test_D2_a_step_result_that_arrives_while_close_waits_is_recorded_and_not_rerun(
    runtimes: list[Runtime], db: Path
) -> None:
    first = open_rt(runtimes, db)
    run_id = first.start(pays, "pay").run_id
    assert gate("pay:started").wait(10)
    first.close()  # the step returns while close() waits for it
    assert NOTES["pay"] == ["charged"]
    ends = [(e.type.value, e.attempt) for e in events_of(first, run_id) if e.type in _STEP_ENDS]
    assert ends == [("step_completed", 1)]  # recorded, not abandoned

    second = open_rt(runtimes, db)
    started("pay.next")
    gate("pay.next").set()
    assert second.handle(run_id).result(timeout=10) == ["pay charged", "pay.next"]
    assert NOTES["pay"] == ["charged"]  # the side effect happened exactly once
    assert "step_reexecuted" not in event_types(second, run_id)


@step()
def never_checks(key: str) -> str:
    gate(f"{key}:started").set()
    gate(key).wait(20)
    note(key, "returned")
    return key


@workflow()
async def stuck(key: str) -> str:
    return await never_checks(key)


def test_D2_a_step_still_running_when_close_gives_up_is_abandoned_and_rerun(
    runtimes: list[Runtime], db: Path
) -> None:
    first = open_rt(runtimes, db, shutdown_timeout=0.2)
    run_id = first.start(stuck, "late").run_id
    assert gate("late:started").wait(10)
    first.close()
    ends = [(e.type.value, e.data.get("reason")) for e in events_of(first, run_id)]
    assert ends[-1] == ("step_abandoned", "runtime shutdown")
    gate("late").set()  # its result comes after close() returned: nowhere to go
    assert first._census.pool.join(10)

    second = open_rt(runtimes, db)
    assert second.handle(run_id).result(timeout=10) == "late"
    assert NOTES["late"] == ["returned", "returned"]
    assert "step_reexecuted" in event_types(second, run_id)


@workflow()
async def parent_pays(key: str) -> list[str]:
    return await pays(key)


def test_D2_a_child_runs_step_result_that_arrives_while_close_waits_is_recorded(
    runtimes: list[Runtime], db: Path
) -> None:
    first = open_rt(runtimes, db)
    run_id = first.start(parent_pays, "kid").run_id
    assert gate("kid:started").wait(10)
    first.close()
    assert NOTES["kid"] == ["charged"]

    second = open_rt(runtimes, db)
    started("kid.next")
    gate("kid.next").set()
    assert second.handle(run_id).result(timeout=10) == ["kid charged", "kid.next"]
    assert NOTES["kid"] == ["charged"]


@step()
def returns_on_release(key: str) -> str:
    note(f"{key}:runs", get_context().attempt)
    gate(f"{key}:started").set()
    assert gate(key).wait(10)
    return key


@workflow()
async def two_at_once(key: str) -> list[str]:
    return await gather(returns_on_release(f"{key}.a"), charge(f"{key}.b"))


def test_D2_step_ends_seen_when_the_store_fails_are_handed_to_the_next_host(
    db: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Step a's end cannot be written (the store is locked past the busy
    timeout), so the run's supervisor stops; step b returns while it stops.
    Neither result is dropped: the supervisor that hosts the run again
    writes both with its takeover, and neither step runs again."""
    before = set(threading.enumerate())
    with Runtime(db, busy_timeout=0.05) as rt:
        handle = rt.start(two_at_once, "sf")
        assert gate("sf.a:started").wait(10)
        assert gate("sf.b:started").wait(10)
        holder = sqlite3.connect(db, isolation_level=None)
        holder.execute("BEGIN EXCLUSIVE")  # another process holds the write lock
        try:
            gate("sf.a").set()
            wait_until(lambda: "hosting it again" in caplog.text)
        finally:
            holder.execute("ROLLBACK")
            holder.close()
        assert handle.result(timeout=10) == ["sf.a", "sf.b charged"]
        log = rt.events(handle.run_id)
    assert NOTES["sf.a:runs"] == [1]
    assert NOTES["sf.b"] == ["charged"]
    assert [e for e in log if e.type is EventType.STEP_REEXECUTED] == []
    completed = [(e.call, e.attempt) for e in log if e.type is EventType.STEP_COMPLETED]
    assert sorted(completed) == [(0, 1), (1, 1)]
    assert_nothing_left(before)
