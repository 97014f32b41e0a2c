"""B3 with real processes: a scope's deadline survives kill -9 of its worker (D2).

A worker SIGKILLs itself right after a commit (before the deadline fired,
or right after it fired); a second worker on the same store resumes the run
by replay. Either way the block is left once, at the same point, and the
run goes on to complete: one ``scope_cancelled``, one ``timer_fired`` of
the deadline, each step once.
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

MODULE = "tests.scope_workflows"


def start_moves_on(db: Path, folder: Path, seconds: float) -> str:
    result = proctor(db, "start", f"{MODULE}:moves_on", f'"{folder}"', str(seconds))
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def runs(folder: Path, key: str) -> int:
    path = folder / f"{key}.runs"
    return len(path.read_text().splitlines()) if path.exists() else 0


def finish(db: Path, run_id: str) -> list[EventRecord]:
    wait_until(lambda: record(db, run_id).status.is_terminal, timeout=DEADLINE)
    run = record(db, run_id)
    assert run.status is RunState.COMPLETED, run
    assert run.result is True  # the block was left by its deadline, caught
    return events(db, run_id)


def check(log: list[EventRecord], folder: Path) -> None:
    types = [e.type.value for e in log]
    assert types.count("scope_cancelled") == 1, types
    assert [e.call for e in log if e.type.value == "timer_fired"] == [1], types
    (cancelled,) = [e for e in log if e.type.value == "scope_cancelled"]
    assert cancelled.data["cause"] == "deadline"
    assert (runs(folder, "before"), runs(folder, "unreached"), runs(folder, "after")) == (1, 0, 1)


def test_B3_D2_a_deadline_that_passed_while_no_worker_was_alive_fires_on_resume(
    workers: list[Worker], db: Path, tmp_path: Path, folder: Path
) -> None:
    first = spawn_worker(workers, db, tmp_path, MODULE, crash_after="timer_started@2")
    run_id = start_moves_on(db, folder, 1)
    assert first.reap() == -signal.SIGKILL
    (scope_timer,) = [e for e in events(db, run_id) if e.type.value == "timer_started"][:1]
    due_at = scope_timer.data["due_at"]
    wait_until(lambda: time.time() > due_at + 0.5, timeout=DEADLINE)  # the instant passes

    spawn_worker(workers, db, tmp_path, MODULE)
    log = finish(db, run_id)
    check(log, folder)
    (resumed,) = [e for e in log if e.type.value == "run_resumed"]
    (fired,) = [e for e in log if e.type.value == "timer_fired"]
    assert fired.ts >= resumed.ts > due_at


def test_B3_D2_a_deadline_fired_before_kill_9_replays_at_the_same_point(
    workers: list[Worker], db: Path, tmp_path: Path, folder: Path
) -> None:
    first = spawn_worker(workers, db, tmp_path, MODULE, crash_after="timer_fired@1")
    run_id = start_moves_on(db, folder, 0.5)
    assert first.reap() == -signal.SIGKILL
    assert "scope_cancelled" in [e.type.value for e in events(db, run_id)]

    spawn_worker(workers, db, tmp_path, MODULE)
    log = finish(db, run_id)
    check(log, folder)
    types = [e.type.value for e in log]
    assert types.index("run_resumed") > types.index("scope_cancelled")
