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
from persistence._errors import InvalidArgument, InvalidArgumentType, RunNotFound
from persistence._payloads import inflate
from persistence._records import EventRecord, RunRecord, StepRecord
from persistence._schema import CONTROL_WHERE
from persistence._states import TERMINAL_STATES, RunState


def _run_id(run_id: object) -> None:
    if not isinstance(run_id, str):
        raise InvalidArgumentType(f"a run id is a str, got {type(run_id).__name__}: {run_id!r}")


def find_run(db: SharedConnection, run_id: str) -> RunRecord | None:
    """The run's projection, or None. Raises InvalidArgumentType for a run
    id that is not a str."""
    _run_id(run_id)
    rows = db.query("SELECT * FROM runs WHERE run_id = ?", (run_id,))
    return RunRecord.from_row(rows[0]) if rows else None


def get_run(db: SharedConnection, run_id: str) -> RunRecord:
    """The run's projection, or :class:`RunNotFound`."""
    record = find_run(db, run_id)
    if record is None:
        raise RunNotFound(run_id)
    return record


def restarted_as(db: SharedConnection, run_id: str) -> list[str]:
    """The runs created as restarts of ``run_id`` (A7), oldest first."""
    _run_id(run_id)
    rows = db.query(
        "SELECT run_id FROM runs WHERE restarted_from = ? ORDER BY created_at, run_id", (run_id,)
    )
    return [row["run_id"] for row in rows]


def run_states(status: object) -> list[RunState]:
    """``status`` as a list of states: a RunState, a state's name in any case
    (``"running"``), or a sequence (not a str) of those.

    Raises:
        InvalidArgument: a name that is no state (the message lists them).
        InvalidArgumentType: anything else.
    """
    items = [status] if isinstance(status, RunState | str) else status
    if not isinstance(items, Sequence):
        raise InvalidArgumentType(
            f"status must be a RunState, its name, or a sequence of them; got {status!r}"
        )
    states = []
    for item in items:
        if isinstance(item, RunState):
            states.append(item)
        elif isinstance(item, str) and item.lower() in _STATE_NAMES:
            states.append(RunState(item.lower()))
        elif isinstance(item, str):
            names = ", ".join(sorted(_STATE_NAMES))
            raise InvalidArgument(f"status {item!r} names no run state; one of: {names}")
        else:
            raise InvalidArgumentType(f"status must be a RunState or its name, got {item!r}")
    return states


_STATE_NAMES = frozenset(s.value for s in RunState)


def list_runs(
    db: SharedConnection,
    *,
    status: RunState | str | Sequence[RunState | str] | None = None,
    workflow: str | None = None,
    parent_run_id: str | None = None,
    limit: int | None = None,
) -> list[RunRecord]:
    """Runs, newest first, filtered by any of the arguments.

    ``status`` is a state, its name (``"running"``) or a sequence of them.

    Raises:
        InvalidArgument: a status that names no state, or a negative
            ``limit`` (``InvalidArgumentType`` for an argument of the wrong type).
    """
    where: list[str] = []
    params: list[str | int] = []
    if status is not None:
        states = run_states(status)
        where.append(f"status IN ({', '.join('?' * len(states))})")
        params.extend(s.value for s in states)
    for what, text in (("workflow", workflow), ("parent_run_id", parent_run_id)):
        if text is not None and not isinstance(text, str):
            raise InvalidArgumentType(f"{what} must be a str (or None), got {text!r}")
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int)):
        raise InvalidArgumentType(f"limit must be an int (or None), got {limit!r}")
    if limit is not None and limit < 0:
        raise InvalidArgument(f"limit must be at least 0, got {limit}")
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
    _run_id(run_id)
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
    _run_id(run_id)
    rows = db.query("SELECT * FROM steps WHERE run_id = ? ORDER BY call, attempt", (run_id,))
    return [StepRecord.from_row(r) for r in rows]
