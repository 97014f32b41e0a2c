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
    return SQLiteStore.open(target, **options)


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
