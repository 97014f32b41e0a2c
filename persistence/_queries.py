"""The read API of a SQLite store: runs, their logs, step attempts, requests.

Each function reads through the store's :class:`Db` and
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

from persistence._errors import InvalidArgumentType, RunNotFound
from persistence._listing import RunPage, RunQuery, encode_cursor, run_query
from persistence._payloads import inflate
from persistence._records import EventRecord, RunRecord, StepRecord
from persistence._schema import CONTROL_WHERE
from persistence._sql import Db
from persistence._states import TERMINAL_STATES, RunState


def _run_id(run_id: object) -> bool:
    """Whether a run could have this id: a str (else InvalidArgumentType)
    without a NUL, which no run id holds (``check_chosen_run_id`` refuses
    it, and PostgreSQL cannot even compare text holding one). A lookup of
    such an id finds nothing, on every store, without asking the store."""
    if not isinstance(run_id, str):
        raise InvalidArgumentType(f"a run id is a str, got {type(run_id).__name__}: {run_id!r}")
    return "\x00" not in run_id


def find_run(db: Db, run_id: str) -> RunRecord | None:
    """The run's projection, or None. Raises InvalidArgumentType for a run
    id that is not a str."""
    if not _run_id(run_id):
        return None
    rows = db.query("SELECT * FROM runs WHERE run_id = ?", (run_id,))
    return RunRecord.from_row(rows[0]) if rows else None


def get_run(db: Db, run_id: str) -> RunRecord:
    """The run's projection, or :class:`RunNotFound`."""
    record = find_run(db, run_id)
    if record is None:
        raise RunNotFound(run_id)
    return record


def restarted_as(db: Db, run_id: str) -> list[str]:
    """The runs created as restarts of ``run_id`` (A7), oldest first."""
    if not _run_id(run_id):
        return []
    rows = db.query(
        "SELECT run_id FROM runs WHERE restarted_from = ? ORDER BY created_at, run_id", (run_id,)
    )
    return [row["run_id"] for row in rows]


def list_runs_page(db: Db, query: RunQuery) -> RunPage:
    """One page of runs, newest first (``created_at`` descending, then
    ``run_id``), filtered by ``query`` (see ``_listing``).

    The page holds ``query.limit`` runs at most (all of them for None); its
    ``next_cursor`` is None when no run follows. ``workflow`` matches the
    full name or the short name after its last dot (``order`` matches
    ``shop.orders.order``).
    """
    where: list[str] = []
    params: list[str | float | int] = []
    if query.states is not None:
        where.append(f"status IN ({', '.join('?' * len(query.states))})")
        params.extend(s.value for s in query.states)
    if query.workflow is not None and "." in query.workflow:
        where.append("workflow = ?")  # a full name
        params.append(query.workflow)
    elif query.workflow is not None:
        # A full name, or the short name after the last dot. Exact
        # comparisons, no LIKE: a name may hold % or _.
        where.append(
            "(workflow = ? OR substr(workflow, -(length(?) + 1)) = '.' || ?)"
            if db.dialect == "sqlite"
            else "(workflow = ? OR right(workflow, length(CAST(? AS text)) + 1) = '.' || ?)"
        )
        params.extend([query.workflow] * 3)
    if query.parent_run_id is not None:
        where.append("parent_run_id = ?")
        params.append(query.parent_run_id)
    for column, low, high in (
        ("created_at", query.since, query.until),
        ("finished_at", query.ended_since, query.ended_until),
    ):
        if low is not None:
            where.append(f"{column} >= ?")
            params.append(low)
        if high is not None:
            where.append(f"{column} < ?")
            params.append(high)
    if query.after is not None:
        # Strictly after the cursor's run in the listing's order (keyset);
        # spelled so that SQLite walks idx_runs_page from the cursor on.
        where.append("created_at <= ? AND (created_at < ? OR run_id > ?)")
        params.extend([query.after[0], query.after[0], query.after[1]])
    sql = "SELECT * FROM runs"
    if where:
        sql += " WHERE " + " AND ".join(where)
    sql += " ORDER BY created_at DESC, run_id"
    if query.limit is not None:
        sql += " LIMIT ?"
        params.append(query.limit + 1)  # one more: is there a next page?
    runs = [RunRecord.from_row(r) for r in db.query(sql, params)]
    if query.limit is None or len(runs) <= query.limit:
        return RunPage(runs, None)
    runs = runs[: query.limit]
    return RunPage(runs, encode_cursor(runs[-1], query) if runs else None)


