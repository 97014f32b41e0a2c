"""The run page's timeline chart (DESIGN O1): its model and its SVG, from real runs.

Each run is made through the public API on both stores (``db``), read back
from the store as the dashboard reads it (``get_run``, ``events``,
``steps``), and drawn with ``timeline_svg``; the tests read the SVG as the
browser tests do, through its DOM contract: ``data-kind``, ``data-t``,
``data-seq``, ``data-call``, ``data-attempt``, ``data-outcome``,
``data-status`` and a ``<title>`` per mark.
"""

from __future__ import annotations

import time

import pytest

from actors import (
    CancellationError,
    FakeClock,
    RetryPolicy,
    RunCancelled,
    RunTerminated,
    Runtime,
    StepFailed,
    gather,
    get_context,
    move_on_after,
    shield,
    sleep,
    step,
    workflow,
)
from actors.testing import ProctorTestKit, wait_for_event
from cli.web._timeline_svg import timeline_svg
from persistence import EventType
from tests.conftest import Target, gate, wait_until
from tests.timeline_charts import SVG, chart, marks, order_key, parse, records, t, title

pytestmark = pytest.mark.timeout(60)

XSS = "<script>alert(1)</script>"


# -- the runs -------------------------------------------------------------------------


@step(retry=RetryPolicy(max_attempts=3, initial_interval=10))
def flaky_once(key: str) -> str:
    if get_context().attempt == 1:
        raise ConnectionError(f"{key}: lost the connection")
    return "ok"


@workflow()
async def retries(key: str) -> str:
    return await flaky_once(key)


def test_O1_a_retry_shows_two_attempt_bars_with_the_back_off_between(
    runtime: Runtime, virtual_clock: FakeClock, proctor_db: Target
) -> None:
    handle = runtime.start(retries, "r")
    wait_for_event(handle, EventType.STEP_RETRY_SCHEDULED)
    virtual_clock.advance(10)
    assert handle.result(timeout=10) == "ok"
    root = chart(proctor_db, handle.run_id)

    bars = marks(root, "attempt")
    assert [(b.get("data-call"), b.get("data-attempt"), b.get("data-outcome")) for b in bars] == [
        ("0", "1", "failed"),
        ("0", "2", "completed"),
    ]
    assert "ConnectionError: r: lost the connection" in title(bars[0])
    (backoff,) = marks(root, "backoff")
    assert backoff.get("data-call") == "0"
    assert backoff.get("data-attempt") == "2"
    # The gap is between the bars: from the failure to the retry's start.
    assert t(bars[0], "data-t-end") <= t(backoff) <= t(backoff, "data-t-end") <= t(bars[1])
    assert int(bars[0].get("data-seq") or 0) < int(backoff.get("data-seq") or 0)
    (terminal,) = marks(root, "terminal")
    assert terminal.get("data-status") == "COMPLETED"


@step()
def beats_then_waits(key: str) -> str:
    ctx = get_context()
    ctx.heartbeat({"progress": 7})
    gate(f"{key}:beat").set()
    gate(key).wait(20)
    return "done"


@workflow()
async def beating(key: str) -> str:
    return await beats_then_waits(key)


def test_O1_the_latest_heartbeat_is_a_tick_inside_its_attempt(rt: Runtime, db: Target) -> None:
    handle = rt.start(beating, "hb")
    assert gate("hb:beat").wait(10)
    wait_until(lambda: records(db, handle.run_id)[2][0].heartbeat_at is not None)
    gate("hb").set()
    handle.result(timeout=10)
    run, _, steps = records(db, handle.run_id)
    assert steps[0].heartbeat_at is not None
    root = chart(db, handle.run_id)

    (bar,) = marks(root, "attempt")
    (tick,) = marks(root, "heartbeat")
    assert (tick.get("data-call"), tick.get("data-attempt")) == ("0", "1")
    assert t(bar) <= t(tick) <= t(bar, "data-t-end")
    assert t(tick) == pytest.approx(steps[0].heartbeat_at - run.created_at, abs=1e-5)
    assert '"progress": 7' in title(tick)
    assert "only an attempt's latest heartbeat" in title(tick)


@step(timeout=30)
def too_slow(key: str) -> None:
    ctx = get_context()
    gate(f"{key}:started").set()
    while not gate(key).wait(0.001):
        ctx.check_cancellation()


