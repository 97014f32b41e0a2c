"""What every route of one dashboard shares: its store access, templates and CSRF secret.

Invariants: built once per app (:func:`cli.web._app.build_app`) and never
changed afterwards; it holds no open connection (see :mod:`cli.web._stores`).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from jinja2 import Environment
from starlette.requests import Request
from starlette.responses import HTMLResponse

from cli.web._guard import CsrfTokens
from cli.web._stores import Stores


@dataclass(frozen=True, slots=True)
class Dashboard:
    """The shared parts of one dashboard app."""

    stores: Stores
    templates: Environment
    csrf: CsrfTokens = field(default_factory=CsrfTokens)

    def page(self, name: str, status_code: int = 200, **context: Any) -> HTMLResponse:
        """Template ``name`` rendered (autoescaped) as an HTML response."""
        html = self.templates.get_template(name).render(
            store=self.stores.shown, now=time.time(), csrf=self.csrf.value, **context
        )
        return HTMLResponse(html, status_code=status_code)

    def problem(self, status_code: int, message: str) -> HTMLResponse:
        """An error page with one clear sentence (a 404, a bad filter, a store error)."""
        return self.page("problem.html", status_code, title=f"{status_code}", message=message)


def dashboard_of(request: Request) -> Dashboard:
    """The dashboard a request belongs to."""
    found: Dashboard = request.app.state.dashboard
    return found
