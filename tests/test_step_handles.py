"""B2: step handles (``start_step``) and cancelling one call through its handle.

Each of Temporal's three ``ActivityCancellationType`` modes is tried against
a step that checks (heartbeats), one that never checks, and one that
swallows the cancel; then child-run handles in each mode; then replay after
a crash, and bad input.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from actors import (
    CancellationError,
    CancellationType,
    EventType,
    InvalidArgumentType,
    ProctorError,
    RetryPolicy,
    RunCancelled,
    RunState,
    Runtime,
    StepFailed,
    get_context,
    shield,
    start_child,
    start_step,
    step,
    workflow,
)
from tests.cancellable_steps import heartbeating, never_checks, started, swallows
from tests.conftest import (
    NOTES,
    events_of,
    gate,
    note,
    open_rt,
    run_cli,
    steps_of,
    wait_for_event,
    wait_until,
)

pytestmark = pytest.mark.timeout(30)

_C = CancellationType


# -- steps ------------------------------------------------------------------------------


@step()
def hold(key: str) -> None:
    """Blocks the body until the test opens ``key`` (or the run is cancelled)."""
    ctx = get_context()
    while not gate(key).wait(0.001):
        ctx.check_cancellation()


@step()
def mark(key: str, value: Any) -> None:
    note(key, value)


@step()
def double(x: int) -> int:
    return 2 * x


@step()
def boom(x: int) -> int:
    raise ValueError(f"boom {x}")


KINDS = {"heartbeating": heartbeating, "never_checks": never_checks, "swallows": swallows}


async def _outcome(handle: Any) -> list[Any]:
    try:
        return ["value", await handle]
    except CancellationError as exc:
        return ["cancelled", exc.reason]


@workflow()
async def cancel_one(kind: str, mode: str, key: str) -> dict[str, Any]:
    """Starts the step under test and another; cancels only the first."""
    handle = start_step(KINDS[kind](key))
    other = start_step(double(21))
    await started(key)
    took = handle.cancel("enough", mode=CancellationType(mode))
    got = await _outcome(handle)
    await mark(f"{key}:got", got)
    await hold(f"{key}:release")  # the test waits here for the step's end record
    return {
        "took": took,
        "got": got,
        "again": await _outcome(handle),
        "other": await other,
        "cancelling": get_context().is_cancelling,
    }


#: (kind, mode) -> (what the await gives, how the step's attempt ends)
EXPECTED: dict[tuple[str, str], tuple[list[Any], str]] = {
    ("heartbeating", "try_cancel"): (["cancelled", "enough"], "cancelled"),
    ("heartbeating", "wait_cancellation_completed"): (["cancelled", "enough"], "cancelled"),
    ("heartbeating", "abandon"): (["cancelled", "enough"], "completed"),
    ("never_checks", "try_cancel"): (["cancelled", "enough"], "completed"),
    ("never_checks", "wait_cancellation_completed"): (["value", "{key}"], "completed"),
    ("never_checks", "abandon"): (["cancelled", "enough"], "completed"),
    ("swallows", "try_cancel"): (["cancelled", "enough"], "completed"),
    ("swallows", "wait_cancellation_completed"): (["value", "swallowed"], "completed"),
    ("swallows", "abandon"): (["cancelled", "enough"], "completed"),
}


def _drive_cancel_one(rt: Runtime, kind: str, mode: str, key: str) -> str:
    """Start cancel_one and play the test's part up to the body's release."""
    run_id = rt.start(cancel_one, kind, mode, key).run_id
    wait_until(lambda: gate(f"{key}:started").is_set())
    if mode != "wait_cancellation_completed":
        # The await gives CancellationError at once: while the step still runs.
        wait_until(lambda: f"{key}:got" in NOTES)
        if kind == "never_checks" or mode == "abandon":
            assert f"{key}:step" not in NOTES  # still running
            gate(key).set()
    else:
        wait_until(lambda: _types(rt, run_id).count("call_cancel_requested") == 1)
        if kind == "never_checks":
            assert f"{key}:got" not in NOTES  # the await waits for the step's end
            gate(key).set()
    wait_until(lambda: _step_status(rt, run_id, 0) not in ("running", None))
    return run_id


def _types(rt: Runtime, run_id: str) -> list[str]:
    return [e.type.value for e in events_of(rt, run_id)]


def _step_status(rt: Runtime, run_id: str, call: int) -> str | None:
    rows = [s for s in steps_of(rt, run_id) if s.call == call]
    return rows[-1].status.value if rows else None


@pytest.mark.parametrize(("kind", "mode"), sorted(EXPECTED))
def test_B2_each_mode_with_a_step_that_checks_never_checks_or_swallows(
    rt: Runtime, kind: str, mode: str
) -> None:
    key = f"{kind}-{mode}"
    run_id = _drive_cancel_one(rt, kind, mode, key)
    got, step_end = EXPECTED[(kind, mode)]
    got = [g.format(key=key) for g in got]
    gate(f"{key}:release").set()
    result = rt.handle(run_id).result(timeout=10)

    assert result == {
        "took": True,
        "got": got,
        "again": got,  # awaitable many times, the same outcome each time
        "other": 42,  # the other step is untouched
        "cancelling": False,  # the run is not cancelled by a handle's cancel
    }
    assert _step_status(rt, run_id, 0) == step_end
    log = events_of(rt, run_id)
    assert [e.type for e in log].count(EventType.CANCEL_REQUESTED) == 0
    assert rt.get_run(run_id).status is RunState.COMPLETED
    (asked,) = [e for e in log if e.type is EventType.CALL_CANCEL_REQUESTED]
    assert asked.data == {
        "call_id": 0,
        "kind": "step",
        "mode": mode,
        "reason": "enough",
        "ended": False,
    }
    if step_end == "completed" and got[0] == "cancelled":
        # The late result is recorded, and never returned.
        (done,) = [e for e in log if e.type is EventType.STEP_COMPLETED and e.call == 0]
        assert done.data["result"] in (key, "swallowed")


def test_B2_abandon_lets_the_body_go_on_while_the_step_keeps_running(rt: Runtime) -> None:
    """ABANDON: the step is never told, not even by the run's own cancel later."""
    key = "abandoned"
    run_id = rt.start(cancel_one, "heartbeating", "abandon", key).run_id
    wait_until(lambda: f"{key}:got" in NOTES)  # the body went on
    rt.cancel(run_id, "the whole run")
    wait_until(lambda: rt.get_run(run_id).status is RunState.CANCELLED)
    # The run's cancel reached the body, not the abandoned step: it was
    # abandoned with the run, unwinding (Terminated) at its next check.
    wait_until(lambda: f"{key}:step" in NOTES)
    assert NOTES[f"{key}:step"] == ["Terminated"]
    assert _step_status(rt, run_id, 0) == "abandoned"


