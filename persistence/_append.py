"""Appending to the log: applying groups of events, with fencing and projections.

A group of events is atomic: all are logged or none. Each event is checked
(its shape, the fencing rules of ``_fencing``, the transition tables of
``_states``), appended to ``events`` and projected into ``runs`` and
``steps`` inside the transaction that appends it, so the projections are
never behind the log and a rule holds whoever writes.

Invariants:

- A refused group leaves no trace: its savepoint (or, for a lone group,
  the whole transaction) is rolled back, and every event of it gets the
  same :class:`Refused`.
- A run's ``status`` and ``last_seq`` are those its last logged event left;
  a group writes them once, at its end (``_RunRow.dirty``).
- A step attempt's row moves only as ``STEP_TRANSITIONS`` allow: one
  guarded statement per move, and a read only to say why one did not.
- Terminate-tree (T1, T4) is one transaction: the run, then each
  unfinished descendant, parents first.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Sequence
from typing import Any, Final

from persistence._control import terminate_request
from persistence._errors import CorruptRecord, InvalidTransition, NotSerializable
from persistence._fencing import fence
from persistence._json import dumps
from persistence._ownership import owners_other_than
from persistence._payloads import event_data, moves, texts
from persistence._projections import RUNNING, project_step, run_projection
from persistence._queries import descendants
from persistence._records import (
    Appended,
    AppendOutcome,
    HeartbeatRecord,
    NewEvent,
    Refused,
)
from persistence._row_locks import lock_rows
from persistence._shapes import InvalidEvent, check_event
from persistence._sql import Conn, Db, row_lock
from persistence._states import (
    RUN_TRANSITION_EVENTS,
    EventType,
    RunState,
    next_state,
)

_E = EventType

_STATES: Final = frozenset(s.value for s in RunState)


@dataclasses.dataclass(slots=True)
class _RunRow:
    """A run's row as a group of events being applied leaves it."""

    status: RunState
    last_seq: int
    owner: str | None
    #: status/last_seq changed and are not written yet.
    dirty: bool = False


def _log(conn: Conn, values: tuple[Any, ...]) -> int:
    """Append one row to the log; its seq."""
    row = conn.execute(
        "INSERT INTO events (run_id, run_seq, ts, type, step, call, attempt, data, moved)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING seq",
        values,
    ).fetchone()
    return int(row[0])


class _GroupRefused(Exception):
    def __init__(self, refusal: Refused) -> None:
        self.refusal = refusal


def append_groups(
    db: Db,
    groups: Sequence[Sequence[NewEvent]],
    heartbeats: Sequence[HeartbeatRecord] = (),
    *,
    writer: str | None = None,
    foreign: set[str] | None = None,
) -> list[list[AppendOutcome]]:
    """Append several atomic groups in one transaction (group commit).

    A group that breaks a rule (unknown run, fenced terminal run, illegal
    transition, data that is not JSON) is refused whole; the others commit.
    ``heartbeats`` update their running step attempts in the same
    transaction; one for an attempt that has ended is ignored.

    ``writer`` is the runtime writing (None: a tool such as the CLI). A
    runtime may write a run's records only while it owns the run; any
    writer may create, take over, cancel or terminate one (OPEN_EVENTS).
    A heartbeat of a run ``writer`` no longer owns is not written either;
    its run id is added to ``foreign``, so the writer learns it lost the
    run although a heartbeat has no outcome to refuse.
    """
    if any(_impossible(ev.run_id) for group in groups for ev in group):
        return _without_impossible(db, groups, heartbeats, writer=writer, foreign=foreign)
    now = time.time()
    results: list[list[AppendOutcome]] = []
    # A lone group needs no savepoint: refused, the whole transaction is
    # rolled back. Every statement saved here is a GIL hand-off saved.
    alone = len(groups) == 1 and not heartbeats
    with db.transaction() as conn:
        if conn.dialect != "sqlite":
            lock_rows(conn, [ev for group in groups for ev in group], heartbeats)
        if heartbeats and writer is not None:
            heartbeats = _owned_heartbeats(conn, heartbeats, writer, foreign)
        # Heartbeats first: an attempt's last one may share a commit with
        # its end, and is kept (an attempt beats only once its start is
        # committed, so none is lost the other way round).
        if heartbeats:
            conn.executemany(
                "UPDATE steps SET heartbeat_at = ?,"
                " heartbeat_details = coalesce(?, heartbeat_details)"
                " WHERE run_id = ? AND call = ? AND attempt = ? AND status = ?",
                [(h.at, h.details_json, h.run_id, h.call, h.attempt, RUNNING) for h in heartbeats],
            )
        results.extend(
            _apply_group(conn, group, now, writer, savepoint=not alone) for group in groups
        )
        if alone and results[0] and not results[0][0].accepted:
            conn.execute("ROLLBACK")
    return results


