"""Control across runtimes: the ControlInbox, claims, and requests with no worker alive.

A second Runtime or the CLI on the same store stands in for another process
here; tests/test_cli_processes.py does the same with real processes.
"""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from click.testing import CliRunner

from actors import FakeClock, RunState, Runtime
from cli import cli
from persistence import open_store
from tests import cli_workflows as wf
from tests.conftest import assert_nothing_left, event_types, steps_of, wait_until

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    path = tmp_path / "markers"
    path.mkdir()
    return path


def proctor(db: Path, *args: str) -> str:
    result = CliRunner().invoke(cli, ["--db", str(db), *args])
    assert result.exit_code == 0, result.output
    return result.stdout


def test_a_cancel_written_by_another_runtime_reaches_the_step(
    rt: Runtime, db: Path, folder: Path
) -> None:
    handle = rt.start(wf.long_job, str(folder), "x1")
    wait_until((folder / "x1.started").exists)
    with Runtime(db) as other:
        result = other.cancel(handle.run_id, "from elsewhere")
        assert result.changed
    handle.wait_finished(timeout=10)
    assert handle.status() is RunState.CANCELLED
    types = event_types(rt, handle.run_id)
    assert types.count("cancel_requested") == 1  # delivered once, not echoed back
    assert "cancel_delivered" in types
    assert (folder / "x1.cleanup").read_text() == "x\n"


def test_a_terminate_written_elsewhere_stops_the_hosted_run(
    rt: Runtime, db: Path, folder: Path
) -> None:
    handle = rt.start(wf.long_job, str(folder), "x2")
    wait_until((folder / "x2.started").exists)
    proctor(db, "terminate", handle.run_id)
    # The hosting runtime abandons the step; the step unwinds at its next check.
    wait_until(lambda: [s.status.value for s in steps_of(rt, handle.run_id)] == ["abandoned"])
    assert handle.status() is RunState.TERMINATED
    assert not (folder / "x2.cleanup").exists()


def test_a_grace_asked_elsewhere_is_enforced_by_the_owning_runtime(db: Path, folder: Path) -> None:
    before = set(threading.enumerate())
    clock = FakeClock()
    with Runtime(db, clock=clock) as owner:
        handle = owner.start(wf.shielded_job, str(folder), "x3")
        wait_until((folder / "x3.started").exists)
        proctor(db, "cancel", handle.run_id, "--grace", "30")
        assert handle.status() is RunState.CANCELLING

        def grace_passed() -> bool:
            clock.advance(31)  # virtual time: no test waits for the grace for real
            return handle.status() is RunState.TERMINATED

        wait_until(grace_passed)
        assert owner.get_run(handle.run_id).terminate_reason == "cancel grace expired"
        (folder / "x3.release").touch()
    assert_nothing_left(before)


def test_two_claiming_runtimes_never_run_the_same_run(db: Path, folder: Path) -> None:
    before = set(threading.enumerate())
    run_ids = [
        proctor(db, "start", "tests.cli_workflows:counted", f'"{folder}"', f'"r{i}"').strip()
        for i in range(30)
    ]
    with Runtime(db, claim_runs=True) as a, Runtime(db, claim_runs=True) as b:
        wait_until(
            lambda: all(a.get_run(r).status is RunState.COMPLETED for r in run_ids), timeout=30
        )
        owners = {a.get_run(r).owner for r in run_ids}
        assert owners <= {a.id, b.id}
    for i, run_id in enumerate(run_ids):
        assert (folder / f"r{i}.ran").read_text() == "x\n"  # exactly one execution
        assert event_types_of(db, run_id).count("run_claimed") == 1
    assert_nothing_left(before)


def event_types_of(db: Path, run_id: str) -> list[str]:
    with open_store(db, readonly=True) as store:
        return [e.type.value for e in store.events(run_id)]


def test_a_cancel_with_no_worker_alive_is_honoured_when_one_picks_the_run_up(
    db: Path, folder: Path
) -> None:
    before = set(threading.enumerate())
    run_id = proctor(db, "start", "tests.cli_workflows:long_job", f'"{folder}"', '"x4"').strip()
    assert "is now cancelling" in proctor(db, "cancel", run_id, "--reason", "before it ran")
    with Runtime(db, claim_runs=True) as worker:
        worker.handle(run_id).wait_finished(timeout=10)
        record = worker.get_run(run_id)
    assert record.status is RunState.CANCELLED
    assert record.cancel_reason == "before it ran"
    # C3: its first step was called while cancelling, so it never started;
    # the body met the cancel there and ran its shielded cleanup.
    assert not (folder / "x4.started").exists()
    assert (folder / "x4.cleanup").read_text() == "x\n"
    assert_nothing_left(before)


def test_a_terminate_with_no_worker_alive_takes_effect_at_once(db: Path, folder: Path) -> None:
    before = set(threading.enumerate())
    doomed = proctor(db, "start", "tests.cli_workflows:long_job", f'"{folder}"', '"x5"').strip()
    assert "terminated" in proctor(db, "terminate", doomed)
    with open_store(db, readonly=True) as store:
        assert store.get_run(doomed).status is RunState.TERMINATED
    later = proctor(db, "start", "tests.cli_workflows:add", "1", "2").strip()
    with Runtime(db, claim_runs=True) as worker:
        # Runs are claimed oldest first: once the later one ran, the worker
        # has seen the terminated one and left it alone.
        assert worker.handle(later).result(timeout=10) == 3
    assert "run_claimed" not in event_types_of(db, doomed)
    assert not (folder / "x5.started").exists()
    assert_nothing_left(before)
