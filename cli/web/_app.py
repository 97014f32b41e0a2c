"""The dashboard's ASGI app: its routes, static files and guard, built by :func:`build_app`.

Invariants: every request passes :class:`cli.web._guard.Guard` first; the
only connection held between requests is the shared read-only one of a
PostgreSQL store (:mod:`cli.web._stores`), closed when the app shuts down
(its lifespan), so a stopped dashboard leaves nothing open; pages are
rendered on the server and the JavaScript and CSS are files of this package
(no CDN: it works offline).
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from importlib.resources import files

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import RedirectResponse
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

import persistence
from cli.web import _actions, _run_page, _runs_page
from cli.web._crashes import Crashes
from cli.web._guard import Guard
from cli.web._state import Dashboard
from cli.web._stores import Stores
from cli.web._views import environment
from persistence import DEFAULT_BUSY_TIMEOUT, StoreTarget


async def _favicon(_request: Request) -> RedirectResponse:
    """``GET /favicon.ico`` (asked for by a browser on a page that links no icon):
    the pages' icon, so no browser logs a 404 for it."""
    return RedirectResponse("/static/favicon.svg", status_code=301)


def build_app(
    target: StoreTarget | str,
    *,
    token: str | None,
    busy_timeout: float = DEFAULT_BUSY_TIMEOUT,
) -> Starlette:
    """The dashboard over the store ``target`` names (a path or URL: ``parse_target``).

    ``token``: when given, every request must carry it (see
    :mod:`cli.web._guard`); when None, only loopback ``Host`` names are served.

    Raises:
        InvalidArgument: ``target`` is malformed, or ``token`` is empty.
    """
    if token is not None and not token.strip():
        raise persistence.InvalidArgument("the dashboard's token must not be empty")
    parsed = target if isinstance(target, StoreTarget) else persistence.parse_target(target)
    dashboard = Dashboard(stores=Stores(parsed, busy_timeout=busy_timeout), templates=environment())
    static = StaticFiles(directory=str(files("cli.web") / "static"))
    stores = dashboard.stores

    @contextlib.asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        try:
            yield
        finally:
            stores.close()

    app = Starlette(
        lifespan=lifespan,
        routes=[
            Route("/", _runs_page.runs_page, methods=["GET"]),
            Route("/favicon.ico", _favicon, methods=["GET"]),
            Route("/live/runs", _runs_page.runs_table, methods=["GET"]),
            Route("/runs/{run_id:path}/cancel", _actions.cancel, methods=["POST"]),
            Route("/runs/{run_id:path}/terminate", _actions.terminate, methods=["POST"]),
            Route("/live/runs/{run_id:path}", _run_page.run_live, methods=["GET"]),
            Route("/runs/{run_id:path}", _run_page.run_page, methods=["GET"]),
            Mount("/static", app=static, name="static"),
        ],
        middleware=[Middleware(Guard, token=token), Middleware(Crashes)],
    )
    app.state.dashboard = dashboard
    return app
