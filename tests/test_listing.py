"""A6: listing runs by status, workflow, parent and time range, a page at a time.

Peers: Temporal's ``ListWorkflowExecutions`` and DBOS's ``list_workflows``
filter by status, name and time, and page with an opaque token; keyset
paging (by ``created_at``, ``run_id``) is what keeps a page stable while
runs are created.
"""

from __future__ import annotations

import base64
import datetime
import json
import sqlite3
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlite_utils import Database

from actors import Client, InvalidArgument, InvalidArgumentType, RunPage, RunState
from persistence import EventType, NewEvent, open_store, run_query
from persistence._schema import APPLICATION_ID, MIGRATIONS, SCHEMA_VERSION
from tests.conftest import assert_nothing_left
from tests.conftest import run_cli as proctor
from tests.store_access import raw_sql

UTC = datetime.UTC
T0 = datetime.datetime(2026, 11, 1, tzinfo=UTC).timestamp()
#: A forged cursor nested deep enough to exhaust a JSON parser's recursion.
DEEP_CURSOR = base64.urlsafe_b64encode(b"[" * 100000).decode()


@pytest.fixture
def client(db: Path) -> Iterator[Client]:
    before = set(threading.enumerate())
    with Client(db, create=True) as opened:
        yield opened
    assert_nothing_left(before)


def add(
    db: Path,
    run_id: str,
    *,
    workflow: str = "shop.orders.order",
    created: float = T0,
    parent: str | None = None,
    ended: float | None = None,
) -> None:
    """A run created at ``created`` (epoch s); terminated at ``ended``, if given."""
    data: dict[str, Any] = {"workflow": workflow, "owner": None}
    if parent is not None:
        data["parent_run_id"] = parent
    with open_store(db) as store:
        store.append([NewEvent(run_id=run_id, type=EventType.RUN_CREATED, data=data)])
        raw_sql(db, "UPDATE runs SET created_at = ? WHERE run_id = ?", created, run_id)
        if ended is not None:
            store.terminate_tree(run_id, None, source="test")
            raw_sql(db, "UPDATE runs SET finished_at = ? WHERE run_id = ?", ended, run_id)


def ids(page: RunPage | list[Any]) -> list[str]:
    runs = page.runs if isinstance(page, RunPage) else page
    return [r.run_id for r in runs]


def test_A6_filters_by_status_workflow_short_name_parent_and_time(client: Client, db: Path) -> None:
    hour = 3600.0
    add(db, "a", created=T0, ended=T0 + 10 * hour)
    add(db, "b", created=T0 + hour, workflow="shop.refund")
    add(db, "c", created=T0 + 2 * hour, parent="a", workflow="shop.preorder")
    add(db, "d", created=T0 + 3 * hour, workflow="order", ended=T0 + 4 * hour)
    assert ids(client.list_runs()) == ["d", "c", "b", "a"]
    assert ids(client.list_runs("terminated")) == ["d", "a"]
    assert ids(client.list_runs([RunState.PENDING])) == ["c", "b"]
    # Full name, or the short name after the last dot; never a mere suffix.
    assert ids(client.list_runs(workflow="order")) == ["d", "a"]
    assert ids(client.list_runs(workflow="shop.orders.order")) == ["a"]
    assert ids(client.list_runs(workflow="orders.order")) == []
    assert ids(client.list_runs(workflow="preorder")) == ["c"]
    assert ids(client.list_runs(parent_run_id="a")) == ["c"]
    # Created: [since, until), in every form a time takes.
    since = datetime.datetime.fromtimestamp(T0 + hour, UTC)
    assert ids(client.list_runs(since=since, until=T0 + 3 * hour)) == ["c", "b"]
    iso = datetime.datetime.fromtimestamp(T0 + 2 * hour, UTC).isoformat()
    assert ids(client.list_runs(until=iso)) == ["b", "a"]
    assert ids(client.list_runs(until=iso.replace("+00:00", ""))) == ["b", "a"]  # UTC
    assert ids(client.list_runs(since=iso.replace("+00:00", "+01:00"))) == ["d", "c", "b"]
    # Ended: only runs that ended, in the range.
    assert ids(client.list_runs(ended_since=T0)) == ["d", "a"]
    assert ids(client.list_runs(ended_until=T0 + 5 * hour)) == ["d"]
    assert ids(client.list_runs("terminated", ended_since=T0 + 5 * hour, workflow="order")) == ["a"]


