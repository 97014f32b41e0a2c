"""B3: durable cancel scopes in a workflow body (Trio's model).

``CancelScope``/``move_on_after``/``fail_after`` cancel only what started
inside them (its steps are sent the cancel, C4 inside a scope), level-
triggered until the block exits (C3), caught by their own exit only;
``shield()`` is a scope with ``shield=True`` (S1: cancels from outside are
buffered until it ends); deadlines are durable timers whose firing is
recorded, so replay after a crash takes the same path (D2). Virtual time
(``FakeClock``) throughout.
"""

from __future__ import annotations

import datetime as dt
import json
import math
from pathlib import Path
from typing import Any

import pytest

from actors import (
    CancellationError,
    CancelScope,
    DeadlineExceeded,
    EventType,
    FakeClock,
    InvalidArgument,
    InvalidArgumentType,
    ProctorError,
    RunState,
    Runtime,
    WorkflowFailed,
    fail_after,
    move_on_after,
    move_on_at,
    shield,
    sleep,
    start_step,
    step,
    workflow,
)
from actors.testing import ProctorTestKit
from tests.cancellable_steps import heartbeating as sc_checks
from tests.cancellable_steps import never_checks as sc_never_checks
from tests.cancellable_steps import started as sc_started
from tests.cancellable_steps import swallows as sc_swallows
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

HOUR = 3600.0


# -- steps ------------------------------------------------------------------------------


@step()
def sc_mark(key: str, value: Any) -> Any:
    note(key, value)
    return value


STEPS = {"checks": sc_checks, "never_checks": sc_never_checks, "swallows": sc_swallows}


def types(rt: Runtime, run_id: str) -> list[str]:
    return [e.type.value for e in events_of(rt, run_id)]


def scope_events(rt: Runtime, run_id: str) -> list[tuple[str, dict[str, Any]]]:
    return [
        (e.type.value, dict(e.data))
        for e in events_of(rt, run_id)
        if e.type.value.startswith("scope_")
    ]


# -- cancel(): a step that checks, never checks, swallows ----------------------------------


@workflow()
async def sc_cancels_its_step(kind: str, key: str) -> dict[str, Any]:
    got = "none"
    with CancelScope() as scope:
        handle = start_step(STEPS[kind](key))
        await sc_started(key)
        scope.cancel("enough")
        try:
            got = await handle
        except CancellationError as exc:
            got = f"cancelled: {exc.reason}"
            raise
    after = await sc_mark(f"{key}:after", "went on")
    return {"got": got, "caught": scope.cancelled_caught, "after": after}


@pytest.mark.parametrize(
    ("kind", "step_end", "step_status"),
    [
        ("checks", "CancellationError", "cancelled"),
        ("never_checks", "returned", "completed"),
        ("swallows", "swallowed", "completed"),
    ],
)
def test_B3_cancel_a_scope_cancels_its_step_and_the_run_goes_on(
    rt: Runtime, kind: str, step_end: str, step_status: str
) -> None:
    key = f"cancel-{kind}"
    run = rt.start(sc_cancels_its_step, kind, key)
    wait_for_event(rt, run.run_id, EventType.SCOPE_CANCELLED)
    if kind == "never_checks":
        assert rt.get_run(run.run_id).status is RunState.RUNNING  # only the scope is cancelled
        assert f"{key}:after" not in NOTES  # C4: the await waits for the step's end
        gate(key).set()
    assert run.result(timeout=10) == {
        "got": "cancelled: enough",
        "caught": True,
        "after": "went on",
    }
    assert NOTES[f"{key}:step"] == [step_end]
    ended = [s for s in steps_of(rt, run.run_id) if s.name.endswith(STEPS[kind].name)]
    assert [s.status.value for s in ended] == [step_status]  # its end recorded as it was
    cancelled = [d for t, d in scope_events(rt, run.run_id) if t == "scope_cancelled"]
    assert cancelled == [{"scope": 0, "reason": "enough", "cause": "cancel"}]
    assert "cancel_requested" not in types(rt, run.run_id)
    assert rt.get_run(run.run_id).status is RunState.COMPLETED


# -- move_on_after / fail_after ----------------------------------------------------------------


@workflow()
async def sc_moves_on(key: str) -> list[Any]:
    with move_on_after(60) as scope:
        await sc_never_checks(key)
        note(f"{key}:unreached", True)
    return [scope.cancelled_caught, await sc_mark(f"{key}:after", 42)]


