"""Fault injection around real ``proctor worker`` processes (issue: nothing lost,
nothing run twice, nothing stranded).

Each scenario starts workers on one store, starts runs whose steps write
side files (:mod:`tests.fault_workflows`), injects faults (SIGKILL,
SIGSTOP past or within the lease, a write lock held past the lease,
cancel/terminate interleaved with kills, child runs abandoned or terminated
as they start, a second worker in another PID namespace or with its wall
clock an hour ahead, a clean SIGTERM, a store file deleted, replaced or
damaged), then leaves a healthy worker and checks the invariants of
:mod:`tests.fault_invariants`. Randomness is seeded; a failure message starts
with the seed (``PROCTOR_FAULT_SEED=<n>`` replays the same choices; the
timing of processes still varies). The ``time.sleep`` calls are the faults'
durations and random moments, never a wait for something to happen.

Marked ``faults``: part of the default run (``-m "not faults"`` skips them).
"""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from persistence import StoreError, open_store
from tests.fault_harness import (
    LEASE_TTL,
    FaultWorker,
    Fleet,
    WriteLock,
    all_runs,
    cancel,
    fleet,
    seed_for,
    start_runs,
    terminate,
    wait_all_terminal,
    wait_for_run,
    wait_for_side_lines,
)
from tests.fault_invariants import (
    Findings,
    cancelled_outcomes,
    check_invariants,
    read_side_files,
)
from tests.processes import proctor

pytestmark = [pytest.mark.faults, pytest.mark.timeout(150)]

#: With the faults over and a healthy worker left, every run ends within this.
SETTLE = 60.0
#: A worker whose store went bad must have stopped within this.
LOUD_EXIT = 15.0


def settle_and_check(
    f: Fleet,
    run_ids: list[str],
    *,
    trusted_pids: set[int] | None = None,
    extra: Callable[[], Findings] | None = None,
) -> None:
    """Leave a healthy worker, wait for every run to end, check every invariant."""
    f.ensure_healthy()
    # Child runs too: they are in the store, not in the list the test kept.
    run_ids = sorted({*run_ids, *(r.run_id for r in all_runs(f.db) if r.parent_run_id)})
    stuck = wait_all_terminal(f.db, run_ids, timeout=SETTLE)
    clean = f.clean_exit_pids()
    found = check_invariants(
        f.db, f.folder, run_ids, trusted_pids=trusted_pids, clean_exit_pids=clean
    )
    for run_id in stuck:
        found.add("every run terminal", f"run {run_id} is not terminal after {SETTLE}s")
    if extra is not None:
        found.merge(extra())
    print(f"seed {f.seed}: {found.render()}")  # what it exercised, shown with -s
    assert not found, f"{f.report()}\n{found.render()}"


def in_flight(f: Fleet, count: int) -> None:
    """Wait until ``count`` step attempts have started (some work is under way)."""
    assert wait_for_side_lines(f.folder, count, timeout=60.0), f.report()


def busiest(f: Fleet) -> FaultWorker:
    """The live worker with the most step attempts under way (by their side files)."""
    sides = read_side_files(f.folder)
    running = [lines[-1].pid for lines in sides.values() if lines[-1].kind in ("start", "tick")]
    return max(f.live(), key=lambda w: running.count(w.pid))


# -- SIGKILL ------------------------------------------------------------------------------


def test_faults_D2_kill_loop_every_run_ends_and_no_step_runs_twice_at_once(
    db: Path, tmp_path: Path
) -> None:
    """kill -9 a random worker of three, again and again, while ~70 runs execute."""
    with fleet(db, tmp_path, seed=seed_for(1301)) as f:
        for _ in range(3):
            f.spawn()
        run_ids: list[str] = []
        for _wave in range(12):
            run_ids += start_runs(db, "chain", [[str(f.folder), 3, 8, 0.05]] * 6)
            time.sleep(f.rng.uniform(0.3, 1.0))  # the fault's random moment
            if f.live():
                f.rng.choice(f.live()).kill()
            f.spawn()
        settle_and_check(f, run_ids)


