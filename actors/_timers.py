"""The Timers actor: every deadline of the runtime on one thread.

Its mailbox doubles as the timer wheel: when no message arrives before the
earliest deadline, ``get()`` hands the actor a :class:`TimerTick` instead. So
timers cost no thread of their own, and a FakeClock drives them in tests.
"""

from __future__ import annotations

import heapq
import itertools
from typing import Any

from actors._base import ProctorActor, tell
from actors._census import Census
from actors._clock import Clock
from actors._mailbox import TimerInbox
from actors._messages import CancelTimer, PendingTimers, ScheduleTimer, TimerTick


class Timers(ProctorActor):
    def __init__(self, *, census: Census, parent: Any, clock: Clock) -> None:
        super().__init__(parent=parent, name="Timers", census=census)
        self.clock = clock
        self._heap: list[tuple[float, int, object]] = []
        self._pending: dict[object, tuple[Any, Any]] = {}
        self._seq = itertools.count()
        assert isinstance(self.actor_inbox, TimerInbox)
        self.actor_inbox.clock = clock

    def new_inbox(self) -> TimerInbox:
        return TimerInbox()

    def handle(self, message: Any) -> Any:
        if isinstance(message, PendingTimers):
            return frozenset(self._pending)
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
        return None
