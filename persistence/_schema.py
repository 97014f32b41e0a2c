"""Schema and migrations of the Proctor store.

The store identifies itself with ``PRAGMA application_id`` and records its
schema version in ``PRAGMA user_version``: both live in the database header,
so telling a Proctor store from any other SQLite file costs no query.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Final, cast

from persistence._errors import NotAProctorStore, SchemaTooNew
from persistence._file import damage
from persistence._payloads import move_existing

if TYPE_CHECKING:
    from sqlite_utils import Database

    from persistence._sql import Conn

#: "PRCT": marks a SQLite file as a Proctor store.
APPLICATION_ID: Final = 0x50524354


def _v1(db: Database) -> None:
    runs, events, steps, runtimes = (
        db.table(name) for name in ("runs", "events", "steps", "runtimes")
    )
    runs.create(
        {
            "run_id": str,
            "workflow": str,
            "status": str,
            "args": str,
            "result": str,
            "error": str,
            "parent_run_id": str,
            "owner": str,
            "lease_expires_at": float,
            "cancel_requested_at": float,
            "cancel_reason": str,
            "cancel_source": str,
            "terminate_requested_at": float,
            "terminate_reason": str,
            "created_at": float,
            "started_at": float,
            "finished_at": float,
            "last_seq": int,
        },
        pk="run_id",
        not_null={"workflow", "status", "args", "created_at", "last_seq"},
    )
    runs.create_index(["status", "created_at"])
    runs.create_index(["workflow", "created_at"])
    runs.create_index(["created_at"])
    runs.create_index(["parent_run_id"])
    events.create(
        {
            "seq": int,
            "run_id": str,
            "run_seq": int,
            "ts": float,
            "type": str,
            "step": str,
            "call": int,
            "attempt": int,
            "data": str,
        },
        pk="seq",
        not_null={"run_id", "run_seq", "ts", "type"},
    )
    events.create_index(["run_id", "run_seq"], unique=True)
    steps.create(
        {
            "run_id": str,
            "call": int,
            "attempt": int,
            "name": str,
            "status": str,
            "shielded": int,
            "started_at": float,
            "finished_at": float,
            "result": str,
            "error": str,
            "heartbeat_at": float,
            "heartbeat_details": str,
        },
        pk=("run_id", "call", "attempt"),
        not_null={"name", "status", "started_at"},
    )
    runtimes.create(
        {
            "owner": str,
            "pid": int,
            "hostname": str,
            "started_at": float,
            "heartbeat_at": float,
        },
        pk="owner",
    )


def _v2(db: Database) -> None:
    """Keyword arguments of a run (a worker starts runs it did not create), the
    grace of its cancel (the owning runtime enforces it, whoever asked), and
    an index for the ControlInbox's scan of new control requests."""
    runs, events = db.table("runs"), db.table("events")
    runs.add_column("kwargs", str)
    runs.add_column("cancel_grace", float)
    events.create_index(["type", "seq"])


def _v3(db: Database) -> None:
    """Leases (D2): a runtime's row says until when it vouches for its runs,
    and whether it stopped on purpose (its runs are then resumable at once)."""
    runtimes = db.table("runtimes")
    runtimes.add_column("lease_expires_at", float)
    runtimes.add_column("stopped_at", float)
    runtimes.add_column("version", str)


#: The control requests the ControlInbox scans for (a partial index holds only these).
CONTROL_REQUEST_TYPES: Final = ("cancel_requested", "terminate_requested", "signal_sent")
CONTROL_WHERE: Final = "type IN ({})".format(", ".join(f"'{t}'" for t in CONTROL_REQUEST_TYPES))


def _v4(db: Database) -> None:
    """The index of control requests holds only them (a partial index): every
    other event (most of the log) no longer writes an index page per type at
    each commit, a third of a commit's pages."""
    db.execute("DROP INDEX IF EXISTS idx_events_type_seq")
    db.execute(
        "CREATE INDEX idx_events_control ON events (seq)"
        " WHERE type IN ('cancel_requested', 'terminate_requested')"
    )


def _v5_payloads_once(db: Database) -> None:
    """Each payload stored once: an event whose ``moved`` is 1 left its
    payload keys (by type) to the projection that holds the same value;
    existing events are converted."""
    db.table("events").add_column("moved", int)
    move_existing(cast("Conn", db.conn))  # the store's own SQLiteConn


