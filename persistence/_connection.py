"""The SQLite connection of one store: opening, pragmas, WAL, transactions, errors.

A :class:`SharedConnection` is one ``sqlite3`` connection shared by the
threads of one store object, behind one re-entrant lock. Everything that
is SQLite's own business and not a rule of Proctor lives here: how a file
is opened (read-only, in a read-only folder, never created by a reader),
the pragmas a writer sets, switching to WAL, ``BEGIN IMMEDIATE`` write
transactions and read snapshots, and turning ``sqlite3`` errors into the
``StoreError`` family.

Invariants:

- Every statement runs under the lock and inside :func:`translate`: no
  ``sqlite3`` exception leaves this package, and two threads never
  interleave statements on one connection.
- A reader never creates or changes a file: read-only opens go through a
  ``mode=ro`` URI (or ``immutable=1`` only when no ``-wal`` exists).
- A write transaction is committed at the end of its block unless the
  block rolled it back, and rolled back if the block raises.
- A file is judged "not a Proctor store (empty)" only after it stayed
  without tables for the busy timeout while it looked like a store another
  process is creating (0 bytes, a WAL header, a rollback journal); a
  directory or a missing folder is named as such, never SQLite's "unable
  to open".
"""

from __future__ import annotations

import contextlib
import math
import os
import sqlite3
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, Final, Literal, get_args
from urllib.parse import quote

from persistence._errors import InvalidArgument, NotAProctorStore, StoreError, StoreLocked
from persistence._file import check_shm_writable, damage
from persistence._schema import check_identity, migrate
from persistence._sql import Dialect

Synchronous = Literal["OFF", "NORMAL", "FULL", "EXTRA"]
#: The levels of ``PRAGMA synchronous``, weakest first.
SYNCHRONOUS_LEVELS: Final = get_args(Synchronous)

#: How long a connection waits for another one's write lock before StoreLocked.
DEFAULT_BUSY_TIMEOUT: Final = 5.0


class SQLiteConn(sqlite3.Connection):
    """A ``sqlite3`` connection that names its dialect (``_sql.Conn``)."""

    dialect: Final[Dialect] = "sqlite"


class SharedConnection:
    """One connection to a store file, shared by threads behind one lock (a ``_sql.Db``)."""

    dialect: Final[Dialect] = "sqlite"

    def __init__(self, conn: SQLiteConn, path: str) -> None:
        self.conn = conn
        self.lock = threading.RLock()
        self.path = path

    @contextlib.contextmanager
    def locked(self) -> Iterator[SQLiteConn]:
        """The connection, for statements of one thread, errors translated."""
        with self.lock, translate(self.path):
            yield self.conn

    @contextlib.contextmanager
    def transaction(self) -> Iterator[SQLiteConn]:
        """One write transaction: committed at the end of the block unless the
        block rolled it back, rolled back if the block raises."""
        with self.lock, translate(self.path):
            conn = self.conn
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise
            if conn.in_transaction:
                conn.execute("COMMIT")

    @contextlib.contextmanager
    def snapshot(self) -> Iterator[None]:
        """Reads in this block see one state of the store, as of its first read.

        (One read transaction; in WAL mode it never blocks the writer.) Other
        threads using this connection wait until the block ends.
        """
        with self.lock:
            if self.conn.in_transaction:  # inside an outer snapshot: that one holds
                yield
                return
            with translate(self.path):
                self.conn.execute("BEGIN")
            try:
                yield
            finally:
                if self.conn.in_transaction:
                    self.conn.execute("COMMIT")

    def query(self, sql: str, params: Sequence[Any]) -> list[dict[str, Any]]:
        """Rows as dicts of column -> value."""
        # Plain sqlite3 on the read path: sqlite-utils (schema and migrations)
        # costs ~80 ms to import, a third of `proctor runs list`'s budget.
        with self.lock, translate(self.path):
            cursor = self.conn.execute(sql, params)
            columns = [c[0] for c in cursor.description]
            return [dict(zip(columns, row, strict=True)) for row in cursor.fetchall()]

    def write(self, sql: str, params: Sequence[Any]) -> None:
        """One statement in its own (autocommit) transaction."""
        with self.lock, translate(self.path):
            self.conn.execute(sql, params)

    @contextlib.contextmanager
    def lock_wait(self, seconds: float) -> Iterator[None]:
        """The connection's busy timeout is ``seconds`` in this block."""
        with self.lock:
            before = self.conn.execute("PRAGMA busy_timeout").fetchone()[0]
            self.conn.execute(f"PRAGMA busy_timeout = {int(seconds * 1000)}")
            try:
                yield
            finally:
                self.conn.execute(f"PRAGMA busy_timeout = {int(before)}")

    def close(self) -> None:
        with self.lock:
            self.conn.close()


