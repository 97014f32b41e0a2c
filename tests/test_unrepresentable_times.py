"""Durations and instants too far out to be a date: refused at the call, shown raw when stored.

One bound (``persistence._durations``): a duration is at most 1000 years,
an instant before 9000-01-01 UTC, so that every due instant is a date. A
bad one is an ``InvalidArgument`` at the call that passed it, with nothing
written, never a crash inside an actor later (as Temporal refuses a timer
it cannot represent when the workflow asks for it). A store that holds an
instant past the bound anyway (another version, or a hand edit) is read by
every CLI command, which shows the raw number instead of crashing.
"""

from __future__ import annotations

import datetime as dt
import json
import math
from pathlib import Path
from typing import Any

import pytest

from actors import (
    Client,
    FakeClock,
    InvalidArgument,
    InvalidArgumentType,
    RetryPolicy,
    Runtime,
    sleep,
    sleep_until,
    step,
    wait_for_signal,
    workflow,
)
from actors.testing import ProctorTestKit
from tests import timeout_workflows as wf
from tests.conftest import run_cli
from tests.store_access import raw_sql

pytestmark = pytest.mark.timeout(60)

HUGE: dict[str, Any] = {"1e12": 1e12, "1e300": 1e300, "10**400": 10**400}


@workflow()
async def waits_too_long(kind: str) -> str:
    try:
        if kind == "until max":
            sleep_until(dt.datetime.max.replace(tzinfo=dt.UTC))
        elif kind.startswith("signal "):
            await wait_for_signal("go", timeout=HUGE[kind.removeprefix("signal ")])
        else:
            sleep(HUGE[kind])
    except InvalidArgument as exc:
        return f"InvalidArgument: {exc}"
    return "accepted"


@pytest.mark.parametrize(
    ("kind", "error"),
    [
        ("1e12", "sleep(seconds) must be at most 1000 years"),
        ("1e300", "sleep(seconds) must be at most 1000 years"),
        ("10**400", "sleep(seconds) must be a number of seconds, finite"),
        ("until max", "sleep_until(when) must be before 9000-01-01"),
        ("signal 1e12", "wait_for_signal(timeout) must be at most 1000 years"),
        ("signal 10**400", "wait_for_signal(timeout) must be a number of seconds, finite"),
    ],
)
def test_B1_B5_a_wait_past_the_bound_is_invalid_at_the_call(
    proctor: ProctorTestKit, kind: str, error: str
) -> None:
    """Before: the run FAILED with a crash in its supervisor ("year 33715 is
    out of range", OverflowError); now the call raises, the run goes on."""
    run = proctor.runtime.start(waits_too_long, kind)
    assert run.result(timeout=10).startswith(f"InvalidArgument: {error}")
    types = [e.type.value for e in proctor.runtime.events(run.run_id)]
    assert not [t for t in types if t.startswith(("timer_", "signal_wait"))]  # nothing written


@pytest.mark.parametrize("timeout", [1e12, 10**400], ids=["1e12", "10**400"])
def test_B4_a_start_timeout_past_the_bound_is_invalid_and_writes_nothing(
    proctor: ProctorTestKit, timeout: Any
) -> None:
    with pytest.raises(InvalidArgument, match=r"start\(timeout=\.\.\.\)"):
        proctor.runtime.start(wf.brisk, 1, timeout=timeout)
    with Client(proctor.db) as client:
        with pytest.raises(InvalidArgument, match=r"start\(timeout=\.\.\.\)"):
            client.start(wf.brisk, 1, timeout=timeout)
        assert client.list_runs() == []


def _plain() -> None:
    pass


