"""B5: ``await wait_for_signal(name, timeout=s)``, on a durable body timer.

The timeout is a durable timer of the wait's own call (``timer_started``,
kind ``signal_timeout``). Whichever the log records first ends the wait: a
signal (``signal_received``; the timer is dropped, ``timer_cancelled``) or
the timer (``timer_fired``; the wait raises ``SignalTimeout``, a
``TimeoutError`` as Temporal's ``wait_condition(timeout=)`` raises
``asyncio.TimeoutError``). Replay reads which; a signal sent after the
timeout stays pending for a later wait. The kill -9 test with real
processes is in test_signal_processes.py.
"""

from __future__ import annotations

import math
import threading
import time
from typing import Any

import pytest

from actors import (
    CancellationError,
    InvalidArgument,
    InvalidArgumentType,
    RunState,
    SignalTimeout,
    WorkflowFailed,
    get_context,
    shield,
    step,
    wait_for_signal,
    workflow,
)
from actors.testing import ProctorTestKit
from persistence import EventRecord, EventType
from tests.conftest import NOTES, gate, note, wait_for_event, wait_until

pytestmark = pytest.mark.timeout(60)

_E = EventType
TIMER_TYPES = (_E.TIMER_STARTED, _E.TIMER_FIRED, _E.TIMER_CANCELLED)


@step()
def held(key: str) -> str:
    """Blocks until the test opens the gate ``key`` (checking for a cancel)."""
    gate(f"{key}:started").set()
    ctx = get_context()
    deadline = time.monotonic() + 20
    while not gate(key).wait(0.001) and time.monotonic() < deadline:
        ctx.check_cancellation()
    return key


@workflow()
async def timed(seconds: float) -> object:
    """The payload, or ``"timed out"``."""
    try:
        return await wait_for_signal("approved", timeout=seconds)
    except SignalTimeout as exc:
        note("timeout", (exc.name, exc.timeout, isinstance(exc, TimeoutError)))
        return "timed out"


@workflow()
async def timed_then_waits(seconds: float) -> list[object]:
    """A timed wait, then an untimed one for the same name."""
    try:
        first: object = await wait_for_signal("approved", timeout=seconds)
    except SignalTimeout:
        first = "timed out"
    return [first, await wait_for_signal("approved")]


@workflow()
async def timed_then_held(key: str, seconds: float) -> object:
    """A timed wait, then a step the test holds (and may crash in)."""
    try:
        out: object = await wait_for_signal("approved", timeout=seconds)
    except SignalTimeout:
        out = "timed out"
    await held(key)
    return out


def timer_log(log: list[EventRecord]) -> list[tuple[str, int | None, str | None]]:
    return [(e.type.value, e.call, e.step) for e in log if e.type in TIMER_TYPES]


def of_type(log: list[EventRecord], type_: EventType) -> list[EventRecord]:
    return [e for e in log if e.type is type_]


# -- live ----------------------------------------------------------------------------------


def test_B5_a_timed_wait_times_out_at_its_due_time_on_the_virtual_clock(
    proctor: ProctorTestKit,
) -> None:
    rt, clock = proctor.runtime, proctor.clock
    run = rt.start(timed, 60)
    wait_for_event(rt, run.run_id, _E.TIMER_STARTED)
    started = of_type(rt.events(run.run_id), _E.TIMER_STARTED)[0]
    assert (started.call, started.step, started.data["seconds"]) == (0, "signal_timeout", 60)
    clock.advance(59)
    time.sleep(0.05)  # not a wait for an event: proof that nothing fires early
    assert rt.get_run(run.run_id).status is RunState.RUNNING
    clock.advance(1)
    assert run.result(timeout=10) == "timed out"
    assert NOTES["timeout"] == [("approved", 60.0, True)]
    log = rt.events(run.run_id)
    assert timer_log(log) == [
        ("timer_started", 0, "signal_timeout"),
        ("timer_fired", 0, "signal_timeout"),
    ]
    assert of_type(log, _E.SIGNAL_RECEIVED) == []


def test_B5_an_uncaught_signal_timeout_fails_the_run_naming_it(proctor: ProctorTestKit) -> None:
    @workflow()
    async def wf() -> object:
        return await wait_for_signal("approved", timeout=5)

    run = proctor.runtime.start(wf)
    wait_for_event(proctor.runtime, run.run_id, _E.TIMER_STARTED)
    proctor.clock.advance(5)
    with pytest.raises(WorkflowFailed, match="SignalTimeout"):
        run.result(timeout=10)


