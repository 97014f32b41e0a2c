"""The Guardian: root supervisor of a runtime's actors.

It starts the shared actors (Journal, Timers, ControlInbox: ``_services``),
one RunSupervisor per top-level run (child runs live under their parent's),
hears every child's exit (death watch), turns an expired cancel grace into a
terminate (C8), and stops everything in order on shutdown: run supervisors
first, so their last records still reach the Journal, then the ControlInbox,
Timers and Journal. A graceful drain (A4, ``Shutdown(let_finish=True)``, see
``_closing``) keeps the ControlInbox serving control and renewing the lease,
but claiming and resuming nothing, until the runs' steps have finished or a
second Shutdown ends it.

Fencing: when the runtime cannot prove it still owns a run (``LeaseLost``,
from the Journal, the ControlInbox or a run's supervisor), it stops hosting
it at once, recording nothing more; a run stopped only because the lease's
safe window passed is hosted again from its log once a renewal succeeds,
if the store still says it is ours (``_rehosting``).

Invariants: every child's exit is heard exactly once; shutdown ends only
after every run supervisor, then the Timers, the ControlInbox and the
Journal have ended; a runtime that stops itself (escalation) says why once,
before anything shows it stopped.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

import pykka

from actors._base import ProctorActor, logger, tell
from actors._census import Census
from actors._clock import Clock
from actors._crew import RunServices
from actors._directory import Directory
from actors._errors import RuntimeClosed, describe
from actors._fencing import LeaseGuard
from actors._halt import Halt
from actors._messages import (
    Append,
    Cancel,
    ChildExited,
    ExitKind,
    ExitReason,
    Forward,
    GetWiring,
    GraceExpired,
    LeaseLost,
    Rehost,
    RunTimedOut,
    Shutdown,
    StartRun,
    StoreLost,
    Wiring,
)
from actors._rehosting import Rehosting
from actors._run_timeouts import RunTimeouts
from actors._services import Services
from actors._supervisor import RunSupervisor
from actors._tracing import TraceSink
from persistence import (
    DEFAULT_MAX_PAYLOAD_BYTES,
    CorruptRecord,
    EventType,
    NewEvent,
    ProctorError,
    Refused,
    RunState,
    Store,
    StoreCorrupt,
    StoreError,
    StoreReplaced,
    Synchronous,
)


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
        tracing: TraceSink | None = None,
    ) -> None:
        super().__init__(parent=None, name="Guardian", census=census)
        self._max_payload_bytes = max_payload_bytes
        self._guard = guard
        self._reader = reader
        self._halted = halted
        self._owner = owner
        self._control_cursor = control_cursor
        self._clock = clock
        self._directory = directory
        self._shutdown: Shutdown | None = None
        self._services = Services(
            census=census,
            owner=owner,
            path=path,
            synchronous=synchronous,
            busy_timeout=busy_timeout,
            clock=clock,
            on_terminal=on_terminal,
            hosted=directory.run_ids,
            control_interval=control_interval,
            claim_runs=claim_runs,
            resume=resume,
            lease_ttl=lease_ttl,
            halted=halted,
            max_batch=max_batch,
            retention=retention,
            opened=reader.opened,
            guard=guard,
            tracing=tracing,
        )
        #: The top-level runs' supervisors, by run id: this actor's own children.
        self._runs: dict[str, pykka.ActorRef[Any]] = {}
        #: Runs to host again (after a store failure, or fencing): set once
        #: the Timers exist.
        self._again: Rehosting | None = None

    def started(self) -> None:
        self._services.start(self.actor_ref, self._control_cursor)
        self._again = Rehosting(
            owner=self._owner,
            reader=self._reader,
            guard=self._guard,
            clock=self._clock,
            timers=self._services.timers,
            guardian=self.actor_ref,
            start_run=self._start_run,
        )
        self._timeouts = RunTimeouts(
            owner=self._owner,
            timers=self._services.timers,
            guardian=self.actor_ref,
            journal=lambda: self.journal,
            directory=self._directory,
            clock=self._clock,
        )

    @property
    def journal(self) -> pykka.ActorRef[Any]:
        return self._services.journal

    @property
    def again(self) -> Rehosting:
        assert self._again is not None
        return self._again

    def handle(self, message: Any) -> Any:
        if isinstance(message, GetWiring):
            return Wiring(journal=self.journal, timers=self._services.timers)
        if isinstance(message, StartRun):
            self._start_run(message)
        elif isinstance(message, Forward):
            ref = self._directory.get(message.run_id)
            if ref is not None:
                tell(ref, message.message)
        elif isinstance(message, ChildExited):
            self._on_child_exited(message)
        elif isinstance(message, GraceExpired):
            self._timeouts.grace_expired(message)  # C8, any cancel's grace
        elif isinstance(message, RunTimedOut):
            self._timeouts.fire(message)
        elif isinstance(message, Rehost):
            if self._shutdown is None:
                self.again.due(message)
        elif isinstance(message, StoreLost):
            self._escalate(message.error)
        elif isinstance(message, LeaseLost):
            self._on_lease_lost(message)
        elif isinstance(message, Shutdown):
            # A second Shutdown ends a drain (A4: the first let steps finish)
            # or, with abandon, tells the runs to stop waiting.
            first = self._shutdown is None
            if first:
                self._shutdown = message
                self._census.slots.close()  # no waiting step starts any more
                if message.let_finish:  # A4's drain: control is still served
                    self._services.take_no_runs()
            elif (
                message.reply is not None
                and self._shutdown is not None
                and self._shutdown.reply is None
            ):
                # The runtime stopped itself (escalation): the facade's
                # close() waits for this answer.
                self._shutdown = message
                first = True
            if not message.let_finish:  # take no new runs (a drain, if any, is over)
                self._services.stop_control()
            for ref in self._runs.values():
                tell(ref, Shutdown(abandon=message.abandon, let_finish=message.let_finish))
            if first and not self._runs:
                self._stop_services()
        else:
            raise TypeError(f"Guardian cannot handle {message!r}")
        return None

    def _start_run(self, msg: StartRun) -> None:
        if self._shutdown is not None:
            if msg.created is not None:  # a new run: nothing of it was written
                closed = RuntimeClosed(f"runtime {self._owner} is closing: it starts no new run")
                msg.created.set_exception((RuntimeClosed, closed, None))
            return  # the run stays PENDING in the store for the next runtime
        if self._directory.get(msg.run_id) is not None:
            if msg.created is not None:  # A2: a start of a run id hosted here already
                duplicate = Refused(f"run {msg.run_id} already exists", None, duplicate=True)
                msg.created.set((duplicate,))
            return  # hosted already (found orphaned twice while being resumed)
        fenced = self._guard.why_fenced() if self._guard is not None else None
        if fenced is not None:
            if msg.created is not None:  # a new run: nothing of it was written
                msg.created.set_exception((ProctorError, ProctorError(fenced), None))
            else:  # claimed or resumed just before: host it once we can, if still ours
                self.again.later(msg.run_id, fenced)
            return
        state, cancel = msg.state, None
        if state is RunState.CANCELLING:
            cancel = Cancel(reason=msg.cancel_reason, source=msg.cancel_source or "api")
        ref = RunSupervisor.start(
            shared=self._run_services(),
            parent=self.actor_ref,
            run_id=msg.run_id,
            workflow=msg.workflow,
            args=msg.args,
            kwargs=msg.kwargs,
            state=state,
            cancel=cancel,
            resume=msg.resume_from is not None,
            resume_from=msg.resume_from,
            resume_why=msg.resume_why,
            unrecorded=msg.unrecorded,
            create=msg.create,
            created=msg.created,
            reused=msg.reused,
            created_at=msg.created_at,
        )
        self._runs[msg.run_id] = ref
        self._timeouts.arm(msg)  # B4

    def _run_services(self) -> RunServices:
        """What every run supervisor of this runtime shares (its children too)."""
        return RunServices(
            census=self._census,
            journal=self.journal,
            directory=self._directory,
            owner=self._owner,
            reader=self._reader,
            timers=self._services.timers,
            clock=self._clock,
            max_payload_bytes=self._max_payload_bytes,
            guard=self._guard,
        )

    def _on_child_exited(self, msg: ChildExited) -> None:
        if self._services.owns(msg.child):
            is_journal = msg.child == self._services.journal
            if is_journal:
                self._services.journal_dead = True
            if self._shutdown is None:
                self._service_died(msg)
            if is_journal:
                self._journal_exited()
            else:
                self._services.ended(msg.child)
                if self._services.journal_dead:
                    self._journal_exited()
            return
        run_id = msg.name
        hosted = self._runs.pop(run_id, None) is not None
        if hosted:
            self._timeouts.disarm(run_id)  # B4: re-armed if it is hosted again
        fenced = self.again.take_fenced(run_id)
        if fenced is not None and self._shutdown is None:
            self.again.later(run_id, fenced)  # if the store says it is still ours
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
            self.again.keep_unrecorded(run_id, msg.reason.unrecorded)
            self.again.later(run_id, f"its supervisor stopped: {error}")
        elif msg.reason.kind is ExitKind.FAILED and self._shutdown is None:
            # A supervisor crashed (a Proctor bug, or the store failed): record
            # the run as failed if the store still takes it; fencing decides.
            error = msg.reason.error or RuntimeError("run supervisor crashed")
            event = NewEvent(
                run_id=run_id, type=EventType.RUN_FAILED, data={"error": describe(error)}
            )
            tell(self.journal, Append(events=(event,)))
        self.again.ended(run_id)
        if self._shutdown is not None and not self._runs:
            self._stop_services()

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
            if self.again.fence(run_id, msg.why):
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

    def _stop_services(self) -> None:
        if self._services.stop():
            self._journal_exited()  # it crashed earlier: nothing to wait for

    def _journal_exited(self) -> None:
        # Shutdown is over once the Timers and the ControlInbox have ended
        # too: none of the runtime's own actors outlives close().
        if self._shutdown is not None and self._services.others_ended():
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
        why_not = self._services.restart_control(msg.child)
        if why_not is None:
            return  # restarted, within its intensity
        cause += why_not
        self._escalate(StoreError(f"its {msg.name} stopped unexpectedly ({cause})"))

    def _escalate(self, error: StoreError) -> None:
        """The runtime cannot go on: it stops hosting runs and writes nothing
        more; every later call of the facade raises ``error`` (OTP: a
        supervisor past its restart intensity terminates its children and
        itself). Its runs stay in the store for another runtime."""
        if self._halted.is_set():
            return  # killed, or stopped already
        try:  # the file gone is the root cause of any damage SQLite reports
            self._reader.check_same_store()
        except StoreError as gone:
            error = gone
        # Said before it shows (only this actor and kill() set it): whoever
        # sees the runtime stopped finds the reason in the log already.
        logger.critical("runtime %s stops: %s", self._owner, error)
        self._halted.halt(error)
        self._shutdown = Shutdown()  # no reply: the facade's close() sends its own
        self._services.stop_control()
        for ref in self._runs.values():
            tell(ref, Shutdown())
        if not self._runs:
            self._stop_services()
