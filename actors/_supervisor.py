"""RunSupervisor: one per run; drives the workflow body and owns its steps.

It never runs blocking code and never waits on a future. The body is a
coroutine it steps by hand: ``send`` a step's result, ``throw`` a step's
failure or a CancellationError. Between two steps of the body the supervisor
is just an actor reading its (control-first) mailbox, which is why a cancel
or a terminate is handled within milliseconds whatever the steps are doing.

Every effect waits for its record: a step starts only after its
``step_started`` is committed, and the body resumes only after the step's end
is committed (D1).
"""

from __future__ import annotations

from collections.abc import Coroutine
from dataclasses import dataclass, field
from typing import Any

import pykka

from actors._base import Census, ProctorActor, logger, tell
from actors._context import WorkflowContext, reset_current, set_current
from actors._definitions import Gather, StepCall, WorkflowDef
from actors._errors import CancellationError, StepFailed, Terminated, describe
from actors._messages import (
    Append,
    Cancel,
    ChildExited,
    ExitKind,
    ExitReason,
    Journaled,
    Raised,
    Returned,
    Shutdown,
    StepCancelled,
    StepFinished,
    StepOutcome,
    Terminate,
)
from actors._step import StepActor
from persistence import (
    Appended,
    EventType,
    NewEvent,
    NotSerializable,
    ProctorError,
    RunState,
    dumps,
    loads,
    next_state,
)

_E = EventType


@dataclass(slots=True)
class _Active:
    """A step attempt whose StepActor is running."""

    ref: pykka.ActorRef[Any]
    name: str
    attempt: int
    shielded: bool
    cancel_sent: bool = False


@dataclass(frozen=True, slots=True)
class _Scheduled:
    call_id: int
    call: StepCall[Any]
    shielded: bool


@dataclass(slots=True)
class _Waiting:
    """What the suspended body is waiting for: one step, or a gather()."""

    gathered: bool
    call_ids: tuple[int, ...]
    names: dict[int, str]
    outcomes: dict[int, StepOutcome] = field(default_factory=dict)
    values: dict[int, Any] = field(default_factory=dict)


# Journal tags: what a Journaled reply is the answer to.
@dataclass(frozen=True, slots=True)
class _Started:
    pass


@dataclass(frozen=True, slots=True)
class _StepsScheduled:
    steps: tuple[_Scheduled, ...]


@dataclass(frozen=True, slots=True)
class _StepEnded:
    call_id: int
    outcome: StepOutcome
    #: The decoded result of a Returned outcome: decoded once, for the log and the body.
    value: Any = None


@dataclass(frozen=True, slots=True)
class _RunEnded:
    kind: ExitKind