def test_B5_a_signal_before_the_deadline_ends_the_wait_and_drops_its_timer(
    proctor: ProctorTestKit,
) -> None:
    rt, clock = proctor.runtime, proctor.clock
    run = rt.start(timed, 60)
    wait_for_event(rt, run.run_id, _E.TIMER_STARTED)
    rt.signal(run.run_id, "approved", {"ok": True})
    assert run.result(timeout=10) == {"ok": True}
    clock.advance(120)  # the dropped timer never fires
    time.sleep(0.05)
    log = rt.events(run.run_id)
    assert timer_log(log) == [
        ("timer_started", 0, "signal_timeout"),
        ("timer_cancelled", 0, "signal_timeout"),
    ]
    assert len(of_type(log, _E.SIGNAL_RECEIVED)) == 1


def test_B5_a_signal_after_the_timeout_stays_pending_for_a_later_wait(
    proctor: ProctorTestKit,
) -> None:
    rt, clock = proctor.runtime, proctor.clock
    run = rt.start(timed_then_waits, 30)
    wait_for_event(rt, run.run_id, _E.TIMER_STARTED)
    clock.advance(30)
    wait_for_event(rt, run.run_id, _E.TIMER_FIRED)
    rt.signal(run.run_id, "approved", "late")
    assert run.result(timeout=10) == ["timed out", "late"]
    received = of_type(rt.events(run.run_id), _E.SIGNAL_RECEIVED)
    assert [e.call for e in received] == [1]  # taken by the second wait, not the first


def test_B5_timeout_0_takes_a_pending_signal_or_times_out_at_once(
    proctor: ProctorTestKit,
) -> None:
    rt = proctor.runtime

    @workflow()
    async def wf() -> list[object]:
        got = []
        for _ in range(2):
            try:
                got.append(await wait_for_signal("approved", timeout=0))
            except SignalTimeout:
                got.append("timed out")
        return got

    run = rt.start(wf)
    # The clock never moves: a zero timeout needs no advance.
    assert run.result(timeout=10) == ["timed out", "timed out"]
    assert timer_log(rt.events(run.run_id)) == [
        ("timer_started", 0, "signal_timeout"),
        ("timer_fired", 0, "signal_timeout"),
        ("timer_started", 1, "signal_timeout"),
        ("timer_fired", 1, "signal_timeout"),
    ]

    @workflow()
    async def after_one(key: str) -> object:
        await held(key)
        return await wait_for_signal("approved", timeout=0)

    run = rt.start(after_one, "t0b")
    assert gate("t0b:started").wait(10)
    rt.signal(run.run_id, "approved", "pending")  # sent before the wait
    gate("t0b").set()
    assert run.result(timeout=10) == "pending"
    assert timer_log(rt.events(run.run_id)) == []  # a pending signal needs no timer


def test_B5_a_cancel_during_a_timed_wait_raises_at_once_and_drops_the_timer(
    proctor: ProctorTestKit,
) -> None:
    rt, clock = proctor.runtime, proctor.clock

    @workflow()
    async def wf() -> object:
        try:
            return await wait_for_signal("approved", timeout=3600)
        except CancellationError as exc:
            note("cancelled", exc.reason)
            raise

    run = rt.start(wf)
    wait_for_event(rt, run.run_id, _E.TIMER_STARTED)
    rt.cancel(run.run_id, "stop")
    assert run.wait_finished(timeout=10).status is RunState.CANCELLED  # no clock advance
    assert NOTES["cancelled"] == ["stop"]
    clock.advance(7200)
    time.sleep(0.05)
    assert timer_log(rt.events(run.run_id)) == [
        ("timer_started", 0, "signal_timeout"),
        ("timer_cancelled", 0, "signal_timeout"),
    ]


def test_B5_a_timed_wait_in_a_shield_keeps_its_timer_through_a_cancel(
    proctor: ProctorTestKit,
) -> None:
    rt, clock = proctor.runtime, proctor.clock

    @workflow()
    async def wf() -> object:
        with shield():
            try:
                await wait_for_signal("approved", timeout=60)
            except SignalTimeout:
                note("shielded", "timed out")
        await wait_for_signal("other")  # a checkpoint: the buffered cancel is met here
        return "unreachable"

    run = rt.start(wf)
    wait_for_event(rt, run.run_id, _E.TIMER_STARTED)
    rt.cancel(run.run_id, "stop")
    wait_for_event(rt, run.run_id, _E.CANCEL_BUFFERED)
    clock.advance(60)
    assert run.wait_finished(timeout=10).status is RunState.CANCELLED
    assert NOTES["shielded"] == ["timed out"]


