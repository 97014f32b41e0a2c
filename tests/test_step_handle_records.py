"""What the log says of steps left behind when a body ends (B2, D1).

A step started with ``start_step`` and still running when the body ends is
abandoned with the run (``step_abandoned``), as Temporal's activities are
when their workflow completes. Its record must say what happened, and it
must come after the record that let the body end: a record of an effect
written before its cause misleads every reader, and a replay.
"""

from __future__ import annotations

from typing import Any

import pytest

from actors import (
    CancellationError,
    CancellationType,
    EventType,
    Runtime,
    start_step,
    step,
    workflow,
)
from tests.conftest import NOTES, events_of, gate, note, wait_until

pytestmark = pytest.mark.timeout(30)


@step()
def never_checks(key: str) -> str:
    """Never looks at its mailbox: runs until its gate opens."""
    gate(f"{key}:started").set()
    gate(key).wait(20)
    note(f"{key}:step", "returned")
    return key


@step()
def started(key: str) -> None:
    gate(f"{key}:started").wait(20)


@workflow()
async def abandons(key: str) -> str:
    handle = start_step(never_checks(key))
    await started(key)
    handle.cancel("not needed", mode=CancellationType.ABANDON)
    try:
        await handle
    except CancellationError:
        return "let go"
    return "kept"


@workflow()
async def forgets(key: str) -> str:
    start_step(never_checks(key))
    await started(key)
    return "done"


def _abandoned(rt: Runtime, run_id: str) -> Any:
    wait_until(lambda: any(e.type is EventType.STEP_ABANDONED for e in events_of(rt, run_id)))
    (abandoned,) = [e for e in events_of(rt, run_id) if e.type is EventType.STEP_ABANDONED]
    return abandoned


def test_B2_a_step_abandoned_through_its_awaited_handle_says_so(rt: Runtime) -> None:
    """Its handle WAS awaited (the await raised at once): the reason names the
    abandon through the handle, and its reason, never "not awaited"."""
    key = "b2-abandon-reason"
    run = rt.start(abandons, key)
    assert run.result(timeout=10) == "let go"
    abandoned = _abandoned(rt, run.run_id)
    assert abandoned.call == 0
    assert "abandoned through its handle" in abandoned.data["reason"]
    assert "not needed" in abandoned.data["reason"]
    assert "not awaited" not in abandoned.data["reason"]
    gate(key).set()
    wait_until(lambda: f"{key}:step" in NOTES)


def test_D1_the_step_end_that_ended_the_body_is_logged_before_the_abandons_it_caused(
    rt: Runtime,
) -> None:
    """step_completed of call #1 (the body's last await) resumed the body, whose
    end abandoned call #0: the log says so in that order, then run_completed."""
    key = "d1-order"
    run = rt.start(forgets, key)
    assert run.result(timeout=10) == "done"
    _abandoned(rt, run.run_id)
    log = [(e.type, e.call) for e in events_of(rt, run.run_id)]
    done = log.index((EventType.STEP_COMPLETED, 1))
    left = log.index((EventType.STEP_ABANDONED, 0))
    finished = log.index((EventType.RUN_COMPLETED, None))
    assert done < left < finished, log
    (abandoned,) = [e for e in events_of(rt, run.run_id) if e.type is EventType.STEP_ABANDONED]
    assert "not awaited" in abandoned.data["reason"]
    gate(key).set()
    wait_until(lambda: f"{key}:step" in NOTES)
