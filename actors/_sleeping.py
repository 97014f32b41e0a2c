"""Sleeps: what ``await sleep(...)`` does in a run's body (B1), on a body timer.

An ``await sleep(...)`` is one call of the body (call ``n``, numbered like
steps) and two checkpoints, as a step's await is: one before the timer
starts (a run already cancelling never starts it, C3) and one when the
await resumes (``Body.settle``). Between them the body waits on a durable
timer (``_body_timers``):

- live: ``timer_started`` is recorded with the due instant (UTC wall clock),
  and the timer is scheduled;
- replay, the call fired or was cancelled: the await resumes at once from
  the log, without waiting (D2);
- replay, the timer never fired (its runtime died): it is scheduled again
  at its recorded instant, or at once if that has passed; if the run was
  cancelled meanwhile (D3) the timer is dropped instead (C3);
- the run's cancel while it waits outside a shield drops the timer
  (``timer_cancelled``) and the await raises ``CancellationError`` at once
  (C2); inside a shield the timer runs to its end (S1).

Invariants: one timer per sleep call; the await resumes exactly once, when
its timer's end is written (fired or cancelled); the due instant comes from
the log whenever the log has it.
"""

from __future__ import annotations

from typing import Any, Protocol

from actors._attempts import Waiting
from actors._body import AwaitResult, Body
from actors._body_timers import BodyTimers
from actors._errors import CancellationError, NonDeterminismError
from actors._messages import CallEnded, Cancel
from actors._replay import RecordedCall
from actors._sleep import Sleep, TimerCall
from persistence import EventRecord, EventType

_E = EventType

#: The kind of the body timers a sleep starts (the ``step`` of its records).
SLEEP = "sleep"


class SleepHost(Protocol):
    """What a sleep needs of the run supervisor."""

    @property
    def current_cancel(self) -> Cancel | None: ...

    def cancel_due(self) -> bool:
        """The run is cancelling and the body is not in a shield."""

    def go_live(self) -> None:
        """The body made a call its log does not have."""

    def on_call_recorded(self, ended: CallEnded) -> None:
        """A call's end is written (or decided): the await may resume."""


def timer_outcome(end: EventRecord) -> tuple[Any, BaseException | None]:
    """What the await of an ended timer gives the body: (value, error)."""
    if end.type is _E.TIMER_CANCELLED:
        return None, CancellationError(end.data.get("reason"))
    return None, None


class Sleeps:
    """The body's ``await sleep(...)`` calls (see the module docstring)."""

    def __init__(self, host: SleepHost, *, body: Body, timers: BodyTimers) -> None:
        self._host = host
        self._body = body
        self._timers = timers

    def on_await(self, command: Sleep) -> AwaitResult | Waiting | None:
        """The body awaits ``command``: its outcome now, or what it waits on."""
        body = self._body
        if body.checkpoint_due():
            return None, body.deliver_cancel()
        call_id = body.next_call_id()
        recorded = body.recorded(call_id, TimerCall(SLEEP))
        if isinstance(recorded, NonDeterminismError):
            body.fail_replay(recorded)
            return None
        waiting = Waiting(gathered=False, call_ids=(call_id,))
        if recorded is not None and recorded.end is not None:
            # Replay: it fired (or was cancelled); the await does not wait again.
            waiting.values[call_id], waiting.errors[call_id] = timer_outcome(recorded.end)
            return body.settle(waiting)
        shielded = body.shielded
        if recorded is not None:
            return self._resume(call_id, recorded, waiting, shielded)
        due_at = command.until
        if due_at is None:
            assert command.seconds is not None
            due_at = self._timers.now() + command.seconds
        self._host.go_live()
        self._timers.start(
            call_id,
            kind=SLEEP,
            due_at=due_at,
            seconds=command.seconds,
            on_fired=self._fired,
            on_run_cancel=self._cancelled,
            shielded=shielded,
        )
        return waiting

    def _resume(
        self, call_id: int, recorded: RecordedCall, waiting: Waiting, shielded: bool
    ) -> AwaitResult | Waiting:
        """A timer the log shows started and not ended: its runtime died."""
        assert recorded.timer is not None
        due_at = float(recorded.timer["due_at"])
        self._host.go_live()
        self._timers.resume(
            call_id,
            kind=SLEEP,
            due_at=due_at,
            on_fired=self._fired,
            on_run_cancel=self._cancelled,
            shielded=shielded,
        )
        cancel = self._host.current_cancel
        if cancel is not None and self._host.cancel_due():
            # D3 + C3: cancelled while nobody hosted the run; the sleep ends now.
            self._timers.drop(call_id, cancel.reason)
            waiting.values[call_id] = None
            waiting.errors[call_id] = CancellationError(cancel.reason)
            return self._body.settle(waiting)
        return waiting

    def _fired(self, call_id: int) -> None:
        self._host.on_call_recorded(CallEnded(call_id=call_id))

    def _cancelled(self, call_id: int, reason: str | None) -> None:
        self._host.on_call_recorded(CallEnded(call_id=call_id, error=CancellationError(reason)))
