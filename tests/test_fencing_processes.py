"""Fencing with real worker processes: a paused owner, another PID namespace.

Each worker is ``python -m tests.fencing_worker DB LEASE`` (a ``proctor
worker`` with a short lease). Step attempts log their start, every
heartbeat and their end with the host's monotonic clock, so the logs of two
workers say whether two processes ever ran the step at once.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from persistence import EventType, RunState, open_store
from persistence._leases import pid_alive
from tests.conftest import wait_until
from tests.fencing_workflows import attempts
from tests.processes import DEADLINE, ROOT, events, proctor, record
from tests.store_access import nobody_writing

pytestmark = pytest.mark.timeout(120)

MODULE = "tests.fencing_workflows"


class FencingWorker:
    """``python -m tests.fencing_worker DB LEASE`` in a process group of its own."""

    def __init__(self, db: Path, log: Path, lease: float, prefix: tuple[str, ...] = ()) -> None:
        self._out = log.open("w")
        self.process = subprocess.Popen(
            [*prefix, sys.executable, "-m", "tests.fencing_worker", str(db), str(lease)],
            cwd=ROOT,
            stdout=self._out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def signal(self, signum: int) -> None:
        os.killpg(self.process.pid, signum)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.signal(signal.SIGCONT)
            self.signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=DEADLINE)
            except subprocess.TimeoutExpired:
                self.signal(signal.SIGKILL)
                self.process.wait(timeout=DEADLINE)
        self._out.close()


@pytest.fixture
def workers() -> Iterator[list[FencingWorker]]:
    started: list[FencingWorker] = []
    yield started
    for w in started:
        w.stop()


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    path = tmp_path / "side"
    path.mkdir()
    return path


def spawn(
    workers: list[FencingWorker],
    db: Path,
    tmp_path: Path,
    lease: float,
    prefix: tuple[str, ...] = (),
) -> FencingWorker:
    w = FencingWorker(db, tmp_path / f"worker{len(workers)}.log", lease, prefix)
    workers.append(w)
    return w


def start(db: Path, workflow: str, folder: Path) -> str:
    result = proctor(db, "start", f"{MODULE}:{workflow}", f'"{folder}"')
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def pause_outside_a_transaction(worker: FencingWorker, db: Path) -> None:
    """SIGSTOP the worker at a moment it holds no write lock (a worker frozen
    inside a transaction blocks every writer, which is not this scenario)."""
    while True:
        worker.signal(signal.SIGSTOP)
        # kill() returns before every thread has stopped: one running on
        # another core may still be taking the lock.
        wait_until(lambda: all_stopped(worker.process.pid), timeout=DEADLINE)
        if nobody_writing(db):
            return
        worker.signal(signal.SIGCONT)


def all_stopped(pid: int) -> bool:
    """Whether every thread of process ``pid`` is stopped (state T)."""
    for stat in Path(f"/proc/{pid}/task").glob("*/stat"):
        try:
            state = stat.read_text().rsplit(")", 1)[1].split()[0]
        except (OSError, IndexError):
            continue  # the thread ended
        if state not in ("T", "t"):
            return False
    return True


def test_fencing_a_paused_owner_learns_at_its_next_heartbeat_that_it_lost_the_run(
    workers: list[FencingWorker], db: Path, tmp_path: Path, folder: Path
) -> None:
    lease = 2.0
    a = spawn(workers, db, tmp_path, lease)
    run_id = start(db, "beating", folder)
    wait_until(lambda: len(attempts(folder, "b")) == 1, timeout=DEADLINE)

    pause_outside_a_transaction(a, db)  # SIGSTOP past its lease
    try:
        spawn(workers, db, tmp_path, lease)
        wait_until(lambda: len(attempts(folder, "b")) == 2, timeout=DEADLINE)
        taken_at = attempts(folder, "b")[1].start
    finally:
        a.signal(signal.SIGCONT)
    resumed_at = time.monotonic()

    # The old attempt's very next check raises: it learns it lost the run.
    wait_until(lambda: attempts(folder, "b")[0].ended == "terminated", timeout=10)
    old = attempts(folder, "b")[0]
    assert old.end is not None
    assert old.end - resumed_at < 5.0  # its first check once it runs again, on a busy box
    # At most a beat that was under way when the SIGSTOP came lands late.
    assert len([t for t in old.beats if t > taken_at]) <= 1

    (folder / "b.release").touch()
    wait_until(lambda: record(db, run_id).status.is_terminal, timeout=DEADLINE)
    assert record(db, run_id).status is RunState.COMPLETED
    types = [e.type for e in events(db, run_id)]
    assert types.count(EventType.STEP_COMPLETED) == 1
    assert EventType.STEP_FAILED not in types
    assert [a.ended for a in attempts(folder, "b")] == ["terminated", "end"]


def _unshare_works() -> bool:
    if shutil.which("unshare") is None:
        return False
    probe = subprocess.run(
        ["unshare", "-Urpf", "--mount-proc", "true"], capture_output=True, check=False
    )
    return probe.returncode == 0


def _free_pid() -> int:
    """A pid no process has in this PID namespace (now)."""
    return next(p for p in range(50, 5000) if not pid_alive(p))


@pytest.mark.skipif(not _unshare_works(), reason="needs unshare(1) with user namespaces")
def test_P3_a_worker_in_another_pid_namespace_is_not_judged_dead_by_its_pid(
    workers: list[FencingWorker], db: Path, tmp_path: Path, folder: Path
) -> None:
    # As two containers sharing a hostname: worker A's pid, in its own PID
    # namespace, is one that no process has in ours.
    pid = _free_pid()
    script = f'i=2; while [ "$i" -lt {pid} ]; do /bin/true; i=$((i+1)); done; "$@"'
    prefix = ("unshare", "-Urpf", "--mount-proc", "sh", "-c", script, "sh")
    lease = 1.0
    spawn(workers, db, tmp_path, lease, prefix)
    run_id = start(db, "beating", folder)
    wait_until(lambda: len(attempts(folder, "b")) == 1, timeout=DEADLINE)
    with open_store(db, readonly=True) as store:
        [a] = store.runtimes()
    assert a.pid == pid  # its pid, as it sees it
    assert not pid_alive(a.pid)  # means nothing here

    spawn(workers, db, tmp_path, lease)  # B: resumes runs whose owner is dead
    wait_until(lambda: len(_runtimes(db)) == 2, timeout=DEADLINE)
    renewals = _renewals_seen(db, a.owner, count=6)  # two leases: B judged it many times
    assert renewals >= 6
    assert record(db, run_id).owner == a.owner
    assert EventType.RUN_RESUMED not in [e.type for e in events(db, run_id)]
    assert len(attempts(folder, "b")) == 1

    (folder / "b.release").touch()
    wait_until(lambda: record(db, run_id).status.is_terminal, timeout=DEADLINE)
    assert record(db, run_id).status is RunState.COMPLETED


def _runtimes(db: Path) -> list[str]:
    with open_store(db, readonly=True) as store:
        return [r.owner for r in store.runtimes()]


def _renewals_seen(db: Path, owner: str, *, count: int) -> int:
    """Wait until ``owner`` renewed its lease ``count`` times; how many were seen."""
    seen: set[float] = set()

    def renewed() -> bool:
        with open_store(db, readonly=True) as store:
            row = next(r for r in store.runtimes() if r.owner == owner)
        if row.heartbeat_at is not None:
            seen.add(row.heartbeat_at)
        return len(seen) > count

    wait_until(renewed, timeout=DEADLINE)
    return len(seen) - 1
