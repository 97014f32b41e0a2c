"""Crash recovery with real processes: SIGKILL a worker, start another (D2, D3).

Each test kills a ``proctor worker`` at one point of a run, reaps it (as an
init system would), starts a second worker on the same store and checks the
final state, the log, and the side effects counted in files.
"""

from __future__ import annotations

import signal
from collections.abc import Iterator
from pathlib import Path

import pytest

from persistence import RunRecord, RunState
from tests.conftest import wait_until
from tests.processes import DEADLINE, Worker, events, proctor, record

pytestmark = pytest.mark.timeout(90)

MODULE = "tests.crash_workflows"


@pytest.fixture
def workers(db: Path, tmp_path: Path) -> Iterator[list[Worker]]:
    started: list[Worker] = []
    yield started
    for w in started:
        if w.process.poll() is None:
            w.stop()


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    path = tmp_path / "markers"
    path.mkdir()
    return path


def spawn(
    workers: list[Worker],
    db: Path,
    tmp_path: Path,
    crash_after: str | None = None,
    options: tuple[str, ...] = (),
) -> Worker:
    env = {"PROCTOR_CRASH_AFTER": crash_after or ""}
    w = Worker(db, tmp_path / f"worker{len(workers)}.log", MODULE, env, options)
    workers.append(w)
    return w


def start(db: Path, workflow: str, folder: Path) -> str:
    result = proctor(db, "start", f"{MODULE}:{workflow}", f'"{folder}"')
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def types(db: Path, run_id: str) -> list[str]:
    return [e.type.value for e in events(db, run_id)]


def runs(folder: Path, key: str) -> int:
    path = folder / f"{key}.runs"
    return len(path.read_text().splitlines()) if path.exists() else 0


def started(folder: Path, key: str, nth: int) -> None:
    wait_until((folder / f"{key}.started.{nth}").exists, timeout=DEADLINE)


def release(folder: Path, key: str) -> None:
    (folder / f"{key}.release").touch()


def finished(db: Path, run_id: str) -> RunRecord:
    wait_until(lambda: record(db, run_id).status.is_terminal, timeout=DEADLINE)
    return record(db, run_id)


def test_D2_killed_inside_a_step_the_step_runs_again_once_and_the_log_says_so(
    workers: list[Worker], db: Path, tmp_path: Path, folder: Path
) -> None:
    first = spawn(workers, db, tmp_path)
    run_id = start(db, "pipeline", folder)
    started(folder, "b", 1)
    first.kill()

    spawn(workers, db, tmp_path)
    started(folder, "b", 2)
    release(folder, "b")
    final = finished(db, run_id)

    assert final.status is RunState.COMPLETED
    assert final.result == ["a", "b", "c"]
    assert (runs(folder, "a"), runs(folder, "b"), runs(folder, "c")) == (1, 2, 1)
    log = events(db, run_id)
    reexecuted = [e for e in log if e.type.value == "step_reexecuted"]
    assert [(e.call, e.attempt, e.data["lost_attempt"]) for e in reexecuted] == [(1, 2, 1)]
    resumed = [e for e in log if e.type.value == "run_resumed"]
    assert len(resumed) == 1
    assert "is gone" in resumed[0].data["why"]  # noticed by pid, not by waiting for the lease


def test_D2_a_step_that_returns_while_its_worker_stops_on_SIGTERM_never_runs_again(
    workers: list[Worker], db: Path, tmp_path: Path, folder: Path
) -> None:
    # No drain (A4): step b is asked to stop at once, and returns then.
    first = spawn(workers, db, tmp_path, options=("--drain", "0"))
    run_id = start(db, "charges", folder)
    started(folder, "b", 1)
    assert first.stop() == 0  # SIGTERM: step b returns while the worker stops
    log = events(db, run_id)
    assert [(e.type.value, e.call) for e in log][-1] == ("step_completed", 1)

    spawn(workers, db, tmp_path)
    final = finished(db, run_id)
    assert final.status is RunState.COMPLETED
    assert final.result == ["a", "b", "c"]
    assert (runs(folder, "a"), runs(folder, "b"), runs(folder, "c")) == (1, 1, 1)
    assert "step_reexecuted" not in types(db, run_id)


def test_D2_killed_between_two_steps_nothing_runs_twice(
    workers: list[Worker], db: Path, tmp_path: Path, folder: Path
) -> None:
    # The worker SIGKILLs itself right after step 0's end is committed. That
    # commit also holds step 1's start (one group), so step 1's code never ran.
    first = spawn(workers, db, tmp_path, crash_after="step_completed@0")
    run_id = start(db, "pipeline", folder)
    assert first.reap() == -signal.SIGKILL
    assert types(db, run_id)[-3:] == ["step_completed", "step_scheduled", "step_started"]
    assert runs(folder, "b") == 0

    spawn(workers, db, tmp_path)
    started(folder, "b", 1)
    release(folder, "b")
    final = finished(db, run_id)

    assert final.status is RunState.COMPLETED
    assert (runs(folder, "a"), runs(folder, "b"), runs(folder, "c")) == (1, 1, 1)
    # Step 0 is not run again. Step 1's start was recorded, so the new
    # runtime cannot know that its code never ran: it says it runs it again.
    log = events(db, run_id)
    reexecuted = [e for e in log if e.type.value == "step_reexecuted"]
    assert [(e.call, e.attempt) for e in reexecuted] == [(1, 2)]


