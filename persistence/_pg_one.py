"""One PostgreSQL connection shared by the threads of a store object, without a pool.

What most store objects need: a runtime's Journal and ControlInbox each use
their store from one thread, and a ``Client`` or a CLI command holds no
threads of its own (A5). ``psycopg_pool`` starts a scheduler and worker
threads and checks each connection at the borrow (a round trip); this is
the SQLite store's model instead (one connection behind one lock), with the
same interface as the pool's (``connection()``, ``close()``), so ``PgDb``
uses either. A store object opened with ``pool_size`` above 1 (the
runtime's facade, read by the caller's threads at once) gets the pool.

Invariants: one thread at a time holds the connection (a re-entrant lock,
held for the whole block); a connection found closed or broken is replaced
by a new one at the next borrow, made with the same settings.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterator
from typing import Any

import psycopg


class OneConnection:
    """A lazily made connection, lent to one thread at a time."""

    def __init__(self, connect: Callable[[], psycopg.Connection[Any]]) -> None:
        self._connect = connect
        self._lock = threading.RLock()
        self._conn: psycopg.Connection[Any] | None = None
        self._closed = False

    @contextlib.contextmanager
    def connection(self) -> Iterator[psycopg.Connection[Any]]:
        """The connection, for this thread, until the block ends.

        Raises:
            psycopg.OperationalError: no connection could be made.
        """
        with self._lock:
            if self._closed:
                raise psycopg.OperationalError("the store is closed")
            if self._conn is None or self._conn.closed or self._conn.broken:
                self.discard()
                self._conn = self._connect()
            yield self._conn

    @property
    def broken(self) -> bool:
        """Whether the connection failed (the server dropped it, say)."""
        conn = self._conn
        return conn is not None and (conn.closed or conn.broken)

    def discard(self) -> None:
        """Forget the connection (it failed): the next borrow makes a new one."""
        with self._lock:
            if self._conn is not None:
                self._conn.close()
            self._conn = None

    def close(self) -> None:
        with self._lock:
            self._closed = True
            self.discard()