def test_faults_C3_D3_interleaved_start_cancel_terminate_and_kills_never_strand_a_run(
    db: Path, tmp_path: Path
) -> None:
    """Random starts, cancels (some through the CLI), terminates and kills."""
    cancelled: set[str] = set()
    with fleet(db, tmp_path, seed=seed_for(1302)) as f:
        f.spawn()
        f.spawn()
        run_ids = start_runs(db, "cancellable", [[str(f.folder), 3, 6, 0.05]] * 10)
        for _op in range(50):
            time.sleep(f.rng.uniform(0.05, 0.3))
            op = f.rng.random()
            target = f.rng.choice(run_ids)
            if op < 0.2:
                run_ids += start_runs(db, "cancellable", [[str(f.folder), 3, 6, 0.05]] * 3)
            elif op < 0.45:
                if cancel(db, target):
                    cancelled.add(target)
            elif op < 0.5:
                result = proctor(db, "cancel", target, "--reason", "cli")
                assert result.returncode in (0, 4), result.stderr  # 4: already finished
                if result.returncode == 0:
                    cancelled.add(target)
            elif op < 0.6:
                terminate(db, target)
            elif op < 0.88:
                if f.live():
                    f.rng.choice(f.live()).kill()
                f.spawn()
            else:
                # Every worker dies; cancels arrive while none is alive (D3).
                for w in f.live():
                    w.kill()
                unfinished = sorted(r.run_id for r in all_runs(db) if not r.status.is_terminal)
                for run_id in f.rng.sample(unfinished, min(3, len(unfinished))):
                    if cancel(db, run_id):
                        cancelled.add(run_id)
                f.spawn()
                f.spawn()
        settle_and_check(f, run_ids, extra=lambda: cancelled_outcomes(db, cancelled))


def test_faults_stranded_child_runs_under_kills_and_terminates_all_end(
    db: Path, tmp_path: Path
) -> None:
    """Parents with an abandoned and an awaited child; children terminated, workers killed."""
    with fleet(db, tmp_path, seed=seed_for(1311)) as f:
        f.spawn()
        f.spawn()
        run_ids: list[str] = []
        for _op in range(30):
            op = f.rng.random()
            if op < 0.35:
                run_ids += start_runs(db, "family", [[str(f.folder), 6, 0.05]] * 2)
            elif op < 0.5:
                children = [r.run_id for r in all_runs(db) if r.parent_run_id]
                if children:
                    terminate(db, f.rng.choice(children))
            elif op < 0.7:
                # Terminate the awaited child the moment it exists.
                (parent,) = start_runs(db, "family", [[str(f.folder), 6, 0.05]])
                run_ids.append(parent)
                if wait_for_run(db, f"{parent}.1", timeout=20.0):
                    terminate(db, f"{parent}.1")
            elif f.live():
                f.rng.choice(f.live()).kill()
                f.spawn()
            time.sleep(f.rng.uniform(0.05, 0.4))
        settle_and_check(f, run_ids)


# -- SIGSTOP ------------------------------------------------------------------------------


def _pause_scenario(db: Path, tmp_path: Path, *, seed: int, pause: float) -> None:
    with fleet(db, tmp_path, seed=seed) as f:
        f.spawn()
        f.spawn()
        run_ids = start_runs(db, "chain", [[str(f.folder), 2, 50, 0.05]] * 10)
        in_flight(f, 10)
        f.wait_ready()
        victim = busiest(f)
        victim.pause()
        time.sleep(pause)  # the fault itself: a process frozen this long
        victim.resume()
        settle_and_check(f, run_ids)


def test_faults_fencing_pause_past_the_lease_the_frozen_worker_does_not_run_on_beside_its_successor(
    db: Path, tmp_path: Path
) -> None:
    """SIGSTOP a worker for twice its lease, then SIGCONT (issue item 3, fencing)."""
    _pause_scenario(db, tmp_path, seed=seed_for(1303), pause=2 * LEASE_TTL)


def test_faults_fencing_pause_within_the_lease_changes_nothing(db: Path, tmp_path: Path) -> None:
    """SIGSTOP a worker for a third of its lease: nobody takes its runs over."""
    _pause_scenario(db, tmp_path, seed=seed_for(1304), pause=LEASE_TTL / 3)


