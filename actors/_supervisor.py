"""RunSupervisor: one per run; message dispatch, its lifecycle, and control
(cancel, terminate, shutdown).

It never runs blocking code and never waits on a future, nor on the store
while it handles control. The body is a coroutine stepped by hand; between
two steps of the body the supervisor is just an actor reading its
(control-first) mailbox, which is why a cancel or a terminate is handled
within milliseconds whatever the steps are doing. Every effect waits for its
record (D1): a step starts only after its ``step_started`` is committed, and
the body resumes only after the step's end is committed.

A child run is a RunSupervisor of its own under this one (C7, T4). A run
whose runtime died is taken over and replayed (D2).

What it delegates, one collaborator per concept, each module stating its
invariants:

- ``_body.Body``: the workflow coroutine, its checkpoints and replay cursor;
- ``_awaits.Awaits``: what the body awaits, as calls, and how it resumes;
- ``_launch.Launcher``: starting and abandoning step attempts, kept in the
  ``_attempts.Attempts`` book;
- ``_restarts.Restarts``: retries, group restarts, timeouts (SV1-SV3, H2);
- ``_children.Children``: child runs and what flows down to them;
- ``_recorder.Recorder``: the run's records, in groups, to the Journal;
- ``_takeover``: claiming a dead runtime's run; ``_outcomes``: exits as
  states and errors; ``_lifecycle``: the phase tables.

Invariants: every change of phase goes through ``_lifecycle``'s tables and
every change of the run's state through ``persistence.next_state`` (or
``later_state``, learning the store's view from an acknowledgement).
"""

from __future__ import annotations

import functools
from dataclasses import replace
from typing import TYPE_CHECKING, Any

import pykka

from actors._attempts import Attempts, Scheduled, Waiting
from actors._awaits import Awaits
from actors._base import ProctorActor, logger, tell
from actors._body import AwaitResult, Body
from actors._cancelling import Cancelling
from actors._census import Census
from actors._children import Children
from actors._clock import Clock
from actors._definitions import ChildCall, WorkflowDef
from actors._draining import Drain
from actors._ending import Ending
from actors._ends import Ends
from actors._errors import CancellationError
from actors._fencing import LeaseGuard
from actors._launch import Launcher
from actors._lifecycle import HostingEvent, Lifecycle, PhaseEvent
from actors._messages import (
    CallEnded,
    Cancel,
    CancelTimer,
    ChildExited,
    ChildStartedNoWait,
    Created,
    Deadline,
    ExitKind,
    ExitReason,
    Journaled,
    LeaseLost,
    ResumeBody,
    Resumed,
    RetryDue,
    RetryScheduled,
    RunFinished,
    ScheduleTimer,
    Shutdown,
    SlotGranted,
    Started,
    StepsScheduled,
    Terminate,
)
from actors._recorder import Recorder
from actors._restarts import Restarts
from actors._resuming import Resumption
from actors._terminating import Termination
from persistence import (
    DEFAULT_MAX_PAYLOAD_BYTES,
    Appended,
    EventType,
    NewEvent,
    ProctorError,
    Refused,
    RunState,
    Store,
)

if TYPE_CHECKING:
    from actors._directory import Directory

_E = EventType


