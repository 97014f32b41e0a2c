"""C8's grace and every "seconds" input: bad values are clear errors, huge ones harmless."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
from click.testing import CliRunner

from actors import RunState, Runtime, step, workflow
from cli import cli
from tests import cli_workflows as wf
from tests.conftest import event_types, gate, wait_until

pytestmark = pytest.mark.timeout(60)


@pytest.mark.parametrize("grace", [math.nan, math.inf, -1.0])
def test_C8_a_grace_that_is_not_a_finite_number_of_seconds_is_refused_and_nothing_written(
    rt: Runtime, tmp_path: Path, grace: float
) -> None:
    """It used to reach the store, be refused there, and read "no run with id"."""
    run = rt.start(wf.long_job, str(tmp_path), "g")
    wait_until((tmp_path / "g.started").exists)
    with pytest.raises(ValueError, match="grace must be a finite number of seconds >= 0"):
        rt.cancel(run.run_id, "stop", grace=grace)
    assert "cancel_requested" not in event_types(rt, run.run_id)
    assert run.status() is RunState.RUNNING
    (tmp_path / "g.release").touch()
    assert run.result(timeout=10) == "g"


@step()
def never_checks(folder: str, key: str) -> str:
    """Works until released, and never checks its mailbox: only a terminate ends it."""
    Path(folder, f"{key}.started").touch()
    gate(key).wait(30)
    return key


@workflow()
async def stubborn(folder: str, key: str) -> str:
    return await never_checks(folder, key)


def test_C8_a_grace_centuries_long_leaves_every_other_timer_working(
    rt: Runtime, tmp_path: Path
) -> None:
    """A deadline past what a thread can wait for (threading.TIMEOUT_MAX) used
    to kill the Timers' thread: no later grace, back-off or timeout fired."""
    far = rt.start(stubborn, str(tmp_path), "far")
    near = rt.start(stubborn, str(tmp_path), "near")
    wait_until((tmp_path / "far.started").exists)
    wait_until((tmp_path / "near.started").exists)
    rt.cancel(far.run_id, "someday", grace=1e10)  # the Timers' earliest deadline
    rt.cancel(near.run_id, "soon", grace=0.2)  # scheduled after it: must still fire
    assert near.wait_finished(timeout=10).status is RunState.TERMINATED
    assert far.status() is RunState.CANCELLING
    assert "Timers" in rt._census.live()
    gate("far").set()
    assert far.wait_finished(timeout=10).status is RunState.CANCELLED


@pytest.mark.parametrize(
    "args",
    [
        ["cancel", "r", "--grace", "nan"],
        ["cancel", "r", "--grace", "inf"],
        ["cancel", "r", "--grace", "-1"],
        ["cancel", "r", "--wait", "--timeout", "nan"],
        ["--busy-timeout", "inf", "runs", "list"],
        ["--busy-timeout", "nan", "runs", "list"],
        ["runs", "prune", "--older-than", "1d", "--batch", "99999999999999999999999"],
        ["runs", "list", "--limit", "9223372036854775807"],
    ],
)
def test_seconds_and_counts_out_of_range_are_usage_errors(db: Path, args: list[str]) -> None:
    result = CliRunner().invoke(cli, ["--db", str(db), *args])
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
