"""Ownership is proven, not assumed: fencing and leases in one process (P3).

A runtime that cannot renew its lease stops its own steps before anyone may
take its runs over; a step learns at its next check that its run changed
owner; a lease is judged by an observed lack of renewal on the observer's
own monotonic clock, never by comparing wall clocks. The tests with real
worker processes (SIGSTOP, another PID namespace) are in
``test_fencing_processes.py``.
"""

from __future__ import annotations

import itertools
import sqlite3
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pykka
import pytest

from actors import EventType, ProctorError, RunState, Runtime, Terminated
from actors._census import Census
from actors._fencing import LeaseGuard
from actors._journal import Journal
from actors._messages import Append, LeaseLost, RenewLease
from persistence import LeaseObserver, NewEvent, open_store, resume_request
from persistence._leases import BOOT_ID, PID_NS
from persistence._schema import SCHEMA_VERSION
from tests.conftest import assert_nothing_left, events_of, wait_until
from tests.fencing_workflows import Attempt, attempts, beating, checking
from tests.store_access import raw_sql, store_exists, write_lock
from tests.test_durability import old_store

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
def runtimes(db: Path) -> Iterator[list[Runtime]]:
    before = set(threading.enumerate())
    opened: list[Runtime] = []
    yield opened
    for runtime in opened:
        runtime.close()
    assert_nothing_left(before)


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    path = tmp_path / "side"
    path.mkdir()
    return path


def open_rt(runtimes: list[Runtime], db: Path, **options: object) -> Runtime:
    runtime = Runtime(db, **options)  # type: ignore[arg-type]
    runtimes.append(runtime)
    return runtime


def never_two_at_once(runs: list[Attempt]) -> None:
    """No attempt started before the previous one was last seen running."""
    for earlier, later in itertools.pairwise(runs):
        assert earlier.ended is not None, "an earlier attempt never ended"
        assert later.start > earlier.last, (earlier, later)


def terminated(folder: Path, key: str = "b") -> Attempt | None:
    return next((a for a in attempts(folder, key) if a.ended == "terminated"), None)


# -- self-fencing ------------------------------------------------------------------


def test_fencing_a_store_locked_past_the_lease_stops_the_step_before_anyone_can_take_over(
    runtimes: list[Runtime], db: Path, folder: Path
) -> None:
    lease = 1.5
    a = open_rt(runtimes, db, lease_ttl=lease)
    b = open_rt(runtimes, db, lease_ttl=lease)  # resumes orphans, watching `a`'s lease
    run_id = a.start(beating, str(folder)).run_id
    wait_until(lambda: attempts(folder, "b"))

    with write_lock(db):  # another process's long write transaction
        locked_at = time.monotonic()
        # The step's own checks raise before the lease could have lapsed:
        # nobody can write (take over) while the lock is held anyway.
        wait_until(lambda: terminated(folder) is not None, timeout=lease * 3)
        fenced = terminated(folder)
        assert fenced is not None
        assert fenced.end is not None
        assert fenced.end - locked_at < lease
        # The scenario: the lock is held past a whole lease, so `b` saw `a`
        # silent for longer than the lease while it could not write.
        time.sleep(max(0.0, locked_at + 2 * lease - time.monotonic()))

    # Now `a` renews again (and hosts its run anew) or `b` revokes it and
    # takes the run over: one of them, never both at once.
    wait_until(lambda: len(attempts(folder, "b")) >= 2, timeout=30)
    (folder / "b.release").touch()
    # Asked through `b`: `a`, if revoked, has stopped itself (and says why).
    assert b.handle(run_id).wait_finished(timeout=30).status is RunState.COMPLETED
    runs = attempts(folder, "b")
    never_two_at_once(runs)
    types = [e.type for e in events_of(a, run_id)]
    assert EventType.STEP_FAILED not in types  # the fenced attempt is not an outcome
    assert types.count(EventType.STEP_COMPLETED) == 1


