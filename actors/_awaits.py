"""Awaits: what the suspended workflow body waits for, and how it resumes.

Each ``await`` of the body hands its supervisor a command: a step call, a
child run, a ``gather()`` of them, ``start_child()`` or the join of a child
started so. ``Awaits`` turns it into calls: numbered in the body's order
(call ids, so replay finds call ``n`` again), answered from the log when the
run is replayed (D2), otherwise recorded and started (D1). The body then
waits (``waiting``) until every call of the await has ended, and resumes
with the value, or the error, the await gives (``Body.settle``).

Invariants: an await is a checkpoint (C3): a call that would start while
the run is cancelling outside a shield is never started, the await raises
CancellationError instead; at most one await is pending, and it resumes
once, when its last call's end is recorded (or, for a step, decided: its
end then heads the body's next group).
"""

from __future__ import annotations

from typing import Any, Protocol

from actors._attempts import Scheduled, Waiting, start_records
from actors._body import AwaitResult, Body
from actors._body_only import BODY_AWAITABLES
from actors._child_handles import ChildRun, JoinChild, StartChild
from actors._children import Children, child_run_id
from actors._children import start_records as child_start_records
from actors._clock import Clock
from actors._definitions import Call, ChildCall, Gather, StepCall
from actors._errors import CancellationError, NonDeterminismError
from actors._launch import Launcher
from actors._messages import CallEnded, Cancel, ChildStartedNoWait, StepsScheduled
from actors._recorder import Recorder
from actors._replay import RecordedCall, recorded_outcome
from actors._sleep import Sleep
from actors._sleeping import Sleeps
from persistence import NewEvent, ProctorError, safe_repr


class AwaitHost(Protocol):
    """What turning awaits into calls needs of the run supervisor."""

    @property
    def current_cancel(self) -> Cancel | None: ...

    def cancel_due(self) -> bool:
        """The run is cancelling and the body is not in a shield."""

    def go_live(self) -> None:
        """The body made a call its log does not have."""

    def spawn(self, calls: tuple[Scheduled, ...]) -> None:
        """Start calls whose starts are recorded (or need no record)."""

    def spawn_child(
        self,
        call_id: int,
        call: ChildCall[Any],
        shielded: bool,
        *,
        resume: bool,
        policy: str | None,
    ) -> None:
        """Start (or resume) a child run's supervisor under this one."""


class HandleJoins(Protocol):
    """B2: the awaits of handles (``_handle_desk.HandleDesk``)."""

    def claims(self, command: Any) -> bool:
        """Whether this await is a handle's."""

    def join(self, command: Any) -> AwaitResult | None:
        """Its outcome now, or None once the body waits for it."""


