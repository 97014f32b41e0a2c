"""What a listing of runs asks for: filters, a time range, a page and its cursor.

:func:`run_query` turns the caller's arguments (a status name, a time as an
ISO 8601 text, ``"2h"``, a ``datetime`` or epoch seconds, an opaque cursor)
into one checked, immutable :class:`RunQuery`; ``_queries`` turns that into
SQL. A listing returns a :class:`RunPage`: the runs, and the cursor of the
next page.

Invariants:

* every argument is checked before anything is read: bad input is an
  ``InvalidArgument`` (``InvalidArgumentType`` for a wrong type) that names
  the argument and says what it takes;
* the order of a listing is total, newest first: ``created_at`` descending,
  then ``run_id`` ascending. A cursor is the (``created_at``, ``run_id``) of
  the last run of a page, so the next page starts strictly after it:
  paging never repeats a run and never skips one that existed when the
  first page was read, whatever is inserted meanwhile (keyset pagination,
  as Temporal's and DBOS's list APIs page);
* a time range is half-open: ``since`` included, ``until`` excluded; an
  empty range (``since`` not before ``until``) is refused, not answered
  with nothing;
* a cursor is bound to its listing's filters (a digest of them inside it,
  as Temporal binds a ``next_page_token`` to its query): given with other
  filters it is refused, never answered with a page of another listing.
  A relative time (``"2h"``) is bound as written, so the pages of one
  ``--since 2h`` listing go together though ``now`` moves; the first page
  resolves it to an instant and the cursor carries that instant, so every
  page reads the same window (a later ``now`` would move it and skip runs);
* a cursor is short (under :data:`MAX_CURSOR_CHARS`): a longer text is
  refused before it is decoded.
"""

from __future__ import annotations

import base64
import binascii
import datetime
import hashlib
import json
import math
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

from persistence._errors import InvalidArgument, InvalidArgumentType
from persistence._records import RunRecord
from persistence._retention import parse_duration
from persistence._states import RunState

#: What a time filter takes: epoch seconds, an aware datetime, or a text
#: (ISO 8601, or a duration ago such as ``"2h"``).
Instant = float | int | datetime.datetime | str

#: The version tag inside a cursor; a cursor of another version is refused.
_CURSOR_TAG: Final = "r3"

#: The longest cursor a listing gives out is about 200 characters; a longer
#: text is refused before it is decoded (a forged one could nest deep enough
#: to exhaust the parser's recursion, or be big enough to cost time).
MAX_CURSOR_CHARS: Final = 1024


@dataclass(frozen=True, slots=True)
class RunPage:
    """One page of a listing: ``runs`` newest first, and ``next_cursor``.

    ``next_cursor`` is None on the last page; otherwise pass it as
    ``cursor=`` (with the same filters) to read the next page. It is opaque
    text: its content may change between versions.
    """

    runs: list[RunRecord]
    next_cursor: str | None


@dataclass(frozen=True, slots=True, kw_only=True)
class RunQuery:
    """A checked listing request (see :func:`run_query`); times are epoch seconds."""

    states: tuple[RunState, ...] | None = None
    workflow: str | None = None
    parent_run_id: str | None = None
    since: float | None = None
    until: float | None = None
    ended_since: float | None = None
    ended_until: float | None = None
    limit: int | None = None
    after: tuple[float, str] | None = None
    #: The digest of the filters, which the page's cursor carries.
    filters: str = ""


#: The largest page a listing serves (a 64-bit SQL integer, with room to spare).
MAX_LIMIT: Final = 2**62


