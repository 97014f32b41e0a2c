"""A timed-out wait names what the run waits for, whatever the body awaits.

``RunHandle.result(timeout=...)`` raises ``WaitTimeout`` whose message says
why the run is not done, from its log alone: a step (awaited directly or
through its handle), a child run, a durable timer, a signal wait (B5), a
cancel held by a shield (S1). "Between records" is said only when the log
shows none of these. Peer: Temporal's ``describe`` lists a workflow's
pending activities, child workflows and timers.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from actors import WaitTimeout, shield, sleep, start_step, step, wait_for_signal, workflow
from actors.testing import ProctorTestKit
from tests.conftest import gate

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
def kit(tmp_path: Path) -> Iterator[ProctorTestKit]:
    with ProctorTestKit(tmp_path / "kit.db") as k:
        yield k


@step()
def parked(key: str) -> str:
    gate(f"{key}:started").set()
    gate(key).wait(20)
    return key


@workflow()
async def approval() -> object:
    return await wait_for_signal("approved")


@workflow()
async def shielded(key: str) -> str:
    with shield():
        await parked(key)
    return key


@workflow()
async def joins(key: str) -> str:
    handle = start_step(parked(key))
    return await handle


@workflow()
async def naps() -> str:
    await sleep(3600)
    return "rested"


def _why(run: object) -> str:
    with pytest.raises(WaitTimeout) as caught:
        run.result(timeout=0.1)  # type: ignore[attr-defined]
    return str(caught.value)


def test_B5_a_timed_out_wait_names_the_signal_the_body_waits_for(kit: ProctorTestKit) -> None:
    run = kit.runtime.start(approval)
    kit.wait_for_event(run, "signal_waiting")
    kit.runtime.signal(run.run_id, "other", 1)
    message = _why(run)
    assert "a signal 'approved' (wait #0; 0 pending of that name)" in message
    assert "between records" not in message
    kit.runtime.signal(run.run_id, "approved", "yes")
    assert run.result(timeout=10) == "yes"


def test_S1_a_timed_out_wait_names_the_shield_that_holds_the_cancel(
    kit: ProctorTestKit,
) -> None:
    key = "diag-shield"
    run = kit.runtime.start(shielded, key)
    kit.wait_for_event(run, "step_started")
    kit.runtime.cancel(run.run_id, "stop")
    kit.wait_for_event(run, "cancel_requested")
    try:
        message = _why(run)
    finally:
        gate(key).set()  # let the step end, whatever the message said
    assert "a cancel requested" in message
    assert "held by the workflow body's shield (entered at record" in message
    assert "not met yet" not in message


def test_B2_a_timed_out_wait_names_the_step_a_handle_join_waits_for(
    kit: ProctorTestKit,
) -> None:
    key = "diag-join"
    run = kit.runtime.start(joins, key)
    kit.wait_for_event(run, "step_started")
    message = _why(run)
    assert "step parked#0: attempt 1 running for" in message
    assert "between records" not in message
    gate(key).set()
    assert run.result(timeout=10) == key


def test_B1_a_timed_out_wait_names_the_durable_timer(kit: ProctorTestKit) -> None:
    run = kit.runtime.start(naps)
    kit.wait_for_event(run, "timer_started")
    message = _why(run)
    assert "a durable timer (sleep #0) due at" in message
    kit.clock.advance(3600)
    assert run.result(timeout=10) == "rested"