# -- the write lock ------------------------------------------------------------------------


def test_faults_fencing_write_lock_held_past_the_lease_no_step_runs_twice_at_once(
    db: Path, tmp_path: Path
) -> None:
    """Another process holds ``BEGIN EXCLUSIVE`` for longer than the lease (item 3)."""
    with fleet(db, tmp_path, seed=seed_for(1305)) as f:
        f.spawn()
        f.spawn()
        # One long step per run: still running when the lock is released.
        run_ids = start_runs(db, "chain", [[str(f.folder), 1, 200, 0.05]] * 10)
        in_flight(f, 10)
        f.wait_ready()  # both alive on the store: one could take the other's runs
        lock = WriteLock(db)
        try:
            time.sleep(2 * LEASE_TTL)  # the fault itself: the lock held this long
        finally:
            lock.release()
        settle_and_check(f, run_ids)


# -- ownership judged across namespaces and clocks -----------------------------------------


def _second_opinion_scenario(
    db: Path, tmp_path: Path, *, seed: int, env: dict[str, str], prefix: list[str]
) -> None:
    """A owns runs in flight; B, which sees the world differently, joins; A lives on."""
    with fleet(db, tmp_path, seed=seed) as f:
        f.spawn()
        run_ids = start_runs(db, "chain", [[str(f.folder), 1, 100, 0.05]] * 10)
        in_flight(f, 10)
        f.spawn(env=env, prefix=prefix)
        f.wait_ready()
        settle_and_check(f, run_ids)