def test_D2_killed_during_a_shielded_cleanup_the_cleanup_finishes_and_the_run_is_cancelled(
    workers: list[Worker], db: Path, tmp_path: Path, folder: Path
) -> None:
    first = spawn(workers, db, tmp_path)
    run_id = start(db, "with_cleanup", folder)
    started(folder, "work", 1)
    assert proctor(db, "cancel", run_id, "--reason", "ops").returncode == 0
    started(folder, "cleanup", 1)
    first.kill()

    spawn(workers, db, tmp_path)
    started(folder, "cleanup", 2)
    release(folder, "cleanup")
    final = finished(db, run_id)

    assert final.status is RunState.CANCELLED
    assert final.cancel_reason == "ops"
    assert (runs(folder, "work"), runs(folder, "cleanup")) == (1, 2)
    body = [e.type.value for e in events(db, run_id) if e.call is None]
    assert body.count("cancel_delivered") == 1
    assert body[-1] == "run_cancelled"


def test_D2_a_cancel_buffered_by_a_shield_survives_the_crash(
    workers: list[Worker], db: Path, tmp_path: Path, folder: Path
) -> None:
    first = spawn(workers, db, tmp_path)
    run_id = start(db, "buffered", folder)
    started(folder, "inner", 1)
    assert proctor(db, "cancel", run_id, "--reason", "after the shield").returncode == 0
    wait_until(lambda: "cancel_buffered" in types(db, run_id), timeout=DEADLINE)
    first.kill()

    spawn(workers, db, tmp_path)
    started(folder, "inner", 2)
    release(folder, "inner")
    final = finished(db, run_id)

    assert final.status is RunState.CANCELLED
    assert runs(folder, "inner") == 2
    assert runs(folder, "after") == 0  # the buffered cancel met the body at the shield's end
    assert types(db, run_id)[-3:] == ["shield_exited", "cancel_delivered", "run_cancelled"]


def test_C3_killed_while_cancelling_the_lost_step_is_not_started_again(
    workers: list[Worker], db: Path, tmp_path: Path, folder: Path
) -> None:
    first = spawn(workers, db, tmp_path)
    run_id = start(db, "deaf_job", folder)
    started(folder, "deaf", 1)
    assert proctor(db, "cancel", run_id, "--reason", "stop").returncode == 0
    assert record(db, run_id).status is RunState.CANCELLING  # the step has not checked yet
    first.kill()

    release(folder, "deaf")  # a next attempt would check at once
    spawn(workers, db, tmp_path)
    final = finished(db, run_id)

    assert final.status is RunState.CANCELLED
    # C3: no attempt starts while cancelling; the body meets the cancel at the await.
    assert (runs(folder, "deaf"), runs(folder, "cleanup")) == (1, 1)
    log = events(db, run_id)
    assert [e.type.value for e in log if e.type.value.startswith("step_re")] == []
    assert [e.attempt for e in log if e.type.value == "step_abandoned"] == [1]


def test_D3_cancel_and_terminate_sent_while_no_worker_lives_take_effect_on_resume(
    workers: list[Worker], db: Path, tmp_path: Path, folder: Path
) -> None:
    first = spawn(workers, db, tmp_path)
    to_cancel = start(db, "with_cleanup", folder)
    to_terminate = start(db, "pipeline", folder)
    started(folder, "work", 1)
    started(folder, "b", 1)
    first.kill()

    assert proctor(db, "cancel", to_cancel, "--reason", "while down").returncode == 0
    assert proctor(db, "terminate", to_terminate, "--reason", "while down").returncode == 0
    assert record(db, to_terminate).status is RunState.TERMINATED  # T1: at once, no worker needed

    spawn(workers, db, tmp_path)
    started(folder, "cleanup", 1)  # the resumed body met the cancel at its await
    release(folder, "cleanup")
    final = finished(db, to_cancel)
    assert final.status is RunState.CANCELLED
    assert final.cancel_reason == "while down"
    assert runs(folder, "work") == 1  # C3: not started again while cancelling
    assert runs(folder, "cleanup") == 1
    assert record(db, to_terminate).status is RunState.TERMINATED
    assert runs(folder, "b") == 1  # a terminated run is never resumed
    assert "run_resumed" not in types(db, to_terminate)
