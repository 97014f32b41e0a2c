"""Which file a store's path names, so a process notices it changing under it.

SQLite keeps writing to the file it opened, whatever happens to its path.
A store deleted while a worker runs is an unlinked file that worker writes
to alone, silently, for the rest of its life; one replaced by a backup
takes the old ``-wal``/``-shm`` with it into corruption. So a store records
the identity (device, inode) of its file and of its ``-wal`` when it opens
them, and :func:`check_same_file` compares the path with them again.

Also here: the damage SQLite reports as errors (``malformed``, ``disk I/O
error``) named as such, and the one condition that crashes a process
instead of raising: a ``-shm`` it may not write, which SQLite maps into
memory (a SIGBUS). :func:`check_shm_writable` refuses that before SQLite
opens the store.
"""

from __future__ import annotations

import os
import sqlite3
from dataclasses import dataclass
from typing import Final

from persistence._errors import StoreCorrupt, StoreError, StoreReplaced

#: SQLite's messages for a damaged file, whichever error class carries them.
_DAMAGE: Final = ("malformed", "disk i/o error")


@dataclass(frozen=True, slots=True)
class FileIdentity:
    """(device, inode) of a store's file and of its ``-wal`` (None: none yet)."""

    db: tuple[int, int]
    wal: tuple[int, int] | None


def _identity(path: str) -> tuple[int, int] | None:
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return None
    return st.st_dev, st.st_ino


def identify(path: str) -> FileIdentity | None:
    """The identity of the store at ``path`` as it is now (None: no file)."""
    db = _identity(path)
    return None if db is None else FileIdentity(db, _identity(path + "-wal"))


def check_same_file(path: str, opened: FileIdentity) -> None:
    """Raise unless ``path`` still names the files this process opened.

    Raises:
        StoreReplaced: the store file was deleted, or another file (a
            backup, say) now has its name.
        StoreCorrupt: its ``-wal`` was deleted or replaced: what it held
            is lost to every other process.
    """
    now = _identity(path)
    if now is None:
        raise StoreReplaced(
            f"{path} was deleted while this process had it open;"
            " nothing more is written to it (restore it, then restart)"
        )
    if now != opened.db:
        raise StoreReplaced(
            f"{path} was replaced by another file while this process had it open;"
            " nothing more is written to it (restart to use the new file)"
        )
    if opened.wal is not None and _identity(path + "-wal") != opened.wal:
        raise StoreCorrupt(
            f"{path}-wal was deleted or replaced while {path} was open: the changes"
            " it held are lost; stop every process using the store and restore it"
            " from a backup"
        )


def check_shm_writable(path: str) -> None:
    """Refuse a store whose ``-shm`` exists and this process may not write.

    SQLite maps the ``-shm`` into memory; one it cannot write kills the
    process with SIGBUS instead of raising.

    Raises:
        StoreError: the ``-shm`` is read-only for this process.
    """
    shm = path + "-shm"
    if os.path.exists(shm) and not os.access(shm, os.W_OK):
        raise StoreError(
            f"{shm} is read-only for this process, and SQLite would crash on it;"
            " make it writable by this user (or remove it while no process uses the store)"
        )


def damage(path: str, exc: sqlite3.Error) -> StoreCorrupt | None:
    """The error as a StoreCorrupt if SQLite says the file is damaged, else None."""
    msg = str(exc)
    if not any(word in msg.lower() for word in _DAMAGE):
        return None
    return StoreCorrupt(
        f"{path} is damaged ({msg}): it was changed under SQLite (replaced by a copy"
        " while in use, its -wal deleted, or a disk fault); stop every process using"
        " it and restore it from a backup"
    )
