"""The read API of a SQLite store: runs, their logs, step attempts, requests.

Each function reads through the store's :class:`SharedConnection` and
returns records (``RunRecord``, ``EventRecord``, ``StepRecord``), never
rows. Invariants:

- A read never writes: these work on a store opened read-only.
- ``events`` reads a run's log and the payloads its projections hold from
  one snapshot, so an event reads exactly as it was appended.
- Orders are total (a tie-break on ``run_id`` or ``seq``), so keyset
  pagination and repeated reads see one order.
"""

from __future__ import annotations

from collections.abc import Sequence

from persistence._connection import SharedConnection
from persistence._errors import RunNotFound
from persistence._payloads import inflate
from persistence._records import EventRecord, RunRecord, StepRecord
from persistence._schema import CONTROL_WHERE
from persistence._states import TERMINAL_STATES, RunState


def find_run(db: SharedConnection, run_id: str) -> RunRecord | None:
    """The run's projection, or None."""
    rows = db.query("SELECT * FROM runs WHERE run_id = ?", (run_id,))
    return RunRecord.from_row(rows[0]) if rows else None


def get_run(db: SharedConnection, run_id: str) -> RunRecord:
    """The run's projection, or :class:`RunNotFound`."""
    record = find_run(db, run_id)
    if record is None:
        raise RunNotFound(run_id)
    return record


def list_runs(
    db: SharedConnection,
    *,
    status: RunState | Sequence[RunState] | None = None,
    workflow: str | None = None,
    parent_run_id: str | None = None,
    limit: int | None = None,
) -> list[RunRecord]:
    """Runs, newest first, filtered by any of the arguments."""
    where: list[str] = []
    params: list[str | int] = []
    if status is not None:
        states = [status] if isinstance(status, RunState) else list(status)
        where.append(f"status IN ({', '.join('?' * len(states))})")
        params.extend(s.value for s in states)
    if workflow is not None:
        where.append("workflow = ?")
        params.append(workflow)
    if parent_run_id is not None:
        where.append("parent_run_id = ?")
        params.append(parent_run_id)
    sql = "SELECT * FROM runs"
    if where:
        sql += " WHERE " + " AND ".join(where)
    sql += " ORDER BY created_at DESC, run_id"
    if limit is not None:
        sql += " LIMIT ?"
        params.append(limit)
    return [RunRecord.from_row(r) for r in db.query(sql, params)]


def descendants(db: SharedConnection, run_id: str, *, unfinished: bool = True) -> list[RunRecord]:
    """The run's child runs, their children, and so on, parents first.

    With ``unfinished`` (the default), only runs not yet terminal: the ones
    a terminate of ``run_id`` must reach (T4).
    """
    sql = """
        WITH RECURSIVE tree(run_id, depth) AS (
            SELECT run_id, 1 FROM runs WHERE parent_run_id = ?
            UNION ALL
            SELECT runs.run_id, tree.depth + 1
            FROM runs JOIN tree ON runs.parent_run_id = tree.run_id
        )
        SELECT runs.* FROM runs JOIN tree USING (run_id)
    """
    if unfinished:
        terminal = ", ".join(f"'{s.value}'" for s in TERMINAL_STATES)
        sql += f" WHERE runs.status NOT IN ({terminal})"
    sql += " ORDER BY tree.depth, runs.created_at, runs.run_id"
    return [RunRecord.from_row(r) for r in db.query(sql, (run_id,))]


def last_seq(db: SharedConnection) -> int:
    """The global sequence number of the newest event (0 for an empty log)."""
    rows = db.query("SELECT coalesce(max(seq), 0) AS seq FROM events", ())
    return int(rows[0]["seq"])


def control_requests(db: SharedConnection, *, after: int, limit: int = 1000) -> list[EventRecord]:
    """Cancel and terminate requests with global ``seq > after``, oldest first."""
    # The condition is spelled as in the partial index, so it is used.
    rows = db.query(
        f"SELECT * FROM events WHERE {CONTROL_WHERE} AND seq > ? ORDER BY seq LIMIT ?",
        (after, limit),
    )
    return [EventRecord.from_row(r) for r in rows]


def claimable(db: SharedConnection, workflows: Sequence[str], *, limit: int) -> list[RunRecord]:
    """Top-level runs nobody owns yet (``proctor start``), oldest first.

    Child runs are never claimable: they belong to their parent's owner.
    """
    if not workflows:
        return []
    marks = ", ".join("?" * len(workflows))
    rows = db.query(
        f"SELECT * FROM runs WHERE owner IS NULL AND parent_run_id IS NULL"
        f" AND status IN (?, ?) AND workflow IN ({marks})"
        f" ORDER BY created_at, run_id LIMIT ?",
        (RunState.PENDING.value, RunState.CANCELLING.value, *workflows, limit),
    )
    return [RunRecord.from_row(r) for r in rows]


def events(db: SharedConnection, run_id: str, *, after: int = 0) -> list[EventRecord]:
    """The run's events with ``run_seq > after``, in order, each as appended
    (payloads held by a projection are filled back in, from one snapshot)."""
    with db.lock:
        outer = db.conn.in_transaction
        if not outer:
            with db.locked() as conn:
                conn.execute("BEGIN")
        try:
            rows = db.query(
                "SELECT * FROM events WHERE run_id = ? AND run_seq > ? ORDER BY run_seq",
                (run_id, after),
            )
            with db.locked() as conn:
                return inflate(conn, rows)
        finally:
            if not outer and db.conn.in_transaction:
                db.conn.execute("COMMIT")


def steps(db: SharedConnection, run_id: str) -> list[StepRecord]:
    """Every step attempt of the run, in call and attempt order."""
    rows = db.query("SELECT * FROM steps WHERE run_id = ? ORDER BY call, attempt", (run_id,))
    return [StepRecord.from_row(r) for r in rows]