def _v6_leases_proven(db: Database) -> None:
    """Leases proven, not assumed (P3, fencing). A runtime's row carries:

    - ``renewals``: a counter each renewal bumps. Another runtime judges the
      lease lapsed when it has seen the counter unchanged for ``lease_ttl``
      seconds of its *own* monotonic clock, never by comparing wall clocks.
    - ``lease_ttl``: the lease the runtime promised to renew within.
    - ``pid_ns`` and ``boot_id``: where its pid means something. A pid is
      checked only by a process in the same PID namespace of the same boot.
    - ``revoked``: why its lease was ended without it stopping on purpose
      (another runtime found it silent, or it was killed); its renewals
      then fail, and it stops its runs (self-fencing).
    """
    runtimes = db.table("runtimes")
    runtimes.add_column("renewals", int, not_null_default=0)
    runtimes.add_column("lease_ttl", float)
    runtimes.add_column("pid_ns", str)
    runtimes.add_column("boot_id", str)
    runtimes.add_column("revoked", str)


def _v7_listing_pages(db: Database) -> None:
    """Listing pages (A6): an index in the listing's own order (newest
    first, then run id), so a page and its keyset cursor read only the rows
    they return; and one on the end time, for the ``ended_since`` and
    ``ended_until`` filters."""
    db.execute("CREATE INDEX idx_runs_page ON runs (created_at DESC, run_id)")
    db.execute("CREATE INDEX idx_runs_finished_at ON runs (finished_at)")


def _v8_restarts(db: Database) -> None:
    """Restarts (A7): a run created by ``restart`` names the run it restarts,
    set once at creation; the old run's restarts are found through the index,
    so nothing is ever written to the old (terminal) run."""
    db.table("runs").add_column("restarted_from", str)
    db.execute("CREATE INDEX idx_runs_restarted_from ON runs (restarted_from)")


def _v12_signals(db: Database) -> None:
    """Signals (B5): a ``signal_sent`` written by another process reaches the
    runtime that hosts the run the way a cancel does, through the ControlInbox's
    scan, so the partial index of control requests holds signals too."""
    db.execute("DROP INDEX IF EXISTS idx_events_control")
    db.execute(f"CREATE INDEX idx_events_control ON events (seq) WHERE {CONTROL_WHERE}")


#: MIGRATIONS[i] upgrades a store from version i to version i + 1.
MIGRATIONS: Final[Sequence[Callable[[Database], None]]] = (
    _v1,
    _v2,
    _v3,
    _v4,
    _v5_payloads_once,
    _v6_leases_proven,
    _v7_listing_pages,
    _v8_restarts,
    _v12_signals,
)
SCHEMA_VERSION: Final = len(MIGRATIONS)


def check_identity(conn: sqlite3.Connection, path: str) -> int:
    """Return the schema version, or raise if this is not a Proctor store.

    An empty database (a new file) has version 0 and is ours to initialise.
    """
    try:
        # One statement, so one snapshot: read separately, a store being
        # created by another process can show its tables but not yet its id.
        app_id, version, has_tables = conn.execute(
            "SELECT (SELECT application_id FROM pragma_application_id),"
            " (SELECT user_version FROM pragma_user_version),"
            " (SELECT count(*) FROM sqlite_master WHERE type = 'table')"
        ).fetchone()
    except sqlite3.OperationalError:
        raise  # locked or busy: the caller's translation says so
    except sqlite3.DatabaseError as exc:
        damaged = damage(path, exc)
        if damaged is not None:
            raise damaged from exc
        raise NotAProctorStore(f"{path} is not a Proctor store: {exc}") from exc
    if app_id != APPLICATION_ID and (app_id != 0 or has_tables):
        raise NotAProctorStore(
            f"{path} is not a Proctor store: it is another application's SQLite database"
        )
    if version > SCHEMA_VERSION:
        raise SchemaTooNew(
            f"{path} has schema version {version}, newer than this Proctor "
            f"understands ({SCHEMA_VERSION}); upgrade Proctor to open it"
        )
    return int(version)


def migrate(conn: sqlite3.Connection, path: str) -> None:
    """Bring the store to SCHEMA_VERSION, atomically; safe to race."""
    if check_identity(conn, path) == SCHEMA_VERSION:
        return
    # Imported only to create or upgrade a store: it is slow to import, and
    # opening an up-to-date store (every CLI command) does not need it.
    from sqlite_utils import Database  # noqa: PLC0415

    db = Database(conn, execute_plugins=False)
    conn.execute("BEGIN IMMEDIATE")
    try:
        # Re-read under the write lock: another process may have migrated.
        version = check_identity(conn, path)
        for migration in MIGRATIONS[version:]:
            migration(db)
        conn.execute(f"PRAGMA application_id = {APPLICATION_ID}")
        conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
