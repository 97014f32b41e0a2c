"""Row locks of a write on a server store: many writers at once, no lost order.

SQLite runs one write transaction at a time, so the rules of ``_append`` read
a run's row and act on it with nobody in between. PostgreSQL runs writers
side by side; before a group commit touches any run, :func:`lock_rows` takes,
in one statement and in run-id order, the row lock of every run it will write
(so two writers that share runs queue instead of deadlocking), and:

- when the write holds a control request (cancel, terminate, signal), a
  transaction-scoped advisory lock first. Control requests then commit in
  the order of their ``seq``: a reader that scans ``seq > cursor`` (the
  ControlInbox) can never see a later request commit before an earlier one
  it has already passed, which an identity column alone does not promise;
- a ``NOTIFY`` on :data:`CHANNEL` when the write holds a control request or
  creates a run, delivered at commit to every listening runtime (P2): they
  scan for requests and claims at once instead of at their next poll.

A claim (``run_claimed``) is not locked here: it locks its row with ``SKIP
LOCKED`` when it is applied, so of several runtimes claiming one run, the
first takes it and the others move on without waiting.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

from persistence._records import HeartbeatRecord, NewEvent
from persistence._schema import CONTROL_REQUEST_TYPES
from persistence._sql import Conn
from persistence._states import EventType

#: The channel a PostgreSQL store's writers notify and its runtimes listen on.
CHANNEL: Final = "proctor_changes"

#: pg_advisory_xact_lock key that orders control requests ("PRCC").
CONTROL_LOCK: Final = 0x50524343

_CONTROL: Final = frozenset(EventType(t) for t in CONTROL_REQUEST_TYPES)
_UNLOCKED: Final = frozenset({EventType.RUN_CREATED, EventType.RUN_CLAIMED})


def lock_rows(
    conn: Conn, events: Sequence[NewEvent], heartbeats: Sequence[HeartbeatRecord]
) -> None:
    """Take the locks a write on PostgreSQL needs before it applies ``events``."""
    control = any(ev.type in _CONTROL for ev in events)
    if control:
        conn.execute("SELECT pg_advisory_xact_lock(?)", (CONTROL_LOCK,))
    if control or any(ev.type is EventType.RUN_CREATED for ev in events):
        conn.execute(f"NOTIFY {CHANNEL}")
    run_ids = sorted(
        {ev.run_id for ev in events if ev.type not in _UNLOCKED} | {h.run_id for h in heartbeats}
    )
    if run_ids:
        marks = ", ".join("?" * len(run_ids))
        conn.execute(
            f"SELECT run_id FROM runs WHERE run_id IN ({marks}) ORDER BY run_id FOR UPDATE",
            run_ids,
        ).fetchall()
