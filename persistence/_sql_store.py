"""What both SQL stores share: the ``Store`` interface's methods, over a ``_sql.Db``.

:class:`SqlStore` is the common half of :class:`~persistence.SQLiteStore` and
:class:`~persistence.PostgresStore`: every rule-bearing method delegates to
the module that implements it (``_append``, ``_runtimes``, ``_queries``,
``_pruning``), which speaks SQL to the store's :class:`~persistence._sql.Db`.
Each subclass adds only what is its backend's own (opening, change
detection, upkeep, the file or server identity).

Invariant: a write the database rolled back to resolve a conflict with
another writer (``WriteConflict``: a deadlock or serialization failure on
PostgreSQL; never on SQLite, whose writers queue) is tried again, whole, up
to ``CONFLICT_RETRIES`` times; nothing of a rolled-back try was written.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Sequence
from typing import TypeVar

from persistence import _append, _queries, _runtimes
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
from persistence._sql import CONFLICT_RETRIES, Db, WriteConflict
from persistence._states import RunState

_T = TypeVar("_T")


class SqlStore:
    """The ``Store`` methods both backends share; ``_db`` is set by the subclass."""

    _db: Db
    path: str
    readonly: bool

    def _retrying(self, write: Callable[[], _T]) -> _T:
        for attempt in range(CONFLICT_RETRIES):
            try:
                return write()
            except WriteConflict:
                if attempt == CONFLICT_RETRIES - 1:
                    raise
        raise AssertionError("unreachable")

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
        return self._retrying(
            lambda: _append.append_groups(
                self._db, groups, heartbeats, writer=writer, foreign=foreign
            )
        )

    def terminate_tree(
        self, run_id: str, reason: str | None, *, source: str, origin: str | None = None
    ) -> tuple[AppendOutcome, list[str]]:
        return self._retrying(
            lambda: _append.terminate_tree(self._db, run_id, reason, source=source, origin=origin)
        )

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
