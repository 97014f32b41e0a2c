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

import os
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from persistence._connection import (
    DEFAULT_BUSY_TIMEOUT,
    SharedConnection,
    SQLiteConn,
    Synchronous,
    connect,
)
from persistence._file import FileIdentity, check_same_file, identify
from persistence._interface import Store
from persistence._sql_store import SqlStore


class SQLiteStore(SqlStore):
    """One connection to a Proctor store file. Thread-safe; one writer per process.

    Use :meth:`open`. A store opened with ``readonly=True`` never creates or
    changes anything, which is what the CLI's reading commands rely on.
    The methods are the :class:`~persistence.Store` interface's (documented
    there and in the modules that implement them), plus :meth:`open`,
    :meth:`data_version`, :meth:`checkpoint` and :meth:`check_file`.
    """

    _db: SharedConnection

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


if TYPE_CHECKING:
    # Static proof, checked by mypy: SQLiteStore implements the Store
    # interface (a method missing or with another signature fails here).
    # tests/test_store_interface.py checks the method sets at run time.
    _IMPLEMENTS: type[Store] = SQLiteStore