class Awaits:
    """The body's pending await, and the calls that answer it."""

    def __init__(
        self,
        host: AwaitHost,
        *,
        run_id: str,
        owner: str,
        strategy: str,
        body: Body,
        children: Children,
        launcher: Launcher,
        log: Recorder,
        clock: Clock,
        sleeps: Sleeps,
    ) -> None:
        self._host = host
        self._run_id = run_id
        self._owner = owner
        #: The workflow's default gather() strategy (SV3).
        self._strategy = strategy
        self._body = body
        self._children = children
        self._launcher = launcher
        self._log = log
        self._clock = clock
        self._sleeps = sleeps
        #: What the suspended body is waiting for; None while it runs.
        self.waiting: Waiting | None = None
        #: B2: step and child-run handles (``_handle_desk``), set by the crew.
        self.handles: HandleJoins | None = None

    def call_ended(self, ended: CallEnded) -> AwaitResult | None:
        """A call's end is in: how the body resumes, if this was its last one."""
        waiting = self.waiting
        if ended.call_id in self._children.started:
            # A handle's call (start_child, start_step): its outcome is kept,
            # so the handle can be awaited (again) and a cancel knows it ended.
            self._children.finished[ended.call_id] = (ended.value, ended.error)
        if waiting is None or ended.call_id not in waiting.call_ids:
            # A child run from start_child() that nobody awaits yet: keep its outcome.
            self._children.finished[ended.call_id] = (ended.value, ended.error)
            return None
        waiting.values[ended.call_id] = ended.value
        waiting.errors[ended.call_id] = ended.error
        if len(waiting.errors) < len(waiting.call_ids):
            return None
        self.waiting = None
        return self._body.settle(waiting)

    def on_await(self, command: Any) -> AwaitResult | None:
        """Start what the body awaits; or, if it can resume at once, how."""
        if self.handles is not None and self.handles.claims(command):
            return self.handles.join(command)  # B2: a handle's await
        if isinstance(command, StartChild):
            return self._start_child(command)
        if isinstance(command, JoinChild):
            return self._join_child(command.call_id)
        if isinstance(command, Sleep):  # B1: a durable timer (_sleeping)
            slept = self._sleeps.on_await(command)
            if isinstance(slept, Waiting):
                self.waiting, slept = slept, None
            return slept
        if isinstance(command, StepCall | ChildCall):
            calls: tuple[Call, ...] = (command,)
        elif isinstance(command, Gather):
            calls = command.calls
        else:
            return None, ProctorError(
                f"a workflow body can only await {BODY_AWAITABLES}; it awaited {safe_repr(command)}"
            )
        # Checkpoint (C3): a call that starts while cancelling is never started.
        if self._body.checkpoint_due():
            return None, self._body.deliver_cancel()
        if not calls:
            return [], None
        shielded = self._body.shielded
        waiting = Waiting(gathered=isinstance(command, Gather), call_ids=())
        if isinstance(command, Gather):
            waiting.strategy = command.strategy or self._strategy
        scheduled: list[Scheduled] = []
        events: list[NewEvent] = []
        for call in calls:
            call_id = self._body.next_call_id()
            waiting.call_ids += (call_id,)
            recorded = self._body.recorded(call_id, call)
            if isinstance(recorded, NonDeterminismError):
                self._body.fail_replay(recorded)
                return None
            if recorded is not None and recorded.end is not None:
                # Replay: the log has its end; nothing runs again.
                waiting.values[call_id], waiting.errors[call_id] = recorded_outcome(
                    self._run_id, recorded
                )
                continue
            if recorded is not None and recorded.kind == "step" and self._host.cancel_due():
                # C3 on resume: the attempt in flight was lost (or the step
                # waits out a back-off) and the run is cancelling now; a new
                # attempt would start while cancelling, so none does. The
                # await meets the cancel, as if the step had ended cancelled.
                cancel = self._host.current_cancel
                assert cancel is not None
                waiting.values[call_id] = None
                waiting.errors[call_id] = CancellationError(cancel.reason)
                continue
            s = Scheduled(
                call_id,
                call,
                shielded,
                attempt=recorded.last_attempt + 1 if recorded else 1,
                resume_child=recorded is not None,
                details=recorded.heartbeat_details if recorded else None,
                decided_at=self._clock.monotonic(),
                waited=recorded is not None and recorded.waiting,
            )
            scheduled.append(s)
            events += self._schedule(s, recorded)
        if not scheduled:
            return self._body.settle(waiting)
        # The log ends with this await: from here on, the run is live.
        self._host.go_live()
        self.waiting = waiting
        if events:
            self.start_calls(events, tuple(scheduled))
        else:
            self._host.spawn(tuple(scheduled))
        return None

    def start_calls(self, events: list[NewEvent], scheduled: tuple[Scheduled, ...]) -> None:
        """Record the calls' starts; each starts once that group commits (D1).

        Step attempts are built now and the Journal launches them right after
        the commit, telling this supervisor only if it fails: one hop fewer
        per step. A group that also starts child runs spawns them when the
        commit is reported.
        """
        events, scheduled = self._launcher.take_slots(events, scheduled)
        if not events and not scheduled:
            return  # all wait, as the log already says (a resumed run)
        if any(isinstance(s.call, ChildCall) for s in scheduled):
            self._log.append(*events, tag=StepsScheduled(steps=scheduled))
            return
        prepared = tuple(self._launcher.prepare(s) for s in scheduled)
        self._log.append(*events, tag=StepsScheduled(steps=scheduled), launch=prepared)

    def _start_child(self, command: StartChild[Any]) -> AwaitResult | None:
        """``await start_child(...)``: the body goes on once the start is recorded."""
        if self._body.checkpoint_due():
            return None, self._body.deliver_cancel()
        call, policy = command.call, command.parent_close_policy
        call_id = self._body.next_call_id()
        handle: ChildRun[Any] = ChildRun(child_run_id(self._run_id, call_id), call_id, self._run_id)
        self._children.started.add(call_id)
        shielded = self._body.shielded
        recorded = self._body.recorded(call_id, call)
        if isinstance(recorded, NonDeterminismError):
            self._body.fail_replay(recorded)
            return None
        if recorded is not None:
            if recorded.end is not None:
                self._children.finished[call_id] = recorded_outcome(self._run_id, recorded)
            else:
                self._host.spawn_child(call_id, call, shielded, resume=True, policy=policy)
            return handle, None
        self._host.go_live()
        events = child_start_records(
            self._run_id,
            self._owner,
            call,
            call_id,
            shielded,
            started={"parent_close_policy": policy},
        )
        child = Scheduled(call_id, call, shielded, policy=policy)
        self._log.append(*events, tag=ChildStartedNoWait(child=child, handle=handle))
        return None

    def _join_child(self, call_id: int) -> AwaitResult | None:
        """``await child``: its outcome now if it ended, else when it ends."""
        if self._body.checkpoint_due():
            child = self._children.running.get(call_id)
            if child is None or not child.cancel_sent or self._body.replayed_cancel is not None:
                return None, self._body.deliver_cancel()
            # C7: the child was asked to cancel; as when the cancel comes during
            # the wait, the body meets it once the child has ended (and cleaned
            # up), not before: a parent that ends first would terminate it.
            self.waiting = Waiting(gathered=False, call_ids=(call_id,))
            return None
        if call_id in self._children.finished:
            # The second checkpoint of a join that waited (_settle), taken
            # here too: replay cannot tell whether the child ended before the
            # await or during it, so both take the same checkpoints.
            if self._body.checkpoint_due():
                return None, self._body.deliver_cancel()
            return self._children.finished[call_id]
        if call_id not in self._children.started:
            return None, ProctorError(f"no child run was started as call {call_id} of this run")
        # Running, or ended with its end not yet recorded: resume once it is.
        self.waiting = Waiting(gathered=False, call_ids=(call_id,))
        return None

    def _schedule(self, s: Scheduled, recorded: RecordedCall | None) -> list[NewEvent]:
        if isinstance(s.call, ChildCall):
            # A child run in flight already exists: its own supervisor resumes it.
            if recorded:
                return []
            return child_start_records(self._run_id, self._owner, s.call, s.call_id, s.shielded)
        return start_records(self._run_id, s, recorded)

    def resumes_body(self, call_id: int) -> bool:
        """Whether this call ending is what the waiting body still lacks."""
        waiting = self.waiting
        return (
            waiting is not None
            and call_id in waiting.call_ids
            and call_id not in waiting.errors
            and len(waiting.errors) == len(waiting.call_ids) - 1
        )
