"""A7 with B1 and B5: a restart reuses the durable sleeps and signal waits before it.

``rt.restart(run_id, from_call=N)`` reuses a sleep that fired (the new run
does not sleep again) and a signal wait that took a signal (the new run's
wait returns the same payload, though the signal was sent to the old run
only), or that timed out (it times out again, at once). A sleep or a wait
that a cancel ended is not reused, like a cancelled step: ``from_call`` past
it is refused, naming it. Temporal's reset keeps the history before the
reset point; DBOS's fork reuses the recorded outputs before its step.
"""

from __future__ import annotations

import json
import re

import pytest

from actors import (
    InvalidArgument,
    RetryPolicy,
    RunState,
    SignalTimeout,
    sleep,
    step,
    wait_for_signal,
    workflow,
)
from actors.testing import ProctorTestKit
from persistence import EventRecord, EventType
from tests.conftest import NOTES, run_cli, wait_for_event

pytestmark = pytest.mark.timeout(60)

_E = EventType
HOUR = 3600.0


@step(retry=RetryPolicy(max_attempts=1))
def flaky(key: str) -> str:
    """Fails while ``NOTES[key + ".fail"]`` is unset or true."""
    NOTES.setdefault(key, []).append("ran")
    if NOTES.get(f"{key}.fail", True):
        raise RuntimeError(f"flaky {key}")
    return key


@workflow()
async def sleeps_then_fails(key: str) -> str:
    await sleep(HOUR)  # call 0
    return await flaky(key)  # call 1


@workflow()
async def waits_then_fails(key: str) -> list[object]:
    got = await wait_for_signal("approved")  # call 0
    return [got, await flaky(key)]  # call 1


@workflow()
async def waits_timed_then_fails(key: str) -> list[object]:
    got = await wait_for_signal("approved", timeout=HOUR)  # call 0
    return [got, await flaky(key)]  # call 1


@workflow()
async def times_out_then_fails(key: str) -> list[object]:
    try:
        got: object = await wait_for_signal("approved", timeout=0)  # call 0
    except SignalTimeout:
        got = "timed out"
    return [got, await flaky(key)]  # call 1


def reused(log: list[EventRecord]) -> list[tuple[int | None, str | None, object, object]]:
    return [
        (e.call, e.step, e.data["kind"], e.data["end"]) for e in log if e.type is _E.CALL_REUSED
    ]


def types(log: list[EventRecord]) -> list[EventType]:
    return [e.type for e in log]


def test_A7_a_fired_sleep_is_reused_and_the_restart_does_not_sleep_again(
    proctor: ProctorTestKit,
) -> None:
    rt, clock = proctor.runtime, proctor.clock
    old = rt.start(sleeps_then_fails, "a7-sleep")
    wait_for_event(rt, old.run_id, _E.TIMER_STARTED)
    clock.advance(HOUR)
    assert old.wait_finished(timeout=10).status is RunState.FAILED

    NOTES["a7-sleep.fail"] = False
    new = rt.restart(old.run_id, from_call=1)
    assert new.result(timeout=10) == "a7-sleep"  # the clock never moved again
    log = rt.events(new.run_id)
    assert reused(log) == [(0, "sleep", "timer", "timer_fired")]
    assert _E.TIMER_STARTED not in types(log)


def test_A7_a_wait_that_took_a_signal_is_reused_with_its_payload(
    proctor: ProctorTestKit,
) -> None:
    rt = proctor.runtime
    old = rt.start(waits_then_fails, "a7-sig")
    rt.signal(old.run_id, "approved", {"by": "ann"})
    assert old.wait_finished(timeout=10).status is RunState.FAILED

    NOTES["a7-sig.fail"] = False
    new = rt.restart(old.run_id, from_call=1)
    # No signal was sent to the new run: the reused wait returns the old payload.
    assert new.result(timeout=10) == [{"by": "ann"}, "a7-sig"]
    log = rt.events(new.run_id)
    assert reused(log) == [(0, "approved", "signal", "signal_received")]
    assert not {_E.SIGNAL_WAITING, _E.SIGNAL_RECEIVED} & set(types(log))
    # A restart of the restart reuses the reused wait, payload and all.
    again = rt.restart(new.run_id, from_call=1)
    assert again.result(timeout=10) == [{"by": "ann"}, "a7-sig"]
    shown = run_cli(proctor.db, "runs", "status", again.run_id)
    assert shown.exit_code == 0, shown.output
    assert re.search(r"0\s+approved\s+signal\s+reused: received", shown.output), shown.output


def test_A7_a_wait_that_timed_out_is_reused_as_timed_out(proctor: ProctorTestKit) -> None:
    rt = proctor.runtime
    old = rt.start(times_out_then_fails, "a7-late")
    assert old.wait_finished(timeout=10).status is RunState.FAILED

    NOTES["a7-late.fail"] = False
    new = rt.restart(old.run_id, from_call=1)
    assert new.result(timeout=10) == ["timed out", "a7-late"]
    log = rt.events(new.run_id)
    assert reused(log) == [(0, "approved", "signal", "timer_fired")]
    assert _E.TIMER_STARTED not in types(log)
    shown = run_cli(proctor.db, "runs", "status", new.run_id, "--json")
    assert shown.exit_code == 0, shown.output
    rows = json.loads(shown.output)["reused_calls"]
    assert [(r["call"], r["kind"], r["status"]) for r in rows] == [(0, "signal", "timed out")]


def test_A7_a_cancelled_sleep_or_wait_is_not_reused_and_the_refusal_names_it(
    proctor: ProctorTestKit,
) -> None:
    rt = proctor.runtime
    for wf, what, why in [
        (sleeps_then_fails, "timer 'sleep'", "it ended timer_cancelled"),
        (waits_then_fails, "signal 'approved'", "the wait took no signal"),
        (waits_timed_then_fails, "signal 'approved'", "the wait took no signal"),
    ]:
        old = rt.start(wf, "a7-cancel")
        wait_for_event(
            rt, old.run_id, _E.TIMER_STARTED if wf is sleeps_then_fails else _E.SIGNAL_WAITING
        )
        rt.cancel(old.run_id, "stop")
        assert old.wait_finished(timeout=10).status is RunState.CANCELLED
        with pytest.raises(InvalidArgument, match=rf"call 0 \({what}\).*cannot be reused: {why}"):
            rt.restart(old.run_id, from_call=1)
        # from_call=0 is still allowed: everything runs again.
        assert rt.restart(old.run_id, from_call=0).run_id != old.run_id
