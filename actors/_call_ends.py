"""CallEnds: what a call's end means to its run: a step attempt's, a child run's.

A step attempt ends with a ``StepFinished`` from its actor (or, if the
actor died outside the user's code, with its exit report); a child run
ends with its supervisor's exit report. ``CallEnds`` decides what follows:

- a failure the policy retries restarts after a back-off (``_restarts``);
  a sibling stopped for a group restart (SV3) restarts with it;
- an attempt unwound for a shutdown is abandoned, for the next runtime;
  one unwound because the runtime may no longer own the run is not ours
  to record (the run stops: ``lost_ownership``);
- otherwise the end is recorded, and the body's await resumes once it is
  (``on_call_recorded``), or at once if this end is all the body lacks,
  the record then heading the body's next group (``Recorder.defer``).

Invariants: fencing by attempt: an end from an attempt that is no longer
the call's active one, or that comes after a terminate, is dropped; an end
is recorded before the body sees it (D1), the deferred one with the body's
next records in one group; a child's records (its own end, if its
supervisor crashed) are sent apart from ours, so a refusal of the child's
cannot refuse ours.
"""

from __future__ import annotations

from typing import Any, Protocol

from actors._attempts import Attempts, step_end, step_event
from actors._awaits import Awaits
from actors._children import Child
from actors._children import end_records as child_end_records
from actors._errors import describe
from actors._lifecycle import Lifecycle
from actors._messages import CallEnded, ExitReason, Raised, StepFinished, Unwound
from actors._recorder import Recorder
from actors._restarts import Restarts
from persistence import EventType

_E = EventType


class CallEndHost(Protocol):
    """What handling calls' ends needs of the run supervisor."""

    def cancel_due(self) -> bool:
        """The run is cancelling and the body is not in a shield (no SV3 restart)."""

    def lost_ownership(self, why: str) -> None:
        """The runtime may no longer own the run: stop driving it."""

    def drive(self, value: Any = None, error: BaseException | None = None) -> None:
        """Resume the body with the await's value, or its error."""

    def cancel_timer(self, key: tuple[str, int]) -> None: ...


class CallEnds:
    """One run's calls' ends, applied (see the module docstring)."""

    def __init__(
        self,
        host: CallEndHost,
        *,
        run_id: str,
        life: Lifecycle,
        attempts: Attempts,
        restarts: Restarts,
        awaits: Awaits,
        log: Recorder,
    ) -> None:
        self._host = host
        self._run_id = run_id
        self._life = life
        self._attempts = attempts
        self._restarts = restarts
        self._awaits = awaits
        self._log = log

    def on_step_finished(self, msg: StepFinished) -> None:
        active = self._attempts.active.get(msg.call)
        # Fencing by attempt: a result from an attempt we no longer run is dropped.
        if active is None or active.attempt != msg.attempt or self._life.terminated:
            return
        del self._attempts.active[msg.call]
        if active.call.step.timeout or active.call.step.heartbeat_timeout:
            self._host.cancel_timer(("deadline", msg.call))
        restart = self._attempts.restart_after.pop(msg.call, None)
        outcome = msg.outcome
        if isinstance(outcome, Unwound) and outcome.fenced is not None:
            # Not ours to record: the runtime may no longer own the run.
            self._host.lost_ownership(outcome.fenced)
            return
        key = (active.name, msg.call, msg.attempt)
        beat = active.end_data()
        if beat:
            self._attempts.details[msg.call] = beat["last_heartbeat_details"]
        if isinstance(outcome, Raised):
            data: dict[str, Any] = {"error": outcome.error, **beat}
            escalated = self._restarts.retry(
                msg.call, active, outcome.exception, _E.STEP_FAILED, data
            )
            if escalated is None:
                return  # restarted after a back-off
            event, ended = step_end(self._run_id, key, outcome, beat, escalated=escalated)
        elif isinstance(outcome, Unwound) and self._life.draining:
            # It unwound at the shutdown's request, unfinished: the next
            # runtime runs it again.
            reason = "runtime shutdown"
            self._log.send(step_event(self._run_id, _E.STEP_ABANDONED, *key, reason=reason, **beat))
            return
        else:
            event, ended = step_end(self._run_id, key, outcome, beat)
        if restart is not None and not self._host.cancel_due():
            # SV3: stopped for its sibling's restart; it restarts with it.
            self._restarts.restart_later(msg.call, event, *restart)
            return
        if self._awaits.resumes_body(msg.call):
            # The body goes on now, in memory. This end is written with the
            # body's next records (usually the next step's start) in one
            # group: one commit instead of two, and whatever the body does
            # next still takes effect only once both are durable (D1).
            self._log.defer(event)
            self.on_call_recorded(ended)
            return
        self._log.append(event, tag=ended)

    def on_step_actor_exited(self, urn: str, reason: ExitReason) -> bool:
        """A step actor's exit report: whether it was one of ours.

        One that died outside the user's code never sent its end: death
        watch turns that into a step failure.
        """
        for call_id, active in list(self._attempts.active.items()):
            if active.ref.actor_urn == urn:
                outcome = reason.outcome
                if outcome is None:
                    error = reason.error or RuntimeError("step actor died")
                    outcome = Raised(error=describe(error), exception=error)
                self.on_step_finished(
                    StepFinished(call=call_id, attempt=active.attempt, outcome=outcome)
                )
                return True
        return False

    def on_child_ended(self, call_id: int, child: Child, reason: ExitReason) -> None:
        """Record how the child run ended in our log; its await resumes after."""
        own, ended, tag = child_end_records(self._run_id, call_id, child, reason)
        # The child's records are its own; ours must not be refused with them.
        for event in own:
            self._log.send(event)
        self._log.append(ended, tag=tag)

    def on_call_recorded(self, ended: CallEnded) -> None:
        """A call's end is durable (or decided): the body's await may resume."""
        restart = self._attempts.restart_after.pop(ended.call_id, None)
        if restart is not None and not self._host.cancel_due():
            # SV3: its outcome is dropped
            self._restarts.restart_later(ended.call_id, None, *restart)
            return
        resumed = self._awaits.call_ended(ended)
        if resumed is not None:
            self._host.drive(*resumed)
