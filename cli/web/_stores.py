"""The dashboard's access to the store: a fresh connection per request, read-only for a read.

Invariants: a page or a live update opens the store read-only
(``persistence.open_store(readonly=True)``, as ``proctor runs list`` does)
and never writes it; only an action opens it writable, after the same
read-only check ``proctor cancel`` makes first (so a missing or foreign
store is an error, never a new store). Every store is closed before the
call returns, so nothing outlives a request: no connection, no pool thread.
The calls are blocking; the routes run them off the event loop
(``starlette.concurrency.run_in_threadpool``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

import persistence
from persistence import DEFAULT_BUSY_TIMEOUT, Store, StoreTarget

T = TypeVar("T")


class Stores:
    """Opens the store ``target`` names, one connection per call of :meth:`read`/:meth:`write`."""

    def __init__(self, target: StoreTarget, *, busy_timeout: float = DEFAULT_BUSY_TIMEOUT) -> None:
        self._target = target
        self._busy_timeout = busy_timeout

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
        with self._open(readonly=True) as store:
            return fn(store)

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
