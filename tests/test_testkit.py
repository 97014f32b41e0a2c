"""The testing toolkit keeps the promises its docstrings make."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from actors import (
    FakeClock,
    InvalidArgument,
    RetryPolicy,
    RunState,
    WaitTimeout,
    get_context,
    step,
    workflow,
)
from actors.testing import ProctorTestKit
from tests.conftest import NOTES, gate, note

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
def kit(tmp_path: Path) -> Iterator[ProctorTestKit]:
    with ProctorTestKit(tmp_path / "kit.db") as kit:
        try:
            yield kit
        finally:
            for event in (gate("kit-charge"),):
                event.set()


@step()
def charge(order: str) -> str:
    note(f"charge {order}", threading.get_ident())
    return f"charged {order}"


@step()
def ship(order: str) -> str:
    note(f"ship {order}", threading.get_ident())
    return f"shipped {order}"


@workflow()
async def order(order_id: str) -> str:
    charged = await charge(order_id)
    return f"{charged}, {await ship(order_id)}"


@step()
def parked(key: str) -> str:
    gate(key).wait(30)
    return key


@workflow()
async def waits(key: str) -> str:
    return await parked(key)


@step(heartbeat_timeout=30, retry=RetryPolicy(max_attempts=3, initial_interval=1))
def sync(shop: str) -> str:
    note(f"sync {shop}", get_context().attempt)
    return f"synced {shop}"


@workflow()
async def nightly(shop: str) -> str:
    return await sync(shop)


@step(retry=RetryPolicy(max_attempts=3, initial_interval=45))
def flaky(x: int) -> int:
    return x


@workflow()
async def retried(x: int) -> int:
    return await flaky(x)


def test_D2_a_handle_from_before_restart_keeps_working(kit: ProctorTestKit) -> None:
    """restart() says old handles keep working: their reads, waits and control
    go to the runtime that replaced theirs."""
    run = kit.runtime.start(waits, "kit-restart")
    kit.wait_for_event(run, "step_started")
    kit.restart()
    kit.wait_for_event(run, "run_resumed")
    assert run.status() is RunState.RUNNING
    gate("kit-restart").set()
    assert run.result(timeout=10) == "kit-restart"
    assert [e.type.value for e in run.events()][-1] == "run_completed"


def test_H2_hang_once_then_the_retry_succeeds(kit: ProctorTestKit) -> None:
    """hang(times=1): the first attempt hangs and is timed out, the retry runs."""
    kit.hang(sync, times=1)
    run = kit.runtime.start(nightly, "s-1")
    kit.wait_for_event(run, "step_started", 1)
    kit.clock.advance(31)  # past the heartbeat timeout
    kit.wait_for_event(run, "step_retry_scheduled", 1)
    kit.clock.advance(1)
    assert run.result(timeout=10) == "synced s-1"
    assert NOTES["sync s-1"] == [2]  # the hung attempt never reached the code
    kit.assert_events(run, ["step_timed_out", "step_retry_scheduled", "step_completed"])


@pytest.mark.parametrize("times", [0, -2])
def test_hang_times_must_be_positive(kit: ProctorTestKit, times: int) -> None:
    with pytest.raises(ValueError, match="times must be at least 1"):
        kit.hang(sync, times=times)


@pytest.mark.parametrize("count", [0, -1, 1.5, True])
def test_wait_for_event_refuses_a_count_below_one(kit: ProctorTestKit, count: object) -> None:
    """A count of 0 once returned at once (or raised IndexError) instead of
    waiting, which let a test advance virtual time before the step began."""
    run = kit.runtime.start(order, "o-1")
    with pytest.raises(InvalidArgument, match="count must be a whole number of events"):
        kit.wait_for_event(run, "step_started", count)  # type: ignore[arg-type]
    assert run.result(timeout=10) is not None


def test_D2_after_crash_after_no_user_code_runs_in_the_crashed_runtime(
    kit: ProctorTestKit,
) -> None:
    """The step's end commits with the next step's start in one group; a
    crash right after that commit must not let the next step run there, or
    its side effect happens twice (once here, once after the resume)."""
    crashed = kit.crash_after("step_completed", step=charge)
    run = kit.runtime.start(order, "o-1")
    assert crashed.wait(10)
    crashed_runtime = kit.runtime
    kit.restart()
    assert run.result(timeout=10) == "charged o-1, shipped o-1"
    assert len(NOTES["charge o-1"]) == 1  # its end was recorded: never re-run
    assert len(NOTES["ship o-1"]) == 1  # ran once, in the new runtime
    assert crashed_runtime._census.live() == []


def test_a_result_that_times_out_says_what_the_run_waits_for(kit: ProctorTestKit) -> None:
    """On a virtual clock nothing moves by itself: the error names the retry
    and its back-off instead of only "still running", and shows the log."""
    kit.fail(flaky, times=1, error=ConnectionError("down"))
    run = kit.runtime.start(retried, 7)
    kit.wait_for_event(run, "step_retry_scheduled")
    with pytest.raises(WaitTimeout) as caught:
        run.result(timeout=0.2)
    message = str(caught.value)
    assert f"run {run.run_id} is still running after 0.2s" in message
    assert "step flaky#0: attempt 2 waits out a back-off of 45.0s" in message
    assert "with a virtual clock, advance it" in message
    assert "step_retry_scheduled flaky#0.2" in message  # the timeline
    assert isinstance(caught.value, TimeoutError)
    kit.clock.advance(45)
    assert run.result(timeout=10) == 7


def test_a_result_that_times_out_names_the_running_step(kit: ProctorTestKit) -> None:
    run = kit.runtime.start(waits, "kit-running")
    kit.wait_for_event(run, "step_started")
    with pytest.raises(
        WaitTimeout, match=r"step parked#0: attempt 1 running for .*s, no heartbeat"
    ):
        run.result(timeout=0.1)
    gate("kit-running").set()
    assert run.result(timeout=10) == "kit-running"


def test_fake_clock_wakes_a_first_wait_that_an_advance_overtook() -> None:
    """A waiter (the Timers actor's mailbox) reads the time, finds its deadline
    not due, and calls ``wait``; an advance between the two, before its
    condition was ever registered with the clock (a new runtime's Timers,
    after a restart), must not be lost: the timer would never fire. Forced:
    the advance comes first, the wait after, as that waiter would make it."""
    clock = FakeClock()
    cond = threading.Condition()
    deadline = clock.monotonic() + 5  # read as not due yet...
    clock.advance(10)  # ...and the clock moves before the wait begins
    returned = threading.Event()

    def waiter() -> None:
        with cond:
            clock.wait(cond, deadline)
        returned.set()

    thread = threading.Thread(target=waiter, daemon=True)
    thread.start()
    try:
        assert returned.wait(5), "the wait missed an advance made before it"
    finally:
        with cond:
            cond.notify_all()  # release it if it hung (the bug), not to leak it
        thread.join(5)
