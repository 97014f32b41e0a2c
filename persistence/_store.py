"""The Proctor store: an append-only event log and its projections in SQLite.

Writes go through :meth:`Store.append`, which applies the transition tables
inside the same transaction as the insert. That is what makes fencing hold
"whoever writes it": the Journal actor, a CLI in another process, or a step
thread that was abandoned long ago all meet the same check.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import sqlite3
import threading
import time
from collections.abc import Iterator, Sequence
from typing import Any, Final

from persistence._connection import DEFAULT_BUSY_TIMEOUT, Synchronous, connect, translate
from persistence._control import terminate_request
from persistence._errors import (
    CorruptRecord,
    InvalidTransition,
    NotSerializable,
    RunNotFound,
)
from persistence._fencing import fence
from persistence._file import (
    FileIdentity,
    check_same_file,
    identify,
)
from persistence._json import dumps
from persistence._leases import BOOT_ID, HOSTNAME, PID_NS, LeaseObserver, why_dead
from persistence._ownership import owners_other_than
from persistence._payloads import event_data, inflate, moves, texts
from persistence._records import (
    Appended,
    AppendOutcome,
    EventRecord,
    HeartbeatRecord,
    NewEvent,
    Refused,
    RunRecord,
    RuntimeRecord,
    StepRecord,
)
from persistence._schema import CONTROL_WHERE
from persistence._shapes import InvalidEvent, check_event
from persistence._states import (
    RUN_TRANSITION_EVENTS,
    STEP_END_EVENTS,
    STEP_TRANSITIONS,
    TERMINAL_STATES,
    EventType,
    RunState,
    StepState,
    next_state,
    next_step_state,
)

_E = EventType


_RUNNING: Final = StepState.RUNNING.value
_WAITING: Final = StepState.WAITING.value


def _ending_waiting(type_: EventType) -> str:
    """The status a step end may also move out of: WAITING, if the table allows."""
    return _WAITING if (StepState.WAITING, type_) in STEP_TRANSITIONS else _RUNNING


_STATES: Final = frozenset(s.value for s in RunState)
_STEP_STATES: Final = frozenset(s.value for s in StepState)


@dataclasses.dataclass(slots=True)
class _RunRow:
    """A run's row as a group of events being applied leaves it."""

    status: RunState
    last_seq: int
    owner: str | None
    #: status/last_seq changed and are not written yet.
    dirty: bool = False


def _log(conn: sqlite3.Connection, values: tuple[Any, ...]) -> int:
    """Append one row to the log; its seq."""
    cursor = conn.execute(
        "INSERT INTO events (run_id, run_seq, ts, type, step, call, attempt, data, moved)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        values,
    )
    assert cursor.lastrowid is not None
    return cursor.lastrowid


class _GroupRefused(Exception):
    def __init__(self, refusal: Refused) -> None:
        self.refusal = refusal


