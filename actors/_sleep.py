"""Durable sleep (B1): ``await sleep(seconds)`` / ``await sleep_until(when)``.

What the body awaits (a :class:`Sleep` command) and the checks of its
arguments, made at the call, before anything is recorded. The await itself
is handled by ``_sleeping`` on a durable timer (``_body_timers``).

Invariants: a ``Sleep`` is built only inside a workflow body, with a finite
non-negative number of seconds or an aware datetime; it is immutable.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Generator
from dataclasses import dataclass
from typing import Any

from actors._arguments import seconds as checked_seconds
from actors._body_only import body_only
from persistence import (
    InvalidArgument,
    InvalidArgumentType,
    due_instant,
    safe_repr,
)


@dataclass(frozen=True, slots=True)
class TimerCall:
    """A call of the body that is a durable timer, as replay checks it:
    its ``kind`` (``"sleep"``; other primitives name their own)."""

    kind: str


@dataclass(frozen=True, slots=True, kw_only=True)
class Sleep:
    """``await sleep(...)``: the command the body yields to its supervisor."""

    #: The seconds asked for (``sleep``), or None (``sleep_until``).
    seconds: float | None = None
    #: The due instant asked for (``sleep_until``): UTC epoch seconds.
    until: float | None = None

    def __await__(self) -> Generator[Any, Any, None]:
        yield self


def sleep(seconds: float) -> Sleep:
    """In a workflow body: ``await sleep(seconds)`` waits on a durable timer.

    The timer is recorded (``timer_started`` with its due instant in UTC
    wall-clock time); a runtime that resumes the run after a crash fires it
    at that instant, or at once if it has passed, and a sleep that fired
    replays without waiting. The await is a checkpoint (C2, C3): a cancel
    raises ``CancellationError`` there at once, dropping the timer
    (``timer_cancelled``); inside ``shield()`` the sleep is not interrupted
    and the cancel is met at the first checkpoint after the shield (S1, S2);
    a terminate ends it (T2). Like Temporal's ``workflow.sleep`` (a durable
    timer), DBOS's ``DBOS.sleep``, and, as a checkpoint, Trio's
    ``trio.sleep``.

    Args:
        seconds: how long, a finite number >= 0 (0 is a checkpoint that
            records a timer due at once).

    Raises:
        InvalidArgumentType: ``seconds`` is not a number.
        InvalidArgument: NaN, infinite, negative, or above 1000 years (the
            one bound of every duration, so that its due instant is a date).
        ProctorError: called outside a workflow body (in a step, say).
    """
    body_only("sleep()")
    return Sleep(seconds=checked_seconds("sleep(seconds)", seconds))


def sleep_until(when: dt.datetime) -> Sleep:
    """In a workflow body: ``await sleep_until(when)`` sleeps until an instant.

    The same durable timer as :func:`sleep`; an instant already passed
    fires at once (still a checkpoint).

    Args:
        when: a timezone-aware ``datetime`` (any zone; recorded in UTC).

    Raises:
        InvalidArgumentType: ``when`` is not a ``datetime``.
        InvalidArgument: ``when`` is naive (no ``tzinfo``): which clock it
            means would be a guess; or it is at or after 9000-01-01 UTC (the
            one bound of every due instant, so that it stays a date).
        ProctorError: called outside a workflow body.
    """
    body_only("sleep_until()")
    if not isinstance(when, dt.datetime):
        raise InvalidArgumentType(
            f"sleep_until(when) needs a timezone-aware datetime, got {safe_repr(when)}"
        )
    if when.tzinfo is None or when.utcoffset() is None:
        raise InvalidArgument(
            f"sleep_until(when) needs a timezone-aware datetime, got the naive {when!r};"
            " give it a tzinfo, e.g. datetime.now(timezone.utc) + timedelta(hours=1)"
        )
    try:
        until = when.timestamp()
    except (OverflowError, ValueError):  # its UTC is past year 9999
        until = math.inf
    return Sleep(until=due_instant("sleep_until(when)", until))
