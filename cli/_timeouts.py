"""A run's timeout (B4) as ``runs status`` shows it: the deadline, and the time left.

Pure: it formats what the run's ``run_created`` recorded (``RunDeadline``)
against a wall-clock reading the caller passes. Invariant: a run without a
timeout gets no row; a finished run's row never counts down.
"""

from __future__ import annotations

from typing import Any

from cli import _render as render
from persistence import EventRecord, EventType, RunDeadline, RunState, deadline_of


def run_deadline_of(events: list[EventRecord]) -> RunDeadline | None:
    """The deadline the run's ``run_created`` (its first event) records, if any."""
    if events and events[0].type is EventType.RUN_CREATED:
        return deadline_of(events[0].data)
    return None


def timeout_json(deadline: RunDeadline | None, now: float) -> dict[str, Any] | None:
    """``runs status --json``'s ``timeout``: seconds, deadline (epoch and ISO), left."""
    if deadline is None:
        return None
    return {
        "timeout": deadline.timeout,
        "deadline": deadline.deadline,
        "deadline_utc": render.when(deadline.deadline),
        "cancel_grace": deadline.cancel_grace,
        "left": deadline.left(now),
    }


def timeout_line(deadline: RunDeadline, status: RunState, now: float) -> str:
    """``600 s, deadline 2026-11-30T04:00:00Z (9m59s left); then a grace of 5 s``."""
    line = f"{deadline.timeout:g} s, deadline {render.when(deadline.deadline)}"
    left = deadline.left(now)
    if not status.is_terminal:
        line += f" ({render.seconds_text(left)} left)" if left > 0 else " (passed)"
    if deadline.cancel_grace is not None:
        line += f"; terminated {deadline.cancel_grace:g} s after its cancel if still running"
    return line
