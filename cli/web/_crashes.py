"""A page that cannot be shown answers one sentence, not a stack trace.

A store edited by hand (a timestamp that is text, JSON that does not
parse) can hold a row that some part of a page cannot use. The CLI shows
what it can of such a run; the dashboard, a long-running server, must not
answer an operator with "Internal Server Error" and a traceback in its
output either. This middleware catches what a route raises before its
answer began, answers ``500`` with one sentence naming the page and the
error, and logs it once (logger ``proctor.ui``, with the traceback at
DEBUG).

Invariants: it never hides a refusal (those are answers, not errors) and
never answers twice: an error after the answer began is left to the
server, which closes the connection.
"""

from __future__ import annotations

import logging
from typing import Final

from starlette.responses import PlainTextResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from cli._text import clean

_log: Final = logging.getLogger("proctor.ui")


class Crashes:
    """ASGI middleware: an exception before the answer began becomes a 500 sentence."""

    def __init__(self, app: ASGIApp) -> None:
        self._app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self._app(scope, receive, send)
            return
        started = False

        async def tracked(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self._app(scope, receive, tracked)
        except Exception as exc:
            if started:
                raise
            path = clean(scope.get("path", "?"))
            what = clean(f"{type(exc).__name__}: {exc}")[:500]
            _log.warning("proctor ui: %s could not be shown: %s", path, what)
            _log.debug("the error behind %s", path, exc_info=True)
            answer = PlainTextResponse(
                f"500: {path} could not be shown: {what}. The store may hold a row edited"
                " by hand; `proctor runs status RUN_ID` shows what it can read of a run.",
                status_code=500,
            )
            await answer(scope, receive, send)
