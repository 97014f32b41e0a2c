"""The Guardian: root supervisor of a runtime's actors.

It starts the Journal and the Timers, starts one RunSupervisor per top-level
run (child runs live under their parent's), hears every child's exit (death
watch), turns an expired cancel grace into a terminate (C8), and stops
everything in order on shutdown: run supervisors first, so their last records
still reach the Journal, then Timers and Journal.

Fencing: when the runtime cannot prove it still owns a run (``LeaseLost``,
from the Journal, the ControlInbox or a run's supervisor), it stops hosting
it at once, recording nothing more; a run stopped only because the lease's
safe window passed is hosted again from its log once a renewal succeeds,
if the store still says it is ours.
"""

from __future__ import annotations

import collections
import os
import time
from collections.abc import Callable
from typing import Any

import pykka

from actors._base import ProctorActor, logger, tell
from actors._census import Census
from actors._clock import Clock
from actors._control_inbox import ControlInbox
from actors._definitions import lookup_workflow
from actors._directory import Directory
from actors._errors import RuntimeClosed, describe
from actors._fencing import LeaseGuard
from actors._halt import Halt
from actors._journal import Journal
from actors._messages import (
    Append,
    Cancel,
    ChildExited,
    ControlAppend,
    ExitKind,
    ExitReason,
    Forward,
    GetWiring,
    GraceExpired,
    LeaseLost,
    Rehost,
    ScheduleTimer,
    Shutdown,
    StartRun,
    StoreLost,
    Terminate,
    Wiring,
)
from actors._supervisor import RunSupervisor
from actors._timers import Timers
from persistence import (
    DEFAULT_MAX_PAYLOAD_BYTES,
    CorruptRecord,
    EventType,
    NewEvent,
    ProctorError,
    RunState,
    Store,
    StoreCorrupt,
    StoreError,
    StoreReplaced,
    Synchronous,
    terminate_request,
)

#: Back-off before a run whose supervisor stopped on a store failure is hosted
#: again: doubling from REHOST_FIRST, at most REHOST_MAX seconds.
REHOST_FIRST = 0.5
REHOST_MAX = 30.0
#: Restart intensity of the ControlInbox (Erlang/OTP's MaxR and MaxT): a
#: death beyond RESTART_INTENSITY restarts within RESTART_PERIOD seconds
#: escalates, and the runtime stops. The Journal and the Timers are never
#: restarted: other actors hold their refs and their state (unanswered
#: appends, pending timers) dies with them, so their death stops the runtime.
RESTART_INTENSITY = 3
RESTART_PERIOD = 5.0


