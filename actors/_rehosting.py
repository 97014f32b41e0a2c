"""Hosting a run again: after its supervisor stopped on a store failure, or for fencing.

Like an OTP supervisor restarting a crashed child, the Guardian hosts such
a run again from its log, after a back-off doubling from REHOST_FIRST to at
most REHOST_MAX seconds per run. A run stopped because the lease's safe
window passed (fenced) is hosted again once a renewal succeeds, if the
store still says it is ours. Step ends the stopped supervisor could not
record are handed to the next one.

A collaborator of the Guardian (on its thread), with its own state: which
runs wait to be hosted again, how often each was, and why each fenced run
stopped.

Invariants: a run is hosted again only if the store still names this
runtime its owner and it has not ended; a runtime whose lease was revoked
hosts nothing again; a run's back-off starts afresh once it ended or was
hosted without needing another try.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pykka

from actors._base import logger
from actors._clock import Clock
from actors._definitions import lookup_workflow
from actors._fencing import LeaseGuard
from actors._log_records import run_extra
from actors._messages import Rehost, ScheduleTimer, StartRun
from persistence import CorruptRecord, NewEvent, Store, StoreError, run_deadline

#: Back-off before a run whose supervisor stopped on a store failure is hosted
#: again: doubling from REHOST_FIRST, at most REHOST_MAX seconds.
REHOST_FIRST = 0.5
REHOST_MAX = 30.0


class Rehosting:
    """Runs to host again, their back-off, and what their last supervisor left.

    Args:
        owner: the runtime's id.
        reader: the facade's reading connection (a run's record before rehosting).
        guard: the runtime's LeaseGuard (None: no fencing).
        clock: the Timers' clock.
        timers: the Timers actor, which sends the Guardian a :class:`Rehost`.
        guardian: the Guardian's ref (the timer's target).
        start_run: hosts a run (the Guardian's own path for StartRun).
    """

    def __init__(
        self,
        *,
        owner: str,
        reader: Store,
        guard: LeaseGuard | None,
        clock: Clock,
        timers: pykka.ActorRef[Any],
        guardian: pykka.ActorRef[Any],
        start_run: Callable[[StartRun], None],
    ) -> None:
        self._owner = owner
        self._reader = reader
        self._guard = guard
        self._clock = clock
        self._timers = timers
        self._guardian = guardian
        self._start_run = start_run
        #: Top-level runs whose hosting stopped for fencing, and why.
        self._fenced: dict[str, str] = {}
        #: Runs to host again, and how many times they were (for the back-off).
        self._rehosting: set[str] = set()
        self._rehosts: dict[str, int] = {}
        #: Step ends a run's stopped supervisor could not record, for the next.
        self._unrecorded: dict[str, tuple[NewEvent, ...]] = {}

    def fence(self, run_id: str, why: str) -> bool:
        """Note that ``run_id`` stops hosting for fencing; False if it was already."""
        if run_id in self._fenced:
            return False
        self._fenced[run_id] = why
        return True

    def take_fenced(self, run_id: str) -> str | None:
        """Why the run's hosting stopped for fencing (and forget it), or None."""
        return self._fenced.pop(run_id, None)

    def keep_unrecorded(self, run_id: str, events: tuple[NewEvent, ...]) -> None:
        """Step ends the run's stopped supervisor saw and could not record."""
        if events:
            self._unrecorded[run_id] = events

    def ended(self, run_id: str) -> None:
        """The run's supervisor stopped for good: its back-off starts afresh next time."""
        if run_id not in self._rehosting:
            self._rehosts.pop(run_id, None)
            self._unrecorded.pop(run_id, None)

    def later(self, run_id: str, why: str) -> None:
        """Host the run again after its back-off."""
        tries = self._rehosts[run_id] = self._rehosts.get(run_id, 0) + 1
        delay = min(REHOST_MAX, REHOST_FIRST * 2 ** (tries - 1))
        logger.warning(
            "run %s: %s; hosting it again in %.1fs", run_id, why, delay, extra=run_extra(run_id)
        )
        self._rehosting.add(run_id)
        self._timers.tell(
            ScheduleTimer(
                token=("rehost", run_id),
                due=self._clock.monotonic() + delay,
                target=self._guardian,
                message=Rehost(run_id=run_id, why=why),
            )
        )

    def due(self, msg: Rehost) -> None:
        """The back-off is over: replay the run from its log, if it is still
        ours and unfinished."""
        if msg.run_id not in self._rehosting:
            return
        self._rehosting.discard(msg.run_id)
        if self._guard is not None and self._guard.revoked is not None:
            return  # we were judged dead: the run is for other runtimes to resume
        try:
            record = self._reader.find_run(msg.run_id)
            deadline = run_deadline(self._reader, msg.run_id) if record is not None else None
        except CorruptRecord as exc:
            logger.error(
                "run %s: not hosted again: %s", msg.run_id, exc, extra=run_extra(msg.run_id)
            )
            self._rehosts.pop(msg.run_id, None)
            return
        except StoreError as exc:
            self.later(msg.run_id, f"{msg.why}; then {exc}")
            return
        if record is None or record.status.is_terminal or record.owner != self._owner:
            self._rehosts.pop(msg.run_id, None)
            self._unrecorded.pop(msg.run_id, None)
            return  # ended (terminated, say) or taken over meanwhile
        workflow = lookup_workflow(record.workflow)
        assert workflow is not None  # it was started here, so it is registered
        self._start_run(
            StartRun.of_record(
                record,
                workflow,
                record.status,
                resume_from=self._owner,
                resume_why=msg.why,
                unrecorded=self._unrecorded.pop(msg.run_id, ()),
                deadline=deadline,
            )
        )
