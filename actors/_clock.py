"""Time, injectable: the Timers actor waits through a Clock.

``SystemClock`` is real time. ``FakeClock`` only moves when a test calls
:meth:`FakeClock.advance`, which fires every deadline it passes at once.

Two readings: ``monotonic()`` schedules (it never goes backwards);
``time()`` is the wall clock (UTC seconds since the epoch), only for what is
recorded to be read by another process or host, such as a durable timer's
due instant (B1). A FakeClock's wall clock moves with its monotonic one.
"""

from __future__ import annotations

import threading
import time
import weakref
from typing import Protocol, runtime_checkable

from persistence import (
    BOUND_TEXT,
    MAX_SECONDS,
    InvalidArgument,
    duration_seconds,
    finite_number,
)


@runtime_checkable
class Clock(Protocol):
    def monotonic(self) -> float:
        """Seconds on a clock that never goes backwards."""
        ...

    def time(self) -> float:
        """Wall-clock seconds since the epoch (UTC), as ``time.time()``."""
        ...

    def wait(self, cond: threading.Condition, deadline: float | None) -> None:
        """Wait on ``cond`` (held by the caller) until notified or ``deadline``."""
        ...


class SystemClock:
    def monotonic(self) -> float:
        return time.monotonic()

    def time(self) -> float:
        """The wall clock: UTC seconds since the epoch (deadlines, due instants)."""
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
        """``start``: the first monotonic reading, a finite number of seconds
        of at most 1000 years either way (``InvalidArgument`` otherwise)."""
        if abs(finite_number("FakeClock(start)", start, unit="seconds")) > MAX_SECONDS:
            raise InvalidArgument(f"FakeClock(start) must be {BOUND_TEXT}, got {start!r}")
        self._now = float(start)
        #: The wall clock reads real time at construction, then moves only
        #: with :meth:`advance` (so a due instant recorded under it is virtual).
        self._wall = time.time() - start
        self._lock = threading.Lock()
        self._waiters: weakref.WeakSet[threading.Condition] = weakref.WeakSet()

    def monotonic(self) -> float:
        with self._lock:
            return self._now

    def time(self) -> float:
        """Virtual wall clock: the real one when made, plus every advance()."""
        with self._lock:
            return self._wall + self._now

    def wait(self, cond: threading.Condition, deadline: float | None) -> None:
        """Wait on ``cond`` (held by the caller) until an advance, or at once if
        ``deadline`` has passed: the caller read the time before this call, and
        an advance made since then, before ``cond`` was registered here (a
        new waiter's first wait), would otherwise wake no one (lost wakeup)."""
        with self._lock:
            self._waiters.add(cond)
            if deadline is not None and self._now >= deadline:
                return
        cond.wait()

    def advance(self, seconds: float) -> None:
        """Move time forward by ``seconds`` and wake every waiter so that due
        deadlines fire.

        Raises:
            InvalidArgumentType: ``seconds`` is not a real number (a str, None, a bool).
            InvalidArgument: negative ("time cannot go backwards"), NaN,
                infinite, or above 1000 years: virtual time stays a finite
                number every timer can be compared with and shown as a date.
        """
        if isinstance(seconds, int | float) and not isinstance(seconds, bool) and seconds < 0:
            raise InvalidArgument("time cannot go backwards")
        seconds = duration_seconds("FakeClock.advance(seconds)", seconds)
        with self._lock:
            self._now += seconds
            waiters = list(self._waiters)
        for cond in waiters:
            with cond:
                cond.notify_all()