# -- start_step: concurrency, order, and a handle never awaited ---------------------------


@workflow()
async def several(key: str) -> list[Any]:
    first = start_step(double(1))
    second = start_step(double(2))
    third = start_step(boom(3))
    out: list[Any] = [await second, await first]
    try:
        await third
    except StepFailed as exc:
        out.append(str(exc.error["message"]))
    return out


def test_B2_several_handles_run_at_once_and_are_awaited_in_any_order(rt: Runtime) -> None:
    assert rt.start(several, "s").result(timeout=10) == [4, 2, "boom 3"]


@step()
def meet(me: str, other: str) -> bool:
    """True only if the other step is running at the same time."""
    gate(f"{me}:started").set()
    return gate(f"{other}:started").wait(10)


@workflow()
async def together(key: str) -> list[bool]:
    first = start_step(meet(f"{key}.a", f"{key}.b"))
    second = start_step(meet(f"{key}.b", f"{key}.a"))
    return [await second, await first]


def test_B2_started_steps_run_concurrently(rt: Runtime) -> None:
    assert rt.start(together, "t").result(timeout=15) == [True, True]


@workflow()
async def forgets(key: str) -> str:
    start_step(heartbeating(key))
    await started(key)
    return "done"


def test_B2_a_handle_never_awaited_is_abandoned_when_the_body_ends(rt: Runtime) -> None:
    """Temporal: a workflow that completes leaves its activities to fail their
    next heartbeat; here the step is abandoned with the run, recorded."""
    run_id = rt.start(forgets, "forgotten").run_id
    assert rt.handle(run_id).result(timeout=10) == "done"
    wait_until(lambda: "forgotten:step" in NOTES)
    assert NOTES["forgotten:step"] == ["Terminated"]
    (abandoned,) = [e for e in events_of(rt, run_id) if e.type is EventType.STEP_ABANDONED]
    assert "not awaited" in abandoned.data["reason"]


