"""Durability in one process: kill a runtime, start another, check the log (D2, D3).

``Runtime.kill()`` stops a runtime as a SIGKILL would: nothing more reaches
the store. The real-process crash tests are in ``test_crash_processes.py``.
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlite_utils import Database

from actors import (
    CancellationError,
    EventType,
    FakeClock,
    RetryPolicy,
    RunState,
    Runtime,
    get_context,
    shield,
    step,
    workflow,
)
from actors._journal import JOURNAL_AUTOCHECKPOINT
from cli import cli
from persistence import (
    NewEvent,
    Refused,
    cancel_request,
    open_store,
    resume_request,
    terminate_request,
)
from persistence._schema import APPLICATION_ID, CONTROL_WHERE, MIGRATIONS, SCHEMA_VERSION
from tests.conftest import (
    NOTES,
    assert_nothing_left,
    event_types,
    events_of,
    gate,
    note,
    open_rt,
    steps_of,
    wait_until,
)
from tests.store_access import raw_sql

pytestmark = pytest.mark.timeout(30)


@step()
def counted(key: str) -> str:
    note(key, "ran")
    return f"{key} done"


@step()
def gated(key: str) -> str:
    """Notes each execution, then works in 1 ms slices until its gate opens."""
    ctx = get_context()
    note(f"{key}:runs", get_context().attempt)
    gate(f"{key}:started:{len(NOTES[f'{key}:runs'])}").set()
    try:
        while not gate(key).wait(0.001):
            ctx.check_cancellation()
    except CancellationError:
        note(key, "cancelled")
        raise
    return f"{key} released"


def started(key: str, nth: int = 1) -> None:
    assert gate(f"{key}:started:{nth}").wait(10)


@workflow()
async def two_steps(key: str) -> list[str]:
    first = await counted(f"{key}.1")
    second = await gated(f"{key}.2")
    return [first, second]


@workflow()
async def cancellable(key: str) -> str:
    try:
        return await gated(key)
    except CancellationError:
        with shield():
            await gated(f"{key}.cleanup")
        raise


@workflow()
async def shielded(key: str) -> str:
    with shield():
        result = await gated(key)
    await counted(f"{key}.after")
    return result


@workflow()
async def parent(key: str) -> str:
    done = await counted(f"{key}.parent")
    return f"{done} / {await two_steps(key)}"


#: Which step the `evolving` workflow calls first; a test changes it between runtimes.
VERSION = {"first": "counted"}


@workflow()
async def evolving(key: str) -> str:
    if VERSION["first"] == "counted":
        await counted(f"{key}.1")
    else:
        await gated(f"{key}.new")
    return await gated(f"{key}.2")


@step()
def look_back(db: str, run_id: str) -> list[str]:
    """What the log holds while this step's code runs."""
    with open_store(db, readonly=True) as store:
        return [f"{e.type.value}@{e.call}" for e in store.events(run_id)]


@workflow()
async def looking(db: str) -> list[list[str]]:
    run_id = get_context().run_id
    return [await look_back(db, run_id), await look_back(db, run_id)]


def test_D1_every_effect_follows_its_record(rt: Runtime, db: Path) -> None:
    """A step's code runs only once its start is durable, and the body goes on
    (here: to the next step) only once the previous step's end is durable."""
    first, second = rt.start(looking, str(db)).result(timeout=10)
    assert first[-2:] == ["step_scheduled@0", "step_started@0"]
    assert second[-3:] == ["step_completed@0", "step_scheduled@1", "step_started@1"]


def test_D2_resume_replays_recorded_steps_and_reruns_the_lost_attempt(
    runtimes: list[Runtime], db: Path
) -> None:
    first = open_rt(runtimes, db)
    run_id = first.start(two_steps, "r").run_id
    started("r.2")
    first.kill()
    assert event_types(first, run_id)[-1] == "step_started"  # nothing written after the kill

    second = open_rt(runtimes, db)
    started("r.2", 2)
    gate("r.2").set()
    result = second.handle(run_id).result(timeout=10)

    assert result == ["r.1 done", "r.2 released"]
    assert NOTES["r.1"] == ["ran"]  # completed before the crash: not run again
    assert NOTES["r.2:runs"] == [1, 2]  # in flight: run again, as attempt 2
    log = events_of(second, run_id)
    resumed = [e for e in log if e.type is EventType.RUN_RESUMED]
    assert [e.data["previous_owner"] for e in resumed] == [first.id]
    assert resumed[0].data["owner"] == second.id
    reexecuted = [e for e in log if e.type is EventType.STEP_REEXECUTED]
    assert [(e.call, e.attempt, e.data["lost_attempt"]) for e in reexecuted] == [(1, 2, 1)]
    assert [(s.call, s.attempt, s.status.value) for s in steps_of(second, run_id)] == [
        (0, 1, "completed"),
        (1, 1, "abandoned"),
        (1, 2, "completed"),
    ]
    assert second.get_run(run_id).owner == second.id


