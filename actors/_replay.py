"""Replay: what a resumed run's log says its body already did (D2).

A runtime that takes over a run re-runs its workflow body from the start.
The body must make the same calls in the same order: call ids are counted
the same way, so call ``n`` of the replayed body is call ``n`` of the log.

- A call whose end is in the log returns the recorded result, or raises the
  recorded failure, without starting anything.
- A call that started and never ended (its attempt was lost with its
  runtime) runs again as a new attempt (``step_reexecuted``).
- A durable timer (``await sleep``, B1) is a call too: its
  ``timer_started`` holds the due instant, its end is ``timer_fired`` or
  ``timer_cancelled``; one never ended is scheduled again (``_sleeping``).
- What the body itself recorded (shield entry and exit, a cancel delivered
  at checkpoint ``k``) is matched one by one and not written twice. This
  is also what makes cancellation replay exactly: a cancel is delivered
  again at the checkpoint the log names, not at whichever checkpoint
  happens to come first now.

Once the body has consumed its whole history it runs live.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Literal

from actors._definitions import Call, StepCall
from actors._errors import CancellationError, NonDeterminismError, StepFailed
from actors._outcomes import child_outcome
from actors._signal_log import SignalLog
from actors._sleep import TimerCall
from persistence import (
    BODY_EVENTS,
    EventRecord,
    EventType,
    NewEvent,
    NotSerializable,
    PayloadTooLarge,
    RunRecord,
    RunState,
    StepRecord,
    reused_end,
    safe_str,
    type_name,
)

_E = EventType

_SIGNAL_EVENTS = frozenset({_E.SIGNAL_SENT, _E.SIGNAL_WAITING, _E.SIGNAL_RECEIVED})
_STEP_ENDS = frozenset({_E.STEP_COMPLETED, _E.STEP_FAILED, _E.STEP_CANCELLED, _E.STEP_TIMED_OUT})
_TIMER_ENDS = frozenset({_E.TIMER_FIRED, _E.TIMER_CANCELLED})
_WHAT = {"step": "step", "child": "child workflow", "signal": "wait for signal", "timer": "timer"}


@dataclass(slots=True)
class RecordedCall:
    """One call of the body as its log records it."""

    call: int
    kind: Literal["step", "child", "signal", "timer"]
    name: str
    #: The highest attempt number started so far.
    last_attempt: int = 0
    #: Attempts started and neither ended nor abandoned (lost with their runtime).
    running: list[int] = field(default_factory=list)
    #: ``step_completed``/``step_failed``/``step_cancelled`` or ``child_ended``.
    end: EventRecord | None = None
    child_run_id: str | None = None
    #: The last attempt was lost with its runtime (not failed and awaiting a retry).
    lost: bool = False
    #: The latest heartbeat details any attempt recorded: the next attempt's
    #: ``ctx.last_heartbeat_details`` (H2), after a timeout or a crash alike.
    heartbeat_details: Any = None
    #: The ``timer_started`` data (its ``due_at``) of the call's durable timer,
    #: and that timer's ``timer_fired``/``timer_cancelled``: a timer call's
    #: own (then also its ``end``), or the timeout of a call of another kind.
    timer: dict[str, Any] | None = None
    timer_end: EventRecord | None = None

    def end_data(self) -> dict[str, Any]:
        """The latest details, for the end record of an attempt lost in a crash."""
        details = self.heartbeat_details
        return {} if details is None else {"last_heartbeat_details": details}

    #: The next attempt (``last_attempt + 1``) is recorded waiting for a step
    #: slot: it starts as that attempt, with no new record but its start.
    waiting: bool = False

    def describe(self) -> str:
        return f"{_WHAT[self.kind]} {self.name!r}"


class History:
    """A run's log, folded into what replay needs.

    ``record``: the run's record as the log was read (a takeover's); None for
    the reused calls a restart's new run begins with (A7), whose body has not
    run yet (``started`` is False): it records its own events (shields) live,
    and only its calls are answered from the history.
    """

    def __init__(
        self,
        record: RunRecord | None,
        events: Sequence[EventRecord],
        steps: Sequence[StepRecord] = (),
        *,
        run_id: str = "",
        workflow: str = "",
    ) -> None:
        self.record = record
        self.run_id = record.run_id if record is not None else run_id
        self.workflow = record.workflow if record is not None else workflow
        self.calls: dict[int, RecordedCall] = {}
        self.body: deque[EventRecord] = deque()
        self.started = False
        self.cancel_seq: int | None = None
        #: B5: the signals sent to the run and taken by its waits (``_signal_log``).
        self.signals = SignalLog()
        for event in events:
            self._fold(event)
        # An attempt lost with its runtime has no end record: its latest
        # details are the ones its heartbeats wrote to its row (H2).
        for row in steps:
            call = self.calls.get(row.call)
            if call and row.attempt in call.running and row.heartbeat_details is not None:
                call.heartbeat_details = row.heartbeat_details

    @classmethod
    def of_restart(cls, run_id: str, workflow: str, reused: Sequence[NewEvent]) -> History:
        """The history a restart's new run begins with: its ``call_reused`` records (A7)."""
        records = [
            EventRecord(
                seq=0,
                run_id=ev.run_id,
                run_seq=0,
                ts=0.0,
                type=ev.type,
                step=ev.step,
                call=ev.call,
                attempt=ev.attempt,
                data=ev.data,
            )
            for ev in reused
        ]
        return cls(None, records, run_id=run_id, workflow=workflow)

    def _fold(self, ev: EventRecord) -> None:
        t = ev.type
        if t is _E.CALL_REUSED and ev.call is not None and ev.step is not None:
            # A7: the call ended in the run this one restarts; it runs no more.
            end_type, data = reused_end(ev)
            if ev.data.get("kind") in ("signal", "timer"):
                self.calls[ev.call] = reused_wait(ev, end_type, data)
                return
            self.calls[ev.call] = RecordedCall(
                ev.call,
                "child" if ev.data.get("kind") == "child" else "step",
                ev.step,
                last_attempt=ev.attempt or 0,
                end=replace(ev, type=end_type, data=data),
                child_run_id=data.get("child_run_id"),
            )
        elif t in _SIGNAL_EVENTS:
            self._fold_signal(ev)
        elif t is _E.RUN_STARTED:
            self.started = True
        elif t is _E.CANCEL_REQUESTED and self.cancel_seq is None:
            self.cancel_seq = ev.run_seq
        elif t in BODY_EVENTS and ev.call is None:
            self.body.append(ev)
        elif t is _E.STEP_SCHEDULED and ev.call is not None and ev.step is not None:
            self.calls[ev.call] = RecordedCall(ev.call, "step", ev.step)
        elif t is _E.CHILD_STARTED and ev.call is not None and ev.step is not None:
            self.calls[ev.call] = RecordedCall(
                ev.call, "child", ev.step, child_run_id=ev.data.get("child_run_id")
            )
        elif t is _E.TIMER_STARTED and ev.call is not None:
            if ev.call in self.calls:  # the timeout of a call of its own kind
                self.calls[ev.call].timer = dict(ev.data)
            else:
                self.calls[ev.call] = RecordedCall(
                    ev.call, "timer", ev.step or "timer", timer=dict(ev.data)
                )
        elif ev.call is not None and ev.call in self.calls:
            call = self.calls[ev.call]
            if t in _STEP_ENDS or t is _E.STEP_ABANDONED:
                details = ev.data.get("last_heartbeat_details")
                if details is not None:
                    call.heartbeat_details = details
            if t is _E.STEP_STARTED and ev.attempt is not None:
                call.last_attempt = max(call.last_attempt, ev.attempt)
                call.running.append(ev.attempt)
                call.end, call.lost, call.waiting = None, False, False
            elif t is _E.STEP_WAITING:
                call.waiting = True
            elif t is _E.STEP_ABANDONED and ev.attempt in call.running:
                call.running.remove(ev.attempt)
                call.lost = True
            elif t in _STEP_ENDS:
                if ev.attempt in call.running:
                    call.running.remove(ev.attempt)
                call.end, call.waiting = ev, False
            elif t is _E.STEP_RETRY_SCHEDULED:
                call.end = None  # the failure was not the call's end: a retry follows
            elif t in _TIMER_ENDS:
                call.timer_end = ev
                if call.kind == "timer":
                    call.end = ev
            elif t is _E.CHILD_ENDED:
                call.end = ev

    def _fold_signal(self, ev: EventRecord) -> None:
        """B5: a signal sent, or a wait of the body (call ``n``) and what it took."""
        self.signals.fold(ev)
        if ev.call is not None and ev.step is not None and ev.type is not _E.SIGNAL_SENT:
            wait = self.calls.setdefault(ev.call, RecordedCall(ev.call, "signal", ev.step))
            if ev.type is _E.SIGNAL_RECEIVED:
                wait.end = ev

    def fold(self, ev: EventRecord) -> None:
        """Take in a record written after the log was read (a takeover's own)."""
        self._fold(ev)

    def lost_attempts(self) -> list[tuple[RecordedCall, int]]:
        """Step attempts the log shows running: their runtime died under them."""
        return [(c, attempt) for c in self.calls.values() for attempt in c.running]

    def exhausted(self, next_call: int) -> bool:
        """Nothing left to replay once the body's next call id is ``next_call``."""
        return not self.body and all(call_id < next_call for call_id in self.calls)

    def check_call(self, call_id: int, call: Call | TimerCall) -> RecordedCall | None:
        """The recorded call with this id, checked against what the body asks now.

        Raises:
            NonDeterminismError: the log has another call there, or expects
                the body to do something else first.
        """
        kind: Literal["step", "child", "timer"]
        if isinstance(call, TimerCall):
            kind, name = "timer", call.kind
        elif isinstance(call, StepCall):
            kind, name = "step", call.step.name
        else:
            kind, name = "child", call.workflow.name
        what = f"{_WHAT[kind]} {name!r}"
        recorded = self.calls.get(call_id)
        if recorded is None:
            if self.body:
                raise self.diverged(
                    f"call {call_id} is {what}, but the log has {self.body[0].type} first"
                )
            return None
        if recorded.kind != kind or recorded.name != name:
            raise self.diverged(f"call {call_id} is {what}, but the log has {recorded.describe()}")
        return recorded

    def match_body_event(self, type_: EventType) -> None:
        """The body recorded ``type_`` again; it must be the log's next body event."""
        expected = self.body.popleft() if self.body else None
        if expected is None or expected.type is not type_:
            found = expected.type if expected is not None else "a call"
            raise self.diverged(f"the workflow records {type_}, but the log has {found} next")

    def cancel_at(self, checkpoint: int) -> EventRecord | None:
        """The recorded ``cancel_delivered`` of this checkpoint, consumed; or None."""
        nxt = self.body[0] if self.body else None
        if (
            nxt is not None
            and nxt.type is _E.CANCEL_DELIVERED
            and nxt.data.get("checkpoint") == checkpoint
        ):
            return self.body.popleft()
        return None

    def diverged(self, detail: str, why: str | None = None) -> NonDeterminismError:
        why = why or "The workflow code changed while the run was unfinished."
        return NonDeterminismError(
            f"replay of run {self.run_id} ({self.workflow}) diverged from its log: {detail}. {why}"
        )

    def ended_at(self, next_call: int, raised: BaseException | None = None) -> NonDeterminismError:
        """The body ended (returned, or ``raised``) with its log not all replayed.

        When it raised, the error names that exception (type, message) as its
        cause: that is what to fix, not necessarily a code change.
        """
        left = [c for c in sorted(self.calls) if c >= next_call]
        nxt = f"call {left[0]}: {self.calls[left[0]].describe()}" if left else self.body[0].type
        if raised is None:
            return self.diverged(f"the workflow ended, but the log has {nxt} next")
        error = self.diverged(
            f"the workflow raised {type_name(raised)}: {safe_str(raised)}, where the run went "
            f"on to {nxt} the first time",
            "The body behaves differently on replay: its code changed, or it depends on "
            "something other than its arguments and recorded results.",
        )
        error.__cause__ = raised
        return error


