"""Body timers: the durable timers of one run's workflow body (B1).

A durable timer belongs to one call of the body (call ``n``, numbered like
steps, so replay finds it again) and has a due *instant*: a UTC wall-clock
time, recorded, so that any runtime on any host that resumes the run can
compute what is left of it. Locally it is scheduled on the runtime's
monotonic clock through the one ``Timers`` actor (no thread per timer; a
``FakeClock`` drives it in tests).

The interface, for every primitive built on a timer (``sleep`` here; a
cancel scope's deadline, B3; ``wait_for_signal(timeout=)``, B5)::

    timers.start(call_id, kind="sleep", due_at=t, seconds=s,
                 on_fired=..., on_run_cancel=..., shielded=False)
        record ``timer_started`` (joins the body's current group) and
        schedule it; ``t`` is wall-clock seconds since the epoch.
    timers.resume(call_id, kind=..., due_at=t, on_fired=..., ...)
        an unfired timer read from the log (replay after a takeover):
        schedule it again at its original instant, or at once if that has
        passed; nothing is recorded.
    timers.drop(call_id, reason)      # -> bool
        drop a pending timer and record ``timer_cancelled``; False if it
        was not pending (it fired, or was dropped).
    timers.on_due(TimerDue(call=n))   # from the supervisor's mailbox
        the timer is due: record ``timer_fired`` (at the head of the body's
        next group, as a step's end is) and call its ``on_fired(call_id)``.
    timers.on_run_cancel(reason)
        the run's cancel (C1) reached the body: every pending timer that is
        not ``shielded`` and has an ``on_run_cancel`` is dropped (recorded)
        and that callback is called with ``(call_id, reason)``.
    timers.release()
        the supervisor stops (terminate, shutdown, lost lease): unschedule
        every timer locally, record nothing; a successor resumes them.

Replay reads the records back through ``History`` (``actors._replay``): a
``timer_started`` makes call ``n`` a recorded call of kind ``"timer"``
(``RecordedCall.timer`` its start data) whose end is its ``timer_fired``
or ``timer_cancelled`` (also ``RecordedCall.timer_end``). A timer started
for a call that has records of its own kind (the timeout of a signal wait,
say) only adds ``timer`` and ``timer_end`` to that call's record: its end
stays the call's own business. Check a timer call with ``TimerCall(kind)``
(``actors._sleep``) through ``Body.recorded``.

Invariants: at most one pending timer per call id; a timer fires at most
once, and only while pending (a drop or a release before the ``TimerDue``
is read wins); its ``timer_fired``/``timer_cancelled`` is written before
anything the body does after it takes effect (D1); a timer's due instant is
decided once, when it is first recorded, never again from the clock.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from actors._clock import Clock
from actors._messages import TimerDue
from actors._recorder import Recorder
from persistence import EventType, NewEvent

_E = EventType

#: The key of a body timer in the runtime's ``Timers`` actor (with the run id).
TIMER_KEY = "body_timer"


class TimerHost(Protocol):
    """What body timers need of the run supervisor."""

    def schedule_timer(self, key: tuple[str, int], due: float, message: Any) -> None: ...

    def cancel_timer(self, key: tuple[str, int]) -> None: ...


@dataclass(slots=True, kw_only=True)
class PendingTimer:
    """A timer started (or resumed) and neither fired nor dropped."""

    call_id: int
    kind: str
    #: UTC wall-clock seconds since the epoch.
    due_at: float
    shielded: bool
    on_fired: Callable[[int], None]
    on_run_cancel: Callable[[int, str | None], None] | None


def due_text(due_at: float) -> str:
    """A due instant as ISO 8601 UTC text with milliseconds (``...Z``); its
    raw number if it is no date (recorded by another version or by hand)."""
    try:
        when = dt.datetime.fromtimestamp(due_at, dt.UTC)
    except (ValueError, OverflowError, OSError):
        return repr(due_at)
    return when.isoformat(timespec="milliseconds").replace("+00:00", "Z")


class BodyTimers:
    """One run's durable body timers (see the module docstring)."""

    def __init__(self, host: TimerHost, *, run_id: str, log: Recorder, clock: Clock) -> None:
        self._host = host
        self._run_id = run_id
        self._log = log
        self._clock = clock
        self.pending: dict[int, PendingTimer] = {}

    def now(self) -> float:
        """The wall clock a due instant is computed from (UTC epoch seconds)."""
        return self._clock.time()

    def start(
        self,
        call_id: int,
        *,
        kind: str,
        due_at: float,
        seconds: float | None,
        on_fired: Callable[[int], None],
        on_run_cancel: Callable[[int, str | None], None] | None = None,
        shielded: bool = False,
    ) -> None:
        """Record ``timer_started`` for call ``call_id`` and schedule it."""
        started = NewEvent(
            run_id=self._run_id,
            type=_E.TIMER_STARTED,
            step=kind,
            call=call_id,
            data={"due_at": due_at, "due": due_text(due_at), "seconds": seconds},
        )
        self._write(started)
        self.resume(
            call_id,
            kind=kind,
            due_at=due_at,
            on_fired=on_fired,
            on_run_cancel=on_run_cancel,
            shielded=shielded,
        )

    def resume(
        self,
        call_id: int,
        *,
        kind: str,
        due_at: float,
        on_fired: Callable[[int], None],
        on_run_cancel: Callable[[int, str | None], None] | None = None,
        shielded: bool = False,
    ) -> None:
        """Schedule a recorded, unfired timer at its instant (at once if past)."""
        assert call_id not in self.pending, f"call {call_id} has a timer already"
        self.pending[call_id] = PendingTimer(
            call_id=call_id,
            kind=kind,
            due_at=due_at,
            shielded=shielded,
            on_fired=on_fired,
            on_run_cancel=on_run_cancel,
        )
        # Wall clock to local monotonic time: what is left of it, from now.
        left = max(0.0, due_at - self._clock.time())
        due = self._clock.monotonic() + left
        self._host.schedule_timer((TIMER_KEY, call_id), due, TimerDue(call=call_id))

    def on_due(self, msg: TimerDue) -> None:
        """The Timers actor says call ``msg.call``'s timer is due."""
        timer = self.pending.pop(msg.call, None)
        if timer is None:
            return  # dropped or released before this was read
        # Like a step's end: written at the head of the body's next group.
        self._log.defer(self._event(_E.TIMER_FIRED, timer))
        timer.on_fired(timer.call_id)
        self._log.flush()  # if on_fired did not step the body, send it now

    def drop(self, call_id: int, reason: str | None) -> bool:
        """Drop a pending timer, recording ``timer_cancelled``; False if none."""
        timer = self.pending.pop(call_id, None)
        if timer is None:
            return False
        self._host.cancel_timer((TIMER_KEY, call_id))
        self._write(self._event(_E.TIMER_CANCELLED, timer, reason=reason))
        return True

    def fire_now(self, call_id: int) -> bool:
        """A pending timer whose instant has passed fires now, at a checkpoint
        of the body (B3: a scope's deadline met live); False if not pending."""
        timer = self.pending.pop(call_id, None)
        if timer is None:
            return False
        self._host.cancel_timer((TIMER_KEY, call_id))
        self._write(self._event(_E.TIMER_FIRED, timer))
        return True

    def interrupt(self, call_id: int, reason: str | None) -> bool:
        """One pending timer meets a cancel (B3: its scope's): dropped and
        recorded as the run's cancel drops it; False if it has no such callback."""
        timer = self.pending.get(call_id)
        if timer is None or timer.on_run_cancel is None:
            return False
        self.pending.pop(call_id)
        self._host.cancel_timer((TIMER_KEY, call_id))
        self._log.defer(self._event(_E.TIMER_CANCELLED, timer, reason=reason))
        timer.on_run_cancel(call_id, reason)
        if not self._log.driving:
            self._log.flush()
        return True

    def on_run_cancel(self, reason: str | None) -> None:
        """The run's cancel: drop the timers it interrupts (not shielded ones, S1)."""
        for timer in list(self.pending.values()):
            if timer.shielded or timer.on_run_cancel is None:
                continue
            self.pending.pop(timer.call_id)
            self._host.cancel_timer((TIMER_KEY, timer.call_id))
            self._log.defer(self._event(_E.TIMER_CANCELLED, timer, reason=reason))
            timer.on_run_cancel(timer.call_id, reason)
            self._log.flush()

    def release(self) -> None:
        """Unschedule every timer, recording nothing (the supervisor stops)."""
        for call_id in list(self.pending):
            self._host.cancel_timer((TIMER_KEY, call_id))
        self.pending.clear()

    def _write(self, event: NewEvent) -> None:
        """With the body's current group if it is being stepped; else at once."""
        if self._log.driving:
            self._log.defer(event)
        else:
            self._log.append(event, tag=None)

    def _event(self, type_: EventType, timer: PendingTimer, **data: Any) -> NewEvent:
        return NewEvent(
            run_id=self._run_id, type=type_, step=timer.kind, call=timer.call_id, data=data
        )