def test_D2_a_runtime_that_closed_leaves_its_runs_to_the_next_one(
    runtimes: list[Runtime], db: Path
) -> None:
    first = open_rt(runtimes, db)
    run_id = first.start(two_steps, "c").run_id
    started("c.2")
    first.close()  # graceful: steps abandoned, the lease released
    second = open_rt(runtimes, db)
    started("c.2", 2)
    gate("c.2").set()
    assert second.handle(run_id).result(timeout=10) == ["c.1 done", "c.2 released"]
    reasons = [
        e.data.get("why") for e in events_of(second, run_id) if e.type is EventType.RUN_RESUMED
    ]
    assert reasons == [f"runtime {first.id} stopped"]


def test_D2_a_cancel_delivered_before_the_crash_is_replayed_at_its_checkpoint(
    runtimes: list[Runtime], db: Path
) -> None:
    first = open_rt(runtimes, db)
    handle = first.start(cancellable, "k")
    started("k")
    first.cancel(handle.run_id, "stop")
    started("k.cleanup")  # the cleanup step runs in its shield
    first.kill()

    second = open_rt(runtimes, db)
    started("k.cleanup", 2)
    gate("k.cleanup").set()
    record = second.handle(handle.run_id).wait_finished(timeout=10)

    assert record.status is RunState.CANCELLED
    assert NOTES["k:runs"] == [1]  # ended (cancelled) before the crash: not re-run
    assert NOTES["k.cleanup:runs"] == [1, 2]
    body = [e.type.value for e in events_of(second, handle.run_id) if e.call is None]
    assert body.count("cancel_delivered") == 1  # replayed, not delivered again
    assert body.count("shield_entered") == 1
    assert body[-1] == "run_cancelled"


def test_D2_a_cancel_buffered_by_a_shield_is_honoured_after_resume(
    runtimes: list[Runtime], db: Path
) -> None:
    first = open_rt(runtimes, db)
    handle = first.start(shielded, "s")
    started("s")
    first.cancel(handle.run_id, "later")
    wait_until(lambda: "cancel_buffered" in event_types(first, handle.run_id))
    first.kill()

    second = open_rt(runtimes, db)
    started("s", 2)
    assert "s" not in NOTES  # S1: the re-executed attempt is shielded too: no cancel
    gate("s").set()
    record = second.handle(handle.run_id).wait_finished(timeout=10)
    assert record.status is RunState.CANCELLED
    assert record.cancel_reason == "later"
    assert "s.after" not in NOTES  # the cancel met the body when the shield ended
    assert event_types(second, handle.run_id)[-3:] == [
        "shield_exited",
        "cancel_delivered",
        "run_cancelled",
    ]


def test_D3_a_cancel_written_while_no_runtime_lives_takes_effect_on_resume(
    runtimes: list[Runtime], db: Path
) -> None:
    first = open_rt(runtimes, db)
    handle = first.start(cancellable, "d")
    started("d")
    first.kill()
    with open_store(db) as store:  # what `proctor cancel` writes
        store.append([cancel_request(handle.run_id, "while down", source="cli")])

    second = open_rt(runtimes, db)
    started("d.cleanup")
    gate("d.cleanup").set()
    record = second.handle(handle.run_id).wait_finished(timeout=10)
    assert record.status is RunState.CANCELLED
    # C3: the attempt lost in flight is not started again while cancelling;
    # the body meets the cancel at that await.
    assert NOTES["d:runs"] == [1]
    assert NOTES["d.cleanup:runs"] == [1]


