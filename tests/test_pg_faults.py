"""Fault tests on PostgreSQL: the server restarts, statements time out, connections run out.

Each scenario runs real work on a real (throw-away) server, breaks the
server under it, and checks through the public API, the CLI and the log
that nothing was lost, no run stayed stuck and no step result was recorded
twice:

- the server restarted under load (``pg_ctl restart -m fast``, and ``-m
  immediate``, a crash), or down for longer than the busy timeout and the
  lease's safe window: every connection drops;
- every write waiting on a lock past ``lock_timeout``, or statements
  cancelled by a tiny ``statement_timeout``;
- ``max_connections`` full.

The rule is what a user of DBOS or Temporal expects: a workflow engine on
the database outlives a database restart or failover without operator
action (DBOS retries its system database's operations on a connection
error, ``dbos/_sys_db.py`` ``db_retry``; Temporal's workers retry a
frontend that is unavailable). Proctor's runtime does it through its own
paths: a write that fails stops the run's supervisor, which is hosted
again from its log after a back-off (D2, ``_rehosting``), and a wait for a
run's end reads again until its deadline (``_waiting``).

The ``time.sleep`` calls are the faults' durations, never a wait for
something to happen.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from actors import (
    EventType,
    InvalidArgument,
    OutcomeUnknown,
    RunHandle,
    RunNotFound,
    RunState,
    Runtime,
    StoreLocked,
    StoreUnavailable,
)
from actors._control_inbox import ControlInbox
from persistence import open_store
from tests.conftest import assert_nothing_left, wait_until
from tests.fault_workflows import chain
from tests.pg_cluster import PgCluster, PgDatabase
from tests.pg_load import FULL, RUNS, SETTLE, Hog, Load, app_url, connections
from tests.processes import proctor

pytestmark = pytest.mark.timeout(120)


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    """Where the steps' side files go."""
    path = tmp_path / "sides"
    path.mkdir()
    return path


@pytest.fixture
def threads() -> Iterator[None]:
    """No pykka actor and no thread (the pools' included) outlives the test's runtimes."""
    before = set(threading.enumerate())
    yield
    assert_nothing_left(before)


# -- P1: the server restarts under load -------------------------------------------------


def _restart_fast(cluster: PgCluster) -> None:
    cluster.restart("fast")


def _restart_immediate(cluster: PgCluster) -> None:
    cluster.restart("immediate")  # a crash: the server recovers from its WAL


def _down_past_the_lease(cluster: PgCluster) -> None:
    cluster.stop("fast")
    # Past the busy timeout (1 s: every write and read gives up) and the
    # lease's safe window (2.25 s: the runtime stops hosting its runs).
    time.sleep(4.0)
    cluster.start()


@pytest.mark.parametrize(
    "fault", [_restart_fast, _restart_immediate, _down_past_the_lease], ids=lambda f: f.__name__
)
def test_P1_a_server_restart_under_load_loses_nothing_and_strands_no_run(
    pg_cluster: PgCluster, pg_url: str, folder: Path, threads: None, fault: Any
) -> None:
    """40 runs in flight, waited for by 40 threads; the server restarts (or
    stays down past the lease). The runtime reconnects by itself: every wait
    returns its run's result, every run completes, no step result is
    recorded twice, and nothing is left running after close()."""
    with Runtime(pg_url, lease_ttl=3.0) as rt:
        load = Load(rt, folder)
        load.under_way()
        fault(pg_cluster)
        load.join()
    load.check(pg_url)


