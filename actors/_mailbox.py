"""The control-first mailboxes: Cancel and Terminate never wait behind ordinary work.

:class:`ControlFirstInbox` is every Proctor actor's mailbox: two lanes, the
control lane (:class:`ControlMessage`) always emptied first, so a cancel
keeps its latency however long the actor's backlog, and a busy step can
take its control messages without blocking (``take_control_nowait``).
:class:`TimerInbox` adds a deadline: when none arrives before it, the
owner is handed a :class:`TimerTick`, so the Timers and the ControlInbox
need no thread of their own to keep time.

Invariants: only the owning actor's thread takes messages out; any thread
puts them in. Every message put in is taken by the owner or, once the owner
stopped, refused (its sender hears so): none is dropped silently.
"""

from __future__ import annotations

import collections
import queue
import threading
from collections.abc import Callable
from typing import Any

from actors._clock import Clock
from actors._messages import ControlMessage, TimerTick
from actors._pykka import Envelope


class ControlFirstInbox:
    """A mailbox with two lanes: control messages are always taken first.

    Only the owning actor's thread takes messages out (its loop, a busy
    step's check, the Journal's batching); any thread puts them in. So the
    lanes are plain deques (their appends and pops are atomic) and a put
    wakes the owner through a C-level queue of tokens, one per message: no
    Python-level lock on the path of every message. A token whose message
    was already taken by a check just makes the owner look again.
    """

    def __init__(self) -> None:
        self._control: collections.deque[Envelope[Any]] = collections.deque()
        self._normal: collections.deque[Envelope[Any]] = collections.deque()
        self._ready: queue.SimpleQueue[None] = queue.SimpleQueue()
        #: Set once the owner stopped: what is left, or arrives later, goes here.
        self._refuse: Callable[[Envelope[Any]], None] | None = None

    def put(self, envelope: Envelope[Any], /) -> None:
        lane = self._control if isinstance(envelope.message, ControlMessage) else self._normal
        lane.append(envelope)
        self._signal()
        if self._refuse is not None:
            # The owner stopped after the sender saw it alive: nobody will
            # take this message, so refuse it now. (Appended first, checked
            # second: either close() drains it or this does.)
            self._drain()

    def close(self, refuse: Callable[[Envelope[Any]], None]) -> None:
        """The owner stopped: refuse every message left, and every later one."""
        self._refuse = refuse
        self._drain()

    def _drain(self) -> None:
        refuse = self._refuse
        assert refuse is not None
        for lane in (self._control, self._normal):
            while True:
                try:
                    envelope = lane.popleft()
                except IndexError:
                    break
                refuse(envelope)

    def _signal(self) -> None:
        self._ready.put(None)

    def get(self) -> Envelope[Any]:
        while True:
            self._ready.get()
            if self._control:
                return self._control.popleft()
            if self._normal:
                return self._normal.popleft()

    def empty(self) -> bool:
        return not (self._control or self._normal)

    def take_control_nowait(self) -> list[Any]:
        """Take every pending control message; the cheap check of a busy step."""
        # A message that lands right after this read is seen by the next check.
        # Step code may check from threads of its own: popleft() is atomic,
        # and an empty lane ends the take whoever emptied it.
        taken = []
        while self._control:
            try:
                taken.append(self._control.popleft().message)
            except IndexError:
                break
        return taken

    def take_nowait_if(self, accept: Callable[[Any], bool]) -> Any | None:
        """Take the next ordinary message if ``accept``s it (for batching)."""
        if self._control or not self._normal or not accept(self._normal[0].message):
            return None
        return self._normal.popleft().message


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
