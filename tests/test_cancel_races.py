"""C7 and C3 under races: a cancel that arrives while a child run is starting.

A supervisor learns its run's state from the Journal's acknowledgement of
``run_started``; a cancel can reach it between that commit and the
acknowledgement. The state it learned then is older than the one it is in,
and must not overwrite it, or the child's step is started as if nothing
were cancelled and the whole tree stays CANCELLING for as long as that step
runs (forever for a loop that checks).
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from actors import (
    CancellationError,
    RunState,
    Runtime,
    gather,
    get_context,
    shield,
    start_child,
    step,
    workflow,
)
from persistence import RUN_TRANSITIONS, InvalidTransition, cancel_request, later_state, open_store
from persistence import RunState as R
from tests.conftest import NOTES, assert_nothing_left, events_of, gate, note, wait_until

pytestmark = pytest.mark.timeout(120)

#: Tries per scenario: the race was lost within 4 to 40 tries.
TRIES = 40


@step()
def loops_checking(key: str) -> str:
    """Checks its mailbox every millisecond, for up to 20 s."""
    ctx = get_context()
    for _ in range(20_000):
        ctx.check_cancellation()
        time.sleep(0.001)  # a slice of work between two checks
    return key


@workflow()
async def child(key: str) -> str:
    return await loops_checking(key)


@workflow()
async def parent(key: str) -> str:
    return await child(key)


@workflow()
async def parent_of_two(key: str) -> list[str]:
    return await gather(child(f"{key}-a"), child(f"{key}-b"))


@workflow()
async def leaves_a_child(key: str) -> str:
    await start_child(child, key, parent_close_policy="request_cancel")
    return "left"


def _children(rt: Runtime, run_id: str) -> list[str]:
    return [r.run_id for r in rt.list_runs(parent_run_id=run_id)]


def _assert_tree_cancelled(rt: Runtime, run_id: str) -> None:
    for kid in _children(rt, run_id):
        record = rt.handle(kid).wait_finished(timeout=3)
        assert record.status is RunState.CANCELLED, (kid, [e.type for e in events_of(rt, kid)])


@pytest.mark.parametrize("workflow_", [parent, parent_of_two], ids=["await", "gather"])
def test_C7_a_cancel_reaching_a_starting_child_is_never_lost(
    rt: Runtime, workflow_: object
) -> None:
    for n in range(TRIES):
        run = rt.start(workflow_, f"k{n}")  # type: ignore[arg-type]
        result = rt.cancel(run.run_id, "stop", wait=True, timeout=3)
        assert result.status is RunState.CANCELLED, (n, [e.type for e in run.events()])
        _assert_tree_cancelled(rt, run.run_id)


def test_C3_a_child_left_with_request_cancel_ends_cancelled_at_once(rt: Runtime) -> None:
    """The parent returns right after start_child(request_cancel): the
    child is asked to cancel while it starts, and its step is not left
    running."""
    for n in range(TRIES):
        run = rt.start(leaves_a_child, f"l{n}")
        assert run.result(timeout=3) == "left"
        [kid] = _children(rt, run.run_id)
        record = rt.handle(kid).wait_finished(timeout=3)
        assert record.status is RunState.CANCELLED, (n, [e.type for e in events_of(rt, kid)])


@pytest.mark.parametrize(("current", "learned"), [(s, t) for s in R for t in R])
def test_a_state_learned_late_never_moves_a_run_back(current: R, learned: R) -> None:
    """later_state(current, learned) is the later of the two on the table's
    paths, whichever order they come in."""
    try:
        merged = later_state(current, learned)
    except InvalidTransition:
        assert current is not learned
        return
    assert merged in (current, learned)
    other = learned if merged is current else current
    # ``merged`` is reachable from the other one, or both are terminal.
    frontier, seen = {other}, {other}
    while frontier:
        frontier = {t for (s, _), t in RUN_TRANSITIONS.items() if s in frontier} - seen
        seen |= frontier
    assert merged in seen or (merged.is_terminal and other.is_terminal)


@step()
def quick(n: int) -> int:
    return n


@workflow()
async def swallows_cancels(key: str) -> None:
    """A bug: it catches every cancel and tries again, forever."""
    try:
        while True:
            try:
                await quick(1)
            except CancellationError:
                note(key, "spin")
    finally:
        note(key, "sealed")  # the coroutine was closed (GeneratorExit)


def test_T2_terminate_stops_a_body_that_swallows_every_cancel(db: Path) -> None:
    """The body spins on cancels; terminate must still reach the supervisor
    (its mailbox is read between two resumptions), the body is never resumed
    after it is sealed, close() returns promptly, and the log does not grow
    with each spin (one cancel_delivered per unshielded stretch)."""
    before = set(threading.enumerate())
    rt = Runtime(db)
    try:
        run = rt.start(swallows_cancels, "spin")
        rt.cancel(run.run_id, "stop")
        wait_until(lambda: NOTES.get("spin", []).count("spin") > 1000)
        assert rt.terminate(run.run_id, "enough").status is RunState.TERMINATED
        wait_until(lambda: "sealed" in NOTES["spin"], timeout=5)
    finally:
        begin = time.monotonic()
        rt.close()
        closed_in = time.monotonic() - begin
    assert NOTES["spin"][-1] == "sealed"  # never resumed after that
    assert closed_in < rt.shutdown_timeout
    types = [e.type.value for e in events_of(rt, run.run_id)]
    # Over a thousand spins, at most one record of the delivery. (None when
    # the terminate, a control message, commits before the body's pending
    # group that holds it: a terminated run takes no more records, T1.)
    assert types.count("cancel_delivered") <= 1, " ".join(types)
    after_cancel = types[types.index("cancel_requested") :]
    assert len(after_cancel) < 10, " ".join(types)
    assert "run_terminated" in types
    assert_nothing_left(before)


@step()
def works(key: str) -> str:
    """Checks its mailbox until cancelled; notes each attempt."""
    note(f"{key}:attempts", 1)
    gate(f"{key}:started").set()
    ctx = get_context()
    for _ in range(20_000):
        ctx.check_cancellation()
        time.sleep(0.001)
    return key


@step()
def cleans_up(key: str) -> None:
    note(f"{key}:cleanup", 1)


@workflow()
async def child_with_cleanup(key: str) -> str:
    try:
        return await works(key)
    except CancellationError:
        with shield():
            await cleans_up(key)
        raise


@workflow()
async def starts_and_joins(key: str) -> str:
    c = await start_child(child_with_cleanup, key)
    return await c


def _tree_outcome(rt: Runtime, run_id: str, key: str) -> tuple[RunState, RunState, int]:
    parent_record = rt.handle(run_id).wait_finished(timeout=10)
    [kid] = _children(rt, run_id)
    child_record = rt.handle(kid).wait_finished(timeout=10)
    return parent_record.status, child_record.status, len(NOTES.get(f"{key}:cleanup", []))


def test_C7_a_joined_child_cancelled_with_its_parent_cleans_up_live(rt: Runtime) -> None:
    run = rt.start(starts_and_joins, "live")
    assert gate("live:started").wait(10)
    rt.cancel(run.run_id, "stop")
    assert _tree_outcome(rt, run.run_id, "live") == (RunState.CANCELLED, RunState.CANCELLED, 1)


def test_D3_a_tree_cancelled_while_no_runtime_lives_ends_as_it_would_live(db: Path) -> None:
    """The parent is cancelled while nobody hosts it; on resume its child
    in flight gets the cancel (C7), runs its shielded cleanup and ends
    CANCELLED, and the parent meets the cancel once the child has ended,
    as with a live runtime; the parent's close policy never terminates it."""
    before = set(threading.enumerate())
    first = Runtime(db)
    try:
        run = first.start(starts_and_joins, "down")
        assert gate("down:started").wait(10)
    finally:
        first.kill()
    with open_store(db) as store:  # what `proctor cancel` writes
        store.append([cancel_request(run.run_id, "while down", source="cli")])
    with Runtime(db) as second:
        outcome = _tree_outcome(second, run.run_id, "down")
        [kid] = _children(second, run.run_id)
        child_log = [e.type.value for e in events_of(second, kid)]
    assert outcome == (RunState.CANCELLED, RunState.CANCELLED, 1), child_log
    assert "run_terminated" not in child_log
    assert_nothing_left(before)
