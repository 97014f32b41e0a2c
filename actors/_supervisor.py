"""RunSupervisor: one per run; message dispatch and its actor's lifecycle.

It never runs blocking code and never waits on a future, nor on the store
while it handles control. The body is a coroutine stepped by hand; between
two steps of the body the supervisor is just an actor reading its
(control-first) mailbox, which is why a cancel or a terminate is handled
within milliseconds whatever the steps are doing. Every effect waits for its
record (D1): a step starts only after its ``step_started`` is committed; when
a step ends the body goes on at once, in memory, and the step's end is
written in one group with what the body records next, so nothing the body
does takes effect before that group commits (``_recorder``).

A child run is a RunSupervisor of its own under this one (C7, T4). A run
whose runtime died is taken over and replayed (D2).

Each concept is a collaborator of its own, built in ``_crew`` (which lists
them): the supervisor hands each message to the one it concerns, steps the
body, starts calls whose starts are recorded, and is every collaborator's
host (``_crew.RunHost``): what one asks of the run outside its own concept
comes back through here.

Invariants: every change of phase goes through ``_lifecycle``'s tables and
every change of the run's state through ``persistence.next_state`` (or
``later_state``, learning the store's view from an acknowledgement), both
inside the collaborators; the supervisor is in the Directory from its
construction until it stops, so a cancel never misses a run that exists.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pykka

from actors._attempts import Scheduled, Waiting
from actors._base import ProctorActor, tell
from actors._body import AwaitResult
from actors._crew import RunServices, assemble
from actors._definitions import ChildCall, WorkflowDef
from actors._lifecycle import HostingEvent, PhaseEvent
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
    SignalArrived,
    SlotGranted,
    Started,
    Terminate,
    TimerDue,
)
from actors._replay import History
from actors._signal_log import WaitForSignal
from persistence import (
    EventType,
    NewEvent,
    RunState,
)

if TYPE_CHECKING:
    pass

_E = EventType


class RunSupervisor(ProctorActor):
    pooled = True

    def __init__(
        self,
        *,
        shared: RunServices,
        parent: pykka.ActorRef[Any],
        run_id: str,
        workflow: WorkflowDef[..., Any],
        args: tuple[Any, ...],
        kwargs: tuple[tuple[str, Any], ...],
        state: RunState,
        cancel: Cancel | None,
        resume_from: str | None = None,
        resume_why: str | None = None,
        resume: bool = False,
        create: NewEvent | None = None,
        created: pykka.Future[Any] | None = None,
        unrecorded: tuple[NewEvent, ...] = (),
        reused: tuple[NewEvent, ...] = (),
        created_at: float | None = None,
    ) -> None:
        super().__init__(parent=parent, name=run_id, census=shared.census)
        self.run_id = run_id
        self._timers = shared.timers
        self._directory = shared.directory
        self._resume = resume
        #: The collaborators, one per concept (_crew), this supervisor their host.
        self._crew = assemble(
            self,
            me=self.actor_ref,
            start_run=RunSupervisor.start,
            shared=shared,
            parent=parent,
            run_id=run_id,
            workflow=workflow,
            args=args,
            kwargs=kwargs,
            state=state,
            cancel=cancel,
            resume_from=resume_from,
            resume_why=resume_why,
            create=create,
            created=created,
            unrecorded=unrecorded,
            created_at=created_at,
        )
        #: A restart's reused calls (A7): written with the run's creation.
        self._reused = reused if create is not None else ()
        if reused:
            self._crew.body.history = History.of_restart(run_id, workflow.name, reused)
        # Registered from creation, so a cancel never misses a run that exists.
        shared.directory.add(run_id, self.actor_ref)

    # -- lifecycle -------------------------------------------------------------

    def started(self) -> None:
        started = NewEvent(run_id=self.run_id, type=_E.RUN_STARTED)
        if self._resume:
            self._crew.resuming.take_over()
        elif self._crew.log.create is not None:
            # A new run: nobody can have asked anything of it, since it does
            # not exist until this group commits and this supervisor is in
            # the directory already. So the body starts now, and its first
            # records (the first step's start, say) join the run's creation
            # in one group; nothing it does takes effect before that commit.
            self._crew.run.advance(_E.RUN_STARTED)
            self._crew.log.begin_with(self._crew.log.create, *self._reused, started)
            self.begin_body(PhaseEvent.BEGIN)
        else:
            self._crew.signals.read_log()  # B5: a claimed run's signals sent so far
            self._crew.log.append(started, tag=Started())

    def stopping(self) -> None:
        self._crew.life.host(HostingEvent.STOP)
        self._directory.remove(self.run_id, self.actor_ref)
        # Sealed: Python runs ``finally:`` blocks of a closed coroutine; they
        # can neither start a step nor write to the log, so nothing of the
        # body runs later, unrecorded.
        self._crew.life.advance(PhaseEvent.SEAL)
        self._crew.body.close()
        # Waiting attempts are left as recorded (a resume starts them); their
        # slots, or places in line, go to the next attempts.
        self._crew.attempts.release_queued()
        self._crew.timers.release()  # unfired timers stay recorded: a resume fires them

    # -- dispatch ----------------------------------------------------------------

    def handle(self, message: Any) -> None:
        crew = self._crew
        if isinstance(message, Journaled):
            crew.replies.on_journaled(message)
        elif isinstance(message, Cancel):
            crew.run.on_cancel(message)
        elif isinstance(message, Terminate):
            crew.terminate.on_terminate(message)
        elif isinstance(message, Shutdown):
            crew.drain.on_shutdown(message)
        elif isinstance(message, ChildExited):
            self._on_child_exited(message)
        elif isinstance(message, Deadline):
            if not crew.life.draining:  # draining: attempts are awaited until given up
                crew.restarts.on_deadline(message)
        elif isinstance(message, RetryDue):
            if not (crew.life.terminated or crew.life.draining):
                crew.restarts.on_retry_due(message)
        elif isinstance(message, ResumeBody):
            if crew.body.coro is not None and not crew.life.terminated:
                self.drive(error=crew.body.resume_error(message.reason))
        elif isinstance(message, TimerDue):
            if not (crew.life.terminated or crew.life.draining or crew.life.ended):
                crew.timers.on_due(message)
        elif isinstance(message, SlotGranted):
            crew.launcher.on_slot_granted(message)
        elif isinstance(message, SignalArrived):
            crew.signals.on_signal(message)
        elif isinstance(message, LeaseLost):
            crew.drain.lost_ownership(message.why)
        else:
            raise TypeError(f"RunSupervisor cannot handle {message!r}")

    def _on_child_exited(self, msg: ChildExited) -> None:
        """A child run's supervisor, or a step attempt's actor, has exited."""
        crew = self._crew
        urn = msg.child.actor_urn
        ended = crew.children.pop(urn)
        if ended is not None:
            call_id, child = ended
            if crew.ending.lingering:
                crew.ending.on_child_left()
            elif crew.life.draining:
                crew.drain.exit_if_drained()
            elif not crew.life.terminated:
                crew.ends.on_child_ended(call_id, child, msg.reason)
            return
        if crew.ends.on_step_actor_exited(urn, msg.reason):
            crew.drain.exit_if_drained()

    # -- driving the body (BodyHost, AckHost, CallEndHost, ResumeHost) ----------------

    def begin_body(self, begin: PhaseEvent) -> None:
        if begin is PhaseEvent.BEGIN and self._crew.body.history is not None:
            begin = PhaseEvent.BEGIN_REPLAY  # a restart's reused calls come first (A7)
        self._crew.life.advance(begin)
        if self._crew.body.begin():
            self.drive()

    def drive(self, value: Any = None, error: BaseException | None = None) -> None:
        """Run the body until it waits for a step or child run, or ends.

        A loop rather than recursion: replay resumes await after await from
        the log without waiting, however long the run's history is.
        """
        log = self._crew.log
        if self._crew.life.draining:
            return  # the runtime stops hosting the run: its body goes no further
        log.driving = True
        try:
            self._crew.body.run(value, error)
        finally:
            log.driving = False
            log.flush()  # the body waits on something already under way
        self._crew.scopes.after_drive()  # B3: a deadline the log says met this wait

    def resume_later(self, reason: str | None) -> None:
        tell(self.actor_ref, ResumeBody(reason=reason))

    @property
    def replaying(self) -> bool:
        return self._crew.life.replaying

    @property
    def terminated(self) -> bool:
        return self._crew.life.terminated

    def go_live(self) -> None:
        self._crew.life.go_live()

    def on_await(self, command: Any) -> AwaitResult | None:
        if isinstance(command, WaitForSignal):
            return self._crew.signals.on_await(command)
        return self._crew.awaits.on_await(command)

    @property
    def waiting(self) -> Waiting | None:
        return self._crew.awaits.waiting

    def start_calls(self, events: list[NewEvent], scheduled: tuple[Scheduled, ...]) -> None:
        self._crew.awaits.start_calls(events, scheduled)

    def on_call_recorded(self, ended: CallEnded) -> None:
        self._crew.ends.on_call_recorded(ended)

    def record(self, type_: EventType, **data: Any) -> None:
        self._crew.log.record(type_, **data)

    def finish_completed(self, value: Any) -> None:
        self._crew.handles.left_behind()  # B2: steps whose handles were not awaited
        self._crew.ending.completed(value)

    def finish_failed(self, exc: BaseException) -> None:
        self._crew.handles.left_behind()
        self._crew.ending.failed(exc)

    def finish_cancelled(self, reason: str | None) -> None:
        self._crew.handles.left_behind()
        self._crew.ending.cancelled(reason)

    # -- starting calls (AwaitHost, AckHost, LaunchHost) ---------------------------

    def may_start(self) -> bool:
        life = self._crew.life
        return not (life.terminated or life.ended or life.draining)

    def spawn(self, calls: tuple[Scheduled, ...]) -> None:
        forward = self._crew.run.forward_pending()
        for s in calls:
            if isinstance(s.call, ChildCall):
                self.spawn_child(
                    s.call_id, s.call, s.shielded, resume=s.resume_child, policy=s.policy
                )
            else:
                self._crew.launcher.prepare(s).launch()
        # A cancel that arrived while the starts were being recorded.
        if forward:
            self._crew.run.forward()

    def spawn_child(
        self,
        call_id: int,
        call: ChildCall[Any],
        shielded: bool,
        *,
        resume: bool = False,
        policy: str | None = None,
    ) -> None:
        self._crew.children.spawn(call_id, call, shielded, resume=resume, policy=policy)
        if resume and self._crew.run.forward_pending():
            # D3 for a tree (C7): the run was cancelled while nobody hosted it;
            # its child in flight gets the cancel as it would have live.
            self._crew.run.forward()

    # -- the run's cancel (_cancelling), as its collaborators see it ---------------

    def cancelling(self) -> bool:
        return self._crew.run.cancelling()

    def cancel_due(self) -> bool:
        return self._crew.run.cancel_due()

    def cancel_reason(self) -> str | None:
        cancel = self._crew.run.cancel
        return cancel.reason if cancel else None

    @property
    def current_cancel(self) -> Cancel | None:
        return self._crew.run.cancel

    def cancel_came(self) -> None:
        self._crew.signals.on_cancel()

    def lost_ownership(self, why: str) -> None:
        self._crew.drain.lost_ownership(why)

    # -- timers (the runtime's timer service) --------------------------------------

    def schedule_timer(self, key: tuple[str, int], due: float, message: Any) -> None:
        token = (self.run_id, *key)
        tell(
            self._timers,
            ScheduleTimer(token=token, due=due, target=self.actor_ref, message=message),
        )

    def cancel_timer(self, key: tuple[str, int]) -> None:
        tell(self._timers, CancelTimer(token=(self.run_id, *key)))