class RunSupervisor(ProctorActor):
    def __init__(
        self,
        *,
        census: Census,
        parent: pykka.ActorRef[Any],
        journal: pykka.ActorRef[Any],
        run_id: str,
        workflow: WorkflowDef[..., Any],
        args: tuple[Any, ...],
        kwargs: tuple[tuple[str, Any], ...],
        state: RunState,
        cancel: Cancel | None,
    ) -> None:
        super().__init__(parent=parent, name=run_id, census=census)
        self.run_id = run_id
        self.state = state
        self._journal = journal
        self._workflow = workflow
        self._args = args
        self._kwargs = dict(kwargs)
        self._cancel = cancel
        self._coro: Coroutine[Any, Any, Any] | None = None
        self._active: dict[int, _Active] = {}
        self._waiting: _Waiting | None = None
        self._terminated = False
        self._finishing = False
        self._ctx = WorkflowContext(
            run_id,
            is_cancelling=lambda: self.state is RunState.CANCELLING,
            cancel_reason=lambda: self._cancel.reason if self._cancel else None,
            checkpoint=self._body_checkpoint,
            record=self._record,
        )

    # -- lifecycle -------------------------------------------------------------

    def started(self) -> None:
        self._append(NewEvent(run_id=self.run_id, type=_E.RUN_STARTED), tag=_Started())

    def stopping(self) -> None:
        self._seal_body()

    def handle(self, message: Any) -> None:
        if isinstance(message, Journaled):
            self._on_journaled(message)
        elif isinstance(message, StepFinished):
            self._on_step_finished(message)
        elif isinstance(message, Cancel):
            self._on_cancel(message)
        elif isinstance(message, Terminate):
            self._on_terminate(message)
        elif isinstance(message, Shutdown):
            self._abandon_steps("runtime shutdown")
            self.exit(ExitReason(kind=ExitKind.TERMINATED))
        elif isinstance(message, ChildExited):
            self._on_child_exited(message)
        else:
            raise TypeError(f"RunSupervisor cannot handle {message!r}")

    def _on_journaled(self, msg: Journaled) -> None:
        if msg.error is not None:
            # The store cannot take our records: stop driving the run, leave it
            # unfinished in the store for a runtime that can (D2).
            logger.error("run %s: journal failed: %s", self.run_id, msg.error)
            self._abandon_steps("journal failure")
            self.exit(ExitReason(kind=ExitKind.FAILED, error=msg.error))
            return
        tag = msg.tag
        if isinstance(tag, _RunEnded):
            self.exit(ExitReason(kind=tag.kind))
        elif not msg.accepted or self._terminated:
            # Fenced: the run went terminal under us (terminated). The Terminate
            # message that follows every terminate does the cleanup.
            return
        elif isinstance(tag, _Started):
            started = msg.outcomes[0]
            assert isinstance(started, Appended)
            self.state = started.status
            self._begin_body()
        elif isinstance(tag, _StepsScheduled):
            self._spawn(tag.steps)
        elif isinstance(tag, _StepEnded):
            self._on_step_recorded(tag)

    # -- driving the body --------------------------------------------------------

    def _begin_body(self) -> None:
        token = set_current(self._ctx)
        try:
            coro = self._workflow.fn(*self._args, **self._kwargs)
        except BaseException as exc:  # e.g. TypeError: the arguments do not fit
            self._finish_failed(exc)
            return
        finally:
            reset_current(token)
        self._coro = coro  # type: ignore[assignment]
        self._advance(value=None)

    def _advance(self, *, value: Any = None, error: BaseException | None = None) -> None:
        """Run the body to its next await (or its end)."""
        assert self._coro is not None
        token = set_current(self._ctx)
        try:
            command = self._coro.throw(error) if error is not None else self._coro.send(value)
        except StopIteration as stop:
            self._finish_completed(stop.value)
            return
        except CancellationError as exc:
            self._finish(_E.RUN_CANCELLED, ExitKind.CANCELLED, reason=exc.reason)
            return
        except BaseException as exc:
            self._finish_failed(exc)
            return
        finally:
            reset_current(token)
        self._on_await(command)

    def _on_await(self, command: Any) -> None:
        if isinstance(command, StepCall):
            calls: tuple[StepCall[Any], ...] = (command,)
        elif isinstance(command, Gather):
            calls = command.calls
        else:
            self._advance(
                error=ProctorError(
                    f"a workflow body can only await steps and proctor gather(); "
                    f"it awaited {command!r}"
                )
            )
            return
        # Checkpoint (C3): a step whose call starts while cancelling is never started.
        if self._cancel_due():
            self._deliver_cancel()
            return
        if not calls:
            self._advance(value=[])
            return
        shielded = self._ctx.shield_depth > 0
        scheduled = []
        events = []
        for call in calls:
            call_id = self._ctx.call_counter
            self._ctx.call_counter += 1
            scheduled.append(_Scheduled(call_id, call, shielded))
            events.append(
                self._step_event(
                    _E.STEP_SCHEDULED,
                    call.step.name,
                    call_id,
                    None,
                    args=list(call.args),
                    kwargs=dict(call.kwargs),
                )
            )
            events.append(
                self._step_event(_E.STEP_STARTED, call.step.name, call_id, 1, shielded=shielded)
            )
        self._waiting = _Waiting(
            gathered=isinstance(command, Gather),
            call_ids=tuple(s.call_id for s in scheduled),
            names={s.call_id: s.call.step.name for s in scheduled},
        )
        self._append(*events, tag=_StepsScheduled(tuple(scheduled)))

    def _spawn(self, steps: tuple[_Scheduled, ...]) -> None:
        for s in steps:
            ref = StepActor.start(
                census=self._census,
                parent=self.actor_ref,
                journal=self._journal,
                run_id=self.run_id,
                call=s.call_id,
                attempt=1,
                step=s.call.step,
                args=s.call.args,
                kwargs=s.call.kwargs,
            )
            active = _Active(ref=ref, name=s.call.step.name, attempt=1, shielded=s.shielded)
            self._active[s.call_id] = active
            # A cancel that arrived while the start was being recorded.
            if self.state is RunState.CANCELLING and not s.shielded and self._cancel:
                active.cancel_sent = tell(ref, self._cancel)

    def _on_step_finished(self, msg: StepFinished) -> None:
        active = self._active.get(msg.call)
        # Fencing by attempt: a result from an attempt we no longer run is dropped.
        if active is None or active.attempt != msg.attempt or self._terminated:
            return
        del self._active[msg.call]
        outcome = msg.outcome
        key = (active.name, msg.call, msg.attempt)
        result = None
        if isinstance(outcome, Returned):
            result = loads(outcome.result_json)
            event = self._step_event(_E.STEP_COMPLETED, *key, result=result)
        elif isinstance(outcome, StepCancelled):
            event = self._step_event(_E.STEP_CANCELLED, *key, reason=outcome.reason)
        elif isinstance(outcome, Raised):
            event = self._step_event(_E.STEP_FAILED, *key, error=outcome.error)
        else:  # Unwound although the run was not terminated: user code raised it.
            error = describe(Terminated("step raised Terminated on its own"))
            outcome = Raised(error=error, exception=Terminated())
            event = self._step_event(_E.STEP_FAILED, *key, error=error)
        self._append(event, tag=_StepEnded(msg.call, outcome, result))

    def _on_step_recorded(self, ended: _StepEnded) -> None:
        waiting = self._waiting
        assert waiting is not None
        assert ended.call_id in waiting.call_ids
        waiting.outcomes[ended.call_id] = ended.outcome
        waiting.values[ended.call_id] = ended.value
        if len(waiting.outcomes) < len(waiting.call_ids):
            return
        self._waiting = None
        # C4: the step's result is recorded; the cancel is raised at the await.
        if self._cancel_due():
            self._deliver_cancel()
            return
        outcomes = [(c, waiting.outcomes[c]) for c in waiting.call_ids]
        for _, o in outcomes:
            if isinstance(o, StepCancelled):
                self._advance(error=CancellationError(o.reason))
                return
        for c, o in outcomes:
            if isinstance(o, Raised):
                self._advance(error=_step_error(waiting.names[c], o))
                return
        values = [waiting.values[c] for c in waiting.call_ids]
        self._advance(value=values if waiting.gathered else values[0])

    # -- cancel, shield, terminate ---------------------------------------------------

    def _cancel_due(self) -> bool:
        return self.state is RunState.CANCELLING and self._ctx.shield_depth == 0

    def _deliver_cancel(self) -> None:
        reason = self._cancel.reason if self._cancel else None
        self._record(_E.CANCEL_DELIVERED, reason=reason)
        self._advance(error=CancellationError(reason))

    def _body_checkpoint(self) -> None:
        """``ctx.check_cancellation()`` called in the body (runs inside ``_advance``)."""
        if self._terminated:
            raise Terminated("run terminated")
        if self._cancel_due():
            reason = self._cancel.reason if self._cancel else None
            self._record(_E.CANCEL_DELIVERED, reason=reason)
            raise CancellationError(reason)

    def _on_cancel(self, msg: Cancel) -> None:
        if self._terminated or self._finishing or self.state.is_terminal:
            return
        if self.state is not RunState.CANCELLING:
            self.state = next_state(self.state, _E.CANCEL_REQUESTED)
            self._cancel = msg
        if self._ctx.shield_depth:
            self._record(_E.CANCEL_BUFFERED, reason=msg.reason, depth=self._ctx.shield_depth)
        cancel = self._cancel or msg
        for active in self._active.values():
            # S1: steps started inside a shield of the body do not get the cancel.
            if not active.shielded and not active.cancel_sent:
                active.cancel_sent = tell(active.ref, cancel)

    def _on_terminate(self, msg: Terminate) -> None:
        if self._terminated:
            return
        # T2: from here the body gets no say: no CancellationError, no shield,
        # no further step. The record (run_terminated) is already durable (T1).
        self._terminated = True
        self.state = RunState.TERMINATED
        self._abandon_steps(msg.reason)
        self.exit(ExitReason(kind=ExitKind.TERMINATED))

    def _abandon_steps(self, reason: str | None) -> None:
        """Leave every running attempt; a busy one unwinds at its next check (T3)."""
        if not self._active:
            return
        events = [
            self._step_event(_E.STEP_ABANDONED, a.name, call_id, a.attempt, reason=reason)
            for call_id, a in self._active.items()
        ]
        tell(self._journal, Append(events=tuple(events)))
        for active in self._active.values():
            tell(active.ref, Terminate(reason=reason))
        self._active.clear()

    def _seal_body(self) -> None:
        """Close the body's coroutine so nothing of it runs later, unrecorded.

        Python runs ``finally:`` blocks of a closed coroutine; sealed, they can
        neither start a step nor write to the log.
        """
        self._terminated = self._terminated or not self._finishing
        self._ctx.sealed = True
        coro, self._coro = self._coro, None
        if coro is None:
            return
        token = set_current(self._ctx)
        try:
            coro.close()
        except BaseException as exc:
            logger.warning("run %s: body misbehaved while being closed: %r", self.run_id, exc)
        finally:
            reset_current(token)

    def _on_child_exited(self, msg: ChildExited) -> None:
        urn = msg.child.actor_urn
        for call_id, active in list(self._active.items()):
            if active.ref.actor_urn == urn:
                # The StepActor ended without a StepFinished: it crashed outside
                # the user's code. Death watch turns that into a step failure.
                error = msg.reason.error or RuntimeError("step actor died")
                self._on_step_finished(
                    StepFinished(
                        call=call_id,
                        attempt=active.attempt,
                        outcome=Raised(error=describe(error), exception=error),
                    )
                )
                return

    # -- ending the run ----------------------------------------------------------

    def _finish_completed(self, value: Any) -> None:
        try:
            dumps(value, what=f"result of workflow {self._workflow.name!r}")
        except NotSerializable as exc:
            self._finish_failed(exc)
            return
        self._finish(_E.RUN_COMPLETED, ExitKind.NORMAL, result=value)

    def _finish_failed(self, exc: BaseException) -> None:
        self._finish(_E.RUN_FAILED, ExitKind.FAILED, error=describe(exc))

    def _finish(self, type_: EventType, kind: ExitKind, **data: Any) -> None:
        self._finishing = True
        self._coro = None
        self._append(NewEvent(run_id=self.run_id, type=type_, data=data), tag=_RunEnded(kind))

    # -- journal helpers ---------------------------------------------------------

    def _append(self, *events: NewEvent, tag: Any) -> None:
        tell(self._journal, Append(events=events, notify=self.actor_ref, tag=tag))

    def _step_event(
        self, type_: EventType, step: str, call: int, attempt: int | None, **data: Any
    ) -> NewEvent:
        return NewEvent(
            run_id=self.run_id, type=type_, step=step, call=call, attempt=attempt, data=data
        )

    def _record(self, type_: EventType, **data: Any) -> None:
        """Record an event whose effect does not wait for the commit."""
        tell(self._journal, Append(events=(NewEvent(run_id=self.run_id, type=type_, data=data),)))


def _step_error(name: str, outcome: Raised) -> BaseException:
    if isinstance(outcome.exception, NotSerializable):
        # D4: a result that is not JSON is the caller's error, reported as such.
        return outcome.exception
    err = StepFailed(name, 1, outcome.error)
    err.__cause__ = outcome.exception
    return err
