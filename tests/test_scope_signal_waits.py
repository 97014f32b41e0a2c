"""B3 + B5: a cancel scope's cancel wakes a signal wait suspended inside it.

Trio: every checkpoint inside a cancelled scope raises, a blocked one at
once (``trio.CancelScope``; Temporal's ``workflow.wait_condition`` inside a
cancelled scope raises as well). So ``with move_on_after(5): await
wait_for_signal("x")`` leaves the block when the deadline passes, as the
run's own cancel wakes a wait (C3): the scope's ``scope_cancelled`` names
the wait's checkpoint, so a replay after a crash meets it at that wait,
before it looks at signals (D2); a signal sent after stays pending for a
later wait. A wait behind a shield inside the scope is not woken (S1).
Virtual time (``FakeClock``) throughout.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from actors import (
    CancelScope,
    Client,
    DeadlineExceeded,
    EventType,
    RunState,
    fail_after,
    move_on_after,
    step,
    wait_for_signal,
    workflow,
)
from actors.testing import ProctorTestKit
from persistence import EventRecord
from tests.conftest import NOTES, note, wait_for_event, wait_until

pytestmark = pytest.mark.timeout(30)

_E = EventType


@step()
def sw_mark(key: str, value: Any) -> Any:
    note(key, value)
    return value


@workflow()
async def sw_moves_on(key: str) -> list[Any]:
    """A wait in ``move_on_after(5)``, a step, then a wait for the same name."""
    with move_on_after(5) as scope:
        got = await wait_for_signal("x")
        note(f"{key}:unreached", got)
    await sw_mark(f"{key}:after", "went on")
    return [scope.cancelled_caught, await wait_for_signal("x")]


@workflow()
async def sw_fails_after(key: str) -> str:
    try:
        with fail_after(5):
            await wait_for_signal("x")
    except DeadlineExceeded as exc:
        return type(exc).__name__
    return "unreached"


@workflow()
async def sw_outer_deadline(key: str) -> list[Any]:
    """The outer scope's deadline wakes a wait in an inner scope it does not shield."""
    with move_on_after(5) as outer, CancelScope() as inner:
        await wait_for_signal("x")
    return [outer.cancelled_caught, inner.cancelled_caught]


@workflow()
async def sw_shielded(key: str) -> list[Any]:
    """A wait behind a shield inside the scope: the deadline does not wake it."""
    with move_on_after(5) as scope:
        with CancelScope(shield=True):
            got = await wait_for_signal("x")
        note(f"{key}:got", got)
        await sw_mark(f"{key}:after-shield", True)  # meets the scope's cancel here
        note(f"{key}:unreached", True)
    return [scope.cancelled_caught, got]


def of_type(log: list[EventRecord], type_: EventType) -> list[EventRecord]:
    return [e for e in log if e.type is type_]


def test_B3_B5_move_on_after_leaves_a_signal_wait_at_its_deadline_and_the_run_goes_on(
    proctor: ProctorTestKit,
) -> None:
    rt, clock = proctor.runtime, proctor.clock
    key = "moves-on"
    run = rt.start(sw_moves_on, key)
    wait_for_event(rt, run.run_id, _E.SIGNAL_WAITING)
    clock.advance(5)
    wait_until(lambda: len(of_type(rt.events(run.run_id), _E.SIGNAL_WAITING)) == 2)
    assert NOTES[f"{key}:after"] == ["went on"]
    rt.signal(run.run_id, "x", "late")  # sent after the deadline: the later wait takes it
    assert run.result(timeout=10) == [True, "late"]
    assert f"{key}:unreached" not in NOTES
    log = rt.events(run.run_id)
    waits = of_type(log, _E.SIGNAL_WAITING)
    (cancelled,) = of_type(log, _E.SCOPE_CANCELLED)
    assert cancelled.data["cause"] == "deadline"
    assert [e.call for e in of_type(log, _E.SIGNAL_RECEIVED)] == [waits[1].call]
    assert rt.get_run(run.run_id).status is RunState.COMPLETED