def _unshare_works() -> bool:
    try:
        probe = subprocess.run(
            ["unshare", "-p", "-f", "--mount-proc", "true"],
            capture_output=True,
            timeout=10,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return False
    return probe.returncode == 0


def test_faults_fencing_a_worker_in_another_pid_namespace_does_not_take_live_runs(
    db: Path, tmp_path: Path
) -> None:
    """Same hostname, another PID namespace (two containers): A's pid means nothing to B."""
    if not _unshare_works():
        pytest.skip("unshare -p (a new PID namespace) is not permitted here")
    prefix = ["unshare", "-p", "-f", "--mount-proc", "--kill-child"]
    _second_opinion_scenario(db, tmp_path, seed=seed_for(1309), env={}, prefix=prefix)


def test_faults_P3_a_worker_whose_wall_clock_is_an_hour_ahead_does_not_take_live_runs(
    db: Path, tmp_path: Path
) -> None:
    """B's wall clock is an hour ahead (P3: never compare two hosts' wall clocks)."""
    env = {"PROCTOR_FAULT_CLOCK_SKEW": "3600"}
    _second_opinion_scenario(db, tmp_path, seed=seed_for(1310), env=env, prefix=[])


# -- a clean stop -------------------------------------------------------------------------


def test_faults_A4_sigterm_loop_a_step_finished_before_exit_is_recorded(
    db: Path, tmp_path: Path
) -> None:
    """SIGTERM workers while steps finish their last unchecked stretch (A4, item 2)."""
    with fleet(db, tmp_path, seed=seed_for(1306)) as f:
        f.spawn()
        f.spawn()
        run_ids: list[str] = []
        for _wave in range(5):
            run_ids += start_runs(db, "chain", [[str(f.folder), 3, 2, 0.05, 0.3]] * 6)
            time.sleep(f.rng.uniform(0.8, 1.5))
            busiest(f).stop()
            f.spawn()
        settle_and_check(f, run_ids)


# -- the store file -----------------------------------------------------------------------


def _backup(db: Path, to: Path) -> None:
    src, dst = sqlite3.connect(db), sqlite3.connect(to)
    try:
        src.backup(dst)
    finally:
        src.close()
        dst.close()


def _loud_exit(f: Fleet, worker_index: int, *, bus_error_ok: bool = False) -> str:
    """'' if the worker stopped by itself with an error naming its store, else why not.

    ``bus_error_ok``: a damaged ``-shm`` (SQLite maps it into memory) may kill
    the process with SIGBUS before any code can react; then its output must
    at least say so (as ``faulthandler`` does).
    """
    w = f.workers[worker_index]
    deadline = time.monotonic() + LOUD_EXIT
    while w.alive and time.monotonic() < deadline:
        time.sleep(0.05)
    if w.alive:
        return f"{w.describe()} still runs {LOUD_EXIT}s after its store went bad"
    code = w.process.returncode
    text = w.output()
    if bus_error_ok and code == -signal.SIGBUS:
        if "bus error" in text.lower():
            return ""
        return f"{w.describe()}: died of SIGBUS and its output says nothing about it"
    if code <= 0:
        return f"{w.describe()}: exit {code} is not an error exit (a signal, or 0)"
    if str(f.db) not in text and "store" not in text.lower():
        return f"{w.describe()}: its output does not say what is wrong with the store"
    return ""


CORRUPTIONS = ["wal_deleted", "shm_truncated", "shm_readonly", "replaced_by_backup", "deleted"]


@pytest.mark.parametrize("kind", CORRUPTIONS)
@pytest.mark.sqlite_only(
    "deletes, replaces or damages the store's file (its -wal, -shm): a PostgreSQL store has none"
)
def test_faults_store_file_damaged_the_worker_stops_loudly_and_nothing_is_lost_or_doubled(
    db: Path, tmp_path: Path, kind: str
) -> None:
    if kind == "shm_readonly" and os.geteuid() == 0:
        pytest.skip("root ignores file modes: -shm cannot be made read-only")
    with fleet(db, tmp_path, seed=seed_for(1307)) as f:
        f.spawn()
        backup = tmp_path / "backup.db"
        run_ids = start_runs(db, "chain", [[str(f.folder), 3, 10, 0.05]] * 10)
        in_flight(f, 5)
        if kind == "replaced_by_backup":
            _backup(db, backup)
            in_flight(f, 15)  # work the backup will not know of
        wal, shm = Path(f"{db}-wal"), Path(f"{db}-shm")
        if kind == "wal_deleted":
            wal.unlink()
        elif kind == "shm_truncated":
            os.truncate(shm, 0)
        elif kind == "shm_readonly":
            shm.chmod(0o444)
        elif kind == "replaced_by_backup":
            os.replace(backup, db)  # the old -wal and -shm stay
        else:
            for p in (db, wal, shm):
                p.unlink(missing_ok=True)
        why = _loud_exit(f, 0, bus_error_ok=kind == "shm_truncated")
        assert not why, f"{f.report()}\n{kind}: {why}"
        if kind == "shm_readonly":
            shm.chmod(0o644)
        if kind == "deleted":
            return  # nothing left to check: the history went with the file
        if kind == "replaced_by_backup":
            # A restored backup forgot the work done after it was taken: hold
            # the log only against the workers that ran on it. A fresh worker
            # may also refuse a store it finds inconsistent, loudly.
            fresh = f.spawn()
            try:
                with open_store(db, readonly=True) as store:
                    known = [r.run_id for r in store.list_runs()]
            except StoreError:
                assert not _loud_exit(f, len(f.workers) - 1), f.report()
                return
            settle_and_check(f, known, trusted_pids={fresh.pid})
            return
        settle_and_check(f, run_ids)


def test_faults_the_harness_sees_an_overlap_and_an_unlogged_rerun(db: Path, tmp_path: Path) -> None:
    """The checker itself: fabricated side files break invariants 3 and 4."""
    with fleet(db, tmp_path, seed=seed_for(1308)) as f:
        f.spawn()
        (run_id,) = start_runs(db, "chain", [[str(f.folder), 1, 1, 0.01]])
        settle_and_check(f, [run_id])
        side = next(f.folder.glob(f"{run_id}.0.*"))
        first = side.read_text().splitlines()[0].split()
        at = float(first[3])
        with side.open("a") as out:  # another process inside, at the same time, unlogged
            out.write(f"start 1 1 {at} {time.time()}\nend 1 1 {at + 0.001} {time.time()}\n")
        found = check_invariants(db, f.folder, [run_id])
        assert {k for k, v in found.violations.items() if v} == {
            "no two processes in one step at once",
            "every re-execution logged",
        }, found.render()