def test_D3_a_terminate_written_while_no_runtime_lives_is_final(
    runtimes: list[Runtime], db: Path
) -> None:
    first = open_rt(runtimes, db)
    handle = first.start(two_steps, "t")
    started("t.2")
    first.kill()
    with open_store(db) as store:
        store.append(terminate_request(handle.run_id, "while down", source="cli"))

    second = open_rt(runtimes, db)
    other = second.start(two_steps, "t-other")  # proof that `second` is up and scanning
    started("t-other.2")
    gate("t-other.2").set()
    other.result(timeout=10)
    assert second.get_run(handle.run_id).status is RunState.TERMINATED
    assert NOTES["t.2:runs"] == [1]  # never resumed
    assert "run_resumed" not in event_types(second, handle.run_id)


def test_D2_replay_fails_the_run_when_the_code_asks_for_other_steps(
    runtimes: list[Runtime], db: Path
) -> None:
    first = open_rt(runtimes, db)
    handle = first.start(evolving, "v")
    started("v.2")
    first.kill()
    VERSION["first"] = "gated"
    try:
        second = open_rt(runtimes, db)
        record = second.handle(handle.run_id).wait_finished(timeout=10)
    finally:
        VERSION["first"] = "counted"
    assert record.status is RunState.FAILED
    assert record.error is not None
    assert record.error["type"] == "NonDeterminismError"
    assert "call 0 is step" in record.error["message"]
    assert "but the log has step" in record.error["message"]
    assert "v.new:runs" not in NOTES  # nothing of the diverged body ran


def test_D2_a_child_run_in_flight_is_resumed_under_its_resumed_parent(
    runtimes: list[Runtime], db: Path
) -> None:
    first = open_rt(runtimes, db)
    handle = first.start(parent, "p")
    started("p.2")
    first.kill()

    second = open_rt(runtimes, db)
    started("p.2", 2)
    gate("p.2").set()
    assert handle.run_id
    result = second.handle(handle.run_id).result(timeout=10)
    assert result == "p.parent done / ['p.1 done', 'p.2 released']"
    child = f"{handle.run_id}.1"
    assert NOTES["p.parent"] == NOTES["p.1"] == ["ran"]
    assert "run_resumed" in event_types(second, child)
    assert "step_reexecuted" in event_types(second, child)
    assert second.get_run(child).owner == second.id


def test_fencing_a_runtime_that_lost_its_lease_writes_nothing_more(
    runtimes: list[Runtime], db: Path
) -> None:
    # A long lease that is never renewed during the test; then it runs out.
    stale = open_rt(runtimes, db, lease_ttl=600)
    run_id = stale.start(two_steps, "f").run_id
    started("f.2")
    with open_store(db) as store:
        store.expire_lease(stale.id)  # as if `stale` had hung for 10 minutes

    fresh = open_rt(runtimes, db)
    started("f.2", 2)  # `fresh` took it over; both attempts are now running
    gate("f.2").set()  # both finish; only the owner's record is taken
    assert fresh.handle(run_id).result(timeout=10) == ["f.1 done", "f.2 released"]
    completed = [
        (e.call, e.attempt) for e in events_of(fresh, run_id) if e.type is EventType.STEP_COMPLETED
    ]
    assert completed == [(0, 1), (1, 2)]
    # The stale runtime noticed it was fenced off and stopped hosting the run.
    wait_until(lambda: stale._directory.get(run_id) is None)


def test_two_runtimes_never_resume_the_same_run(runtimes: list[Runtime], db: Path) -> None:
    first = open_rt(runtimes, db)
    ids = [first.start(two_steps, f"m{i}").run_id for i in range(8)]
    for i in range(8):
        started(f"m{i}.2")
    first.kill()

    rivals = [open_rt(runtimes, db), open_rt(runtimes, db)]
    for i in range(8):
        started(f"m{i}.2", 2)
        gate(f"m{i}.2").set()
    for run_id in ids:
        assert rivals[0].handle(run_id).wait_finished(timeout=10).status is RunState.COMPLETED
    for i, run_id in enumerate(ids):
        assert NOTES[f"m{i}.2:runs"] == [1, 2], run_id  # exactly one re-execution
        resumed = [e for e in events_of(rivals[0], run_id) if e.type is EventType.RUN_RESUMED]
        assert len(resumed) == 1
        assert resumed[0].data["owner"] in {r.id for r in rivals}


