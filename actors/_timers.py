"""The Timers actor: every deadline of the runtime on one thread.

Its mailbox doubles as the timer wheel: when no message arrives before the
earliest deadline, ``get()`` hands the actor a :class:`TimerTick` instead. So
timers cost no thread of their own, and a FakeClock drives them in tests.
"""

from __future__ import annotations

import heapq
import itertools
import threading
from typing import Any

from pykka._envelope import Envelope

from actors._base import ControlFirstInbox, ProctorActor, tell
from actors._census import Census
from actors._clock import Clock
from actors._messages import CancelTimer, ScheduleTimer, TimerTick


class TimerInbox(ControlFirstInbox):
    """A mailbox that also yields a TimerTick when ``deadline`` passes on
    ``clock``; it waits on a condition, which a FakeClock can wake."""

    def __init__(self) -> None:
        super().__init__()
        self._cond = threading.Condition(threading.Lock())
        self.clock: Clock | None = None
        self.deadline: float | None = None

    def _signal(self) -> None:
        with self._cond:
            self._cond.notify()

    def get(self) -> Envelope[Any]:
        with self._cond:
            while not (self._control or self._normal):
                clock, deadline = self.clock, self.deadline
                if clock is not None and deadline is not None and clock.monotonic() >= deadline:
                    return Envelope(TimerTick())
                if clock is None:
                    self._cond.wait()
                else:
                    clock.wait(self._cond, deadline)
            return self._control.popleft() if self._control else self._normal.popleft()

    def wake(self) -> None:
        with self._cond:
            self._cond.notify_all()


class Timers(ProctorActor):
    def __init__(self, *, census: Census, parent: Any, clock: Clock) -> None:
        super().__init__(parent=parent, name="Timers", census=census)
        self.clock = clock
        self._heap: list[tuple[float, int, object]] = []
        self._pending: dict[object, tuple[Any, Any]] = {}
        self._seq = itertools.count()
        assert isinstance(self.actor_inbox, TimerInbox)
        self.actor_inbox.clock = clock

    @staticmethod
    def _create_actor_inbox() -> TimerInbox:
        return TimerInbox()

    def handle(self, message: Any) -> None:
        if isinstance(message, ScheduleTimer):
            self._pending[message.token] = (message.target, message.message)
            heapq.heappush(self._heap, (message.due, next(self._seq), message.token))
        elif isinstance(message, CancelTimer):
            self._pending.pop(message.token, None)
        elif isinstance(message, TimerTick):
            now = self.clock.monotonic()
            while self._heap and self._heap[0][0] <= now:
                _, _, token = heapq.heappop(self._heap)
                entry = self._pending.pop(token, None)
                if entry is not None:
                    tell(entry[0], entry[1])
        else:
            raise TypeError(f"Timers cannot handle {message!r}")
        # Drop cancelled entries at the head so the deadline is a live one.
        while self._heap and self._heap[0][2] not in self._pending:
            heapq.heappop(self._heap)
        assert isinstance(self.actor_inbox, TimerInbox)
        self.actor_inbox.deadline = self._heap[0][0] if self._heap else None
