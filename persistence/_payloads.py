"""Each payload is stored once: an event refers to the projection that holds it.

A run's arguments, a step's result, a run's result and errors were each
written twice (three times for a child's result): in the event's ``data``
and in the ``runs``/``steps`` projection updated by the same transaction.
Now the projection keeps the value; the event keeps the rest of its data,
and ``moved = 1`` says that its type's payload keys (``RUN_KEYS``,
``STEP_KEYS``, ``CHILD_KEYS``) are held there. Readers
(:meth:`Store.events`) put them back, so an event reads exactly as it was
appended.

Invariants:

- An event's payload keys are moved all or none, and only when the holder
  has exactly the same JSON text, written in the same transaction (or, for
  a child's end, already committed), and nothing for the keys it lacked;
  otherwise the values stay in the event.
- What holds a moved value is never changed afterwards (a run's arguments
  at creation, a step attempt's end, a run's end are written once) and is
  deleted only with the event itself (retention prunes a whole run).
- Readers fill moved keys inside the same read transaction as the events.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any, Final

from persistence._json import dumps, loads
from persistence._records import EventRecord, NewEvent
from persistence._sql import Conn
from persistence._states import EventType

_E = EventType

#: The keys of an event's data that a projection may hold instead.
RUN_KEYS: Final[Mapping[EventType, tuple[str, ...]]] = {
    _E.RUN_CREATED: ("args", "kwargs"),
    _E.RUN_COMPLETED: ("result",),
    _E.RUN_FAILED: ("error",),
}
STEP_KEYS: Final[Mapping[EventType, tuple[str, ...]]] = {
    _E.STEP_COMPLETED: ("result",),
    _E.STEP_FAILED: ("error",),
    _E.STEP_TIMED_OUT: ("error",),
}
#: child_ended: the child's own ``runs`` row holds its result or error.
CHILD_KEYS: Final = ("result", "error")


def _keys(type_: EventType) -> tuple[str, ...]:
    if type_ is _E.CHILD_ENDED:
        return CHILD_KEYS
    return RUN_KEYS.get(type_) or STEP_KEYS.get(type_) or ()


def texts(ev: NewEvent) -> dict[str, str]:
    """The JSON text of each payload key of ``ev`` that its own projection stores
    (not a child's end: the child's row was written by another event)."""
    keys = RUN_KEYS.get(ev.type) or STEP_KEYS.get(ev.type) or ()
    return {key: dumps(ev.data[key], what=f"{ev.type} {key}") for key in keys if key in ev.data}


def moves(ev: NewEvent, payloads: Mapping[str, str], conn: Conn) -> bool:
    """Whether the store holds elsewhere every payload key of ``ev.data``.

    All or nothing, so that a reader puts back exactly the keys that were
    there: its type's keys that the holder has.
    """
    if ev.type is _E.CHILD_ENDED:
        child = ev.data.get("child_run_id")
        keys = [k for k in CHILD_KEYS if k in ev.data]
        if not isinstance(child, str) or not keys:
            return False
        row = conn.execute("SELECT result, error FROM runs WHERE run_id = ?", (child,)).fetchone()
        if row is None:
            return False
        held = dict(zip(CHILD_KEYS, row, strict=True))
        # The child's row holds only the key of how it ended (result or error).
        return all((held[k] is not None) == (k in keys) for k in CHILD_KEYS) and all(
            held[k] == dumps(ev.data[k]) for k in keys
        )
    own = RUN_KEYS.get(ev.type) or STEP_KEYS.get(ev.type)
    if not own or any(k not in payloads for k in own):
        return False
    # runs.kwargs holds {} for keyword arguments that were missing or null.
    return ev.type is not _E.RUN_CREATED or isinstance(ev.data.get("kwargs"), dict)


def event_data(ev: NewEvent, moved: bool) -> tuple[str | None, int | None]:
    """(the event's ``data`` column, without the payload keys if ``moved``; its ``moved``)."""
    keys = _keys(ev.type) if moved else ()
    data = {k: v for k, v in ev.data.items() if k not in keys} if moved else ev.data
    text = dumps(data, what=f"{ev.type} data") if data else None
    return text, (1 if moved else None)


def inflate(conn: Conn, rows: list[dict[str, Any]]) -> list[EventRecord]:
    """Events from their rows, each moved key filled from where it is held.

    Call inside the read transaction that read ``rows``.
    """
    records = [EventRecord.from_row(r) for r in rows]
    moved = [(row, rec) for row, rec in zip(rows, records, strict=True) if row.get("moved")]
    if not moved:
        return records
    runs: dict[str, dict[str, Any]] = {}
    steps: dict[tuple[str, int | None, int | None], dict[str, Any]] = {}
    for _, rec in moved:
        if rec.type in STEP_KEYS:
            if (rec.run_id, rec.call, rec.attempt) not in steps:
                steps.update(_steps(conn, rec.run_id))
            continue
        holder = rec.data.get("child_run_id") if rec.type is _E.CHILD_ENDED else rec.run_id
        if isinstance(holder, str) and holder not in runs:
            found = conn.execute(
                "SELECT args, kwargs, result, error FROM runs WHERE run_id = ?", (holder,)
            ).fetchone()
            runs[holder] = dict(zip(_RUN_COLUMNS, found or (None,) * 4, strict=True))
    fill: dict[int, EventRecord] = {}
    for _, rec in moved:
        if rec.type in STEP_KEYS:
            held = steps.get((rec.run_id, rec.call, rec.attempt), {})
        elif rec.type is _E.CHILD_ENDED:
            held = runs.get(rec.data.get("child_run_id", ""), {})
        else:
            held = runs.get(rec.run_id, {})
        data = dict(rec.data)
        for key in _keys(rec.type):
            if held.get(key) is not None:
                data[key] = loads(held[key])
        fill[rec.seq] = dataclasses.replace(rec, data=data)
    return [fill.get(rec.seq, rec) for rec in records]


_RUN_COLUMNS: Final = ("args", "kwargs", "result", "error")


def _steps(conn: Conn, run_id: str) -> dict[tuple[str, int | None, int | None], dict[str, Any]]:
    return {
        (run_id, call, attempt): {"result": result, "error": error}
        for call, attempt, result, error in conn.execute(
            "SELECT call, attempt, result, error FROM steps WHERE run_id = ?", (run_id,)
        )
    }


def move_existing(conn: Conn) -> None:
    """Migration: strip from every stored event the payloads its projection
    also holds (the same JSON text), and mark it ``moved``."""
    types = [t.value for t in (*RUN_KEYS, *STEP_KEYS, _E.CHILD_ENDED)]
    marks = ", ".join("?" * len(types))
    rows = conn.execute(
        f"SELECT seq, run_id, type, call, attempt, data FROM events"
        f" WHERE type IN ({marks}) AND data IS NOT NULL",
        types,
    ).fetchall()
    for seq, run_id, type_, call, attempt, text in rows:
        data = loads(text)
        if not isinstance(data, dict):
            continue  # not ours to judge here; readers show what is there
        ev = NewEvent(run_id=run_id, type=EventType(type_), call=call, attempt=attempt, data=data)
        if not moves(ev, _held(conn, ev), conn):
            continue
        rest, flag = event_data(ev, moved=True)
        conn.execute("UPDATE events SET data = ?, moved = ? WHERE seq = ?", (rest, flag, seq))


def _held(conn: Conn, ev: NewEvent) -> dict[str, str]:
    """The payload keys of a stored event whose projection holds the same text."""
    if ev.type is _E.CHILD_ENDED:
        return {}
    if ev.type in STEP_KEYS:
        row = conn.execute(
            "SELECT result, error FROM steps WHERE run_id = ? AND call = ? AND attempt = ?",
            (ev.run_id, ev.call, ev.attempt),
        ).fetchone()
        held = dict(zip(("result", "error"), row or (None, None), strict=True))
    else:
        row = conn.execute(
            "SELECT args, kwargs, result, error FROM runs WHERE run_id = ?", (ev.run_id,)
        ).fetchone()
        held = dict(zip(_RUN_COLUMNS, row or (None,) * 4, strict=True))
    return {k: t for k, t in texts(ev).items() if held.get(k) == t}