class Guardian(ProctorActor):
    def __init__(
        self,
        *,
        census: Census,
        owner: str,
        path: str | os.PathLike[str],
        synchronous: Synchronous,
        busy_timeout: float,
        clock: Clock,
        directory: Directory,
        on_terminal: Callable[[str, RunState], None],
        control_interval: float,
        claim_runs: bool,
        control_cursor: int,
        reader: Store,
        resume: bool,
        lease_ttl: float,
        halted: Halt,
        max_batch: int,
        max_payload_bytes: int = DEFAULT_MAX_PAYLOAD_BYTES,
        retention: float | None = None,
        guard: LeaseGuard | None = None,
    ) -> None:
        super().__init__(parent=None, name="Guardian", census=census)
        self._max_batch = max_batch
        self._max_payload_bytes = max_payload_bytes
        self._retention = retention
        self._guard = guard
        #: Top-level runs whose hosting stopped for fencing, and why.
        self._fenced: dict[str, str] = {}
        self._reader = reader
        self._resume = resume
        self._lease_ttl = lease_ttl
        self._halted = halted
        self._owner = owner
        self._control_interval = control_interval
        self._claim_runs = claim_runs
        self._control_cursor = control_cursor
        self._path = path
        self._synchronous: Synchronous = synchronous
        self._busy_timeout = busy_timeout
        self._clock = clock
        self._directory = directory
        self._on_terminal = on_terminal
        self._shutdown: Shutdown | None = None
        self._journal: pykka.ActorRef[Any] | None = None
        self._timers: pykka.ActorRef[Any] | None = None
        self._control: pykka.ActorRef[Any] | None = None
        self._control_actor: ControlInbox | None = None
        #: When the ControlInbox was restarted, within the last RESTART_PERIOD.
        self._restarts: collections.deque[float] = collections.deque()
        self._journal_dead = False
        #: Service actors (Timers, ControlInbox) that have ended.
        self._services_ended: set[str] = set()
        #: The top-level runs' supervisors, by run id: this actor's own children.
        self._runs: dict[str, pykka.ActorRef[Any]] = {}
        #: Runs to host again after a store failure, and how many times they
        #: were (for the back-off).
        self._rehosting: set[str] = set()
        self._rehosts: dict[str, int] = {}
        #: Step ends a run's stopped supervisor could not record, for the next.
        self._unrecorded: dict[str, tuple[NewEvent, ...]] = {}

    def started(self) -> None:
        self._journal = Journal.start(
            census=self._census,
            parent=self.actor_ref,
            path=self._path,
            synchronous=self._synchronous,
            busy_timeout=self._busy_timeout,
            on_terminal=self._on_terminal,
            owner=self._owner,
            lease_ttl=self._lease_ttl,
            halted=self._halted,
            max_batch=self._max_batch,
            opened=self._reader.opened,
            guard=self._guard,
            hosted=self._directory.run_ids,
        )
        self._timers = Timers.start(census=self._census, parent=self.actor_ref, clock=self._clock)
        self._start_control(self._control_cursor)

    def _start_control(self, cursor: int) -> None:
        """(Re)start the ControlInbox; it delivers requests past ``cursor``."""
        assert self._journal is not None
        assert self._timers is not None
        self._control_actor = ControlInbox.prepare(
            census=self._census,
            parent=self.actor_ref,
            path=self._path,
            owner=self._owner,
            journal=self._journal,
            timers=self._timers,
            clock_monotonic=self._clock.monotonic,
            interval=self._control_interval,
            claim_runs=self._claim_runs,
            cursor=cursor,
            resume=self._resume,
            lease_ttl=self._lease_ttl,
            retention=self._retention,
            opened=self._reader.opened,
            guard=self._guard,
        )
        self._control = self._control_actor.launch()

    @property
    def journal(self) -> pykka.ActorRef[Any]:
        assert self._journal is not None
        return self._journal

    def handle(self, message: Any) -> Any:
        if isinstance(message, GetWiring):
            assert self._timers is not None
            return Wiring(journal=self.journal, timers=self._timers)
        if isinstance(message, StartRun):
            self._start_run(message)
        elif isinstance(message, Forward):
            ref = self._directory.get(message.run_id)
            if ref is not None:
                tell(ref, message.message)
        elif isinstance(message, ChildExited):
            self._on_child_exited(message)
        elif isinstance(message, GraceExpired):
            self._on_grace_expired(message)
        elif isinstance(message, Rehost):
            self._rehost(message)
        elif isinstance(message, StoreLost):
            self._escalate(message.error)
        elif isinstance(message, LeaseLost):
            self._on_lease_lost(message)
        elif isinstance(message, Shutdown):
            # A second Shutdown (abandon=True) tells the runs to stop waiting.
            first = self._shutdown is None
            if first:
                self._shutdown = message
                self._census.slots.close()  # no waiting step starts any more
                if self._control is not None:
                    self._control.stop(block=False)  # take no new runs
            elif (
                message.reply is not None
                and self._shutdown is not None
                and self._shutdown.reply is None
            ):
                # The runtime stopped itself (escalation): the facade's
                # close() waits for this answer.
                self._shutdown = message
                first = True
            for ref in self._runs.values():
                tell(ref, Shutdown(abandon=message.abandon))
            if first and not self._runs:
                self._stop_services()
        else:
            raise TypeError(f"Guardian cannot handle {message!r}")
        return None

    def _start_run(self, msg: StartRun) -> None:
        if self._shutdown is not None:
            if msg.created is not None:  # a new run: nothing of it was written
                closed = RuntimeClosed(f"runtime {self._owner} is closed")
                msg.created.set_exception((RuntimeClosed, closed, None))
            return  # the run stays PENDING in the store for the next runtime
        if self._directory.get(msg.run_id) is not None:
            return  # hosted already (found orphaned twice while being resumed)
        fenced = self._guard.why_fenced() if self._guard is not None else None
        if fenced is not None:
            if msg.created is not None:  # a new run: nothing of it was written
                msg.created.set_exception((ProctorError, ProctorError(fenced), None))
            else:  # claimed or resumed just before: host it once we can, if still ours
                self._rehost_later(msg.run_id, fenced)
            return
        state, cancel = msg.state, None
        if state is RunState.CANCELLING:
            cancel = Cancel(reason=msg.cancel_reason, source=msg.cancel_source or "api")
        ref = RunSupervisor.start(
            census=self._census,
            parent=self.actor_ref,
            journal=self.journal,
            directory=self._directory,
            owner=self._owner,
            run_id=msg.run_id,
            workflow=msg.workflow,
            args=msg.args,
            kwargs=msg.kwargs,
            state=state,
            cancel=cancel,
            reader=self._reader,
            timers=self._timers,
            clock=self._clock,
            resume=msg.resume_from is not None,
            resume_from=msg.resume_from,
            resume_why=msg.resume_why,
            unrecorded=msg.unrecorded,
            create=msg.create,
            created=msg.created,
            max_payload_bytes=self._max_payload_bytes,
            guard=self._guard,
        )
        self._runs[msg.run_id] = ref

    def _on_child_exited(self, msg: ChildExited) -> None:
        if msg.child in (self._journal, self._timers, self._control):
            if msg.child == self._journal:
                self._journal_dead = True
            if self._shutdown is None:
                self._service_died(msg)
            if msg.child == self._journal:
                self._journal_exited()
            else:
                self._services_ended.add(msg.child.actor_urn)
                if self._journal_dead:
                    self._journal_exited()
            return
        run_id = msg.name
        hosted = self._runs.pop(run_id, None) is not None
        fenced = self._fenced.pop(run_id, None)
        if fenced is not None and self._shutdown is None:
            self._rehost_later(run_id, fenced)  # if the store says it is still ours
            return
        error = msg.reason.error
        if (
            msg.reason.kind is ExitKind.FAILED
            and self._shutdown is None
            and isinstance(error, StoreError)
            and not isinstance(error, CorruptRecord)  # reading it again cannot help
            and hosted
        ):
            # The store failed under the run (locked past the busy timeout,
            # say), not the run itself: like an OTP supervisor restarting a
            # crashed child, host it again from its log after a back-off.
            if msg.reason.unrecorded:
                self._unrecorded[run_id] = msg.reason.unrecorded
            self._rehost_later(run_id, f"its supervisor stopped: {error}")
        elif msg.reason.kind is ExitKind.FAILED and self._shutdown is None:
            # A supervisor crashed (a Proctor bug, or the store failed): record
            # the run as failed if the store still takes it; fencing decides.
            error = msg.reason.error or RuntimeError("run supervisor crashed")
            event = NewEvent(
                run_id=run_id, type=EventType.RUN_FAILED, data={"error": describe(error)}
            )
            tell(self.journal, Append(events=(event,)))
        if run_id not in self._rehosting:
            self._rehosts.pop(run_id, None)  # its back-off starts afresh next time
            self._unrecorded.pop(run_id, None)
        if self._shutdown is not None and not self._runs:
            self._stop_services()

    def _rehost_later(self, run_id: str, why: str) -> None:
        assert self._timers is not None
        tries = self._rehosts[run_id] = self._rehosts.get(run_id, 0) + 1
        delay = min(REHOST_MAX, REHOST_FIRST * 2 ** (tries - 1))
        logger.warning("run %s: %s; hosting it again in %.1fs", run_id, why, delay)
        self._rehosting.add(run_id)
        self._timers.tell(
            ScheduleTimer(
                token=("rehost", run_id),
                due=self._clock.monotonic() + delay,
                target=self.actor_ref,
                message=Rehost(run_id=run_id, why=why),
            )
        )

    def _rehost(self, msg: Rehost) -> None:
        """Replay the run from its log, if it is still ours and unfinished."""
        if msg.run_id not in self._rehosting or self._shutdown is not None:
            return
        self._rehosting.discard(msg.run_id)
        if self._guard is not None and self._guard.revoked is not None:
            return  # we were judged dead: the run is for other runtimes to resume
        try:
            record = self._reader.find_run(msg.run_id)
        except CorruptRecord as exc:
            logger.error("run %s: not hosted again: %s", msg.run_id, exc)
            self._rehosts.pop(msg.run_id, None)
            return
        except StoreError as exc:
            self._rehost_later(msg.run_id, f"{msg.why}; then {exc}")
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
            )
        )

    def _on_lease_lost(self, msg: LeaseLost) -> None:
        """Stop hosting what we may no longer own (fencing); record nothing of it."""
        if self._shutdown is not None:
            return
        if msg.run_id is None:
            logger.critical("runtime %s stops all its runs: %s", self._owner, msg.why)
            targets = list(self._runs)
        elif msg.run_id in self._runs:
            targets = [msg.run_id]
        else:  # a child run (its supervisor escalates to its parent) or not hosted
            ref = self._directory.get(msg.run_id)
            if ref is not None:
                tell(ref, msg)
            return
        for run_id in targets:
            if run_id not in self._fenced:
                self._fenced[run_id] = msg.why
                tell(self._runs[run_id], LeaseLost(why=msg.why, run_id=run_id))
        if msg.run_id is None and self._guard is not None and self._guard.revoked is not None:
            # Judged dead by another runtime: this one can never renew again,
            # so it must not look alive (a worker would idle forever, claiming
            # nothing). It stops loudly, as for a lost store file.
            self._escalate(
                StoreError(
                    f"runtime {self._owner} lost its lease for good ({msg.why}): it hosts"
                    " nothing more; restart the process"
                )
            )

    def _on_grace_expired(self, msg: GraceExpired) -> None:
        """C8: the cancel's grace ended; terminate unless the run already finished."""
        ref = self._directory.get(msg.run_id)
        reason = f"cancel grace expired ({msg.reason})" if msg.reason else "cancel grace expired"
        events = tuple(terminate_request(msg.run_id, reason, source="grace", origin=self._owner))
        deliver = ((ref, Terminate(reason=reason)),) if ref is not None else ()
        tell(self.journal, ControlAppend(events=events, deliver=deliver))

    def _stop_services(self) -> None:
        if self._timers is not None:
            self._timers.stop(block=False)
        if self._journal_dead:
            self._journal_exited()  # it crashed earlier: nothing to wait for
            return
        # The Journal stops after every Append already in its mailbox.
        self.journal.stop(block=False)

    def _journal_exited(self) -> None:
        # Shutdown is over once the Timers and the ControlInbox have ended
        # too: none of the runtime's own actors outlives close().
        services = {ref.actor_urn for ref in (self._timers, self._control) if ref is not None}
        if self._shutdown is not None and services <= self._services_ended:
            if self._shutdown.reply is not None:
                self._shutdown.reply.set(None)
            elif self._halted.error is not None:
                return  # it stopped itself: the facade's close() ends this actor
            self.exit(ExitReason.normal())

    # -- shared actors dying, and escalation (Erlang/OTP) --------------------------------

    def _service_died(self, msg: ChildExited) -> None:
        """A shared actor stopped while the runtime runs: never silently."""
        if isinstance(msg.reason.error, StoreReplaced | StoreCorrupt):
            self._escalate(msg.reason.error)  # its file is gone: a restart cannot help
            return
        why = describe(msg.reason.error) if msg.reason.error is not None else None
        cause = f"{why['type']}: {why['message']}" if why else msg.reason.kind.value
        logger.critical("%s stopped unexpectedly: %s", msg.name, cause)
        if msg.child == self._control and self._control_actor is not None:
            now = time.monotonic()
            while self._restarts and self._restarts[0] <= now - RESTART_PERIOD:
                self._restarts.popleft()
            if len(self._restarts) < RESTART_INTENSITY:
                self._restarts.append(now)
                logger.warning(
                    "restarting the ControlInbox (%d of %d restarts allowed within %.0fs)",
                    len(self._restarts),
                    RESTART_INTENSITY,
                    RESTART_PERIOD,
                )
                self._start_control(self._control_actor.cursor)
                return
            cause += f"; it died {RESTART_INTENSITY + 1} times within {RESTART_PERIOD:.0f}s"
        self._escalate(StoreError(f"its {msg.name} stopped unexpectedly ({cause})"))

    def _escalate(self, error: StoreError) -> None:
        """The runtime cannot go on: it stops hosting runs and writes nothing
        more; every later call of the facade raises ``error`` (OTP: a
        supervisor past its restart intensity terminates its children and
        itself). Its runs stay in the store for another runtime."""
        if self._halted.is_set():
            return  # killed, or stopped already
        try:  # the file gone is the root cause of any damage SQLite reports
            self._reader.check_file()
        except StoreError as gone:
            error = gone
        # Said before it shows (only this actor and kill() set it): whoever
        # sees the runtime stopped finds the reason in the log already.
        logger.critical("runtime %s stops: %s", self._owner, error)
        self._halted.halt(error)
        self._shutdown = Shutdown()  # no reply: the facade's close() sends its own
        if self._control is not None:
            self._control.stop(block=False)
        for ref in self._runs.values():
            tell(ref, Shutdown())
        if not self._runs:
            self._stop_services()
