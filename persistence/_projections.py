"""Projections: what an appended event changes in ``runs`` and ``steps``.

The log is the truth; ``runs`` and ``steps`` are its projections, updated
in the transaction that appends the event (see ``_append``). This module
says, per event type, which columns change and how.

Invariants:

- A step attempt's row moves only as ``STEP_TRANSITIONS`` allow: a start
  inserts it (or turns its WAITING row RUNNING), an end is one guarded
  UPDATE out of RUNNING (or WAITING), and a read happens only to say why
  a move matched nothing (``InvalidTransition`` or ``CorruptRecord``).
- The first cancel request is the one acted on; repeats are only logged (C6).
- A payload is stored once, in its projection (``payloads``), and the
  event's data refers to it.
"""

from __future__ import annotations

from typing import Any, Final

from persistence._errors import CorruptRecord, InvalidTransition
from persistence._json import dumps
from persistence._records import NewEvent
from persistence._sql import Conn
from persistence._states import (
    STEP_END_EVENTS,
    STEP_TRANSITIONS,
    EventType,
    StepState,
    next_step_state,
)

_E = EventType

RUNNING: Final = StepState.RUNNING.value
WAITING: Final = StepState.WAITING.value


def _ending_waiting(type_: EventType) -> str:
    """The status a step end may also move out of: WAITING, if the table allows."""
    return WAITING if (StepState.WAITING, type_) in STEP_TRANSITIONS else RUNNING


_STEP_STATES: Final = frozenset(s.value for s in StepState)


def project_step(conn: Conn, ev: NewEvent, now: float, payloads: dict[str, str]) -> None:
    if ev.type in (_E.STEP_STARTED, _E.STEP_WAITING):
        # A waiting attempt's row (started_at: when it began to wait)
        # becomes RUNNING in place when it starts; any other row there
        # is a second start, refused below.
        status = StepState.RUNNING if ev.type is _E.STEP_STARTED else StepState.WAITING
        cur = conn.execute(
            "INSERT INTO steps (run_id, call, attempt, name, status, shielded, started_at)"
            " VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (run_id, call, attempt) DO UPDATE"
            " SET status = excluded.status, started_at = excluded.started_at"
            " WHERE steps.status = ? AND excluded.status = ?",
            (
                ev.run_id,
                ev.call,
                ev.attempt,
                ev.step,
                status.value,
                int(bool(ev.data.get("shielded"))),
                now,
                WAITING,
                RUNNING,
            ),
        )
        if cur.rowcount == 0:
            raise InvalidTransition(f"step attempt {ev.call}.{ev.attempt} exists already")
    elif ev.type in STEP_END_EVENTS:
        # Every step end is a move out of RUNNING (or, cancelled or
        # abandoned, out of WAITING): one guarded UPDATE, and only if it
        # matches nothing, a read to say why.
        key = (ev.run_id, ev.call, ev.attempt)
        new = next_step_state(StepState.RUNNING, ev.type)
        result, error = (
            payloads.get(k) or (dumps(ev.data[k]) if k in ev.data else None)
            for k in ("result", "error")
        )
        # The end carries the attempt's latest heartbeat details (H1): the
        # row ends with them even when the heartbeat throttle skipped them.
        beat = ev.data.get("last_heartbeat_details")
        details = None if beat is None else dumps(beat)
        cur = conn.execute(
            "UPDATE steps SET status = ?, finished_at = ?, result = ?, error = ?,"
            " heartbeat_details = coalesce(?, heartbeat_details)"
            " WHERE run_id = ? AND call = ? AND attempt = ? AND status IN (?, ?)",
            (
                new.value,
                now,
                result,
                error,
                details,
                *key,
                RUNNING,
                _ending_waiting(ev.type),
            ),
        )
        if cur.rowcount == 0:
            row = conn.execute(
                "SELECT status FROM steps WHERE run_id = ? AND call = ? AND attempt = ?", key
            ).fetchone()
            if row is None:
                raise InvalidTransition(f"no step attempt {ev.call}.{ev.attempt} to end")
            if row[0] not in _STEP_STATES:
                raise CorruptRecord(f"step {ev.call}.{ev.attempt} has unknown status {row[0]!r}")
            next_step_state(StepState(row[0]), ev.type)  # raises: not RUNNING


def run_projection(
    ev: NewEvent, now: float, payloads: dict[str, str]
) -> tuple[str, tuple[Any, ...]]:
    """Extra ``runs`` columns an event sets, as (SQL fragment, parameters)."""
    t, d = ev.type, ev.data
    if t in (_E.RUN_CLAIMED, _E.RUN_RESUMED):
        return ", owner = ?", (d["owner"],)
    if t is _E.RUN_STARTED:
        return ", started_at = coalesce(started_at, ?)", (now,)
    if t is _E.CANCEL_REQUESTED:
        # The first request is the one acted on; repeats are only logged (C6).
        return (
            ", cancel_reason = CASE WHEN cancel_requested_at IS NULL THEN ? ELSE cancel_reason END"
            ", cancel_source = CASE WHEN cancel_requested_at IS NULL THEN ? ELSE cancel_source END"
            ", cancel_grace = CASE WHEN cancel_requested_at IS NULL THEN ? ELSE cancel_grace END"
            ", cancel_requested_at = coalesce(cancel_requested_at, ?)",
            (d.get("reason"), d.get("source"), d.get("grace"), now),
        )
    if t is _E.TERMINATE_REQUESTED:
        return (
            ", terminate_reason = ?, terminate_requested_at = ?",
            (d.get("reason"), now),
        )
    if t is _E.RUN_COMPLETED:
        return ", result = ?, finished_at = ?", (payloads.get("result", "null"), now)
    if t is _E.RUN_FAILED:
        return ", error = ?, finished_at = ?", (payloads.get("error", "null"), now)
    if t in (_E.RUN_CANCELLED, _E.RUN_TERMINATED):
        return ", finished_at = ?", (now,)
    return "", ()
