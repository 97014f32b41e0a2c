"""Reading runs from a store, blocking or awaited: what Runtime and Client share.

:class:`StoreReads` is the read half of the public API: a run's record, the
list of runs, a run's event log, the restarts of a run. Both the embedded
:class:`Runtime` and the actor-free ``Client`` inherit it, so the two read
the same way.

Invariants:

* every read first checks that its owner is open (:meth:`_check_open`), so a
  read of a closed runtime or client raises ``RuntimeClosed``, never a store
  error of a closed connection;
* a store's owner closes its connection only once the calls under way on it
  have ended (:class:`InFlight`): a call that began before the close ends as
  it would have, one that begins after raises ``RuntimeClosed`` having
  written nothing (A3), never a store error of a closed connection;
* an ``*_async`` twin never runs a query on the event loop's thread (A1): the
  query runs in the loop's default executor, and the loop only awaits it.
  SQLite serialises the connection's users behind one lock, so a read the
  loop awaits may wait for a commit; the loop does not.
"""

from __future__ import annotations

import abc
import asyncio
import contextlib
import threading
from collections.abc import Callable, Iterator, Sequence
from typing import TypeVar

from persistence import (
    EventRecord,
    Instant,
    RunPage,
    RunRecord,
    RunState,
    Store,
    run_query,
)

T = TypeVar("T")


class InFlight:
    """The store calls under way on one facade, so that its close waits for them."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._count = 0

    @contextlib.contextmanager
    def call(self, check_open: Callable[[], None]) -> Iterator[None]:
        """One call: ``check_open`` (which raises once closed), then the body."""
        with self._cond:
            check_open()
            self._count += 1
        try:
            yield
        finally:
            with self._cond:
                self._count -= 1
                if not self._count:
                    self._cond.notify_all()

    def settle(self, close: Callable[[], None] = lambda: None) -> None:
        """``close()`` (after which ``check_open`` raises), then wait for the
        calls under way to end. Each is one store operation, bounded by the
        store's busy timeout."""
        with self._cond:
            close()
            self._cond.wait_for(lambda: self._count == 0)


