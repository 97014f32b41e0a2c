"""Step slots: a runtime runs at most ``max_concurrent_steps`` step attempts at once.

Bounded concurrency with backpressure, as Temporal's workers bound their
activities (``max_concurrent_activities``) and DBOS bounds a queue's
(``concurrency``, ``worker_concurrency``). Without a bound, every run's step
gets a thread at once: 5,000 runs heartbeating every 0.2 s on two cores were
10,000 threads whose messages buried cancels and lease renewals for a minute.

A supervisor asks for a slot when it decides an attempt (:meth:`StepSlots.request`).
If one is free and nobody waits, it gets it at once and the attempt starts
as it always did (``step_started`` with the call's records). Otherwise the
attempt is recorded as waiting (``step_waiting``) and its :class:`Ticket`
queues; when a slot frees, the oldest waiting ticket gets it and its
supervisor is told (a ``SlotGranted`` message), which then records the start
and launches the attempt.

Invariants:

* at most ``limit`` tickets hold a slot at any time; granted in FIFO order;
* every granted ticket is released exactly once (:meth:`Ticket.release` is
  idempotent). Its holder releases it: the supervisor while the attempt waits
  or is about to start (and, for every ticket it still holds, when it stops),
  then the step attempt's actor, when its thread leaves the user's code.
  So an abandoned attempt (T3) holds its slot until its code really returns:
  the bound is on threads running step code, not on attempts someone still
  listens to;
* a released ticket that was still waiting is skipped, never granted: a
  cancelled waiting attempt is never started (C3).
"""

from __future__ import annotations

import enum
import os
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import replace
from typing import Final

from persistence import EventType, NewEvent

#: Attempts per CPU a runtime runs at once by default. Steps mostly wait on
#: I/O; Temporal's Python worker allows 100 concurrent activities.
STEPS_PER_CPU: Final = 50


def default_max_concurrent_steps() -> int:
    """``50 * CPUs`` this process may use, at least 16 (100 on two cores)."""
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return max(16, STEPS_PER_CPU * (cpus or 1))


def check_max_concurrent_steps(value: object) -> int:
    """``value`` as a slot count, or a clear error.

    Raises:
        TypeError: not an int (a bool is not a count either).
        ValueError: less than 1.
    """
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"max_concurrent_steps must be an int, got {value!r}")
    if value < 1:
        raise ValueError(f"max_concurrent_steps must be at least 1, got {value}")
    return value


class _TicketState(enum.Enum):
    WAITING = "waiting"
    GRANTED = "granted"
    RELEASED = "released"


class Ticket:
    """One attempt's claim on a slot; :attr:`granted` once it holds one."""

    __slots__ = ("_on_grant", "_slots", "_state")

    def __init__(self, slots: StepSlots, on_grant: Callable[[], bool]) -> None:
        self._slots = slots
        #: Called (outside the lock) when a waiting ticket gets its slot;
        #: returns False if nobody can take it any more (its actor is gone).
        self._on_grant = on_grant
        self._state = _TicketState.WAITING

    @property
    def granted(self) -> bool:
        return self._state is _TicketState.GRANTED

    def release(self) -> None:
        """Give the slot back (or stop waiting for one); later calls do nothing."""
        self._slots._release(self)


class StepSlots:
    """The step slots of one runtime; thread-safe."""

    def __init__(self, limit: int) -> None:
        self.limit = check_max_concurrent_steps(limit)
        self._lock = threading.Lock()
        self._free = self.limit
        #: Tickets waiting for a slot, oldest first. A released one stays
        #: until it reaches the head (withdrawing from the middle is O(1)).
        self._queue: deque[Ticket] = deque()
        self._waiting = 0
        #: Released tickets still in the queue; swept once they outnumber
        #: the waiting ones, so withdrawals never grow it without bound.
        self._withdrawn = 0
        self._closed = False

    def request(self, on_grant: Callable[[], bool]) -> Ticket:
        """A ticket for one attempt: granted now if a slot is free and nobody
        waits; otherwise queued, and ``on_grant()`` is called when its turn comes."""
        ticket = Ticket(self, on_grant)
        with self._lock:
            if self._free > 0 and not self._waiting and not self._closed:
                self._free -= 1
                ticket._state = _TicketState.GRANTED
            else:
                self._queue.append(ticket)
                self._waiting += 1
        return ticket

    def close(self) -> None:
        """The runtime stops (A4: it starts nothing new): no ticket is granted
        from now on, new or waiting; their holders still release them."""
        with self._lock:
            self._closed = True

    def statistics(self) -> tuple[int, int]:
        """(attempts holding a slot, attempts waiting for one): a snapshot."""
        with self._lock:
            return self.limit - self._free, self._waiting

    def _release(self, ticket: Ticket) -> None:
        with self._lock:
            state, ticket._state = ticket._state, _TicketState.RELEASED
            if state is _TicketState.WAITING:
                self._waiting -= 1  # skipped when it reaches the head
                self._withdrawn += 1
                if self._withdrawn > max(64, self._waiting):
                    self._queue = deque(t for t in self._queue if t._state is _TicketState.WAITING)
                    self._withdrawn = 0
                return
            if state is _TicketState.RELEASED:
                return
            heir = self._next_waiting()
        while heir is not None:
            if heir._on_grant():
                return
            # Its supervisor is gone: the slot passes on.
            with self._lock:
                heir._state = _TicketState.RELEASED
                heir = self._next_waiting()

    def _next_waiting(self) -> Ticket | None:
        """Hand the freed slot to the oldest waiting ticket, or free it (lock held)."""
        while self._queue and not self._closed:
            ticket = self._queue.popleft()
            if ticket._state is not _TicketState.WAITING:
                self._withdrawn -= 1
            else:
                self._waiting -= 1
                ticket._state = _TicketState.GRANTED
                return ticket
        self._free += 1
        return None


def waiting_records(
    events: list[NewEvent], waiting: dict[tuple[int | None, int | None], bool]
) -> list[NewEvent]:
    """The records of a group whose ``waiting`` attempts got no step slot.

    Each such ``step_started`` becomes ``step_waiting``; or, if the log has
    the attempt waiting already (``waiting[key]`` True: a resumed run), goes.
    """
    kept = []
    for event in events:
        key = (event.call, event.attempt)
        if event.type is not EventType.STEP_STARTED or key not in waiting:
            kept.append(event)
        elif not waiting[key]:
            kept.append(replace(event, type=EventType.STEP_WAITING))
    return kept
