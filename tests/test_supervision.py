"""Supervision of steps: retries with back-off, timeouts, restart intensity.

All in virtual time: the runtime runs on a FakeClock, and a test advances it
past a back-off or a deadline only once the supervisor has recorded that it
is waiting for one. No test waits real seconds for a timer.
"""

from __future__ import annotations

import json
import re

import pytest
from click.testing import CliRunner

from actors import (
    CancellationError,
    FakeClock,
    RetryPolicy,
    RunState,
    Runtime,
    StepFailed,
    WorkflowFailed,
    gather,
    get_context,
    step,
    workflow,
)
from actors.testing import wait_for_event
from cli import cli
from persistence import EventRecord, EventType, NotSerializable
from tests.conftest import (
    NOTES,
    events_of,
    gate,
    note,
    steps_of,
    wait_until,
)

pytestmark = pytest.mark.timeout(30)

BACKOFF = RetryPolicy(max_attempts=5, initial_interval=10, backoff_coefficient=2)


# The plugin's fixtures (actors.pytest_plugin): a runtime on virtual time,
# closed after each test with a leak check.
@pytest.fixture
def clock(virtual_clock: FakeClock) -> FakeClock:
    return virtual_clock


@pytest.fixture
def vrt(runtime: Runtime) -> Runtime:
    return runtime


def of_type(rt: Runtime, run_id: str, type_: EventType) -> list[EventRecord]:
    return [e for e in events_of(rt, run_id) if e.type is type_]


def advance_when(  # noqa: PLR0917 - reads as a sentence at the call
    rt: Runtime, clock: FakeClock, run_id: str, type_: EventType, n: int, by: float
) -> None:
    """Once the log has ``n`` events of ``type_``, move virtual time on by ``by``."""
    wait_for_event(rt.handle(run_id), type_, n)
    clock.advance(by)


@step(retry=BACKOFF)
def flaky(key: str, failures: int) -> str:
    note(key, get_context().attempt)
    if len(NOTES[key]) <= failures:
        raise ConnectionError(f"attempt {len(NOTES[key])} lost its connection")
    return f"{key} ok"


@workflow()
async def call_flaky(key: str, failures: int) -> str:
    return await flaky(key, failures)


def test_SV1_a_failed_step_is_restarted_as_a_fresh_attempt_after_exponential_backoff(
    vrt: Runtime, clock: FakeClock
) -> None:
    handle = vrt.start(call_flaky, "f", 2)
    advance_when(vrt, clock, handle.run_id, EventType.STEP_RETRY_SCHEDULED, 1, 10)
    advance_when(vrt, clock, handle.run_id, EventType.STEP_RETRY_SCHEDULED, 2, 20)
    assert handle.result(timeout=10) == "f ok"

    assert NOTES["f"] == [1, 2, 3]  # a fresh StepActor per attempt
    retries = of_type(vrt, handle.run_id, EventType.STEP_RETRY_SCHEDULED)
    assert [(e.attempt, e.data["delay"], e.data["after"]) for e in retries] == [
        (2, 10, "ConnectionError"),
        (3, 20, "ConnectionError"),
    ]
    assert [(s.attempt, s.status.value) for s in steps_of(vrt, handle.run_id)] == [
        (1, "failed"),
        (2, "failed"),
        (3, "completed"),
    ]


def test_SV1_the_back_off_is_capped_and_can_be_jittered() -> None:
    policy = RetryPolicy(initial_interval=1, backoff_coefficient=3, max_interval=5, jitter=0.1)
    plain = RetryPolicy(initial_interval=1, backoff_coefficient=3, max_interval=5)
    assert [plain.delay(n) for n in (1, 2, 3, 4)] == [1, 3, 5, 5]
    for n in (1, 2, 3):
        assert 0.9 * plain.delay(n) <= policy.delay(n) <= 1.1 * plain.delay(n)
    with pytest.raises(ValueError, match="max_attempts"):
        RetryPolicy(max_attempts=0)


@step(retry=RetryPolicy(max_attempts=2, initial_interval=1))
def always_fails(key: str) -> None:
    note(key, get_context().attempt)
    raise ConnectionError("down")


@step(retry=RetryPolicy(max_attempts=5, non_retryable=(ValueError, "PermissionError")))
def refuses(key: str, kind: str) -> None:
    note(key, kind)
    raise ValueError("bad input") if kind == "value" else PermissionError("no")


