"""Who may talk to the dashboard: the Host check, the token, and the Origin of a write.

Checked in this order, for every request (pages, static files, live
updates, actions), before any route runs:

1. Without a token, the ``Host`` header must name a loopback address
   (``localhost``, ``127.0.0.0/8``, ``::1``): a page of another site that
   rebinds its DNS name to 127.0.0.1 reaches the port but carries its own
   name, and is refused (403). Jupyter's ``allow_remote_access`` check does
   the same.
2. With a token, the request carries it as ``Authorization: Bearer TOKEN``
   or in the ``proctor_ui_token`` cookie; ``?token=TOKEN`` on any URL sets
   that cookie (HttpOnly, SameSite=Strict) and redirects to the same URL
   without it. Anything else is 401. Compared with ``hmac.compare_digest``.
3. A request that is not a read (anything but GET and HEAD) must come from
   the dashboard's own pages: its ``Origin`` (or, without one, its
   ``Referer``) must name the same host and port as its ``Host`` (403). The
   form's CSRF token (:class:`CsrfTokens`) is checked by the action itself.

Every answer, refusals included, forbids framing (``X-Frame-Options: DENY``
and CSP ``frame-ancestors 'none'``): another site could otherwise show the
loopback dashboard in an invisible frame and have the user click its
buttons (clickjacking), and the frame's writes would carry the dashboard's
own Origin. It also sends ``X-Content-Type-Options: nosniff`` and
``Referrer-Policy: same-origin``.

Invariants: a refused request never reaches a route, so it reads nothing
and writes nothing; the token is never echoed in a response.
"""

from __future__ import annotations

import hmac
import html
import secrets
from http.cookies import SimpleCookie
from typing import Final
from urllib.parse import parse_qsl, urlencode, urlsplit

from starlette.datastructures import Headers
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from cli.web._hosts import host_name, is_loopback

#: The cookie that carries the token once ``?token=`` set it.
COOKIE: Final = "proctor_ui_token"
_READS: Final = frozenset({"GET", "HEAD"})
#: Sent with every answer (see the module docstring).
SECURITY_HEADERS: Final = (
    (b"x-frame-options", b"DENY"),
    (b"content-security-policy", b"frame-ancestors 'none'"),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"same-origin"),
)


def same_token(given: str | None, token: str) -> bool:
    """Whether ``given`` is the token, compared in constant time."""
    return given is not None and hmac.compare_digest(given.encode(), token.encode())


class CsrfTokens:
    """The per-process secret each action form carries and each action checks."""

    def __init__(self) -> None:
        self.value: Final = secrets.token_urlsafe(32)

    def check(self, given: str | None) -> bool:
        """Whether a form's token is this process's."""
        return same_token(given, self.value)


class Guard:
    """ASGI middleware: the three checks of the module docstring, then the app."""

    def __init__(self, app: ASGIApp, *, token: str | None) -> None:
        self._app = app
        self._token = token

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self._app(scope, receive, send)
            return

        async def send_guarded(message: Message) -> None:
            if message["type"] == "http.response.start":
                message = {**message, "headers": [*message.get("headers", []), *SECURITY_HEADERS]}
            await send(message)

        refused = self._refusal(scope)
        if refused is not None:
            await refused(scope, receive, send_guarded)
            return
        await self._app(scope, receive, send_guarded)

    def _refusal(self, scope: Scope) -> Response | None:
        headers = Headers(scope=scope)
        host = headers.get("host", "")
        if self._token is None and not is_loopback(host_name(host)):
            return _refused(
                "refused: the dashboard serves loopback names only without a token"
                " (start proctor ui with --token to serve other hosts)",
                status_code=403,
            )
        if self._token is not None:
            answer = self._token_answer(scope, headers)
            if answer is not None:
                return answer
        if scope["method"] not in _READS and not _same_origin(headers, host):
            return _refused(
                "refused: a change must come from the dashboard's own page (Origin)",
                status_code=403,
            )
        return None

    def _token_answer(self, scope: Scope, headers: Headers) -> Response | None:
        assert self._token is not None
        query = parse_qsl(scope.get("query_string", b"").decode("latin-1"), keep_blank_values=True)
        given = [v for k, v in query if k == "token"]
        if given:
            if not same_token(given[-1], self._token):
                return _unauthorized()
            rest = urlencode([(k, v) for k, v in query if k != "token"])
            # The path as the client sent it (still percent-encoded: a run id
            # may hold ``?``, ``#`` or ``%``), not the decoded ``path``.
            raw = scope.get("raw_path") or scope["path"].encode()
            # One leading slash: "//evil.example/" would be another site.
            path = "/" + raw.decode("latin-1").lstrip("/")
            target = scope.get("root_path", "") + path + (f"?{rest}" if rest else "")
            answer = RedirectResponse(target, status_code=303)
            answer.set_cookie(COOKIE, self._token, httponly=True, samesite="strict", path="/")
            return answer
        auth = headers.get("authorization", "")
        scheme, _, credentials = auth.partition(" ")
        if scheme.lower() == "bearer" and same_token(credentials.strip(), self._token):
            return None
        cookie = SimpleCookie()
        try:
            cookie.load(headers.get("cookie", ""))
        except Exception:  # a malformed Cookie header: no token in it
            return _unauthorized()
        morsel = cookie.get(COOKIE)
        if morsel is not None and same_token(morsel.value, self._token):
            return None
        return _unauthorized()


def _unauthorized() -> Response:
    return _refused(
        "401: this dashboard needs its token (Authorization: Bearer TOKEN, or open it"
        " once with ?token=TOKEN)",
        status_code=401,
        headers={"WWW-Authenticate": "Bearer"},
    )


def _same_origin(headers: Headers, host: str) -> bool:
    """Whether the request's Origin (else Referer) names ``host`` (name and port)."""
    origin = headers.get("origin") or headers.get("referer")
    if not origin or origin == "null" or not host:
        return False
    return urlsplit(origin).netloc.lower() == host.lower()


def _refused(text: str, *, status_code: int, headers: dict[str, str] | None = None) -> Response:
    """A refusal as a small HTML page that links an empty icon, so a browser
    asks for no ``/favicon.ico`` (which the same guard would refuse again)."""
    page = (
        '<!doctype html><meta charset="utf-8"><link rel="icon" href="data:,">'
        f"<title>{status_code}</title><pre>{html.escape(text)}</pre>"
    )
    return HTMLResponse(page, status_code=status_code, headers=headers)
