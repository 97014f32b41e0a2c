"""Child runs: a workflow awaiting another workflow, and C7/T4 across runs."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from actors import (
    CancellationError,
    NotSerializable,
    ProctorError,
    RunCancelled,
    RunState,
    RunTerminated,
    Runtime,
    WorkflowFailed,
    gather,
    get_context,
    shield,
    start_child,
    step,
    workflow,
)
from persistence import open_store
from tests.conftest import (
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


@step()
def double(x: int) -> int:
    return 2 * x


@step()
def checking(key: str) -> str:
    """Loops checking its mailbox until its gate opens; notes how it ended."""
    ctx = get_context()
    gate(f"{key}:started").set()
    try:
        while not gate(key).wait(0.001):
            ctx.check_cancellation()
    except BaseException as exc:
        note(key, type(exc).__name__)
        raise
    return key


@step()
def cleanup(key: str) -> None:
    note("cleanup", key)


@step()
def explode(message: str) -> None:
    raise ValueError(message)


@workflow()
async def doubler(x: int) -> int:
    return await double(x)


@workflow()
async def waits_for(key: str) -> str:
    """A child that sits in a checking step and cleans up when cancelled."""
    try:
        return await checking(key)
    except CancellationError:
        with shield():
            await cleanup(f"child:{key}")
        raise


@workflow()
async def fails(message: str) -> None:
    await explode(message)


@workflow()
async def middle(key: str) -> str:
    """A child that has a child of its own: three levels with its parent."""
    return await waits_for(key)


def child_of(rt: Runtime, run_id: str) -> str:
    """The run id of the run's single child, once it exists."""
    wait_until(lambda: rt.list_runs(parent_run_id=run_id))
    (child,) = rt.list_runs(parent_run_id=run_id)
    return child.run_id


def test_a_child_run_returns_its_result_to_the_parent(rt: Runtime) -> None:
    @workflow()
    async def parent(x: int) -> int:
        return await doubler(x) + 1

    handle = rt.start(parent, 20)
    assert handle.result(timeout=10) == 41
    child = child_of(rt, handle.run_id)
    assert child == f"{handle.run_id}.0"
    record = rt.get_run(child)
    assert record.status is RunState.COMPLETED
    assert record.parent_run_id == handle.run_id
    assert record.workflow == doubler.name
    assert record.args == [20]
    assert record.result == 40
    assert event_types(rt, handle.run_id) == [
        "run_created",
        "run_started",
        "child_started",
        "child_ended",
        "run_completed",
    ]
    ended = events_of(rt, handle.run_id)[3]
    assert ended.step == doubler.name
    assert ended.data == {"child_run_id": child, "status": "completed", "result": 40}
    assert event_types(rt, child) == [
        "run_created",
        "run_started",
        "step_scheduled",
        "step_started",
        "step_completed",
        "run_completed",
    ]


def test_SV4_a_failed_child_raises_in_its_parent(rt: Runtime) -> None:
    @workflow()
    async def catches() -> str:
        try:
            await fails("boom")
        except WorkflowFailed as exc:
            return f"{exc.error['type']}: {exc.error['message']}"
        return "unreachable"

    @workflow()
    async def lets_it_escape() -> None:
        await fails("bang")

    assert rt.start(catches).result(timeout=10) == (
        f"StepFailed: step {explode.name!r} failed on attempt 1: ValueError: boom"
    )
    handle = rt.start(lets_it_escape)
    with pytest.raises(WorkflowFailed, match="bang"):
        handle.result(timeout=10)
    assert rt.get_run(child_of(rt, handle.run_id)).status is RunState.FAILED


