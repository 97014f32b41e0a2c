"""Time, injectable: the Timers actor waits through a Clock.

``SystemClock`` is real time. ``FakeClock`` only moves when a test calls
:meth:`FakeClock.advance`, which fires every deadline it passes at once.
"""

from __future__ import annotations

import threading
import time
import weakref
from typing import Protocol, runtime_checkable

from persistence import InvalidArgument


@runtime_checkable
class Clock(Protocol):
    def monotonic(self) -> float:
        """Seconds on a clock that never goes backwards."""
        ...

    def wait(self, cond: threading.Condition, deadline: float | None) -> None:
        """Wait on ``cond`` (held by the caller) until notified or ``deadline``."""
        ...


class SystemClock:
    def monotonic(self) -> float:
        return time.monotonic()

    def time(self) -> float:
        """The wall clock: UTC seconds since the epoch (a run's deadline, B4)."""
        return time.time()

    def wait(self, cond: threading.Condition, deadline: float | None) -> None:
        if deadline is None:
            cond.wait()
            return
        # A deadline centuries away (a huge grace or back-off) is a wait
        # that ends only when woken: past TIMEOUT_MAX, Condition.wait raises
        # OverflowError and would kill the Timers' thread.
        cond.wait(min(max(0.0, deadline - time.monotonic()), threading.TIMEOUT_MAX))


class FakeClock:
    """Virtual time for tests: deadlines fire only when :meth:`advance` passes them."""

    def __init__(self, start: float = 0.0) -> None:
        self._now = start
        self._start = start
        #: The wall clock's reading when this clock was made; it moves with advance().
        self._wall = time.time()
        self._lock = threading.Lock()
        self._waiters: weakref.WeakSet[threading.Condition] = weakref.WeakSet()

    def monotonic(self) -> float:
        with self._lock:
            return self._now

    def time(self) -> float:
        """Virtual wall clock: the real one when made, plus every advance()."""
        with self._lock:
            return self._wall + (self._now - self._start)

    def wait(self, cond: threading.Condition, deadline: float | None) -> None:
        with self._lock:
            self._waiters.add(cond)
        cond.wait()

    def advance(self, seconds: float) -> None:
        """Move time forward and wake every waiter so that due deadlines fire."""
        if seconds < 0:
            raise InvalidArgument("time cannot go backwards")
        with self._lock:
            self._now += seconds
            waiters = list(self._waiters)
        for cond in waiters:
            with cond:
                cond.notify_all()


def wall_time(clock: object) -> float:
    """``clock``'s wall clock (its ``time()``, UTC seconds since the epoch), or
    the system's for a clock that has none (the Clock protocol asks only for
    ``monotonic`` and ``wait``)."""
    read = getattr(clock, "time", None)
    return float(read()) if callable(read) else time.time()