@workflow()
async def cancels_late(key: str) -> list[Any]:
    handle = start_step(double(5))
    value = await handle
    return [value, handle.cancel("too late"), handle.cancel("again"), await handle]


def test_B2_cancelling_a_finished_handle_changes_nothing(rt: Runtime) -> None:
    run_id = rt.start(cancels_late, "x").run_id
    assert rt.handle(run_id).result(timeout=10) == [10, False, False, 10]
    asked = [e for e in events_of(rt, run_id) if e.type is EventType.CALL_CANCEL_REQUESTED]
    # C6's rule for a handle: a cancel that changes nothing is still in the log.
    assert [(e.data["reason"], e.data["ended"]) for e in asked] == [
        ("too late", True),
        ("again", True),
    ]


@step(retry=RetryPolicy(max_attempts=5, initial_interval=0.01))
def fails_after_cancel(key: str) -> str:
    gate(f"{key}:started").set()
    gate(key).wait(20)
    note(f"{key}:attempts", 1)
    raise ValueError("failed anyway")


@workflow()
async def cancel_then_fail(key: str) -> list[Any]:
    handle = start_step(fails_after_cancel(key))
    await started(key)
    handle.cancel("stop", mode=CancellationType.WAIT_CANCELLATION_COMPLETED)
    try:
        await handle
    except StepFailed as exc:
        return ["failed", exc.attempt]
    return ["no"]


def test_B2_SV1_a_cancelled_step_is_never_retried(rt: Runtime) -> None:
    key = "noretry"
    run_id = rt.start(cancel_then_fail, key).run_id
    wait_until(lambda: "call_cancel_requested" in _types(rt, run_id))
    gate(key).set()
    assert rt.handle(run_id).result(timeout=10) == ["failed", 1]
    assert NOTES[f"{key}:attempts"] == [1]


@step(cancellation=CancellationType.ABANDON)
def abandon_by_default(key: str) -> str:
    return heartbeating.fn(key)


@workflow()
async def default_mode(key: str) -> list[Any]:
    handle = start_step(abandon_by_default(key))
    await started(key)
    handle.cancel()
    return await _outcome(handle)


def test_B2_a_step_sets_its_default_mode(rt: Runtime) -> None:
    key = "default"
    run_id = rt.start(default_mode, key).run_id
    assert rt.handle(run_id).result(timeout=10) == ["cancelled", None]
    (asked,) = [e for e in events_of(rt, run_id) if e.type is EventType.CALL_CANCEL_REQUESTED]
    assert asked.data["mode"] == "abandon"
    # Never told: it ran on until the run ended, and was abandoned with it.
    wait_until(lambda: f"{key}:step" in NOTES)
    assert NOTES[f"{key}:step"] == ["Terminated"]


@workflow()
async def shielded_handle(key: str) -> list[Any]:
    with shield():
        handle = start_step(heartbeating(key))
    await started(key)
    # WAIT: the await follows the step's end, which is the cancel met at a check.
    handle.cancel("own", mode=CancellationType.WAIT_CANCELLATION_COMPLETED)
    return await _outcome(handle)


def test_B2_S1_a_handle_cancels_its_step_even_if_started_in_a_shield(rt: Runtime) -> None:
    """A shield blocks cancels from outside (the run's); the handle is the step's own."""
    run_id = rt.start(shielded_handle, "sh").run_id
    assert rt.handle(run_id).result(timeout=10) == ["cancelled", "own"]
    wait_until(lambda: "sh:step" in NOTES)
    assert NOTES["sh:step"] == ["CancellationError"]


# -- child-run handles ---------------------------------------------------------------------


@workflow()
async def child_waits(key: str) -> str:
    try:
        return await heartbeating(key)
    except CancellationError:
        with shield():
            await mark(f"{key}:child", "cleaned up")
        raise


@workflow()
async def cancels_child(mode: str, key: str) -> dict[str, Any]:
    child = await start_child(child_waits, key, parent_close_policy="abandon")
    await started(key)
    took = child.cancel("enough", mode=CancellationType(mode))
    try:
        got: list[Any] = ["value", await child]
    except CancellationError as exc:
        got = ["cancelled", exc.reason]
    except RunCancelled as exc:
        got = ["child cancelled", exc.reason]
    await hold(f"{key}:release")
    return {"took": took, "got": got, "cancelling": get_context().is_cancelling}


