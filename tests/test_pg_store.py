"""What only a PostgreSQL store has to prove: many writers at once (P2), its own
schema (P1), notifications (P2) and connections that come back (faults).

The rest of the contract (fencing, transitions, semantics, crashes) runs on
both stores through the ``db`` fixture; these tests hold what SQLite's single
writer makes true by construction and a server store must make true itself.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import psycopg
import pytest

from persistence import (
    EventType,
    InvalidArgument,
    NewEvent,
    NotAProctorStore,
    Refused,
    SchemaTooNew,
    Store,
    StoreReplaced,
    open_store,
)
from persistence._row_locks import CONTROL_LOCK
from tests.conftest import wait_until
from tests.pg_cluster import PgCluster

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
def store(pg_url: str) -> Iterator[Store]:
    with open_store(pg_url) as opened:
        yield opened


def _created(run_id: str) -> NewEvent:
    return NewEvent(
        run_id=run_id, type=EventType.RUN_CREATED, data={"workflow": "w", "args": [], "kwargs": {}}
    )


def _claim(run_id: str, owner: str) -> NewEvent:
    return NewEvent(run_id=run_id, type=EventType.RUN_CLAIMED, data={"owner": owner})


def test_P1_tables_live_in_their_own_schema(store: Store, pg_url: str) -> None:
    store.append([_created("r1")])
    with psycopg.connect(pg_url) as conn:
        schemas = {
            row[0]
            for row in conn.execute(
                "SELECT DISTINCT schemaname FROM pg_tables WHERE tablename IN"
                " ('runs', 'events', 'steps', 'runtimes')"
            )
        }
    assert schemas == {"proctor"}


def test_P1_a_foreign_proctor_schema_is_refused_and_left_alone(pg_url: str) -> None:
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute("CREATE SCHEMA proctor")
        conn.execute("CREATE TABLE proctor.orders (id int)")
    with pytest.raises(NotAProctorStore, match="another application's tables"):
        open_store(pg_url)
    with psycopg.connect(pg_url) as conn:
        tables = [
            r[0]
            for r in conn.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'proctor'")
        ]
    assert tables == ["orders"]


def test_P1_a_reader_never_creates_the_schema(pg_url: str) -> None:
    with pytest.raises(NotAProctorStore):
        open_store(pg_url, readonly=True)
    with psycopg.connect(pg_url) as conn:
        assert conn.execute(
            "SELECT count(*) FROM pg_namespace WHERE nspname = 'proctor'"
        ).fetchone() == (0,)


def test_P2_a_claim_skips_a_run_another_runtime_is_claiming(store: Store, pg_url: str) -> None:
    """FOR UPDATE SKIP LOCKED: the second claimer is refused at once, not after
    the first one's transaction (nor after the lock timeout)."""
    store.append([_created("r1")])
    with psycopg.connect(pg_url) as other:
        other.execute("SELECT 1 FROM proctor.runs WHERE run_id = 'r1' FOR UPDATE")
        started = time.monotonic()
        (outcome,) = store.append([_claim("r1", "rt-b")])
        waited = time.monotonic() - started
        other.rollback()
    assert isinstance(outcome, Refused)
    assert "being claimed by another runtime" in outcome.reason
    assert waited < 2.0  # the lock timeout is 5 s: it did not queue
    (claimed,) = store.append([_claim("r1", "rt-b")])
    assert claimed.accepted


