"""A run's timeout (B4): what its ``run_created`` records, and how it reads back.

A run started with a timeout records three fields in its ``run_created``
data: ``timeout`` (the seconds asked for, compared by a repeated start,
A2), ``deadline`` (the instant it runs out: UTC seconds since the epoch)
and ``cancel_grace`` (seconds from the timeout's cancel to a terminate,
C8; None: cancel only).

The deadline is taken from the creator's wall clock when it builds the
record: it is part of the start request, fixed before the write, so the
creator, a repeated start and every later owner read one number. (On
SQLite the creator, the store and every runtime share one host clock; a
runtime that fires the deadline converts what is left of it into its own
monotonic clock once, when it hosts the run, so a later jump of the wall
clock does not move it. P3 concerns liveness, judged by the store's
clock; this is a user's deadline, as Temporal's WorkflowExecutionTimeout
counts from the start request.)

Invariants: a run has a deadline only if its ``run_created`` says so;
``deadline - timeout`` is the creation instant; nothing here writes; the
reason a timeout's cancel records says how long the run was given.
"""

from __future__ import annotations

import datetime
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from persistence._interface import Store
from persistence._states import EventType

#: The cancel source of a run's timeout (C1's sources, plus this one).
TIMEOUT_SOURCE = "timeout"


@dataclass(frozen=True, slots=True, kw_only=True)
class RunDeadline:
    """A run's timeout as its ``run_created`` recorded it.

    Attributes:
        timeout: seconds the run was given (> 0).
        deadline: when they run out, UTC seconds since the epoch.
        cancel_grace: seconds from the timeout's cancel to a terminate; None: never.
    """

    timeout: float
    deadline: float
    cancel_grace: float | None = None

    @property
    def reason(self) -> str:
        """The reason the timeout's cancel records."""
        return timeout_reason(self.timeout)

    def left(self, now: float) -> float:
        """Seconds until the deadline at wall-clock ``now`` (negative: passed)."""
        return self.deadline - now

    def deadline_text(self) -> str:
        """The deadline as an ISO 8601 UTC instant; its raw number if it is
        no date (a store written by another version or by hand)."""
        try:
            at = datetime.datetime.fromtimestamp(self.deadline, tz=datetime.UTC)
        except (ValueError, OverflowError, OSError):
            return repr(self.deadline)
        return at.isoformat(timespec="milliseconds")


def timeout_reason(timeout: float) -> str:
    """``run timed out after 5 s``: the reason of a timeout's cancel."""
    return f"run timed out after {timeout:g} s"


def deadline_data(
    timeout: float | None, cancel_grace: float | None, *, now: float
) -> dict[str, Any]:
    """The fields a ``run_created`` gets for a timeout (none without one).

    ``timeout`` and ``cancel_grace`` must be checked already; ``now``: the
    creator's wall clock (``time.time()``).
    """
    if timeout is None:
        return {}
    return {"timeout": timeout, "deadline": now + timeout, "cancel_grace": cancel_grace}


def deadline_of(data: Mapping[str, Any]) -> RunDeadline | None:
    """The deadline a ``run_created``'s data records, or None (none, or unreadable)."""
    timeout, deadline = _seconds(data.get("timeout")), _seconds(data.get("deadline"))
    if timeout is None or deadline is None:
        return None
    return RunDeadline(
        timeout=timeout, deadline=deadline, cancel_grace=_seconds(data.get("cancel_grace"))
    )


def timeout_difference(timeout: object, existing: RunDeadline | None) -> str | None:
    """What differs between a start's ``timeout`` and the existing run's (A2),
    as words; None if they are the same (both none, or equal seconds)."""
    had = existing.timeout if existing is not None else None
    now = _seconds(timeout)
    if had == now:
        return None
    it = f"{had:g} s" if had is not None else "none"
    this = f"{now:g} s" if now is not None else "none"
    return f"another timeout (it has {it}; this start has {this})"


def run_deadline(store: Store, run_id: str) -> RunDeadline | None:
    """The deadline of run ``run_id`` (from its ``run_created``), or None."""
    for ev in store.events(run_id):
        if ev.type is EventType.RUN_CREATED:
            return deadline_of(ev.data)
        break
    return None


def _seconds(value: object) -> float | None:
    """``value`` as a float if it is a number (``bool`` is not), else None."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)
