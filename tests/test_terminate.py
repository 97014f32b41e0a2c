"""Terminate: DESIGN.md rules T1-T4, through the public API."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from actors import (
    RunNotFound,
    RunState,
    RunTerminated,
    Runtime,
    gather,
    get_context,
    shield,
    step,
    workflow,
)
from tests.conftest import (
    NOTES,
    assert_nothing_left,
    event_types,
    events_of,
    gate,
    note,
    steps_of,
)

pytestmark = pytest.mark.timeout(30)


@step()
def heartbeating(key: str) -> str:
    """Stuck in a loop that heartbeats; records how it unwinds."""
    ctx = get_context()
    gate(f"{key}:started").set()
    try:
        while True:
            ctx.heartbeat({"key": key})
            gate(key).wait(0.001)
    except BaseException as exc:
        note(key, type(exc).__name__)
        raise


@step()
def never_checks(key: str) -> str:
    gate(f"{key}:started").set()
    gate(key).wait(20)
    return "late result"


@step()
def quick(value: int) -> int:
    note("quick", value)
    return value


def test_T1_terminate_marks_the_run_terminated_at_once(rt: Runtime) -> None:
    @workflow()
    async def wf(key: str) -> str:
        return await never_checks(key)

    handle = rt.start(wf, "t1")
    assert gate("t1:started").wait(10)
    result = rt.terminate(handle.run_id, "stuck")
    assert result.changed
    assert result.status is RunState.TERMINATED
    record = rt.get_run(handle.run_id)
    assert record.status is RunState.TERMINATED  # before the step has even noticed
    assert record.terminate_reason == "stuck"
    with pytest.raises(RunTerminated, match="stuck"):
        handle.result(timeout=1)


def test_T1_terminate_works_with_no_runtime_alive_to_own_the_run(db: Path) -> None:
    @workflow()
    async def wf(key: str) -> str:
        return await heartbeating(key)

    before = set(threading.enumerate())
    with Runtime(db) as owner:
        handle = owner.start(wf, "t1b")
        assert gate("t1b:started").wait(10)
    # The owner is gone (its step unwound at a heartbeat); the run is left
    # unfinished in the store.
    with Runtime(db, resume=False) as other:  # a tool, not a host of the run
        assert other.get_run(handle.run_id).status is RunState.RUNNING
        result = other.terminate(handle.run_id, "owner is dead")
        assert result.status is RunState.TERMINATED
        assert other.get_run(handle.run_id).status is RunState.TERMINATED
        again = other.terminate(handle.run_id)
        assert not again.changed
        assert again.status is RunState.TERMINATED
        with pytest.raises(RunNotFound):
            other.terminate("no-such-run")
    assert_nothing_left(before)


def test_T2_the_workflow_gets_no_say(rt: Runtime) -> None:
    @workflow()
    async def wf(key: str) -> str:
        try:
            await heartbeating(key)
        except BaseException as exc:
            note("body", type(exc).__name__)  # only from a closed coroutine
            with shield():
                await quick(99)  # must never start
            raise
        return "unreachable"

    handle = rt.start(wf, "t2")
    assert gate("t2:started").wait(10)
    rt.terminate(handle.run_id)
    rt.close()
    # Python closes the suspended body (GeneratorExit): no CancellationError,
    # and the step it tried to start in a shield never ran.
    assert NOTES.get("body") == ["GeneratorExit"]
    assert "quick" not in NOTES
    types = event_types(rt, handle.run_id)
    for forbidden in ("cancel_delivered", "shield_entered", "run_cancelled"):
        assert forbidden not in types


def test_T3_stuck_step_unwinds_with_Terminated_and_no_further_step_starts(
    rt: Runtime,
) -> None:
    @workflow()
    async def wf(key: str) -> int:
        await heartbeating(key)
        return await quick(1)

    handle = rt.start(wf, "t3")
    assert gate("t3:started").wait(10)
    rt.terminate(handle.run_id, "kill it")
    rt.close()  # returns only once every thread of the run has ended
    assert NOTES["t3"] == ["Terminated"]
    assert "quick" not in NOTES
    types = event_types(rt, handle.run_id)
    assert types[-3:] == ["terminate_requested", "run_terminated", "step_abandoned"]
    (attempt,) = steps_of(rt, handle.run_id)
    assert attempt.status.value == "abandoned"


def test_T3_a_late_result_of_an_abandoned_step_is_discarded(rt: Runtime) -> None:
    @workflow()
    async def wf(key: str) -> str:
        return await never_checks(key)

    handle = rt.start(wf, "t3b")
    assert gate("t3b:started").wait(10)
    rt.terminate(handle.run_id)
    log = event_types(rt, handle.run_id)
    gate("t3b").set()  # the step returns "late result" now
    rt.close()
    after = event_types(rt, handle.run_id)
    assert "step_completed" not in after
    assert after in (log, [*log, "step_abandoned"])
    (attempt,) = steps_of(rt, handle.run_id)
    assert attempt.result is None


def test_T4_terminate_reaches_every_active_step(rt: Runtime) -> None:
    @workflow()
    async def wf(keys: list[str]) -> list[str]:
        return await gather(*(heartbeating(k) for k in keys))

    keys = ["t4a", "t4b", "t4c"]
    handle = rt.start(wf, keys)
    for k in keys:
        assert gate(f"{k}:started").wait(10)
    rt.terminate(handle.run_id)
    rt.close()
    assert all(NOTES[k] == ["Terminated"] for k in keys)
    abandoned = [e.call for e in events_of(rt, handle.run_id) if e.type.value == "step_abandoned"]
    assert sorted(abandoned) == [0, 1, 2]