def test_P1_a_ControlInbox_restarted_while_the_server_is_down_waits_for_it(
    pg_cluster: PgCluster,
    pg_url: str,
    folder: Path,
    threads: None,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The ControlInbox dies (injected) while the server is down; restarted
    by the Guardian (SV2), it cannot open its connection yet. It tries again
    until the server is back instead of dying again and again past its
    restart intensity, which stopped the whole runtime for a restart of
    the server."""
    die, down, died = threading.Event(), threading.Event(), threading.Event()
    handle = ControlInbox.handle

    def dies_once(self: ControlInbox, message: Any) -> None:
        if die.is_set() and not died.is_set():
            down.wait(10)  # dies the moment the server is down, not before
            died.set()
            raise RuntimeError("injected: the ControlInbox dies")
        handle(self, message)

    monkeypatch.setattr(ControlInbox, "handle", dies_once)
    with Runtime(pg_url, lease_ttl=3.0) as rt:
        load = Load(rt, folder)
        load.under_way()
        die.set()
        pg_cluster.stop("fast")
        try:
            down.set()
            assert died.wait(10)
            time.sleep(2.0)  # the outage goes on: every restart's open fails
        finally:
            pg_cluster.start()
        load.join()
        assert rt.failure is None
    load.check(pg_url)


def test_P1_a_start_while_the_server_is_down_is_outcome_unknown_and_retried_safely(
    pg_cluster: PgCluster, pg_url: str, folder: Path, threads: None
) -> None:
    """A start whose write meets the server down cannot know whether its
    commit landed (a connection may drop after the commit): it raises
    ``OutcomeUnknown`` naming the run (A3), not a plain error that claims
    nothing was written. Retried with that id once the server is back, it
    runs the run once (A2): one ``run_created``, one result per step."""
    # A short outage (the busy timeout, 1 s), well within the lease's safe
    # window (7.5 s): a runtime that had to stop its runs (self-fencing)
    # refuses new ones until its next renewal, which is another test's matter.
    with Runtime(pg_url, lease_ttl=10.0, busy_timeout=1.0) as rt:
        # Up and writing first (its Journal and ControlInbox open their
        # connections in their own threads, just after Runtime() returns).
        assert rt.start(chain, str(folder), 1, 1, 0.01).result(timeout=SETTLE) == ["s0"]
        pg_cluster.stop("fast")
        try:
            with pytest.raises(OutcomeUnknown) as unknown:
                rt.start(chain, str(folder), 2, 1, 0.01)
        finally:
            pg_cluster.start()
        run_id = unknown.value.run_id
        # Retried as OutcomeUnknown says, until it is answered: the pools
        # reconnect on psycopg_pool's back-off, so the first tries after the
        # server is back may meet it still out of reach (OutcomeUnknown again).
        again: list[RunHandle[Any]] = []

        def retried() -> bool:
            with contextlib.suppress(OutcomeUnknown):
                again.append(rt.start(chain, str(folder), 2, 1, 0.01, run_id=run_id))
            return bool(again)

        wait_until(retried, timeout=SETTLE)
        assert again[0].result(timeout=SETTLE) == ["s0", "s1"]
        log = rt.events(run_id)
    assert [e.type for e in log].count(EventType.RUN_CREATED) == 1
    ends = sorted(e.call for e in log if e.type is EventType.STEP_COMPLETED)
    assert ends == [0, 1]


def test_P1_the_cli_during_a_server_outage_says_so_at_once_without_a_traceback_or_password(
    pg_cluster: PgCluster, pg_database: PgDatabase, tmp_path: Path
) -> None:
    """A command run while the server is down exits 1 within seconds with the
    server's reason (not a retry loop until a pool's timeout), no traceback,
    and the URL's password hidden; once the server is back the same command works."""
    url = pg_cluster.url(pg_database.name).replace("postgres@", "postgres:s3cret-pw@", 1)
    start = ("start", "tests.fault_workflows:chain", f'"{tmp_path}"', "1", "1", "0.01")
    pg_cluster.stop("fast")
    try:
        for args in (start, ("worker", "tests.fault_workflows")):
            began = time.monotonic()
            done = proctor(url, *args)
            took = time.monotonic() - began
            out = done.stdout + done.stderr
            assert done.returncode == 1, out
            assert "Connection refused" in out, out
            assert "postgres:***@" in out, out
            assert "s3cret-pw" not in out, out
            assert "Traceback" not in out, out
            assert took < 8.0, (took, out)
    finally:
        pg_cluster.start()
    done = proctor(url, *start)
    assert done.returncode == 0, done.stdout + done.stderr


# -- P1: a write waits on a lock, or statements time out ---------------------------------


def test_P1_writes_locked_past_the_lock_timeout_are_retried_and_nothing_is_lost(
    pg_url: str, folder: Path, threads: None
) -> None:
    """Another session holds every write off (``LOCK TABLE ... IN EXCLUSIVE
    MODE``, SQLite's ``BEGIN EXCLUSIVE``) past the busy timeout and the
    lease's safe window. As on a locked SQLite store: a start is refused with
    ``StoreLocked`` and writes nothing, reads go on, the runs in flight are
    hosted again from their logs and complete once the lock is gone."""
    with Runtime(pg_url, lease_ttl=3.0) as rt:
        load = Load(rt, folder)
        load.under_way()
        with psycopg.connect(pg_url, autocommit=True) as holder:
            holder.execute("BEGIN")
            holder.execute("LOCK TABLE proctor.runs IN EXCLUSIVE MODE")
            began = time.monotonic()
            with pytest.raises(StoreLocked, match="waited past the lock timeout"):
                rt.start(chain, str(folder), 1, 1, 0.01, run_id="during-the-lock")
            assert len(rt.list_runs(workflow=chain.name)) == RUNS  # reads go on
            time.sleep(max(0.0, 3.5 - (time.monotonic() - began)))  # the fault's length
            holder.execute("ROLLBACK")
        with pytest.raises(RunNotFound):  # the refused start wrote nothing
            rt.get_run("during-the-lock")
        late = rt.start(chain, str(folder), 3, 4, 0.02, run_id="during-the-lock")
        load.handles.append(late)
        assert late.result(timeout=SETTLE) == ["s0", "s1", "s2"]
        load.join()
    load.results[late.run_id] = ["s0", "s1", "s2"]
    load.check(pg_url)


