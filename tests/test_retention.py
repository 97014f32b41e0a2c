"""Retention: finished runs older than an age are pruned, a whole tree at a time.

Never a run that is unfinished, nor one whose ancestors or descendants are;
in transactions of at most ``batch`` runs; by ``Runtime(retention=...)`` in
the background and by ``proctor runs prune`` from any process.
"""

from __future__ import annotations

import datetime
import json
import sqlite3
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from actors import RunNotFound, RunState, Runtime, step, workflow
from cli import cli
from persistence import (
    EventType,
    NewEvent,
    Store,
    StoreLocked,
    cancel_request,
    open_store,
    parse_duration,
    prune,
    prune_batch,
    retention_seconds,
    terminate_request,
)
from tests.conftest import GATES, assert_nothing_left, gate
from tests.store_access import is_postgres, raw_sql, store_exists

pytestmark = pytest.mark.timeout(60)

DAY = 86400.0


def _created(run_id: str, parent: str | None = None) -> NewEvent:
    data: dict[str, object] = {"workflow": "w", "args": [run_id], "kwargs": {}}
    if parent is not None:
        data["parent_run_id"] = parent
    return NewEvent(run_id=run_id, type=EventType.RUN_CREATED, data=data)


def _finished(store: Store, run_id: str, parent: str | None = None) -> None:
    """A run with a step attempt, completed."""
    outcomes = store.append(
        [
            _created(run_id, parent),
            NewEvent(run_id=run_id, type=EventType.RUN_STARTED),
            NewEvent(run_id=run_id, type=EventType.STEP_STARTED, step="s", call=0, attempt=1),
            NewEvent(
                run_id=run_id,
                type=EventType.STEP_COMPLETED,
                step="s",
                call=0,
                attempt=1,
                data={"result": run_id},
            ),
            NewEvent(run_id=run_id, type=EventType.RUN_COMPLETED, data={"result": run_id}),
        ]
    )
    assert all(o.accepted for o in outcomes)


def _unfinished(store: Store, run_id: str, parent: str | None = None) -> None:
    assert store.append([_created(run_id, parent)])[0].accepted


def _rows(db: Path | str, table: str) -> list[str]:
    return sorted({r[0] for r in raw_sql(db, f"SELECT run_id FROM {table}")})


def _rows_of(db: Path | str, table: str, column: str) -> list[str]:
    return sorted(r[0] for r in raw_sql(db, f"SELECT {column} FROM {table}"))


def _everywhere(db: Path) -> dict[str, list[str]]:
    return {table: _rows(db, table) for table in ("runs", "events", "steps")}


LATER = time.time() + DAY  # "now", a day on: everything written by the test is a day old


def test_retention_prunes_old_finished_runs_with_their_events_and_steps(db: Path) -> None:
    with open_store(db) as store:
        _finished(store, "done-1")
        _finished(store, "done-2")
        _unfinished(store, "running")
        assert store.append(terminate_request("killed", None, source="api"))[0].status is None
        _unfinished(store, "killed")
        store.append(terminate_request("killed", "ops", source="cli"))
        _unfinished(store, "cancelling")
        store.append([cancel_request("cancelling", "ops", source="cli")])
        report = prune(store, DAY / 2, now=LATER)
    assert sorted(report.run_ids) == ["done-1", "done-2", "killed"]
    assert (report.runs, report.events, report.steps) == (3, 13, 2)
    left = _everywhere(db)
    assert left == {
        "runs": ["cancelling", "running"],
        "events": ["cancelling", "running"],
        "steps": [],
    }


def test_retention_keeps_runs_that_finished_more_recently_than_the_age(db: Path) -> None:
    with open_store(db) as store:
        _finished(store, "recent")
        assert prune(store, DAY, now=time.time()).runs == 0
        assert prune(store, DAY, now=LATER + DAY).runs == 1


def test_retention_never_prunes_a_tree_with_an_unfinished_run(db: Path) -> None:
    with open_store(db) as store:
        # A finished parent whose abandoned child still runs, and its grandchild.
        _finished(store, "p")
        _finished(store, "p.1", parent="p")
        _unfinished(store, "p.1.0", parent="p.1")
        # An unfinished parent whose child finished: the child is not a root either.
        _unfinished(store, "q")
        _finished(store, "q.0", parent="q")
        report = prune(store, DAY / 2, now=LATER)
        assert (report.runs, report.kept) == (0, 1)
        assert _rows(db, "runs") == ["p", "p.1", "p.1.0", "q", "q.0"]
        # The grandchild ends: the whole tree of p goes, parents and children together.
        store.append(terminate_request("p.1.0", None, source="api"))
        report = prune(store, DAY / 2, now=LATER)
    assert sorted(report.run_ids) == ["p", "p.1", "p.1.0"]
    assert _everywhere(db) == {"runs": ["q", "q.0"], "events": ["q", "q.0"], "steps": ["q.0"]}


