"""Calls the body cancelled one by one (B2), as ``runs status`` shows them.

Each ``call_cancel_requested`` record of a run's log, with the name of the
call it names (from that call's ``step_scheduled`` or ``child_started``).
Pure: reads records, writes nothing.
"""

from __future__ import annotations

from typing import Any

from persistence import EventRecord, EventType

_NAMED = (EventType.STEP_SCHEDULED, EventType.CHILD_STARTED)


def call_cancels(events: list[EventRecord]) -> list[dict[str, Any]]:
    """One dict per handle cancel of the log: call, kind, name, mode, reason, ended."""
    names: dict[object, str | None] = {e.call: e.step for e in events if e.type in _NAMED}
    return [
        {
            "call": e.data.get("call_id"),
            "kind": e.data.get("kind"),
            "name": names.get(e.data.get("call_id")),
            "mode": e.data.get("mode"),
            "reason": e.data.get("reason"),
            "ended": bool(e.data.get("ended")),
            "at": e.ts,
        }
        for e in events
        if e.type is EventType.CALL_CANCEL_REQUESTED
    ]


def call_cancel_line(c: dict[str, Any]) -> str:
    """``step charge #0: try_cancel, "too slow"`` (and whether it had ended)."""
    reason = f'"{c["reason"]}"' if c["reason"] else "(no reason given)"
    line = f"{c['kind']} {c['name'] or '?'} #{c['call']}: {c['mode']}, {reason}"
    return line + ("; it had ended already (no effect)" if c["ended"] else "")
