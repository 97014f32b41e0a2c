"""The SQLite store: one implementation of the ``Store`` interface, as a facade.

:class:`SQLiteStore` composes the pieces, each in its own module:

- ``_connection``: the shared connection, opening, WAL, transactions, errors;
- ``_append`` (with ``_fencing`` and ``_projections``): appending groups;
- ``_queries``: the read API;
- ``_runtimes``: leases and orphaned runs;
- ``_pruning``: retention.

It adds only what is SQLite's alone: the file it opened (``opened``,
:meth:`SQLiteStore.check_file`), ``PRAGMA data_version`` and WAL checkpoints,
each also under the interface's store-neutral name (``changes``,
``housekeep``, ``check_same_store``).

Invariants: every statement goes through the one :class:`SharedConnection`
(one lock, errors translated); writes go through ``_append``, which applies
the transition tables and the fencing rules inside the same transaction as
the insert. That is what makes fencing hold "whoever writes it": the Journal
actor, a CLI in another process, or a step thread that was abandoned long
ago all meet the same check.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any

from persistence import _append, _queries, _runtimes
from persistence._connection import (
    DEFAULT_BUSY_TIMEOUT,
    SharedConnection,
    SQLiteConn,
    Synchronous,
    connect,
)
from persistence._file import FileIdentity, check_same_file, identify
from persistence._interface import Store
from persistence._leases import LeaseObserver
from persistence._listing import RunPage, RunQuery
from persistence._pruning import prune_store_batch, prune_store_runtimes
from persistence._records import (
    AppendOutcome,
    EventRecord,
    HeartbeatRecord,
    NewEvent,
    RunRecord,
    RuntimeRecord,
    StepRecord,
)
from persistence._retention import PRUNE_BATCH, PruneCursor, PruneReport
from persistence._states import RunState


class SQLiteStore:
    """One connection to a Proctor store file. Thread-safe; one writer per process.

    Use :meth:`open`. A store opened with ``readonly=True`` never creates or
    changes anything, which is what the CLI's reading commands rely on.
    The methods are the :class:`~persistence.Store` interface's (documented
    there and in the modules that implement them), plus :meth:`open`,
    :meth:`data_version`, :meth:`checkpoint` and :meth:`check_file`.
    """

    def __init__(self, conn: SQLiteConn, path: str, *, readonly: bool) -> None:
        self._db = SharedConnection(conn, path)
        self.path = path
        self.readonly = readonly
        #: The file (and -wal) the connection opened; see check_file().
        self._opened: FileIdentity | None = None

    @property
    def _conn(self) -> SQLiteConn:
        """The raw connection (for tests and tools that inspect SQLite itself)."""
        return self._db.conn

    def _write(self, sql: str, params: Sequence[Any]) -> None:
        """One raw statement (for tests that write what Proctor never would)."""
        self._db.write(sql, params)

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
    ) -> SQLiteStore:
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

    def check_same_store(self) -> None:
        """The interface's name for :meth:`check_file`."""
        self.check_file()

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> SQLiteStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- writing (``_append``) -------------------------------------------------

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
        return _append.append_groups(self._db, groups, heartbeats, writer=writer, foreign=foreign)

    def terminate_tree(
        self, run_id: str, reason: str | None, *, source: str, origin: str | None = None
    ) -> tuple[AppendOutcome, list[str]]:
        return _append.terminate_tree(self._db, run_id, reason, source=source, origin=origin)

    # -- runtimes and leases (``_runtimes``) -------------------------------------

    def register_runtime(self, owner: str, *, ttl: float, version: str | None = None) -> None:
        _runtimes.register_runtime(self._db, owner, ttl=ttl, version=version)

    def renew_lease(self, owner: str, *, ttl: float) -> bool:
        return _runtimes.renew_lease(self._db, owner, ttl=ttl)

    def release_runtime(self, owner: str) -> None:
        _runtimes.release_runtime(self._db, owner)

    def expire_lease(self, owner: str, why: str = "ended at once") -> None:
        _runtimes.expire_lease(self._db, owner, why)

    def runtimes(self) -> list[RuntimeRecord]:
        return _runtimes.runtimes(self._db)

    def orphaned_runs(
        self,
        workflows: Sequence[str],
        *,
        me: str,
        observer: LeaseObserver | None = None,
        limit: int = 100,
    ) -> list[tuple[RunRecord, str]]:
        return _runtimes.orphaned_runs(self._db, workflows, me=me, observer=observer, limit=limit)

    def _revoke(self, runtime: RuntimeRecord, why: str) -> bool:
        return _runtimes.revoke(self._db, runtime, why)

    def owned_elsewhere(self, run_ids: Sequence[str], *, me: str) -> dict[str, str | None]:
        return _runtimes.owned_elsewhere(self._db, run_ids, me=me)

    # -- reading (``_queries``) ------------------------------------------------

    @contextlib.contextmanager
    def snapshot(self) -> Iterator[None]:
        """Reads in this block see one state of the store, as of its first read.

        (One read transaction; in WAL mode it never blocks the writer.) Other
        threads using this Store wait until the block ends.
        """
        with self._db.snapshot():
            yield

    def find_run(self, run_id: str) -> RunRecord | None:
        return _queries.find_run(self._db, run_id)

    def restarted_as(self, run_id: str) -> list[str]:
        return _queries.restarted_as(self._db, run_id)

    def get_run(self, run_id: str) -> RunRecord:
        return _queries.get_run(self._db, run_id)

    def list_runs(
        self,
        *,
        status: RunState | str | Sequence[RunState | str] | None = None,
        workflow: str | None = None,
        parent_run_id: str | None = None,
        limit: int | None = None,
    ) -> list[RunRecord]:
        return _queries.list_runs(
            self._db, status=status, workflow=workflow, parent_run_id=parent_run_id, limit=limit
        )

    def list_runs_page(self, query: RunQuery) -> RunPage:
        return _queries.list_runs_page(self._db, query)

    def descendants(self, run_id: str, *, unfinished: bool = True) -> list[RunRecord]:
        return _queries.descendants(self._db, run_id, unfinished=unfinished)

    def last_seq(self) -> int:
        return _queries.last_seq(self._db)

    def control_requests(self, *, after: int, limit: int = 1000) -> list[EventRecord]:
        return _queries.control_requests(self._db, after=after, limit=limit)

    def claimable(self, workflows: Sequence[str], *, limit: int) -> list[RunRecord]:
        return _queries.claimable(self._db, workflows, limit=limit)

    def events(self, run_id: str, *, after: int = 0) -> list[EventRecord]:
        return _queries.events(self._db, run_id, after=after)

    def steps(self, run_id: str) -> list[StepRecord]:
        return _queries.steps(self._db, run_id)

    # -- change detection and housekeeping: SQLite's own mechanisms ---------------

    def data_version(self) -> int:
        """Changes whenever another connection commits (``PRAGMA data_version``)."""
        with self._db.locked() as conn:
            return int(conn.execute("PRAGMA data_version").fetchone()[0])

    def changes(self) -> int:
        """The interface's change token: :meth:`data_version`."""
        return self.data_version()

    def checkpoint(self) -> None:
        """Copy committed WAL pages back into the database, without waiting
        for or blocking anyone (a PASSIVE checkpoint)."""
        with self._db.locked() as conn:
            conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()

    def housekeep(self) -> None:
        """The interface's periodic upkeep: :meth:`checkpoint`."""
        self.checkpoint()

    def prune_batch(
        self,
        cutoff: float,
        *,
        after: PruneCursor | None = None,
        batch: int = PRUNE_BATCH,
        report: PruneReport | None = None,
        lock_wait: float | None = None,
    ) -> tuple[PruneCursor | None, bool]:
        return prune_store_batch(
            self._db, cutoff, after=after, batch=batch, report=report, lock_wait=lock_wait
        )

    def prune_runtimes(
        self, cutoff: float, report: PruneReport | None = None, *, lock_wait: float | None = None
    ) -> int:
        return prune_store_runtimes(self._db, cutoff, report, lock_wait=lock_wait)


if TYPE_CHECKING:
    # Static proof, checked by mypy: SQLiteStore implements the Store
    # interface (a method missing or with another signature fails here).
    # tests/test_store_interface.py checks the method sets at run time.
    _IMPLEMENTS: type[Store] = SQLiteStore
