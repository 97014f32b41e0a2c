"""A store's tables reached past the ``Store`` interface, on either store.

One concept: what a test does by hand that no writer through the store can
(a bad row written as another version might, a run's timestamps moved back
a month, a count of rows, another process's long write transaction),
written once for both stores: ``db`` is a
SQLite path or a ``postgresql://`` URL (the ``db`` fixture's two values).

Invariants: the SQL is SQLite's (``?`` parameters, unqualified table
names); on PostgreSQL it runs with ``search_path`` set to the store's
schema ``proctor`` and ``?`` turned into psycopg's ``%s``, so a statement
either store accepts needs no second spelling. Each call is its own
connection and its own committed transaction.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
from collections.abc import Iterator, Sequence
from typing import Any

#: The PostgreSQL store's schema (DESIGN P1: it shares a database with the application).
PG_SCHEMA = "proctor"


def is_postgres(db: str | os.PathLike[str]) -> bool:
    return isinstance(db, str) and db.startswith(("postgresql://", "postgres://"))


def store_exists(db: str | os.PathLike[str]) -> bool:
    """Whether anything made the store: the SQLite file, or the ``proctor``
    schema in the PostgreSQL database (which the fixture creates empty)."""
    if not is_postgres(db):
        return os.path.exists(db)
    import psycopg  # noqa: PLC0415 (the SQLite half runs without it)

    assert isinstance(db, str)
    with psycopg.connect(db) as conn:
        row = conn.execute("SELECT to_regnamespace(%s) IS NOT NULL", (PG_SCHEMA,)).fetchone()
    return bool(row and row[0])


def raw_sql(db: str | os.PathLike[str], sql: str, *params: Any) -> list[tuple[Any, ...]]:
    """Run one SQLite-spelled statement on the store's tables, committed; its rows."""
    if not is_postgres(db):
        conn = sqlite3.connect(db)
        try:
            rows = conn.execute(sql, params).fetchall()
            conn.commit()
            return rows
        finally:
            conn.close()
    import psycopg  # noqa: PLC0415

    assert isinstance(db, str)
    with psycopg.connect(db, options=f"-c search_path={PG_SCHEMA}") as conn:
        cur = conn.execute(_pg_spelling(sql), params)  # type: ignore[arg-type]
        return cur.fetchall() if cur.description else []


def raw_script(
    db: str | os.PathLike[str], statements: Sequence[tuple[str, tuple[Any, ...]]]
) -> None:
    """Several statements in one committed transaction (each as :func:`raw_sql`)."""
    if not is_postgres(db):
        conn = sqlite3.connect(db)
        try:
            for sql, params in statements:
                conn.execute(sql, params)
            conn.commit()
        finally:
            conn.close()
        return
    import psycopg  # noqa: PLC0415

    assert isinstance(db, str)
    with psycopg.connect(db, options=f"-c search_path={PG_SCHEMA}") as conn:
        for sql, params in statements:
            conn.execute(_pg_spelling(sql), params)  # type: ignore[arg-type]


def _pg_spelling(sql: str) -> str:
    # A literal % must not read as a placeholder; ? is never in our literals.
    return sql.replace("%", "%%").replace("?", "%s")


@contextlib.contextmanager
def write_lock(db: str | os.PathLike[str]) -> Iterator[None]:
    """Hold the store's write lock for the ``with`` block, as another
    process's long write transaction would: every writer waits (its busy
    timeout, then ``StoreLocked``); readers go on.

    SQLite: ``BEGIN IMMEDIATE`` (WAL: readers are not blocked). PostgreSQL:
    every table of the ``proctor`` schema locked ``IN EXCLUSIVE MODE``, which
    blocks ``INSERT``/``UPDATE``/``DELETE`` and ``SELECT ... FOR UPDATE``
    but not plain reads; the store's busy timeout is its ``lock_timeout``.
    """
    if not is_postgres(db):
        # Patient to take it (another writer may be mid-commit); WAL mode:
        # IMMEDIATE and EXCLUSIVE are the same lock.
        conn = sqlite3.connect(db, timeout=30, isolation_level=None)
        try:
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield
            finally:
                conn.execute("ROLLBACK")
        finally:
            conn.close()
        return
    import psycopg  # noqa: PLC0415

    assert isinstance(db, str)
    with psycopg.connect(db) as pg:
        pg.execute(f"LOCK TABLE {_pg_tables(pg)} IN EXCLUSIVE MODE")
        try:
            yield
        finally:
            pg.rollback()


def nobody_writing(db: str | os.PathLike[str]) -> bool:
    """Whether a writer could start now: nobody is inside a write transaction
    (SQLite: the write lock is free; PostgreSQL: no transaction holds a row
    of the store's tables locked, so :func:`write_lock` would not wait)."""
    if not is_postgres(db):
        conn = sqlite3.connect(db, timeout=0, isolation_level=None)
        try:
            conn.execute("BEGIN IMMEDIATE")
            conn.execute("ROLLBACK")
        except sqlite3.OperationalError:
            return False
        finally:
            conn.close()
        return True
    import psycopg  # noqa: PLC0415

    assert isinstance(db, str)
    with psycopg.connect(db) as pg:
        try:
            pg.execute(f"LOCK TABLE {_pg_tables(pg)} IN EXCLUSIVE MODE NOWAIT")
        except psycopg.errors.LockNotAvailable:
            return False
        pg.rollback()
    return True


def _pg_tables(pg: Any) -> str:
    """Every table of the store's schema, qualified, for one LOCK TABLE."""
    rows = pg.execute(
        "SELECT tablename FROM pg_catalog.pg_tables WHERE schemaname = %s ORDER BY 1",
        (PG_SCHEMA,),
    ).fetchall()
    assert rows, "no store to lock: open it first"
    return ", ".join(f"{PG_SCHEMA}.{name}" for (name,) in rows)


def store_class(db: str | os.PathLike[str]) -> type[Any]:
    """The class of the store ``db`` names: what a test's ``monkeypatch`` spies on."""
    if is_postgres(db):
        from persistence._pg_store import PostgresStore  # noqa: PLC0415

        return PostgresStore
    from persistence import SQLiteStore  # noqa: PLC0415

    return SQLiteStore