def _impossible(run_id: str) -> bool:
    """No run has this id: it holds a NUL, which ``check_chosen_run_id``
    refuses and PostgreSQL cannot even compare; refused without asking."""
    return "\x00" in run_id


def _no_run(run_id: str) -> Refused:
    return Refused(f"no run with id {run_id!r}", None)


def _without_impossible(
    db: Db,
    groups: Sequence[Sequence[NewEvent]],
    heartbeats: Sequence[HeartbeatRecord],
    *,
    writer: str | None,
    foreign: set[str] | None,
) -> list[list[AppendOutcome]]:
    """:func:`append_groups`, a group naming an impossible run refused as
    naming no run (the same outcome on every store), the others appended."""
    possible = [g for g in groups if not any(_impossible(ev.run_id) for ev in g)]
    appended = iter(
        append_groups(db, possible, heartbeats, writer=writer, foreign=foreign)
        if possible or heartbeats
        else []
    )
    results: list[list[AppendOutcome]] = []
    for group in groups:
        bad = next((ev.run_id for ev in group if _impossible(ev.run_id)), None)
        results.append([_no_run(bad)] * len(group) if bad is not None else next(appended))
    return results


def _owned_heartbeats(
    conn: Conn,
    heartbeats: Sequence[HeartbeatRecord],
    writer: str,
    foreign: set[str] | None,
) -> list[HeartbeatRecord]:
    lost = set(owners_other_than(conn, list({h.run_id for h in heartbeats}), writer))
    if not lost:
        return list(heartbeats)
    if foreign is not None:
        foreign.update(lost)
    return [h for h in heartbeats if h.run_id not in lost]


def terminate_tree(
    db: Db, run_id: str, reason: str | None, *, source: str, origin: str | None = None
) -> tuple[AppendOutcome, list[str]]:
    """T1 and T4 in one transaction: the run, then each unfinished descendant.

    Returns the run's outcome and the descendants this call terminated
    (none if the run had already finished: it keeps its children).
    """
    if _impossible(run_id):
        return _no_run(run_id), []
    now = time.time()
    terminated: list[str] = []
    with db.transaction() as conn:
        group = terminate_request(run_id, reason, source=source, origin=origin)
        if conn.dialect != "sqlite":
            lock_rows(conn, group, ())
        root = _apply_group(conn, group, now, None)[-1]
        if root.accepted:
            for child in descendants(db, run_id):
                request = terminate_request(child.run_id, reason, source="parent", origin=origin)
                if _apply_group(conn, request, now, None)[-1].accepted:
                    terminated.append(child.run_id)
    return root, terminated


def _apply_group(
    conn: Conn,
    group: Sequence[NewEvent],
    now: float,
    writer: str | None,
    *,
    savepoint: bool = True,
) -> list[AppendOutcome]:
    """One atomic group inside the open transaction: all or none.

    Without ``savepoint`` the caller rolls the whole transaction back if
    the group is refused.
    """
    if savepoint:
        conn.execute("SAVEPOINT grp")
    rows: dict[str, _RunRow] = {}
    try:
        outcomes: list[AppendOutcome] = [_apply(conn, ev, now, writer, rows) for ev in group]
        for run_id, row in rows.items():
            if row.dirty:  # status and log length the last event left
                conn.execute(
                    "UPDATE runs SET status = ?, last_seq = ? WHERE run_id = ?",
                    (row.status.value, row.last_seq, run_id),
                )
    except _GroupRefused as refused:
        if savepoint:
            conn.execute("ROLLBACK TO grp")
        outcomes = [refused.refusal] * len(group)
    if savepoint:
        conn.execute("RELEASE grp")
    return outcomes