def test_fencing_a_runtime_whose_lease_was_revoked_stops_its_steps_and_hosts_nothing(
    runtimes: list[Runtime], db: Path, folder: Path
) -> None:
    a = open_rt(runtimes, db, lease_ttl=0.9, resume=False)  # renews every 0.3 s
    run_id = a.start(beating, str(folder)).run_id
    wait_until(lambda: attempts(folder, "b"))
    with open_store(db) as store:
        store.expire_lease(a.id, "judged dead by a test")
    wait_until(lambda: terminated(folder) is not None)
    wait_until(lambda: a._directory.get(run_id) is None)
    # Nothing of the fenced attempt was recorded: the run waits for a runtime.
    with open_store(db, readonly=True) as store:
        record = store.get_run(run_id)
    assert record.status is RunState.RUNNING
    assert record.owner == a.id
    assert EventType.STEP_FAILED not in [e.type for e in events_of(a, run_id)]
    # It can never renew again: it stops loudly instead of idling as if alive
    # (a worker would claim nothing, forever), and every call says why.
    wait_until(lambda: a.failure is not None)
    assert "lost its lease for good" in str(a.failure)
    with pytest.raises(ProctorError, match="lost its lease"):
        a.start(beating, str(folder))
    # Another runtime resumes it at once: the row says `a` is dead.
    (folder / "b.release").touch()
    b = open_rt(runtimes, db)
    assert b.handle(run_id).wait_finished(timeout=20).status is RunState.COMPLETED
    never_two_at_once(attempts(folder, "b"))


def test_fencing_a_step_learns_at_its_heartbeat_that_its_run_changed_owner(
    runtimes: list[Runtime], db: Path, folder: Path
) -> None:
    # A lease long enough that no renewal (and its scan) happens in the test:
    # the heartbeat alone must tell the step.
    a = open_rt(runtimes, db, lease_ttl=600, resume=False)
    run_id = a.start(beating, str(folder)).run_id
    wait_until(lambda: attempts(folder, "b"))
    with open_store(db) as store:
        seen = store.get_run(run_id).last_seq
        [taken] = store.append(
            [resume_request(run_id, "rt-other", previous_owner=a.id, seen_seq=seen, why="test")]
        )
    assert taken.accepted
    wait_until(lambda: terminated(folder) is not None, timeout=5)
    wait_until(lambda: a._directory.get(run_id) is None)
    after = [e for e in events_of(a, run_id) if e.seq > taken.seq]  # type: ignore[union-attr]
    assert after == []  # `a` wrote nothing once it was no longer the owner


def test_fencing_a_hosted_run_owned_elsewhere_stops_at_the_next_renewal(
    runtimes: list[Runtime], db: Path, folder: Path
) -> None:
    """A step that only checks (no heartbeat record) learns it at a renewal."""
    a = open_rt(runtimes, db, lease_ttl=0.9, resume=False)
    run_id = a.start(checking, str(folder)).run_id
    wait_until(lambda: attempts(folder, "b"))
    with open_store(db) as store:
        seen = store.get_run(run_id).last_seq
        [taken] = store.append(
            [resume_request(run_id, "rt-other", previous_owner=a.id, seen_seq=seen, why="test")]
        )
    assert taken.accepted
    wait_until(lambda: terminated(folder) is not None, timeout=5)
    wait_until(lambda: a._directory.get(run_id) is None)