def test_C7_cancelling_a_run_cancels_its_child_runs(rt: Runtime) -> None:
    @workflow()
    async def parent(key: str) -> str:
        try:
            return await middle(key)
        except CancellationError:
            with shield():
                await cleanup("parent")
            raise

    handle = rt.start(parent, "c7")
    assert gate("c7:started").wait(10)
    child = child_of(rt, handle.run_id)
    grandchild = child_of(rt, child)
    rt.cancel(handle.run_id, "operator", wait=True, timeout=10)

    for run_id in (handle.run_id, child, grandchild):
        assert rt.get_run(run_id).status is RunState.CANCELLED
    # The step deep down met the cancel at its check; each level cleaned up.
    assert NOTES["c7"] == ["CancellationError"]
    assert sorted(NOTES["cleanup"]) == ["child:c7", "parent"]
    requests = [e.data for e in events_of(rt, grandchild) if e.type.value == "cancel_requested"]
    assert requests == [{"reason": "operator", "source": "parent", "origin": rt.id, "grace": None}]
    assert rt.get_run(child).cancel_source == "parent"


def test_C7_a_child_started_inside_a_shield_is_not_cancelled(rt: Runtime) -> None:
    @workflow()
    async def parent(key: str) -> str:
        with shield():
            result = await waits_for(key)
        note("after-shield", result)
        await double(1)  # the buffered cancel is delivered here (S2)
        return "unreachable"

    handle = rt.start(parent, "c7s")
    assert gate("c7s:started").wait(10)
    child = child_of(rt, handle.run_id)
    rt.cancel(handle.run_id, "later")
    wait_until(lambda: "cancel_buffered" in event_types(rt, handle.run_id))
    gate("c7s").set()
    with pytest.raises(RunCancelled):
        handle.result(timeout=10)
    assert rt.get_run(child).status is RunState.COMPLETED
    assert NOTES["after-shield"] == ["c7s"]


def test_C3_a_child_is_not_started_once_the_parent_is_cancelling(rt: Runtime) -> None:
    @workflow()
    async def parent(key: str) -> str:
        try:
            await checking(key)
        except CancellationError:
            note("body", "cancelled")
        return await doubler(3)  # a checkpoint while cancelling: raises again

    handle = rt.start(parent, "c3")
    assert gate("c3:started").wait(10)
    rt.cancel(handle.run_id)
    with pytest.raises(RunCancelled):
        handle.result(timeout=10)
    assert NOTES["body"] == ["cancelled"]
    assert rt.list_runs(parent_run_id=handle.run_id) == []


def test_T4_terminating_a_run_terminates_its_whole_tree_at_once(rt: Runtime) -> None:
    @workflow()
    async def parent(key: str) -> str:
        try:
            return await middle(key)
        except BaseException:
            with shield():
                await cleanup("parent")  # must never start (T2)
            raise

    handle = rt.start(parent, "t4")
    assert gate("t4:started").wait(10)
    child = child_of(rt, handle.run_id)
    grandchild = child_of(rt, child)

    result = rt.terminate(handle.run_id, "kill it")
    assert result.status is RunState.TERMINATED
    # Durable for every level before terminate() returned (T1, T4).
    for run_id in (handle.run_id, child, grandchild):
        record = rt.get_run(run_id)
        assert record.status is RunState.TERMINATED
        assert record.terminate_reason == "kill it"
    # The busy step deep down unwinds with Terminated, not CancellationError.
    wait_until(lambda: NOTES.get("t4") == ["Terminated"])
    wait_until(lambda: [s.status.value for s in steps_of(rt, grandchild)] == ["abandoned"])
    assert "cleanup" not in NOTES
    assert "cancel_delivered" not in event_types(rt, grandchild)


def test_T4_terminate_flows_down_with_no_runtime_alive(db: Path) -> None:
    @workflow()
    async def parent(key: str) -> str:
        return await middle(key)

    before = set(threading.enumerate())
    with Runtime(db) as owner:
        handle = owner.start(parent, "t4b")
        assert gate("t4b:started").wait(10)
        child = child_of(owner, handle.run_id)
        grandchild = child_of(owner, child)
    with Runtime(db, resume=False) as other:  # a tool, not a host of the run
        other.terminate(handle.run_id, "owner is dead")
        statuses = [other.get_run(r).status for r in (handle.run_id, child, grandchild)]
        assert statuses == [RunState.TERMINATED] * 3
        sources = [e.data.get("source") for e in other.events(grandchild)]
        assert "parent" in sources
    assert_nothing_left(before)


