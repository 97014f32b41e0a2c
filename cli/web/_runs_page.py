"""The runs page ``/``: runs filtered and paged as ``proctor runs list`` does (A6).

Invariants: the filters are checked by ``persistence.run_query``, the very
checks of ``proctor runs list`` (a bad one is a 400 page with its message);
the page reads the store read-only; the next page's link carries the same
filters and the cursor the listing gave out, so paging neither repeats nor
skips a run; a page after the first links the first (newest) page with
the same filters (a cursor pages forward only, as ``runs list`` does).
``/live/runs`` answers the same query's table alone, for the
page's live refresh.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from typing import Any, Final
from urllib.parse import urlencode

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse

from cli._listing import PAGE_SIZE
from cli._owner import owner_state
from cli.web._state import Dashboard, dashboard_of
from cli.web._stores import Stores
from persistence import InvalidArgument, RunQuery, RunRecord, Store, StoreError, run_query

_FILTERS: Final = ("status", "workflow", "since", "until")


@dataclass(frozen=True, slots=True)
class Listing:
    """One page of runs, with each run's owner state and the link to the next page."""

    runs: list[RunRecord]
    owners: dict[str, dict[str, Any]]
    next_href: str | None
    #: The first (newest) page with the same filters; None on the first page.
    first_href: str | None = None


class BadFilter(Exception):
    """A filter the CLI would refuse; the message is the CLI's."""


def _query_of(request: Request) -> tuple[dict[str, str], RunQuery]:
    params = request.query_params
    filters = {k: params.get(k, "").strip() for k in _FILTERS}
    limit_text = params.get("limit", "").strip()
    try:
        limit = int(limit_text) if limit_text else PAGE_SIZE
    except ValueError:
        limit = 0
    if limit < 1:  # said as the page's parameter, not as run_query's (None: every run)
        raise BadFilter(f"limit must be a whole number of runs, at least 1, got {limit_text!r}")
    try:
        query = run_query(
            # as typed: run_query accepts any case, and its error echoes it
            status=[filters["status"]] if filters["status"] else None,
            workflow=filters["workflow"] or None,
            since=filters["since"] or None,
            until=filters["until"] or None,
            limit=limit,
            cursor=params.get("cursor") or None,
        )
    except InvalidArgument as exc:
        raise BadFilter(str(exc)) from None
    kept = {k: v for k, v in filters.items() if v}
    if limit_text:
        kept["limit"] = limit_text
    return kept, query


def _listing(stores: Stores, kept: dict[str, str], query: RunQuery, *, paged: bool) -> Listing:
    def read(store: Store) -> tuple[list[RunRecord], str | None, dict[str, dict[str, Any]]]:
        page = store.list_runs_page(query)
        runtimes = store.runtimes()
        return page.runs, page.next_cursor, {r.run_id: owner_state(r, runtimes) for r in page.runs}

    runs, cursor, owners = stores.read(read)
    next_href = None if cursor is None else "/?" + urlencode({**kept, "cursor": cursor})
    first_href = ("/?" + urlencode(kept) if kept else "/") if paged else None
    return Listing(runs=runs, owners=owners, next_href=next_href, first_href=first_href)


async def _answer(request: Request, template: str) -> HTMLResponse:
    dashboard: Dashboard = dashboard_of(request)
    try:
        kept, query = _query_of(request)
    except BadFilter as exc:
        return dashboard.page(
            "runs.html", 400, filters=_shown_filters(request), listing=None, error=str(exc)
        )
    try:
        listing = await run_in_threadpool(
            partial(_listing, paged=bool(_cursor_of(request))), dashboard.stores, kept, query
        )
    except StoreError as exc:
        return dashboard.problem(503, str(exc))
    live = "/live/runs?" + urlencode({**kept, **_cursor_of(request)})
    return dashboard.page(
        template, filters=_shown_filters(request), listing=listing, error=None, live=live
    )


def _cursor_of(request: Request) -> dict[str, str]:
    cursor = request.query_params.get("cursor")
    return {"cursor": cursor} if cursor else {}


def _shown_filters(request: Request) -> dict[str, str]:
    return {k: request.query_params.get(k, "") for k in _FILTERS}


async def runs_page(request: Request) -> HTMLResponse:
    """``GET /``: the filters form, the runs table and the next page's link."""
    return await _answer(request, "runs.html")


async def runs_table(request: Request) -> HTMLResponse:
    """``GET /live/runs``: the same query's table alone (the page polls it)."""
    return await _answer(request, "runs_table.html")
