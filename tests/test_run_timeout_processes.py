"""B4 with real processes: a worker killed with SIGKILL does not reset a run's
deadline; the worker that takes the run over fires it at the original
instant, or at once if it passed while no worker was alive.

Timing bounds are generous (a loaded 2-core box); each is far from what a
reset clock would give: a full timeout after the takeover.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from persistence import EventRecord, EventType, RunState
from tests.conftest import wait_until
from tests.processes import DEADLINE, Worker, events, proctor, record, spawn_worker

pytestmark = pytest.mark.timeout(120)

MODULE = "tests.timeout_workflows"


@pytest.fixture
def folder(tmp_path: Path) -> Iterator[Path]:
    path = tmp_path / "markers"
    path.mkdir()
    yield path
    (path / "a.release").touch()


def start(db: Path, folder: Path, run_timeout: float) -> str:
    result = proctor(
        db,
        "start",
        f"{MODULE}:unbounded",
        f'"{folder}"',
        '"a"',
        "--run-timeout",
        str(run_timeout),
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def first(db: Path, run_id: str, type_: EventType) -> EventRecord:
    return next(e for e in events(db, run_id) if e.type is type_)


def finished(db: Path, run_id: str) -> RunState:
    wait_until(lambda: record(db, run_id).status.is_terminal, timeout=DEADLINE)
    return record(db, run_id).status


def test_B4_a_kill_9_does_not_reset_the_clock(
    db: Path, tmp_path: Path, folder: Path, workers: list[Worker]
) -> None:
    run_id = start(db, folder, 6)
    spawn_worker(workers, db, tmp_path, MODULE)
    wait_until((folder / "a.started").exists, timeout=DEADLINE)
    (folder / "a.started").unlink()
    created = first(db, run_id, EventType.RUN_CREATED)
    # Killed 2 s into the run: a reset clock would then fire at 8 s or later, not 6.
    wait_until(lambda: time.time() > created.ts + 2, timeout=DEADLINE)
    workers[0].kill()
    spawn_worker(workers, db, tmp_path, MODULE)
    wait_until((folder / "a.started").exists, timeout=DEADLINE)  # taken over
    assert finished(db, run_id) is RunState.CANCELLED
    deadline = first(db, run_id, EventType.RUN_CREATED).data["deadline"]
    resumed = first(db, run_id, EventType.RUN_RESUMED)
    cancel = first(db, run_id, EventType.CANCEL_REQUESTED)
    assert cancel.data["source"] == "timeout"
    assert cancel.data["origin"] != resumed.data["previous_owner"]  # the new worker fired it
    assert resumed.ts > created.ts + 2
    assert deadline - 0.05 <= cancel.ts <= deadline + 1.5
    assert cancel.ts < resumed.ts + 6 - 0.5  # a reset clock fires a full 6 s after it


def test_B4_a_deadline_that_passed_while_no_worker_was_alive_fires_at_once_on_resume(
    db: Path, tmp_path: Path, folder: Path, workers: list[Worker]
) -> None:
    run_id = start(db, folder, 3)
    spawn_worker(workers, db, tmp_path, MODULE)
    wait_until((folder / "a.started").exists, timeout=DEADLINE)
    workers[0].kill()
    deadline = first(db, run_id, EventType.RUN_CREATED).data["deadline"]
    if record(db, run_id).status.is_terminal:
        pytest.fail("the first worker was not killed before the deadline")
    wait_until(lambda: time.time() > deadline + 0.5, timeout=DEADLINE)
    spawn_worker(workers, db, tmp_path, MODULE)
    assert finished(db, run_id) is RunState.CANCELLED
    resumed = first(db, run_id, EventType.RUN_RESUMED)
    cancel = first(db, run_id, EventType.CANCEL_REQUESTED)
    assert cancel.data["source"] == "timeout"
    assert cancel.ts - resumed.ts < 2.0  # at once, not 3 s after the takeover


def test_B4_a_pending_run_past_its_deadline_is_cancelled_when_a_worker_claims_it(
    db: Path, tmp_path: Path, folder: Path, workers: list[Worker]
) -> None:
    run_id = start(db, folder, 0.5)
    deadline = first(db, run_id, EventType.RUN_CREATED).data["deadline"]
    wait_until(lambda: time.time() > deadline + 0.2, timeout=DEADLINE)
    assert record(db, run_id).status is RunState.PENDING  # nobody fires it meanwhile
    spawn_worker(workers, db, tmp_path, MODULE)
    assert finished(db, run_id) is RunState.CANCELLED
    claimed = first(db, run_id, EventType.RUN_CLAIMED)
    cancel = first(db, run_id, EventType.CANCEL_REQUESTED)
    assert cancel.data["source"] == "timeout"
    assert cancel.ts - claimed.ts < 2.0