def test_B3_C4_move_on_after_around_a_step_that_never_checks_leaves_when_the_step_ends(
    proctor: ProctorTestKit,
) -> None:
    rt, clock = proctor.runtime, proctor.clock
    key = "move-on"
    run = rt.start(sc_moves_on, key)
    assert gate(f"{key}:started").wait(10)
    clock.advance(60)
    wait_for_event(rt, run.run_id, EventType.SCOPE_CANCELLED)
    assert rt.get_run(run.run_id).status is RunState.RUNNING
    assert f"{key}:after" not in NOTES  # the step runs on: the await waits for it (C4)
    gate(key).set()
    assert run.result(timeout=10) == [True, 42]
    assert NOTES[f"{key}:step"] == ["returned"]
    assert f"{key}:unreached" not in NOTES
    [never] = [s for s in steps_of(rt, run.run_id) if s.name.endswith(".never_checks")]
    assert never.status.value == "completed"  # its result recorded, not returned
    fired = [d for t, d in scope_events(rt, run.run_id) if t == "scope_cancelled"]
    assert [(d["scope"], d["cause"]) for d in fired] == [(0, "deadline")]
    assert "timer_fired" in types(rt, run.run_id)


@workflow()
async def sc_move_on_unfired(key: str) -> list[Any]:
    with move_on_after(60) as scope:
        value = await sc_mark(key, 1)
    return [value, scope.cancel_called, scope.cancelled_caught]


def test_B3_a_deadline_that_does_not_pass_changes_nothing(proctor: ProctorTestKit) -> None:
    rt = proctor.runtime
    run = rt.start(sc_move_on_unfired, "unfired")
    assert run.result(timeout=10) == [1, False, False]
    log = types(rt, run.run_id)
    assert "scope_cancelled" not in log
    assert tuple(t for t in log if t.startswith("timer")) == ("timer_started", "timer_cancelled")


@workflow()
async def sc_fails_after(key: str, catch: bool) -> str:
    try:
        with fail_after(30):
            await sc_checks(key)
    except DeadlineExceeded as exc:
        if not catch:
            raise
        return f"{type(exc).__name__} is a TimeoutError: {isinstance(exc, TimeoutError)}"
    return "in time"


@pytest.mark.parametrize("catch", [True, False])
def test_B3_fail_after_raises_DeadlineExceeded(proctor: ProctorTestKit, catch: bool) -> None:
    rt, clock = proctor.runtime, proctor.clock
    key = f"fail-after-{catch}"
    run = rt.start(sc_fails_after, key, catch)
    assert gate(f"{key}:started").wait(10)
    clock.advance(30)
    if catch:
        assert run.result(timeout=10) == "DeadlineExceeded is a TimeoutError: True"
    else:
        with pytest.raises(WorkflowFailed, match="DeadlineExceeded"):
            run.result(timeout=10)
    assert NOTES[f"{key}:step"] == ["CancellationError"]


# -- shields ------------------------------------------------------------------------------------


@workflow()
async def sc_deadline_outside_a_shield(key: str) -> list[Any]:
    with move_on_after(60) as outer:
        with shield():
            got = await sc_checks(key)  # shielded: never told
            note(f"{key}:shield", "ended")
        note(f"{key}:after shield", True)  # no checkpoint yet: runs
        await sc_mark(f"{key}:unreached", True)  # the first checkpoint after the shield
    return [got, outer.cancelled_caught]


def test_B3_S1_a_scope_cancelled_outside_a_shield_is_buffered_until_the_shield_ends(
    proctor: ProctorTestKit,
) -> None:
    rt, clock = proctor.runtime, proctor.clock
    key = "buffered"
    run = rt.start(sc_deadline_outside_a_shield, key)
    assert gate(f"{key}:started").wait(10)
    clock.advance(60)
    wait_for_event(rt, run.run_id, EventType.SCOPE_CANCELLED)
    assert f"{key}:step" not in NOTES  # the step in the shield is not told
    gate(key).set()
    assert run.result(timeout=10) == [key, True]
    assert NOTES[f"{key}:step"] == ["returned"]
    assert NOTES[f"{key}:shield"] == ["ended"]
    assert NOTES[f"{key}:after shield"] == [True]
    assert f"{key}:unreached" not in NOTES


@workflow()
async def sc_scope_inside_a_shield(key: str) -> list[Any]:
    with shield():
        with CancelScope() as inner:
            handle = start_step(sc_checks(key))
            await sc_started(key)
            inner.cancel("inside")
            await handle
        got = await sc_mark(f"{key}:in shield", "after inner")
    return [inner.cancelled_caught, got]