class RunSupervisor(ProctorActor):
    pooled = True

    def __init__(
        self,
        *,
        census: Census,
        parent: pykka.ActorRef[Any],
        journal: pykka.ActorRef[Any],
        directory: Directory,
        owner: str,
        run_id: str,
        workflow: WorkflowDef[..., Any],
        args: tuple[Any, ...],
        kwargs: tuple[tuple[str, Any], ...],
        state: RunState,
        cancel: Cancel | None,
        reader: Store,
        timers: pykka.ActorRef[Any],
        clock: Clock,
        resume_from: str | None = None,
        resume_why: str | None = None,
        resume: bool = False,
        create: NewEvent | None = None,
        created: pykka.Future[Any] | None = None,
        max_payload_bytes: int = DEFAULT_MAX_PAYLOAD_BYTES,
        unrecorded: tuple[NewEvent, ...] = (),
        guard: LeaseGuard | None = None,
    ) -> None:
        super().__init__(parent=parent, name=run_id, census=census)
        self.run_id = run_id
        self._timers = timers
        #: The run's step attempts, by call id.
        self._attempts = Attempts()
        #: The lifecycle (_lifecycle): what is done with the body, and whether
        #: this runtime still hosts the run.
        self._life = Lifecycle()
        self._resume = resume
        #: What this supervisor writes to the Journal, and in which group.
        self._log = Recorder(
            run_id=run_id,
            journal=journal,
            notify=self.actor_ref,
            create=create,
            created=created,
            handed=unrecorded,
        )
        #: Starting the run's step attempts (slots, actors, deadlines).
        self._launcher = Launcher(
            self,
            run_id=run_id,
            parent=self.actor_ref,
            census=census,
            journal=journal,
            attempts=self._attempts,
            log=self._log,
            clock=clock,
            max_payload_bytes=max_payload_bytes,
            guard=guard,
        )
        #: Retries, group restarts and timeouts of the run's step attempts.
        self._restarts = Restarts(
            self,
            run_id=run_id,
            attempts=self._attempts,
            log=self._log,
            clock=clock,
            intensity=workflow.intensity,
        )
        self._directory = directory
        self._children = Children(
            run_id=run_id,
            journal=journal,
            owner=owner,
            reader=reader,
            start=functools.partial(
                RunSupervisor.start,
                census=census,
                parent=self.actor_ref,
                journal=journal,
                directory=directory,
                owner=owner,
                state=RunState.PENDING,
                cancel=None,
                reader=reader,
                timers=timers,
                clock=clock,
                max_payload_bytes=max_payload_bytes,
                guard=guard,
            ),
        )
        #: The workflow body: its coroutine, context and replay cursor.
        self._body = Body(
            self,
            run_id=run_id,
            workflow=workflow,
            args=args,
            kwargs=dict(kwargs),
            max_payload_bytes=max_payload_bytes,
        )
        #: What the suspended body waits for, and the calls that answer it.
        self._awaits = Awaits(
            self,
            run_id=run_id,
            owner=owner,
            strategy=workflow.strategy,
            body=self._body,
            children=self._children,
            launcher=self._launcher,
            log=self._log,
            clock=clock,
        )
        #: The run's state and the cancel it acts on.
        self._run = Cancelling(
            self,
            run_id=run_id,
            state=state,
            cancel=cancel,
            reader=reader,
            life=self._life,
            body=self._body,
            attempts=self._attempts,
            launcher=self._launcher,
            children=self._children,
            log=self._log,
        )
        #: Taking over a run whose runtime died, until its replay begins.
        self._resuming = Resumption(
            self,
            run_id=run_id,
            owner=owner,
            resume_from=resume_from,
            why=resume_why,
            reader=reader,
            run=self._run,
            body=self._body,
            log=self._log,
        )
        #: Terminating the run (T1-T4).
        self._terminate = Termination(
            self,
            run_id=run_id,
            reader=reader,
            life=self._life,
            run=self._run,
            launcher=self._launcher,
            children=self._children,
        )
        #: Recording the run's end, and exiting with it.
        self._ending = Ending(
            self,
            run_id=run_id,
            workflow_name=workflow.name,
            max_payload_bytes=max_payload_bytes,
            life=self._life,
            body=self._body,
            children=self._children,
            log=self._log,
        )
        #: Stopping to host the run: shutdown, store failure, lost lease.
        self._drain = Drain(
            self,
            run_id=run_id,
            parent=parent,
            life=self._life,
            attempts=self._attempts,
            awaits=self._awaits,
            launcher=self._launcher,
            children=self._children,
            log=self._log,
            clock=clock,
        )
        #: What each call's end means: retry, restart, record, resume.
        self._ends = Ends(
            self,
            run_id=run_id,
            life=self._life,
            attempts=self._attempts,
            restarts=self._restarts,
            awaits=self._awaits,
            log=self._log,
        )
        # Registered from creation, so a cancel never misses a run that exists.
        directory.add(run_id, self.actor_ref)

    # -- lifecycle -------------------------------------------------------------

    def started(self) -> None:
        started = NewEvent(run_id=self.run_id, type=_E.RUN_STARTED)
        if self._resume:
            self._resuming.take_over()
        elif self._log.create is not None:
            # A new run: nobody can have asked anything of it, since it does
            # not exist until this group commits and this supervisor is in
            # the directory already. So the body starts now, and its first
            # records (the first step's start, say) join the run's creation
            # in one group; nothing it does takes effect before that commit.
            self._run.advance(_E.RUN_STARTED)
            self._log.begin_with(self._log.create, started)
            self.begin_body(PhaseEvent.BEGIN)
        else:
            self._log.append(started, tag=Started())

    # -- lifecycle (_lifecycle) -------------------------------------------------

    def _advance(self, event: PhaseEvent) -> None:
        self._life.advance(event)

    def go_live(self) -> None:
        self._life.go_live()

    @property
    def replaying(self) -> bool:
        return self._life.replaying

    @property
    def terminated(self) -> bool:
        return self._life.terminated

    @property
    def _ended(self) -> bool:
        return self._life.ended

    @property
    def _draining(self) -> bool:
        return self._life.draining

    # -- what the body needs of its supervisor (BodyHost) ---------------------------

    def cancelling(self) -> bool:
        return self._run.cancelling()

    def cancel_reason(self) -> str | None:
        return self._run.cancel.reason if self._run.cancel else None

    # -- what the launcher needs of its supervisor (LaunchHost) --------------------

    @property
    def current_cancel(self) -> Cancel | None:
        return self._run.cancel

    def may_start(self) -> bool:
        return not (self.terminated or self._ended or self._draining)

    # -- what the restarts need of their supervisor (RestartHost) ------------------

    @property
    def waiting(self) -> Waiting | None:
        return self._awaits.waiting

    def start_calls(self, events: list[NewEvent], scheduled: tuple[Scheduled, ...]) -> None:
        self._awaits.start_calls(events, scheduled)

    # -- what the body needs of its supervisor, besides (BodyHost) -----------------

    def on_await(self, command: Any) -> AwaitResult | None:
        return self._awaits.on_await(command)

    def resume_later(self, reason: str | None) -> None:
        tell(self.actor_ref, ResumeBody(reason=reason))

    def finish_completed(self, value: Any) -> None:
        self._ending.completed(value)

    def finish_failed(self, exc: BaseException) -> None:
        self._ending.failed(exc)

    def finish_cancelled(self, reason: str | None) -> None:
        self._ending.cancelled(reason)

    def stopping(self) -> None:
        self._life.host(HostingEvent.STOP)
        self._directory.remove(self.run_id)
        self._seal_body()
        # Waiting attempts are left as recorded (a resume starts them); their
        # slots, or places in line, go to the next attempts.
        self._attempts.release_queued()

    def handle(self, message: Any) -> None:
        if isinstance(message, Journaled):
            self._on_journaled(message)
        elif isinstance(message, Cancel):
            self._run.on_cancel(message)
        elif isinstance(message, Terminate):
            self._terminate.on_terminate(message)
        elif isinstance(message, Shutdown):
            self._drain.on_shutdown(message)
        elif isinstance(message, ChildExited):
            self._on_child_exited(message)
        elif isinstance(message, Deadline):
            if not self._draining:  # draining: attempts are awaited until given up
                self._restarts.on_deadline(message)
        elif isinstance(message, RetryDue):
            if not (self.terminated or self._draining):
                self._restarts.on_retry_due(message)
        elif isinstance(message, ResumeBody):
            if self._body.coro is not None and not self.terminated:
                self.drive(error=CancellationError(message.reason))
        elif isinstance(message, SlotGranted):
            self._launcher.on_slot_granted(message)
        elif isinstance(message, LeaseLost):
            self.lost_ownership(message.why)
        else:
            raise TypeError(f"RunSupervisor cannot handle {message!r}")

    def _on_journaled(self, msg: Journaled) -> None:
        creating = isinstance(msg.tag, Created)
        if isinstance(msg.tag, Created):
            msg = replace(msg, tag=msg.tag.then)
        if isinstance(msg.tag, StepsScheduled) and not (msg.accepted and not self.terminated):
            # Never to be started: their step slots go to the next attempts.
            for s in msg.tag.steps:
                if s.ticket is not None:
                    s.ticket.release()
        if msg.error is not None:
            self._drain.on_store_failure(msg)
            return
        tag = msg.tag
        if not msg.accepted and not self.terminated and self._refusal_is_a_fault(msg):
            return
        if creating and not msg.accepted:  # the run was not created: nothing of it may go on
            self._body.close()
            self.exit(ExitReason(kind=ExitKind.TERMINATED))
            return
        if _refused_as_ended(msg):
            self._terminate.ended_elsewhere()
        elif isinstance(tag, RunFinished):
            self._ending.on_recorded(tag, msg.accepted)
        elif any(isinstance(o, Refused) and o.fenced for o in msg.outcomes):
            refused = next(o for o in msg.outcomes if isinstance(o, Refused) and o.fenced)
            self.lost_ownership(refused.reason)
        elif isinstance(tag, Resumed):
            self._resuming.on_claimed(tag.group, msg)
        elif not msg.accepted or self.terminated:
            return
        elif isinstance(tag, Started):
            started = msg.outcomes[0]
            assert isinstance(started, Appended)
            # The run's state when run_started committed: a cancel that came
            # in since (a parent's, say) has moved us on, and stays.
            # Cancelled before this supervisor existed: the record says why
            # (read here, not on the control path).
            self._run.learn(started.status, self._run.recorded_cancel)
            self.begin_body(PhaseEvent.BEGIN)
        elif self._draining and isinstance(
            tag, StepsScheduled | ChildStartedNoWait | RetryScheduled
        ):
            return  # nothing new starts; the log has the starts, resume runs them
        elif isinstance(tag, StepsScheduled):
            self.spawn(tag.steps)
        elif isinstance(tag, ChildStartedNoWait):
            self.spawn((tag.child,))
            self.drive(value=tag.handle)
        elif isinstance(tag, RetryScheduled):
            self.schedule_timer(
                ("retry", tag.call_id), tag.due, RetryDue(call=tag.call_id, attempt=tag.attempt)
            )
        elif isinstance(tag, CallEnded):
            self.on_call_recorded(tag)

    def _refusal_is_a_fault(self, msg: Journaled) -> bool:
        """A refusal of a run that exists, neither fencing nor its end explains:
        the store cannot take a record of ours (a bug). Fail the run, visibly,
        rather than wait for an effect that will never come."""
        refused = next((o for o in msg.outcomes if isinstance(o, Refused)), None)
        if (
            refused is None
            or refused.fenced
            or refused.status is None  # no such run: a creation the store refused
            or refused.status.is_terminal
            or isinstance(msg.tag, Resumed)
        ):
            return False
        error = ProctorError(f"the store refused a record of run {self.run_id}: {refused.reason}")
        logger.error("%s", error)
        self._launcher.abandon_running("a record was refused")
        self._body.close()
        self.exit(ExitReason(kind=ExitKind.FAILED, error=error))
        return True

    def lost_ownership(self, why: str) -> None:
        self._drain.lost_ownership(why)

    # -- driving the body --------------------------------------------------------

    def begin_body(self, begin: PhaseEvent) -> None:
        self._advance(begin)
        if self._body.begin():
            self.drive()

    def drive(self, value: Any = None, error: BaseException | None = None) -> None:
        """Run the body until it waits for a step or child run, or ends.

        A loop rather than recursion: replay resumes await after await from
        the log without waiting, however long the run's history is.
        """
        if self._draining:
            return  # the runtime stops hosting the run: its body goes no further
        self._log.driving = True
        try:
            self._body.run(value, error)
        finally:
            self._log.driving = False
            self._log.flush()  # the body waits on something already under way

    def spawn(self, calls: tuple[Scheduled, ...]) -> None:
        forward = self._run.forward_pending()
        for s in calls:
            if isinstance(s.call, ChildCall):
                self.spawn_child(
                    s.call_id, s.call, s.shielded, resume=s.resume_child, policy=s.policy
                )
            else:
                self._spawn_step(s)
        # A cancel that arrived while the starts were being recorded.
        if forward:
            self._run.forward()

    def _spawn_step(self, s: Scheduled) -> None:
        self._launcher.prepare(s).launch()

    def spawn_child(
        self,
        call_id: int,
        call: ChildCall[Any],
        shielded: bool,
        *,
        resume: bool = False,
        policy: str | None = None,
    ) -> None:
        self._children.spawn(call_id, call, shielded, resume=resume, policy=policy)
        if resume and self._run.forward_pending():
            # D3 for a tree (C7): the run was cancelled while nobody hosted it;
            # its child in flight gets the cancel as it would have live.
            self._run.forward()

    def on_call_recorded(self, ended: CallEnded) -> None:
        self._ends.on_call_recorded(ended)

    def schedule_timer(self, key: tuple[str, int], due: float, message: Any) -> None:
        token = (self.run_id, *key)
        tell(
            self._timers,
            ScheduleTimer(token=token, due=due, target=self.actor_ref, message=message),
        )

    def cancel_timer(self, key: tuple[str, int]) -> None:
        tell(self._timers, CancelTimer(token=(self.run_id, *key)))

    # -- cancel, shield, terminate ---------------------------------------------------

    def cancel_due(self) -> bool:
        return self._run.cancel_due()

    def _seal_body(self) -> None:
        """Close the body's coroutine so nothing of it runs later, unrecorded.

        Python runs ``finally:`` blocks of a closed coroutine; sealed, they can
        neither start a step nor write to the log.
        """
        self._advance(PhaseEvent.SEAL)
        self._body.close()

    def _on_child_exited(self, msg: ChildExited) -> None:
        urn = msg.child.actor_urn
        ended = self._children.pop(urn)
        if ended is not None:
            call_id, child = ended
            if self._ending.lingering:
                self._ending.on_child_left()
            elif self._draining:
                self._drain.exit_if_drained()
            elif not self.terminated:
                self._ends.on_child_ended(call_id, child, msg.reason)
            return
        if self._ends.on_step_actor_exited(urn, msg.reason):
            self._drain.exit_if_drained()

    # -- journal helpers ---------------------------------------------------------

    def record(self, type_: EventType, **data: Any) -> None:
        self._log.record(type_, **data)


def _refused_as_ended(msg: Journaled) -> bool:
    """Whether the store refused the group because the run is terminal (not fenced)."""
    return any(
        isinstance(o, Refused) and not o.fenced and o.status is not None and o.status.is_terminal
        for o in msg.outcomes
    )
