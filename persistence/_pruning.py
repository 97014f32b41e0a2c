"""Pruning: finished runs older than an age are deleted, a tree at a time.

What is pruned is a *tree*: a top-level run and every run under it (child
runs, their children, ...). A tree goes only when every run in it is
terminal and finished before the cutoff; one unfinished or recent run keeps
the whole tree (an abandoned child still running keeps its finished parent,
whose log it may still be written into). Pruning a run deletes its row in
``runs``, its whole event log and its step attempts; nothing of it is left,
so ``proctor runs logs`` of a pruned run says it does not exist. A runtime's
row goes too once it has stopped (or its lease ran out) before the cutoff
and no run names it any more.

``prune``, ``prune_batch`` and ``prune_runtimes`` work on any ``Store``;
the ``sqlite_*`` functions are the SQLite store's implementation of its
``prune_batch`` and ``prune_runtimes``.

Invariants:

- A run that is not terminal, or whose ancestors or descendants are not, is
  never deleted: the tree is read and checked again inside the deleting
  transaction, so a child created meanwhile is seen.
- Each transaction deletes at most ``batch`` runs (one tree larger than that
  goes alone), so the store's write lock is held for milliseconds and the
  Journal's commits wait at most that long.
- Candidates are visited in (created_at, rowid) order with a keyset cursor,
  so trees that must stay never stop the scan from reaching older-than-cutoff
  trees after them.
"""

from __future__ import annotations

import contextlib
import json
import math
import time
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Final

from persistence._retention import PRUNE_BATCH, PruneCursor, PruneReport
from persistence._sql import Conn, Db, json_values
from persistence._states import TERMINAL_STATES

if TYPE_CHECKING:
    from persistence._interface import Store

#: Seconds between two prune transactions of one prune(): longer than SQLite's
#: busy-handler retry interval at small waits, so a waiting writer gets in.
PRUNE_PAUSE: Final = 0.03
#: SQLite's smallest limit on parameters of one statement (older builds): chunks stay below.
_CHUNK: Final = 500

_TERMINAL: Final = tuple(s.value for s in TERMINAL_STATES)


def prune(
    store: Store,
    older_than: float,
    *,
    dry_run: bool = False,
    batch: int = PRUNE_BATCH,
    now: float | None = None,
) -> PruneReport:
    """Delete every tree of runs that all finished more than ``older_than`` seconds ago.

    Deletes ``batch`` runs per transaction, with a PRUNE_PAUSE between two
    (a runtime's Journal waiting for the lock gets in first), until nothing
    old is left; then the rows of runtimes gone before the cutoff that own
    no run (:func:`prune_runtimes`). With
    ``dry_run`` nothing is written (a read-only store will do) and the
    report says what would go.

    Raises:
        ValueError: ``older_than`` or ``batch`` is not positive.
        StoreError: the store cannot be read or written (locked past the busy timeout).
    """
    older_than = float(older_than)
    if not math.isfinite(older_than) or older_than <= 0:
        raise ValueError(f"older_than must be a positive number of seconds, got {older_than}")
    if batch <= 0:
        raise ValueError(f"batch must be positive, got {batch}")
    cutoff = (time.time() if now is None else now) - older_than
    report = PruneReport(cutoff=cutoff, dry_run=dry_run)
    cursor: PruneCursor | None = None
    while True:
        transactions = report.transactions
        cursor, more = store.prune_batch(cutoff, after=cursor, batch=batch, report=report)
        if not more:
            break
        if report.transactions > transactions:
            # Leave the write lock free for a while: a writer waiting in its
            # busy handler (the Journal) retries within PRUNE_PAUSE and gets
            # in before the next prune transaction, instead of behind it.
            time.sleep(PRUNE_PAUSE)
    store.prune_runtimes(cutoff, report)
    return report