def test_B3_B5_fail_after_around_a_signal_wait_raises_DeadlineExceeded(
    proctor: ProctorTestKit,
) -> None:
    rt, clock = proctor.runtime, proctor.clock
    run = rt.start(sw_fails_after, "fails")
    wait_for_event(rt, run.run_id, _E.SIGNAL_WAITING)
    clock.advance(5)
    assert run.result(timeout=10) == "DeadlineExceeded"


def test_B3_B5_an_outer_scopes_deadline_wakes_a_wait_in_an_inner_scope(
    proctor: ProctorTestKit,
) -> None:
    rt, clock = proctor.runtime, proctor.clock
    run = rt.start(sw_outer_deadline, "outer")
    wait_for_event(rt, run.run_id, _E.SIGNAL_WAITING)
    clock.advance(5)
    assert run.result(timeout=10) == [True, False]  # only the outer scope catches it


def test_B3_B5_S1_a_wait_behind_a_shield_in_the_scope_is_not_woken(
    proctor: ProctorTestKit,
) -> None:
    rt, clock = proctor.runtime, proctor.clock
    key = "shielded"
    run = rt.start(sw_shielded, key)
    wait_for_event(rt, run.run_id, _E.SIGNAL_WAITING)
    clock.advance(5)
    wait_for_event(rt, run.run_id, _E.SCOPE_CANCELLED)
    assert rt.get_run(run.run_id).status is RunState.RUNNING
    assert f"{key}:got" not in NOTES  # still waiting behind its shield
    rt.signal(run.run_id, "x", "in time")
    assert run.result(timeout=10) == [True, "in time"]
    assert NOTES[f"{key}:got"] == ["in time"]
    assert f"{key}:unreached" not in NOTES


def test_B3_B5_D2_a_deadline_that_woke_a_wait_replays_the_same_though_a_signal_came(
    proctor: ProctorTestKit,
) -> None:
    rt, clock = proctor.runtime, proctor.clock
    key = "replayed"
    crashed = proctor.crash_after(_E.SCOPE_CANCELLED)
    run = rt.start(sw_moves_on, key)
    wait_for_event(rt, run.run_id, _E.SIGNAL_WAITING)
    clock.advance(5)
    assert crashed.wait(10)
    proctor.runtime.kill()  # as kill -9: no runtime hosts the run now
    with Client(proctor.db) as client:
        client.signal(run.run_id, "x", "after the deadline")  # in the log before replay
    second = proctor.restart()
    assert second.handle(run.run_id).result(timeout=10) == [True, "after the deadline"]
    log = second.events(run.run_id)
    assert len(of_type(log, _E.SCOPE_CANCELLED)) == 1
    (first_wait,) = of_type(log, _E.SIGNAL_WAITING)  # the later wait found it pending
    (received,) = of_type(log, _E.SIGNAL_RECEIVED)
    assert received.call is not None
    assert first_wait.call is not None
    assert received.call > first_wait.call  # taken by the later wait, not the woken one
    assert f"{key}:unreached" not in NOTES
    assert NOTES[f"{key}:after"] == ["went on"]


def test_B3_B5_D2_a_crash_after_the_block_replays_the_woken_wait_from_its_records(
    proctor: ProctorTestKit, db: Path
) -> None:
    rt, clock = proctor.runtime, proctor.clock
    key = "after-block"
    crashed = proctor.crash_after(_E.STEP_COMPLETED, step=sw_mark)
    run = rt.start(sw_moves_on, key)
    wait_for_event(rt, run.run_id, _E.SIGNAL_WAITING)
    clock.advance(5)
    assert crashed.wait(10)
    second = proctor.restart()
    wait_until(lambda: len(of_type(second.events(run.run_id), _E.SIGNAL_WAITING)) == 2)
    second.signal(run.run_id, "x", "later")
    assert second.handle(run.run_id).result(timeout=10) == [True, "later"]
    log = second.events(run.run_id)
    assert len(of_type(log, _E.SCOPE_CANCELLED)) == 1
    assert f"{key}:unreached" not in NOTES
