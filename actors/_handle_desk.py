"""HandleDesk: the run supervisor's side of step and child-run handles (B2).

The body calls it synchronously, from inside its coroutine, through its
context (``ctx.handles``):

- ``start_step(call)``: the call gets the body's next call id, is answered
  from the log on replay (D2) or recorded and started (D1) exactly as an
  awaited step is, and the body goes on at once with a ``StepHandle``;
- ``cancel_call(call_id, reason, mode)``: records ``call_cancel_requested``
  (call id, kind, mode, reason, and whether the call had already ended) and
  cancels that one call through ``CallCancel``;
- ``join``: ``await handle`` (and ``await child`` of a child run cancelled
  with TRY_CANCEL or ABANDON), a checkpoint.

What the await gives follows from the body's own records, never from
timing, so replay gives the same outcome: after an effective TRY_CANCEL or
ABANDON the await raises ``CancellationError`` at once even if the call
then ends well (or had ended, unseen, before the cancel); after
WAIT_CANCELLATION_COMPLETED it waits and gives the call's recorded end.
Whether the call had ended is decided live once, recorded in
``call_cancel_requested`` (``ended``), and read back on replay.

A call cancelled through its handle and lost in a crash is not run again on
replay: its await meets the cancel, as the log says it was asked to.

When the body ends, steps started with ``start_step`` and still running
(never awaited, or abandoned) are abandoned with the run: recorded
``step_abandoned`` and told to stop at their next check (T3's unwinding),
their results discarded, as Temporal's activities are when their workflow
completes.

Invariants: a call is cancelled through its handle at most once (the
first effective cancel is the one recorded); every handle's outcome stays
in ``Children.finished`` once its end is known, so a handle can be awaited
again; ``join`` takes the same checkpoints live and on replay.
"""

from __future__ import annotations

from typing import Any, Protocol

from actors._attempts import Attempts, Scheduled, Waiting, start_records
from actors._awaits import Awaits
from actors._body import AwaitResult, Body
from actors._call_cancel import CallCancel
from actors._cancellation_type import CancellationType
from actors._child_handles import JoinChild
from actors._children import Children
from actors._clock import Clock
from actors._definitions import StepCall
from actors._errors import CancellationError, NonDeterminismError, Terminated
from actors._launch import Launcher
from actors._messages import Cancel
from actors._replay import recorded_outcome
from actors._step_handles import JoinStep, StepHandle
from persistence import EventType, ProctorError

_E = EventType
_WAIT = CancellationType.WAIT_CANCELLATION_COMPLETED


class HandleHost(Protocol):
    """What handles need of the run supervisor."""

    @property
    def terminated(self) -> bool: ...

    @property
    def current_cancel(self) -> Cancel | None: ...

    def cancel_due(self) -> bool: ...

    def go_live(self) -> None: ...

    def cancel_timer(self, key: tuple[str, int]) -> None: ...


