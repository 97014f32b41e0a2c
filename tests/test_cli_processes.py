"""The CLI as real processes against a worker running in another process."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from persistence import RunState
from tests.conftest import wait_until
from tests.processes import DEADLINE, ROOT, Worker, events, proctor, record

pytestmark = pytest.mark.timeout(60)


def start(db: Path, workflow: str, *args: str) -> str:
    result = proctor(db, "start", f"tests.cli_workflows:{workflow}", *args)
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    path = tmp_path / "markers"
    path.mkdir()
    return path


@pytest.fixture
def worker(db: Path, tmp_path: Path) -> Iterator[Worker]:
    # The worker creates the store if it is missing; the CLI then finds it.
    w = Worker(db, tmp_path / "worker.log", "tests.cli_workflows")
    wait_until(lambda: "serving" in w.log.read_text(), timeout=DEADLINE)
    yield w
    assert w.stop() == 0, w.log.read_text()


def test_cancel_wait_from_another_process_reaches_a_run_in_the_worker(
    worker: Worker, db: Path, folder: Path
) -> None:
    run_id = start(db, "long_job", f'"{folder}"', '"p1"')
    wait_until((folder / "p1.started").exists, timeout=DEADLINE)
    result = proctor(db, "cancel", run_id, "--reason", "ops", "--wait", "--timeout", "20")
    assert result.returncode == 0, result.stderr
    assert f"run {run_id} is cancelled" in result.stdout
    assert record(db, run_id).status is RunState.CANCELLED
    log = events(db, run_id)
    assert log[-1].type.value == "run_cancelled"
    assert "cancel_delivered" in [e.type.value for e in log]
    cleanup = [
        e for e in log if e.type.value == "step_completed" and e.step == "tests.cli_workflows.mark"
    ]
    assert len(cleanup) == 1
    assert (folder / "p1.cleanup").read_text() == "x\n"  # the cleanup ran, once


def test_terminate_from_another_process_stops_a_run_in_the_worker(
    worker: Worker, db: Path, folder: Path
) -> None:
    run_id = start(db, "parent_job", f'"{folder}"', '"p2"')
    wait_until((folder / "p2.started").exists, timeout=DEADLINE)
    result = proctor(db, "terminate", run_id, "--reason", "runaway")
    assert result.returncode == 0, result.stderr
    assert record(db, run_id).status is RunState.TERMINATED
    assert record(db, f"{run_id}.0").status is RunState.TERMINATED
    # The worker stops the step: its attempt is recorded as abandoned.
    wait_until(
        lambda: "step_abandoned" in [e.type.value for e in events(db, f"{run_id}.0")],
        timeout=DEADLINE,
    )
    assert not (folder / "p2.cleanup").exists()


def test_runs_logs_follow_in_another_process_streams_until_the_end(
    worker: Worker, db: Path, folder: Path
) -> None:
    run_id = start(db, "long_job", f'"{folder}"', '"p3"')
    wait_until((folder / "p3.started").exists, timeout=DEADLINE)
    with subprocess.Popen(
        [sys.executable, "-m", "cli", "--db", str(db), "runs", "logs", run_id, "-f", "--json"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    ) as follower:
        assert follower.stdout is not None
        first = json.loads(follower.stdout.readline())
        assert first["type"] == "run_created"  # it is streaming, and the run is still going
        (folder / "p3.release").touch()
        rest = [json.loads(line)["type"] for line in follower.stdout]
        assert follower.wait(timeout=DEADLINE) == 0
    assert rest[-1] == "run_completed"


def test_control_of_runs_whose_worker_is_not_running(
    db: Path, folder: Path, tmp_path: Path
) -> None:
    cancelled = start(db, "long_job", f'"{folder}"', '"p4"')
    terminated = start(db, "long_job", f'"{folder}"', '"p5"')
    assert proctor(db, "cancel", cancelled, "--reason", "early").returncode == 0
    assert record(db, cancelled).status is RunState.CANCELLING
    assert proctor(db, "terminate", terminated).returncode == 0
    assert record(db, terminated).status is RunState.TERMINATED  # at once (T1)

    w = Worker(db, tmp_path / "worker.log", "tests.cli_workflows")
    try:
        wait_until(lambda: record(db, cancelled).status.is_terminal, timeout=DEADLINE)
    finally:
        assert w.stop() == 0, w.log.read_text()
    assert record(db, cancelled).status is RunState.CANCELLED
    assert (folder / "p4.cleanup").read_text() == "x\n"
    assert not (folder / "p4.started").exists()  # C3: never started while cancelling
    assert not (folder / "p5.started").exists()
    assert "run_claimed" not in [e.type.value for e in events(db, terminated)]


def test_start_wait_prints_the_result_the_worker_computed(worker: Worker, db: Path) -> None:
    result = proctor(db, "start", "tests.cli_workflows:add", "20", "22", "--wait")
    assert result.returncode == 0, result.stderr
    run_id, value = result.stdout.split()
    assert value == "42"
    assert record(db, run_id).owner is not None