# -- configuration ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"lease_ttl": 10, "busy_timeout": 5}, "at least 3x busy_timeout"),
        ({"lease_ttl": 1, "busy_timeout": 0.5}, "at least 3x busy_timeout"),
        ({"lease_ttl": 0}, "lease_ttl must be positive"),
        ({"lease_ttl": -1.0}, "lease_ttl must be positive"),
        ({"lease_ttl": 10, "busy_timeout": 0}, "busy_timeout must be positive"),
    ],
)
def test_fencing_a_lease_not_comfortably_longer_than_the_busy_timeout_is_refused(
    db: Path, options: dict[str, float], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        Runtime(db, **options)  # type: ignore[arg-type]
    assert not store_exists(db)  # refused before anything was created


@pytest.mark.sqlite_only("reads PRAGMA busy_timeout")
def test_fencing_the_busy_timeout_defaults_to_a_third_of_the_lease(
    runtimes: list[Runtime], db: Path
) -> None:
    rt = open_rt(runtimes, db, lease_ttl=1.5)
    assert rt._store._conn.execute("PRAGMA busy_timeout").fetchone()[0] == 500


def test_fencing_the_guard_counts_from_when_a_renewal_was_sent() -> None:
    now = [100.0]
    guard = LeaseGuard(owner="rt", lease_ttl=4, registered_at=100.0, monotonic=lambda: now[0])
    now[0] = 102.9
    assert guard.why_fenced() is None
    guard.renewed(sent_at=101.0)  # took until now to commit; counted from 101
    now[0] = 103.9
    assert guard.why_fenced() is None
    now[0] = 104.0  # 101 + 3/4 of 4 s
    assert "could not renew its lease" in (guard.why_fenced() or "")
    guard.renewed(sent_at=103.5)  # a late renewal reopens the window
    assert guard.why_fenced() is None
    guard.revoke("judged dead")
    assert "lost its lease: judged dead" in (guard.why_fenced() or "")
    guard.renewed(sent_at=104.0)
    assert guard.why_fenced() is not None  # revoked for good


# -- judging others' leases (P3) -----------------------------------------------------


def _created(run_id: str, owner: str) -> NewEvent:
    return NewEvent(
        run_id=run_id, type=EventType.RUN_CREATED, data={"workflow": "w", "owner": owner}
    )


def test_P3_an_observer_whose_wall_clock_is_an_hour_ahead_does_not_take_over_a_live_owner(
    db: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with open_store(db) as owner, open_store(db) as observer_store:
        owner.register_runtime("rt-live", ttl=10)
        owner.append([_created("r", "rt-live")])
        clock = [0.0]
        observer = LeaseObserver(lambda: clock[0])
        real_time = time.time
        monkeypatch.setattr(time, "time", lambda: real_time() + 3600)  # the observer's clock
        assert observer_store.orphaned_runs(["w"], me="rt-b", observer=observer) == []
        for _ in range(5):  # the owner renews; the observer's own clock moves on
            monkeypatch.setattr(time, "time", real_time)
            assert owner.renew_lease("rt-live", ttl=10)
            monkeypatch.setattr(time, "time", lambda: real_time() + 3600)
            clock[0] += 9.0
            assert observer_store.orphaned_runs(["w"], me="rt-b", observer=observer) == []
        # Silent for a whole lease of the observer's own clock: dead, and told so.
        clock[0] += 9.0
        assert observer_store.orphaned_runs(["w"], me="rt-b", observer=observer) == []
        clock[0] += 1.0
        [(run, why)] = observer_store.orphaned_runs(["w"], me="rt-b", observer=observer)
        assert run.run_id == "r"
        assert "not renewed for 10.0s" in why
        monkeypatch.setattr(time, "time", real_time)
        assert not owner.renew_lease("rt-live", ttl=10)  # it learns it lost its runs


def test_P3_an_owner_that_renews_between_the_verdict_and_its_write_is_alive(db: Path) -> None:
    with open_store(db) as owner, open_store(db) as observer_store:
        owner.register_runtime("rt-live", ttl=10)
        owner.append([_created("r", "rt-live")])
        clock = [0.0]
        observer = LeaseObserver(lambda: clock[0])
        assert observer_store.orphaned_runs(["w"], me="rt-b", observer=observer) == []
        clock[0] = 10.0
        stale = observer_store.runtimes()[0]
        assert owner.renew_lease("rt-live", ttl=10)  # just after the observer read the row
        assert not observer_store._revoke(stale, "too late")  # compare-and-swap fails
        assert owner.renew_lease("rt-live", ttl=10)


def test_P3_a_pid_is_trusted_only_in_the_same_pid_namespace_and_boot(db: Path) -> None:
    dead_pid = _a_dead_pid()
    with open_store(db) as store:
        for owner in ("rt-here", "rt-other-ns", "rt-other-boot", "rt-old"):
            store.register_runtime(owner, ttl=10)
        raw_sql(db, "UPDATE runtimes SET pid = ?", dead_pid)
        raw_sql(db, "UPDATE runtimes SET pid_ns = 'pid:[1]' WHERE owner = 'rt-other-ns'")
        raw_sql(db, "UPDATE runtimes SET boot_id = 'x' WHERE owner = 'rt-other-boot'")
        # A row of an older release says nothing of where its pid lives.
        raw_sql(db, "UPDATE runtimes SET pid_ns = NULL, boot_id = NULL WHERE owner = 'rt-old'")
        for owner in ("rt-here", "rt-other-ns", "rt-other-boot", "rt-old"):
            store.append([_created(f"r-{owner}", owner)])
        observer = LeaseObserver()
        found = {r.run_id: why for r, why in store.orphaned_runs(["w"], me="me", observer=observer)}
    assert PID_NS is not None
    assert BOOT_ID is not None
    # Their leases are fresh: only the one whose pid we can see is dead.
    assert found == {"r-rt-here": f"runtime rt-here's process {dead_pid} is gone"}


def _a_dead_pid() -> int:
    import subprocess  # noqa: PLC0415
    import sys  # noqa: PLC0415

    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def test_P3_a_store_of_schema_4_gets_renewal_counters_and_pid_namespaces(tmp_path: Path) -> None:
    path = old_store(tmp_path / "v4.db", 4)
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute(
        "INSERT INTO runtimes (owner, pid, hostname, started_at, heartbeat_at,"
        " lease_expires_at) VALUES ('rt-old', 1, 'h', 0, 0, 1e12)"
    )
    conn.close()
    with open_store(path) as store:
        [old] = store.runtimes()
        assert (old.renewals, old.pid_ns, old.boot_id, old.revoked) == (0, None, None, None)
        assert store.renew_lease("rt-old", ttl=10)
        store.register_runtime("rt-new", ttl=10)
        new = next(r for r in store.runtimes() if r.owner == "rt-new")
        assert (new.pid_ns, new.boot_id, new.lease_ttl) == (PID_NS, BOOT_ID, 10)
        assert next(r for r in store.runtimes() if r.owner == "rt-old").renewals == 1
    conn = sqlite3.connect(path)
    assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    conn.close()


# -- what the Journal counts as lost ---------------------------------------------------


class _Collector(pykka.ThreadingActor):
    """Stands in for the Guardian: keeps what the Journal tells it."""

    def __init__(self, got: list[object]) -> None:
        super().__init__()
        self.got = got

    def on_receive(self, message: object) -> object:
        if message == "sync":
            return None
        self.got.append(message)
        return None


def test_fencing_a_run_being_taken_over_is_not_lost_before_its_takeover_commits(
    db: Path,
) -> None:
    """The new owner hosts a run a moment before its ``run_resumed`` commits; a
    renewal in that moment must not find it "owned by another runtime" (it
    is still the old owner's) and stop it. Once ours, a takeover is seen."""
    with open_store(db) as store:
        store.register_runtime("rt-b", ttl=30)
        store.append([_created("r", "rt-a")])  # rt-b is resuming it
    got: list[object] = []
    parent = _Collector.start(got)
    census = Census()
    guard = LeaseGuard(owner="rt-b", lease_ttl=30, registered_at=time.monotonic())
    journal = Journal.start(
        census=census,
        parent=parent,
        path=db,
        synchronous="NORMAL",
        busy_timeout=1,
        on_terminal=lambda *_: None,
        owner="rt-b",
        lease_ttl=30,
        halted=threading.Event(),
        guard=guard,
        hosted=lambda: ["r"],
    )

    def renew_and_sync() -> None:
        reply: pykka.Future[object] = pykka.ThreadingFuture()
        journal.tell(RenewLease())
        journal.tell(Append(events=(), reply=reply))  # after the renewal, in order
        reply.get(timeout=10)
        parent.ask("sync", timeout=10)  # every LeaseLost told so far is in `got`

    try:
        renew_and_sync()
        assert [m for m in got if isinstance(m, LeaseLost)] == []
        guard.check("r")  # its steps may run

        reply: pykka.Future[list[object]] = pykka.ThreadingFuture()
        taken = resume_request("r", "rt-b", previous_owner="rt-a", seen_seq=1, why="test")
        journal.tell(Append(events=(taken,), reply=reply))
        assert reply.get(timeout=10)[0].accepted  # type: ignore[attr-defined]
        with open_store(db) as store:
            again = resume_request("r", "rt-c", previous_owner="rt-b", seen_seq=2, why="test")
            assert store.append([again])[0].accepted
        renew_and_sync()
        assert [m.run_id for m in got if isinstance(m, LeaseLost)] == ["r"]
        with pytest.raises(Terminated, match="owned by rt-c"):
            guard.check("r")
    finally:
        journal.stop()
        parent.stop()
        census.wait_empty(10)