def prune_batch(
    store: Store,
    cutoff: float,
    *,
    after: PruneCursor | None = None,
    batch: int = PRUNE_BATCH,
    report: PruneReport | None = None,
    lock_wait: float | None = None,
) -> tuple[PruneCursor | None, bool]:
    """:meth:`Store.prune_batch` of ``store`` (documented there): one step
    of a prune, for callers that drive it batch by batch."""
    return store.prune_batch(cutoff, after=after, batch=batch, report=report, lock_wait=lock_wait)


def prune_runtimes(
    store: Store,
    cutoff: float,
    report: PruneReport | None = None,
    *,
    lock_wait: float | None = None,
) -> int:
    """:meth:`Store.prune_runtimes` of ``store`` (documented there)."""
    return store.prune_runtimes(cutoff, report, lock_wait=lock_wait)


def prune_store_batch(
    db: Db,
    cutoff: float,
    *,
    after: PruneCursor | None = None,
    batch: int = PRUNE_BATCH,
    report: PruneReport | None = None,
    lock_wait: float | None = None,
) -> tuple[PruneCursor | None, bool]:
    """SQLite's :meth:`Store.prune_batch` (documented there): candidates in
    the order of the creation-time index, deleted a tree at a time.

    Raises:
        StoreLocked: the write lock was not free within the wait; nothing changed.
    """
    report = report or PruneReport(cutoff=cutoff, dry_run=False)
    # A run finishes after it is created: the index of creation times finds
    # every candidate, in a stable order, without an index of its own.
    since, rowid = after or (-math.inf, -1)
    # SQLite's rowid; a PostgreSQL store's runs have an identity column ``pos``.
    pos, hint = (
        ("rowid", " INDEXED BY idx_runs_created_at") if db.dialect == "sqlite" else ("pos", "")
    )
    roots = db.query(
        f"SELECT {pos} AS pos, run_id, created_at FROM runs{hint}"
        f" WHERE created_at >= ? AND created_at < ? AND (created_at, {pos}) > (?, ?)"
        " AND parent_run_id IS NULL AND finished_at < ?"
        f" ORDER BY created_at, {pos} LIMIT ?",
        (since, cutoff, since, rowid, cutoff, batch),
    )
    if not roots:
        return after, False
    last: PruneCursor = (roots[-1]["created_at"], roots[-1]["pos"])
    if report.dry_run:
        with db.snapshot(), db.locked() as conn:
            for tree in _trees(conn, [r["run_id"] for r in roots], cutoff):
                _count(conn, tree, report)
        return last, len(roots) == batch
    with _busy_timeout(db, lock_wait):
        done = _delete_trees(db, [r["run_id"] for r in roots], cutoff, batch, report)
    if done < len(roots):  # the transaction filled up: go on after the last tree it took
        return (roots[done - 1]["created_at"], roots[done - 1]["pos"]), True
    return last, len(roots) == batch


@contextlib.contextmanager
def _busy_timeout(db: Db, seconds: float | None) -> Iterator[None]:
    """The store's connection waits at most ``seconds`` for a lock in this block."""
    if seconds is None:
        yield
        return
    with db.lock_wait(seconds):
        yield


def _delete_trees(
    db: Db, roots: Sequence[str], cutoff: float, batch: int, report: PruneReport
) -> int:
    """One transaction: delete each of these trees that is still wholly old and
    finished, until ``batch`` runs are gone; how many roots it got through."""
    done = 0
    doomed: list[str] = []
    with db.transaction() as conn:
        started = time.perf_counter()  # the write lock is ours from here to the commit
        for tree in _trees(conn, roots, cutoff):
            if tree is not None and doomed and len(doomed) + len(tree) > batch:
                break  # full: this tree starts the next transaction
            done += 1
            if tree is None:
                report.kept += 1
            else:
                doomed.extend(tree)
        for i in range(0, len(doomed), _CHUNK):
            chunk = doomed[i : i + _CHUNK]
            marks = ", ".join("?" * len(chunk))
            for table in ("events", "steps", "runs"):
                deleted = conn.execute(
                    f"DELETE FROM {table} WHERE run_id IN ({marks})", chunk
                ).rowcount
                if table == "events":
                    report.events += deleted
                elif table == "steps":
                    report.steps += deleted
                else:
                    report.runs += deleted
    report.run_ids.extend(doomed)
    report.largest_transaction = max(report.largest_transaction, len(doomed))
    report.transactions += 1
    report.longest_transaction = max(report.longest_transaction, time.perf_counter() - started)
    return done


