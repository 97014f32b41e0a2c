"""O1: the dashboard's pages (runs list, run page) read the store as the CLI does.

Through Starlette's TestClient, on both stores. Filters, cursor paging and
their error messages are ``proctor runs list``'s (A6); a page never writes.
"""

from __future__ import annotations

import hashlib
import html
import re
import threading
from pathlib import Path

import pytest

from actors import Runtime, step, workflow
from persistence import EventType, InvalidArgument, open_store, request_cancel, run_query
from tests.conftest import Target, run_cli, wait_until
from tests.dashboard_helpers import (
    ESCAPED,
    SCRIPT,
    dashboard,
    quote,
    rows,
    seed,
)
from tests.pg_cluster import PgDatabase
from tests.pg_load import connections
from tests.store_access import raw_sql

pytestmark = pytest.mark.timeout(60)


@step()
def refuse(message: str) -> None:
    raise ValueError(message)


@workflow()
async def fails_with(message: str) -> None:
    await refuse(message)


@step()
def add_one(x: int) -> int:
    return x + 1


@workflow()
async def child_adds(x: int) -> int:
    return await add_one(x)


@workflow()
async def parent_of_two(x: int) -> int:
    return await child_adds(x) + await child_adds(x + 10)


def test_O1_runs_page_lists_each_run_with_status_workflow_owner_and_cancel_reason(
    db: Target,
) -> None:
    seed(db, "r-1", "r-2")
    with open_store(db) as store:
        request_cancel(store, "r-2", "customer asked", source="cli", origin="t", grace=None)
    with dashboard(db) as client:
        page = client.get("/")
    assert page.status_code == 200
    assert rows(page.text) == [("r-2", "CANCELLING"), ("r-1", "PENDING")]
    assert '<a href="/runs/r-1">' in page.text
    assert "customer asked" in page.text
    assert "shop.order" in page.text
    assert '<form id="filters"' in page.text
    assert 'id="next-page"' not in page.text


def test_O1_runs_page_filters_by_status_workflow_and_time_as_runs_list_does(db: Target) -> None:
    seed(db, "a-1", "a-2", workflow="shop.order")
    seed(db, "b-1", workflow="shop.refund")
    with open_store(db) as store:
        request_cancel(store, "a-1", None, source="cli", origin="t", grace=None)
    with dashboard(db) as client:
        by_status = rows(client.get("/", params={"status": "cancelling"}).text)
        by_workflow = rows(client.get("/", params={"workflow": "refund"}).text)
        recent = rows(client.get("/", params={"since": "1h"}).text)
        future = rows(client.get("/", params={"since": "2999-01-01T00:00:00Z"}).text)
        everything = rows(client.get("/", params={"status": ""}).text)
    assert by_status == [("a-1", "CANCELLING")]
    assert by_workflow == [("b-1", "PENDING")]
    assert {r for r, _ in recent} == {"a-1", "a-2", "b-1"}
    assert future == []
    assert {r for r, _ in everything} == {"a-1", "a-2", "b-1"}
    cli = run_cli(db, "runs", "list", "--workflow", "refund", "--json")
    assert '"b-1"' in cli.output
    assert '"a-1"' not in cli.output


def test_O1_runs_page_pages_with_the_listing_cursor_never_repeating_nor_skipping(
    db: Target,
) -> None:
    ids = [f"p-{i}" for i in range(5)]
    seed(db, *ids)
    seen: list[str] = []
    pages = 0
    with dashboard(db) as client:
        url: str | None = "/?limit=2&workflow=order"
        while url is not None:
            page = client.get(url)
            assert page.status_code == 200
            shown = [r for r, _ in rows(page.text)]
            assert len(shown) <= 2
            seen += shown
            pages += 1
            found = re.search(r'<a id="next-page" href="([^"]+)"', page.text)
            url = html.unescape(found.group(1)) if found else None
            assert pages <= 3
    assert pages == 3
    assert sorted(seen) == sorted(ids)
    assert len(seen) == len(set(seen))