@pytest.mark.parametrize(
    ("mode", "got", "child_status"),
    [
        ("try_cancel", ["cancelled", "enough"], RunState.CANCELLED),
        ("wait_cancellation_completed", ["child cancelled", "enough"], RunState.CANCELLED),
        ("abandon", ["cancelled", "enough"], RunState.RUNNING),
    ],
)
def test_B2_child_run_handles_in_each_mode(
    rt: Runtime, mode: str, got: list[Any], child_status: RunState
) -> None:
    key = f"child-{mode}"
    run_id = rt.start(cancels_child, mode, key).run_id
    child_id = f"{run_id}.0"
    wait_until(lambda: _types(rt, run_id).count("call_cancel_requested") == 1)
    if child_status is RunState.CANCELLED:
        wait_until(lambda: rt.get_run(child_id).status is RunState.CANCELLED)
        asked = [e for e in events_of(rt, child_id) if e.type is EventType.CANCEL_REQUESTED]
        assert [(e.data["source"], e.data["reason"]) for e in asked] == [("parent", "enough")]
        assert NOTES[f"{key}:child"] == ["cleaned up"]
    else:
        assert rt.get_run(child_id).status is RunState.RUNNING  # untold, running
    gate(f"{key}:release").set()
    assert rt.handle(run_id).result(timeout=10) == {
        "took": True,
        "got": got,
        "cancelling": False,
    }
    if mode == "abandon":
        # Detached: its parent_close_policy ("abandon") lets it run on.
        assert rt.get_run(child_id).status is RunState.RUNNING
        gate(key).set()
        assert rt.handle(child_id).result(timeout=10) == key


# -- replay ---------------------------------------------------------------------------------


@pytest.mark.parametrize(("kind", "mode"), sorted(EXPECTED))
def test_B2_replay_after_a_crash_gives_the_same_outcomes(
    runtimes: list[Runtime], db: Path, kind: str, mode: str
) -> None:
    key = f"replay-{kind}-{mode}"
    first = open_rt(runtimes, db)
    run_id = _drive_cancel_one(first, kind, mode, key)
    wait_for_event(first, run_id, EventType.STEP_STARTED, "hold")  # mark's end is durable
    first.kill()

    second = open_rt(runtimes, db)
    wait_until(lambda: second.get_run(run_id).owner == second.id)
    gate(f"{key}:release").set()
    result = second.handle(run_id).result(timeout=10)
    got = [g.format(key=key) for g in EXPECTED[(kind, mode)][0]]
    assert result["got"] == got
    assert result["again"] == got
    assert result["took"] is True
    log = events_of(second, run_id)
    assert [e.type for e in log].count(EventType.CALL_CANCEL_REQUESTED) == 1  # replayed
    assert NOTES[f"{key}:got"] == [got]  # recorded before the crash: not run again


# -- bad input -------------------------------------------------------------------------------


@workflow()
async def bad_mode(key: str) -> str:
    handle = start_step(double(1))
    try:
        handle.cancel("x", mode="abandon")  # type: ignore[arg-type]
    except InvalidArgumentType as exc:
        return str(exc)
    return "accepted"


def test_B2_a_mode_that_is_not_a_cancellation_type_is_refused(rt: Runtime) -> None:
    run_id = rt.start(bad_mode, "m").run_id
    message = rt.handle(run_id).result(timeout=10)
    assert "CancellationType.TRY_CANCEL" in message
    assert "'abandon'" in message
    assert "call_cancel_requested" not in _types(rt, run_id)  # nothing recorded


@workflow()
async def bad_start(key: str) -> list[str]:
    errors = []
    for bad in (double, cancel_one("a", "try_cancel", "b"), 42):
        try:
            start_step(bad)  # type: ignore[arg-type]
        except InvalidArgumentType as exc:
            errors.append(str(exc))
    return errors


def test_B2_start_step_of_something_that_is_not_a_step_call_is_refused(rt: Runtime) -> None:
    errors = rt.start(bad_start, "b").result(timeout=10)
    assert len(errors) == 3
    assert "start_step(charge(order))" in errors[0]
    assert "start_child()" in errors[1]
    assert "got 42" in errors[2]


