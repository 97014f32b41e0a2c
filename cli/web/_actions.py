"""The run page's buttons: cancel and terminate, written exactly as the CLI writes them.

Both call :mod:`cli._requesting`, the code ``proctor cancel`` and ``proctor
terminate`` call: same checks, same records (source ``cli``; origin
``ui-<pid>``, as the CLI's is ``cli-<pid>``), same sentences, shown in
``#flash`` of the run page the action redirects to (303, Post/Redirect/Get,
:mod:`cli.web._flash`), so a reload never sends the form again. A run that
is already finished answers 409 with the CLI's message and nothing is
written; an unknown run 404; a bad reason or grace 400 with the CLI's
message; a form without this process's CSRF token 403.

Each accepted action is logged (logger ``proctor.ui``, INFO): which, of
which run, from which client address, and what it said; page views are not.

With "wait", the action follows the run (``persistence.follow_to_end``, as
``proctor cancel --wait`` does, the grace enforced the same way) for at most
:data:`WAIT_SECONDS`, then says how it ended, or that it is still going.
"""

from __future__ import annotations

import logging
import time
from typing import Final
from urllib.parse import parse_qs

import click
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from cli import _requesting as requesting
from cli._main import SECONDS, AlreadyFinishedError, CliError, RunNotFoundError
from cli._text import clean
from cli.web import _flash
from cli.web._run_page import run_answer, run_path
from cli.web._state import Dashboard, dashboard_of
from persistence import NotSerializable, Store, StoreError, follow_to_end

#: The logger of accepted actions: one INFO line each (``proctor ui`` shows it on stderr).
log = logging.getLogger("proctor.ui")
#: How long "wait" follows the run before the page answers anyway (seconds).
WAIT_SECONDS: Final = 10.0
#: The largest form the actions read (bytes): a reason is at most a few KiB.
MAX_FORM_BYTES: Final = 64 * 1024


class Refusal(Exception):
    """An action refused before or while writing: the HTTP status and the CLI's message."""

    def __init__(self, status_code: int, message: str) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.message = message


def _origin() -> str:
    return requesting.origin("ui")


async def _form(request: Request, dashboard: Dashboard) -> dict[str, str]:
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_FORM_BYTES:
            raise Refusal(413, f"the form is larger than {MAX_FORM_BYTES} bytes")
    try:
        fields = parse_qs(body.decode("utf-8"), keep_blank_values=True, strict_parsing=False)
    except UnicodeDecodeError:
        raise Refusal(400, "the form is not UTF-8") from None
    form = {k: v[-1] for k, v in fields.items()}
    if not dashboard.csrf.check(form.get("csrf")):
        raise Refusal(403, "refused: the form's CSRF token is missing or stale; reload the page")
    return form


def _reason(form: dict[str, str]) -> str | None:
    text = form.get("reason", "")
    try:
        return requesting.checked_reason(text if text.strip() else None, "--reason")
    except NotSerializable as exc:
        raise Refusal(400, clean(str(exc))) from None


def _grace(form: dict[str, str]) -> float | None:
    text = form.get("grace", "").strip()
    if not text:
        return None
    try:
        return SECONDS.convert(text, None, None)
    except click.BadParameter as exc:
        raise Refusal(400, f"grace: {exc.message}") from None


def _cancel(
    store: Store, run_id: str, reason: str | None, grace: float | None, wait: bool
) -> list[str]:
    start = time.monotonic()
    appended = requesting.write_cancel(store, run_id, reason, origin=_origin(), grace=grace)
    said = [n for n in [requesting.cut_note(reason)] if n]
    said.append(requesting.cancel_said(run_id, appended))
    if not wait:
        return said
    final = follow_to_end(
        store,
        run_id,
        timeout_at=start + WAIT_SECONDS,
        grace_at=None if grace is None else start + grace,
        reason=reason,
        origin=_origin(),
        after=appended.run_seq,
        on_grace=lambda: said.append(f"grace is over: terminating run {clean(run_id)}"),
    )
    if final is None:
        status = store.get_run(run_id).status
        said.append(
            f"run {clean(run_id)} is still {status} after {WAIT_SECONDS:g}s;"
            " the cancel stays requested"
        )
    else:
        said.append(f"run {clean(run_id)} is {final.status}")
    return said


def _terminate(store: Store, run_id: str, reason: str | None) -> list[str]:
    children = requesting.write_terminate(store, run_id, reason, origin=_origin())
    said = [n for n in [requesting.cut_note(reason)] if n]
    said.append(requesting.terminate_said(run_id, children))
    return said


async def _act(request: Request, verb: str) -> Response:
    dashboard = dashboard_of(request)
    run_id: str = request.path_params["run_id"]
    try:
        form = await _form(request, dashboard)
        reason = _reason(form)
        if verb == "cancel":
            grace, wait = _grace(form), bool(form.get("wait"))
            said = await run_in_threadpool(
                dashboard.stores.write, lambda s: _cancel(s, run_id, reason, grace, wait)
            )
        else:
            said = await run_in_threadpool(
                dashboard.stores.write, lambda s: _terminate(s, run_id, reason)
            )
    except Refusal as exc:
        return await run_answer(
            dashboard, run_id, "run.html", status_code=exc.status_code, flash=[exc.message]
        )
    except RunNotFoundError as exc:
        return dashboard.problem(404, exc.message)
    except AlreadyFinishedError as exc:
        return await run_answer(dashboard, run_id, "run.html", status_code=409, flash=[exc.message])
    except CliError as exc:
        return await run_answer(dashboard, run_id, "run.html", status_code=500, flash=[exc.message])
    except StoreError as exc:
        return dashboard.problem(503, str(exc))
    client = request.client.host if request.client else "an unknown client"
    log.info(
        "proctor ui: %s of run %s requested from %s: %s",
        verb,
        clean(run_id),
        clean(client),
        " / ".join(said),
    )
    value = _flash.encode(run_id, said)
    if value is None:  # too long for a cookie: the page itself, at the form's URL
        return await run_answer(dashboard, run_id, "run.html", flash=said)
    done = RedirectResponse(run_path(run_id), status_code=303)  # Post/Redirect/Get
    _flash.set_flash(done, value)
    return done


async def cancel(request: Request) -> Response:
    """``POST /runs/{run_id}/cancel`` (form: csrf, reason, grace, wait): ``proctor cancel``."""
    return await _act(request, "cancel")


async def terminate(request: Request) -> Response:
    """``POST /runs/{run_id}/terminate`` (form: csrf, reason): ``proctor terminate``."""
    return await _act(request, "terminate")