# -- the store's side of it -----------------------------------------------------------


def _created(run_id: str, owner: str | None) -> NewEvent:
    return NewEvent(
        run_id=run_id, type=EventType.RUN_CREATED, data={"workflow": "w", "owner": owner}
    )


def test_fencing_the_store_refuses_a_writer_that_does_not_own_the_run(db: Path) -> None:
    with open_store(db) as store:
        store.append([_created("r1", "rt-a")])
        started = NewEvent(run_id="r1", type=EventType.RUN_STARTED)
        [refused] = store.append([started], writer="rt-b")
        assert isinstance(refused, Refused)
        assert refused.fenced
        assert "owned by rt-a, not rt-b" in refused.reason
        # Anyone may ask the run to stop; only its owner drives it.
        assert store.append([cancel_request("r1", "x", source="cli")], writer="rt-b")[0].accepted
        assert store.append([started], writer="rt-a")[0].accepted
        # A takeover is a compare-and-swap on the owner and the log's length.
        stale = resume_request("r1", "rt-b", previous_owner="rt-a", seen_seq=2, why="test")
        assert not store.append([stale], writer="rt-b")[0].accepted  # the log is at 3 now
        fresh = resume_request("r1", "rt-b", previous_owner="rt-a", seen_seq=3, why="test")
        assert store.append([fresh], writer="rt-b")[0].accepted
        again = resume_request("r1", "rt-c", previous_owner="rt-a", seen_seq=4, why="test")
        assert not store.append([again], writer="rt-c")[0].accepted  # rt-b won
        assert store.get_run("r1").owner == "rt-b"
        [late] = store.append([NewEvent(run_id="r1", type=EventType.RUN_COMPLETED)], writer="rt-a")
        assert isinstance(late, Refused)
        assert late.fenced  # rt-a lost it


def test_leases_say_who_is_dead_and_why(db: Path) -> None:
    with open_store(db) as store:
        store.register_runtime("alive", ttl=60)
        store.register_runtime("expired", ttl=60)
        store.expire_lease("expired")
        store.register_runtime("stopped", ttl=60)
        store.release_runtime("stopped")
        # Registered by an earlier process that had this process's pid (a
        # restarted container): the pid is alive, but it is not that process.
        store.register_runtime("reused", ttl=60)
        raw_sql(db, "UPDATE runtimes SET started_at = started_at - 3600 WHERE owner = 'reused'")
        for i, owner in enumerate(["alive", "expired", "stopped", "unknown", "reused"]):
            store.append([_created(f"r{i}", owner)])
        orphans = {r.run_id: why for r, why in store.orphaned_runs(["w"], me="me")}
    assert orphans == {
        "r1": "runtime expired's lease expired (ended at once)",
        "r2": "runtime stopped stopped",
        "r3": "runtime unknown is not registered",
        "r4": f"runtime reused's process {os.getpid()} is gone (its pid was reused)",
    }


def old_store(path: Path, version: int) -> Path:
    """A store as a release with schema ``version`` left it."""
    conn = sqlite3.connect(path, isolation_level=None)
    for migration in MIGRATIONS[:version]:
        migration(Database(conn))
    conn.execute(f"PRAGMA application_id = {APPLICATION_ID}")
    conn.execute(f"PRAGMA user_version = {version}")
    conn.close()
    return path


def test_a_store_of_the_previous_schema_is_upgraded_in_place(tmp_path: Path) -> None:
    path = old_store(tmp_path / "old.db", 2)  # written by the release before leases
    with open_store(path) as store:
        store.append([_created("old", "rt-old")])
        store.register_runtime("rt-new", ttl=10)
        assert [r.owner for r in store.runtimes()] == ["rt-new"]
        assert store.get_run("old").owner == "rt-old"
    conn = sqlite3.connect(path)
    assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION == 9
    conn.close()