def list_runs(
    db: Db,
    *,
    status: RunState | str | Sequence[RunState | str] | None = None,
    workflow: str | None = None,
    parent_run_id: str | None = None,
    limit: int | None = None,
) -> list[RunRecord]:
    """Runs, newest first, filtered by any of the arguments (the first page
    of :func:`list_runs_page`).

    ``status`` is a state, its name (``"running"``) or a sequence of them.

    Raises:
        InvalidArgument: a status that names no state, or a ``limit``
            below 1 (``InvalidArgumentType`` for an argument of the wrong type).
    """
    query = run_query(status=status, workflow=workflow, parent_run_id=parent_run_id, limit=limit)
    return list_runs_page(db, query).runs


def descendants(db: Db, run_id: str, *, unfinished: bool = True) -> list[RunRecord]:
    """The run's child runs, their children, and so on, parents first.

    With ``unfinished`` (the default), only runs not yet terminal: the ones
    a terminate of ``run_id`` must reach (T4).

    Parent links edited by hand into a cycle cannot make it loop: each run
    has one parent, so the only cycle reachable from ``run_id`` passes
    through ``run_id`` itself, and the walk never enters ``run_id`` again.
    """
    if not _run_id(run_id):
        return []
    sql = """
        WITH RECURSIVE tree(run_id, depth) AS (
            SELECT run_id, 1 FROM runs WHERE parent_run_id = ? AND run_id <> ?
            UNION ALL
            SELECT runs.run_id, tree.depth + 1
            FROM runs JOIN tree ON runs.parent_run_id = tree.run_id
            WHERE runs.run_id <> ?
        )
        SELECT runs.* FROM runs JOIN tree USING (run_id)
    """
    if unfinished:
        terminal = ", ".join(f"'{s.value}'" for s in TERMINAL_STATES)
        sql += f" WHERE runs.status NOT IN ({terminal})"
    sql += " ORDER BY tree.depth, runs.created_at, runs.run_id"
    return [RunRecord.from_row(r) for r in db.query(sql, (run_id, run_id, run_id))]


def last_seq(db: Db) -> int:
    """The global sequence number of the newest event (0 for an empty log)."""
    rows = db.query("SELECT coalesce(max(seq), 0) AS seq FROM events", ())
    return int(rows[0]["seq"])


def control_requests(db: Db, *, after: int, limit: int = 1000) -> list[EventRecord]:
    """Cancel and terminate requests with global ``seq > after``, oldest first."""
    # The condition is spelled as in the partial index, so it is used.
    rows = db.query(
        f"SELECT * FROM events WHERE {CONTROL_WHERE} AND seq > ? ORDER BY seq LIMIT ?",
        (after, limit),
    )
    return [EventRecord.from_row(r) for r in rows]


def claimable(db: Db, workflows: Sequence[str], *, limit: int) -> list[RunRecord]:
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


def events(db: Db, run_id: str, *, after: int = 0) -> list[EventRecord]:
    """The run's events with ``run_seq > after``, in order, each as appended
    (payloads held by a projection are filled back in, from one snapshot)."""
    if not _run_id(run_id):
        return []
    with db.snapshot():
        rows = db.query(
            "SELECT * FROM events WHERE run_id = ? AND run_seq > ? ORDER BY run_seq",
            (run_id, after),
        )
        with db.locked() as conn:
            return inflate(conn, rows)


def steps(db: Db, run_id: str) -> list[StepRecord]:
    """Every step attempt of the run, in call and attempt order."""
    if not _run_id(run_id):
        return []
    rows = db.query("SELECT * FROM steps WHERE run_id = ? ORDER BY call, attempt", (run_id,))
    return [StepRecord.from_row(r) for r in rows]
