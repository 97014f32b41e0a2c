"""The PostgreSQL connections of one store: a pool, transactions, errors (a ``_sql.Db``).

A :class:`PgDb` is what :class:`~persistence._connection.SharedConnection`
is for SQLite: the one way the store's SQL reaches the database. It holds a
``psycopg_pool.ConnectionPool``; each statement, transaction or snapshot
borrows one connection for the calling thread and gives it back at the end,
so the threads of one store object (a runtime's facade, a CLI) run in
parallel on their own connections, where SQLite's share one.

Everything that is PostgreSQL's own business lives here: the ``proctor``
schema on the ``search_path``, the session's ``synchronous_commit``,
translating ``?`` placeholders to psycopg's ``%s``, lock timeouts, and
turning psycopg's errors into the ``StoreError`` family with the URL's
password hidden.

Invariants:

- A connection serves one thread at a time: a block (``transaction``,
  ``snapshot``) keeps it for the thread, and statements the thread runs
  inside the block use it, so they see the block's transaction.
- A write transaction commits at the end of its block unless the block
  rolled it back, and is rolled back if the block raises; a connection goes
  back to the pool idle, or broken and then discarded by the pool; one the
  server dropped meanwhile is found at the next borrow and replaced.
- No psycopg exception leaves this module: a deadlock or serialization
  failure is a ``WriteConflict`` (retry the whole write), a lock or
  statement timeout a ``StoreLocked``, a server out of reach (down,
  restarting, its connections full, the connection dropped) a
  ``StoreUnavailable``, everything else a ``StoreError``.
"""

from __future__ import annotations

import contextlib
import functools
import re
import threading
from collections.abc import Iterator, Sequence
from typing import Any, Final

import psycopg
from psycopg import errors as pgerrors
from psycopg.adapt import Dumper
from psycopg.conninfo import conninfo_to_dict
from psycopg.pq import TransactionStatus
from psycopg_pool import ConnectionPool, PoolTimeout

from persistence._errors import InvalidArgument, StoreError, StoreLocked, StoreUnavailable
from persistence._pg_one import OneConnection
from persistence._sql import Cursor, Dialect, WriteConflict

#: The schema every table of a PostgreSQL store lives in (it can share a
#: database with the application, as DBOS's ``dbos`` schema does).
SCHEMA: Final = "proctor"

#: Connections a store object keeps open at most (psycopg_pool's max_size).
DEFAULT_POOL_SIZE: Final = 4

#: TCP keepalives (seconds) and user timeout (ms), on both ends of every
#: connection: a peer gone silent (a cut link) is dropped in seconds, not hours.
_KEEPALIVE_IDLE: Final = 5
_KEEPALIVE_INTERVAL: Final = 2
_KEEPALIVE_COUNT: Final = 3
_TCP_USER_TIMEOUT_MS: Final = 15000
#: Seconds a transaction may sit idle at least before the server ends it.
_MIN_IDLE_IN_TRANSACTION: Final = 5.0

_PLACEHOLDER: Final = re.compile(r"%|\?")


@functools.lru_cache(maxsize=512)
def to_psycopg(sql: str) -> str:
    """``?`` placeholders as psycopg's ``%s`` (and a literal ``%`` doubled).

    The store's SQL never holds a ``?`` inside a string literal.
    """
    return _PLACEHOLDER.sub(lambda m: "%s" if m.group() == "?" else "%%", sql)


class _BoolAsInt(Dumper):
    """Python booleans as the 0/1 integers the store's columns hold (as in SQLite)."""

    oid = psycopg.adapters.types["int8"].oid

    def dump(self, obj: Any) -> bytes:
        return b"1" if obj else b"0"


class PgConn:
    """One borrowed psycopg connection, speaking the store's ``?`` SQL (a ``_sql.Conn``)."""

    dialect: Final[Dialect] = "postgres"

    def __init__(self, conn: psycopg.Connection[Any]) -> None:
        self.raw = conn

    def execute(self, sql: str, parameters: Sequence[Any] = (), /) -> Cursor:
        return self.raw.execute(to_psycopg(sql), parameters)

    def executemany(self, sql: str, seq_of_parameters: Any, /) -> Any:
        with self.raw.cursor() as cursor:
            cursor.executemany(to_psycopg(sql), seq_of_parameters)

    @property
    def in_transaction(self) -> bool:
        return self.raw.info.transaction_status != TransactionStatus.IDLE


