"""The ``runtimes`` table of a SQLite store: leases, and the runs dead owners left.

The rules of liveness are pure and live in ``_leases`` (``why_dead``,
``LeaseObserver``); this module is their SQL: registering a runtime,
renewing, releasing, expiring and revoking its lease, and finding the
orphaned runs a live runtime may resume.

Invariants:

- A renewal succeeds only while the row says the runtime neither stopped
  nor was revoked; a failed renewal changes nothing (self-fencing).
- A verdict by silence is written back as a compare-and-swap on the renewal
  counter (:func:`revoke`) before any of the owner's runs is returned: if
  the owner renewed meanwhile it is alive after all.
- No liveness verdict reads a wall-clock column (P3): ``heartbeat_at`` and
  ``lease_expires_at`` are for people to read.
"""

from __future__ import annotations

import os
import time
from collections.abc import Sequence

from persistence._leases import BOOT_ID, HOSTNAME, PID_NS, LeaseObserver, why_dead
from persistence._ownership import owners_other_than
from persistence._records import RunRecord, RuntimeRecord
from persistence._sql import Db, json_text
from persistence._states import TERMINAL_STATES, EventType, RunState


def register_runtime(db: Db, owner: str, *, ttl: float, version: str | None = None) -> None:
    """Say that ``owner`` (this process) is alive and renews within ``ttl`` seconds.

    The row names this process's PID namespace and boot, so that only a
    process that can see it judges it by its pid (P3).
    """
    now = time.time()
    db.write(
        "INSERT INTO runtimes (owner, pid, hostname, started_at, heartbeat_at,"
        " lease_expires_at, version, renewals, lease_ttl, pid_ns, boot_id)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, 0, ?, ?, ?)",
        (owner, os.getpid(), HOSTNAME, now, now, now + ttl, version, ttl, PID_NS, BOOT_ID),
    )


def renew_lease(db: Db, owner: str, *, ttl: float) -> bool:
    """Renew ``owner``'s lease: bump its renewal counter (what observers watch).

    Returns False, and changes nothing, when the row says the runtime
    stopped or its lease was revoked (another runtime found it silent and
    may be resuming its runs): it must stop its runs (self-fencing).
    ``heartbeat_at`` and ``lease_expires_at`` are this host's wall clock,
    for people to read; no liveness verdict uses them (P3).
    """
    now = time.time()
    with db.locked() as conn:
        cur = conn.execute(
            "UPDATE runtimes SET heartbeat_at = ?, lease_expires_at = ?,"
            " renewals = renewals + 1"
            " WHERE owner = ? AND stopped_at IS NULL AND revoked IS NULL",
            (now, now + ttl, owner),
        )
        return cur.rowcount == 1


def release_runtime(db: Db, owner: str) -> None:
    """``owner`` stopped on purpose: its unfinished runs may be resumed at once."""
    db.write("UPDATE runtimes SET stopped_at = ? WHERE owner = ?", (time.time(), owner))


def expire_lease(db: Db, owner: str, why: str = "ended at once") -> None:
    """End ``owner``'s lease now, as if it had stopped renewing it long ago:
    its runs may be resumed at once, and its next renewal fails."""
    db.write("UPDATE runtimes SET lease_expires_at = 0, revoked = ? WHERE owner = ?", (why, owner))


def runtimes(db: Db) -> list[RuntimeRecord]:
    """Every registered runtime, oldest first."""
    rows = db.query("SELECT * FROM runtimes ORDER BY started_at", ())
    return [RuntimeRecord.from_row(r) for r in rows]


def orphaned_runs(
    db: Db,
    workflows: Sequence[str],
    *,
    me: str,
    observer: LeaseObserver | None = None,
    limit: int = 100,
) -> list[tuple[RunRecord, str]]:
    """Unfinished runs of ``workflows`` whose owner is dead and that nobody
    else will resume, and why.

    A top-level run is resumed here. A child run is resumed by its parent's
    replay while its parent is unfinished and its log does not record the
    child's end; otherwise (a child abandoned by a parent that ended, or
    one whose parent no longer waits for it) nobody would, so it is
    resumed here too. Never both: two resumers of one child would race,
    and the parent of the loser would record an end that did not happen.
    ``observer`` judges silence on the caller's own clock (P3); without
    one, only rows that say so and gone processes count. An owner found
    silent is revoked here by a compare-and-swap on its renewal counter,
    before any of its runs is returned: if it renewed meanwhile it is
    alive after all; if not, its next renewal fails and it stops its runs.
    """
    if not workflows:
        return []
    marks = ", ".join("?" * len(workflows))
    unfinished = [RunState.PENDING, RunState.RUNNING, RunState.CANCELLING]
    terminal = ", ".join(f"'{s.value}'" for s in TERMINAL_STATES)
    rows = db.query(
        f"SELECT r.* FROM runs AS r LEFT JOIN runs AS p ON p.run_id = r.parent_run_id"
        f" WHERE r.status IN (?, ?, ?) AND r.owner IS NOT NULL AND r.owner != ?"
        f" AND r.workflow IN ({marks})"
        f" AND (r.parent_run_id IS NULL OR p.run_id IS NULL OR p.status IN ({terminal})"
        f"  OR EXISTS (SELECT 1 FROM events AS e WHERE e.run_id = p.run_id"
        f"   AND e.type = '{EventType.CHILD_ENDED.value}'"
        f"   AND {json_text(db.dialect, 'e.data', 'child_run_id')} = r.run_id))"
        f" ORDER BY r.created_at, r.run_id",
        (*(s.value for s in unfinished), me, *workflows),
    )
    known = {r.owner: r for r in runtimes(db)}
    silence: dict[str, float] = {}
    if observer is not None:
        observer.forget_others(known)
        silence = {owner: observer.silent_for(r) for owner, r in known.items()}
    verdicts: dict[str, str | None] = {}
    found: list[tuple[RunRecord, str]] = []
    for row in rows:
        record = RunRecord.from_row(row)
        owner = record.owner
        assert owner is not None
        if owner not in verdicts:
            runtime = known.get(owner)
            why = why_dead(owner, runtime, silent_for=silence.get(owner))
            if why is not None and runtime is not None and why_dead(owner, runtime) is None:
                # Dead by silence alone: make it so in the row, or find it alive.
                why = why if revoke(db, runtime, f"{me}: {why}") else None
            verdicts[owner] = why
        why = verdicts[owner]
        if why is not None:
            found.append((record, why))
            if len(found) >= limit:
                break
    return found


def revoke(db: Db, runtime: RuntimeRecord, why: str) -> bool:
    """Revoke ``runtime``'s lease unless it renewed since we read its row."""
    with db.locked() as conn:
        cur = conn.execute(
            "UPDATE runtimes SET revoked = ? WHERE owner = ? AND renewals = ?"
            " AND stopped_at IS NULL AND revoked IS NULL",
            (why, runtime.owner, runtime.renewals),
        )
        return cur.rowcount == 1


def owned_elsewhere(db: Db, run_ids: Sequence[str], *, me: str) -> dict[str, str | None]:
    """Of ``run_ids``, those the store says are not ``me``'s: run id -> owner.

    What a runtime asks about the runs it hosts: one taken over while it
    could not tell (paused, partitioned) must stop at once (fencing).
    """
    with db.locked() as conn:
        return owners_other_than(conn, run_ids, me)
