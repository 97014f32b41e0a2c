"""B2 with real processes: SIGKILL a worker after a step handle's cancel,
start another on the same store, and check the await's outcome is replayed
(D2), and that the cancelled step is not run again."""

from __future__ import annotations

from pathlib import Path

import pytest

from persistence import RunState
from tests.conftest import wait_until
from tests.processes import DEADLINE, Worker, events, proctor, record, spawn_worker

pytestmark = pytest.mark.timeout(90)

MODULE = "tests.handle_workflows"


def _runs(folder: Path, key: str) -> int:
    path = folder / f"{key}.runs"
    return len(path.read_text().splitlines()) if path.exists() else 0


def _ended(db: Path, run_id: str, call: int) -> bool:
    return any(e.type.value == "step_completed" and e.call == call for e in events(db, run_id))


def _types(db: Path, run_id: str) -> list[str]:
    return [e.type.value for e in events(db, run_id)]


@pytest.mark.parametrize("step_ended_before_the_kill", [True, False])
def test_B2_a_handle_cancel_is_replayed_after_kill_9(
    workers: list[Worker], db: Path, tmp_path: Path, folder: Path, step_ended_before_the_kill: bool
) -> None:
    first = spawn_worker(workers, db, tmp_path, MODULE)
    result = proctor(db, "start", f"{MODULE}:cancels_a_deaf_step", f'"{folder}"')
    assert result.returncode == 0, result.stderr
    run_id = result.stdout.strip()
    wait_until((folder / "wait.started.1").exists, timeout=DEADLINE)
    assert _runs(folder, "deaf") == 1  # still running: the await did not wait for it
    if step_ended_before_the_kill:
        (folder / "deaf.release").touch()
        # TRY_CANCEL of a step that completed anyway: its result is recorded...
        wait_until(lambda: _ended(db, run_id, call=0), timeout=DEADLINE)
    first.kill()

    spawn_worker(workers, db, tmp_path, MODULE)
    wait_until((folder / "wait.started.2").exists, timeout=DEADLINE)
    (folder / "wait.release").touch()
    (folder / "deaf.release").touch()
    wait_until(lambda: record(db, run_id).status.is_terminal, timeout=DEADLINE)
    run = record(db, run_id)
    assert run.status is RunState.COMPLETED
    # ...and replay still raises at the await, as the live run did.
    assert run.result == [True, ["cancelled", "stop"]]
    assert _runs(folder, "deaf") == 1  # never run again: cancelled, or ended
    assert _runs(folder, "after") == 1  # recorded before the kill: replayed
    assert _types(db, run_id).count("call_cancel_requested") == 1
