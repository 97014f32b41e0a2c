"""Pending timers: a run's durable body timers not yet ended, read from its log.

A pure fold over a run's records (B1): a ``timer_started`` with no later
``timer_fired`` or ``timer_cancelled`` for the same call is pending. What
``proctor runs status`` shows, and what a timed-out wait says the run waits
for; nothing here asks a runtime, so it reads the same from any process.

Invariants: pure (records in, plain JSON-ready values out); at most one
pending timer per call.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from persistence._records import EventRecord
from persistence._states import EventType

_E = EventType


def pending_timers(events: Iterable[EventRecord]) -> list[dict[str, Any]]:
    """The timers started and not ended, in call order.

    Each is ``{"call", "kind", "due_at", "due", "seconds"}``: ``due_at`` in
    UTC epoch seconds, ``due`` the same as ISO 8601 text, ``seconds`` what
    ``sleep()`` asked for (None for ``sleep_until``).
    """
    pending: dict[int, dict[str, Any]] = {}
    for e in events:
        if e.call is None:
            continue
        if e.type is _E.TIMER_STARTED:
            pending[e.call] = {
                "call": e.call,
                "kind": e.step,
                "due_at": e.data.get("due_at"),
                "due": e.data.get("due"),
                "seconds": e.data.get("seconds"),
            }
        elif e.type in (_E.TIMER_FIRED, _E.TIMER_CANCELLED):
            pending.pop(e.call, None)
    return [pending[c] for c in sorted(pending)]