class PgDb:
    """A pool of connections to one PostgreSQL database (a ``_sql.Db``)."""

    dialect: Final[Dialect] = "postgres"

    def __init__(
        self,
        conninfo: str,
        shown: str,
        *,
        pool_size: int = DEFAULT_POOL_SIZE,
        synchronous_commit: str = "on",
        busy_timeout: float = 5.0,
        connect_timeout: float = 10.0,
        readonly: bool = False,
    ) -> None:
        #: The URL as it may be shown: its password hidden.
        self.path = shown
        self._busy_timeout = busy_timeout
        self._synchronous_commit = synchronous_commit
        self._readonly = readonly
        self._local = threading.local()
        self._conninfo = conninfo
        defaults: dict[str, Any] = {
            "application_name": "proctor",  # as pg_stat_activity shows it
            "connect_timeout": max(1, round(connect_timeout)),
            # A peer gone silent (a cut link) is noticed in seconds, not hours.
            "keepalives": 1,
            "keepalives_idle": _KEEPALIVE_IDLE,
            "keepalives_interval": _KEEPALIVE_INTERVAL,
            "keepalives_count": _KEEPALIVE_COUNT,
            "tcp_user_timeout": _TCP_USER_TIMEOUT_MS,
        }
        try:
            given = conninfo_to_dict(conninfo)
        except psycopg.ProgrammingError as exc:  # libpq cannot read the URL
            raise InvalidArgument(f"{shown}: {_first_line(exc)}") from None
        # What the URL says wins over our defaults (libpq's own parameters).
        self._kwargs: dict[str, Any] = {
            "autocommit": True,  # we issue BEGIN/COMMIT ourselves
            **{key: value for key, value in defaults.items() if key not in given},
        }
        self._pool: ConnectionPool | OneConnection = (
            OneConnection(self._new_connection)
            if pool_size <= 1
            else ConnectionPool(
                conninfo,
                min_size=1,
                max_size=pool_size,
                kwargs=self._kwargs,
                configure=self._configure,
                # A connection the server dropped (a restart, a failover) is found
                # at the borrow, by an empty query, and replaced, not handed out.
                check=ConnectionPool.check_connection,
                timeout=max(busy_timeout, 1.0),
                open=False,
                name=f"proctor {shown}",
            )
        )
        # One connection first, outside the pool: a server that is down, full
        # (max_connections) or refuses the login is said at once, with the
        # server's reason, where the pool would try again quietly until its
        # timeout and then give none.
        try:
            psycopg.connect(conninfo, **self._kwargs).close()
        except psycopg.OperationalError as exc:
            raise StoreUnavailable(
                f"{shown}: no connection to the server: {_first_line(exc)}"
            ) from exc
        if isinstance(self._pool, ConnectionPool):
            with translate(shown):
                self._pool.open(wait=True, timeout=connect_timeout)

    def _new_connection(self) -> psycopg.Connection[Any]:
        """A connection made as the pool makes its own (settings, adapters)."""
        conn = psycopg.connect(self._conninfo, **self._kwargs)
        try:
            self._configure(conn)
        except BaseException:
            conn.close()
            raise
        return conn

    def _configure(self, conn: psycopg.Connection[Any]) -> None:
        conn.adapters.register_dumper(bool, _BoolAsInt)
        # The server's side of a cut link (P2): a client cut off between a
        # write's first statement and its COMMIT leaves the transaction, and
        # its row locks, open on the server, which by default notices a
        # silent peer only after two hours of TCP keepalives; meanwhile no
        # other host could write the run (cancel it, take it over). A
        # transaction idle for three busy timeouts (at least 5 s) is ended,
        # and the server probes a silent client as the client probes it.
        idle = max(_MIN_IDLE_IN_TRANSACTION, 3 * self._busy_timeout)
        conn.execute(
            "SELECT set_config('search_path', %s, false),"
            " set_config('synchronous_commit', %s, false),"
            " set_config('lock_timeout', %s, false),"
            " set_config('default_transaction_read_only', %s, false),"
            " set_config('idle_in_transaction_session_timeout', %s, false),"
            " set_config('tcp_keepalives_idle', %s, false),"
            " set_config('tcp_keepalives_interval', %s, false),"
            " set_config('tcp_keepalives_count', %s, false),"
            " set_config('tcp_user_timeout', %s, false)",
            (
                SCHEMA,
                self._synchronous_commit,
                f"{round(self._busy_timeout * 1000)}ms",
                "on" if self._readonly else "off",
                f"{round(idle * 1000)}ms",
                str(_KEEPALIVE_IDLE),
                str(_KEEPALIVE_INTERVAL),
                str(_KEEPALIVE_COUNT),
                f"{_TCP_USER_TIMEOUT_MS}ms",
            ),
        )

    @contextlib.contextmanager
    def _borrowed(self) -> Iterator[PgConn]:
        """The thread's connection inside a block, else one from the pool."""
        held: PgConn | None = getattr(self._local, "conn", None)
        if held is not None:
            yield held
            return
        with translate(self.path), self._pool.connection() as raw:
            conn = PgConn(raw)
            self._local.conn = conn
            try:
                yield conn
            finally:
                self._local.conn = None

    @contextlib.contextmanager
    def locked(self) -> Iterator[PgConn]:
        with self._borrowed() as conn, translate(self.path):
            yield conn

    @contextlib.contextmanager
    def transaction(self) -> Iterator[PgConn]:
        with self._borrowed() as conn, translate(self.path):
            if conn.in_transaction:
                raise StoreError(f"{self.path}: a write transaction inside another block")
            self._begin(conn, "BEGIN")
            wait = getattr(self._local, "lock_wait", None)
            if wait is not None:
                conn.raw.execute("SELECT set_config('lock_timeout', %s, true)", (wait,))
            try:
                yield conn
            except BaseException:
                if not conn.raw.closed and conn.in_transaction:
                    conn.raw.execute("ROLLBACK")
                raise
            if conn.in_transaction:
                conn.raw.execute("COMMIT")

    @contextlib.contextmanager
    def snapshot(self) -> Iterator[None]:
        with self._borrowed() as conn:
            if conn.in_transaction:  # inside an outer block: that one holds
                yield
                return
            with translate(self.path):
                self._begin(conn, "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
            try:
                yield
            finally:
                if not conn.raw.closed and conn.in_transaction:
                    with translate(self.path):
                        conn.raw.execute("COMMIT")

    def _begin(self, conn: PgConn, begin: str) -> None:
        """Open a transaction; on a connection the server dropped while it sat
        idle (a restart), once more on a new one: nothing was sent yet."""
        try:
            conn.raw.execute(begin)
        except psycopg.OperationalError:
            if not conn.raw.broken or not isinstance(self._pool, OneConnection):
                raise
            self._pool.discard()
            with self._pool.connection() as raw:
                conn.raw = raw
                raw.execute(begin)

    @contextlib.contextmanager
    def lock_wait(self, seconds: float) -> Iterator[None]:
        self._local.lock_wait = f"{max(1, round(seconds * 1000))}ms"
        try:
            yield
        finally:
            self._local.lock_wait = None

    def query(self, sql: str, params: Sequence[Any]) -> list[dict[str, Any]]:
        """Rows as dicts; a read that met a connection the server had dropped
        while it sat idle (a restart) is read once more on a new one."""
        try:
            return self._query(sql, params)
        except StoreUnavailable:
            if getattr(self._local, "conn", None) is not None or not self._dropped():
                raise  # inside a block, or the server is still away
            return self._query(sql, params)

    def _query(self, sql: str, params: Sequence[Any]) -> list[dict[str, Any]]:
        with self.locked() as conn:
            cursor = conn.execute(sql, params)
            columns = [c[0] for c in cursor.description]
            return [dict(zip(columns, row, strict=True)) for row in cursor.fetchall()]

    def _dropped(self) -> bool:
        """Whether this store object's one connection is broken (then forgotten)."""
        if not isinstance(self._pool, OneConnection) or not self._pool.broken:
            return False
        self._pool.discard()
        return True

    def write(self, sql: str, params: Sequence[Any]) -> None:
        with self.locked() as conn:
            conn.execute(sql, params)

    def connect(self) -> psycopg.Connection[Any]:
        """A connection of its own, outside the pool (LISTEN needs one to itself)."""
        with translate(self.path):
            return psycopg.connect(self._conninfo, **self._kwargs)

    def close(self) -> None:
        self._pool.close()


@contextlib.contextmanager
def translate(shown: str) -> Iterator[None]:
    """Turn psycopg's errors into the StoreError family, naming the store by
    ``shown`` (its URL without the password)."""
    try:
        yield
    except (pgerrors.DeadlockDetected, pgerrors.SerializationFailure) as exc:
        raise WriteConflict(f"{shown}: {_first_line(exc)}") from exc
    except pgerrors.LockNotAvailable as exc:
        raise StoreLocked(
            f"{shown} is locked by another connection (waited past the lock timeout):"
            f" {_first_line(exc)}"
        ) from exc
    except pgerrors.QueryCanceled as exc:  # transient, as a lock is: tried again later
        raise StoreLocked(
            f"{shown}: the server cancelled a statement (its statement_timeout, or an"
            f" operator): {_first_line(exc)}"
        ) from exc
    except PoolTimeout as exc:
        raise StoreUnavailable(f"{shown}: no connection to the server: {_first_line(exc)}") from exc
    except psycopg.Error as exc:
        if _unavailable(exc):
            raise StoreUnavailable(f"{shown}: {_first_line(exc)}") from exc
        raise StoreError(f"{shown}: {_first_line(exc)}") from exc


#: SQLSTATEs of a server that went away: shut down, crashed, starting, full.
_GONE: Final = frozenset({"57P01", "57P02", "57P03", "53300"})


def _unavailable(exc: psycopg.Error) -> bool:
    """Whether ``exc`` says the server is out of reach, not that the statement is wrong.

    A connection that failed or dropped carries no SQLSTATE (libpq's own
    error), or one of class 08 (connection exception) or :data:`_GONE`.
    """
    if not isinstance(exc, psycopg.OperationalError):
        return False
    state = exc.sqlstate
    return state is None or state.startswith("08") or state in _GONE


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
