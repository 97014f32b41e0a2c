"""Opening a store: the one place that picks the implementation of ``Store``.

Everything outside ``persistence`` opens a store through :func:`open_store`
(a runtime, its Journal and ControlInbox, the CLI), so a second
implementation of the :class:`Store` interface plugs in here and nowhere
else: today every target is a SQLite file path; the PostgreSQL store of
DESIGN P1 is chosen here by its ``postgresql://`` URL.

Invariant: :func:`open_same_store` never opens a new, empty store in place
of the one a runtime already has open (a file deleted or replaced under it).
"""

from __future__ import annotations

import os
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from persistence._errors import StoreError, StoreReplaced
from persistence._file import FileIdentity, check_same_file
from persistence._interface import Store
from persistence._store import SQLiteStore


def open_store(target: str | os.PathLike[str], **options: Any) -> Store:
    """Open the store ``target`` names (a SQLite file path).

    ``options`` are the implementation's (for SQLite: ``readonly``,
    ``synchronous``, ``busy_timeout``, ``create``, ...; see
    :meth:`SQLiteStore.open`).

    Raises:
        StoreError: the store cannot be opened (missing, locked, not a
            Proctor store, written by a newer Proctor, damaged).
        InvalidArgument: an option is out of range (an unknown
            ``synchronous`` level, a non-finite busy timeout).
    """
    if isinstance(target, str) and target.startswith(("postgresql://", "postgres://")):
        return _open_postgres(target, **options)
    return SQLiteStore.open(target, **options)


def _open_postgres(url: str, **options: Any) -> Store:
    """A PostgreSQL store (the ``postgres`` extra: psycopg 3 and psycopg_pool)."""
    shown = _hide_password(url)
    try:
        from persistence._pg_store import PostgresStore  # noqa: PLC0415
    except ImportError as exc:
        raise StoreError(
            f"{shown}: PostgreSQL stores need the postgres extra:"
            f" pip install 'proctor[postgres]' ({exc})"
        ) from exc
    return PostgresStore.open(url, shown=shown, **options)


def _hide_password(url: str) -> str:
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return urlunsplit(parts._replace(netloc=netloc))


def open_same_store(
    path: str | os.PathLike[str], opened: FileIdentity | None, **options: Any
) -> Store:
    """Open another connection to the runtime's store, only if ``path`` still
    names the file the runtime opened: never a new store in its place.

    Raises:
        StoreReplaced: the file was deleted or replaced.
        StoreCorrupt: its ``-wal`` was deleted or replaced, or it is damaged.
        StoreError: as :func:`open_store`.
    """
    if opened is None:
        return open_store(path, **options)
    spath = os.fspath(path)
    check_same_file(spath, opened)
    try:
        store = open_store(spath, create=False, **options)
    except StoreError:
        check_same_file(spath, opened)  # gone meanwhile: that is the reason
        raise
    if store.opened is None or store.opened.db != opened.db:
        store.close()
        check_same_file(spath, opened)
        raise StoreReplaced(f"{spath} was replaced by another file while it was being opened")
    return store