def test_A6_a_relative_time_counts_back_from_now(client: Client, db: Path) -> None:
    now = time.time()
    add(db, "old", created=now - 3 * 3600)
    add(db, "new", created=now - 60)
    assert ids(client.list_runs(since="2h")) == ["new"]
    assert ids(client.list_runs(until="30m")) == ["old"]
    assert ids(client.list_runs(since="1d")) == ["new", "old"]


def test_A6_pages_follow_each_other_newest_first_with_ties(client: Client, db: Path) -> None:
    for i in range(7):
        add(db, f"r{i}", created=T0 + (i // 3))  # ties of three
    whole = ids(client.list_runs())
    pages, cursor = [], None
    for _ in range(4):  # bounded: a cursor that never ends fails, not hangs
        page = client.list_runs_page(limit=3, cursor=cursor)
        pages.append(ids(page))
        cursor = page.next_cursor
        if cursor is None:
            break
    assert [len(p) for p in pages] == [3, 3, 1]
    assert [run for p in pages for run in p] == whole == ["r6", "r3", "r4", "r5", "r0", "r1", "r2"]
    # An exact fit: no cursor on the last page.
    assert client.list_runs_page(limit=7).next_cursor is None
    assert client.list_runs_page().next_cursor is None


def test_A6_async_page_agrees_with_the_sync_page(client: Client, db: Path) -> None:
    import asyncio  # noqa: PLC0415

    for i in range(4):
        add(db, f"r{i}", created=T0 + i)
    first = client.list_runs_page(limit=2)
    second = asyncio.run(client.list_runs_page_async(limit=2, cursor=first.next_cursor))
    assert (ids(first), ids(second), second.next_cursor) == (["r3", "r2"], ["r1", "r0"], None)


@pytest.mark.parametrize(
    ("kwargs", "error", "says"),
    [
        ({"cursor": "not-a-cursor"}, InvalidArgument, "not one a listing gave out"),
        ({"cursor": ""}, InvalidArgument, "not one a listing gave out"),
        ({"cursor": "WyJyOSIsMSwieCJd"}, InvalidArgument, "not one a listing gave out"),
        ({"cursor": "WyJyMSIsMSw1XQ"}, InvalidArgument, "not one a listing gave out"),
        ({"cursor": "WyJyMSIsIngiLCJhIl0"}, InvalidArgument, "not one a listing gave out"),
        ({"cursor": 42}, InvalidArgumentType, "cursor must be a str"),
        ({"cursor": DEEP_CURSOR}, InvalidArgument, "no listing gives out one longer"),
        ({"cursor": "A" * 1025}, InvalidArgument, "no listing gives out one longer"),
        ({"since": "yesterday"}, InvalidArgument, "since 'yesterday' is not a time"),
        ({"until": "2026-13-45"}, InvalidArgument, "is not a time"),
        ({"since": datetime.datetime(2026, 1, 1)}, InvalidArgument, "naive datetime"),
        ({"ended_since": float("nan")}, InvalidArgument, "finite"),
        ({"ended_until": [1]}, InvalidArgumentType, "ended_until must be"),
        ({"status": "sleeping"}, InvalidArgument, "names no run state"),
        ({"workflow": 3}, InvalidArgumentType, "workflow must be a str"),
        ({"limit": -1}, InvalidArgument, "at least 1"),
        ({"limit": 0}, InvalidArgument, "at least 1"),
        ({"since": T0 + 1, "until": T0}, InvalidArgument, r"since \(.*\) is not before until"),
        ({"since": T0, "until": T0}, InvalidArgument, "is not before until"),
        ({"ended_since": "1h", "ended_until": "2h"}, InvalidArgument, "ended_since .* ended_until"),
    ],
)
def test_A6_bad_input_is_a_clear_error(
    client: Client, db: Path, kwargs: dict[str, Any], error: type[Exception], says: str
) -> None:
    add(db, "r")
    with pytest.raises(error, match=says):
        client.list_runs_page(**kwargs)
    with pytest.raises(error, match=says):
        client.list_runs(**kwargs)


def test_A6_a_cursor_is_bound_to_the_filters_of_its_listing(client: Client, db: Path) -> None:
    """A cursor given with other filters would page a mixed listing: it is
    refused (Temporal binds a next_page_token to its query). A relative
    time is bound as written, so ``since="1d"`` pages go together."""
    now = time.time()
    for i in range(4):
        add(db, f"o{i}", created=now - 60 + i, workflow="shop.order")
        add(db, f"r{i}", created=now - 60 + i, workflow="shop.refund")
    first = client.list_runs_page(workflow="order", limit=2)
    assert first.next_cursor is not None
    for other in (
        {},
        {"workflow": "refund"},
        {"workflow": "shop.order"},
        {"workflow": "order", "status": "pending"},
        {"workflow": "order", "since": "1d"},
        {"workflow": "order", "parent_run_id": "x"},
    ):
        with pytest.raises(InvalidArgument, match="this cursor belongs to another listing"):
            client.list_runs_page(limit=2, cursor=first.next_cursor, **other)
    second = client.list_runs_page(workflow="order", limit=2, cursor=first.next_cursor)
    assert ids(first) + ids(second) == ["o3", "o2", "o1", "o0"]
    recent = client.list_runs_page(since="1d", limit=5)
    rest = client.list_runs_page(since="1d", limit=5, cursor=recent.next_cursor)
    assert len(ids(recent) + ids(rest)) == 8
    with pytest.raises(InvalidArgument, match="another listing"):
        client.list_runs_page(since="2d", limit=5, cursor=recent.next_cursor)


def test_A6_pages_of_a_relative_time_listing_read_the_first_pages_window(db: Path) -> None:
    """A later page keeps the instants ``since="1h"`` resolved to on the first
    page: recomputed from a later now, the window would move past runs the
    first page's window held, and they would never be listed (A6: no skip)."""
    now = T0 + 10 * 3600
    for i in range(4):
        add(db, f"r{i}", created=now - 3500 + i * 100)  # all within the hour before now
    add(db, "older", created=now - 7200)
    with open_store(db) as store:
        first = store.list_runs_page(run_query(since="1h", limit=2, now=now))
        later = now + 1800  # the second page is read half an hour later
        second = store.list_runs_page(
            run_query(since="1h", limit=2, now=later, cursor=first.next_cursor)
        )
        # A new listing counts back from its own now.
        fresh = store.list_runs_page(run_query(since="1h", now=later))
    assert (ids(first), ids(second), second.next_cursor) == (["r3", "r2"], ["r1", "r0"], None)
    assert ids(fresh) == []


# -- paging while runs are created ---------------------------------------------------------

_created = st.integers(min_value=0, max_value=5)  # few values: many ties


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    existing=st.lists(_created, min_size=0, max_size=12),
    limit=st.integers(min_value=1, max_value=4),
    inserts=st.lists(st.lists(_created, max_size=3), max_size=6),
)
def test_A6_paging_under_concurrent_inserts_never_skips_or_repeats_a_run(
    existing: list[int], limit: int, inserts: list[list[int]]
) -> None:
    with tempfile.TemporaryDirectory() as folder:
        db = Path(folder) / "p.db"
        open_store(db).close()
        for i, created in enumerate(existing):
            add(db, f"e{i:02d}", created=T0 + created)
        with Client(db) as client:
            seen: list[str] = []
            cursor = None
            for page_no in range(len(existing) + len(inserts) * 3 + 2):
                page = client.list_runs_page(limit=limit, cursor=cursor)
                seen.extend(ids(page))
                # Runs created between two pages, before, at and after the cursor.
                for j, created in enumerate(inserts[page_no] if page_no < len(inserts) else []):
                    add(db, f"n{page_no}-{j}", created=T0 + created)
                cursor = page.next_cursor
                if cursor is None:
                    break
            assert len(seen) == len(set(seen)), "a run was listed twice"
            assert {f"e{i:02d}" for i in range(len(existing))} <= set(seen), "a run was skipped"
            keys = [(r.created_at, r.run_id) for r in client.list_runs()]
            order = {run_id: (-created, run_id) for created, run_id in keys}
            assert seen == sorted(seen, key=order.__getitem__), "pages are out of order"


# -- the CLI -------------------------------------------------------------------------------


def test_A6_runs_list_json_is_an_object_with_iso_times_and_a_cursor(db: Path) -> None:
    for i in range(3):
        add(db, f"r{i}", created=T0 + i, ended=T0 + 10 if i == 0 else None)
    result = proctor(db, "runs", "list", "--json", "--limit", "2")
    assert result.exit_code == 0, result.output
    listed = json.loads(result.stdout)
    assert listed.keys() == {"schema_version", "runs", "next_cursor"}
    assert listed["schema_version"] == 1
    assert [r["run_id"] for r in listed["runs"]] == ["r2", "r1"]
    assert listed["runs"][0]["created_at"] == "2026-11-01T00:00:02Z"
    assert listed["runs"][0]["finished_at"] is None
    rest = json.loads(
        proctor(
            db, "runs", "list", "--json", "--limit", "2", "--cursor", listed["next_cursor"]
        ).stdout
    )
    assert [r["run_id"] for r in rest["runs"]] == ["r0"]
    assert rest["runs"][0]["finished_at"] == "2026-11-01T00:00:10Z"
    assert rest["next_cursor"] is None


def test_A6_runs_list_table_says_how_to_get_the_next_page(db: Path) -> None:
    for i in range(3):
        add(db, f"r{i}", created=T0 + i)
    table = proctor(db, "runs", "list", "--limit", "2").stdout
    cursor = json.loads(proctor(db, "runs", "list", "--json", "--limit", "2").stdout)["next_cursor"]
    assert f"next page: the same command with --cursor {cursor}" in " ".join(table.split())
    last = proctor(db, "runs", "list", "--limit", "2", "--cursor", cursor).stdout
    assert "r0" in last
    assert "r2" not in last
    assert "--cursor" not in last


def test_A6_runs_list_filters_by_time_parent_and_short_name(db: Path) -> None:
    now = time.time()
    add(db, "old", created=now - 3 * 3600, ended=now - 2 * 3600)
    add(db, "new", created=now - 60, parent="old", workflow="shop.refund")

    def listed(*args: str) -> list[str]:
        result = proctor(db, "runs", "list", "--json", *args)
        assert result.exit_code == 0, result.output
        return [r["run_id"] for r in json.loads(result.stdout)["runs"]]

    assert listed("--since", "2h") == ["new"]
    assert listed("--until", "30m") == ["old"]
    stamp = datetime.datetime.fromtimestamp(now - 3600, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    assert listed("--since", stamp) == ["new"]
    assert listed("--ended-since", "1d") == ["old"]
    assert listed("--ended-until", "1d") == []
    assert listed("--parent", "old") == ["new"]
    assert listed("--workflow", "refund") == ["new"]
    assert listed("--workflow", "order") == ["old"]
    assert "no runs match" in proctor(db, "runs", "list", "--since", "1m").stdout


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["--cursor", "garbage"], "not one a listing gave out"),
        (["--cursor", DEEP_CURSOR[:27000]], "no listing gives out one longer"),
        (["--since", "yesterday"], "--since 'yesterday' is not a time"),
        (["--until", "12:99"], "is not a time"),
        (["--ended-since", "-2h"], "is not a time"),
        (["--status", "sleeping"], "'sleeping' is not one of"),
        (["--since", "2h", "--until", "3h"], "is not before until"),
        (["--limit", "0"], "0 is not in the range"),
    ],
)
def test_A6_runs_list_refuses_bad_input_with_exit_2(db: Path, args: list[str], says: str) -> None:
    add(db, "r")
    result = proctor(db, "runs", "list", *args)
    assert result.exit_code == 2, result.output
    assert says in " ".join(result.stderr.split())
    assert "Traceback" not in result.output


