"""The ControlInbox: cancel and terminate written by other processes (DESIGN §4).

The CLI, or another runtime on the same store, writes a request into the log
and exits; it cannot reach our actors. This actor notices such writes
cheaply: every ``interval`` it reads ``PRAGMA data_version``, which changes
only when some connection commits, and only then scans the log past its
cursor for requests. It hands each one to the Guardian, which delivers it to
the run's supervisor if this runtime hosts the run.

A runtime created with ``claim_runs=True`` (``proctor worker``) also takes
the runs that nobody owns yet (``proctor start``) for the workflows this
process knows. A claim is an event the store refuses if another runtime
claimed first, so two workers never run the same run.

It keeps the runtime alive in the store: every third of the lease it asks
the Journal to renew the lease, and it watches the LeaseGuard: when the
lease's safe window passes without a renewal, it tells the Guardian to stop
every run (self-fencing; the steps themselves already raise at their next
check). And, with ``resume=True``, it looks at start and every second for
unfinished runs whose owner is dead (D2) and hands them to the Guardian to
resume by replay; it judges a silent owner by its own monotonic clock
(a LeaseObserver, P3). A cancel grace that was running when the owner died
is scheduled again from the request's time. While fenced it claims and
resumes nothing.

With a ``retention``, it also prunes finished runs older than that: one
small transaction (PRUNE_BATCH runs) per poll while old runs remain, then
nothing for PRUNE_IDLE_INTERVAL, so the Journal's commits never wait long.

Its mailbox doubles as its poll timer, like the Timers actor's: no extra thread.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Callable
from typing import Any

import pykka

from actors._base import ProctorActor, logger, tell
from actors._census import Census
from actors._clock import SystemClock
from actors._definitions import lookup_workflow, registered_workflows
from actors._fencing import LeaseGuard
from actors._halt import open_same_store
from actors._mailbox import TimerInbox
from actors._messages import (
    Append,
    Cancel,
    ClaimTag,
    Forward,
    GraceExpired,
    Journaled,
    LeaseLost,
    RenewLease,
    ScheduleTimer,
    StartRun,
    StoreLost,
    Terminate,
    TimerTick,
)
from persistence import (
    Appended,
    EventRecord,
    EventType,
    FileIdentity,
    LeaseObserver,
    NewEvent,
    PruneCursor,
    RunRecord,
    RunState,
    Store,
    StoreCorrupt,
    StoreError,
    StoreLocked,
    StoreReplaced,
    check_same_file,
    claim_request,
    prune_batch,
    prune_runtimes,
    resume_request,
    unreadable_run_failure,
)

#: How many unowned runs one poll claims at most.
CLAIM_BATCH = 32
#: How often to look for runs whose owner died, at most.
RESUME_INTERVAL = 1.0
#: How often the WAL is checkpointed (the Journal's commits do not).
CHECKPOINT_INTERVAL = 1.0
#: With a retention: the pause between prune transactions while old runs
#: remain (the Journal gets the write lock in between), and between scans
#: once none is left.
PRUNE_BUSY_INTERVAL = 0.05
PRUNE_IDLE_INTERVAL = 60.0
#: The most a prune transaction waits for the write lock before it tries later.
PRUNE_LOCK_WAIT = 0.02
#: How often to check that the store's path still names the file the
#: runtime opened (two stat calls).
FILE_CHECK_INTERVAL = 0.1


class ControlInbox(ProctorActor):
    def __init__(
        self,
        *,
        census: Census,
        parent: pykka.ActorRef[Any],
        path: str | os.PathLike[str],
        owner: str,
        journal: pykka.ActorRef[Any],
        timers: pykka.ActorRef[Any],
        clock_monotonic: Callable[[], float],
        interval: float,
        claim_runs: bool,
        cursor: int,
        resume: bool,
        lease_ttl: float,
        retention: float | None = None,
        opened: FileIdentity | None = None,
        guard: LeaseGuard | None = None,
    ) -> None:
        super().__init__(parent=parent, name="ControlInbox", census=census)
        self._retention = retention
        self._next_prune = 0.0
        self._prune_cursor: PruneCursor | None = None
        #: The store file the runtime opened: if the path names another
        #: (deleted, replaced), the runtime must stop.
        self._opened = opened
        self._next_file_check = 0.0
        self._lost = False
        self._guard = guard
        #: Whether the Guardian was told the lease's window passed (once per episode).
        self._fence_told = False
        self._resume = resume
        self._lease_ttl = lease_ttl
        self._next_resume_scan = 0.0
        self._next_checkpoint = 0.0
        self._path = path
        self._owner = owner
        self._guardian = parent
        self._journal = journal
        self._timers = timers
        self._runtime_now = clock_monotonic
        self._interval = interval
        self._claim_runs = claim_runs
        self._store: Store | None = None
        # Requests older than the runtime are not ours to deliver: a run it
        # starts later reads its state (CANCELLING, TERMINATED) from its
        # record. The facade reads the cursor before it takes any work, so
        # nothing written after that is missed, however late this thread runs.
        self._cursor = cursor
        self._version: int | None = None
        self._claiming: set[str] = set()
        #: Runs whose records cannot be read, already logged as failing.
        self._unreadable: set[str] = set()
        self._clock = SystemClock()
        self._observer = LeaseObserver(self._clock.monotonic)
        # The runtime registered itself with a full lease just before this
        # was built: the first renewal is due a third of a lease from now.
        # (Renewing at the first poll raced a test's expire_lease when this
        # thread started late, and renewed a lease meant to have run out.)
        self._next_renewal = self._clock.monotonic() + lease_ttl / 3
        assert isinstance(self.actor_inbox, TimerInbox)
        self.actor_inbox.clock = self._clock

    @staticmethod
    def _create_actor_inbox() -> TimerInbox:
        return TimerInbox()

    @property
    def cursor(self) -> int:
        """The global seq of the last control request taken (a restart goes on from it)."""
        return self._cursor

    def started(self) -> None:
        try:
            # Read-write only to checkpoint the WAL; it writes no records.
            self._store = open_same_store(self._path, self._opened)
        except (StoreReplaced, StoreCorrupt) as exc:
            self._lost = True
            tell(self._guardian, StoreLost(error=exc))
            return
        self._poll()

    def stopping(self) -> None:
        if self._store is not None:
            self._store.close()

    def handle(self, message: Any) -> None:
        if isinstance(message, TimerTick):
            self._poll()
        elif isinstance(message, Journaled):
            self._on_claimed(message)
        else:
            raise TypeError(f"ControlInbox cannot handle {message!r}")

    def _poll(self) -> None:
        if self._lost:
            return  # the Guardian is stopping the runtime
        assert self._store is not None
        now = self._clock.monotonic()
        if now >= self._next_renewal:
            # First: a renewal waits for no read of the store, however many
            # requests a busy store has for this poll to go through.
            self._next_renewal = now + self._lease_ttl / 3
            tell(self._journal, RenewLease())
        fenced = self._watch_fence()
        try:
            self._check_file()
            version = self._store.data_version()
            if version != self._version:
                self._version = version
                self._deliver(self._store.control_requests(after=self._cursor))
                if self._claim_runs and not fenced and not self._census.slots.statistics()[1]:
                    # Backpressure (DBOS's worker_concurrency): a worker whose
                    # steps already wait for slots leaves new runs to others.
                    self._claim()
            now = self._clock.monotonic()
            if now >= self._next_checkpoint:
                self._next_checkpoint = now + CHECKPOINT_INTERVAL
                self._store.checkpoint()
            if self._resume and not fenced and now >= self._next_resume_scan:
                self._next_resume_scan = now + min(RESUME_INTERVAL, self._lease_ttl / 2)
                self._resume_orphans()
            if self._retention is not None and now >= self._next_prune:
                self._prune(self._retention, now)
        except (StoreReplaced, StoreCorrupt) as exc:
            self._lost = True
            tell(self._guardian, StoreLost(error=exc))
            return
        except StoreError as exc:
            # Locked past the busy timeout, say: try again at the next tick.
            logger.warning("control inbox: cannot read the store: %s", exc)
            self._version = None
        assert isinstance(self.actor_inbox, TimerInbox)
        self.actor_inbox.deadline = self._clock.monotonic() + self._interval

    def _prune(self, retention: float, now: float) -> None:
        """One prune transaction of runs finished more than ``retention`` ago.

        It waits at most PRUNE_LOCK_WAIT for the write lock: this thread also
        delivers cancels and schedules lease renewals, so a busy store means
        "prune later", never "stop delivering".
        """
        assert self._store is not None
        # A short retention is honoured within a quarter of it.
        idle = min(PRUNE_IDLE_INTERVAL, retention / 4)
        self._next_prune = now + idle  # also the back-off if the store fails
        # Wall clock on purpose: finished_at is the store's wall-clock time.
        cutoff = time.time() - retention
        try:
            self._prune_cursor, more = prune_batch(
                self._store, cutoff, after=self._prune_cursor, lock_wait=PRUNE_LOCK_WAIT
            )
        except StoreLocked:
            self._next_prune = now + PRUNE_BUSY_INTERVAL
            return
        if not more:  # the scan is through: the runtimes' rows, then rest
            self._prune_cursor = None
            with contextlib.suppress(StoreLocked):
                prune_runtimes(self._store, cutoff, lock_wait=PRUNE_LOCK_WAIT)
        self._next_prune = now + (PRUNE_BUSY_INTERVAL if more else idle)

    def _check_file(self) -> None:
        """Raise StoreReplaced/StoreCorrupt if the store's path no longer
        names the file the runtime opened (every FILE_CHECK_INTERVAL)."""
        assert self._store is not None
        now = self._clock.monotonic()
        if now < self._next_file_check:
            return
        self._next_file_check = now + FILE_CHECK_INTERVAL
        if self._opened is not None:
            check_same_file(self._store.path, self._opened)
        self._store.check_file()

    def _watch_fence(self) -> bool:
        """Whether this runtime is fenced now; tells the Guardian once per episode."""
        why = self._guard.why_fenced() if self._guard is not None else None
        if why is None:
            self._fence_told = False
        elif not self._fence_told:
            self._fence_told = True
            tell(self._guardian, LeaseLost(why=why))
        return why is not None

    def _resume_orphans(self) -> None:
        """D2: hand every unfinished run whose owner is dead to the Guardian."""
        assert self._store is not None
        workflows = registered_workflows()
        for record, why in self._store.orphaned_runs(
            workflows, me=self._owner, observer=self._observer
        ):
            logger.info("resuming run %s (%s): %s", record.run_id, record.workflow, why)
            self._hand_over(record, record.status, resume_from=record.owner, why=why)

    def _hand_over(
        self,
        record: RunRecord,
        state: RunState,
        *,
        resume_from: str | None = None,
        why: str | None = None,
    ) -> None:
        """Give the run to the Guardian to host, and re-arm its cancel's grace."""
        if record.defect is not None:
            take = None
            if resume_from is not None:
                take = resume_request(
                    record.run_id,
                    self._owner,
                    previous_owner=resume_from,
                    seen_seq=record.last_seq,
                    why=why,
                )
            self._fail_unreadable(record, record.defect, take)
            return
        workflow = lookup_workflow(record.workflow)
        assert workflow is not None  # we only claim or resume workflows we know
        tell(
            self._guardian,
            StartRun.of_record(record, workflow, state, resume_from=resume_from, resume_why=why),
        )
        # A cancel asked while nobody hosted the run: its grace has been running since.
        self._regrace(record)

    def _fail_unreadable(self, record: RunRecord, defect: str, take: NewEvent | None) -> None:
        """A run whose record cannot be read fails alone; this actor goes on."""
        if record.run_id not in self._unreadable:
            self._unreadable.add(record.run_id)
            logger.error("run %s cannot be read, failing it: %s", record.run_id, defect)
        group = unreadable_run_failure(record, defect, take=take)
        tell(self._journal, Append(events=tuple(group)))

    def _regrace(self, record: RunRecord) -> None:
        """A cancel's grace survives its owner: it counts from the request (C8, D3)."""
        if record.cancel_requested_at is not None and record.cancel_grace is not None:
            self._schedule_grace(
                record.run_id, record.cancel_requested_at, record.cancel_grace, record.cancel_reason
            )

    def _deliver(self, requests: list[EventRecord]) -> None:
        for request in requests:
            self._cursor = request.seq
            data = request.data
            if request.defect is not None:
                # Its type is known, so it is still delivered; its details are lost.
                logger.warning(
                    "run %s: %s #%d cannot be read (%s); delivered without its details",
                    request.run_id,
                    request.type,
                    request.seq,
                    request.defect,
                )
            if data.get("origin") == self._owner:
                continue  # our own facade or supervisors delivered it already
            if request.type is EventType.CANCEL_REQUESTED:
                reason = data.get("reason")
                cancel = Cancel(reason=reason, source=data.get("source") or "unknown")
                tell(self._guardian, Forward(run_id=request.run_id, message=cancel))
                if data.get("grace") is not None:
                    self._schedule_grace(request.run_id, request.ts, data["grace"], reason)
            else:
                terminate = Terminate(reason=data.get("reason"))
                tell(self._guardian, Forward(run_id=request.run_id, message=terminate))

    def _schedule_grace(
        self, run_id: str, requested_at: float, grace: float, reason: str | None
    ) -> None:
        """C8 for a cancel asked elsewhere: the grace counts from the request."""
        left = max(0.0, grace - (time.time() - requested_at))
        tell(
            self._timers,
            ScheduleTimer(
                token=("grace", run_id),
                due=self._runtime_now() + left,
                target=self._guardian,
                message=GraceExpired(run_id=run_id, reason=reason),
            ),
        )

    def _claim(self) -> None:
        assert self._store is not None
        candidates = self._store.claimable(registered_workflows(), limit=CLAIM_BATCH)
        for record in candidates:
            if record.run_id in self._claiming:
                continue
            if record.defect is not None:  # claimed and failed in one group
                take = claim_request(record.run_id, self._owner)
                self._fail_unreadable(record, record.defect, take)
                continue
            self._claiming.add(record.run_id)
            tell(
                self._journal,
                Append(
                    events=(claim_request(record.run_id, self._owner),),
                    notify=self.actor_ref,
                    tag=ClaimTag(record=record),
                ),
            )

    def _on_claimed(self, msg: Journaled) -> None:
        assert isinstance(msg.tag, ClaimTag)
        record = msg.tag.record
        self._claiming.discard(record.run_id)
        outcome = msg.outcomes[0] if msg.outcomes else None
        if not isinstance(outcome, Appended):
            return  # another runtime was first, or the run ended meanwhile
        logger.info("claimed run %s (%s)", record.run_id, record.workflow)
        self._hand_over(record, outcome.status)