def run_query(
    *,
    status: object = None,
    workflow: object = None,
    parent_run_id: object = None,
    since: object = None,
    until: object = None,
    ended_since: object = None,
    ended_until: object = None,
    limit: object = None,
    cursor: object = None,
    now: float | None = None,
) -> RunQuery:
    """Check a listing's arguments; see ``Client.list_runs_page`` for their meaning.

    ``now`` (epoch seconds, default the clock) is what a relative time counts back from.

    Raises:
        InvalidArgument: a status that names no state, a time that is not
            ISO 8601 nor a duration, a naive ``datetime``, a non-finite
            number, a ``limit`` below 1 or above :data:`MAX_LIMIT`, a
            ``workflow`` or ``parent_run_id`` holding a NUL, ``since`` not before ``until`` (or
            ``ended_since`` not before ``ended_until``), a cursor no listing
            gave out or one of a listing with other filters.
        InvalidArgumentType: an argument of the wrong type.
    """
    for what, text in (("workflow", workflow), ("parent_run_id", parent_run_id)):
        if text is not None and not isinstance(text, str):
            raise InvalidArgumentType(f"{what} must be a str (or None), got {text!r}")
        if text is not None and "\x00" in text:
            # no name or run id holds one, and PostgreSQL cannot compare text with one
            raise InvalidArgument(f"{what} holds a NUL character (\\x00), which no run's can")
    if isinstance(limit, int) and not isinstance(limit, bool) and limit > MAX_LIMIT:
        raise InvalidArgument(f"limit must be at most {MAX_LIMIT}, got {limit}")
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int)):
        raise InvalidArgumentType(f"limit must be an int (or None), got {limit!r}")
    if limit is not None and limit < 1:
        # A page of 0 runs, and no cursor, would read as "no runs" (the CLI refuses it too).
        raise InvalidArgument(f"limit must be at least 1 (or None: every run), got {limit}")
    clock = time.time() if now is None else now
    states = None if status is None else tuple(run_states(status))
    given = {
        "since": since,
        "until": until,
        "ended_since": ended_since,
        "ended_until": ended_until,
    }
    times = {what: instant(value, what, clock) for what, value in given.items()}
    filters = _digest(
        sorted(s.value for s in states) if states is not None else None,
        workflow,
        parent_run_id,
        *(_time_key(value, times[what]) for what, value in given.items()),
    )
    after = None
    if cursor is not None:
        created_at, run_id, resolved = decode_cursor(cursor, filters)
        after = (created_at, run_id)
        # A later page keeps the first page's instants: a relative time
        # recomputed from a later now would move the window and skip runs.
        times = {
            what: resolved[i] if _relative(value) else times[what]
            for i, (what, value) in enumerate(given.items())
        }
    for low, high in (("since", "until"), ("ended_since", "ended_until")):
        start, end = times[low], times[high]
        if start is not None and end is not None and start >= end:
            raise InvalidArgument(
                f"{low} ({iso_utc(start)}) is not before {high} ({iso_utc(end)}): the range"
                f" from {low} (included) to {high} (excluded) is empty"
            )
    return RunQuery(
        states=states,
        workflow=workflow,  # type: ignore[arg-type]  # checked above
        parent_run_id=parent_run_id,  # type: ignore[arg-type]
        since=times["since"],
        until=times["until"],
        ended_since=times["ended_since"],
        ended_until=times["ended_until"],
        limit=limit,
        after=after,
        filters=filters,
    )


def _relative(value: object) -> bool:
    """Whether a time filter is a duration ago (``"2h"``): its instant depends on ``now``."""
    return _time_key(value, None) is not None


def _time_key(value: object, resolved: float | None) -> object:
    """A time filter as its cursor binds it: a duration ago as written
    (its instant moves with ``now``), any other time as epoch seconds."""
    if isinstance(value, str):
        try:
            return f"ago {parse_duration(value.strip())}"
        except ValueError:
            pass
    return resolved


def _digest(*filters: object) -> str:
    """A short digest of a listing's normalized filters (12 hex digits)."""
    raw = json.dumps(filters, separators=(",", ":"))
    return hashlib.blake2b(raw.encode(), digest_size=6).hexdigest()


_STATE_NAMES = frozenset(s.value for s in RunState)


def run_states(status: object) -> list[RunState]:
    """``status`` as a list of states: a RunState, a state's name in any case
    (``"running"``), or a sequence (not a str) of those.

    Raises:
        InvalidArgument: a name that is no state (the message lists them).
        InvalidArgumentType: anything else.
    """
    items = [status] if isinstance(status, RunState | str) else status
    if not isinstance(items, Sequence):
        raise InvalidArgumentType(
            f"status must be a RunState, its name, or a sequence of them; got {status!r}"
        )
    states = []
    for item in items:
        if isinstance(item, RunState):
            states.append(item)
        elif isinstance(item, str) and item.lower() in _STATE_NAMES:
            states.append(RunState(item.lower()))
        elif isinstance(item, str):
            names = ", ".join(sorted(_STATE_NAMES))
            raise InvalidArgument(f"status {item!r} names no run state; one of: {names}")
        else:
            raise InvalidArgumentType(f"status must be a RunState or its name, got {item!r}")
    return states


def instant(value: object, what: str, now: float) -> float | None:
    """A time filter as epoch seconds (None: no bound).

    Takes epoch seconds, a timezone-aware ``datetime``, or a text: ISO 8601
    (``2026-11-30T08:00:00Z``; without an offset it is UTC, the zone the
    CLI prints times in), a duration ago (``30m``, ``2h``, ``1d``: that
    long before ``now``), or epoch seconds (``1796002308``).

    Raises:
        InvalidArgument: a text that is neither, a naive ``datetime``
            (its time zone would be a guess), a non-finite number.
        InvalidArgumentType: another type.
    """
    if value is None:
        return None
    if isinstance(value, bool):
        raise InvalidArgumentType(f"{what} must be a time, got {value!r}")
    if isinstance(value, int | float):
        if not math.isfinite(value):
            raise InvalidArgument(f"{what} must be a finite number of epoch seconds, got {value}")
        return float(value)
    if isinstance(value, datetime.datetime):
        if value.tzinfo is None or value.utcoffset() is None:
            raise InvalidArgument(
                f"{what} is a naive datetime ({value.isoformat()}): give it a time zone,"
                " e.g. datetime.now(timezone.utc)"
            )
        return value.timestamp()
    if isinstance(value, str):
        return _parse_time(value, what, now)
    raise InvalidArgumentType(
        f"{what} must be epoch seconds, an aware datetime or a text, got {value!r}"
    )