@workflow()
async def times_out(key: str) -> str:
    try:
        await too_slow(key)
    except StepFailed as exc:
        return str(exc.error["message"])
    return "finished"


def test_O1_a_step_timeout_is_a_timeout_mark_at_the_end_of_its_attempt(
    runtime: Runtime, virtual_clock: FakeClock, proctor_db: Target
) -> None:
    handle = runtime.start(times_out, "to")
    assert gate("to:started").wait(10)
    virtual_clock.advance(31)
    assert "30s" in handle.result(timeout=10)
    root = chart(proctor_db, handle.run_id)

    (bar,) = marks(root, "attempt")
    assert bar.get("data-outcome") == "timed_out"
    (timeout,) = marks(root, "timeout")
    assert (timeout.get("data-call"), timeout.get("data-attempt")) == ("0", "1")
    assert t(timeout) == t(bar, "data-t-end")
    assert "timeout" in title(timeout)


@step()
def held(key: str) -> str:
    gate(f"{key}:started").set()
    gate(key).wait(20)
    return "kept"


@step()
def quick(value: int) -> int:
    return value


@workflow()
async def shielded(key: str) -> str:
    with shield():
        await held(key)
    await quick(1)  # the first checkpoint after the shield: the cancel is met here
    return "unreachable"


def test_O1_S2_a_cancel_inside_a_shield_reads_request_buffer_shield_end_delivery_cancelled(
    rt: Runtime, db: Target
) -> None:
    handle = rt.start(shielded, "sh")
    assert gate("sh:started").wait(10)
    rt.cancel(handle.run_id, "operator says stop")
    wait_for_event(handle, EventType.CANCEL_BUFFERED)
    gate("sh").set()
    with pytest.raises(RunCancelled):
        handle.result(timeout=10)
    root = chart(db, handle.run_id)

    (requested,) = marks(root, "cancel-requested")
    (buffered,) = marks(root, "cancel-buffered")
    (exited,) = marks(root, "shield-exited")
    (delivered,) = marks(root, "cancel-delivered")
    (terminal,) = marks(root, "terminal")
    assert terminal.get("data-status") == "CANCELLED"
    in_order = sorted([requested, buffered, exited, delivered, terminal], key=order_key)
    assert in_order == [requested, buffered, exited, delivered, terminal]
    assert t(exited) <= t(delivered)
    assert "operator says stop" in title(requested)
    assert "shield" in title(buffered)
    # The shield is a shaded span holding the buffered cancel, ended at its exit.
    (span,) = marks(root, "shield")
    assert t(span) <= t(buffered) <= t(span, "data-t-end") == t(exited)
    # The step inside the shield kept running: it did not ignore anything.
    (bar,) = [b for b in marks(root, "attempt") if b.get("data-call") == "0"]
    assert bar.get("data-outcome") == "completed"
    assert bar.get("data-ignored-cancel") is None


@step()
def never_checks(key: str) -> str:
    gate(f"{key}:started").set()
    gate(key).wait(20)
    return "late result"


@step()
def checks(key: str) -> str:
    ctx = get_context()
    gate(f"{key}:started").set()
    while True:
        ctx.check_cancellation()
        time.sleep(0.001)


@step()
def meets_it_and_returns(key: str) -> str:
    """Meets the cancel at a check, and returns anyway (C5 inside a step)."""
    ctx = get_context()
    gate(f"{key}:started").set()
    try:
        while True:
            ctx.check_cancellation()
            time.sleep(0.001)
    except CancellationError:
        return "met it"


@workflow()
async def one_deaf_one_listening(key: str) -> list[str]:
    await quick(0)  # ends before the cancel: nothing to ignore
    return await gather(
        never_checks(key), checks(f"{key}.checks"), meets_it_and_returns(f"{key}.meets")
    )