class HandleDesk:
    """One run's step and child-run handles (see the module docstring)."""

    def __init__(
        self,
        host: HandleHost,
        *,
        run_id: str,
        body: Body,
        awaits: Awaits,
        attempts: Attempts,
        children: Children,
        launcher: Launcher,
        calls: CallCancel,
        clock: Clock,
    ) -> None:
        self._host = host
        self._run_id = run_id
        self._body = body
        self._awaits = awaits
        self._attempts = attempts
        self._children = children
        self._launcher = launcher
        self._calls = calls
        self._clock = clock
        #: Step calls started with start_step(), and their default modes.
        self._steps: dict[int, CancellationType] = {}
        #: Calls cancelled through their handle: (mode, reason).
        self.cancels: dict[int, tuple[CancellationType, str | None]] = {}

    # -- start_step ----------------------------------------------------------------

    def start_step(self, call: StepCall[Any]) -> StepHandle[Any]:
        body = self._body
        body.ctx.check_cancellation()  # C3: never started while cancelling (or terminated)
        call_id = body.next_call_id()
        handle: StepHandle[Any] = StepHandle(call_id, call.step.name, self._run_id)
        self._steps[call_id] = call.step.cancellation
        # Its outcome is kept (Children.finished) whenever it ends: awaitable again.
        self._children.started.add(call_id)
        recorded = body.recorded(call_id, call)
        if isinstance(recorded, NonDeterminismError):
            body.diverge(recorded)
            raise recorded
        shielded = body.shielded
        if recorded is not None:
            if recorded.end is not None:
                # Replay: the log has its end; nothing runs again.
                self._children.finished[call_id] = recorded_outcome(self._run_id, recorded)
                return handle
            logged = self._logged_cancel(call_id)
            cancel = self._host.current_cancel
            if logged is not None or (self._host.cancel_due() and not shielded):
                # Lost in a crash after its handle was cancelled (or, C3, the
                # run is cancelling now): no new attempt; its await meets it.
                reason = logged if logged is not None else (cancel.reason if cancel else None)
                self._children.finished[call_id] = (None, CancellationError(reason))
                return handle
            s = Scheduled(
                call_id,
                call,
                shielded,
                attempt=recorded.last_attempt + 1,
                details=recorded.heartbeat_details,
                decided_at=self._clock.monotonic(),
                waited=recorded.waiting,
            )
        else:
            self._host.go_live()
            s = Scheduled(call_id, call, shielded, decided_at=self._clock.monotonic())
        self._awaits.start_calls(start_records(self._run_id, s, recorded), (s,))
        return handle

    def _logged_cancel(self, call_id: int) -> str | None:
        """Replay: the reason of this call's handle cancel still ahead in the log."""
        history = self._body.history
        if history is None:
            return None
        for ev in history.body:
            if ev.type is _E.CALL_CANCEL_REQUESTED and ev.data.get("call_id") == call_id:
                return str(ev.data.get("reason") or "") or None
        return None

    # -- cancel ------------------------------------------------------------------------

    def cancel_call(self, call_id: int, reason: str | None, mode: CancellationType | None) -> bool:
        if self._host.terminated:
            raise Terminated("run terminated")
        if call_id in self._steps:
            kind, default = "step", self._steps[call_id]
        elif call_id in self._children.started:
            kind, default = "child", CancellationType.TRY_CANCEL
        else:
            raise ProctorError(f"no step or child run was started as call {call_id} of this run")
        if call_id in self.cancels:
            return False  # cancelled through its handle before: changes nothing
        mode = mode or default
        ended = call_id in self._children.finished
        logged, replayed = self._body.record_or_replay(
            _E.CALL_CANCEL_REQUESTED,
            call_id=call_id,
            kind=kind,
            mode=mode.value,
            reason=reason,
            ended=ended,
        )
        if logged.get("ended", ended):
            return False  # it had ended: its outcome stands
        self.cancels[call_id] = (mode, reason)
        child = self._children.running.get(call_id)
        if replayed and child is not None:
            # Its cancel_requested went to the one Journal before our record
            # did, so it is durable: the resumed child acts on it (D3); a
            # second request would only repeat it in the child's log.
            child.cancel_sent = True
            return True
        self._calls.cancel((call_id,), reason, abandon=mode is CancellationType.ABANDON)
        return True

    # -- await handle ------------------------------------------------------------------

    def claims(self, command: Any) -> bool:
        """Whether this await is the desk's: a step handle's, or a child
        run's cancelled through its handle with TRY_CANCEL or ABANDON."""
        if isinstance(command, JoinStep):
            return True
        if isinstance(command, JoinChild):
            cancelled = self.cancels.get(command.call_id)
            return cancelled is not None and cancelled[0] is not _WAIT
        return False

    def join(self, command: JoinStep | JoinChild) -> AwaitResult | None:
        """``await handle``: its outcome now, or once its call ends (a checkpoint)."""
        body, call_id = self._body, command.call_id
        cancelled = self.cancels.get(call_id)
        if cancelled is not None and cancelled[0] is not _WAIT:
            if body.checkpoint_due():
                return None, body.deliver_cancel()
            return None, CancellationError(cancelled[1])
        if call_id not in self._steps:
            return None, ProctorError(f"no step was started as call {call_id} of this run")
        if body.checkpoint_due():
            active = self._attempts.active.get(call_id)
            if active is None or not active.cancel_sent or body.replayed_cancel is not None:
                return None, body.deliver_cancel()
            # C4: the step was sent the cancel; the await meets it once the
            # step has ended (its result kept), as a direct await would.
            self._awaits.waiting = Waiting(gathered=False, call_ids=(call_id,))
            return None
        if call_id in self._children.finished:
            # The second checkpoint of a join that waited (Body.settle), taken
            # here too: replay cannot tell whether the step ended before the
            # await or during it, so both take the same checkpoints.
            if body.checkpoint_due():
                return None, body.deliver_cancel()
            return self._children.finished[call_id]
        self._awaits.waiting = Waiting(gathered=False, call_ids=(call_id,))
        return None

    # -- the body ended ----------------------------------------------------------------

    def left_behind(self) -> None:
        """The body ended: its started steps still running are abandoned with it."""
        reason = "the run ended before the step ended"
        reasons = {
            call_id: left_behind_reason(*self.cancels.get(call_id, (None, None)))
            for call_id in self._steps
        }
        for call_id in [c for c in self._attempts.backoff if c in self._steps]:
            del self._attempts.backoff[call_id]
            self._host.cancel_timer(("retry", call_id))
        self._launcher.end_waiting(_E.STEP_ABANDONED, reason, shielded=True, reasons=reasons)
        self._launcher.abandon_running(reason, reasons=reasons)


def left_behind_reason(mode: CancellationType | None, reason: str | None) -> str:
    """Why a handle's step still running at the body's end is abandoned.

    ``mode`` and ``reason`` are its cancel through its handle, None if none:
    an ABANDONed step was let go by the body, which may have awaited its
    handle (the await raised at once); a TRY_CANCELled one was asked to stop
    and has not yet; otherwise its handle was never awaited.
    """
    if mode is None:
        return "the run ended before the step ended (its handle was not awaited)"
    why = f": {reason}" if reason else ""
    if mode is CancellationType.ABANDON:
        return f"the run ended before the step ended (it was abandoned through its handle{why})"
    return (
        "the run ended before the step ended (it was cancelled through its handle"
        f" with {mode.value}{why}, and had not stopped)"
    )