# -- the index, a schema migration ---------------------------------------------------------


def test_A6_a_v6_store_gets_the_listing_indexes_and_pages_use_them(tmp_path: Path) -> None:
    path = tmp_path / "v6.db"
    conn = sqlite3.connect(path, isolation_level=None)
    for migration in MIGRATIONS[:6]:
        migration(Database(conn))
    conn.execute(f"PRAGMA application_id = {APPLICATION_ID}")
    conn.execute("PRAGMA user_version = 6")
    conn.close()
    add(path, "kept", created=T0)  # opening it migrates it
    add(path, "next", created=T0 + 1)
    with open_store(path) as store:
        first = store.list_runs_page(run_query(limit=1))
        queries: list[str] = []
        store._conn.set_trace_callback(queries.append)
        second = store.list_runs_page(run_query(limit=1, cursor=first.next_cursor))
        store._conn.set_trace_callback(None)
        assert (ids(first), ids(second)) == (["next"], ["kept"])
        (page_sql,) = [q for q in queries if q.startswith("SELECT * FROM runs")]
        plan = store._conn.execute(f"EXPLAIN QUERY PLAN {page_sql}").fetchall()
        version = store._conn.execute("PRAGMA user_version").fetchone()[0]
        indexes = {
            row[0]
            for row in store._conn.execute("SELECT name FROM sqlite_master WHERE type = 'index'")
        }
    assert version == SCHEMA_VERSION == 9
    assert {"idx_runs_page", "idx_runs_finished_at"} <= indexes
    assert "idx_runs_page" in str(plan)
    assert "TEMP B-TREE" not in str(plan)