def test_O1_C4_the_step_that_ignores_its_cancel_runs_past_the_request_and_stands_out(
    rt: Runtime, db: Target
) -> None:
    handle = rt.start(one_deaf_one_listening, "deaf")
    assert gate("deaf:started").wait(10)
    assert gate("deaf.checks:started").wait(10)
    assert gate("deaf.meets:started").wait(10)
    rt.cancel(handle.run_id, "stop")
    wait_for_event(handle, EventType.STEP_CANCELLED)  # the listening one met it
    wait_for_event(handle, EventType.STEP_COMPLETED, count=2)  # quick, and the one that met it
    gate("deaf").set()
    with pytest.raises(RunCancelled):
        handle.result(timeout=10)
    root = chart(db, handle.run_id)

    (requested,) = marks(root, "cancel-requested")
    bars = {b.get("data-call"): b for b in marks(root, "attempt")}
    first, deaf, listening, met = bars["0"], bars["1"], bars["2"], bars["3"]
    assert t(first, "data-t-end") <= t(requested)
    assert first.get("data-ignored-cancel") is None  # it had ended: nothing to ignore
    assert deaf.get("data-outcome") == "completed"
    assert t(deaf) < t(requested) < t(deaf, "data-t-end")
    assert deaf.get("data-ignored-cancel") == "true"
    assert "without meeting it" in title(deaf)
    bar, overlay = [el for el in deaf if el.tag == f"{SVG}rect"]
    assert "tl-ignored" not in (bar.get("class") or "")
    # Outlined from the cancel request on only: before it the step ran as it should.
    assert "tl-ignored" in (overlay.get("class") or "")
    (line,) = [el for el in requested if el.tag == f"{SVG}line"]
    assert float(overlay.get("x") or 0) == pytest.approx(float(line.get("x1") or 0), abs=0.11)
    assert float(overlay.get("x") or 0) > float(bar.get("x") or 0)
    bar_end = float(bar.get("x") or 0) + float(bar.get("width") or 0)
    overlay_end = float(overlay.get("x") or 0) + float(overlay.get("width") or 0)
    assert overlay_end == pytest.approx(bar_end, abs=0.11)
    # The step that checked met the cancel: delivered to it, not flagged.
    assert listening.get("data-outcome") == "cancelled"
    assert listening.get("data-ignored-cancel") is None
    # The one that met the cancel and returned anyway did not ignore it either.
    assert met.get("data-outcome") == "completed"
    assert met.get("data-ignored-cancel") is None
    assert {"2", "3"} <= {m.get("data-call") for m in marks(root, "cancel-delivered")}


@step()
def heartbeating(key: str) -> str:
    ctx = get_context()
    gate(f"{key}:started").set()
    while True:
        ctx.heartbeat({"key": key})
        gate(key).wait(0.001)


@workflow()
async def stuck(key: str) -> str:
    return await heartbeating(key)


def test_O1_T1_terminate_is_a_request_and_a_TERMINATED_end(rt: Runtime, db: Target) -> None:
    handle = rt.start(stuck, "term")
    assert gate("term:started").wait(10)
    rt.terminate(handle.run_id, "stuck for good")
    with pytest.raises(RunTerminated):
        handle.result(timeout=10)
    wait_until(lambda: records(db, handle.run_id)[2][0].finished_at is not None)
    root = chart(db, handle.run_id)

    (terminal,) = marks(root, "terminal")
    assert terminal.get("data-status") == "TERMINATED"
    assert "stuck for good" in title(terminal)
    (requested,) = marks(root, "terminate-requested")
    assert order_key(requested) < order_key(terminal)
    assert "stuck for good" in title(requested)
    (bar,) = marks(root, "attempt")
    assert bar.get("data-outcome") == "abandoned"


def test_O1_a_run_still_going_ends_at_now(rt: Runtime, db: Target) -> None:
    handle = rt.start(beating, "live")
    assert gate("live:beat").wait(10)
    run, _, _ = records(db, handle.run_id)
    now = time.time() + 30
    root = chart(db, handle.run_id, now=now)
    gate("live").set()
    handle.result(timeout=10)

    assert float(root.get("data-end") or 0) == pytest.approx(now - run.created_at, abs=1e-5)
    assert root.get("data-status") == "RUNNING"
    (bar,) = marks(root, "attempt")
    assert bar.get("data-outcome") == "running"
    assert bar.get("data-t-end") is None
    (rect,) = [el for el in bar if el.tag == f"{SVG}rect"]
    right = float(rect.get("x") or 0) + float(rect.get("width") or 0)
    plot_right = max(float(g.get("x2") or 0) for g in root.iter(f"{SVG}line"))
    assert right == pytest.approx(plot_right, abs=0.2)  # to the right edge: now
    assert marks(root, "terminal") == []