def test_a_v3_store_gets_the_partial_index_of_control_requests(tmp_path: Path) -> None:
    path = old_store(tmp_path / "v3.db", 3)
    with open_store(path) as store:
        store.append([_created("r", "rt")])
        store.append([cancel_request("r", "ops", source="cli")])
        requests = store.control_requests(after=0)
        query = f"SELECT * FROM events WHERE {CONTROL_WHERE} AND seq > 0 ORDER BY seq"
        plan = store._conn.execute(f"EXPLAIN QUERY PLAN {query}").fetchall()
    assert [(e.run_id, e.type.value) for e in requests] == [("r", "cancel_requested")]
    assert "idx_events_control" in str(plan)
    conn = sqlite3.connect(path)
    indexes = {
        row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'index'")
    }
    conn.close()
    assert "idx_events_control" in indexes
    assert "idx_events_type_seq" not in indexes


def test_runs_status_says_whether_the_owner_is_alive(runtimes: list[Runtime], db: Path) -> None:
    first = open_rt(runtimes, db, resume=False)
    run_id = first.start(two_steps, "o").run_id
    started("o.2")

    def owner_line() -> str:
        result = CliRunner().invoke(cli, ["--db", str(db), "runs", "status", run_id])
        assert result.exit_code == 0, result.output
        return next(line for line in result.stdout.splitlines() if line.startswith("owner"))

    assert f"{first.id} (alive, pid {os.getpid()}" in owner_line()
    first.kill()
    assert f"{first.id} (dead: runtime {first.id}'s lease expired (killed);" in owner_line()
    status = CliRunner().invoke(cli, ["--db", str(db), "runs", "status", run_id, "--json"])
    assert json.loads(status.stdout)["owner"]["alive"] is False


def test_D3_a_cancel_grace_survives_the_crash_and_counts_from_the_request(
    runtimes: list[Runtime], db: Path
) -> None:
    first = open_rt(runtimes, db)
    handle = first.start(shielded, "g")  # the shield holds the cancel back
    started("g")
    first.kill()
    with open_store(db) as store:
        store.append([cancel_request(handle.run_id, "too slow", source="cli", grace=30)])

    clock = FakeClock()
    second = open_rt(runtimes, db, clock=clock)
    started("g", 2)  # resumed, still inside its shield
    assert second.get_run(handle.run_id).status is RunState.CANCELLING

    def grace_passed() -> bool:
        clock.advance(31)  # virtual time: the test does not wait 30 s
        return second.get_run(handle.run_id).status is RunState.TERMINATED

    wait_until(grace_passed)
    assert second.get_run(handle.run_id).terminate_reason == "cancel grace expired (too slow)"


@step(retry=RetryPolicy(max_attempts=3, initial_interval=30))
def fails_once(key: str) -> str:
    note(f"{key}:runs", get_context().attempt)
    if get_context().attempt == 1:
        raise ConnectionError("first attempt fails")
    return key


@workflow()
async def retried(key: str) -> str:
    return await fails_once(key)


def test_D2_a_run_killed_during_a_back_off_retries_on_resume(
    runtimes: list[Runtime], db: Path
) -> None:
    first = open_rt(runtimes, db, clock=FakeClock())  # the back-off never ends here
    handle = first.start(retried, "bo")
    wait_until(lambda: "step_retry_scheduled" in event_types(first, handle.run_id))
    first.kill()

    second = open_rt(runtimes, db)
    assert second.handle(handle.run_id).result(timeout=10) == "bo"
    assert NOTES["bo:runs"] == [1, 2]  # the failed attempt is not re-run; its retry is
    assert "step_reexecuted" not in event_types(second, handle.run_id)


@workflow()
async def counts_twice(key: str) -> list[str]:
    return [await counted(f"{key}.1"), await counted(f"{key}.2")]


@pytest.mark.sqlite_only("reads the size of SQLite's WAL file")
def test_the_wal_is_checkpointed_off_the_journals_commits(db: Path) -> None:
    """The Journal's commits do not checkpoint (below a large backstop); the
    ControlInbox does, every second: committed pages reach the database file."""
    before = set(threading.enumerate())
    with Runtime(db) as rt:
        size = db.stat().st_size
        for i in range(40):
            rt.start(counts_twice, f"w{i}").result(timeout=10)
        wal_pages = (db.with_name(db.name + "-wal").stat().st_size - 32) // (4096 + 24)
        assert wal_pages < JOURNAL_AUTOCHECKPOINT  # so the backstop never ran
        wait_until(lambda: db.stat().st_size > size)
    assert_nothing_left(before)
