"""B1: durable sleep in a workflow body, in one process (virtual and real time).

``await sleep(s)`` / ``await sleep_until(t)`` is a call of the body on a
durable timer: recorded (``timer_started`` with its UTC due instant,
``timer_fired``), a checkpoint (C2, C3: a cancel raises there at once and
drops the timer, ``timer_cancelled``), shielded by ``shield()`` (S1, S2),
ended by a terminate (T2), resumed by replay at its original instant (D2,
D3). The kill -9 tests with real processes are in test_sleep_processes.py.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import re
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from actors import (
    CancellationError,
    FakeClock,
    InvalidArgument,
    InvalidArgumentType,
    NonDeterminismError,
    ProctorError,
    RunState,
    Runtime,
    WorkflowFailed,
    gather,
    shield,
    sleep,
    sleep_until,
    step,
    workflow,
)
from actors.testing import ProctorTestKit
from cli import cli as cli_group
from persistence import EventRecord, EventType, cancel_request, open_store
from tests.conftest import NOTES, events_of, note, open_rt, wait_for_event, wait_until

pytestmark = pytest.mark.timeout(60)

HOUR = 3600.0


@step()
def noted(key: str) -> str:
    note(key, "ran")
    return key


@workflow()
async def naps(key: str, seconds: float) -> str:
    await noted(f"{key}.before")
    await sleep(seconds)
    return await noted(f"{key}.after")


@workflow()
async def naps_then_notes(key: str) -> str:
    await sleep(HOUR)
    return await noted(key)


@workflow()
async def naps_in_a_shield(key: str) -> str:
    async with shield():
        await sleep(60)
        note(key, "slept")
    return await noted(f"{key}.after")


@workflow()
async def naps_twice(key: str) -> str:
    try:
        await sleep(HOUR)
    except CancellationError:
        note(key, "first cancelled")
        await sleep(10)  # C3: still cancelling, so this raises at once too
    return key


@workflow()
async def naps_until(key: str, when: float) -> str:
    await sleep_until(dt.datetime.fromtimestamp(when, dt.UTC))
    return key


def timers(events: list[EventRecord]) -> list[tuple[str, int | None]]:
    return [(e.type.value, e.call) for e in events if e.type.value.startswith("timer_")]


def types(events: list[EventRecord]) -> list[str]:
    return [e.type.value for e in events]


# -- virtual time -------------------------------------------------------------------------


def test_B1_the_virtual_clock_fires_a_one_hour_sleep_at_its_due_time(
    proctor: ProctorTestKit,
) -> None:
    rt, clock = proctor.runtime, proctor.clock
    asked_at = clock.time()
    run = rt.start(naps, "vc", HOUR)
    wait_for_event(rt, run.run_id, EventType.TIMER_STARTED)
    started = next(e for e in rt.events(run.run_id) if e.type.value == "timer_started")
    assert started.call == 1
    assert started.step == "sleep"
    assert started.data["seconds"] == HOUR
    assert asked_at + HOUR <= started.data["due_at"] <= clock.time() + HOUR
    assert rt.get_run(run.run_id).status is RunState.RUNNING

    clock.advance(HOUR)
    assert run.result(timeout=10) == "vc.after"
    assert timers(rt.events(run.run_id)) == [("timer_started", 1), ("timer_fired", 1)]


def test_B1_sleep_until_an_aware_datetime_fires_at_that_instant(proctor: ProctorTestKit) -> None:
    rt, clock = proctor.runtime, proctor.clock
    when = clock.time() + 90
    run = rt.start(naps_until, "until", when)
    wait_for_event(rt, run.run_id, EventType.TIMER_STARTED)
    started = next(e for e in rt.events(run.run_id) if e.type.value == "timer_started")
    assert started.data["due_at"] == pytest.approx(when)
    assert started.data["seconds"] is None
    clock.advance(91)  # a datetime holds microseconds: the instant may round up
    assert run.result(timeout=10) == "until"


def test_B1_sleep_until_an_instant_already_passed_fires_at_once(proctor: ProctorTestKit) -> None:
    rt = proctor.runtime
    run = rt.start(naps_until, "past", proctor.clock.time() - HOUR)
    assert run.result(timeout=10) == "past"  # the clock never moved
    assert timers(rt.events(run.run_id)) == [("timer_started", 0), ("timer_fired", 0)]


def test_B1_D2_a_fired_sleep_replays_without_waiting(proctor: ProctorTestKit) -> None:
    rt, clock = proctor.runtime, proctor.clock
    # Nothing is recorded after the group of timer_fired (which holds the
    # next step's start, D1): the step runs again on resume, the sleep not.
    crashed = proctor.crash_after(EventType.TIMER_FIRED)
    run = rt.start(naps_then_notes, "replay")
    wait_for_event(rt, run.run_id, EventType.TIMER_STARTED)
    clock.advance(HOUR)
    assert crashed.wait(10)

    second = proctor.restart()  # as kill -9; the clock does not move again
    assert second.handle(run.run_id).result(timeout=10) == "replay"
    log = second.events(run.run_id)
    assert timers(log) == [("timer_started", 0), ("timer_fired", 0)]
    after_resume = types(log)[types(log).index("run_resumed") :]
    assert not [t for t in after_resume if t.startswith("timer_")]  # nothing timed again


def test_B1_D2_an_unfired_sleep_resumes_at_its_original_due_time(proctor: ProctorTestKit) -> None:
    rt, clock = proctor.runtime, proctor.clock
    run = rt.start(naps, "resume", HOUR)
    wait_for_event(rt, run.run_id, EventType.TIMER_STARTED)
    clock.advance(HOUR / 2)

    second = proctor.restart()
    wait_for_event(second, run.run_id, EventType.RUN_RESUMED)
    clock.advance(HOUR / 2)  # the rest of the hour, not a new hour
    assert second.handle(run.run_id).result(timeout=10) == "resume.after"
    log = second.events(run.run_id)
    assert timers(log) == [("timer_started", 1), ("timer_fired", 1)]
    assert NOTES["resume.before"] == ["ran"]


def test_B1_D2_a_sleep_due_while_no_runtime_was_alive_fires_at_once_on_resume(
    runtimes: list[Runtime], db: Path
) -> None:
    clock = FakeClock()
    first = open_rt(runtimes, db, clock=clock)
    run = first.start(naps, "late", HOUR)
    wait_for_event(first, run.run_id, EventType.TIMER_STARTED)
    first.kill()
    clock.advance(2 * HOUR)  # nobody hosts the run while its timer comes due

    second = open_rt(runtimes, db, clock=clock)
    assert second.handle(run.run_id).result(timeout=10) == "late.after"  # no advance needed
    assert timers(second.events(run.run_id)) == [("timer_started", 1), ("timer_fired", 1)]


def test_B1_D3_a_cancel_recorded_while_no_runtime_was_alive_ends_the_sleep_on_resume(
    runtimes: list[Runtime], db: Path
) -> None:
    clock = FakeClock()
    first = open_rt(runtimes, db, clock=clock)
    run = first.start(naps, "d3", HOUR)
    wait_for_event(first, run.run_id, EventType.TIMER_STARTED)
    first.kill()
    with open_store(db) as store:
        store.append([cancel_request(run.run_id, "while down", source="cli")])

    second = open_rt(runtimes, db, clock=clock)  # the clock never moves
    wait_until(lambda: second.get_run(run.run_id).status is RunState.CANCELLED)
    log = types(second.events(run.run_id))
    assert log[log.index("run_resumed") :][-3:] == [
        "timer_cancelled",
        "cancel_delivered",
        "run_cancelled",
    ]
    assert "timer_fired" not in log
    assert "d3.after" not in NOTES


@workflow()
async def naps_then_cleans_up(key: str) -> str:
    try:
        await sleep(HOUR)
    except CancellationError:
        async with shield():
            await noted(f"{key}.cleanup")
        raise
    return key


def test_B1_D2_a_cancel_met_in_a_sleep_replays_at_the_same_checkpoint(
    proctor: ProctorTestKit,
) -> None:
    rt = proctor.runtime
    crashed = proctor.crash_after(EventType.STEP_STARTED)  # the cleanup step's start
    run = rt.start(naps_then_cleans_up, "again")
    wait_for_event(rt, run.run_id, EventType.TIMER_STARTED)
    rt.cancel(run.run_id, reason="stop")
    assert crashed.wait(10)

    second = proctor.restart()  # replays: the sleep meets the cancel again, from the log
    wait_until(lambda: second.get_run(run.run_id).status is RunState.CANCELLED)
    log = types(second.events(run.run_id))
    for once in ("timer_started", "timer_cancelled", "cancel_delivered", "shield_entered"):
        assert log.count(once) == 1, log
    assert "timer_fired" not in log
    assert "step_reexecuted" in log  # the cleanup, lost with the first runtime, ran again


# -- cancel, shield, terminate ----------------------------------------------------------------


def test_B1_C2_a_cancel_during_a_one_hour_sleep_ends_the_run_in_milliseconds(
    rt: Runtime,
) -> None:
    run = rt.start(naps, "c2", HOUR)
    wait_for_event(rt, run.run_id, EventType.TIMER_STARTED)
    began = time.monotonic()
    result = rt.cancel(run.run_id, reason="no time", wait=True, timeout=5)
    took = time.monotonic() - began
    assert result.status is RunState.CANCELLED
    assert took < 5  # generous; the point is that it does not wait out the hour
    log = events_of(rt, run.run_id)
    assert types(log)[-4:] == [
        "cancel_requested",
        "timer_cancelled",
        "cancel_delivered",
        "run_cancelled",
    ]
    cancelled = next(e for e in log if e.type.value == "timer_cancelled")
    assert (cancelled.call, cancelled.step, cancelled.data["reason"]) == (1, "sleep", "no time")
    assert "c2.after" not in NOTES


def test_B1_C3_a_sleep_while_cancelling_raises_at_once_and_starts_no_timer(
    proctor: ProctorTestKit,
) -> None:
    rt = proctor.runtime
    run = rt.start(naps_twice, "c3")
    wait_for_event(rt, run.run_id, EventType.TIMER_STARTED)
    rt.cancel(run.run_id, reason="stop")
    wait_until(lambda: rt.get_run(run.run_id).status is RunState.CANCELLED)
    assert NOTES["c3"] == ["first cancelled"]
    assert timers(rt.events(run.run_id)) == [("timer_started", 0), ("timer_cancelled", 0)]


def test_B1_S1_a_sleep_in_a_shield_is_not_interrupted_and_the_cancel_is_met_after(
    proctor: ProctorTestKit,
) -> None:
    rt, clock = proctor.runtime, proctor.clock
    run = rt.start(naps_in_a_shield, "s1")
    wait_for_event(rt, run.run_id, EventType.TIMER_STARTED)
    rt.cancel(run.run_id, reason="later")
    wait_for_event(rt, run.run_id, EventType.CANCEL_BUFFERED)
    assert rt.get_run(run.run_id).status is RunState.CANCELLING
    assert "timer_cancelled" not in types(rt.events(run.run_id))

    clock.advance(60)
    wait_until(lambda: rt.get_run(run.run_id).status is RunState.CANCELLED)
    assert NOTES["s1"] == ["slept"]
    assert "s1.after" not in NOTES  # S2: met at the first checkpoint after the shield
    tail = types(rt.events(run.run_id))
    assert tail[tail.index("timer_fired") :] == [
        "timer_fired",
        "shield_exited",
        "cancel_delivered",
        "run_cancelled",
    ]


def test_B1_T2_a_terminate_during_a_sleep_ends_the_run_and_its_timer(
    proctor: ProctorTestKit,
) -> None:
    rt, clock = proctor.runtime, proctor.clock
    run = rt.start(naps, "t2", HOUR)
    wait_for_event(rt, run.run_id, EventType.TIMER_STARTED)
    rt.terminate(run.run_id, reason="now")
    wait_until(lambda: rt.get_run(run.run_id).status is RunState.TERMINATED)
    clock.advance(2 * HOUR)
    # The timer was released with the run's supervisor: nothing fires later.
    second = rt.start(naps, "t2-probe", 1)
    wait_for_event(rt, second.run_id, EventType.TIMER_STARTED)
    clock.advance(1)
    assert second.result(timeout=10) == "t2-probe.after"
    log = types(rt.events(run.run_id))
    assert log[-1] == "run_terminated"
    assert "timer_fired" not in log
    assert "cancel_delivered" not in log
    assert "t2.after" not in NOTES


@workflow()
async def parent_of_a_napper(key: str) -> str:
    return await naps(key, HOUR)


def test_B1_C7_a_cancel_of_the_parent_ends_a_childs_sleep_at_once(rt: Runtime) -> None:
    run = rt.start(parent_of_a_napper, "c7")
    child = f"{run.run_id}.0"
    wait_until(
        lambda: (
            any(e.type is EventType.TIMER_STARTED for e in events_of(rt, child))
            if rt.list_runs(parent_run_id=run.run_id)
            else False
        )
    )
    result = rt.cancel(run.run_id, reason="parent says stop", wait=True, timeout=5)
    assert result.status is RunState.CANCELLED
    assert rt.get_run(child).status is RunState.CANCELLED
    assert timers(events_of(rt, child)) == [("timer_started", 1), ("timer_cancelled", 1)]


# -- bad input, and where sleep may be used ------------------------------------------------------


@workflow()
async def bad_sleep(kind: str) -> str:
    args: dict[str, Any] = {
        "negative": -1,
        "nan": math.nan,
        "inf": math.inf,
        "text": "10",
        "bool": True,
        "none": None,
    }
    try:
        if kind == "naive":
            sleep_until(dt.datetime(2030, 1, 1))  # naive: the point
        elif kind == "not a datetime":
            sleep_until("2030-01-01T00:00:00Z")  # type: ignore[arg-type]
        else:
            sleep(args[kind])
    except (InvalidArgument, InvalidArgumentType) as exc:
        return f"{type(exc).__name__}: {exc}"
    return "accepted"


@pytest.mark.parametrize(
    ("kind", "error"),
    [
        ("negative", "InvalidArgument: sleep(seconds) must be at least 0"),
        ("nan", "InvalidArgument: sleep(seconds)"),
        ("inf", "InvalidArgument: sleep(seconds)"),
        ("text", "InvalidArgumentType: sleep(seconds)"),
        ("bool", "InvalidArgumentType: sleep(seconds)"),
        ("none", "InvalidArgumentType: sleep(seconds)"),
        ("naive", "InvalidArgument: sleep_until(when) needs a timezone-aware datetime"),
        ("not a datetime", "InvalidArgumentType: sleep_until(when) needs"),
    ],
)
def test_B1_bad_sleep_arguments_are_a_clear_error_at_the_call(
    proctor: ProctorTestKit, kind: str, error: str
) -> None:
    rt = proctor.runtime
    run = rt.start(bad_sleep, kind)
    assert run.result(timeout=10).startswith(error)
    assert timers(rt.events(run.run_id)) == []  # nothing recorded for it


def test_B1_sleep_outside_a_workflow_body_is_a_clear_error() -> None:
    with pytest.raises(ProctorError, match=r"sleep\(\) was called outside a workflow body"):
        sleep(1)
    with pytest.raises(ProctorError, match=r"sleep_until\(\) was called outside"):
        sleep_until(dt.datetime.now(dt.UTC))


@step()
def sleeps_in_a_step() -> str:
    try:
        sleep(1)
    except ProctorError as exc:
        return str(exc)
    return "accepted"


@workflow()
async def calls_sleeping_step() -> str:
    return await sleeps_in_a_step()


def test_B1_sleep_in_a_step_is_a_clear_error(proctor: ProctorTestKit) -> None:
    run = proctor.runtime.start(calls_sleeping_step)
    assert run.result(timeout=10).startswith("sleep() was called in a step")


@workflow()
async def gathers_a_sleep() -> str:
    try:
        gather(noted("g"), sleep(1))  # type: ignore[arg-type]
    except InvalidArgumentType as exc:
        return str(exc)
    return "accepted"


def test_B1_gather_of_a_sleep_is_a_clear_error(proctor: ProctorTestKit) -> None:
    run = proctor.runtime.start(gathers_a_sleep)
    assert run.result(timeout=10).startswith("gather() takes step calls and child workflow calls")


# -- replay checks the sleep like any call ----------------------------------------------------

_SHAPE: dict[str, str] = {"now": "sleep"}


@workflow(name="tests.test_sleep.changes_shape")
async def changes_shape(key: str) -> str:
    if _SHAPE["now"] == "sleep":
        await sleep(HOUR)
    else:
        await noted(key)
    return key


def test_B1_D2_replay_of_a_sleep_that_became_a_step_is_a_divergence(
    proctor: ProctorTestKit,
) -> None:
    rt = proctor.runtime
    run = rt.start(changes_shape, "shape")
    wait_for_event(rt, run.run_id, EventType.TIMER_STARTED)
    _SHAPE["now"] = "step"
    try:
        second = proctor.restart()
        with pytest.raises(WorkflowFailed) as failed:
            second.handle(run.run_id).result(timeout=10)
    finally:
        _SHAPE["now"] = "sleep"
    assert failed.value.error["type"] == NonDeterminismError.__name__
    assert "call 0 is step" in failed.value.error["message"]
    assert "the log has timer 'sleep'" in failed.value.error["message"]
    assert "shape" not in NOTES


def test_B1_a_sleep_is_numbered_like_a_step_so_calls_after_it_keep_their_ids(
    proctor: ProctorTestKit,
) -> None:
    rt, clock = proctor.runtime, proctor.clock
    run = rt.start(naps, "ids", 5)
    wait_for_event(rt, run.run_id, EventType.TIMER_STARTED)
    clock.advance(5)
    run.result(timeout=10)
    calls = [(e.type.value, e.call) for e in rt.events(run.run_id) if e.call is not None]
    assert [c for t, c in calls if t == "step_scheduled"] == [0, 2]
    assert [c for t, c in calls if t.startswith("timer_")] == [1, 1]


def test_B1_the_clock_reads_wall_time_for_due_instants() -> None:
    clock = FakeClock()
    wall = clock.time()
    assert abs(wall - time.time()) < 60
    clock.advance(HOUR)
    assert clock.time() == pytest.approx(wall + HOUR)
    assert threading.current_thread() is threading.main_thread()


# -- the CLI ------------------------------------------------------------------------------


def test_B1_runs_status_shows_a_pending_timer_and_runs_logs_its_events(
    proctor: ProctorTestKit,
) -> None:
    rt, clock = proctor.runtime, proctor.clock

    def cli(*args: str) -> str:
        result = CliRunner().invoke(cli_group, ["--db", str(proctor.db), "runs", *args])
        assert result.exit_code == 0, result.output
        return result.stdout

    run = rt.start(naps, "cli", HOUR)
    wait_for_event(rt, run.run_id, EventType.TIMER_STARTED)
    status = cli("status", run.run_id)
    assert re.search(
        r"timer\s+sleep #1 until \d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ \(in 59m\d\ds\)", status
    )
    pending = json.loads(cli("status", run.run_id, "--json"))["pending_timers"]
    assert [(t["call"], t["kind"], t["seconds"]) for t in pending] == [(1, "sleep", HOUR)]

    clock.advance(HOUR)
    run.result(timeout=10)
    assert "timer" not in cli("status", run.run_id)
    assert json.loads(cli("status", run.run_id, "--json"))["pending_timers"] == []
    logs = cli("logs", run.run_id)
    assert re.search(r"timer_started\s+sleep #1\s+due_at=\S+ due=\"\S+Z\" seconds=3600", logs)
    assert re.search(r"timer_fired\s+sleep #1", logs)

    cancelled = rt.start(naps, "cli-cancel", HOUR)
    wait_for_event(rt, cancelled.run_id, EventType.TIMER_STARTED)
    rt.cancel(cancelled.run_id, reason="not today", wait=True, timeout=10)
    assert re.search(
        r'timer_cancelled\s+sleep #1\s+reason="not today"', cli("logs", cancelled.run_id)
    )