@pytest.mark.parametrize(
    ("params", "argument"),
    [
        ({"since": "yesterday-ish"}, {"since": "yesterday-ish"}),
        ({"status": "sleeping"}, {"status": ["sleeping"]}),
        ({"cursor": "not-a-cursor"}, {"cursor": "not-a-cursor"}),
        (
            {"since": "2026-01-02T00:00:00Z", "until": "2026-01-01T00:00:00Z"},
            {"since": "2026-01-02T00:00:00Z", "until": "2026-01-01T00:00:00Z"},
        ),
    ],
)
def test_O1_a_bad_filter_is_a_400_page_with_the_listing_message(
    db: Target, params: dict[str, str], argument: dict[str, object]
) -> None:
    seed(db, "x-1")
    with pytest.raises(InvalidArgument) as refused:
        run_query(**argument)  # type: ignore[arg-type]
    with dashboard(db) as client:
        page = client.get("/", params=params)
        table = client.get("/live/runs", params=params)
    assert page.status_code == 400
    assert table.status_code == 400
    shown = re.search(r'<p id="filter-error" class="problem">(.*?)</p>', page.text, re.S)
    assert shown
    assert html.unescape(shown.group(1)) == str(refused.value)
    assert 'data-run-id="x-1"' not in page.text


def test_O1_a_bad_limit_is_a_400_page(db: Target) -> None:
    seed(db, "x-1")
    with dashboard(db) as client:
        assert client.get("/", params={"limit": "many"}).status_code == 400
        assert client.get("/", params={"limit": "0"}).status_code == 400


def test_O1_an_unknown_run_is_a_404_page_that_says_so(db: Target) -> None:
    seed(db, "known")
    with dashboard(db) as client:
        page = client.get("/runs/unknown-run")
        live = client.get("/live/runs/unknown-run")
    assert page.status_code == 404
    assert live.status_code == 404
    assert "no run with id &#39;unknown-run&#39;" in page.text


def test_O1_run_page_shows_header_values_tree_and_event_log(db: Target) -> None:
    with Runtime(db) as rt:
        handle = rt.start(parent_of_two, 1, run_id="tree-root")
        assert handle.result(timeout=20) == 2 + 12
        events = rt.events("tree-root")
        children = sorted(r.run_id for r in rt.list_runs(parent_run_id="tree-root"))
    assert len(children) == 2
    with dashboard(db) as client:
        page = client.get("/runs/tree-root").text
        child_page = client.get(f"/runs/{children[0]}").text
    assert 'id="run-status"' in page
    assert 'data-status="COMPLETED"' in page
    assert '<section id="timeline-section">' in page
    assert 'id="timeline"' in page
    for child in children:
        assert f'<a href="/runs/{child}">' in page
    assert '<ul id="tree">' in page
    assert '<pre id="args">' in page
    assert "14" in page.split('<pre id="result">')[1]
    for e in events:
        assert f'<tr data-seq="{e.seq}" data-type="{e.type.value}">' in page
    assert page.count("<tr data-seq=") == len(events)
    assert '<a href="/runs/tree-root">' in child_page  # the parent, linked
    assert 'id="cancel-button"' not in page  # a finished run has no actions


def test_O1_a_run_id_with_slashes_spaces_and_url_characters_links_to_its_page(
    db: Target,
) -> None:
    odd = "customer/42 ?#%&x"
    seed(db, odd)
    with dashboard(db) as client:
        listing = client.get("/").text
        assert f'href="/runs/{quote(odd)}"' in listing
        page = client.get(f"/runs/{quote(odd)}")
    assert page.status_code == 200
    assert 'data-status="PENDING"' in page.text