def test_B2_start_step_outside_a_body_is_refused() -> None:
    with pytest.raises(ProctorError, match=r"start_step\(\) was called outside a workflow body"):
        start_step(None)  # type: ignore[arg-type]


def test_B2_a_bad_default_mode_is_refused_at_the_decorator() -> None:
    with pytest.raises(InvalidArgumentType, match=r"@step\(cancellation=\.\.\.\)"):

        @step(cancellation="try_cancel")  # type: ignore[arg-type]
        def wrong() -> None: ...


# -- the CLI shows handle cancels plainly ---------------------------------------------------


def test_B2_runs_status_and_logs_show_a_handle_cancel(rt: Runtime, db: Path) -> None:
    run_id = rt.start(shielded_handle, "cli").run_id
    rt.handle(run_id).result(timeout=10)
    status = run_cli(db, "runs", "status", run_id)
    assert status.exit_code == 0, status.output
    assert "call cancel" in status.output
    assert 'heartbeating #0: wait_cancellation_completed, "own"' in status.output
    logs = run_cli(db, "runs", "logs", run_id)
    (line,) = [x for x in logs.output.splitlines() if "call_cancel_requested" in x]
    assert "wait_cancellation_completed" in line
    assert "own" in line
    as_json = json.loads(run_cli(db, "runs", "status", run_id, "--json").output)
    assert [(c["call"], c["kind"], c["mode"], c["reason"]) for c in as_json["call_cancels"]] == [
        (0, "step", "wait_cancellation_completed", "own")
    ]


@workflow()
async def child_cleans_up_slowly(key: str) -> str:
    try:
        return await heartbeating(key)
    except CancellationError:
        with shield():
            await hold(f"{key}:cleanup")
        raise


@workflow()
async def cancels_child_then_holds(key: str) -> list[Any]:
    child = await start_child(child_cleans_up_slowly, key)
    await started(key)
    took = child.cancel("enough")
    try:
        got: list[Any] = ["value", await child]
    except CancellationError as exc:
        got = ["cancelled", exc.reason]
    await hold(f"{key}:release")
    return [took, got]


def test_B2_a_child_handle_cancel_is_replayed_after_a_crash_and_not_sent_twice(
    runtimes: list[Runtime], db: Path
) -> None:
    key = "child-replay"
    first = open_rt(runtimes, db)
    run_id = first.start(cancels_child_then_holds, key).run_id
    child_id = f"{run_id}.0"
    wait_for_event(first, child_id, EventType.STEP_STARTED, "hold")  # its cleanup runs
    wait_for_event(first, run_id, EventType.STEP_STARTED, "hold")  # the parent went on
    first.kill()

    second = open_rt(runtimes, db)
    wait_until(lambda: second.get_run(child_id).owner == second.id)
    gate(f"{key}:cleanup").set()
    wait_until(lambda: second.get_run(child_id).status is RunState.CANCELLED)
    gate(f"{key}:release").set()
    assert second.handle(run_id).result(timeout=10) == [True, ["cancelled", "enough"]]
    asked = [e for e in events_of(second, child_id) if e.type is EventType.CANCEL_REQUESTED]
    assert [(e.data["source"], e.data["reason"]) for e in asked] == [("parent", "enough")]
    assert [e.type for e in events_of(second, run_id)].count(EventType.CALL_CANCEL_REQUESTED) == 1


@workflow()
async def abandons_child(key: str) -> str:
    child = await start_child(child_cleans_up_slowly, key, parent_close_policy="abandon")
    await started(key)
    child.cancel("go away", mode=CancellationType.ABANDON)
    await hold(f"{key}:release")
    return "parent done"


def test_B2_an_abandoned_child_is_not_told_even_by_the_parents_cancel(rt: Runtime) -> None:
    key = "abandoned-child"
    run_id = rt.start(abandons_child, key).run_id
    child_id = f"{run_id}.0"
    wait_until(lambda: "call_cancel_requested" in _types(rt, run_id))
    rt.cancel(run_id, "parent cancelled")
    wait_until(lambda: rt.get_run(run_id).status is RunState.CANCELLED)
    assert rt.get_run(child_id).status is RunState.RUNNING
    assert [e for e in events_of(rt, child_id) if e.type is EventType.CANCEL_REQUESTED] == []
    gate(key).set()
    assert rt.handle(child_id).result(timeout=10) == key
