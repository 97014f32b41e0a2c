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
from typing import TYPE_CHECKING, Any

import pykka

from actors._acks import JournalReplies
from actors._attempts import Attempts, Scheduled, Waiting
from actors._awaits import Awaits
from actors._base import ProctorActor, tell
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
    Deadline,
    Journaled,
    LeaseLost,
    ResumeBody,
    RetryDue,
    ScheduleTimer,
    Shutdown,
    SlotGranted,
    Started,
    Terminate,
)
from actors._recorder import Recorder
from actors._restarts import Restarts
from actors._resuming import Resumption
from actors._terminating import Termination
from persistence import (
    DEFAULT_MAX_PAYLOAD_BYTES,
    EventType,
    NewEvent,
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
        #: What each reply of the Journal means for the run.
        self._replies = JournalReplies(
            self,
            run_id=run_id,
            life=self._life,
            run=self._run,
            body=self._body,
            launcher=self._launcher,
            ends=self._ends,
            ending=self._ending,
            terminate=self._terminate,
            resuming=self._resuming,
            drain=self._drain,
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
            self._replies.on_journaled(message)
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
