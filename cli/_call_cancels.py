"""Calls the body cancelled one by one (B2), as ``runs status`` shows them.

Each ``call_cancel_requested`` record of a run's log, with the name of the
call it names (from that call's ``step_scheduled`` or ``child_started``),
and why a run ended CANCELLED that nobody asked to cancel: its code let a
``CancellationError`` escape its body (C5), most often one a handle's own
cancel raised at ``await handle``. Pure: reads records, writes nothing.
"""

from __future__ import annotations

from typing import Any

from persistence import EventRecord, EventType, RunRecord, RunState

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


def cancelled_by_code(run: RunRecord, events: list[EventRecord]) -> str | None:
    """Why a CANCELLED run with no cancel request ended so; None for any other run.

    C5 (the outcome follows the code): a ``CancellationError`` that escapes
    the body ends the run CANCELLED though no ``cancel_requested`` was
    written, e.g. ``h.cancel(); return await h``. Temporal would fail the
    workflow (ActivityError); Trio's scope would catch its own Cancelled.
    The line names the handle cancels the log records that took effect
    (the last one is the likely source), or says the body raised it itself.
    """
    if run.status is not RunState.CANCELLED or run.cancel_requested_at is not None:
        return None
    ended = [e for e in events if e.type is EventType.RUN_CANCELLED]
    reason = ended[-1].data.get("reason") if ended else None
    said = f' ("{reason}")' if reason else ""
    took = [c for c in call_cancels(events) if not c["ended"]]
    if not took:
        return f"by its code: its body raised CancellationError{said}, no cancel was requested"
    last = took[-1]
    source = f"{last['kind']} handle {last['name'] or '?'} #{last['call']}"
    more = f" (the last of {len(took)} handle cancels)" if len(took) > 1 else ""
    return (
        f"by its code: CancellationError from {source}{more} escaped its body{said};"
        " no cancel of the run was requested (C5)"
    )
