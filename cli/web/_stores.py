"""The dashboard's access to the store: read-only for a read, a writable open only for an action.

Invariants: a page or a live update reads through a read-only store
(``persistence.open_store(readonly=True)``, as ``proctor runs list`` does)
and never writes it; only an action opens it writable, after the same
read-only check ``proctor cancel`` makes first (so a missing or foreign
store is an error, never a new store), and closes it before answering.

Reads on PostgreSQL share one read-only connection, kept between requests
and used by one request at a time, so a tab polling every second costs a
query, not a new connection (a connect, authentication and a server
process, each time). A read that fails with a ``StoreError`` drops it; the
next read connects again. Reads on SQLite open the file for each call:
that costs a file open, and it always reads the file now at the path.
:meth:`Stores.close` (the app's shutdown) closes the shared connection.
The calls are blocking; the routes run them off the event loop
(``starlette.concurrency.run_in_threadpool``).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TypeVar

import persistence
from persistence import DEFAULT_BUSY_TIMEOUT, Store, StoreError, StoreTarget

T = TypeVar("T")


class Stores:
    """The store ``target`` names, for the dashboard's reads and writes (thread-safe)."""

    def __init__(self, target: StoreTarget, *, busy_timeout: float = DEFAULT_BUSY_TIMEOUT) -> None:
        self._target = target
        self._busy_timeout = busy_timeout
        self._lock = threading.Lock()
        self._reader: Store | None = None  # PostgreSQL's shared read-only store, under _lock

    @property
    def shown(self) -> str:
        """The store as messages show it (its password hidden)."""
        return self._target.display

    def read(self, fn: Callable[[Store], T]) -> T:
        """``fn(store)`` on a read-only store, closed afterwards.

        Raises:
            StoreError: the store cannot be opened or read (its message shows
                the target redacted).
        """
        if self._target.is_file:
            with self._open(readonly=True) as store:
                return fn(store)
        with self._lock:
            if self._reader is None:
                self._reader = self._open(readonly=True)
            try:
                return fn(self._reader)
            except StoreError:
                self._drop_reader()  # the next read connects again
                raise

    def close(self) -> None:
        """Close the shared read-only connection, if one is open (idempotent)."""
        with self._lock:
            self._drop_reader()

    def _drop_reader(self) -> None:
        reader, self._reader = self._reader, None
        if reader is not None:
            reader.close()

    def write(self, fn: Callable[[Store], T]) -> T:
        """``fn(store)`` on a writable store that must exist already, closed afterwards."""
        self._open(readonly=True).close()  # judged as a reader judges it: never created here
        with self._open(readonly=False) as store:
            return fn(store)

    def _open(self, *, readonly: bool) -> Store:
        options: dict[str, object] = {"readonly": readonly, "busy_timeout": self._busy_timeout}
        if not self._target.is_file:
            options["pool_size"] = 1  # one request, one connection
        return persistence.open_store(self._target, **options)
