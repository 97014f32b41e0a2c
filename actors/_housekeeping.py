"""The runtime's housekeeping, done on the ControlInbox's poll.

Everything a runtime does to the store on a timer besides delivering
control requests: asking the Journal to renew the lease, watching the
LeaseGuard (self-fencing), checking that the store's path still names the
file it opened, checkpointing the WAL, claiming unowned runs
(``claim_runs``), resuming runs whose owner died (D2, judged on its own
monotonic clock, P3), and pruning finished runs past the retention.

A collaborator of the ControlInbox, not an actor: it runs on that actor's
thread and poll, with that actor's reading connection, so it costs no
thread and no connection of its own.

Invariants:

* the lease renewal is asked for before any read of the store, so a slow
  store delays no renewal;
* while the runtime is fenced it claims and resumes nothing;
* a run is handed to the Guardian at most once per claim (``_claiming``),
  and a run whose record cannot be read fails alone, logged once;
* a prune transaction waits at most PRUNE_LOCK_WAIT for the write lock: a
  busy store means "prune later", never "stop delivering".
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from typing import Any

import pykka

from actors._base import logger, tell
from actors._census import Census
from actors._clock import SystemClock
from actors._definitions import lookup_workflow, registered_workflows
from actors._fencing import LeaseGuard
from actors._log_records import run_extra
from actors._messages import Append, ClaimTag, Journaled, LeaseLost, RenewLease, StartRun
from persistence import (
    Appended,
    EventType,
    FileIdentity,
    LeaseObserver,
    NewEvent,
    PruneCursor,
    RunRecord,
    RunState,
    Store,
    StoreLocked,
    check_same_file,
    claim_request,
    prune_batch,
    prune_runtimes,
    resume_request,
    run_deadline,
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


class Housekeeping:
    """The timed chores of one runtime over its store (see the module).

    Args:
        store: the ControlInbox's connection (read-write only to checkpoint
            and prune; it writes no records, the Journal does).
        owner: the runtime's id.
        guardian, journal: the runtime's actors.
        me: the ControlInbox's ref, which the Journal tells of claims.
        census: the runtime's census (a worker whose steps wait for slots
            claims nothing: backpressure).
        clock: the poll's own clock (never a FakeClock: leases are real time).
        regrace: re-arms the cancel grace of a run handed over (C8, D3).
        first_renewal: when the first lease renewal is due, on ``clock``.
    """

    def __init__(
        self,
        *,
        store: Store,
        owner: str,
        guardian: pykka.ActorRef[Any],
        journal: pykka.ActorRef[Any],
        me: pykka.ActorRef[Any],
        census: Census,
        clock: SystemClock,
        regrace: Callable[[RunRecord], None],
        claim_runs: bool,
        resume: bool,
        lease_ttl: float,
        retention: float | None,
        opened: FileIdentity | None,
        guard: LeaseGuard | None,
        first_renewal: float,
    ) -> None:
        self._store = store
        self._owner = owner
        self._guardian = guardian
        self._journal = journal
        self._me = me
        self._census = census
        self._clock = clock
        self._regrace = regrace
        self._claim_runs = claim_runs
        self._resume = resume
        self._lease_ttl = lease_ttl
        self._retention = retention
        #: The store file the runtime opened: if the path names another
        #: (deleted, replaced), the runtime must stop.
        self._opened = opened
        self._guard = guard
        #: Whether the Guardian was told the lease's window passed (once per episode).
        self._fence_told = False
        self._observer = LeaseObserver(clock.monotonic)
        self._next_renewal = first_renewal
        self._next_file_check = 0.0
        self._next_checkpoint = 0.0
        self._next_resume_scan = 0.0
        self._next_prune = 0.0
        self._prune_cursor: PruneCursor | None = None
        self._claiming: set[str] = set()
        #: Runs whose records cannot be read, already logged as failing.
        self._unreadable: set[str] = set()

    def take_no_runs(self) -> None:
        """The runtime drains (A4): claim and resume nothing from now on."""
        self._claim_runs = self._resume = False

    def renew_if_due(self) -> None:
        """Ask the Journal to renew the lease, every third of it."""
        now = self._clock.monotonic()
        if now >= self._next_renewal:
            # First: a renewal waits for no read of the store, however many
            # requests a busy store has for this poll to go through.
            self._next_renewal = now + self._lease_ttl / 3
            tell(self._journal, RenewLease())

    def watch_fence(self) -> bool:
        """Whether this runtime is fenced now; tells the Guardian once per episode."""
        why = self._guard.why_fenced() if self._guard is not None else None
        if why is None:
            self._fence_told = False
        elif not self._fence_told:
            self._fence_told = True
            tell(self._guardian, LeaseLost(why=why))
        return why is not None

    def check_same_store(self) -> None:
        """Raise StoreReplaced/StoreCorrupt if the store's path no longer
        names the file the runtime opened (every FILE_CHECK_INTERVAL)."""
        now = self._clock.monotonic()
        if now < self._next_file_check:
            return
        self._next_file_check = now + FILE_CHECK_INTERVAL
        if self._opened is not None:
            check_same_file(self._store.path, self._opened)
        self._store.check_same_store()

    def claim_if_free(self, fenced: bool) -> None:
        """After the store changed: claim unowned runs, if this runtime may."""
        if self._claim_runs and not fenced and not self._census.slots.statistics()[1]:
            # Backpressure (DBOS's worker_concurrency): a worker whose
            # steps already wait for slots leaves new runs to others.
            self._claim()

    def maintain(self, fenced: bool) -> None:
        """The WAL checkpoint, the orphan scan and the prune, each when due."""
        now = self._clock.monotonic()
        if now >= self._next_checkpoint:
            self._next_checkpoint = now + CHECKPOINT_INTERVAL
            self._store.housekeep()
        if self._resume and not fenced and now >= self._next_resume_scan:
            self._next_resume_scan = now + min(RESUME_INTERVAL, self._lease_ttl / 2)
            self._resume_orphans()
        if self._retention is not None and now >= self._next_prune:
            self._prune(self._retention, now)

    def _prune(self, retention: float, now: float) -> None:
        """One prune transaction of runs finished more than ``retention`` ago.

        It waits at most PRUNE_LOCK_WAIT for the write lock: this thread also
        delivers cancels and schedules lease renewals, so a busy store means
        "prune later", never "stop delivering".
        """
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

    def _resume_orphans(self) -> None:
        """D2: hand every unfinished run whose owner is dead to the Guardian."""
        workflows = registered_workflows()
        for record, why in self._store.orphaned_runs(
            workflows, me=self._owner, observer=self._observer
        ):
            logger.info(
                "resuming run %s (%s): %s",
                record.run_id,
                record.workflow,
                why,
                extra=run_extra(
                    record.run_id, event_type=EventType.RUN_RESUMED, workflow=record.workflow
                ),
            )
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
        reused: tuple[NewEvent, ...] = ()
        if record.restarted_from is not None and resume_from is None:
            # A restart created by another process (A7): its body replays the
            # calls reused from the run it restarts (a takeover reads its own log).
            reused = tuple(
                NewEvent(
                    run_id=e.run_id,
                    type=e.type,
                    step=e.step,
                    call=e.call,
                    attempt=e.attempt,
                    data=e.data,
                )
                for e in self._store.events(record.run_id)
                if e.type is EventType.CALL_REUSED
            )
        tell(
            self._guardian,
            StartRun.of_record(
                record,
                workflow,
                state,
                resume_from=resume_from,
                resume_why=why,
                reused=reused,
                deadline=run_deadline(self._store, record.run_id),  # B4: it counts on
            ),
        )
        # A cancel asked while nobody hosted the run: its grace has been running since.
        self._regrace(record)

    def _fail_unreadable(self, record: RunRecord, defect: str, take: NewEvent | None) -> None:
        """A run whose record cannot be read fails alone; the poll goes on."""
        if record.run_id not in self._unreadable:
            self._unreadable.add(record.run_id)
            logger.error(
                "run %s cannot be read, failing it: %s",
                record.run_id,
                defect,
                extra=run_extra(
                    record.run_id, event_type=EventType.RUN_FAILED, workflow=record.workflow
                ),
            )
        group = unreadable_run_failure(record, defect, take=take)
        tell(self._journal, Append(events=tuple(group)))

    def _claim(self) -> None:
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
                    notify=self._me,
                    tag=ClaimTag(record=record),
                ),
            )

    def on_claimed(self, msg: Journaled) -> None:
        """The Journal's answer to a claim: host the run if the claim took."""
        assert isinstance(msg.tag, ClaimTag)
        record = msg.tag.record
        self._claiming.discard(record.run_id)
        outcome = msg.outcomes[0] if msg.outcomes else None
        if not isinstance(outcome, Appended):
            return  # another runtime was first, or the run ended meanwhile
        logger.info(
            "claimed run %s (%s)",
            record.run_id,
            record.workflow,
            extra=run_extra(
                record.run_id, event_type=EventType.RUN_CLAIMED, workflow=record.workflow
            ),
        )
        self._hand_over(record, outcome.status)