def test_a_child_terminated_on_its_own_raises_RunTerminated_in_its_parent(
    rt: Runtime,
) -> None:
    @workflow()
    async def parent(key: str) -> str:
        try:
            return await waits_for(key)
        except RunTerminated as exc:
            return f"child gone: {exc.reason}"

    handle = rt.start(parent, "tc")
    assert gate("tc:started").wait(10)
    rt.terminate(child_of(rt, handle.run_id), "just the child")
    assert handle.result(timeout=10) == "child gone: just the child"


def test_a_child_cancelled_on_its_own_raises_RunCancelled_in_its_parent(
    rt: Runtime,
) -> None:
    @workflow()
    async def parent(key: str) -> str:
        try:
            return await waits_for(key)
        except RunCancelled as exc:
            return f"child cancelled: {exc.reason}"

    handle = rt.start(parent, "cc")
    assert gate("cc:started").wait(10)
    rt.cancel(child_of(rt, handle.run_id), "just the child")
    # The parent was not cancelled: it handles its child's end like any error.
    assert handle.result(timeout=10) == "child cancelled: just the child"
    assert NOTES["cleanup"] == ["child:cc"]


def test_gather_runs_steps_and_child_runs_in_parallel(rt: Runtime) -> None:
    @workflow()
    async def parent() -> list[int]:
        return await gather(doubler(1), double(10), doubler(100))

    handle = rt.start(parent)
    assert handle.result(timeout=10) == [2, 20, 200]
    children = sorted(r.run_id for r in rt.list_runs(parent_run_id=handle.run_id))
    assert children == [f"{handle.run_id}.0", f"{handle.run_id}.2"]


def test_C7_cancel_reaches_steps_and_children_of_a_gather(rt: Runtime) -> None:
    @workflow()
    async def parent() -> list[str]:
        return await gather(checking("g-step"), waits_for("g-child"))

    handle = rt.start(parent)
    assert gate("g-step:started").wait(10)
    assert gate("g-child:started").wait(10)
    rt.cancel(handle.run_id, wait=True, timeout=10)
    assert handle.status() is RunState.CANCELLED
    assert NOTES["g-step"] == NOTES["g-child"] == ["CancellationError"]


def test_calling_a_workflow_outside_a_body_is_a_clear_error() -> None:
    with pytest.raises(ProctorError, match=r"outside a workflow body.*Runtime\.start"):
        doubler(1)


def test_child_arguments_must_be_JSON_at_the_call(rt: Runtime) -> None:
    @workflow()
    async def parent() -> str:
        try:
            await doubler(object())  # type: ignore[arg-type]
        except NotSerializable as exc:
            return str(exc)
        return "unreachable"

    message = rt.start(parent).result(timeout=10)
    assert "arguments of workflow" in message
    assert rt.list_runs(parent_run_id=rt.list_runs()[0].run_id) == []


def test_shutdown_leaves_the_tree_unfinished_and_stops_every_actor(db: Path) -> None:
    @workflow()
    async def parent(key: str) -> str:
        return await middle(key)

    before = set(threading.enumerate())
    with Runtime(db) as runtime:
        handle = runtime.start(parent, "sd")
        assert gate("sd:started").wait(10)
        child = child_of(runtime, handle.run_id)
        grandchild = child_of(runtime, child)
    assert_nothing_left(before)
    with open_store(db, readonly=True) as store:  # (a Runtime would resume them)
        statuses = [store.get_run(r).status for r in (handle.run_id, child, grandchild)]
    assert statuses == [RunState.RUNNING] * 3  # left for resume (D2)
    assert NOTES["sd"] == ["Terminated"]


# -- start_child(): children the parent does not wait for, and parent close policies ------