def test_retention_a_tree_with_a_recently_finished_child_is_kept(db: Path) -> None:
    with open_store(db) as store:
        _finished(store, "p")
        _unfinished(store, "p.0", parent="p")
        store.append(terminate_request("p.0", None, source="api"))
        # The child finished now too; with a cutoff between the two ends, the tree stays.
        raw_sql(db, "UPDATE runs SET finished_at = ? WHERE run_id = 'p'", time.time() - DAY)
        assert prune(store, DAY / 2, now=time.time()).runs == 0
        assert prune(store, DAY / 2, now=LATER).runs == 2


def test_retention_prunes_in_transactions_of_at_most_batch_runs(db: Path) -> None:
    with open_store(db) as store:
        for i in range(250):
            _finished(store, f"r{i:03d}")
        _finished(store, "big")
        for i in range(30):  # one tree of 31 runs: it goes whole, alone if need be
            _finished(store, f"big.{i}", parent="big")
        report = prune(store, DAY / 2, now=LATER, batch=20)
    assert report.runs == 281
    assert report.largest_transaction == 31
    assert report.transactions >= 281 // 31
    assert _rows(db, "runs") == []


def test_retention_dry_run_counts_and_deletes_nothing(db: Path) -> None:
    with open_store(db) as store:
        _finished(store, "a")
        _finished(store, "a.0", parent="a")
        _unfinished(store, "b")
        before = _everywhere(db)
        report = prune(store, DAY / 2, now=LATER, dry_run=True)
    assert (report.runs, report.events, report.steps, report.dry_run) == (2, 10, 2, True)
    assert _everywhere(db) == before


def test_retention_runtimes_that_stopped_long_ago_go_once_no_run_names_them(db: Path) -> None:
    with open_store(db) as store:
        store.register_runtime("rt-old", ttl=1)
        store.release_runtime("rt-old")
        store.register_runtime("rt-owner", ttl=1)
        store.release_runtime("rt-owner")
        store.register_runtime("rt-live", ttl=10 * DAY)
        assert store.append(
            [
                NewEvent(
                    run_id="owned",
                    type=EventType.RUN_CREATED,
                    data={"workflow": "w", "args": [], "owner": "rt-owner"},
                )
            ]
        )[0].accepted
        report = prune(store, DAY / 2, now=LATER)
        assert report.runtimes == 1
        assert sorted(r.owner for r in store.runtimes()) == ["rt-live", "rt-owner"]


@pytest.mark.sqlite_only("reads PRAGMA busy_timeout of the store's SQLite connection")
def test_retention_a_batch_waits_for_the_write_lock_at_most_its_lock_wait(db: Path) -> None:
    with open_store(db) as store:
        _finished(store, "old")
        holder = sqlite3.connect(db, isolation_level=None)
        holder.execute("BEGIN IMMEDIATE")  # another writer holds the lock
        try:
            t0 = time.monotonic()
            with pytest.raises(StoreLocked):
                prune_batch(store, LATER, lock_wait=0.05)
            assert time.monotonic() - t0 < 2.0  # not the 5 s busy timeout
        finally:
            holder.execute("ROLLBACK")
            holder.close()
        assert store._conn.execute("PRAGMA busy_timeout").fetchone()[0] == 5000
        assert prune_batch(store, LATER, lock_wait=0.05)[1] is False
    assert _rows(db, "runs") == []


@pytest.mark.parametrize(
    ("value", "error"),
    [
        (-1, ValueError),
        (0, ValueError),
        (float("nan"), ValueError),
        (datetime.timedelta(days=-1), ValueError),
        ("30d", TypeError),
        (True, TypeError),
    ],
)
def test_retention_bad_ages_are_refused_before_the_store_is_touched(
    db: Path, value: object, error: type[Exception]
) -> None:
    with pytest.raises(error, match="retention must be"):
        Runtime(db, retention=value)  # type: ignore[arg-type]
    assert not store_exists(db)
    with open_store(db) as store, pytest.raises(ValueError, match="older_than"):
        prune(store, -1)


def test_retention_ages_in_seconds_or_timedelta() -> None:
    assert retention_seconds(None) is None
    assert retention_seconds(90) == 90.0
    assert retention_seconds(datetime.timedelta(days=30)) == 30 * DAY
    assert [parse_duration(t) for t in ("30d", "12h", "90m", "45s", "2w", "1.5h")] == [
        30 * DAY,
        12 * 3600,
        90 * 60,
        45,
        14 * DAY,
        5400,
    ]
    for bad in ("", "30", "d", "-5d", "0s", "3x", "30 days", "1h30m"):
        with pytest.raises(ValueError, match="duration"):
            parse_duration(bad)


# -- a runtime prunes in the background ---------------------------------------------


@step(name="retention.wait")
def wait(key: str) -> str:
    assert gate(key).wait(30)
    return key


@step(name="retention.quick")
def quick(key: str) -> str:
    return key


@workflow(name="retention.job")
async def job(key: str) -> str:
    return await quick(key)


