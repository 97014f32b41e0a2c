"""The PostgreSQL store: the ``Store`` interface on a server many hosts share (P1-P3).

:class:`PostgresStore` is :class:`~persistence._sql_store.SqlStore` (every
rule, written once, in ``_append``, ``_runtimes``, ``_queries``...) over a
pool of psycopg 3 connections (``_pg_connection``), with the tables in their
own schema ``proctor`` (``_pg_schema``), so a store can share a database with
the application, as DBOS's system database shares ``dbos``. What is its own:

- Many writers at once (P2). Every write locks the rows it touches first
  (``_row_locks``); a claim skips a row another runtime is claiming
  (``FOR UPDATE SKIP LOCKED``); fencing is the same compare-and-set of the
  run's owner, applied in the transaction that writes, so a runtime that lost
  its lease has every write refused by the database.
- Control by ``LISTEN/NOTIFY`` (``_pg_changes``), with polling as fallback.
- Liveness by observed renewals (P3, ``_leases``): no wall clocks compared.
- Durability is the server's: ``synchronous`` maps to the session's
  ``synchronous_commit`` (``OFF`` -> ``off``; ``NORMAL``, ``FULL``,
  ``EXTRA`` -> ``on``, the server's default, which waits for the WAL flush).

``housekeep`` does nothing (the server vacuums and checkpoints itself), and
``opened`` is None: there is no file to watch. ``check_same_store`` checks
the server's system identifier and the database's oid, so a database
dropped and created again under a runtime is noticed.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any, Final
from urllib.parse import urlsplit, urlunsplit

from persistence._errors import InvalidArgument, StoreReplaced
from persistence._file import FileIdentity
from persistence._pg_changes import ChangeFeed
from persistence._pg_connection import DEFAULT_POOL_SIZE, PgDb, translate
from persistence._pg_schema import check_store
from persistence._sql_store import SqlStore

if TYPE_CHECKING:
    from persistence._interface import Store

#: ``synchronous`` (SQLite's levels, the runtime's setting) -> ``synchronous_commit``.
_SYNCHRONOUS_COMMIT: Final = {"OFF": "off", "NORMAL": "on", "FULL": "on", "EXTRA": "on"}


class PostgresStore(SqlStore):
    """A Proctor store in a PostgreSQL database. Thread-safe; use :meth:`open`."""

    _db: PgDb

    def __init__(self, db: PgDb, *, readonly: bool) -> None:
        self._db = db
        self.path = db.path
        self.readonly = readonly
        self._changes: ChangeFeed | None = None
        self._changes_lock = threading.Lock()
        self._identity = self._server_identity()

    @classmethod
    def open(
        cls,
        conninfo: str,
        *,
        shown: str | None = None,
        readonly: bool = False,
        create: bool = True,
        busy_timeout: float = 5.0,
        synchronous: str = "NORMAL",
        autocheckpoint: int | None = None,
        pool_size: int | None = None,
    ) -> PostgresStore:
        """Connect to the database ``conninfo`` names (a ``postgresql://`` URL
        or a libpq connection string) and, unless ``readonly``, create or
        migrate its ``proctor`` schema.

        Args:
            shown: how messages name the store (the URL without its password).
            busy_timeout: seconds a write waits for a row lock (``lock_timeout``)
                before ``StoreLocked``; also the wait for a free pooled connection.
            synchronous: SQLite's level names; see the module docstring.
            autocheckpoint: SQLite's alone; ignored.
            pool_size: connections kept at most by this store object
                (default: the URL's ``pool_size`` query parameter, else 4; a
                runtime opens a few store objects: the facade's, its
                Journal's and its ControlInbox's).

        Raises:
            StoreUnavailable: the server cannot be reached, or refuses the
                connection (down, ``max_connections`` full, a wrong login),
                said at once with the server's reason.
            StoreError: another failure of the server.
            NotAProctorStore: the ``proctor`` schema holds another
                application's tables, or there is no store and ``readonly``
                or ``create=False``.
            SchemaTooNew: written by a newer Proctor.
            InvalidArgument: an unknown ``synchronous`` level, or a
                ``pool_size`` in the URL that is not a whole number >= 1.
        """
        del autocheckpoint  # a WAL checkpoint is the server's business
        level = _SYNCHRONOUS_COMMIT.get(str(synchronous).upper())
        if level is None:
            raise InvalidArgument(
                f"synchronous must be one of {', '.join(_SYNCHRONOUS_COMMIT)}, not {synchronous!r}"
            )
        shown = shown if shown is not None else "PostgreSQL store"
        conninfo, from_url = take_pool_size(conninfo)
        db = PgDb(
            conninfo,
            shown,
            pool_size=pool_size or from_url or DEFAULT_POOL_SIZE,
            synchronous_commit=level,
            busy_timeout=busy_timeout,
            readonly=readonly,
        )
        try:
            with db.locked() as conn, translate(shown):
                check_store(conn.raw, shown, create=create and not readonly)
            return cls(db, readonly=readonly)
        except BaseException:
            db.close()
            raise

    def _server_identity(self) -> tuple[Any, ...]:
        row = self._db.query(
            "SELECT (SELECT system_identifier FROM pg_control_system()) AS system,"
            " (SELECT oid FROM pg_database WHERE datname = current_database()) AS db",
            (),
        )[0]
        return (row["system"], row["db"])

    @property
    def opened(self) -> FileIdentity | None:
        """None: a server store has no file for a runtime to watch."""
        return None

    def check_same_store(self) -> None:
        """Raise unless the database is still the one this store opened.

        Raises:
            StoreReplaced: the database was dropped and created again, or the
                URL now reaches another server.
        """
        if self._server_identity() != self._identity:
            raise StoreReplaced(f"{self.path} is no longer the database this store opened")

    def changes(self) -> int:
        """The change token (``LISTEN/NOTIFY``, polling as fallback; see ``_pg_changes``)."""
        with self._changes_lock:
            if self._changes is None:
                self._changes = ChangeFeed(self._db.connect)
            return self._changes.token()

    def housekeep(self) -> None:
        """Nothing: the server does its own upkeep."""

    def close(self) -> None:
        with self._changes_lock:
            if self._changes is not None:
                self._changes.close()
        self._db.close()

    def __enter__(self) -> PostgresStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def take_pool_size(conninfo: str) -> tuple[str, int | None]:
    """``conninfo`` without its ``pool_size`` query parameter, and its value (None: none).

    Proctor's own parameter of a ``postgresql://`` URL (libpq knows no such
    one, so it is taken out before connecting), as Prisma's
    ``connection_limit``: every process and command given the URL (a
    ``proctor worker``, a ``Client``, the CLI) sizes its pools by it. A
    libpq ``key=value`` string has none.

    Raises:
        InvalidArgument: the value is not a whole number of connections >= 1.
    """
    parts = urlsplit(conninfo)
    if parts.scheme not in ("postgresql", "postgres") or not parts.query:
        return conninfo, None
    items = parts.query.split("&")
    values = [item.partition("=")[2] for item in items if item.partition("=")[0] == "pool_size"]
    if not values:
        return conninfo, None
    value = values[-1]
    if not (value.isascii() and value.isdigit()) or int(value) < 1:
        raise InvalidArgument(
            f"pool_size in a PostgreSQL URL is a whole number of connections >= 1, not {value!r}"
        )
    kept = "&".join(item for item in items if item.partition("=")[0] != "pool_size")
    return urlunsplit(parts._replace(query=kept)), int(value)


if TYPE_CHECKING:
    # Static proof, checked by mypy: PostgresStore implements the Store interface.
    _IMPLEMENTS: type[Store] = PostgresStore