def test_O1_every_user_value_is_escaped_on_every_page(db: Target) -> None:
    """A workflow name, run id, reason, argument, error message and event data
    holding a script tag show as text: the escaped form is there, the tag never."""
    seed(db, SCRIPT, workflow=SCRIPT, args={"note": SCRIPT})
    with open_store(db) as store:
        request_cancel(store, SCRIPT, SCRIPT, source="cli", origin="t", grace=None)
    with Runtime(db) as rt:
        handle = rt.start(fails_with, SCRIPT, run_id="failing")
        wait_until(lambda: rt.get_run("failing").status.is_terminal, 20)
    del handle
    with dashboard(db) as client:
        pages = [
            client.get("/"),
            client.get("/live/runs"),
            client.get(f"/runs/{quote(SCRIPT)}"),
            client.get(f"/live/runs/{quote(SCRIPT)}"),
            client.get("/runs/failing"),
            client.get("/", params={"workflow": SCRIPT}),
            client.get("/", params={"since": SCRIPT}),
            client.get(f"/runs/{quote(SCRIPT)}x"),
        ]
    for page in pages:
        assert SCRIPT not in page.text, page.url
        assert "<script>alert" not in page.text, page.url
    run_page = pages[2].text
    assert run_page.count(ESCAPED) >= 4  # id, workflow, reason, args, event data
    assert ESCAPED in pages[4].text  # the error message
    assert "ValueError" in pages[4].text
    assert ESCAPED in pages[0].text
    assert ESCAPED in pages[6].text
    assert ESCAPED in pages[7].text  # the 404 page names the id


def _fingerprint(db: Target) -> tuple[object, ...]:
    with open_store(db, readonly=True) as store:
        runs = [r.to_json() for r in store.list_runs()]
        logs = [[e.to_json() for e in store.events(r["run_id"])] for r in runs]
        return store.last_seq(), store.changes(), repr(runs), repr(logs)


def test_O1_reads_never_write_the_store(db: Target, tmp_path: Path) -> None:
    seed(db, "w-1", "w-2")
    with open_store(db) as store:
        request_cancel(store, "w-2", "why", source="cli", origin="t", grace=None)
    before = _fingerprint(db)
    path = Path(str(db))
    digest = hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else None
    with dashboard(db) as client:
        for url in [
            "/",
            "/?status=pending",
            "/?limit=1",
            "/live/runs",
            "/runs/w-1",
            "/runs/w-2",
            "/live/runs/w-1",
            "/runs/nope",
            "/?since=bad",
            "/static/dashboard.js",
            "/static/dashboard.css",
        ]:
            assert client.get(url).status_code in {200, 400, 404}, url
    assert _fingerprint(db) == before
    if digest is not None:
        assert hashlib.sha256(path.read_bytes()).hexdigest() == digest


def test_O1_no_thread_outlives_the_app(db: Target) -> None:
    seed(db, "t-1")
    before = set(threading.enumerate())
    with dashboard(db) as client:
        for _ in range(5):
            assert client.get("/runs/t-1").status_code == 200
            assert client.get("/").status_code == 200

    def settled() -> bool:
        return not [t for t in threading.enumerate() if t not in before and t.is_alive()]

    wait_until(settled, 10)


def test_O1_the_live_endpoints_follow_the_run(db: Target) -> None:
    seed(db, "live-1")
    with dashboard(db) as client:
        assert 'data-status="PENDING"' in client.get("/live/runs/live-1").text
        with open_store(db) as store:
            request_cancel(store, "live-1", None, source="cli", origin="t", grace=None)
        fragment = client.get("/live/runs/live-1").text
        table = client.get("/live/runs").text
    assert 'id="run-status"' in fragment
    assert 'data-status="CANCELLING"' in fragment
    assert "<html" not in fragment
    assert "<html" not in table
    assert rows(table) == [("live-1", "CANCELLING")]
    assert EventType.CANCEL_REQUESTED.value in fragment