@workflow()
async def starts_and_awaits_later(key: str) -> list[object]:
    child = await start_child(waits_for, key)
    meanwhile = await double(21)  # the parent goes on while the child runs
    gate(f"{key}").set()
    return [meanwhile, await child]


def test_start_child_returns_at_once_and_the_child_can_be_awaited_later(rt: Runtime) -> None:
    handle = rt.start(starts_and_awaits_later, "later")
    assert handle.result(timeout=10) == [42, "later"]
    started = [e for e in rt.events(handle.run_id) if e.type.value == "child_started"]
    assert started[0].data["parent_close_policy"] == "terminate"


@step()
def until_started(key: str) -> None:
    assert gate(f"{key}:started").wait(10)


@workflow()
async def leaves_a_child(key: str, policy: str) -> str:
    child = await start_child(waits_for, key, parent_close_policy=policy)  # type: ignore[arg-type]
    await until_started(key)  # the child is busy in its step when the parent ends
    return child.run_id


def test_SV4_parent_close_policy_terminate_is_the_default(rt: Runtime) -> None:
    handle = rt.start(leaves_a_child, "pc-t", "terminate")
    child = handle.result(timeout=10)
    wait_until(lambda: rt.get_run(child).status is RunState.TERMINATED)
    record = rt.get_run(child)
    assert record.terminate_reason == "parent run ended"
    wait_until(lambda: NOTES.get("pc-t") == ["Terminated"])  # no say for its code
    assert "cleanup" not in NOTES
    sources = [
        e.data.get("source") for e in rt.events(child) if e.type.value == "terminate_requested"
    ]
    assert sources == ["parent_close"]


def test_SV4_parent_close_policy_request_cancel_lets_the_child_clean_up(rt: Runtime) -> None:
    handle = rt.start(leaves_a_child, "pc-c", "request_cancel")
    child = handle.result(timeout=10)
    record = rt.handle(child).wait_finished(timeout=10)
    assert record.status is RunState.CANCELLED
    assert (record.cancel_reason, record.cancel_source) == ("parent run ended", "parent_close")
    assert NOTES["cleanup"] == ["child:pc-c"]


def test_SV4_parent_close_policy_abandon_lets_the_child_run_on(rt: Runtime) -> None:
    handle = rt.start(leaves_a_child, "pc-a", "abandon")
    child = handle.result(timeout=10)
    assert handle.status() is RunState.COMPLETED
    assert rt.get_run(child).status is RunState.RUNNING  # outlives its parent
    gate("pc-a").set()
    assert rt.handle(child).result(timeout=10) == "pc-a"


def test_a_parent_terminate_takes_abandoned_children_too(rt: Runtime) -> None:
    @workflow()
    async def parent(key: str) -> None:
        await start_child(waits_for, key, parent_close_policy="abandon")
        await checking(f"{key}.parent")

    handle = rt.start(parent, "pc-x")
    assert gate("pc-x:started").wait(10)
    rt.terminate(handle.run_id, "everything")
    child = child_of(rt, handle.run_id)
    assert rt.get_run(child).status is RunState.TERMINATED  # T4 wins over abandon


def test_a_child_that_ends_before_it_is_awaited_keeps_its_outcome(rt: Runtime) -> None:
    @workflow()
    async def parent(key: str) -> str:
        child = await start_child(fails, "early")
        await checking(key)  # the child fails meanwhile
        try:
            await child
        except WorkflowFailed as exc:
            return f"child failed: {(exc.error or {}).get('message')}"
        return "unreachable"

    handle = rt.start(parent, "pc-e")
    assert gate("pc-e:started").wait(10)
    wait_until(lambda: rt.get_run(child_of(rt, handle.run_id)).status is RunState.FAILED)
    gate("pc-e").set()
    assert handle.result(timeout=10).endswith("failed on attempt 1: ValueError: early")


def test_an_unknown_parent_close_policy_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="terminate, request_cancel, abandon"):
        start_child(waits_for, "x", parent_close_policy="orphan")  # type: ignore[arg-type]