@workflow()
async def call_always_fails(key: str) -> str:
    try:
        await always_fails(key)
    except StepFailed as exc:
        return f"gave up after attempt {exc.attempt}: {exc.error['type']}"
    return "unreachable"


@workflow()
async def call_refuses(key: str, kind: str) -> None:
    await refuses(key, kind)


def test_SV4_after_max_attempts_the_body_gets_StepFailed(vrt: Runtime, clock: FakeClock) -> None:
    handle = vrt.start(call_always_fails, "m")
    advance_when(vrt, clock, handle.run_id, EventType.STEP_RETRY_SCHEDULED, 1, 1)
    assert handle.result(timeout=10) == "gave up after attempt 2: ConnectionError"
    assert NOTES["m"] == [1, 2]


@pytest.mark.parametrize("kind", ["value", "permission"])
def test_SV1_non_retryable_errors_fail_at_once(vrt: Runtime, kind: str) -> None:
    handle = vrt.start(call_refuses, f"n{kind}", kind)
    record = handle.wait_finished(timeout=10)
    assert record.status is RunState.FAILED
    assert NOTES[f"n{kind}"] == [kind]  # one attempt, no retry
    assert not of_type(vrt, handle.run_id, EventType.STEP_RETRY_SCHEDULED)


@workflow()
async def flaky_with_cleanup(key: str) -> str:
    try:
        return await always_fails(key)  # type: ignore[func-returns-value]
    except CancellationError:
        note(f"{key}.cleanup", "ran")
        raise


def test_SV1_a_cancel_during_the_back_off_drops_the_retry(vrt: Runtime) -> None:
    handle = vrt.start(flaky_with_cleanup, "c")
    wait_until(lambda: of_type(vrt, handle.run_id, EventType.STEP_RETRY_SCHEDULED))
    vrt.cancel(handle.run_id, "stop retrying")
    record = handle.wait_finished(timeout=10)
    assert record.status is RunState.CANCELLED
    assert NOTES["c"] == [1]  # cancellation is never retried
    assert NOTES["c.cleanup"] == ["ran"]


@step(heartbeat_timeout=5, retry=RetryPolicy(max_attempts=3, initial_interval=1))
def goes_silent(key: str) -> object:
    """Beats once with its progress, then hangs (checking, but never beating)."""
    ctx = get_context()
    note(key, ctx.last_heartbeat_details)
    if ctx.attempt > 1:
        return ctx.last_heartbeat_details
    ctx.heartbeat({"chunk": 3})
    gate(f"{key}:beat").set()
    while not gate(key).wait(0.001):
        ctx.check_cancellation()
    return "never"


@step()
def sibling(key: str) -> str:
    ctx = get_context()
    note(key, "started")
    while not gate(key).wait(0.001):
        ctx.check_cancellation()
    return f"{key} done"


@workflow()
async def silent_and_sibling(key: str) -> list[object]:
    return await gather(goes_silent(key), sibling(f"{key}.sib"))


def test_H2_a_silent_step_times_out_and_restarts_while_its_sibling_runs_on(
    vrt: Runtime, clock: FakeClock
) -> None:
    handle = vrt.start(silent_and_sibling, "h")
    assert gate("h:beat").wait(10)
    wait_until(lambda: NOTES.get("h.sib") == ["started"])
    clock.advance(6)  # past the heartbeat timeout
    advance_when(vrt, clock, handle.run_id, EventType.STEP_RETRY_SCHEDULED, 1, 1)
    wait_until(lambda: len(NOTES["h"]) == 2)
    gate("h.sib").set()
    assert handle.result(timeout=10) == [{"chunk": 3}, "h.sib done"]

    assert NOTES["h"] == [None, {"chunk": 3}]  # the retry saw the last heartbeat's details
    assert NOTES["h.sib"] == ["started"]  # one_for_one: the sibling was never restarted
    [timed_out] = of_type(vrt, handle.run_id, EventType.STEP_TIMED_OUT)
    assert timed_out.data["kind"] == "heartbeat_timeout"
    assert timed_out.data["last_heartbeat_details"] == {"chunk": 3}
    statuses = {(s.call, s.attempt): s.status.value for s in steps_of(vrt, handle.run_id)}
    assert statuses == {(0, 1): "timed_out", (0, 2): "completed", (1, 1): "completed"}


@step(timeout=30)
def too_slow(key: str) -> None:
    ctx = get_context()
    gate(f"{key}:started").set()
    while not gate(key).wait(0.001):
        ctx.check_cancellation()


@workflow()
async def call_too_slow(key: str) -> str:
    try:
        await too_slow(key)
    except StepFailed as exc:
        return exc.error["message"]
    return "finished"