def _apply(
    conn: Conn,
    ev: NewEvent,
    now: float,
    writer: str | None,
    rows: dict[str, _RunRow],
) -> Appended:
    """One event: checked, logged, projected.

    ``rows`` caches the runs this group touched; their status and log
    length are written once, at the end of the group.
    """
    try:
        check_event(ev)  # whoever writes: the shapes readers need
        # Each payload is stored once: in its projection (see _payloads).
        payloads = texts(ev)
        data, moved = event_data(ev, moves(ev, payloads, conn))
    except (NotSerializable, InvalidEvent) as exc:
        raise _GroupRefused(Refused(str(exc), None)) from exc
    if ev.type is _E.RUN_CREATED:
        _create_run(conn, ev, now, payloads)
        rows[ev.run_id] = _RunRow(RunState.PENDING, 1, ev.data.get("owner"))
        return Appended(
            _log(conn, (ev.run_id, 1, now, ev.type.value, None, None, None, data, moved)),
            1,
            RunState.PENDING,
            ts=now,
        )
    row = rows.get(ev.run_id)
    if row is None:
        claim = ev.type is _E.RUN_CLAIMED
        found = conn.execute(
            "SELECT status, last_seq, owner FROM runs WHERE run_id = ?"
            + row_lock(conn.dialect, skip_locked=claim),
            (ev.run_id,),
        ).fetchone()
        if found is None and claim and conn.dialect != "sqlite" and _exists(conn, ev.run_id):
            # P2: another runtime's claim holds the row: it is theirs, and
            # this one moves on at once instead of queueing behind it.
            raise _GroupRefused(
                Refused(f"run {ev.run_id} is being claimed by another runtime", None)
            )
        if found is None:
            raise _GroupRefused(Refused(f"no run with id {ev.run_id!r}", None))
        if found[0] not in _STATES:  # a row written by hand: refuse, never crash
            raise _GroupRefused(Refused(f"run {ev.run_id} has unknown status {found[0]!r}", None))
        row = rows[ev.run_id] = _RunRow(RunState(found[0]), found[1], found[2])
    status, run_seq, owner = row.status, row.last_seq + 1, row.owner
    refusal = fence(ev, status, owner, row.last_seq, writer)
    if refusal is not None:
        raise _GroupRefused(refusal)
    if (
        ev.type is _E.STEP_REEXECUTED
        and status is RunState.CANCELLING
        and not ev.data.get("shielded")
    ):
        # C3: a step whose call starts while CANCELLING is not started at
        # all; the writer read the log before the cancel came in.
        raise _GroupRefused(
            Refused(
                f"run {ev.run_id} is cancelling: an unshielded attempt in flight is"
                " not run again (C3)",
                status,
                cancelling=True,
            )
        )

    new_status = status
    try:
        if ev.type in RUN_TRANSITION_EVENTS:
            new_status = next_state(status, ev.type)
        project_step(conn, ev, now, payloads)
    except (InvalidTransition, CorruptRecord) as exc:
        raise _GroupRefused(Refused(str(exc), status)) from exc
    seq = _log(
        conn,
        (ev.run_id, run_seq, now, ev.type.value, ev.step, ev.call, ev.attempt, data, moved),
    )
    row.status, row.last_seq, row.dirty = new_status, run_seq, True
    sets, params = run_projection(ev, now, payloads)
    if sets:
        conn.execute(
            f"UPDATE runs SET status = ?, last_seq = ?{sets} WHERE run_id = ?",
            (new_status.value, run_seq, *params, ev.run_id),
        )
        row.dirty = False
        if ev.type in (_E.RUN_CLAIMED, _E.RUN_RESUMED):
            row.owner = ev.data["owner"]
    return Appended(seq, run_seq, new_status, status, ts=now)


def _exists(conn: Conn, run_id: str) -> bool:
    return conn.execute("SELECT 1 FROM runs WHERE run_id = ?", (run_id,)).fetchone() is not None


def _create_run(conn: Conn, ev: NewEvent, now: float, payloads: dict[str, str]) -> None:
    d = ev.data
    created = conn.execute(
        "INSERT INTO runs (run_id, workflow, status, args, kwargs, parent_run_id,"
        " owner, created_at, last_seq, restarted_from) VALUES (?, ?, ?, ?, ?, ?, ?, ?, 1, ?)"
        " ON CONFLICT (run_id) DO NOTHING",
        (
            ev.run_id,
            d["workflow"],
            RunState.PENDING.value,
            payloads.get("args") or dumps(d.get("args", []), what="workflow arguments"),
            payloads["kwargs"]
            if isinstance(d.get("kwargs"), dict)
            else dumps(d.get("kwargs") or {}, what="workflow keyword arguments"),
            d.get("parent_run_id"),
            d.get("owner"),
            now,
            d.get("restarted_from"),
        ),
    ).rowcount
    if created == 0:
        # A2: the id is unique across the store, checked in the transaction
        # that creates the run; the refusal says so, for the caller to look
        # the existing run up (``persistence.existing_start``).
        raise _GroupRefused(Refused(f"run {ev.run_id} already exists", None, duplicate=True))