def check_connection_settings(*, synchronous: str, busy_timeout: float) -> None:
    """Refuse a ``synchronous`` level SQLite does not know (it would ignore
    it silently) and a busy timeout that is not a finite count of seconds."""
    if synchronous not in SYNCHRONOUS_LEVELS:
        levels = ", ".join(SYNCHRONOUS_LEVELS)
        raise InvalidArgument(f"synchronous must be one of {levels}, got {synchronous!r}")
    if (
        isinstance(busy_timeout, bool)
        or not isinstance(busy_timeout, int | float)
        or not math.isfinite(busy_timeout)
        or busy_timeout < 0
    ):
        raise InvalidArgument(
            f"busy_timeout must be a finite number of seconds >= 0, got {busy_timeout!r}"
        )


def connect(
    spath: str,
    *,
    readonly: bool,
    busy_timeout: float,
    synchronous: Synchronous = "NORMAL",
    autocheckpoint: int | None = None,
    create: bool = True,
) -> SQLiteConn:
    """Open the store file at ``spath``: checked, and unless ``readonly``,
    switched to WAL, configured and migrated. See ``SQLiteStore.open``.

    A read-only open of a file with no tables yet, that another process may
    be creating (0 bytes, or a ``-wal`` beside it), waits up to
    ``busy_timeout`` for its schema, as a write waits for a lock: a store
    being made is not "empty" a moment before it is one. Still empty after
    that, it is not a Proctor store.

    Raises:
        StoreError: the file is missing (readonly), a directory, unreadable, locked past
            ``busy_timeout``, not a Proctor store, or from a newer version.
        InvalidArgument: ``synchronous`` is not one of SQLite's levels, or
            ``busy_timeout`` is not a finite number of seconds >= 0.
    """
    check_connection_settings(synchronous=synchronous, busy_timeout=busy_timeout)
    if os.path.isdir(spath):  # SQLite would say "unable to open", or "does not exist"
        raise StoreError(f"{spath} is a directory, not a Proctor store: give the store file's path")
    folder = os.path.dirname(spath) or "."
    if not os.path.isdir(folder):  # SQLite would say "unable to open database file"
        raise StoreError(f"cannot open {spath}: the folder {folder} does not exist")
    if readonly:
        if not Path(spath).is_file():
            raise StoreError(f"no Proctor store at {spath}: the file does not exist")
        deadline = time.monotonic() + busy_timeout
        while True:
            try:
                return _connect_readonly(spath, busy_timeout)
            except _EmptyStore:
                # Another process may be creating it: judge it once it had time to be made.
                if not _maybe_in_creation(spath) or time.monotonic() >= deadline:
                    raise
            time.sleep(0.005)
    return _connect(
        spath,
        None,
        busy_timeout=busy_timeout,
        synchronous=synchronous,
        autocheckpoint=autocheckpoint,
        create=create,
    )


class _EmptyStore(NotAProctorStore):
    """A SQLite file with no tables (0 bytes, or a header only): maybe a store
    another process is creating."""


def _maybe_in_creation(spath: str) -> bool:
    """Whether an empty store file may be one another process is creating.

    A creator's file is 0 bytes from its ``connect`` until it switches to
    WAL (a rollback ``-journal`` beside it meanwhile), then a header marked
    WAL (bytes 18 and 19 are 2) with no tables until its schema commits. A
    file in rollback mode with no tables and no journal (another program's
    empty database) is not being made a store.
    """
    try:
        with open(spath, "rb") as file:
            header = file.read(20)
    except OSError:
        return False
    return len(header) < 20 or header[18:20] == b"\x02\x02" or os.path.exists(f"{spath}-journal")


def _connect_readonly(spath: str, busy_timeout: float) -> SQLiteConn:
    """One read-only open; in a read-only folder, of the file as an immutable snapshot."""
    try:
        return _connect(spath, f"file:{quote(spath)}?mode=ro", busy_timeout=busy_timeout)
    except StoreError as exc:
        if isinstance(exc, _EmptyStore) or not _in_read_only_folder(spath, exc):
            raise
    # See _in_read_only_folder: with no WAL, the file is all there is.
    target = f"file:{quote(spath)}?mode=ro&immutable=1"
    return _connect(spath, target, busy_timeout=busy_timeout)


