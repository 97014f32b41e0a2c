"""Opening a store: the one place that picks the implementation of ``Store``.

Everything outside ``persistence`` opens a store through :func:`open_store`
(a runtime, its Journal and ControlInbox, the CLI), so a second
implementation of the :class:`Store` interface plugs in here and nowhere
else: the target (``_targets``: a path or ``sqlite:`` URL, or a
``postgresql://`` URL, DESIGN P1) picks SQLite or PostgreSQL.

Invariants:

* :func:`open_same_store` never opens a new, empty store in place of the
  one a runtime already has open (a file deleted or replaced under it);
* the PostgreSQL store and its driver are imported only when a PostgreSQL
  target is opened: a SQLite user needs neither, and a missing one is a
  ``StoreError`` that names the extra to install;
* no error leaving here holds the target's password: a PostgreSQL store's
  error is scrubbed of it, and a driver's own error becomes a
  ``StoreError`` (the ``Store`` interface raises nothing else).
"""

from __future__ import annotations

import os
from typing import Any, Final

from persistence._errors import ProctorError, StoreError, StoreReplaced
from persistence._file import FileIdentity, check_same_file
from persistence._interface import Store
from persistence._store import SQLiteStore
from persistence._targets import StoreTarget, parse_target

#: What a PostgreSQL target without the driver (or its store) installed says.
POSTGRES_EXTRA: Final = "PostgreSQL stores need the postgres extra: pip install 'proctor[postgres]'"


def open_store(target: str | os.PathLike[str] | StoreTarget, **options: Any) -> Store:
    """Open the store ``target`` names: a path or ``sqlite:`` URL (SQLite), or
    a ``postgresql://`` URL (PostgreSQL); see :func:`persistence.parse_target`.

    ``options`` are the implementation's (``readonly``, ``synchronous``,
    ``busy_timeout``, ``create``, ...; see :meth:`SQLiteStore.open`; the
    PostgreSQL store takes the same ones).

    Raises:
        StoreError: the store cannot be opened (missing, locked, not a
            Proctor store, written by a newer Proctor, damaged; a server
            that cannot be reached; the ``postgres`` extra not installed).
            Its message shows the target redacted.
        InvalidArgument: the target is malformed (an unknown scheme, a bad
            port; ``InvalidArgumentType``: not a str or path), or an option
            is out of range (an unknown ``synchronous`` level, a non-finite
            busy timeout).
    """
    parsed = target if isinstance(target, StoreTarget) else parse_target(target)
    if parsed.is_file:
        return SQLiteStore.open(parsed.location, **options)
    return _open_postgres(parsed, options)


def _open_postgres(target: StoreTarget, options: dict[str, Any]) -> Store:
    try:
        # Lazy: psycopg is imported by the first PostgreSQL target, never before.
        from persistence._pg_store import PostgresStore  # noqa: PLC0415
    except ImportError as exc:  # no psycopg (the postgres extra is not installed)
        raise StoreError(f"cannot open {target.display}: {POSTGRES_EXTRA}") from exc
    try:
        store: Store = PostgresStore.open(target.location, shown=target.display, **options)
    except ImportError as exc:  # a driver the store imports when first used
        raise StoreError(f"cannot open {target.display}: {POSTGRES_EXTRA}") from exc
    except ProctorError as exc:
        text = str(exc)
        if target.scrub(text) == text:
            raise
        hidden = _scrubbed(exc, target.scrub(text))
        raise hidden from None  # its cause's text holds the password too
    except Exception as exc:  # a driver's own error: the interface raises StoreErrors only
        raise StoreError(f"cannot open {target.display}: {target.scrub(str(exc))}") from None
    return store


def _scrubbed(exc: ProctorError, text: str) -> ProctorError:
    """``exc`` again, of its class if it takes one message, with ``text`` instead."""
    try:
        return type(exc)(text)
    except Exception:
        return StoreError(text)


def open_same_store(
    path: str | os.PathLike[str] | StoreTarget, opened: FileIdentity | None, **options: Any
) -> Store:
    """Open another connection to the runtime's store, only if ``path`` still
    names the file the runtime opened: never a new store in its place.

    ``opened`` is None for a store that is not a file (PostgreSQL: the server
    keeps its database; see ``Store.check_same_store``).

    Raises:
        StoreReplaced: the file was deleted or replaced.
        StoreCorrupt: its ``-wal`` was deleted or replaced, or it is damaged.
        StoreError: as :func:`open_store`.
    """
    target = path if isinstance(path, StoreTarget) else parse_target(path)
    if opened is None or not target.is_file:
        return open_store(target, **options)
    spath = target.location
    check_same_file(spath, opened)
    try:
        store = open_store(target, create=False, **options)
    except StoreError:
        check_same_file(spath, opened)  # gone meanwhile: that is the reason
        raise
    if store.opened is None or store.opened.db != opened.db:
        store.close()
        check_same_file(spath, opened)
        raise StoreReplaced(f"{spath} was replaced by another file while it was being opened")
    return store