def test_H2_an_attempt_that_runs_past_its_timeout_fails(vrt: Runtime, clock: FakeClock) -> None:
    handle = vrt.start(call_too_slow, "t")
    assert gate("t:started").wait(10)
    clock.advance(29)
    assert handle.status() is RunState.RUNNING
    clock.advance(2)
    assert handle.result(timeout=10) == "timeout: no result within 30s"


@step(retry=RetryPolicy(max_attempts=None, initial_interval=1, backoff_coefficient=1))
def never_works(key: str) -> None:
    note(key, get_context().attempt)
    raise ConnectionError("down for good")


@workflow(max_restarts=3, within=60)
async def bounded(key: str) -> None:
    await never_works(key)


@workflow()
async def parent_of_bounded(key: str) -> str:
    try:
        await bounded(key)
    except WorkflowFailed as exc:
        return f"child failed: {(exc.error or {}).get('message')}"
    return "unreachable"


def test_SV2_restart_intensity_escalates_through_two_levels(vrt: Runtime, clock: FakeClock) -> None:
    handle = vrt.start(parent_of_bounded, "i")
    child = f"{handle.run_id}.0"
    wait_until(lambda: vrt.list_runs(parent_run_id=handle.run_id))
    for n in (1, 2, 3):
        advance_when(vrt, clock, child, EventType.STEP_RETRY_SCHEDULED, n, 1)
    result = handle.result(timeout=10)

    # Level 1: the child's supervisor stopped restarting after 3 restarts in
    # 60 s; the step's failure reached its body, which let the child fail.
    assert NOTES["i"] == [1, 2, 3, 4]
    assert vrt.get_run(child).status is RunState.FAILED
    [last] = of_type(vrt, child, EventType.STEP_FAILED)[-1:]
    assert "restart intensity exceeded: 3 restarts within 60s" in last.data["escalated"]
    # Level 2: the parent's await raised WorkflowFailed; here it handles it.
    assert result.startswith("child failed: step ")
    assert "not retried: restart intensity exceeded" in result


def test_SV2_restarts_older_than_the_window_do_not_count(vrt: Runtime, clock: FakeClock) -> None:
    handle = vrt.start(bounded, "w")
    for n in (1, 2, 3, 4, 5):
        # 61 virtual seconds between failures: never 3 restarts within 60 s.
        advance_when(vrt, clock, handle.run_id, EventType.STEP_RETRY_SCHEDULED, n, 61)
    wait_until(lambda: len(NOTES["w"]) >= 6)
    assert handle.status() is RunState.RUNNING
    vrt.terminate(handle.run_id)


# -- SV3: strategies for the steps of a gather() --------------------------------------


@step(retry=RetryPolicy(max_attempts=3, initial_interval=5))
def fails_first(key: str) -> str:
    """Its first attempt fails once the test says so; the next one succeeds."""
    ctx = get_context()
    note(key, ctx.attempt)
    if ctx.attempt == 1:
        assert gate(f"{key}:go").wait(10)
        raise ConnectionError("first attempt fails")
    return key


@step()
def member(key: str) -> str:
    ctx = get_context()
    note(key, ctx.attempt)
    gate(f"{key}:started:{ctx.attempt}").set()
    while not gate(f"{key}:release:{ctx.attempt}").wait(0.001):
        ctx.check_cancellation()
    return key


@workflow()
async def all_for_one(key: str) -> list[str]:
    return await gather(
        fails_first(f"{key}.a"), member(f"{key}.b"), member(f"{key}.c"), strategy="one_for_all"
    )


@workflow(strategy="rest_for_one")
async def rest_for_one(key: str) -> list[str]:
    return await gather(member(f"{key}.x"), fails_first(f"{key}.a"), member(f"{key}.y"))


def started_attempt(key: str, attempt: int) -> None:
    assert gate(f"{key}:started:{attempt}").wait(10)


