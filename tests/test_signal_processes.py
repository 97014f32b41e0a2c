"""B5 with real processes: a wait's timeout survives kill -9 of its worker (D2).

A worker SIGKILLs itself right after the timeout's ``timer_started``
commits; a second worker on the same store resumes the run by replay and
times the wait out at the recorded UTC instant (not a whole timeout after
the resume), exactly once. Or, with a signal sent while no worker was
alive, the resumed wait takes it and the timer never fires.
"""

from __future__ import annotations

import json
import signal
from pathlib import Path

import pytest

from persistence import EventRecord, RunState
from tests.conftest import wait_until
from tests.processes import DEADLINE, Worker, events, proctor, record, spawn_worker

pytestmark = pytest.mark.timeout(120)

MODULE = "tests.signal_workflows"


def start_timed(db: Path, folder: Path, seconds: float) -> str:
    result = proctor(db, "start", f"{MODULE}:timed", json.dumps(str(folder)), str(seconds))
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def of(log: list[EventRecord], type_: str) -> list[EventRecord]:
    return [e for e in log if e.type.value == type_]


def finish(db: Path, run_id: str) -> tuple[object, list[EventRecord]]:
    wait_until(lambda: record(db, run_id).status.is_terminal, timeout=DEADLINE)
    final = record(db, run_id)
    assert final.status is RunState.COMPLETED, final.error
    return final.result, events(db, run_id)


def test_B5_D2_a_signal_timeout_survives_kill_9_and_fires_once_at_its_due_time(
    workers: list[Worker], db: Path, tmp_path: Path, folder: Path
) -> None:
    first = spawn_worker(workers, db, tmp_path, MODULE, crash_after="timer_started@1")
    run_id = start_timed(db, folder, 4)
    assert first.reap() == -signal.SIGKILL
    assert [e.type.value for e in events(db, run_id)][-1] == "timer_started"

    spawn_worker(workers, db, tmp_path, MODULE)
    result, log = finish(db, run_id)
    assert result == "timed out"
    (started,), (fired,) = of(log, "timer_started"), of(log, "timer_fired")
    assert started.call == fired.call == 1
    assert started.step == "signal_timeout"
    # At the recorded instant, not at the resume, nor a whole timeout after it.
    assert fired.ts >= started.data["due_at"]
    assert fired.ts < started.data["due_at"] + DEADLINE
    assert of(log, "signal_received") == []
    assert len(of(log, "signal_waiting")) == 1  # the resumed wait is not recorded twice


def test_B5_D2_a_signal_sent_while_no_worker_lived_ends_the_resumed_timed_wait(
    workers: list[Worker], db: Path, tmp_path: Path, folder: Path
) -> None:
    first = spawn_worker(workers, db, tmp_path, MODULE, crash_after="timer_started@1")
    run_id = start_timed(db, folder, 3600)
    assert first.reap() == -signal.SIGKILL
    sent = proctor(db, "signal", run_id, "approved", '"while down"')
    assert sent.returncode == 0, sent.stderr

    spawn_worker(workers, db, tmp_path, MODULE)
    result, log = finish(db, run_id)
    assert result == "while down"
    assert [e.type.value for e in log if e.type.value.startswith("timer_")] == [
        "timer_started",
        "timer_cancelled",
    ]
    assert len(of(log, "signal_received")) == 1