def _parse_time(text: str, what: str, now: float) -> float:
    stripped = text.strip()
    try:
        return now - parse_duration(stripped)
    except ValueError:
        pass
    if _EPOCH.fullmatch(stripped):  # a number without a unit: not a duration
        return float(stripped)
    try:
        parsed = datetime.datetime.fromisoformat(stripped)
    except ValueError:
        raise InvalidArgument(
            f"{what} {text!r} is not a time: give ISO 8601 (2026-11-30T08:00:00Z; UTC"
            " without an offset), a duration ago (30m, 2h, 1d) or epoch seconds"
        ) from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=datetime.UTC)
    return parsed.timestamp()


#: Epoch seconds as text: digits, and a fraction.
_EPOCH: Final = re.compile(r"[0-9]+(\.[0-9]+)?")


def iso_utc(ts: float | None) -> str | None:
    """Epoch seconds as ISO 8601 in UTC (``2026-11-30T08:00:00.123456Z``), or
    None; the raw number as text if it is no date (a hand-written store)."""
    if ts is None:
        return None
    try:
        stamp = datetime.datetime.fromtimestamp(ts, datetime.UTC)
    except (ValueError, OverflowError, OSError):
        return repr(ts)
    return stamp.isoformat().replace("+00:00", "Z")


def encode_cursor(run: RunRecord, query: RunQuery) -> str:
    """The cursor of a page of ``query`` that ends with ``run``: opaque,
    URL-safe text carrying the position, the digest of the filters and the
    instants the time filters resolved to (for the next pages' window)."""
    times = [query.since, query.until, query.ended_since, query.ended_until]
    raw = json.dumps(
        [_CURSOR_TAG, run.created_at, run.run_id, query.filters, times], separators=(",", ":")
    )
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode_cursor(
    cursor: object, filters: str
) -> tuple[float, str, tuple[float | None, float | None, float | None, float | None]]:
    """The position a cursor of :func:`encode_cursor` names, and the
    instants of its listing's ``since``, ``until``, ``ended_since`` and
    ``ended_until``, checked to belong to the listing whose filters' digest
    is ``filters``.

    Raises:
        InvalidArgument: not a cursor a listing gave out (garbled, cut, or
            of another version), or a cursor of a listing with other filters.
        InvalidArgumentType: not a str.
    """
    if not isinstance(cursor, str):
        raise InvalidArgumentType(f"cursor must be a str (or None), got {cursor!r}")
    bad = InvalidArgument(
        f"cursor {cursor[:80]!r} is not one a listing gave out: pass the next_cursor"
        " of the previous page unchanged, or no cursor for the first page"
    )
    if len(cursor) > MAX_CURSOR_CHARS:
        raise InvalidArgument(
            f"cursor {cursor[:80]!r}... is {len(cursor)} characters: no listing gives out"
            f" one longer than {MAX_CURSOR_CHARS}; pass the next_cursor of the previous"
            " page unchanged, or no cursor for the first page"
        )
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        tag, created_at, run_id, bound, times = json.loads(raw)
    except (ValueError, TypeError, binascii.Error, RecursionError):
        raise bad from None
    if (
        tag != _CURSOR_TAG
        or isinstance(created_at, bool)
        or not isinstance(created_at, int | float)
        or not math.isfinite(created_at)
        or not isinstance(run_id, str)
        or not isinstance(bound, str)
        or not isinstance(times, list)
        or len(times) != 4
        or not all(_is_instant(t) for t in times)
    ):
        raise bad
    if bound != filters:
        raise InvalidArgument(
            "this cursor belongs to another listing: give the filters (status, workflow,"
            " parent, times) of the listing that gave it out, or no cursor for a new listing"
        )
    since, until, ended_since, ended_until = (None if t is None else float(t) for t in times)
    return float(created_at), run_id, (since, until, ended_since, ended_until)


def _is_instant(value: object) -> bool:
    """Whether a cursor's time is None or a finite number of epoch seconds."""
    if value is None:
        return True
    return not isinstance(value, bool) and isinstance(value, int | float) and math.isfinite(value)