def test_A6_a_runtime_lists_pages_as_a_client_does(db: Path) -> None:
    from actors import Runtime  # noqa: PLC0415

    for i in range(3):
        add(db, f"r{i}", created=T0 + i)
    with Runtime(db, resume=False) as rt, Client(db) as client:
        first = rt.list_runs_page(limit=2, workflow="order")
        assert ids(first) == ids(client.list_runs_page(limit=2, workflow="order")) == ["r2", "r1"]
        assert ids(client.list_runs(workflow="order", cursor=first.next_cursor)) == ["r0"]


def test_A6_runs_list_cursor_of_other_filters_is_exit_2(db: Path) -> None:
    for i in range(3):
        add(db, f"r{i}", created=T0 + i)
    listed = proctor(db, "runs", "list", "--json", "--limit", "1", "--status", "pending")
    cursor = json.loads(listed.stdout)["next_cursor"]
    result = proctor(db, "runs", "list", "--limit", "1", "--cursor", cursor)
    assert result.exit_code == 2, result.output
    assert "this cursor belongs to another listing" in " ".join(result.stderr.split())
    again = proctor(db, "runs", "list", "--limit", "1", "--status", "pending", "--cursor", cursor)
    assert again.exit_code == 0, again.output


def test_A6_runs_list_caption_counts_this_page(db: Path) -> None:
    """The caption says what this page holds: "the newest 1 run" on the
    first, "2 runs after the cursor" on a later one; no "(use --limit)"."""
    for i in range(4):
        add(db, f"r{i}", created=T0 + i)
    first = " ".join(proctor(db, "runs", "list", "--limit", "1").stdout.split())
    assert "the newest 1 run; there are more; next page: the same command with --cursor" in first
    cursor = json.loads(proctor(db, "runs", "list", "--json", "--limit", "1").stdout)["next_cursor"]
    later = " ".join(proctor(db, "runs", "list", "--limit", "2", "--cursor", cursor).stdout.split())
    assert "2 runs after the cursor; there are more" in later
    assert "newest" not in later
    assert "use --limit" not in first + later