def test_P2_of_many_runtimes_claiming_the_same_runs_each_run_has_one_owner(pg_url: str) -> None:
    with open_store(pg_url) as setup:
        setup.append_groups([[_created(f"r{i}")] for i in range(60)])
    won: dict[str, list[str]] = {}
    lock = threading.Lock()
    go = threading.Barrier(4)

    def claimer(owner: str) -> None:
        with open_store(pg_url) as mine:
            go.wait()
            for i in range(60):
                (outcome,) = mine.append([_claim(f"r{i}", owner)], writer=owner)
                if outcome.accepted:
                    with lock:
                        won.setdefault(f"r{i}", []).append(owner)

    threads = [threading.Thread(target=claimer, args=(f"rt-{n}",)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert sorted(won) == sorted(f"r{i}" for i in range(60))
    assert all(len(owners) == 1 for owners in won.values())
    with open_store(pg_url, readonly=True) as reader:
        for run_id, (owner,) in won.items():
            assert reader.get_run(run_id).owner == owner


def test_P2_a_control_request_waits_for_an_earlier_one_to_commit(store: Store, pg_url: str) -> None:
    """Control requests commit in seq order: a scan past ``seq > cursor`` can
    never skip one that commits late (an identity column alone does not
    promise that). Here another transaction holds the control lock, as a
    writer between its request's insert and its commit does."""
    store.append([_created("r1")])
    cancel = NewEvent(
        run_id="r1", type=EventType.CANCEL_REQUESTED, data={"reason": "x", "source": "cli"}
    )
    done = threading.Event()
    with psycopg.connect(pg_url) as other:
        other.execute("SELECT pg_advisory_xact_lock(%s)", (CONTROL_LOCK,))
        writer = threading.Thread(target=lambda: (store.append([cancel]), done.set()))
        writer.start()
        wait_until(lambda: _waiting_for_advisory_lock(pg_url), timeout=10)
        assert not done.is_set()
        other.commit()
    assert done.wait(10)
    writer.join(10)
    assert [e.type for e in store.control_requests(after=0)] == [EventType.CANCEL_REQUESTED]


def _waiting_for_advisory_lock(url: str) -> bool:
    with psycopg.connect(url) as conn:
        row = conn.execute(
            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted"
        ).fetchone()
    return row is not None and row[0] > 0


def test_P2_a_write_notifies_listening_stores(store: Store, pg_url: str) -> None:
    with open_store(pg_url) as listener:
        first = listener.changes()
        store.append([_created("r1")])
        wait_until(lambda: listener.changes() != first, timeout=5)


def test_P2_a_lost_notification_connection_falls_back_to_polling(
    store: Store, pg_url: str, pg_cluster: object
) -> None:
    with open_store(pg_url) as listener:
        listener.changes()  # listening now
        with psycopg.connect(pg_url, autocommit=True) as admin:
            admin.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                " WHERE query LIKE 'LISTEN%%' AND pid != pg_backend_pid()"
            )
        # The server ends the backend a moment later; from then on, with no
        # notifications, every token is new (polling, as on SQLite): three
        # in a row, where a listening feed moves once a second at most.
        wait_until(lambda: len({listener.changes() for _ in range(3)}) == 3, timeout=10)


def test_P1_a_store_written_by_a_newer_proctor_is_refused(store: Store, pg_url: str) -> None:
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute("UPDATE proctor.store_info SET version = version + 1")
    with pytest.raises(SchemaTooNew, match="newer than this Proctor"):
        open_store(pg_url)


def test_P1_a_database_dropped_and_created_again_is_another_store(
    pg_url: str, pg_cluster: PgCluster
) -> None:
    name = pg_url.rsplit("/", 1)[1]
    with open_store(pg_url) as opened:
        opened.check_same_store()
        pg_cluster.sql(f'DROP DATABASE "{name}" WITH (FORCE)')
        pg_cluster.sql(f'CREATE DATABASE "{name}"')
        with pytest.raises(StoreReplaced):
            opened.check_same_store()


def test_P1_what_the_url_says_wins_over_the_stores_connection_defaults(pg_url: str) -> None:
    with open_store(f"{pg_url}?application_name=shop-worker") as opened:
        opened.list_runs()
        with psycopg.connect(pg_url) as conn:
            names = {r[0] for r in conn.execute("SELECT application_name FROM pg_stat_activity")}
    assert "shop-worker" in names
    with open_store(pg_url) as opened:
        opened.list_runs()
        with psycopg.connect(pg_url) as conn:
            names = {r[0] for r in conn.execute("SELECT application_name FROM pg_stat_activity")}
    assert "proctor" in names


def test_P1_a_url_libpq_cannot_read_is_a_bad_argument(pg_url: str) -> None:
    with pytest.raises(InvalidArgument, match=r'invalid URI query parameter: "bogus"$'):
        open_store(f"{pg_url}?bogus=1")


@pytest.mark.parametrize(
    "store_info",
    [
        "CREATE TABLE proctor.store_info (application text, version int);"
        " INSERT INTO proctor.store_info VALUES ('proctor', 1)",
        "CREATE TABLE proctor.store_info (application text, version int);"
        " INSERT INTO proctor.store_info VALUES ('proctor', 0)",
        "CREATE TABLE proctor.store_info (name text)",
    ],
    ids=["older-version", "version-0", "foreign-store-info"],
)
def test_P1_a_proctor_schema_this_proctor_did_not_write_is_refused_and_left_alone(
    pg_url: str, store_info: str
) -> None:
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute("CREATE SCHEMA proctor")
        conn.execute("CREATE TABLE proctor.runs (x int)")
        conn.execute(store_info)
    for readonly in (False, True):
        with pytest.raises(NotAProctorStore, match="not a Proctor store"):
            open_store(pg_url, readonly=readonly)
    with psycopg.connect(pg_url) as conn:
        tables = sorted(
            r[0]
            for r in conn.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'proctor'")
        )
    assert tables == ["runs", "store_info"]