def test_O1_on_postgresql_reads_share_one_connection_closed_at_shutdown(
    pg_database: PgDatabase,
) -> None:
    """A tab polling every second costs a query, not a connection: the
    reads of a PostgreSQL dashboard share one read-only connection, which
    a failed read drops and the app's shutdown closes."""
    seed(pg_database.url, "polled")
    cluster = pg_database.cluster
    # a closed connection's server process ends a moment after the close
    wait_until(lambda: connections(cluster, pg_database) == 0)
    with dashboard(pg_database.url) as client:
        for _ in range(20):
            assert client.get("/live/runs").status_code == 200
            assert client.get("/live/runs/polled").status_code == 200
        during = connections(cluster, pg_database)
        cluster.terminate_backends(pg_database.name)  # the server drops it
        wait_until(lambda: connections(cluster, pg_database) == 0)
        pages = [client.get("/runs/polled").status_code for _ in range(3)]
        assert pages[-1] == 200  # connected again
        again = connections(cluster, pg_database)
    assert during == 1
    assert again == 1
    wait_until(lambda: connections(cluster, pg_database) == 0)


@pytest.mark.parametrize("cycle", ["self", "pair"])
def test_O1_parent_links_edited_into_a_cycle_never_hang_a_page_or_a_terminate(
    db: Target, cycle: str
) -> None:
    """Found by a tester: a run whose parent link was edited to point at
    itself (or two runs at each other) made ``descendants`` recurse forever:
    the run page hung with a thread spinning, and on PostgreSQL the query
    filled the temp space. The walk now never re-enters its start."""
    seed(db, "a", "b")
    if cycle == "self":
        raw_sql(db, "UPDATE runs SET parent_run_id = run_id WHERE run_id = 'a'")
    else:
        raw_sql(db, "UPDATE runs SET parent_run_id = 'b' WHERE run_id = 'a'")
        raw_sql(db, "UPDATE runs SET parent_run_id = 'a' WHERE run_id = 'b'")
    with open_store(db, readonly=True) as store:
        below = [r.run_id for r in store.descendants("a", unfinished=False)]
    assert below == ([] if cycle == "self" else ["b"])
    with dashboard(db) as client:
        assert client.get("/runs/a").status_code == 200
        assert client.get("/runs/b").status_code == 200
    said = run_cli(db, "terminate", "a", "--reason", "loop")
    assert said.exit_code == 0, said.output
    with open_store(db, readonly=True) as store:
        statuses = {r: store.get_run(r).status.value for r in ("a", "b")}
    assert statuses == {"a": "terminated", "b": "terminated" if cycle == "pair" else "pending"}


def test_O1_a_huge_value_is_cut_on_the_page_and_its_live_part(db: Target) -> None:
    """Found by a tester: a 4 MB argument made a 12 MB run page (shown as
    the arguments and in two events' data), fetched again every second by
    its live refresh. Each value is now cut, saying how much is left out."""
    seed(db, "big", args="x" * 1_000_000)
    with dashboard(db) as client:
        page = client.get("/runs/big")
        live = client.get("/live/runs/big")
    assert page.status_code == live.status_code == 200
    assert len(page.content) < 150_000
    assert len(live.content) < 150_000
    assert "more characters; the CLI&#39;s --json shows all" in page.text


@pytest.mark.sqlite_only("only SQLite lets a REAL column hold text, as a hand edit can")
def test_O1_a_row_edited_by_hand_is_one_sentence_not_a_crash(db: Target) -> None:
    """Found by a tester: a run whose created_at was edited into text made
    every page answer "Internal Server Error" with a traceback. A page that
    cannot be shown now answers 500 with one sentence; the others still work."""
    seed(db, "edited", "fine")
    raw_sql(db, "UPDATE runs SET created_at = 'yesterday' WHERE run_id = 'edited'")
    with dashboard(db) as client:
        broken = client.get("/runs/edited")
        fine = client.get("/runs/fine")
    assert broken.status_code == 500
    assert broken.text.startswith("500: /runs/edited could not be shown: ")
    assert "proctor runs status RUN_ID" in broken.text
    assert "Traceback" not in broken.text
    assert fine.status_code == 200


# -- what a new user found ---------------------------------------------------------