def test_A6_runs_list_takes_epoch_seconds_as_the_api_does(client: Client, db: Path) -> None:
    add(db, "old", created=T0)
    add(db, "new", created=T0 + 100)
    result = proctor(db, "runs", "list", "--json", "--since", str(int(T0 + 50)))
    assert result.exit_code == 0, result.output
    assert [r["run_id"] for r in json.loads(result.stdout)["runs"]] == ["new"]
    assert ids(client.list_runs(since=str(int(T0 + 50)))) == ids(client.list_runs(since=T0 + 50))
    until = proctor(db, "runs", "list", "--json", "--until", f"{T0 + 50:.3f}")
    assert [r["run_id"] for r in json.loads(until.stdout)["runs"]] == ["old"]


@pytest.fixture
def new_york(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The local zone is UTC-5 (UTC-4 in summer) for the test, then restored."""
    monkeypatch.setenv("TZ", "America/New_York")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


def test_A6_a_time_copied_from_the_table_selects_that_time_in_any_zone(
    db: Path, new_york: None
) -> None:
    """The table prints UTC (ISO 8601, Z), the zone an offset-less --since
    is read in: a STARTED copied from the table is that run's instant."""
    created = T0 + 7 * 3600  # 2026-11-01T07:00:00Z, 02:00 in New York
    add(db, "early", created=created - 1)
    add(db, "run", created=created)
    table = proctor(db, "runs", "list").stdout
    shown = next(line for line in table.splitlines() if " run " in f" {line} ").split()[3]
    assert shown == "2026-11-01T07:00:00Z"
    for stamp in (shown, shown.removesuffix("Z")):
        result = proctor(db, "runs", "list", "--json", "--since", stamp)
        assert [r["run_id"] for r in json.loads(result.stdout)["runs"]] == ["run"], stamp