def reused_wait(ev: EventRecord, end_type: EventType, data: dict[str, Any]) -> RecordedCall:
    """A7: a reused sleep (fired) or signal wait (its signal, payload and
    all, or its timeout) as the new run's replay reads it."""
    assert ev.step is not None
    assert ev.call is not None
    end = replace(ev, type=end_type, data=data)
    if ev.data["kind"] == "timer":
        return RecordedCall(ev.call, "timer", ev.step, end=end, timer=data, timer_end=end)
    if end_type is _E.SIGNAL_RECEIVED:
        return RecordedCall(ev.call, "signal", ev.step, end=end)
    return RecordedCall(ev.call, "signal", ev.step, timer=data, timer_end=end)


def recorded_outcome(run_id: str, call: RecordedCall) -> tuple[Any, BaseException | None]:
    """What the await of an ended call gives the body: (value, error)."""
    end = call.end
    assert end is not None
    data = end.data
    if end.type is _E.STEP_COMPLETED:
        return data.get("result"), None
    if end.type is _E.STEP_CANCELLED:
        return None, CancellationError(data.get("reason"))
    if end.type in (_E.STEP_FAILED, _E.STEP_TIMED_OUT):
        error = data.get("error") or {"type": "Exception", "message": "unknown"}
        # D4: the caller's error is raised again as itself, not as a StepFailed.
        for kind in (NotSerializable, PayloadTooLarge):
            if error.get("type") == kind.__name__:
                return None, kind.recorded(error.get("message", ""))
        return None, StepFailed(call.name, end.attempt or 1, error, escalated=data.get("escalated"))
    # child_ended: the same outcome the live child gave, from its record.
    status = RunState(data.get("status"))
    _, err = child_outcome(call.child_run_id or f"{run_id}.{call.call}", status, data)
    return data.get("result"), err
