"""Reading runs from a store, blocking or awaited: what Runtime and Client share.

:class:`StoreReads` is the read half of the public API: a run's record, the
list of runs, a run's event log. Both the embedded :class:`Runtime` and the
actor-free ``Client`` inherit it, so the two read the same way.

Invariants:

* every read first checks that its owner is open (:meth:`_check_open`), so a
  read of a closed runtime or client raises ``RuntimeClosed``, never a store
  error of a closed connection;
* an ``*_async`` twin never runs a query on the event loop's thread (A1): the
  query runs in the loop's default executor, and the loop only awaits it.
  SQLite serialises the connection's users behind one lock, so a read the
  loop awaits may wait for a commit; the loop does not.
"""

from __future__ import annotations

import abc
import asyncio
import functools
from collections.abc import Callable, Sequence
from typing import TypeVar

from persistence import EventRecord, RunRecord, RunState, Store

T = TypeVar("T")


class StoreReads(abc.ABC):
    """The reads of the public API, over ``self._store``.

    Subclasses set ``_store`` and define :meth:`_check_open`.
    """

    _store: Store

    @abc.abstractmethod
    def _check_open(self) -> None:
        """Raise ``RuntimeClosed`` (or the reason the owner stopped) once closed."""

    async def _off_loop(self, read: Callable[..., T], /, *args: object, **kwargs: object) -> T:
        """``read(*args, **kwargs)`` in the loop's default executor, awaited (A1)."""
        self._check_open()
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(None, functools.partial(read, *args, **kwargs))

    def get_run(self, run_id: str) -> RunRecord:
        """The run's current record.

        Raises:
            RunNotFound: no such run.
            RuntimeClosed: closed.
        """
        self._check_open()
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
    ) -> list[RunRecord]:
        """Runs in the store, newest first; ``parent_run_id`` gives a run's child runs.

        ``status``: a state, its name (``"running"``) or a sequence of them.

        Raises:
            InvalidArgument: a status that names no state, or a negative ``limit``.
            RuntimeClosed: closed.
        """
        self._check_open()
        return self._store.list_runs(
            status=status, workflow=workflow, parent_run_id=parent_run_id, limit=limit
        )

    async def list_runs_async(
        self,
        status: RunState | str | Sequence[RunState | str] | None = None,
        *,
        workflow: str | None = None,
        parent_run_id: str | None = None,
        limit: int | None = None,
    ) -> list[RunRecord]:
        """Like :meth:`list_runs`, without blocking the event loop (A1)."""
        return await self._off_loop(
            self.list_runs, status, workflow=workflow, parent_run_id=parent_run_id, limit=limit
        )

    def events(self, run_id: str) -> list[EventRecord]:
        """The run's event log, in order.

        Raises:
            RunNotFound: no such run.
            RuntimeClosed: closed.
        """
        self._check_open()
        self._store.get_run(run_id)
        return self._store.events(run_id)

    async def events_async(self, run_id: str) -> list[EventRecord]:
        """Like :meth:`events`, without blocking the event loop (A1)."""
        return await self._off_loop(self.events, run_id)
