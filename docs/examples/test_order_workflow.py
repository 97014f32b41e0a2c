"""Testing a workflow with Proctor's pytest plugin: retries, timeouts, crashes.

The fixtures (proctor, runtime, virtual_clock) come with Proctor itself.
Run with: pytest docs/examples/test_order_workflow.py
"""

from actors import CancellationError, RetryPolicy, RunState, get_context, shield, step, workflow


@step(retry=RetryPolicy(max_attempts=3, initial_interval=60))
def charge(order: str) -> str:
    return f"charged {order}"


@step()
def refund(order: str) -> str:
    return f"refunded {order}"


@step(heartbeat_timeout=30, retry=RetryPolicy(max_attempts=2, initial_interval=1))
def sync(shop: str) -> str:
    return get_context().last_heartbeat_details or "fresh"


@workflow()
async def order(order_id: str) -> str:
    try:
        return await charge(order_id)
    except CancellationError:
        with shield():
            await refund(order_id)
        raise


@workflow()
async def nightly(shop: str) -> str:
    return await sync(shop)


@step()
def ping(host: str) -> str:
    return f"pong from {host}"


@workflow()
async def pinger(host: str) -> str:
    return await ping(host)


def test_retries_in_virtual_time(proctor, virtual_clock):
    proctor.fail(charge, times=2, error=ConnectionError("card network down"))
    run = proctor.runtime.start(order, "o-1")
    for n in (1, 2):
        proctor.wait_for_event(run, "step_retry_scheduled", n)
        virtual_clock.advance(60 * 2 ** (n - 1))  # the back-off, without waiting for it
    assert run.result(timeout=10) == "charged o-1"
    proctor.assert_events(
        run,
        [
            "step_failed",
            "step_retry_scheduled",
            "step_failed",
            "step_retry_scheduled",
            "step_completed",
            "run_completed",
        ],
    )


def test_a_hanging_step_is_timed_out(proctor, virtual_clock):
    proctor.hang(sync)
    run = proctor.runtime.start(nightly, "s-1")
    proctor.wait_for_event(run, "step_started", 1)
    virtual_clock.advance(31)  # past the heartbeat timeout
    proctor.wait_for_event(run, "step_retry_scheduled", 1)
    virtual_clock.advance(1)
    proctor.wait_for_event(run, "step_started", 2)
    virtual_clock.advance(31)  # the second attempt hangs too; no third
    record = proctor.wait_for_status(run, RunState.FAILED)
    assert record.error["message"].startswith(f"step '{__name__}.sync' failed on attempt 2")


def test_crash_after_an_event_and_resume(proctor):
    proctor.hang(charge)
    crashed = proctor.crash_after("step_started")  # armed before it can happen
    run = proctor.runtime.start(order, "o-2")
    assert crashed.wait(10)
    proctor.restart()  # a new runtime resumes the run by replay
    # The lost attempt runs again; a cancel that came first would have met
    # the body at that await instead, without running the step again (C3).
    proctor.wait_for_event(run, "step_reexecuted")
    proctor.runtime.cancel(run.run_id, "customer left")
    proctor.wait_for_status(run, "cancelled")
    proctor.assert_events(
        run,
        ["run_resumed", "step_reexecuted", "cancel_delivered", "shield_entered", "run_cancelled"],
    )


def test_a_step_raising_base_exception_fails_its_run_only(proctor, runtime):
    proctor.fail(ping, error=SystemExit(3))
    run = runtime.start(pinger, "db-1")
    assert "SystemExit: 3" in proctor.wait_for_status(run, "failed").error["message"]
