"""What an action said, carried across its redirect to the run page (Post/Redirect/Get).

A successful cancel or terminate answers ``303 See Other`` to the run page,
so reloading that page reads the run again instead of sending the form
again. The sentences the action said ride along in one short-lived cookie:
HttpOnly, SameSite=Strict, valid for :data:`FLASH_SECONDS`, naming the run
it belongs to; the run page shows them once and deletes the cookie.

Invariants: the cookie is shown only on the page of the run it names, and at
most once; a value that cannot be read is ignored (nothing is shown), never
an error; it is data the page escapes like any other, never markup.
"""

from __future__ import annotations

import base64
import binascii
import json
from typing import Final

from starlette.requests import Request
from starlette.responses import Response

#: The cookie's name.
FLASH_COOKIE: Final = "proctor_ui_flash"
#: How long the cookie lives: long enough for the browser to follow the redirect.
FLASH_SECONDS: Final = 60
#: Above this size (bytes, encoded) the action answers with the page itself
#: instead of a redirect: browsers keep cookies of about 4 KiB at most.
MAX_FLASH_BYTES: Final = 3000


def encode(run_id: str, said: list[str]) -> str | None:
    """The cookie's value for ``said`` about ``run_id``, or None when too large."""
    raw = json.dumps({"run": run_id, "said": said}, ensure_ascii=False).encode()
    value = base64.urlsafe_b64encode(raw).decode("ascii")
    return value if len(value) <= MAX_FLASH_BYTES else None


def set_flash(response: Response, value: str) -> None:
    """Attach the flash cookie to a redirect."""
    response.set_cookie(
        FLASH_COOKIE, value, max_age=FLASH_SECONDS, path="/", httponly=True, samesite="strict"
    )


def take_flash(request: Request, run_id: str) -> list[str] | None:
    """The sentences a redirect carried for ``run_id``'s page, or None.

    The caller must then delete the cookie (:func:`clear_flash`) whenever
    this returned a value, so it is shown once.
    """
    value = request.cookies.get(FLASH_COOKIE)
    if not value:
        return None
    try:
        found = json.loads(base64.urlsafe_b64decode(value.encode("ascii")))
    except (ValueError, binascii.Error, UnicodeError):
        return None
    if not isinstance(found, dict) or found.get("run") != run_id:
        return None
    said = found.get("said")
    if not isinstance(said, list) or not all(isinstance(s, str) for s in said):
        return None
    return said


def clear_flash(response: Response) -> None:
    """Delete the flash cookie: it was shown."""
    response.delete_cookie(FLASH_COOKIE, path="/", httponly=True, samesite="strict")