def _connect(
    spath: str,
    readonly_uri: str | None,
    *,
    busy_timeout: float,
    synchronous: Synchronous = "NORMAL",
    autocheckpoint: int | None = None,
    create: bool = True,
) -> SQLiteConn:
    """:func:`connect`'s work: read-only through ``readonly_uri``, else read-write."""
    readonly = readonly_uri is not None
    if readonly_uri is not None:
        target, uri = readonly_uri, True
    else:
        check_shm_writable(spath)  # SQLite would crash the process (SIGBUS)
        target, uri = (spath, False) if create else (f"file:{quote(spath)}?mode=rw", True)
    try:
        conn = sqlite3.connect(
            target,
            uri=uri,
            timeout=busy_timeout,
            isolation_level=None,  # we issue BEGIN/COMMIT ourselves
            check_same_thread=False,  # guarded by SharedConnection.lock
            factory=SQLiteConn,
        )
    except sqlite3.Error as exc:
        raise StoreError(f"cannot open {spath}: {exc}") from exc
    try:
        with translate(spath):
            if readonly:
                version = check_identity(conn, spath)
                if version == 0:
                    raise _EmptyStore(f"{spath} is not a Proctor store: it is empty")
            else:
                # WAL: readers never block the writer, and the CLI can read
                # while a runtime writes. NORMAL in WAL survives a crash of
                # the process; FULL also survives power loss (an fsync per commit).
                check_identity(conn, spath)
                enable_wal(conn, busy_timeout)
                conn.execute(f"PRAGMA synchronous = {synchronous}")
                if autocheckpoint is not None:
                    conn.execute(f"PRAGMA wal_autocheckpoint = {int(autocheckpoint)}")
                migrate(conn, spath)
    except BaseException:
        conn.close()
        raise
    return conn


def enable_wal(conn: sqlite3.Connection, busy_timeout: float) -> None:
    """Switch a new store to WAL, waiting up to the busy timeout.

    SQLite answers "locked" at once, without its busy handler, when other
    connections hold the file while the first one switches its journal mode:
    several processes creating one store together (a worker and `proctor
    start`, say). Once one switch is done the others find WAL and go on.
    """
    deadline = time.monotonic() + busy_timeout
    while True:
        try:
            conn.execute("PRAGMA journal_mode = WAL")
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() >= deadline:
                raise
            time.sleep(0.005)
        else:
            return


#: SQLite's primary result codes for "cannot create the -shm index beside it".
_SQLITE_READONLY: Final = 8
_SQLITE_CANTOPEN: Final = 14


def _in_read_only_folder(path: str, exc: StoreError) -> bool:
    """Whether a read-only open failed only because the folder is read-only.

    Reading a WAL-mode database needs its ``-shm`` index, which SQLite
    creates beside it; in a folder this process cannot write (permissions,
    a read-only mount) a plain read-only open fails ("attempt to write a
    readonly database"). With no ``-wal`` file, no runtime has the store
    open and the main file holds every commit, so it is then read as an
    immutable snapshot, as SQLite documents for read-only media. A runtime
    that writes the store has its ``-wal`` and ``-shm`` beside it, and they
    are used as usual.
    """
    cause = exc.__cause__
    code = getattr(cause, "sqlite_errorcode", None)
    if not isinstance(cause, sqlite3.OperationalError) or code is None:
        return False
    return code & 0xFF in (_SQLITE_READONLY, _SQLITE_CANTOPEN) and not os.path.exists(f"{path}-wal")


@contextlib.contextmanager
def translate(path: str) -> Iterator[None]:
    """Turn sqlite3 errors into the StoreError family, with the path named."""
    try:
        yield
    except sqlite3.OperationalError as exc:
        msg = str(exc)
        if "locked" in msg or "busy" in msg:
            raise StoreLocked(
                f"{path} is locked by another process (waited past the busy timeout)"
            ) from exc
        raise damage(path, exc) or StoreError(f"{path}: {msg}") from exc
    except sqlite3.ProgrammingError as exc:  # e.g. used after close(): our bug, not the file's
        raise StoreError(f"{path}: {exc}") from exc
    except sqlite3.DatabaseError as exc:
        raise damage(path, exc) or NotAProctorStore(
            f"{path} is not a Proctor store: {exc}"
        ) from exc
