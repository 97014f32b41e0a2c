"""Every path that terminates a run closes its running steps (T1-T3, C8).

``Runtime.terminate`` always recorded ``step_abandoned`` for a running
attempt; a terminate by a cancel's grace expiry (``rt.cancel(grace=)``,
``proctor cancel --grace``, a run timeout's ``cancel_grace``) left the step
``running`` forever. Each path is tested here through the public API or the
CLI, with a step that never checks (only a terminate ends its run).

Peers: Temporal's terminate closes the workflow's pending activities
(their tasks are abandoned, their results discarded); OTP's supervisor
shutdown kills the child after its shutdown time.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from actors import FakeClock, RunHandle, RunState, Runtime, sleep, start_child, workflow
from actors.testing import ProctorTestKit
from persistence import StepState
from tests import timeout_workflows as wf
from tests.conftest import assert_nothing_left, run_cli, steps_of, wait_until

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
def markers(tmp_path: Path) -> Iterator[str]:
    path = tmp_path / "markers"
    path.mkdir()
    yield str(path)
    (path / "a.release").touch()  # the abandoned step's thread returns


def _closed(run: RunHandle[object], rt: Runtime) -> None:
    """The run is TERMINATED, its step abandoned, and the log says so."""
    assert run.wait_finished(timeout=10).status is RunState.TERMINATED
    wait_until(lambda: "step_abandoned" in [e.type.value for e in run.events()])
    (attempt,) = steps_of(rt, run.run_id)
    assert attempt.status is StepState.ABANDONED
    types = [e.type.value for e in run.events()]
    assert types.index("run_terminated") < types.index("step_abandoned")


def test_T3_a_cancel_grace_expiry_abandons_the_running_step(db: Path, markers: str) -> None:
    before = set(threading.enumerate())
    clock = FakeClock()
    with Runtime(db, clock=clock) as rt:
        run = rt.start(wf.stubborn, markers, "a")
        wait_until(lambda: Path(markers, "a.started").exists())
        rt.cancel(run.run_id, "c", grace=0.3)
        clock.advance(1)
        _closed(run, rt)
        (terminate,) = [e for e in run.events() if e.type.value == "terminate_requested"]
        assert terminate.data["source"] == "grace"
        Path(markers, "a.release").touch()
    assert_nothing_left(before)


def test_T3_a_run_timeout_grace_abandons_the_running_step(tmp_path: Path, markers: str) -> None:
    with ProctorTestKit(tmp_path / "kit.db") as kit:
        run = kit.runtime.start(wf.stubborn, markers, "a")
        kit.wait_for_event(run, "step_started")
        kit.clock.advance(60)
        kit.wait_for_event(run, "cancel_requested")
        kit.clock.advance(5)
        _closed(run, kit.runtime)
        Path(markers, "a.release").touch()


def test_T3_cli_cancel_grace_abandons_the_running_step(db: Path, markers: str) -> None:
    """``proctor cancel RUN --grace 0.3`` without --wait: the owning runtime
    enforces the grace (C8), and its terminate closes the step."""
    with Runtime(db, control_interval=0.01) as rt:
        run = rt.start(wf.stubborn, markers, "a")
        wait_until(lambda: Path(markers, "a.started").exists())
        result = run_cli(db, "cancel", run.run_id, "--reason", "c", "--grace", "0.3")
        assert result.exit_code == 0, result.output
        _closed(run, rt)
        status = run_cli(db, "runs", "status", run.run_id)
        assert "abandoned" in status.output, status.output
        Path(markers, "a.release").touch()


@workflow()
async def deaf_child(folder: str, key: str) -> str:
    return await wf.deaf(folder, key)


@workflow()
async def awaits_child(folder: str, key: str) -> str:
    return await deaf_child(folder, key)


@workflow()
async def leaves_child(folder: str, key: str) -> str:
    await start_child(deaf_child, folder, key, parent_close_policy="terminate")
    while not Path(folder, f"{key}.started").exists():
        await sleep(0.01)
    return "left"


def _child_of(rt: Runtime, run_id: str) -> RunHandle[object]:
    wait_until(lambda: rt.list_runs(parent_run_id=run_id))
    (child,) = rt.list_runs(parent_run_id=run_id)
    return rt.handle(child.run_id)


def test_T4_a_parents_grace_expiry_abandons_its_childs_running_step(db: Path, markers: str) -> None:
    clock = FakeClock()
    with Runtime(db, clock=clock) as rt:
        run = rt.start(awaits_child, markers, "a")
        wait_until(lambda: Path(markers, "a.started").exists())
        child = _child_of(rt, run.run_id)
        rt.cancel(run.run_id, "c", grace=0.3)
        clock.advance(1)
        assert run.wait_finished(timeout=10).status is RunState.TERMINATED
        _closed(child, rt)
        Path(markers, "a.release").touch()


def test_T4_parent_close_policy_terminate_abandons_the_childs_running_step(
    rt: Runtime, markers: str
) -> None:
    run = rt.start(leaves_child, markers, "a")
    assert run.result(timeout=10) == "left"
    _closed(_child_of(rt, run.run_id), rt)
    Path(markers, "a.release").touch()