@pytest.mark.parametrize(
    ("timeout", "error"),
    [
        (-1, InvalidArgument),
        (math.nan, InvalidArgument),
        (math.inf, InvalidArgument),
        (True, InvalidArgumentType),
        ("5", InvalidArgumentType),
    ],
)
def test_B5_bad_timeouts_are_clear_errors_and_record_nothing(
    proctor: ProctorTestKit, timeout: Any, error: type[Exception]
) -> None:
    with pytest.raises(error, match=r"wait_for_signal\(timeout\)"):
        wait_for_signal("approved", timeout=timeout)

    @workflow()
    async def wf() -> object:
        return await wait_for_signal("approved", timeout=timeout)

    run = proctor.runtime.start(wf)
    with pytest.raises(WorkflowFailed, match=error.__name__):
        run.result(timeout=10)
    types = {e.type for e in proctor.runtime.events(run.run_id)}
    assert not types & {_E.SIGNAL_WAITING, _E.TIMER_STARTED}


# -- durability (D2) ---------------------------------------------------------------------


def test_B5_D2_a_timed_out_wait_replays_as_timed_out_though_a_signal_came_meanwhile(
    proctor: ProctorTestKit,
) -> None:
    rt, clock = proctor.runtime, proctor.clock
    crashed = proctor.crash_after(_E.TIMER_FIRED)
    run = rt.start(timed_then_waits, 30)
    wait_for_event(rt, run.run_id, _E.TIMER_STARTED)
    clock.advance(30)
    assert crashed.wait(10)
    second = proctor.restart()
    second.signal(run.run_id, "approved", "after")
    assert second.handle(run.run_id).result(timeout=10) == ["timed out", "after"]
    log = second.events(run.run_id)
    assert [e.type for e in log].count(_E.TIMER_FIRED) == 1
    assert [e.call for e in of_type(log, _E.SIGNAL_RECEIVED)] == [1]


def test_B5_D2_a_wait_that_took_its_signal_replays_with_it_and_its_timer_never_fires(
    proctor: ProctorTestKit,
) -> None:
    rt, clock = proctor.runtime, proctor.clock
    run = rt.start(timed_then_held, "took", 60)
    wait_for_event(rt, run.run_id, _E.TIMER_STARTED)
    rt.signal(run.run_id, "approved", "yes")
    assert gate("took:started").wait(10)
    gate("took:started").clear()
    second = proctor.restart()
    clock.advance(120)
    assert gate("took:started").wait(10)  # the lost step runs again
    gate("took").set()
    assert second.handle(run.run_id).result(timeout=10) == "yes"
    assert timer_log(second.events(run.run_id)) == [
        ("timer_started", 0, "signal_timeout"),
        ("timer_cancelled", 0, "signal_timeout"),
    ]


def test_B5_D2_an_unfired_timeout_resumes_at_its_original_due_time(
    proctor: ProctorTestKit,
) -> None:
    rt, clock = proctor.runtime, proctor.clock
    run = rt.start(timed, 3600)
    wait_for_event(rt, run.run_id, _E.TIMER_STARTED)
    clock.advance(1800)
    second = proctor.restart()
    wait_for_event(second, run.run_id, _E.RUN_RESUMED)
    clock.advance(1799)
    time.sleep(0.05)
    assert second.get_run(run.run_id).status is RunState.RUNNING
    clock.advance(1)  # the rest of the hour, not a new hour
    assert second.handle(run.run_id).result(timeout=10) == "timed out"
    log = second.events(run.run_id)
    assert [e.type for e in log].count(_E.TIMER_STARTED) == 1  # not timed again


def test_B5_D2_a_signal_at_the_deadline_decides_once_and_replay_keeps_the_decision(
    proctor: ProctorTestKit,
) -> None:
    """The signal and the timer race; the first recorded wins, live and on replay."""
    rt, clock = proctor.runtime, proctor.clock
    key = f"race{len(NOTES)}{time.monotonic_ns()}"
    run = rt.start(timed_then_held, key, 10)
    wait_for_event(rt, run.run_id, _E.TIMER_STARTED)
    sender = threading.Thread(target=rt.signal, args=(run.run_id, "approved", "sig"))
    sender.start()
    clock.advance(10)
    sender.join(10)
    assert gate(f"{key}:started").wait(10)
    log = rt.events(run.run_id)
    took = of_type(log, _E.SIGNAL_RECEIVED)
    fired = of_type(log, _E.TIMER_FIRED)
    assert len(took) + len(fired) == 1, timer_log(log)  # exactly one decided the wait
    expected = "sig" if took else "timed out"

    gate(f"{key}:started").clear()
    second = proctor.restart()
    assert gate(f"{key}:started").wait(10)
    gate(key).set()
    assert second.handle(run.run_id).result(timeout=10) == expected
    after = second.events(run.run_id)
    assert len(of_type(after, _E.SIGNAL_RECEIVED)) == len(took)
    assert len(of_type(after, _E.TIMER_FIRED)) == len(fired)
    wait_until(lambda: second.get_run(run.run_id).status.is_terminal, timeout=10)
