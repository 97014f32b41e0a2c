"""The ``Store`` interface: everything the actors and the CLI need from a store.

A :class:`Store` is a ``typing.Protocol``: the SQLite store
(``SQLiteStore``) is one implementation, and a PostgreSQL store (DESIGN
P1-P3) is to be a second one of the same interface. Callers type against
``Store``; only the code that opens a store names its class.

Invariants every implementation keeps (the suite is their contract test):

- Fencing holds whoever writes (``_fencing``): an append applies the rules
  in the transaction that writes, and a refused group leaves no trace.
- A terminal run never changes state again.
- Reads never write, so a reading tool may open a store read-only.
- Liveness never compares two hosts' wall clocks (P3).
- Nothing backend-specific crosses this interface: no SQL, no
  ``PRAGMA``, no connection object. A method that only makes sense for
  one backend says what the others do instead (``changes``,
  ``housekeep``, ``check_same_store``, ``opened``).
- Errors are the ``StoreError`` family (``StoreLocked``, ``StoreCorrupt``,
  ``StoreReplaced``, ``NotAProctorStore``, ...), never a driver's own.
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from typing import Protocol

from persistence._file import FileIdentity
from persistence._leases import LeaseObserver
from persistence._listing import RunPage, RunQuery
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


class Store(Protocol):
    """One open store: the append-only event log and its projections.

    Thread-safe; one writer per process (a runtime's Journal). Every method
    may raise ``StoreError`` (locked past the busy timeout, damaged,
    replaced); only the other errors are listed per method.
    """

    @property
    def path(self) -> str:
        """Where the store is: a file path, or a server store's URL (without secrets)."""
        ...

    @property
    def readonly(self) -> bool:
        """Whether this store was opened for reading only (it then never writes)."""
        ...

    @property
    def opened(self) -> FileIdentity | None:
        """The identity of the file (and ``-wal``) this store opened; None for
        a store that is not a file (a server store), which skips file checks."""
        ...

    def close(self) -> None:
        """Release the connection; the object is unusable afterwards."""
        ...

    def __enter__(self) -> Store:
        """``with store:`` closes it at the end of the block."""
        ...

    def __exit__(self, *exc: object) -> None: ...

    # -- writing ------------------------------------------------------------

    def append(
        self, events: Sequence[NewEvent], *, writer: str | None = None
    ) -> list[AppendOutcome]:
        """Append one atomic group of events; all are written or none are."""
        ...

    def append_groups(
        self,
        groups: Sequence[Sequence[NewEvent]],
        heartbeats: Sequence[HeartbeatRecord] = (),
        *,
        writer: str | None = None,
        foreign: set[str] | None = None,
    ) -> list[list[AppendOutcome]]:
        """Append several atomic groups in one transaction (group commit),
        with fenced writes: each group is accepted or refused whole
        (``Refused.fenced`` when ``writer`` does not own the run). Heartbeats
        of runs ``writer`` lost are dropped and their run ids put in ``foreign``."""
        ...

    def terminate_tree(
        self, run_id: str, reason: str | None, *, source: str, origin: str | None = None
    ) -> tuple[AppendOutcome, list[str]]:
        """T1 and T4 in one transaction: the run's outcome, and the
        descendants this call terminated."""
        ...

    # -- runtimes and leases --------------------------------------------------

    def register_runtime(self, owner: str, *, ttl: float, version: str | None = None) -> None:
        """``owner`` (this process) is alive and renews within ``ttl`` seconds."""
        ...

    def renew_lease(self, owner: str, *, ttl: float) -> bool:
        """Renew ``owner``'s lease; False (nothing changed) if it stopped or
        was revoked: it must stop its runs (self-fencing)."""
        ...

    def release_runtime(self, owner: str) -> None:
        """``owner`` stopped on purpose: its unfinished runs may be resumed at once."""
        ...

    def expire_lease(self, owner: str, why: str = "ended at once") -> None:
        """End ``owner``'s lease now; its next renewal fails."""
        ...

    def runtimes(self) -> list[RuntimeRecord]:
        """Every registered runtime, oldest first."""
        ...

    def orphaned_runs(
        self,
        workflows: Sequence[str],
        *,
        me: str,
        observer: LeaseObserver | None = None,
        limit: int = 100,
    ) -> list[tuple[RunRecord, str]]:
        """Unfinished runs of ``workflows`` whose owner is dead and that nobody
        else will resume, each with why; an owner found silent by ``observer``
        is revoked (compare-and-swap on its renewal counter) first."""
        ...

    def owned_elsewhere(self, run_ids: Sequence[str], *, me: str) -> dict[str, str | None]:
        """Of ``run_ids``, those the store says are not ``me``'s: run id -> owner."""
        ...

    # -- control requests and claims -----------------------------------------

    def control_requests(self, *, after: int, limit: int = 1000) -> list[EventRecord]:
        """Cancel and terminate requests with global ``seq > after``, oldest first."""
        ...

    def claimable(self, workflows: Sequence[str], *, limit: int) -> list[RunRecord]:
        """Top-level runs of ``workflows`` nobody owns yet, oldest first."""
        ...

    def changes(self) -> int:
        """A token that changes whenever another connection commits.

        Cheap enough to poll every few milliseconds; equal tokens mean
        nothing new from others (own commits need not change it). SQLite:
        ``PRAGMA data_version``. A server store: a counter its notifications
        (``LISTEN/NOTIFY``) bump, falling back to a cheap query when
        notifications are unavailable.
        """
        ...

    # -- reading ------------------------------------------------------------

    def snapshot(self) -> contextlib.AbstractContextManager[None]:
        """Reads in the block see one state of the store (one read transaction)."""
        ...

    def find_run(self, run_id: str) -> RunRecord | None:
        """The run's projection, or None."""
        ...

    def restarted_as(self, run_id: str) -> list[str]:
        """The ids of the runs that restart ``run_id`` (A7), oldest first."""
        ...

    def get_run(self, run_id: str) -> RunRecord:
        """The run's projection.

        Raises:
            RunNotFound: no run has this id.
        """
        ...

    def list_runs(
        self,
        *,
        status: RunState | str | Sequence[RunState | str] | None = None,
        workflow: str | None = None,
        parent_run_id: str | None = None,
        limit: int | None = None,
    ) -> list[RunRecord]:
        """Runs, newest first, filtered by any of the arguments."""
        ...

    def list_runs_page(self, query: RunQuery) -> RunPage:
        """One page of runs, newest first, filtered by ``query``; its
        ``next_cursor`` reads the next page (keyset pagination, A6)."""
        ...

    def descendants(self, run_id: str, *, unfinished: bool = True) -> list[RunRecord]:
        """The run's child runs, their children, and so on, parents first."""
        ...

    def last_seq(self) -> int:
        """The global sequence number of the newest event (0 for an empty log)."""
        ...

    def events(self, run_id: str, *, after: int = 0) -> list[EventRecord]:
        """The run's events with ``run_seq > after``, in order, each as appended."""
        ...

    def steps(self, run_id: str) -> list[StepRecord]:
        """Every step attempt of the run, in call and attempt order."""
        ...

    # -- housekeeping ---------------------------------------------------------

    def housekeep(self) -> None:
        """Cheap upkeep a runtime asks for about once a second; it never
        waits for or blocks anyone. SQLite: a PASSIVE WAL checkpoint (the
        Journal's connection leaves checkpoints to this). A server store:
        nothing (the server does its own upkeep)."""
        ...

    def check_same_store(self) -> None:
        """Raise unless the store's address still names the store this
        object opened (a file deleted or replaced under a runtime).

        A server store checks that the database is still the one it opened
        (its system identifier), or does nothing.

        Raises:
            StoreReplaced: the store was deleted or replaced by another.
            StoreCorrupt: part of it (SQLite: the ``-wal``) was deleted or replaced.
        """
        ...

    def prune_batch(
        self,
        cutoff: float,
        *,
        after: PruneCursor | None = None,
        batch: int = PRUNE_BATCH,
        report: PruneReport | None = None,
        lock_wait: float | None = None,
    ) -> tuple[PruneCursor | None, bool]:
        """One step of retention: up to ``batch`` runs of trees wholly finished
        before ``cutoff`` (epoch seconds), in one transaction. Returns the
        cursor to pass as ``after`` next time, and whether more candidates may
        follow it (False: the scan reached the end). Counts go into ``report``
        (a dry run when it says so). ``lock_wait``: the most seconds to wait
        for the write lock (default: the store's busy timeout).

        Raises:
            StoreLocked: the write lock was not free within ``lock_wait`` seconds.
        """
        ...

    def prune_runtimes(
        self, cutoff: float, report: PruneReport | None = None, *, lock_wait: float | None = None
    ) -> int:
        """Delete the rows of runtimes gone before ``cutoff`` that own no run; how many.

        Raises:
            StoreLocked: the write lock was not free within ``lock_wait`` seconds.
        """
        ...
