"""A run's calls that are neither steps nor child runs, as ``runs tree`` shows them.

A body numbers every call it makes, steps and child runs and also its
durable timers (``await sleep(...)``, B1) and its signal waits
(``await wait_for_signal(...)``, B5). The tree lists each of those too, so
its call numbers never skip without saying why, and it says what a step
handle's cancel (B2) did to its step.

Pure: everything is read from the run's log, nothing written. Invariants: a
call is one timer or one signal wait (a wait's own timer, if any, is shown
with the wait); a timer is ``pending`` until its ``timer_fired`` or
``timer_cancelled``; a wait is ``waiting`` until its ``signal_received``,
and ``not received`` once the run ended without it.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from rich.text import Text

from cli import _render as render
from cli._text import clean
from persistence import EventRecord, EventType

_E = EventType
_TIMER_ENDS = {_E.TIMER_FIRED: "fired", _E.TIMER_CANCELLED: "cancelled"}


@dataclass(slots=True)
class BodyCall:
    """One timer or signal wait of the body: call ``call``, in log order."""

    call: int
    #: ``timer`` or ``signal_wait``.
    kind: str
    #: The timer's kind (``sleep``, ``sleep_until``) or the signal's name.
    name: str
    #: timer: pending, fired, cancelled; signal_wait: waiting, received, not received.
    status: str
    #: When a timer fires (UTC epoch seconds); None for a wait without one.
    due_at: float | None = None


def body_calls(events: list[EventRecord], *, run_ended: bool) -> list[BodyCall]:
    """The run's timers and signal waits, by call number."""
    calls: dict[int, BodyCall] = {}
    for e in events:
        if e.call is None or e.attempt is not None:
            continue
        known = calls.get(e.call)
        if e.type in (_E.SIGNAL_WAITING, _E.SIGNAL_RECEIVED):
            status = "received" if e.type is _E.SIGNAL_RECEIVED else "waiting"
            due = known.due_at if known is not None else None
            calls[e.call] = BodyCall(e.call, "signal_wait", str(e.step), status, due)
        elif e.type is _E.TIMER_STARTED:
            due_at = e.data.get("due_at")
            due = float(due_at) if isinstance(due_at, int | float) else None
            if known is None:
                calls[e.call] = BodyCall(e.call, "timer", str(e.step), "pending", due)
            else:
                known.due_at = due
        elif e.type in _TIMER_ENDS and known is not None and known.kind == "timer":
            known.status = _TIMER_ENDS[e.type]
    for c in calls.values():
        if run_ended and c.status in ("pending", "waiting"):
            c.status = "not received" if c.kind == "signal_wait" else "cancelled"
    return [calls[n] for n in sorted(calls)]


def body_call_label(c: BodyCall, now: float | None = None) -> Text:
    """``sleep #1 until 2026-11-30T05:00:00Z (in 59m)``, ``wait for signal 'approved' #2``."""
    now = time.time() if now is None else now
    if c.kind == "timer":
        text = Text(f"{clean(c.name)} #{c.call} until {render.when(c.due_at)} ")
    else:
        text = Text(f"wait for signal {clean(repr(c.name))} #{c.call} ")
    style = "cyan" if c.status in ("pending", "waiting") else render.step_style(c.status)
    text.append(c.status, style=style)
    if c.status in ("pending", "waiting") and c.due_at is not None:
        text.append(f" ({render.due_text(c.due_at, now)})")
    return text


def body_call_json(c: BodyCall) -> dict[str, Any]:
    """``runs tree --json``'s node of a timer or a signal wait."""
    return {
        "kind": c.kind,
        "call": c.call,
        "name": c.name,
        "status": c.status,
        "due_at": c.due_at,
        "due": None if c.due_at is None else render.when(c.due_at),
    }


def handle_cancels(events: list[EventRecord]) -> dict[int, dict[str, Any]]:
    """Per call, the last cancel through its handle (B2): mode, reason, ended."""
    return {
        int(e.data["call_id"]): {
            "mode": e.data.get("mode"),
            "reason": e.data.get("reason"),
            "ended": bool(e.data.get("ended")),
        }
        for e in events
        if e.type is _E.CALL_CANCEL_REQUESTED and isinstance(e.data.get("call_id"), int)
    }


def handle_cancel_note(cancel: dict[str, Any] | None) -> str:
    """What a step's handle cancel says after its status; empty without one."""
    if cancel is None or cancel["ended"]:
        return ""
    if cancel["mode"] == "abandon":
        return " (abandoned by its handle)"
    reason = f", {cancel['reason']!r}" if cancel["reason"] else ""
    return f" (cancelled by its handle: {cancel['mode']}{reason})"


def timer_line(timer: dict[str, Any]) -> str:
    """``runs status``'s row of a pending durable timer (B1): what, due when
    (UTC), and in how long; a stored due instant that is no number is shown
    raw (never a crash)."""
    due_at = timer["due_at"]
    if not isinstance(due_at, int | float) or isinstance(due_at, bool):
        return f"{timer['kind']} #{timer['call']} until {due_at!r}"
    due = render.due_text(due_at, time.time())
    return f"{timer['kind']} #{timer['call']} until {render.when(due_at)} ({due})"
