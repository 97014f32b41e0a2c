"""Nothing stranded: every unfinished run has someone to resume it (D2), and
however a child run ends, its parent hears of it exactly once (T4, SV4)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from actors import (
    EventType,
    RunCancelled,
    RunState,
    RunTerminated,
    Runtime,
    start_child,
    workflow,
)
from actors._journal import AFTER_COMMIT
from persistence import NewEvent, open_store
from tests.conftest import NOTES, events_of, gate, open_rt, wait_until
from tests.recovery_helpers import checking, started

pytestmark = pytest.mark.timeout(30)


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
                with open_store(db) as store:
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
    child_id = f"{parent.run_id}.0"
    assert second.handle(child_id).result(timeout=10) == "tree"
    # Its resumed parent hosts it, so it hears of its end (once).
    wait_until(lambda: _child_ends(second, parent.run_id) == ["completed"])
    gate("tree.parent").set()
    assert second.handle(parent.run_id).result(timeout=10) == child_id
    resumed = [e for e in events_of(second, child_id) if e.type is EventType.RUN_RESUMED]
    assert [e.data["why"] for e in resumed] == [f"its parent {parent.run_id} was resumed"]
    assert _child_ends(second, parent.run_id) == ["completed"]


def test_D2_the_orphan_scan_finds_every_run_nobody_else_resumes(db: Path) -> None:
    """Each shape of unfinished run with a dead owner: resumed by the scan, or
    by its parent's replay, never by both and never by neither."""

    def created(run_id: str, parent: str | None = None) -> NewEvent:
        data = {"workflow": "w", "owner": "dead", "parent_run_id": parent}
        return NewEvent(run_id=run_id, type=EventType.RUN_CREATED, data=data)

    def child_event(parent: str, type_: EventType, child_id: str) -> NewEvent:
        data: dict[str, object] = {"child_run_id": child_id}
        if type_ is EventType.CHILD_ENDED:  # the shape the store checks at append
            data["status"] = "completed"
        return NewEvent(run_id=parent, type=type_, step="w", call=0, data=data)

    with open_store(db) as store:
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
