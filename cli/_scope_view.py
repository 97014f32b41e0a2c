"""Cancel scopes of a run's body (B3), as ``runs status`` and ``runs tree`` show them.

From the log alone: each ``scope_entered`` (its id, shield, deadline),
``scope_cancelled`` (cause, reason, the checkpoint a deadline took effect
at) and ``scope_exited`` (whether it caught its cancel); and which scope
each call of the body (step, child run, sleep) was started in, read from
the order of the records: a call's start comes after the ``scope_entered``
of every scope it is in, before that scope's ``scope_exited``. A plain
``shield()`` is not recorded as a scope (its records are the shield's own).
Pure: reads records, writes nothing.
"""

from __future__ import annotations

from typing import Any

from cli import _render as render
from persistence import EventRecord, EventType

_E = EventType
_STARTS = (_E.STEP_SCHEDULED, _E.CHILD_STARTED, _E.TIMER_STARTED, _E.SIGNAL_WAITING)


def scopes(events: list[EventRecord]) -> list[dict[str, Any]]:
    """One dict per scope the body entered: id, shield, deadline, cancel, state."""
    found: dict[int, dict[str, Any]] = {}
    for e in events:
        scope = e.data.get("scope")
        if e.type is _E.SCOPE_ENTERED and isinstance(scope, int):
            found[scope] = {
                "scope": scope,
                "shield": bool(e.data.get("shield")),
                "deadline": e.data.get("deadline"),
                "cancelled": None,
                "state": "open",
            }
        elif e.type is _E.SCOPE_CANCELLED and scope in found:
            found[scope]["cancelled"] = {
                "cause": e.data.get("cause"),
                "reason": e.data.get("reason"),
                "checkpoint": e.data.get("checkpoint"),
            }
        elif e.type is _E.SCOPE_EXITED and scope in found:
            caught = bool(e.data.get("cancelled_caught"))
            found[scope]["state"] = "exited, its cancel caught" if caught else "exited"
    return list(found.values())


def scope_line(s: dict[str, Any]) -> str:
    """``scope 0 (deadline 2026-...): cancelled by its deadline; exited, its cancel caught``."""
    what = ["shield"] if s["shield"] else []
    if s["deadline"] is not None:
        what.append(f"deadline {render.when(s['deadline'])}")
    head = f"scope {s['scope']}" + (f" ({', '.join(what)})" if what else "")
    cancel = s["cancelled"]
    if cancel is None:
        return f"{head}: {s['state']}"
    if cancel["cause"] == "deadline":
        how = f"cancelled by its deadline (at checkpoint {cancel['checkpoint']})"
    else:
        reason = f'"{cancel["reason"]}"' if cancel["reason"] else "(no reason given)"
        how = f"cancelled by scope.cancel(), {reason}"
    return f"{head}: {how}; {s['state']}"


def scope_of_calls(events: list[EventRecord]) -> dict[int, int]:
    """Call id -> the innermost recorded scope it was started in."""
    stack: list[int] = []
    out: dict[int, int] = {}
    for e in events:
        scope = e.data.get("scope")
        if e.type is _E.SCOPE_ENTERED and isinstance(scope, int):
            stack.append(scope)
        elif e.type is _E.SCOPE_EXITED and scope in stack:
            stack.remove(scope)
        elif e.type in _STARTS and e.call is not None and stack and e.call not in out:
            if e.type is _E.TIMER_STARTED and e.step == "scope":
                continue  # a scope's own deadline
            out[e.call] = stack[-1]
    return out