@workflow(name="retention.held")
async def held(key: str) -> str:
    return await wait(key)


@pytest.fixture
def keeping(db: Path) -> Iterator[Runtime]:
    before = set(threading.enumerate())
    runtime = Runtime(db, retention=datetime.timedelta(seconds=0.2))
    try:
        yield runtime
    finally:
        for event in GATES.values():
            event.set()
        runtime.close()
    assert_nothing_left(before)


def _gone(runtime: Runtime, run_id: str) -> bool:
    try:
        runtime.get_run(run_id)
    except RunNotFound:
        return True
    return False


def _wait_gone(runtime: Runtime, run_ids: list[str]) -> None:
    deadline = time.monotonic() + 30
    while not all(_gone(runtime, r) for r in run_ids):
        assert time.monotonic() < deadline, "finished runs were not pruned"
        gate("poll").wait(0.01)


def test_retention_a_runtime_prunes_finished_runs_in_the_background(
    keeping: Runtime, db: Path
) -> None:
    with open_store(db) as store:  # a runtime that stopped: its row goes too
        store.register_runtime("rt-gone", ttl=1)
        store.release_runtime("rt-gone")
    running = keeping.start(held, "held")
    # (Not their results: with a retention of 0.2 s they may be gone first.)
    done = [keeping.start(job, f"j{i}").run_id for i in range(5)]
    _wait_gone(keeping, done)
    # Pruning deletes only terminal runs; the one still running is all that is left.
    assert keeping.get_run(running.run_id).status is RunState.RUNNING
    assert _everywhere(db) == {
        "runs": [running.run_id],
        "events": [running.run_id],
        "steps": [running.run_id],
    }
    gate("held").set()
    _wait_gone(keeping, [running.run_id])
    assert _everywhere(db) == {"runs": [], "events": [], "steps": []}
    deadline = time.monotonic() + 30
    while "rt-gone" in _rows_of(db, "runtimes", "owner"):
        assert time.monotonic() < deadline, "the stopped runtime's row was not pruned"
        gate("poll").wait(0.01)
    assert _rows_of(db, "runtimes", "owner") == [keeping.id]


# -- the CLI ---------------------------------------------------------------------


def invoke(db: Path, *args: str) -> Result:
    return CliRunner().invoke(cli, ["--db", str(db), *args])


def _aged_store(db: Path) -> None:
    with open_store(db) as store:
        _finished(store, "old")
        _finished(store, "old.0", parent="old")
        _unfinished(store, "live")
    month = 31 * DAY
    raw_sql(
        db,
        "UPDATE runs SET finished_at = finished_at - ?, created_at = created_at - ?",
        month,
        month,
    )


def test_prune_cli_deletes_runs_older_than_the_age_and_says_so(db: Path) -> None:
    _aged_store(db)
    dry = invoke(db, "runs", "prune", "--older-than", "30d", "--dry-run", "--json")
    assert dry.exit_code == 0, dry.output
    assert json.loads(dry.stdout) | {"cutoff": 0, "longest_transaction": 0} == {
        "cutoff": 0,
        "dry_run": True,
        "runs": 2,
        "events": 10,
        "steps": 2,
        "runtimes": 0,
        "kept": 0,
        "transactions": 0,
        "longest_transaction": 0,
        "largest_transaction": 0,
    }
    assert _rows(db, "runs") == ["live", "old", "old.0"]
    assert invoke(db, "runs", "prune", "--older-than", "32d").stdout.startswith("pruned 0 runs")
    done = invoke(db, "runs", "prune", "--older-than", "30d")
    assert done.exit_code == 0, done.output
    assert done.stdout.startswith("pruned 2 runs (10 events, 2 step attempts) in 1 transaction;")
    assert _everywhere(db) == {"runs": ["live"], "events": ["live"], "steps": []}
    logs = invoke(db, "runs", "logs", "old")
    assert logs.exit_code == 3
    assert "no run with id 'old'" in logs.stderr


@pytest.mark.parametrize("age", ["30", "3x", "-5d", "0s", "thirty days", ""])
def test_prune_cli_a_bad_duration_is_a_usage_error(db: Path, age: str) -> None:
    _aged_store(db)
    result = invoke(db, "runs", "prune", "--older-than", age)
    assert result.exit_code == 2
    assert "--older-than" in result.stderr
    assert "duration" in result.stderr
    assert _rows(db, "runs") == ["live", "old", "old.0"]


def test_prune_cli_needs_an_age_and_a_store(db: Path) -> None:
    missing_age = invoke(db, "runs", "prune")
    assert missing_age.exit_code == 2
    assert "--older-than" in missing_age.stderr
    no_store = invoke(db, "runs", "prune", "--older-than", "30d")
    assert no_store.exit_code == 1
    missing = "has no 'proctor' schema" if is_postgres(db) else "no Proctor store"
    assert missing in no_store.stderr
    assert not store_exists(db)