class StoreReads(abc.ABC):
    """The reads of the public API, over ``self._store``.

    Subclasses set ``_store`` and ``_in_flight`` and define :meth:`_check_open`.
    """

    _store: Store
    _in_flight: InFlight

    def _using(self) -> contextlib.AbstractContextManager[None]:
        """Around one store operation: refused once closed, waited for by close."""
        return self._in_flight.call(self._check_open)

    @abc.abstractmethod
    def _check_open(self) -> None:
        """Raise ``RuntimeClosed`` (or the reason the owner stopped) once closed."""

    async def _off_loop(self, read: Callable[..., T], /, *args: object, **kwargs: object) -> T:
        """``read(*args, **kwargs)`` in the loop's default executor, awaited (A1),
        in a copy of the caller's context (its trace, for a start: O2)."""
        self._check_open()
        return await asyncio.to_thread(self._guarded, read, *args, **kwargs)

    def _guarded(self, call: Callable[..., T], /, *args: object, **kwargs: object) -> T:
        with self._using():
            return call(*args, **kwargs)

    def get_run(self, run_id: str) -> RunRecord:
        """The run's current record.

        Raises:
            RunNotFound: no such run.
            RuntimeClosed: closed.
        """
        with self._using():
            return self._store.get_run(run_id)

    async def get_run_async(self, run_id: str) -> RunRecord:
        """Like :meth:`get_run`, without blocking the event loop (A1)."""
        return await self._off_loop(self.get_run, run_id)

    def list_runs(
        self,
        status: RunState | str | Sequence[RunState | str] | None = None,
        *,
        workflow: str | None = None,
        parent_run_id: str | None = None,
        limit: int | None = None,
        since: Instant | None = None,
        until: Instant | None = None,
        ended_since: Instant | None = None,
        ended_until: Instant | None = None,
        cursor: str | None = None,
    ) -> list[RunRecord]:
        """Runs in the store, newest first: the runs of :meth:`list_runs_page`.

        Raises:
            InvalidArgument: see :meth:`list_runs_page`.
            RuntimeClosed: closed.
        """
        return self.list_runs_page(
            status,
            workflow=workflow,
            parent_run_id=parent_run_id,
            limit=limit,
            since=since,
            until=until,
            ended_since=ended_since,
            ended_until=ended_until,
            cursor=cursor,
        ).runs

    async def list_runs_async(
        self,
        status: RunState | str | Sequence[RunState | str] | None = None,
        *,
        workflow: str | None = None,
        parent_run_id: str | None = None,
        limit: int | None = None,
        since: Instant | None = None,
        until: Instant | None = None,
        ended_since: Instant | None = None,
        ended_until: Instant | None = None,
        cursor: str | None = None,
    ) -> list[RunRecord]:
        """Like :meth:`list_runs`, without blocking the event loop (A1)."""
        return await self._off_loop(
            self.list_runs,
            status,
            workflow=workflow,
            parent_run_id=parent_run_id,
            limit=limit,
            since=since,
            until=until,
            ended_since=ended_since,
            ended_until=ended_until,
            cursor=cursor,
        )

    def list_runs_page(
        self,
        status: RunState | str | Sequence[RunState | str] | None = None,
        *,
        workflow: str | None = None,
        parent_run_id: str | None = None,
        limit: int | None = None,
        since: Instant | None = None,
        until: Instant | None = None,
        ended_since: Instant | None = None,
        ended_until: Instant | None = None,
        cursor: str | None = None,
    ) -> RunPage:
        """One page of runs, newest first (A6); ``next_cursor`` reads the next.

        Filters (all optional, combined with AND):

        * ``status``: a state, its name (``"running"``) or a sequence of them;
        * ``workflow``: the full name, or the short name after its last dot
          (``"order"`` matches ``"shop.orders.order"``);
        * ``parent_run_id``: the run's child runs;
        * ``since`` / ``until``: created at or after / before (half-open);
        * ``ended_since`` / ``ended_until``: the same on the end time (a run
          not ended never matches these).

        A time is epoch seconds, an aware ``datetime``, or a text: ISO 8601
        (UTC without an offset) or a duration ago (``"30m"``, ``"2h"``,
        ``"1d"``). ``limit`` runs per page at most (None: all of them). ``cursor``: the
        ``next_cursor`` of the previous page, with the same filters. Paging
        is by key (``created_at``, ``run_id``), as Temporal's and DBOS's
        listings page: it never repeats a run, and never skips one that
        existed when the first page was read, whatever is created meanwhile.

        Raises:
            InvalidArgument: a status that names no state, a time that is
                neither ISO 8601 nor a duration, a naive ``datetime``, a
                negative ``limit``, a cursor no listing gave out
                (``InvalidArgumentType`` for an argument of the wrong type).
            RuntimeClosed: closed.
        """
        self._check_open()
        query = run_query(
            status=status,
            workflow=workflow,
            parent_run_id=parent_run_id,
            limit=limit,
            since=since,
            until=until,
            ended_since=ended_since,
            ended_until=ended_until,
            cursor=cursor,
        )
        with self._using():
            return self._store.list_runs_page(query)

    async def list_runs_page_async(
        self,
        status: RunState | str | Sequence[RunState | str] | None = None,
        *,
        workflow: str | None = None,
        parent_run_id: str | None = None,
        limit: int | None = None,
        since: Instant | None = None,
        until: Instant | None = None,
        ended_since: Instant | None = None,
        ended_until: Instant | None = None,
        cursor: str | None = None,
    ) -> RunPage:
        """Like :meth:`list_runs_page`, without blocking the event loop (A1)."""
        return await self._off_loop(
            self.list_runs_page,
            status,
            workflow=workflow,
            parent_run_id=parent_run_id,
            limit=limit,
            since=since,
            until=until,
            ended_since=ended_since,
            ended_until=ended_until,
            cursor=cursor,
        )

    def events(self, run_id: str) -> list[EventRecord]:
        """The run's event log, in order.

        Raises:
            RunNotFound: no such run.
            RuntimeClosed: closed.
        """
        with self._using():
            self._store.get_run(run_id)
            return self._store.events(run_id)

    async def events_async(self, run_id: str) -> list[EventRecord]:
        """Like :meth:`events`, without blocking the event loop (A1)."""
        return await self._off_loop(self.events, run_id)

    def restarts(self, run_id: str) -> list[str]:
        """The ids of the runs that restart ``run_id`` (A7), oldest first;
        empty if it was never restarted. The other direction is the new
        run's ``RunRecord.restarted_from``.

        A read of its own rather than a field of every ``RunRecord``: most
        reads of a run never ask, and a field would cost each of them a
        query.

        Raises:
            RunNotFound: no such run.
            RuntimeClosed: closed.
        """
        self._check_open()
        self._store.get_run(run_id)
        return self._store.restarted_as(run_id)

    async def restarts_async(self, run_id: str) -> list[str]:
        """Like :meth:`restarts`, without blocking the event loop (A1)."""
        return await self._off_loop(self.restarts, run_id)