def test_SV3_one_for_all_restarts_every_sibling_with_the_failed_step(
    vrt: Runtime, clock: FakeClock
) -> None:
    handle = vrt.start(all_for_one, "g")
    started_attempt("g.b", 1)
    started_attempt("g.c", 1)
    gate("g.c:release:1").set()  # c completes first: one_for_all drops its result too
    wait_until(
        lambda: any(
            (s.call, s.status.value) == (2, "completed") for s in steps_of(vrt, handle.run_id)
        )
    )
    gate("g.a:go").set()
    advance_when(vrt, clock, handle.run_id, EventType.STEP_RETRY_SCHEDULED, 3, 5)
    for key in ("g.b", "g.c"):
        started_attempt(key, 2)
        gate(f"{key}:release:2").set()
    assert handle.result(timeout=10) == ["g.a", "g.b", "g.c"]

    assert NOTES["g.a"] == NOTES["g.b"] == NOTES["g.c"] == [1, 2]
    log = events_of(vrt, handle.run_id)
    cancelled = [(e.call, e.data["reason"]) for e in log if e.type is EventType.STEP_CANCELLED]
    reason = "restarted with tests.test_supervision.fails_first (one_for_all)"
    assert cancelled == [(1, reason)]  # b was running: stopped at its next check
    retried = sorted((e.call, e.attempt) for e in log if e.type is EventType.STEP_RETRY_SCHEDULED)
    assert retried == [(0, 2), (1, 2), (2, 2)]


def test_SV3_rest_for_one_restarts_only_the_later_siblings(vrt: Runtime, clock: FakeClock) -> None:
    handle = vrt.start(rest_for_one, "r")  # the strategy comes from @workflow
    started_attempt("r.x", 1)
    started_attempt("r.y", 1)
    gate("r.a:go").set()
    advance_when(vrt, clock, handle.run_id, EventType.STEP_RETRY_SCHEDULED, 2, 5)
    started_attempt("r.y", 2)
    gate("r.x:release:1").set()
    gate("r.y:release:2").set()
    assert handle.result(timeout=10) == ["r.x", "r.a", "r.y"]
    assert NOTES["r.x"] == [1]  # before the failed step: untouched
    assert NOTES["r.a"] == NOTES["r.y"] == [1, 2]


def test_SV3_an_unknown_strategy_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="one_for_one, one_for_all, rest_for_one"):
        gather(strategy="all_at_once")  # type: ignore[arg-type]


def test_runs_status_and_tree_show_attempts_restarts_and_the_next_retry(
    vrt: Runtime, clock: FakeClock
) -> None:
    def proctor(*args: str) -> str:
        result = CliRunner().invoke(cli, ["--db", vrt.db, "runs", *args])
        assert result.exit_code == 0, result.output
        return result.stdout

    handle = vrt.start(call_flaky, "cli", 1)
    wait_until(lambda: of_type(vrt, handle.run_id, EventType.STEP_RETRY_SCHEDULED))
    status = proctor("status", handle.run_id)
    assert re.search(
        r"next retry\s+step \S+flaky #0 attempt 2 at .* \(after ConnectionError\)", status
    )
    assert "retry scheduled" in proctor("tree", handle.run_id)
    pending = json.loads(proctor("status", handle.run_id, "--json"))["pending_retries"]
    assert [(r["call"], r["attempt"], r["after"]) for r in pending] == [(0, 2, "ConnectionError")]

    clock.advance(10)
    handle.result(timeout=10)
    tree = proctor("tree", handle.run_id)
    assert re.search(r"attempt 1 failed", tree)
    assert re.search(r"attempt 2 completed\s+restarted after ConnectionError", tree)
    assert "next retry" not in proctor("status", handle.run_id)


@step()
def beating(key: str) -> object:
    ctx = get_context()
    ctx.heartbeat({"done": 1})
    ctx.heartbeat({"done": 2})
    try:
        ctx.heartbeat(object())  # D4: details are JSON
    except NotSerializable:
        note(key, "refused")
    note(key, ctx.last_heartbeat_details)
    gate(f"{key}:beat").set()
    while not gate(key).wait(0.001):
        ctx.heartbeat()  # a mailbox check (C2), keeping the latest details
    return ctx.last_heartbeat_details


@workflow()
async def call_beating(key: str) -> object:
    return await beating(key)


def test_H1_heartbeat_keeps_the_latest_details_and_is_a_mailbox_check(rt: Runtime) -> None:
    handle = rt.start(call_beating, "b")
    assert gate("b:beat").wait(10)
    # Stored at most once a second, but each write carries the latest details:
    # {"done": 2} (throttled when given) reaches the store with a later
    # heartbeat() that gives none.
    wait_until(lambda: steps_of(rt, handle.run_id)[0].heartbeat_details == {"done": 2})
    rt.cancel(handle.run_id, "beat check")
    record = handle.wait_finished(timeout=10)
    assert record.status is RunState.CANCELLED  # the heartbeat delivered the cancel
    assert NOTES["b"] == ["refused", {"done": 2}]  # the latest, in the step's context
