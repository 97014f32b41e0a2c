"""Helpers for the dashboard's tests (O1): a client of the app, runs to show, form posts."""

from __future__ import annotations

import html
import os
import re
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from urllib.parse import quote as url_quote

with warnings.catch_warnings():
    # Starlette 1.x prefers httpx2 for its TestClient and warns when it falls
    # back to httpx (the dev extra's): the client works the same either way.
    warnings.filterwarnings("ignore", message="Using `httpx` with `starlette.testclient`")
    from starlette.testclient import TestClient

from cli.web._app import build_app
from persistence import EventRecord, RunRecord, create_unowned_run, open_store
from tests.conftest import Target

#: A loopback base URL: without a token the app serves loopback Host names only.
BASE = "http://127.0.0.1:8765"
#: The script tag every escaping test plants in user values.
SCRIPT = "<script>alert(1)</script>"
ESCAPED = html.escape(SCRIPT, quote=False)


@contextmanager
def dashboard(db: Target, *, token: str | None = None) -> Iterator[TestClient]:
    """The dashboard over ``db``, through Starlette's TestClient (httpx)."""
    app = build_app(os.fspath(db), token=token)
    with TestClient(app, base_url=BASE, follow_redirects=False) as client:
        yield client


def seed(db: Target, *run_ids: str, workflow: str = "shop.order", args: Any = None) -> None:
    """Unowned PENDING runs with these ids (the store created if need be)."""
    with open_store(db) as store:
        for run_id in run_ids:
            create_unowned_run(store, workflow, [args or run_id], {}, run_id=run_id)


def csrf_of(page: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', page)
    assert found, "no CSRF token in the page"
    return found.group(1)


def form_token(client: TestClient) -> str:
    """The CSRF token every action form of this dashboard carries."""
    token: str = client.app.state.dashboard.csrf.value  # type: ignore[attr-defined]
    return token


def post(
    client: TestClient, run_id: str, verb: str, *, origin: str | None = BASE, **fields: str
) -> Any:
    """Press a run page's ``verb`` button (cancel/terminate) with these form fields."""
    page = client.get(f"/runs/{quote(run_id)}")
    form = {"csrf": csrf_of(page.text), **fields}
    headers = {} if origin is None else {"Origin": origin}
    return followed(
        client, client.post(f"/runs/{quote(run_id)}/{verb}", data=form, headers=headers)
    )


def followed(client: TestClient, answer: Any) -> Any:
    """The page an action's answer leads to: an accepted action redirects
    (303, Post/Redirect/Get) to its run's page, which shows what it said."""
    if answer.status_code != 303:
        return answer
    location = answer.headers["location"]
    assert location.startswith("/runs/"), location
    return client.get(location)


def quote(run_id: str) -> str:
    """A run id in a URL path, as the pages link it."""
    return url_quote(run_id, safe="/")


def flash(page: str) -> list[str]:
    """The lines of ``#flash``, unescaped."""
    found = re.search(r'<div id="flash"[^>]*>(.*?)</div>', page, re.S)
    assert found, "no #flash in the page"
    return [html.unescape(p) for p in re.findall(r"<p>(.*?)</p>", found.group(1), re.S)]


def rows(page: str) -> list[tuple[str, str]]:
    """The runs table's rows: (run id, status), unescaped, in order."""
    found = re.findall(r'<tr data-run-id="([^"]*)" data-status="([^"]*)"', page)
    return [(html.unescape(r), s) for r, s in found]


def comparable(events: list[EventRecord]) -> list[tuple[Any, ...]]:
    """Events without what differs between two writers: seq, ts, run id, origin."""
    return [
        (
            e.type.value,
            e.step,
            e.call,
            e.attempt,
            {k: v for k, v in e.data.items() if k != "origin"},
        )
        for e in events
    ]


def request_fields(run: RunRecord) -> tuple[Any, ...]:
    """A run's status and request columns (not their times)."""
    return (
        run.status,
        run.cancel_reason,
        run.cancel_source,
        run.cancel_grace,
        run.terminate_reason,
        run.cancel_requested_at is not None,
        run.terminate_requested_at is not None,
    )