@step()
def double(x: int) -> int:
    return 2 * x


@workflow()
async def doubler(x: int) -> int:
    return await double(x)


@workflow()
async def parent(x: int) -> int:
    first = await double(x)
    return await doubler(first)


def test_O1_a_child_run_is_a_lane_linked_to_its_run_page(rt: Runtime, db: Target) -> None:
    handle = rt.start(parent, 3)
    assert handle.result(timeout=10) == 12
    root = chart(db, handle.run_id)

    (child,) = marks(root, "child")
    child_id = f"{handle.run_id}.1"
    assert child.get("data-child-run-id") == child_id
    assert child.get("data-call") == "1"
    assert child.get("data-outcome") == "completed"
    links = [a.get("href") for a in root.iter(f"{SVG}a")]
    assert f"/runs/{child_id}" in links
    (bar,) = marks(root, "attempt")
    assert t(bar, "data-t-end") <= t(child)


@step(name=XSS, retry=RetryPolicy(max_attempts=1))
def hostile(message: str) -> None:
    gate("x:started").set()
    gate("x").wait(20)
    raise ValueError(message)


@workflow(name=f"wf {XSS}")
async def hostile_wf(message: str) -> None:
    try:
        await hostile(message)
    except CancellationError:
        raise
    except StepFailed:
        raise


def test_O1_every_user_value_is_escaped_and_the_svg_is_well_formed(rt: Runtime, db: Target) -> None:
    # A run id of the caller's (A2) lands in attributes: quotes escaped too.
    handle = rt.start(hostile_wf, f"error {XSS}", run_id=f'q"{XSS}')
    assert gate("x:started").wait(10)
    rt.cancel(handle.run_id, f"reason {XSS}")
    gate("x").set()
    handle.wait_finished(timeout=10)
    run, events, steps = records(db, handle.run_id)
    svg = str(timeline_svg(run, events, steps, now=time.time()))

    assert "<script" not in svg
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in svg
    root = parse(svg)  # well-formed: the escaping kept the XML intact
    texts = [el.text or "" for el in root.iter() if el.text]
    assert any(f"reason {XSS}" in text for text in texts)  # the reason, as text
    assert any(XSS in text and "ValueError" in text for text in texts)  # the error
    assert any(text.startswith(XSS) for text in texts)  # the step's lane label
    assert any(f"wf {XSS}" in text for text in texts)  # the workflow, in the header
    assert root.get("data-run-id") == f'q"{XSS}'


@step()
def lost_once(key: str) -> str:
    return f"{key} ok"


@workflow()
async def resumable(key: str) -> str:
    return await lost_once(key)


def test_O1_D2_a_resumed_run_shows_the_resume_the_lost_attempt_and_its_re_execution(
    proctor: ProctorTestKit, proctor_db: Target
) -> None:
    crashed = proctor.crash_after("step_started", step=lost_once)
    handle = proctor.runtime.start(resumable, "lost")
    assert crashed.wait(10)
    proctor.restart()
    assert handle.result(timeout=10) == "lost ok"
    root = chart(proctor_db, handle.run_id)

    (resumed,) = marks(root, "resumed")
    bars = marks(root, "attempt")
    assert [(b.get("data-attempt"), b.get("data-outcome")) for b in bars] == [
        ("1", "abandoned"),
        ("2", "completed"),
    ]
    assert "lost with runtime" in title(bars[0])
    (again,) = marks(root, "reexecuted")
    assert again.get("data-call") == "0"
    assert order_key(bars[0]) < order_key(resumed) <= order_key(again) <= order_key(bars[1])


@workflow()
async def naps(key: str) -> bool:
    await sleep(5)
    with move_on_after(1) as scope:
        await sleep(10)
    return scope.cancelled_caught


