"""Cancel: DESIGN.md rules C1-C8, through the public API."""

from __future__ import annotations

import threading

import pytest

from actors import (
    CancellationError,
    FakeClock,
    RunCancelled,
    RunNotFound,
    RunState,
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
def blocking(key: str) -> str:
    """Never checks: waits for the test to open its gate, then returns."""
    gate(f"{key}:started").set()
    gate(key).wait(20)
    return f"done {key}"


@step()
def checking(key: str) -> str:
    """Opens its 'started' gate, then checks the mailbox every millisecond."""
    ctx = get_context()
    gate(f"{key}:started").set()
    for _ in range(20_000):
        ctx.check_cancellation()
        gate(key).wait(0.001)
    return "never cancelled"


@step()
def quick(value: int) -> int:
    return value


@workflow()
async def one_blocking(key: str) -> str:
    return await blocking(key)


@workflow()
async def one_checking(key: str) -> str:
    return await checking(key)


def test_C1_cancel_records_request_and_marks_run_cancelling_at_once(rt: Runtime) -> None:
    handle = rt.start(one_blocking, "c1")
    assert gate("c1:started").wait(10)
    result = rt.cancel(handle.run_id, "operator asked")
    # Durable and immediate, while the step still runs.
    assert result.changed
    assert result.status is RunState.CANCELLING
    record = rt.get_run(handle.run_id)
    assert record.status is RunState.CANCELLING
    assert (record.cancel_reason, record.cancel_source) == ("operator asked", "api")
    requested = [e for e in handle.events() if e.type.value == "cancel_requested"]
    assert requested[0].data["reason"] == "operator asked"
    gate("c1").set()
    with pytest.raises(RunCancelled, match="operator asked"):
        handle.result(timeout=10)


def test_C1_cancel_wait_blocks_until_terminal_or_timeout(rt: Runtime) -> None:
    handle = rt.start(one_blocking, "c1w")
    assert gate("c1w:started").wait(10)
    timed_out = rt.cancel(handle.run_id, wait=True, timeout=0.05)
    assert timed_out.status is RunState.CANCELLING  # the step never checks
    threading.Timer(0.05, gate("c1w").set).start()
    waited = handle.cancel(wait=True, timeout=10)
    assert waited.status is RunState.CANCELLED


def test_C2_cancel_reaches_a_step_only_at_its_check(rt: Runtime) -> None:
    @step()
    def two_phases(key: str) -> str:
        gate(f"{key}:started").set()
        gate(key).wait(20)  # uninterruptible phase: cancel must not cut in
        note(key, "finished phase one")
        ctx = get_context()
        for _ in range(20_000):
            ctx.check_cancellation()  # the cancel lands at one of these checks
            gate(f"{key}:tick").wait(0.001)
        note(key, "never cancelled")
        return "unreachable"

    @workflow()
    async def wf(key: str) -> str:
        return await two_phases(key)

    handle = rt.start(wf, "c2")
    assert gate("c2:started").wait(10)
    rt.cancel(handle.run_id, "stop")
    assert "step_cancelled" not in event_types(rt, handle.run_id)
    gate("c2").set()
    with pytest.raises(RunCancelled):
        handle.result(timeout=10)
    assert NOTES["c2"] == ["finished phase one"]
    types = event_types(rt, handle.run_id)
    assert types.index("cancel_requested") < types.index("cancel_delivered")
    assert "step_cancelled" in types


def test_C2_heartbeat_is_a_mailbox_check(rt: Runtime) -> None:
    @step()
    def beating(key: str) -> None:
        ctx = get_context()
        gate(f"{key}:started").set()
        for i in range(20_000):
            ctx.heartbeat({"i": i})
            gate(key).wait(0.001)

    @workflow()
    async def wf(key: str) -> None:
        await beating(key)

    handle = rt.start(wf, "hb")
    assert gate("hb:started").wait(10)
    rt.cancel(handle.run_id)
    with pytest.raises(RunCancelled):
        handle.result(timeout=10)
    assert "step_cancelled" in event_types(rt, handle.run_id)


def test_C2_body_meets_cancel_at_its_next_await(rt: Runtime) -> None:
    @workflow()
    async def wf(key: str) -> str:
        await blocking(key)
        note(key, "between steps")  # plain code after the await never runs
        return await quick(1)

    handle = rt.start(wf, "c2b")
    assert gate("c2b:started").wait(10)
    rt.cancel(handle.run_id)
    gate("c2b").set()
    with pytest.raises(RunCancelled):
        handle.result(timeout=10)
    assert "c2b" not in NOTES


def test_C3_cancel_is_level_triggered_in_steps_and_body(rt: Runtime) -> None:
    @step()
    def stubborn(key: str) -> str:
        ctx = get_context()
        gate(f"{key}:started").set()
        while True:
            try:
                ctx.check_cancellation()
            except CancellationError:
                note(key, "first")
                break
            gate(key).wait(0.001)
        try:
            ctx.check_cancellation()
        except CancellationError:
            note(key, "second")  # raised again: level-triggered
            raise
        return "swallowed"

    @workflow()
    async def wf(key: str) -> str:
        try:
            await stubborn(key)
        except CancellationError:
            note(key, "body caught")
        await quick(2)  # unshielded checkpoint while CANCELLING: raises, never starts
        return "unreachable"

    handle = rt.start(wf, "c3")
    assert gate("c3:started").wait(10)
    rt.cancel(handle.run_id)
    with pytest.raises(RunCancelled):
        handle.result(timeout=10)
    assert NOTES["c3"] == ["first", "second", "body caught"]
    started = [e.step for e in events_of(rt, handle.run_id) if e.type.value == "step_scheduled"]
    assert not any(name.endswith("quick") for name in started)


def test_C4_step_that_never_checks_completes_and_its_result_is_kept(rt: Runtime) -> None:
    handle = rt.start(one_blocking, "c4")
    assert gate("c4:started").wait(10)
    rt.cancel(handle.run_id)
    gate("c4").set()
    with pytest.raises(RunCancelled):
        handle.result(timeout=10)
    completed = [e for e in events_of(rt, handle.run_id) if e.type.value == "step_completed"]
    assert completed[0].data["result"] == "done c4"
    types = event_types(rt, handle.run_id)
    assert types[-3:] == ["step_completed", "cancel_delivered", "run_cancelled"]
    (attempt,) = steps_of(rt, handle.run_id)
    assert attempt.result == "done c4"


def test_C5_outcome_follows_the_code(rt: Runtime) -> None:
    @workflow()
    async def returns_anyway(key: str) -> str:
        try:
            await checking(key)
        except CancellationError:
            return "cleaned up and returned"
        return "not cancelled"

    @workflow()
    async def raises_other(key: str) -> str:
        try:
            await checking(key)
        except CancellationError:
            raise ValueError("gave up differently") from None
        return "not cancelled"

    completed = rt.start(returns_anyway, "c5a")
    failed = rt.start(raises_other, "c5b")
    cancelled = rt.start(one_checking, "c5c")
    for key, h in (("c5a", completed), ("c5b", failed), ("c5c", cancelled)):
        assert gate(f"{key}:started").wait(10)
        rt.cancel(h.run_id)
    assert completed.result(timeout=10) == "cleaned up and returned"
    assert "cancel_requested" in event_types(rt, completed.run_id)  # kept in the log
    assert failed.wait_finished(10).status is RunState.FAILED
    assert rt.get_run(failed.run_id).error["type"] == "ValueError"
    assert cancelled.wait_finished(10).status is RunState.CANCELLED


def test_C6_repeated_cancel_and_cancel_of_finished_run_change_nothing(rt: Runtime) -> None:
    handle = rt.start(one_blocking, "c6")
    assert gate("c6:started").wait(10)
    first = rt.cancel(handle.run_id, "first")
    second = rt.cancel(handle.run_id, "second")
    assert first.changed
    assert not second.changed
    assert second.status is RunState.CANCELLING
    record = rt.get_run(handle.run_id)
    assert record.cancel_reason == "first"  # the one acted on
    assert event_types(rt, handle.run_id).count("cancel_requested") == 2  # both in the log
    gate("c6").set()
    handle.wait_finished(10)
    log_before = event_types(rt, handle.run_id)
    late = rt.cancel(handle.run_id, "too late")
    assert not late.changed
    assert late.status is RunState.CANCELLED
    assert "already finished" in late.message
    assert event_types(rt, handle.run_id) == log_before
    with pytest.raises(RunNotFound):
        rt.cancel("no-such-run")


def test_C6_a_cancel_that_races_the_runs_start_keeps_its_reason(rt: Runtime) -> None:
    """Two cancels right after start: the first is the one acted on (C6).

    Found by the property test when a cancel could be written before the
    run's supervisor existed: a second cancel then crashed the supervisor and
    the run ended FAILED. A run started here now has its supervisor before it
    exists in the store; a run claimed from the store can still meet a cancel
    first (test_control). Tried many times, as message order varies."""
    handles = []
    for i in range(25):
        handle = rt.start(one_checking, f"race{i}")
        rt.cancel(handle.run_id, "first")
        rt.cancel(handle.run_id, "second")
        handles.append(handle)
    for handle in handles:
        record = handle.wait_finished(10)
        assert record.status is RunState.CANCELLED, record.error
        delivered = [e for e in handle.events() if e.type.value == "cancel_delivered"]
        assert delivered[0].data["reason"] == "first"


def test_C7_cancel_flows_down_to_every_active_step(rt: Runtime) -> None:
    @workflow()
    async def fan_out(keys: list[str]) -> list[str]:
        return await gather(*(checking(k) for k in keys))

    keys = ["c7a", "c7b", "c7c"]
    handle = rt.start(fan_out, keys)
    for k in keys:
        assert gate(f"{k}:started").wait(10)
    rt.cancel(handle.run_id)
    with pytest.raises(RunCancelled):
        handle.result(timeout=10)
    cancelled = [e.call for e in events_of(rt, handle.run_id) if e.type.value == "step_cancelled"]
    assert sorted(cancelled) == [0, 1, 2]


def test_C8_grace_terminates_a_run_that_does_not_finish(db: object) -> None:
    before = set(threading.enumerate())
    clock = FakeClock()
    with Runtime(db, clock=clock) as rt:  # type: ignore[arg-type]
        handle = rt.start(one_blocking, "c8")
        assert gate("c8:started").wait(10)
        rt.cancel(handle.run_id, "shutting down", grace=30)
        assert handle.status() is RunState.CANCELLING
        clock.advance(29)
        assert handle.status() is RunState.CANCELLING
        clock.advance(2)
        assert handle.wait_finished(10).status is RunState.TERMINATED
        terminate = [e for e in handle.events() if e.type.value == "terminate_requested"]
        assert terminate[0].data["source"] == "grace"
        gate("c8").set()
    assert_nothing_left(before)


def test_C8_grace_does_nothing_once_the_run_finished(db: object) -> None:
    clock = FakeClock()
    with Runtime(db, clock=clock) as rt:  # type: ignore[arg-type]
        handle = rt.start(one_checking, "c8b")
        assert gate("c8b:started").wait(10)
        rt.cancel(handle.run_id, grace=5)
        assert handle.wait_finished(10).status is RunState.CANCELLED
        log = event_types(rt, handle.run_id)
        clock.advance(10)
        # The grace timer fires into a finished run: fenced, nothing recorded.
        assert handle.status() is RunState.CANCELLED
        assert event_types(rt, handle.run_id) == log


def test_a_cancel_right_after_start_meets_the_body_at_its_next_checkpoint(rt: Runtime) -> None:
    """start() returns once the run's first records are durable, the first
    step's start with them: the body is under way, never skipped. (A cancel
    recorded before any supervisor exists is the D3 case, in test_durability.)"""

    @workflow()
    async def wf() -> int:
        with shield():
            cleaned = await blocking("early")
        note("early", cleaned)
        return await quick(1)

    handle = rt.start(wf)
    assert event_types(rt, handle.run_id)[-1] == "step_started"
    rt.cancel(handle.run_id, "early")
    gate("early").set()
    with pytest.raises(RunCancelled):
        handle.result(timeout=10)
    assert NOTES["early"] == ["done early"]  # the shielded step finished; the next never started
    assert [e.call for e in events_of(rt, handle.run_id) if e.type.value == "step_started"] == [0]