def test_P1_a_statement_timeout_fails_writes_for_a_while_and_nothing_is_lost(
    pg_cluster: PgCluster,
    pg_database: PgDatabase,
    folder: Path,
    threads: None,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """``statement_timeout = 1ms`` on the database (every session opened
    since; the open ones are cut so that the pools reconnect with it): many
    statements are cancelled (``StoreLocked``, as a lock timeout). Once the
    setting is gone, every run completes, each step recorded once."""
    name = pg_database.name
    with Runtime(pg_database.url, lease_ttl=3.0) as rt:
        load = Load(rt, folder)
        load.under_way()
        pg_cluster.sql(f"ALTER DATABASE \"{name}\" SET statement_timeout = '1ms'")
        try:
            pg_cluster.terminate_backends(name)
            time.sleep(2.0)  # the fault's length
        finally:
            pg_cluster.sql(f'ALTER DATABASE "{name}" RESET statement_timeout')
        pg_cluster.terminate_backends(name)
        load.join()
    assert "canceling statement due to statement timeout" in caplog.text  # the fault bit
    load.check(pg_database.url)


# -- P1: max_connections full ------------------------------------------------------------


def test_P1_with_max_connections_full_opening_fails_at_once_and_a_running_runtime_goes_on(
    pg_cluster: PgCluster, pg_database: PgDatabase, folder: Path, threads: None
) -> None:
    """The server's connections are all taken (but the superusers' reserve).
    Opening a store, from the API or the CLI, fails at once with the
    server's reason ("too many clients"), exit 1 for the CLI; a runtime that
    was already running goes on with the connections it holds (at most 7:
    its facade's pool of up to 4, one each for its Journal and ControlInbox,
    one that listens), and its runs complete."""
    url = app_url(pg_cluster, pg_database)
    with Runtime(url, lease_ttl=3.0) as rt:
        load = Load(rt, folder)
        load.under_way()
        assert 3 <= connections(pg_cluster, pg_database) <= 7
        hog = Hog(url)
        try:
            began = time.monotonic()
            with pytest.raises(StoreUnavailable, match=FULL):
                open_store(url)
            assert time.monotonic() - began < 2.0
            done = proctor(
                url, "start", "tests.fault_workflows:chain", f'"{folder}"', "1", "1", "0"
            )
            assert done.returncode == 1, done.stdout + done.stderr
            assert FULL.search(done.stderr), done.stderr
            assert "Traceback" not in done.stderr, done.stderr
            # The running runtime works on: its runs complete, a new one starts.
            extra = rt.start(chain, str(folder), 3, 4, 0.02)
            load.handles.append(extra)
            assert extra.result(timeout=SETTLE) == ["s0", "s1", "s2"]
            load.join()
        finally:
            hog.release()
        with open_store(url, readonly=True) as store:  # the server takes us again
            assert store.get_run(extra.run_id).status is RunState.COMPLETED
    load.results[extra.run_id] = ["s0", "s1", "s2"]
    load.check(url)


# -- P1: how many connections a runtime uses --------------------------------------------


@pytest.mark.parametrize("sized", [("", 7), ("?pool_size=1", 4)], ids=["default", "one"])
def test_P1_a_runtime_holds_at_most_its_pool_size_plus_three_connections(
    pg_cluster: PgCluster, pg_database: PgDatabase, folder: Path, threads: None, sized: Any
) -> None:
    """Under load (40 runs, 40 threads waiting), a runtime holds its facade's
    pool (``pool_size``, from the URL, default 4) and one connection each for
    its Journal, its ControlInbox and the notifications it listens to (their
    one thread each never needs a second): 7 at most by default, 4 with
    ``?pool_size=1``; the runs complete either way."""
    query, most = sized
    peak = 0
    with Runtime(pg_database.url + query, lease_ttl=3.0) as rt:
        load = Load(rt, folder)
        deadline = time.monotonic() + SETTLE
        while len(load.results) < len(load.handles) and time.monotonic() < deadline:
            peak = max(peak, connections(pg_cluster, pg_database))
            time.sleep(0.01)  # sampling pg_stat_activity while the load runs
    assert 4 <= peak <= most
    load.check(pg_database.url)


def test_P1_a_pool_size_that_is_not_a_count_is_a_clear_error_and_opens_nothing(
    pg_cluster: PgCluster, pg_database: PgDatabase, threads: None
) -> None:
    for value in ("0", "-1", "four", ""):
        url = f"{pg_database.url}?pool_size={value}"
        with pytest.raises(InvalidArgument, match="pool_size in a PostgreSQL URL"):
            Runtime(url)
        with pytest.raises(InvalidArgument, match="pool_size in a PostgreSQL URL"):
            open_store(url)
    start = ("start", "tests.fault_workflows:chain", '"x"', "1", "1", "0")
    for args in (start, ("worker", "tests.fault_workflows")):
        done = proctor(f"{pg_database.url}?pool_size=0", *args)
        assert done.returncode == 2, done.stdout + done.stderr  # a usage error
        assert "pool_size in a PostgreSQL URL" in done.stderr, done.stderr
        assert "Traceback" not in done.stderr, done.stderr
    assert connections(pg_cluster, pg_database) == 0
    schema = "SELECT 1 FROM pg_namespace WHERE nspname = 'proctor'"
    assert pg_cluster.sql(schema, dbname=pg_database.name) == []