def test_B3_a_scope_inside_a_shield_cancels_inside_it(rt: Runtime) -> None:
    key = "inside"
    run = rt.start(sc_scope_inside_a_shield, key)
    assert run.result(timeout=10) == [True, "after inner"]
    assert NOTES[f"{key}:step"] == ["CancellationError"]


@workflow()
async def sc_shield_scope_blocks_the_run_cancel(key: str) -> str:
    with CancelScope(shield=True):
        await sc_checks(key)
        note(f"{key}:in shield", "done")
    await sc_mark(f"{key}:unreached", True)
    return "unreached"


def test_B3_S1_a_shield_scope_buffers_the_run_cancel(rt: Runtime) -> None:
    key = "shield-scope"
    run = rt.start(sc_shield_scope_blocks_the_run_cancel, key)
    assert gate(f"{key}:started").wait(10)
    rt.cancel(run.run_id, reason="stop")
    wait_for_event(rt, run.run_id, EventType.CANCEL_BUFFERED)
    gate(key).set()
    wait_until(lambda: rt.get_run(run.run_id).status is RunState.CANCELLED)
    assert NOTES[f"{key}:step"] == ["returned"]
    assert NOTES[f"{key}:in shield"] == ["done"]
    assert f"{key}:unreached" not in NOTES
    log = types(rt, run.run_id)
    assert log.index("shield_exited") < log.index("cancel_delivered")


# -- nesting, and the run's cancel -------------------------------------------------------------


@workflow()
async def sc_nested(key: str, which: str) -> list[Any]:
    with CancelScope() as outer:
        with CancelScope() as inner:
            if which in ("inner", "both"):
                inner.cancel("inner")
            if which in ("outer", "both"):
                outer.cancel("outer")
            try:
                await sc_mark(f"{key}:in inner", True)
            finally:
                note(f"{key}:inner finally", True)
        await sc_mark(f"{key}:in outer", True)
    return [outer.cancelled_caught, inner.cancelled_caught, inner.cancel_called]


@pytest.mark.parametrize(
    ("which", "expected", "in_outer"),
    [
        ("outer", [True, False, False], False),
        ("inner", [False, True, True], True),
        # Both: the outer's cancel is the one met; the inner scope does not swallow it.
        ("both", [True, False, True], False),
    ],
)
def test_B3_nested_scopes_each_catch_only_their_own_cancel(
    rt: Runtime, which: str, expected: list[bool], in_outer: bool
) -> None:
    key = f"nested-{which}"
    run = rt.start(sc_nested, key, which)
    assert run.result(timeout=10) == expected
    assert f"{key}:in inner" not in NOTES
    assert NOTES[f"{key}:inner finally"] == [True]
    assert (f"{key}:in outer" in NOTES) is in_outer


@workflow()
async def sc_run_cancel_in_scope(key: str) -> str:
    with CancelScope() as scope:
        try:
            await sc_checks(key)
        finally:
            note(f"{key}:caught", scope.cancel_called)
    return "unreached"


def test_B3_C1_the_run_cancel_reaches_inside_a_scope_and_no_scope_catches_it(
    rt: Runtime,
) -> None:
    key = "run-cancel"
    run = rt.start(sc_run_cancel_in_scope, key)
    assert gate(f"{key}:started").wait(10)
    result = rt.cancel(run.run_id, reason="stop", wait=True, timeout=10)
    assert result.status is RunState.CANCELLED
    assert NOTES[f"{key}:step"] == ["CancellationError"]
    assert NOTES[f"{key}:caught"] == [False]


# -- child runs (C7 through the scope) ---------------------------------------------------------


@workflow()
async def sc_child(key: str) -> str:
    return await sc_checks(key)


@workflow()
async def sc_parent(key: str) -> list[Any]:
    with move_on_after(60) as scope:
        await sc_child(key)
    return [scope.cancelled_caught, await sc_mark(f"{key}:after", "went on")]


