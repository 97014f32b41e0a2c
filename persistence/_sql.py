"""What the store's SQL needs from a database: one small interface, two dialects.

The rules of the store (appending with fencing, projections, queries, leases)
are written once, in plain SQL with ``?`` placeholders, against the two
protocols here; SQLite (``_connection``) and PostgreSQL (``_pg_connection``)
each provide them. Where the dialects differ, a statement asks its
connection's :attr:`Conn.dialect` (``"sqlite"`` or ``"postgres"``), through
the helpers below, instead of naming a backend's functions.

Invariants:

- A :class:`Db` runs every statement under its own lock or on a connection
  of the calling thread only, translates driver errors into the
  ``StoreError`` family, and commits a write transaction at the end of its
  block unless the block rolled it back (rolled back if the block raises).
- :class:`WriteConflict` is the one error a write may be retried after,
  whole: the database rolled the transaction back (a deadlock between two
  writers, a serialization failure), so nothing of it was written.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from typing import Any, Final, Literal, Protocol

from persistence._errors import StoreError

Dialect = Literal["sqlite", "postgres"]

#: How often a write refused as a :class:`WriteConflict` is tried again.
CONFLICT_RETRIES: Final = 5


class WriteConflict(StoreError):
    """The database rolled a write transaction back to resolve a conflict
    with another writer (a deadlock, a serialization failure): nothing was
    written, and the same write may be tried again."""


class Cursor(Protocol):
    """The part of a DB-API cursor the store uses."""

    @property
    def rowcount(self) -> int: ...

    @property
    def description(self) -> Any: ...

    def fetchone(self) -> Any: ...

    def fetchall(self) -> list[Any]: ...

    def __iter__(self) -> Iterator[Any]: ...


class Conn(Protocol):
    """A connection inside a transaction (or a locked read): ``?`` placeholders."""

    @property
    def dialect(self) -> Dialect: ...

    def execute(self, sql: str, parameters: Sequence[Any] = ..., /) -> Cursor: ...

    def executemany(self, sql: str, seq_of_parameters: Any, /) -> Any: ...


class Db(Protocol):
    """One store's access to its database, shared by the threads of one store object."""

    @property
    def path(self) -> str: ...

    @property
    def dialect(self) -> Dialect: ...

    def locked(self) -> contextlib.AbstractContextManager[Conn]:
        """A connection for reads of one thread (autocommit), errors translated."""
        ...

    def transaction(self) -> contextlib.AbstractContextManager[Conn]:
        """One write transaction: committed at the end of the block, rolled back if it raises."""
        ...

    def snapshot(self) -> contextlib.AbstractContextManager[None]:
        """Reads of this thread in the block see one state of the store."""
        ...

    def query(self, sql: str, params: Sequence[Any]) -> list[dict[str, Any]]:
        """Rows as dicts of column -> value."""
        ...

    def write(self, sql: str, params: Sequence[Any]) -> None:
        """One statement in its own transaction."""
        ...

    def lock_wait(self, seconds: float) -> contextlib.AbstractContextManager[None]:
        """Write transactions of this thread in the block wait at most
        ``seconds`` for a lock (then ``StoreLocked``)."""
        ...

    def close(self) -> None: ...


def rows(cursor: Cursor) -> list[dict[str, Any]]:
    """A cursor's rows as dicts of column -> value."""
    columns = [c[0] for c in cursor.description]
    return [dict(zip(columns, row, strict=True)) for row in cursor.fetchall()]


def json_text(dialect: Dialect, column: str, key: str) -> str:
    """SQL for the text of top-level ``key`` of the JSON object in ``column``."""
    if dialect == "postgres":
        return f"({column}::jsonb ->> '{key}')"
    return f"json_extract({column}, '$.{key}')"


def json_values(dialect: Dialect) -> str:
    """A ``FROM`` item: one row per element of the JSON array of strings bound to
    the one ``?`` it holds, in a column named ``value``."""
    if dialect == "postgres":
        return "json_array_elements_text(CAST(? AS json)) AS value"
    return "json_each(?)"


def row_lock(dialect: Dialect, *, skip_locked: bool = False) -> str:
    """The clause that locks the rows a ``SELECT`` reads until the transaction
    ends: nothing on SQLite (a write transaction holds the whole database);
    ``FOR UPDATE`` on PostgreSQL, ``SKIP LOCKED`` to pass over rows another
    transaction holds instead of waiting for them."""
    if dialect == "sqlite":
        return ""
    return " FOR UPDATE SKIP LOCKED" if skip_locked else " FOR UPDATE"


@contextlib.contextmanager
def savepoint(conn: Conn, name: str) -> Iterator[None]:
    """A savepoint both dialects spell the same way; rolled back if the block raises."""
    conn.execute(f"SAVEPOINT {name}")
    try:
        yield
    except BaseException:
        conn.execute(f"ROLLBACK TO SAVEPOINT {name}")
        conn.execute(f"RELEASE SAVEPOINT {name}")
        raise
    conn.execute(f"RELEASE SAVEPOINT {name}")