def test_every_other_duration_argument_has_the_same_bound(
    proctor: ProctorTestKit, tmp_path: Path
) -> None:
    """Decorators, retry intervals, cancel grace and request timeouts: one rule."""
    too_long, no_float = 1e12, 10**400
    for value in (too_long, no_float):
        with pytest.raises(InvalidArgument):
            workflow(timeout=value)
        with pytest.raises(InvalidArgument):
            workflow(timeout=10, cancel_grace=value)
        with pytest.raises(InvalidArgument):
            step(timeout=value)(_plain)
        with pytest.raises(InvalidArgument):
            step(heartbeat_timeout=value)(_plain)
        with pytest.raises(InvalidArgument):
            RetryPolicy(initial_interval=value)
        with pytest.raises(InvalidArgument):
            RetryPolicy(max_interval=value)
        with pytest.raises(InvalidArgument, match="retention"):
            Runtime(tmp_path / "retention.db", retention=value)
    run = proctor.runtime.start(wf.brisk, 1)
    run.result(timeout=10)
    with pytest.raises(InvalidArgument, match="grace"):
        proctor.runtime.cancel(run.run_id, grace=no_float)
    with pytest.raises(InvalidArgument, match="timeout"):
        run.result(timeout=too_long)
    assert [e.type.value for e in proctor.runtime.events(run.run_id)][-1] == "run_completed"


@pytest.mark.parametrize("value", ["1e15", "31536000001"])
def test_B4_proctor_start_refuses_a_run_timeout_past_the_bound(tmp_path: Path, value: str) -> None:
    db = tmp_path / "cli.db"
    result = run_cli(db, "start", "tests.timeout_workflows:brisk", "1", "--run-timeout", value)
    assert result.exit_code == 2, result.output
    assert "at most 1000 years" in result.output
    if db.exists():
        with Client(db) as client:
            assert client.list_runs() == []


@workflow(timeout=600)
async def naps_an_hour() -> None:
    await sleep(3600)


@pytest.mark.parametrize("stored", ["1e15", "1e308", "-1e308", "'not a number'"])
def test_runs_status_and_logs_show_a_stored_instant_that_is_no_date_raw(
    proctor: ProctorTestKit, stored: str
) -> None:
    """A store written by another version or by hand: read commands never
    crash on a deadline or a timer's due instant (before: "year 31690765 is
    out of range" from ``runs status`` and ``runs logs``)."""
    run = proctor.runtime.start(naps_an_hour)
    proctor.wait_for_event(run, "timer_started")
    value = json.loads(stored.replace("'", '"'))
    for event, key in (("run_created", "deadline"), ("timer_started", "due_at")):
        where = " WHERE run_id = ? AND type = ?"
        ((data,),) = raw_sql(proctor.db, "SELECT data FROM events" + where, run.run_id, event)
        edited = json.dumps({**json.loads(data), key: value})
        raw_sql(proctor.db, "UPDATE events SET data = ?" + where, edited, run.run_id, event)
    for command in (("runs", "status"), ("runs", "logs"), ("runs", "list"), ("runs", "tree")):
        for extra in ((), ("--json",)):
            target = () if command[1] == "list" else (run.run_id,)
            result = run_cli(proctor.db, *command, *target, *extra)
            assert result.exit_code == 0, (command, extra, result.output)
    if stored == "1e15":
        status = run_cli(proctor.db, "runs", "status", run.run_id)
        assert "1e+15" in status.output or "1000000000000000" in status.output


@pytest.mark.parametrize(
    ("seconds", "error"),
    [
        (math.nan, InvalidArgument),
        (math.inf, InvalidArgument),
        (1e12, InvalidArgument),
        (10**400, InvalidArgument),
        ("1", InvalidArgumentType),
        (None, InvalidArgumentType),
        (True, InvalidArgumentType),
    ],
    ids=["nan", "inf", "1e12", "10**400", "str", "None", "True"],
)
def test_fake_clock_refuses_an_advance_that_is_no_finite_duration(
    seconds: Any, error: type[Exception]
) -> None:
    """Before: ``advance(nan)`` made virtual time NaN (timers never fired)."""
    with pytest.raises(error, match=r"FakeClock\(start\)"):
        FakeClock(seconds)
    clock = FakeClock()
    before = clock.monotonic()
    with pytest.raises(error, match=r"FakeClock\.advance\(seconds\)"):
        clock.advance(seconds)
    assert clock.monotonic() == before
    clock.advance(1.5)
    assert clock.monotonic() == before + 1.5