def _trees(conn: Conn, roots: Sequence[str], cutoff: float) -> list[list[str] | None]:
    """For each root, the run ids of its tree, parents first, if every run in it
    is terminal and finished before ``cutoff``; None if any is not (or the
    root is gone). One statement for all roots: a transaction of the
    ControlInbox's thread takes the GIL back once per statement."""
    found: dict[str, list[tuple[str, str, float | None]]] = {root: [] for root in roots}
    rows = conn.execute(
        f"""
        WITH RECURSIVE tree(root, run_id, depth) AS (
            SELECT value, value, 0 FROM {json_values(conn.dialect)}
            UNION ALL
            SELECT tree.root, runs.run_id, tree.depth + 1
            FROM runs JOIN tree ON runs.parent_run_id = tree.run_id
        )
        SELECT tree.root, runs.run_id, runs.status, runs.finished_at
        FROM tree JOIN runs USING (run_id) ORDER BY tree.root, tree.depth
        """,
        (json.dumps(list(roots)),),
    ).fetchall()
    for root, run_id, status, finished_at in rows:
        found[root].append((run_id, status, finished_at))
    trees: list[list[str] | None] = []
    for root in roots:
        tree = found[root]
        old = bool(tree) and all(
            status in _TERMINAL and finished_at is not None and finished_at < cutoff
            for _, status, finished_at in tree
        )
        trees.append([run_id for run_id, _, _ in tree] if old else None)
    return trees


def _count(conn: Conn, tree: list[str] | None, report: PruneReport) -> None:
    """A dry run's counts for one tree."""
    if tree is None:
        report.kept += 1
        return
    for i in range(0, len(tree), _CHUNK):
        chunk = tree[i : i + _CHUNK]
        marks = ", ".join("?" * len(chunk))
        report.events += conn.execute(
            f"SELECT count(*) FROM events WHERE run_id IN ({marks})", chunk
        ).fetchone()[0]
        report.steps += conn.execute(
            f"SELECT count(*) FROM steps WHERE run_id IN ({marks})", chunk
        ).fetchone()[0]
    report.runs += len(tree)
    report.run_ids.extend(tree)


def prune_store_runtimes(
    db: Db,
    cutoff: float,
    report: PruneReport | None = None,
    *,
    lock_wait: float | None = None,
) -> int:
    """Delete the rows of runtimes that stopped (or whose lease ran out) before
    ``cutoff`` and that no run names as its owner any more; how many.

    Such a runtime never owns a run again (claims and takeovers name a live
    one), so the scan of ``runs`` is a read outside the write transaction.

    Raises:
        StoreLocked: the write lock was not free within ``lock_wait``.
    """
    report = report or PruneReport(cutoff=cutoff, dry_run=False)
    stale = db.query(
        "SELECT owner FROM runtimes WHERE coalesce(stopped_at, lease_expires_at, heartbeat_at) < ?"
        " AND owner NOT IN (SELECT owner FROM runs WHERE owner IS NOT NULL)",
        (cutoff,),
    )
    owners = [row["owner"] for row in stale]
    if not owners or report.dry_run:
        report.runtimes += len(owners)
        return len(owners)
    with _busy_timeout(db, lock_wait), db.transaction() as conn:
        started = time.perf_counter()
        deleted = 0
        for i in range(0, len(owners), _CHUNK):
            chunk = owners[i : i + _CHUNK]
            marks = ", ".join("?" * len(chunk))
            deleted += conn.execute(
                f"DELETE FROM runtimes WHERE owner IN ({marks})", chunk
            ).rowcount
    report.runtimes += deleted
    report.transactions += 1
    report.longest_transaction = max(report.longest_transaction, time.perf_counter() - started)
    return deleted
