"""Nothing lost, nothing run twice: recovery across shutdowns, store failures and crashes.

- D2/A4: a step result that arrives while ``close()`` waits, or while a
  run's supervisor stops on a store failure, is recorded (by the run's next
  host, in the second case), and replay returns it without running the step
  again.
- C3/D3: a run cancelled while no runtime lived does not re-run its unshielded
  in-flight step on resume; the body meets the cancel at that await.

Every unfinished run has someone to resume it, and every child's end reaches
its parent: ``test_orphans.py``.
"""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from actors import (
    CancellationError,
    EventType,
    RetryPolicy,
    RunState,
    Runtime,
    gather,
    get_context,
    shield,
    step,
    workflow,
)
from actors._journal import AFTER_COMMIT
from persistence import NewEvent, cancel_request, open_store
from tests.conftest import (
    NOTES,
    assert_nothing_left,
    event_types,
    events_of,
    gate,
    note,
    open_rt,
    steps_of,
    wait_until,
)
from tests.recovery_helpers import checking, started
from tests.store_access import write_lock

pytestmark = pytest.mark.timeout(30)


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
    with open_store(db) as store:  # what `proctor cancel` writes
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
        with write_lock(db):  # another process holds the write lock
            gate("sf.a").set()
            wait_until(lambda: "hosting it again" in caplog.text)
        assert handle.result(timeout=10) == ["sf.a", "sf.b charged"]
        log = rt.events(handle.run_id)
    assert NOTES["sf.a:runs"] == [1]
    assert NOTES["sf.b"] == ["charged"]
    assert [e for e in log if e.type is EventType.STEP_REEXECUTED] == []
    completed = [(e.call, e.attempt) for e in log if e.type is EventType.STEP_COMPLETED]
    assert sorted(completed) == [(0, 1), (1, 1)]
    assert_nothing_left(before)


def test_C3_a_cancel_written_between_a_takeover_and_its_reexecution_stops_the_rerun(
    runtimes: list[Runtime], db: Path
) -> None:
    """The race of a resume: another process cancels the run right after the
    new runtime's ``run_resumed`` commits, before its replay re-runs the lost
    attempt. The store refuses the unshielded re-execution of a run that is
    CANCELLING (C3: a step whose call starts while CANCELLING is not started
    at all); the body meets the cancel at that await, as if the cancel had
    come before the takeover."""
    first = open_rt(runtimes, db)
    run_id = first.start(cleans_up, "race").run_id
    started("race")
    first.kill()

    def cancel_after_takeover(events: list[NewEvent]) -> None:
        if any(e.type is EventType.RUN_RESUMED and e.run_id == run_id for e in events):
            _cancel_while_down(db, run_id)

    AFTER_COMMIT.append(cancel_after_takeover)
    try:
        second = open_rt(runtimes, db)
        started("race.cleanup")
        gate("race.cleanup").set()
        record = second.handle(run_id).wait_finished(timeout=10)
    finally:
        AFTER_COMMIT.remove(cancel_after_takeover)
    assert record.status is RunState.CANCELLED
    assert NOTES["race:runs"] == [1]  # the lost attempt was not started again (C3)
    assert "step_reexecuted" not in event_types(second, run_id)