def test_B3_C7_a_child_run_started_in_a_cancelled_scope_is_cancelled(
    proctor: ProctorTestKit,
) -> None:
    rt, clock = proctor.runtime, proctor.clock
    key = "child"
    run = rt.start(sc_parent, key)
    assert gate(f"{key}:started").wait(10)
    clock.advance(60)
    assert run.result(timeout=10) == [True, "went on"]
    child_id = f"{run.run_id}.1"  # call 0 is the scope's deadline
    assert rt.get_run(child_id).status is RunState.CANCELLED
    asked = [e for e in events_of(rt, child_id) if e.type is EventType.CANCEL_REQUESTED]
    assert [e.data["source"] for e in asked] == ["parent"]
    assert rt.get_run(run.run_id).status is RunState.COMPLETED


# -- replay after a crash (D2) ------------------------------------------------------------------


@workflow()
async def sc_sleeps_in_scope(key: str) -> list[Any]:
    await sc_mark(f"{key}:before", True)
    with move_on_after(60) as scope:
        await sleep(10 * HOUR)
        note(f"{key}:unreached", True)
    return [scope.cancelled_caught, await sc_mark(f"{key}:after", "done")]


def test_B3_D2_a_deadline_fired_before_a_crash_replays_at_the_same_point(
    proctor: ProctorTestKit,
) -> None:
    rt, clock = proctor.runtime, proctor.clock
    key = "replay-fired"
    crashed = proctor.crash_after(EventType.SCOPE_CANCELLED)
    run = rt.start(sc_sleeps_in_scope, key)
    wait_until(lambda: types(rt, run.run_id).count("timer_started") == 2)
    clock.advance(60)
    assert crashed.wait(10)

    second = proctor.restart()  # as kill -9; the clock does not move again
    assert second.handle(run.run_id).result(timeout=10) == [True, "done"]
    log = types(second, run.run_id)
    assert log.count("scope_cancelled") == 1
    assert log.count("timer_started") == 2
    assert NOTES[f"{key}:before"] == [True]
    assert f"{key}:unreached" not in NOTES


def test_B3_D2_a_deadline_that_passed_while_no_runtime_was_alive_fires_on_resume(
    runtimes: list[Runtime], db: Path
) -> None:
    clock = FakeClock()
    key = "replay-late"
    first = open_rt(runtimes, db, clock=clock)
    run = first.start(sc_sleeps_in_scope, key)
    wait_until(lambda: types(first, run.run_id).count("timer_started") == 2)
    first.kill()
    clock.advance(2 * HOUR)  # past the scope's deadline, not the sleep's

    second = open_rt(runtimes, db, clock=clock)
    assert second.handle(run.run_id).result(timeout=10) == [True, "done"]
    fired = [d for t, d in scope_events(second, run.run_id) if t == "scope_cancelled"]
    assert [d["cause"] for d in fired] == ["deadline"]
    assert f"{key}:unreached" not in NOTES


def test_B3_D2_a_deadline_not_passed_at_the_crash_resumes_at_its_original_instant(
    proctor: ProctorTestKit,
) -> None:
    rt, clock = proctor.runtime, proctor.clock
    key = "replay-pending"
    run = rt.start(sc_sleeps_in_scope, key)
    wait_until(lambda: types(rt, run.run_id).count("timer_started") == 2)
    clock.advance(30)
    second = proctor.restart()
    wait_for_event(second, run.run_id, EventType.RUN_RESUMED)
    assert second.get_run(run.run_id).status is RunState.RUNNING
    clock.advance(30)  # the rest of the minute, not a new minute
    assert second.handle(run.run_id).result(timeout=10) == [True, "done"]
    assert types(second, run.run_id).count("timer_started") == 2


@workflow()
async def sc_step_in_scope_then_more(key: str) -> list[Any]:
    with move_on_after(60) as scope:
        await sc_never_checks(key)
    first = await sc_mark(f"{key}:first", 1)
    second = await sc_mark(f"{key}:second", 2)
    return [scope.cancelled_caught, first, second]


def test_B3_D2_a_crash_after_the_block_replays_the_scope_from_its_records(
    proctor: ProctorTestKit,
) -> None:
    rt, clock = proctor.runtime, proctor.clock
    key = "replay-after"
    crashed = proctor.crash_after(EventType.STEP_COMPLETED, step=sc_mark)
    run = rt.start(sc_step_in_scope_then_more, key)
    assert gate(f"{key}:started").wait(10)
    clock.advance(60)
    wait_for_event(rt, run.run_id, EventType.SCOPE_CANCELLED)
    gate(key).set()
    assert crashed.wait(10)

    second = proctor.restart()
    assert second.handle(run.run_id).result(timeout=10) == [True, 1, 2]
    assert NOTES[f"{key}:step"] == ["returned"]  # the scope's step did not run again
    assert NOTES[f"{key}:first"] == [1]
    assert types(second, run.run_id).count("scope_cancelled") == 1