class Store:
    """One connection to a Proctor store. Thread-safe; one writer per process.

    Use :meth:`open`. A store opened with ``readonly=True`` never creates or
    changes anything, which is what the CLI's reading commands rely on.
    """

    def __init__(self, conn: sqlite3.Connection, path: str, *, readonly: bool) -> None:
        self._conn = conn
        self._lock = threading.RLock()
        self.path = path
        self.readonly = readonly
        #: The file (and -wal) the connection opened; see check_file().
        self._opened: FileIdentity | None = None

    @classmethod
    def open(
        cls,
        path: str | os.PathLike[str],
        *,
        readonly: bool = False,
        busy_timeout: float = DEFAULT_BUSY_TIMEOUT,
        synchronous: Synchronous = "NORMAL",
        autocheckpoint: int | None = None,
        create: bool = True,
    ) -> Store:
        """Open (and, unless ``readonly``, create or migrate) the store at ``path``.

        ``autocheckpoint``: WAL pages after which a commit on this connection
        also checkpoints (SQLite's default is 1000). A runtime's Journal sets
        it high and leaves checkpoints to :meth:`checkpoint` on another thread.
        ``create=False``: a missing file is an error, not a new store.

        Raises:
            StoreError: the file is missing (readonly), unreadable, locked past
                ``busy_timeout``, not a Proctor store, or from a newer version.
        """
        spath = os.fspath(path)
        conn = connect(
            spath,
            readonly=readonly,
            busy_timeout=busy_timeout,
            synchronous=synchronous,
            autocheckpoint=autocheckpoint,
            create=create,
        )
        store = cls(conn, spath, readonly=readonly)
        store._opened = identify(spath)
        return store

    @property
    def opened(self) -> FileIdentity | None:
        """The identity of the file (and ``-wal``) this store opened."""
        return self._opened

    def check_file(self) -> None:
        """Raise unless the path still names the file this store has open.

        Raises:
            StoreReplaced: the file was deleted or replaced by another.
            StoreCorrupt: its ``-wal`` was deleted or replaced.
        """
        if self._opened is not None:
            check_same_file(self.path, self._opened)

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- writing ------------------------------------------------------------

    def append(
        self, events: Sequence[NewEvent], *, writer: str | None = None
    ) -> list[AppendOutcome]:
        """Append one atomic group of events; all are written or none are."""
        return self.append_groups([events], writer=writer)[0]

    def append_groups(
        self,
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
        now = time.time()
        results: list[list[AppendOutcome]] = []
        # A lone group needs no savepoint: refused, the whole transaction is
        # rolled back. Every statement saved here is a GIL hand-off saved.
        alone = len(groups) == 1 and not heartbeats
        with self._transaction() as conn:
            if heartbeats and writer is not None:
                heartbeats = self._owned_heartbeats(conn, heartbeats, writer, foreign)
            # Heartbeats first: an attempt's last one may share a commit with
            # its end, and is kept (an attempt beats only once its start is
            # committed, so none is lost the other way round).
            if heartbeats:
                conn.executemany(
                    "UPDATE steps SET heartbeat_at = ?,"
                    " heartbeat_details = coalesce(?, heartbeat_details)"
                    " WHERE run_id = ? AND call = ? AND attempt = ? AND status = ?",
                    [
                        (h.at, h.details_json, h.run_id, h.call, h.attempt, _RUNNING)
                        for h in heartbeats
                    ],
                )
            results.extend(
                self._apply_group(conn, group, now, writer, savepoint=not alone) for group in groups
            )
            if alone and results[0] and not results[0][0].accepted:
                conn.execute("ROLLBACK")
        return results

    @staticmethod
    def _owned_heartbeats(
        conn: sqlite3.Connection,
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
        self, run_id: str, reason: str | None, *, source: str, origin: str | None = None
    ) -> tuple[AppendOutcome, list[str]]:
        """T1 and T4 in one transaction: the run, then each unfinished descendant.

        Returns the run's outcome and the descendants this call terminated
        (none if the run had already finished: it keeps its children).
        """
        now = time.time()
        terminated: list[str] = []
        with self._transaction() as conn:
            group = terminate_request(run_id, reason, source=source, origin=origin)
            root = self._apply_group(conn, group, now, None)[-1]
            if root.accepted:
                for child in self.descendants(run_id):
                    request = terminate_request(
                        child.run_id, reason, source="parent", origin=origin
                    )
                    if self._apply_group(conn, request, now, None)[-1].accepted:
                        terminated.append(child.run_id)
        return root, terminated

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        """One write transaction: committed at the end of the block unless the
        block rolled it back, rolled back if the block raises."""
        with self._lock, translate(self.path):
            conn = self._conn
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise
            if conn.in_transaction:
                conn.execute("COMMIT")

    def _apply_group(
        self,
        conn: sqlite3.Connection,
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
            outcomes: list[AppendOutcome] = [
                self._apply(conn, ev, now, writer, rows) for ev in group
            ]
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
        self,
        conn: sqlite3.Connection,
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
            self._create_run(conn, ev, now, payloads)
            rows[ev.run_id] = _RunRow(RunState.PENDING, 1, ev.data.get("owner"))
            return Appended(
                _log(conn, (ev.run_id, 1, now, ev.type.value, None, None, None, data, moved)),
                1,
                RunState.PENDING,
            )
        row = rows.get(ev.run_id)
        if row is None:
            found = conn.execute(
                "SELECT status, last_seq, owner FROM runs WHERE run_id = ?", (ev.run_id,)
            ).fetchone()
            if found is None:
                raise _GroupRefused(Refused(f"no run with id {ev.run_id!r}", None))
            if found[0] not in _STATES:  # a row written by hand: refuse, never crash
                raise _GroupRefused(
                    Refused(f"run {ev.run_id} has unknown status {found[0]!r}", None)
                )
            row = rows[ev.run_id] = _RunRow(RunState(found[0]), found[1], found[2])
        status, run_seq, owner = row.status, row.last_seq + 1, row.owner
        refusal = fence(ev, status, owner, row.last_seq, writer)
        if refusal is not None:
            raise _GroupRefused(refusal)

        new_status = status
        try:
            if ev.type in RUN_TRANSITION_EVENTS:
                new_status = next_state(status, ev.type)
            self._project_step(conn, ev, now, payloads)
        except (InvalidTransition, CorruptRecord) as exc:
            raise _GroupRefused(Refused(str(exc), status)) from exc
        seq = _log(
            conn,
            (ev.run_id, run_seq, now, ev.type.value, ev.step, ev.call, ev.attempt, data, moved),
        )
        row.status, row.last_seq, row.dirty = new_status, run_seq, True
        sets, params = _run_projection(ev, now, payloads)
        if sets:
            conn.execute(
                f"UPDATE runs SET status = ?, last_seq = ?{sets} WHERE run_id = ?",
                (new_status.value, run_seq, *params, ev.run_id),
            )
            row.dirty = False
            if ev.type in (_E.RUN_CLAIMED, _E.RUN_RESUMED):
                row.owner = ev.data["owner"]
        return Appended(seq, run_seq, new_status, status)

    def _create_run(
        self, conn: sqlite3.Connection, ev: NewEvent, now: float, payloads: dict[str, str]
    ) -> None:
        d = ev.data
        try:
            conn.execute(
                "INSERT INTO runs (run_id, workflow, status, args, kwargs, parent_run_id,"
                " owner, created_at, last_seq) VALUES (?, ?, ?, ?, ?, ?, ?, ?, 1)",
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
                ),
            )
        except sqlite3.IntegrityError as exc:
            raise _GroupRefused(Refused(f"run {ev.run_id} already exists", None)) from exc

    def _project_step(
        self, conn: sqlite3.Connection, ev: NewEvent, now: float, payloads: dict[str, str]
    ) -> None:
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
                    _WAITING,
                    _RUNNING,
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
                    _RUNNING,
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
                    raise CorruptRecord(
                        f"step {ev.call}.{ev.attempt} has unknown status {row[0]!r}"
                    )
                next_step_state(StepState(row[0]), ev.type)  # raises: not RUNNING

    # -- runtimes and leases ----------------------------------------------------

    def register_runtime(self, owner: str, *, ttl: float, version: str | None = None) -> None:
        """Say that ``owner`` (this process) is alive and renews within ``ttl`` seconds.

        The row names this process's PID namespace and boot, so that only a
        process that can see it judges it by its pid (P3).
        """
        now = time.time()
        self._write(
            "INSERT INTO runtimes (owner, pid, hostname, started_at, heartbeat_at,"
            " lease_expires_at, version, renewals, lease_ttl, pid_ns, boot_id)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, 0, ?, ?, ?)",
            (owner, os.getpid(), HOSTNAME, now, now, now + ttl, version, ttl, PID_NS, BOOT_ID),
        )

    def renew_lease(self, owner: str, *, ttl: float) -> bool:
        """Renew ``owner``'s lease: bump its renewal counter (what observers watch).

        Returns False, and changes nothing, when the row says the runtime
        stopped or its lease was revoked (another runtime found it silent and
        may be resuming its runs): it must stop its runs (self-fencing).
        ``heartbeat_at`` and ``lease_expires_at`` are this host's wall clock,
        for people to read; no liveness verdict uses them (P3).
        """
        now = time.time()
        with self._lock, translate(self.path):
            cur = self._conn.execute(
                "UPDATE runtimes SET heartbeat_at = ?, lease_expires_at = ?,"
                " renewals = renewals + 1"
                " WHERE owner = ? AND stopped_at IS NULL AND revoked IS NULL",
                (now, now + ttl, owner),
            )
            return cur.rowcount == 1

    def release_runtime(self, owner: str) -> None:
        """``owner`` stopped on purpose: its unfinished runs may be resumed at once."""
        self._write("UPDATE runtimes SET stopped_at = ? WHERE owner = ?", (time.time(), owner))

    def expire_lease(self, owner: str, why: str = "ended at once") -> None:
        """End ``owner``'s lease now, as if it had stopped renewing it long ago:
        its runs may be resumed at once, and its next renewal fails."""
        self._write(
            "UPDATE runtimes SET lease_expires_at = 0, revoked = ? WHERE owner = ?", (why, owner)
        )

    def runtimes(self) -> list[RuntimeRecord]:
        rows = self._query("SELECT * FROM runtimes ORDER BY started_at", ())
        return [RuntimeRecord.from_row(r) for r in rows]

    def orphaned_runs(
        self,
        workflows: Sequence[str],
        *,
        me: str,
        observer: LeaseObserver | None = None,
        limit: int = 100,
    ) -> list[tuple[RunRecord, str]]:
        """Unfinished runs of ``workflows`` whose owner is dead and that nobody
        else will resume, and why.

        A top-level run is resumed here. A child run is resumed by its parent's
        replay while its parent is unfinished and its log does not record the
        child's end; otherwise (a child abandoned by a parent that ended, or
        one whose parent no longer waits for it) nobody would, so it is
        resumed here too. Never both: two resumers of one child would race,
        and the parent of the loser would record an end that did not happen.
        ``observer`` judges silence on the caller's own clock (P3); without
        one, only rows that say so and gone processes count. An owner found
        silent is revoked here by a compare-and-swap on its renewal counter,
        before any of its runs is returned: if it renewed meanwhile it is
        alive after all; if not, its next renewal fails and it stops its runs.
        """
        if not workflows:
            return []
        marks = ", ".join("?" * len(workflows))
        unfinished = [RunState.PENDING, RunState.RUNNING, RunState.CANCELLING]
        terminal = ", ".join(f"'{s.value}'" for s in TERMINAL_STATES)
        rows = self._query(
            f"SELECT r.* FROM runs AS r LEFT JOIN runs AS p ON p.run_id = r.parent_run_id"
            f" WHERE r.status IN (?, ?, ?) AND r.owner IS NOT NULL AND r.owner != ?"
            f" AND r.workflow IN ({marks})"
            f" AND (r.parent_run_id IS NULL OR p.run_id IS NULL OR p.status IN ({terminal})"
            f"  OR EXISTS (SELECT 1 FROM events AS e WHERE e.run_id = p.run_id"
            f"   AND e.type = '{_E.CHILD_ENDED.value}'"
            f"   AND json_extract(e.data, '$.child_run_id') = r.run_id))"
            f" ORDER BY r.created_at, r.run_id",
            (*(s.value for s in unfinished), me, *workflows),
        )
        runtimes = {r.owner: r for r in self.runtimes()}
        silence: dict[str, float] = {}
        if observer is not None:
            observer.forget_others(runtimes)
            silence = {owner: observer.silent_for(r) for owner, r in runtimes.items()}
        verdicts: dict[str, str | None] = {}
        found: list[tuple[RunRecord, str]] = []
        for row in rows:
            record = RunRecord.from_row(row)
            owner = record.owner
            assert owner is not None
            if owner not in verdicts:
                runtime = runtimes.get(owner)
                why = why_dead(owner, runtime, silent_for=silence.get(owner))
                if why is not None and runtime is not None and why_dead(owner, runtime) is None:
                    # Dead by silence alone: make it so in the row, or find it alive.
                    why = why if self._revoke(runtime, f"{me}: {why}") else None
                verdicts[owner] = why
            why = verdicts[owner]
            if why is not None:
                found.append((record, why))
                if len(found) >= limit:
                    break
        return found

    def _revoke(self, runtime: RuntimeRecord, why: str) -> bool:
        """Revoke ``runtime``'s lease unless it renewed since we read its row."""
        with self._lock, translate(self.path):
            cur = self._conn.execute(
                "UPDATE runtimes SET revoked = ? WHERE owner = ? AND renewals = ?"
                " AND stopped_at IS NULL AND revoked IS NULL",
                (why, runtime.owner, runtime.renewals),
            )
            return cur.rowcount == 1

    def owned_elsewhere(self, run_ids: Sequence[str], *, me: str) -> dict[str, str | None]:
        """Of ``run_ids``, those the store says are not ``me``'s: run id -> owner.

        What a runtime asks about the runs it hosts: one taken over while it
        could not tell (paused, partitioned) must stop at once (fencing).
        """
        with self._lock, translate(self.path):
            return owners_other_than(self._conn, run_ids, me)

    def _write(self, sql: str, params: Sequence[Any]) -> None:
        with self._lock, translate(self.path):
            self._conn.execute(sql, params)

    # -- reading ------------------------------------------------------------

    @contextlib.contextmanager
    def snapshot(self) -> Iterator[None]:
        """Reads in this block see one state of the store, as of its first read.

        (One read transaction; in WAL mode it never blocks the writer.) Other
        threads using this Store wait until the block ends.
        """
        with self._lock:
            with translate(self.path):
                self._conn.execute("BEGIN")
            try:
                yield
            finally:
                if self._conn.in_transaction:
                    self._conn.execute("COMMIT")

    def find_run(self, run_id: str) -> RunRecord | None:
        rows = self._query("SELECT * FROM runs WHERE run_id = ?", (run_id,))
        return RunRecord.from_row(rows[0]) if rows else None

    def get_run(self, run_id: str) -> RunRecord:
        """The run's projection, or :class:`RunNotFound`."""
        record = self.find_run(run_id)
        if record is None:
            raise RunNotFound(run_id)
        return record

    def list_runs(
        self,
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
        return [RunRecord.from_row(r) for r in self._query(sql, params)]

    def descendants(self, run_id: str, *, unfinished: bool = True) -> list[RunRecord]:
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
        return [RunRecord.from_row(r) for r in self._query(sql, (run_id,))]

    def last_seq(self) -> int:
        """The global sequence number of the newest event (0 for an empty log)."""
        rows = self._query("SELECT coalesce(max(seq), 0) AS seq FROM events", ())
        return int(rows[0]["seq"])

    def control_requests(self, *, after: int, limit: int = 1000) -> list[EventRecord]:
        """Cancel and terminate requests with global ``seq > after``, oldest first."""
        # The condition is spelled as in the partial index, so it is used.
        rows = self._query(
            f"SELECT * FROM events WHERE {CONTROL_WHERE} AND seq > ? ORDER BY seq LIMIT ?",
            (after, limit),
        )
        return [EventRecord.from_row(r) for r in rows]

    def claimable(self, workflows: Sequence[str], *, limit: int) -> list[RunRecord]:
        """Top-level runs nobody owns yet (``proctor start``), oldest first.

        Child runs are never claimable: they belong to their parent's owner.
        """
        if not workflows:
            return []
        marks = ", ".join("?" * len(workflows))
        rows = self._query(
            f"SELECT * FROM runs WHERE owner IS NULL AND parent_run_id IS NULL"
            f" AND status IN (?, ?) AND workflow IN ({marks})"
            f" ORDER BY created_at, run_id LIMIT ?",
            (RunState.PENDING.value, RunState.CANCELLING.value, *workflows, limit),
        )
        return [RunRecord.from_row(r) for r in rows]

    def events(self, run_id: str, *, after: int = 0) -> list[EventRecord]:
        """The run's events with ``run_seq > after``, in order, each as appended
        (payloads held by a projection are filled back in, from one snapshot)."""
        with self._lock:
            outer = self._conn.in_transaction
            if not outer:
                with translate(self.path):
                    self._conn.execute("BEGIN")
            try:
                rows = self._query(
                    "SELECT * FROM events WHERE run_id = ? AND run_seq > ? ORDER BY run_seq",
                    (run_id, after),
                )
                with translate(self.path):
                    return inflate(self._conn, rows)
            finally:
                if not outer and self._conn.in_transaction:
                    self._conn.execute("COMMIT")

    def steps(self, run_id: str) -> list[StepRecord]:
        """Every step attempt of the run, in call and attempt order."""
        rows = self._query("SELECT * FROM steps WHERE run_id = ? ORDER BY call, attempt", (run_id,))
        return [StepRecord.from_row(r) for r in rows]

    def checkpoint(self) -> None:
        """Copy committed WAL pages back into the database, without waiting
        for or blocking anyone (a PASSIVE checkpoint)."""
        with self._lock, translate(self.path):
            self._conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()

    def data_version(self) -> int:
        """Changes whenever another connection commits (``PRAGMA data_version``)."""
        with self._lock, translate(self.path):
            return int(self._conn.execute("PRAGMA data_version").fetchone()[0])

    def _query(self, sql: str, params: Sequence[Any]) -> list[dict[str, Any]]:
        # Plain sqlite3 on the read path: sqlite-utils (schema and migrations)
        # costs ~80 ms to import, a third of `proctor runs list`'s budget.
        with self._lock, translate(self.path):
            cursor = self._conn.execute(sql, params)
            columns = [c[0] for c in cursor.description]
            return [dict(zip(columns, row, strict=True)) for row in cursor.fetchall()]


def _run_projection(
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
            ", cancel_reason = iif(cancel_requested_at IS NULL, ?, cancel_reason)"
            ", cancel_source = iif(cancel_requested_at IS NULL, ?, cancel_source)"
            ", cancel_grace = iif(cancel_requested_at IS NULL, ?, cancel_grace)"
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