def test_O1_a_limit_below_one_is_refused_in_the_pages_own_words(db: Target) -> None:
    """``?limit=`` is the page's parameter: its error names no Python API
    (run_query's "or None: every run" is not something a URL can say)."""
    seed(db, "x-1")
    with dashboard(db) as client:
        for typed in ("0", "-3", "many"):
            page = client.get("/", params={"limit": typed})
            assert page.status_code == 400
            shown = re.search(r'<p id="filter-error" class="problem">(.*?)</p>', page.text, re.S)
            assert shown
            said = html.unescape(shown.group(1))
            assert said == f"limit must be a whole number of runs, at least 1, got {typed!r}"
            assert "None" not in said


def test_O1_a_bad_status_is_echoed_as_the_user_typed_it(db: Target) -> None:
    seed(db, "x-1")
    with dashboard(db) as client:
        page = client.get("/", params={"status": "BOGUS"})
        upper = client.get("/", params={"status": "CANCELLING"})
    assert page.status_code == 400
    assert "status &#39;BOGUS&#39; names no run state" in page.text
    assert "bogus" not in page.text
    assert upper.status_code == 200  # any case still names a state


def test_O1_a_later_page_links_the_first_page_with_the_same_filters(db: Target) -> None:
    """A cursor pages forward only (as ``proctor runs list --cursor``), so a
    later page offers the first (newest) page, keeping the filters."""
    seed(db, *(f"p-{i}" for i in range(3)))
    seed(db, "other-1", workflow="shop.refund")
    with dashboard(db) as client:
        first = client.get("/?limit=2&workflow=order")
        assert 'id="first-page"' not in first.text
        found = re.search(r'<a id="next-page" href="([^"]+)"', first.text)
        assert found
        second = client.get(html.unescape(found.group(1)))
        live = client.get("/live/runs?" + html.unescape(found.group(1)).split("?", 1)[1])
        link = re.search(r'<a id="first-page" href="([^"]+)"', second.text)
        assert link, "the second page links no first page"
        assert 'id="first-page"' in live.text  # the live table keeps the link
        back = client.get(html.unescape(link.group(1)))
    assert html.unescape(link.group(1)) == "/?workflow=order&limit=2"
    assert rows(back.text) == rows(first.text)
    assert 'id="first-page"' not in back.text


def test_O1_runs_page_reason_column_shows_cancel_and_terminate_reasons(db: Target) -> None:
    seed(db, "cancelled-1", "terminated-1", "both-1", "plain-1")
    assert run_cli(db, "cancel", "cancelled-1", "--reason", "out of stock").exit_code == 0
    assert run_cli(db, "terminate", "terminated-1", "--reason", "stuck").exit_code == 0
    assert run_cli(db, "cancel", "both-1", "--reason", "late").exit_code == 0
    assert run_cli(db, "terminate", "both-1", "--reason", "still late").exit_code == 0
    with dashboard(db) as client:
        page = client.get("/").text
    assert "<th>reason</th>" in page
    reasons = {
        html.unescape(run_id): html.unescape(reason)
        for run_id, reason in re.findall(
            r'<tr data-run-id="([^"]*)".*?<td class="reason">(.*?)</td>', page, re.S
        )
    }
    assert reasons == {
        "cancelled-1": "out of stock",
        "terminated-1": "terminate: stuck",
        "both-1": "late; terminate: still late",
        "plain-1": "",
    }


def test_O1_pages_link_an_icon_that_is_served(db: Target) -> None:
    """A browser asks every page for an icon; a 404 would log an error each time."""
    seed(db, "x-1")
    with dashboard(db) as client:
        page = client.get("/").text
        link = re.search(r'<link rel="icon" href="([^"]+)"', page)
        assert link
        icon = client.get(link.group(1))
        legacy = client.get("/favicon.ico", follow_redirects=True)
    assert icon.status_code == 200
    assert icon.headers["content-type"].startswith("image/svg+xml")
    assert icon.text.startswith("<svg")
    assert legacy.status_code == 200
    assert legacy.content == icon.content