# -- the CLI shows scopes plainly ------------------------------------------------------------


def test_B3_runs_status_logs_and_tree_show_scopes(proctor: ProctorTestKit) -> None:
    rt, clock = proctor.runtime, proctor.clock
    key = "cli"
    run = rt.start(sc_moves_on, key)
    assert gate(f"{key}:started").wait(10)
    clock.advance(60)
    wait_for_event(rt, run.run_id, EventType.SCOPE_CANCELLED)
    gate(key).set()
    run.result(timeout=10)
    db = proctor.db
    status = run_cli(db, "runs", "status", run.run_id)
    assert status.exit_code == 0, status.output
    (line,) = [x for x in status.output.splitlines() if x.lstrip().startswith("scope")]
    assert "scope 0 (deadline " in line
    assert "cancelled by its deadline (at checkpoint" in line
    assert "exited, its cancel caught" in line
    as_json = json.loads(run_cli(db, "runs", "status", run.run_id, "--json").output)
    [scope] = as_json["scopes"]
    assert (scope["scope"], scope["cancelled"]["cause"]) == (0, "deadline")
    logs = run_cli(db, "runs", "logs", run.run_id).output.splitlines()
    (cancelled,) = [x for x in logs if "scope_cancelled" in x]
    assert 'cause="deadline"' in cancelled
    assert [x for x in logs if "scope_entered" in x]
    assert [x for x in logs if "scope_exited" in x]
    tree = run_cli(db, "runs", "tree", run.run_id).output.splitlines()
    (never,) = [x for x in tree if ".never_checks" in x]
    assert "in scope 0" in never
    (after,) = [x for x in tree if "sc_mark" in x]
    assert "in scope" not in after
    nodes = json.loads(run_cli(db, "runs", "tree", run.run_id, "--json").output)["children"]
    assert [(n["kind"], n["name"].rsplit(".", 1)[-1], n["scope"]) for n in nodes] == [
        ("timer", "scope", None),  # the scope's own deadline: a call of the body
        ("step", "never_checks", 0),
        ("step", "sc_mark", None),
    ]


# -- bad input ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("make", "error"),
    [
        (lambda: move_on_after(-1), InvalidArgument),
        (lambda: move_on_after(math.nan), InvalidArgument),
        (lambda: fail_after(math.inf), InvalidArgument),
        (lambda: move_on_after("1"), InvalidArgumentType),  # type: ignore[arg-type]
        (lambda: move_on_at(dt.datetime(2030, 1, 1)), InvalidArgument),
        (lambda: CancelScope(shield=1), InvalidArgumentType),  # type: ignore[arg-type]
    ],
)
def test_B3_bad_arguments_are_refused_clearly(make: Any, error: type[Exception]) -> None:
    with pytest.raises(error):
        make()


def test_B3_a_scope_outside_a_body_is_a_clear_error() -> None:
    with pytest.raises(ProctorError, match="outside a workflow body"), CancelScope():
        pass  # pragma: no cover
    with pytest.raises(ProctorError, match="never entered"):
        CancelScope().cancel()


@workflow()
async def sc_misuses(how: str) -> str:
    scope = CancelScope()
    try:
        if how == "twice":
            with scope, scope:
                pass
        elif how == "reason":
            with scope:
                scope.cancel(3)  # type: ignore[arg-type]
    except (ProctorError, InvalidArgumentType) as exc:
        return f"{type(exc).__name__}: {exc}"
    return "accepted"


@step()
def sc_scope_in_step() -> str:
    try:
        with CancelScope():
            pass
    except ProctorError as exc:
        return str(exc)
    return "accepted"


@workflow()
async def sc_step_uses_a_scope() -> str:
    return await sc_scope_in_step()


def test_B3_a_scope_entered_twice_or_cancelled_with_a_bad_reason_is_a_clear_error(
    rt: Runtime,
) -> None:
    twice = rt.start(sc_misuses, "twice").result(timeout=10)
    assert twice.startswith("ProctorError: a CancelScope cannot be entered twice")
    reason = rt.start(sc_misuses, "reason").result(timeout=10)
    assert reason.startswith("InvalidArgumentType: scope.cancel(reason=...)")
    in_step = rt.start(sc_step_uses_a_scope).result(timeout=10)
    assert "for workflow bodies" in in_step
