"""The ControlInbox: cancel, terminate and signals written by other processes (DESIGN §4).

The CLI, or another runtime on the same store, writes a request into the log
and exits; it cannot reach our actors. This actor notices such writes
cheaply: every ``interval`` it reads the store's change token (``Store.changes``), which changes
only when some connection commits, and only then scans the log past its
cursor for requests. It hands each one to the Guardian, which delivers it to
the run's supervisor if this runtime hosts the run.

On the same poll, and on the same connection, it runs the runtime's
housekeeping (``_housekeeping``): lease renewal, self-fencing, the store
file check, the WAL checkpoint, claims, resuming orphaned runs, pruning.

It keeps the cancel graces of requests made elsewhere (C8): a grace counts
from the request's time, also for a run handed over after its owner died.

Invariants: requests are delivered in log order, each once (the cursor
only moves forward, and a restarted ControlInbox goes on from it); a
request this runtime made itself (``origin``) is not delivered twice; a
signal (B5) is delivered from here only, whoever sent it, so a run hears of
its signals in the order the log has them.

Its mailbox doubles as its poll timer, like the Timers actor's: no extra thread.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from typing import Any

import pykka

from actors._base import ProctorActor, logger, tell
from actors._census import Census
from actors._clock import SystemClock
from actors._fencing import LeaseGuard
from actors._housekeeping import Housekeeping
from actors._log_records import run_extra
from actors._mailbox import TimerInbox
from actors._messages import (
    Cancel,
    Forward,
    GraceExpired,
    Journaled,
    ScheduleTimer,
    SignalArrived,
    StoreLost,
    TakeNoRuns,
    Terminate,
    TimerTick,
)
from actors._tracing import TraceSink
from persistence import (
    EventRecord,
    EventType,
    FileIdentity,
    RunRecord,
    Store,
    StoreCorrupt,
    StoreError,
    StoreLocked,
    StoreReplaced,
    StoreUnavailable,
    open_same_store,
)

#: How often a ControlInbox whose store could not be opened tries again (seconds).
REOPEN_EVERY = 0.5


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
        tracing: TraceSink | None = None,
    ) -> None:
        super().__init__(parent=parent, name="ControlInbox", census=census)
        self._tracing = tracing  # O2: requests of other processes become span events
        self._retention = retention
        #: The store file the runtime opened: never another one.
        self._opened = opened
        self._lost = False
        self._guard = guard
        self._resume = resume
        self._lease_ttl = lease_ttl
        self._path = path
        self._owner = owner
        self._guardian = parent
        self._journal = journal
        self._timers = timers
        self._runtime_now = clock_monotonic
        self._interval = interval
        self._claim_runs = claim_runs
        self._store: Store | None = None
        self._housekeeping: Housekeeping | None = None
        # Requests older than the runtime are not ours to deliver: a run it
        # starts later reads its state (CANCELLING, TERMINATED) from its
        # record. The facade reads the cursor before it takes any work, so
        # nothing written after that is missed, however late this thread runs.
        self._cursor = cursor
        self._version: int | None = None
        self._clock = SystemClock()
        # The runtime registered itself with a full lease just before this
        # was built: the first renewal is due a third of a lease from now.
        # (Renewing at the first poll raced a test's expire_lease when this
        # thread started late, and renewed a lease meant to have run out.)
        self._first_renewal = self._clock.monotonic() + lease_ttl / 3
        assert isinstance(self.actor_inbox, TimerInbox)
        self.actor_inbox.clock = self._clock

    def new_inbox(self) -> TimerInbox:
        return TimerInbox()

    @property
    def cursor(self) -> int:
        """The global seq of the last control request taken (a restart goes on from it)."""
        return self._cursor

    def started(self) -> None:
        self._poll()

    def _open(self) -> bool:
        """Open this actor's connection and its housekeeping; False if not now.

        A server store out of reach (``StoreUnavailable``, ``StoreLocked``: a
        restart) is tried again every ``REOPEN_EVERY`` seconds, not a crash:
        restarted while the server is down, this actor would die again at
        once and, past its restart intensity, stop the runtime.
        """
        try:
            # Read-write only to checkpoint the WAL; it writes no records.
            self._store = open_same_store(self._path, self._opened)
        except (StoreReplaced, StoreCorrupt) as exc:
            self._lost = True
            tell(self._guardian, StoreLost(error=exc))
            return False
        except (StoreUnavailable, StoreLocked) as exc:
            logger.warning("control inbox: cannot open the store yet: %s", exc)
            assert isinstance(self.actor_inbox, TimerInbox)
            self.actor_inbox.deadline = self._clock.monotonic() + REOPEN_EVERY
            return False
        self._housekeeping = Housekeeping(
            store=self._store,
            owner=self._owner,
            guardian=self._guardian,
            journal=self._journal,
            me=self.actor_ref,
            census=self._census,
            clock=self._clock,
            regrace=self._regrace,
            claim_runs=self._claim_runs,
            resume=self._resume,
            lease_ttl=self._lease_ttl,
            retention=self._retention,
            opened=self._opened,
            guard=self._guard,
            first_renewal=self._first_renewal,
        )
        return True

    def stopping(self) -> None:
        if self._store is not None:
            self._store.close()

    def handle(self, message: Any) -> None:
        if isinstance(message, TimerTick):
            self._poll()
        elif isinstance(message, Journaled):
            assert self._housekeeping is not None
            self._housekeeping.on_claimed(message)
        elif isinstance(message, TakeNoRuns):
            self._claim_runs = self._resume = False  # for the Housekeeping not yet built
            if self._housekeeping is not None:
                self._housekeeping.take_no_runs()
        else:
            raise TypeError(f"ControlInbox cannot handle {message!r}")

    def _poll(self) -> None:
        if self._lost:
            return  # the Guardian is stopping the runtime
        if self._store is None and not self._open():
            return
        assert self._store is not None
        assert self._housekeeping is not None
        chores = self._housekeeping
        chores.renew_if_due()
        fenced = chores.watch_fence()
        try:
            chores.check_same_store()
            version = self._store.changes()
            if version != self._version:
                self._version = version
                self._deliver(self._store.control_requests(after=self._cursor))
                chores.claim_if_free(fenced)
            chores.maintain(fenced)
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
                    extra=run_extra(request.run_id, event_type=request.type),
                )
            if request.type is EventType.SIGNAL_SENT:
                # B5: every signal, our own facade's too, takes this one path,
                # in the log's order: a run takes signals of one name in the
                # order they were recorded, whichever process sent them.
                signal = SignalArrived(
                    signal_id=str(data.get("signal_id")),
                    name=str(data.get("name")),
                    payload=data.get("payload"),
                )
                tell(self._guardian, Forward(run_id=request.run_id, message=signal))
                continue
            if self._tracing is not None:
                self._tracing.request_read(request)
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