def test_O1_B1_B3_sleeps_are_lanes_and_a_scope_is_a_span_ended_by_its_deadline(
    runtime: Runtime, virtual_clock: FakeClock, proctor_db: Target
) -> None:
    handle = runtime.start(naps, "z")
    wait_for_event(handle, EventType.TIMER_STARTED)
    virtual_clock.advance(5)
    wait_for_event(handle, EventType.TIMER_STARTED, count=3)  # the scope's deadline, the sleep
    virtual_clock.advance(1)
    assert handle.result(timeout=10) is True
    root = chart(proctor_db, handle.run_id)

    sleeps = marks(root, "sleep")
    assert [s.get("data-outcome") for s in sleeps] == ["fired", "cancelled"]
    (scope,) = marks(root, "scope")
    (deadline,) = marks(root, "timeout")
    assert "deadline" in title(deadline)
    assert t(scope) <= t(sleeps[1]) <= t(deadline) <= t(scope, "data-t-end")
    assert t(sleeps[1], "data-t-end") <= t(scope, "data-t-end")


def test_O1_A7_a_restart_shows_its_reused_calls_and_the_run_it_restarts(
    rt: Runtime, db: Target
) -> None:
    old = rt.start(parent, 4)
    assert old.result(timeout=10) == 16
    new = rt.restart(old.run_id, from_call=1)
    assert new.result(timeout=10) == 16
    root = chart(db, new.run_id)

    (reused,) = marks(root, "reused")
    assert (reused.get("data-call"), reused.get("data-outcome")) == ("0", "reused")
    assert f"reused from run {old.run_id}" in title(reused)
    assert marks(root, "attempt") == []  # call 0 did not run again
    (child,) = marks(root, "child")  # call 1 did, as a new child run
    assert child.get("data-call") == "1"
    header = " ".join(el.text or "" for el in root.iter(f"{SVG}text"))
    assert f"a restart of run {old.run_id}" in header


@step()
def shields_itself(key: str) -> str:
    ctx = get_context()
    with shield():
        gate(f"{key}:started").set()
        while not ctx.is_cancelling:  # until the cancel reached this step
            time.sleep(0.001)
        ctx.check_cancellation()  # met inside the shield: buffered, does not raise
    ctx.check_cancellation()  # the buffered cancel takes effect here
    return "unreachable"


@workflow()
async def step_shield(key: str) -> str:
    return await shields_itself(key)


def test_O1_S1_a_shield_inside_a_step_is_drawn_on_its_lane_with_the_cancel_it_held(
    rt: Runtime, db: Target
) -> None:
    handle = rt.start(step_shield, "ss")
    assert gate("ss:started").wait(10)
    rt.cancel(handle.run_id, "stop")
    with pytest.raises(RunCancelled):
        handle.result(timeout=10)
    root = chart(db, handle.run_id)

    (span,) = marks(root, "shield")
    (buffered,) = marks(root, "cancel-buffered")
    (exited,) = marks(root, "shield-exited")
    delivered = [m for m in marks(root, "cancel-delivered") if m.get("data-call") == "0"]
    assert span.get("data-call") == buffered.get("data-call") == exited.get("data-call") == "0"
    assert len(delivered) == 1
    assert t(span) <= t(buffered) <= t(span, "data-t-end") == t(exited)
    assert order_key(buffered) < order_key(exited) < order_key(delivered[0])
    assert "step" in title(buffered)
    (bar,) = marks(root, "attempt")
    assert bar.get("data-outcome") == "cancelled"
    assert bar.get("data-ignored-cancel") is None


@step()
def shielded_to_the_end(key: str) -> str:
    ctx = get_context()
    with shield():
        gate(f"{key}:started").set()
        while not ctx.is_cancelling:
            time.sleep(0.001)
        ctx.check_cancellation()  # buffered, and the shield lasts to the step's end
        return "done anyway"


@workflow()
async def whole_step_shielded(key: str) -> str:
    return await shielded_to_the_end(key)


def test_O1_S1_a_step_whose_own_shield_held_the_cancel_did_not_ignore_it(
    rt: Runtime, db: Target
) -> None:
    handle = rt.start(whole_step_shielded, "held")
    assert gate("held:started").wait(10)
    rt.cancel(handle.run_id, "stop")
    with pytest.raises(RunCancelled):
        handle.result(timeout=10)
    root = chart(db, handle.run_id)

    (bar,) = marks(root, "attempt")
    (requested,) = marks(root, "cancel-requested")
    assert bar.get("data-outcome") == "completed"
    assert t(bar) < t(requested) < t(bar, "data-t-end")  # it ran on past the request ...
    assert [m.get("data-call") for m in marks(root, "cancel-buffered")] == ["0"]
    assert bar.get("data-ignored-cancel") is None  # ... but its shield held the cancel
