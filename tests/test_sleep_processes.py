"""B1 with real processes: a durable sleep survives kill -9 of its worker (D2).

A worker SIGKILLs itself right after the sleep's ``timer_started`` commits;
a second worker on the same store resumes the run by replay and fires the
timer at its recorded UTC instant, or at once if that passed while no
worker was alive. Exactly one ``timer_fired``, whatever the crash.
"""

from __future__ import annotations

import signal
import time
from pathlib import Path

import pytest

from persistence import EventRecord, RunState
from tests.conftest import wait_until
from tests.processes import DEADLINE, Worker, events, proctor, record, spawn_worker

pytestmark = pytest.mark.timeout(120)

MODULE = "tests.sleep_workflows"


def start_dozes(db: Path, folder: Path, seconds: float) -> str:
    result = proctor(db, "start", f"{MODULE}:dozes", f'"{folder}"', str(seconds))
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def only(log: list[EventRecord], type_: str) -> EventRecord:
    found = [e for e in log if e.type.value == type_]
    assert len(found) == 1, [e.type.value for e in log]
    return found[0]


def runs(folder: Path, key: str) -> int:
    path = folder / f"{key}.runs"
    return len(path.read_text().splitlines()) if path.exists() else 0


def finish(db: Path, run_id: str) -> list[EventRecord]:
    wait_until(lambda: record(db, run_id).status.is_terminal, timeout=DEADLINE)
    assert record(db, run_id).status is RunState.COMPLETED
    return events(db, run_id)


def test_B1_D2_a_sleep_survives_kill_9_and_fires_once_at_its_due_time(
    workers: list[Worker], db: Path, tmp_path: Path, folder: Path
) -> None:
    first = spawn_worker(workers, db, tmp_path, MODULE, crash_after="timer_started@1")
    run_id = start_dozes(db, folder, 4)
    assert first.reap() == -signal.SIGKILL
    assert [e.type.value for e in events(db, run_id)][-1] == "timer_started"

    spawn_worker(workers, db, tmp_path, MODULE)
    log = finish(db, run_id)
    started, fired = only(log, "timer_started"), only(log, "timer_fired")
    assert fired.call == started.call == 1
    # Fired at the recorded instant, not at the resume, nor a whole sleep after it.
    assert fired.ts >= started.data["due_at"]
    assert fired.ts < started.data["due_at"] + DEADLINE
    assert only(log, "run_resumed").ts < started.data["due_at"]  # it did wait
    assert (runs(folder, "before"), runs(folder, "after")) == (1, 1)


def test_B1_D2_a_sleep_due_while_no_worker_was_alive_fires_at_once_on_resume(
    workers: list[Worker], db: Path, tmp_path: Path, folder: Path
) -> None:
    first = spawn_worker(workers, db, tmp_path, MODULE, crash_after="timer_started@1")
    run_id = start_dozes(db, folder, 1)
    assert first.reap() == -signal.SIGKILL
    due_at = only(events(db, run_id), "timer_started").data["due_at"]
    wait_until(lambda: time.time() > due_at + 0.5, timeout=DEADLINE)  # the instant passes

    spawn_worker(workers, db, tmp_path, MODULE)
    log = finish(db, run_id)
    fired, resumed = only(log, "timer_fired"), only(log, "run_resumed")
    assert resumed.ts > due_at
    assert fired.ts - resumed.ts < 5  # at once (generous for a loaded machine)
    assert (runs(folder, "before"), runs(folder, "after")) == (1, 1)


def test_B1_C2_proctor_cancel_from_another_process_ends_a_one_hour_sleep_at_once(
    workers: list[Worker], db: Path, tmp_path: Path, folder: Path
) -> None:
    spawn_worker(workers, db, tmp_path, MODULE)
    run_id = start_dozes(db, folder, 3600)
    wait_until(
        lambda: any(e.type.value == "timer_started" for e in events(db, run_id)),
        timeout=DEADLINE,
    )
    began = time.monotonic()
    result = proctor(db, "cancel", run_id, "--reason", "no time", "--wait", "--timeout", "20")
    took = time.monotonic() - began
    assert result.returncode == 0, result.stderr
    assert record(db, run_id).status is RunState.CANCELLED
    assert took < 20  # a fresh interpreter, not the hour
    log = [e.type.value for e in events(db, run_id)]
    assert log[-3:] == ["timer_cancelled", "cancel_delivered", "run_cancelled"]
    assert runs(folder, "after") == 0
