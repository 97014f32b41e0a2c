"""The runtime's close, in phases: open, a graceful drain, the stop (A4).

A runtime is OPEN until :meth:`Runtime.close` begins. ``close(drain=s)``
with ``s > 0`` first SETTLES: no new run starts and no new step attempt
(a decided retry, an attempt waiting for a step slot, the body's next
call: each stays in the log, unfinished, and runs on resume), and no run
is claimed or resumed; but the step attempts already running run on,
undisturbed, for up to ``s`` seconds, and each result that comes in is
recorded. Cancel and terminate are still served, from this process and
from others (the ControlInbox goes on, renewing the lease too), and so are
the facade's reads. Then it STOPS as a close without drain does: what
still runs is asked to stop (``Terminate`` at its next check), awaited for
up to ``shutdown_timeout`` (a result that comes meanwhile is still
recorded), then abandoned (``step_abandoned``; the next runtime runs it
again and logs ``step_reexecuted``). The drain ends early once nothing is
left to wait for, or when a second ``close()`` hurries it.

This is Temporal's worker shutdown (``graceful_shutdown_timeout``: running
activities may complete, no new task is polled) and Kubernetes'
SIGTERM-then-grace, with OTP's shutdown timeout (then kill) after it.

Not to be confused with a run supervisor's DRAINING hosting phase
(``_draining``, ``_lifecycle``): that is how one supervisor stops hosting
its run, for any reason (shutdown, store failure, lost lease). While the
runtime SETTLES, every supervisor is DRAINING with its steps let finish.

Invariants: the state moves only forward, through ``CLOSE_TRANSITIONS``;
once it has left OPEN no run starts (the facade refuses it, and the
Guardian refuses one that raced past), no step attempt gets a slot, and
no wait for a run's end goes on (each raises :class:`RuntimeClosed`: no
body is driven past its current await, so no run ends here but by a
terminate); one ``close()`` drives the phases, any other only hurries it
and waits for the end. A run supervisor hears of the close a moment later
(the Guardian tells it): until then its body may still make calls, but no
step attempt among them starts, for want of a slot; they run on resume.
"""

from __future__ import annotations

import enum
import threading
import time
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any, Final

import pykka

from actors._arguments import seconds
from actors._base import logger
from actors._census import Census
from actors._errors import RuntimeClosed
from actors._halt import Halt
from actors._slots import StepSlots
from actors._step import NAME_PREFIX
from persistence import InvalidTransition

#: How often the drain looks whether it was hurried or is over (seconds).
DRAIN_POLL: Final = 0.05
#: The drain's report of what it waits for is logged at most this often.
REPORT_INTERVAL: Final = 1.0
#: The most step attempts one report names.
REPORT_NAMES: Final = 10


class CloseState(enum.Enum):
    OPEN = "open"
    #: ``close(drain=s)``: running steps may finish; nothing new starts.
    SETTLING = "settling"
    #: What still runs is asked to stop, then abandoned; every call raises.
    STOPPING = "stopping"
    CLOSED = "closed"

    def __str__(self) -> str:
        return self.value


class CloseEvent(enum.Enum):
    DRAIN = "drain"
    STOP = "stop"
    FINISH = "finish"

    def __str__(self) -> str:
        return self.value


_S = CloseState
_E = CloseEvent

CLOSE_TRANSITIONS: Final[Mapping[tuple[CloseState, CloseEvent], CloseState]] = MappingProxyType(
    {
        (_S.OPEN, _E.DRAIN): _S.SETTLING,
        (_S.OPEN, _E.STOP): _S.STOPPING,
        (_S.SETTLING, _E.STOP): _S.STOPPING,
        (_S.STOPPING, _E.FINISH): _S.CLOSED,
    }
)


def next_close_state(state: CloseState, event: CloseEvent) -> CloseState:
    """Pure; raises :class:`InvalidTransition` for anything not in the table."""
    try:
        return CLOSE_TRANSITIONS[(state, event)]
    except KeyError:
        raise InvalidTransition(f"a runtime cannot {event} while {state}") from None


class Closing:
    """Where one runtime's close is (see the module docstring); thread-safe."""

    def __init__(self, owner: str, halted: Halt, slots: StepSlots, *, drain: float = 0.0) -> None:
        self._owner = owner
        self._halted = halted
        #: The runtime's step slots: closed the moment the close begins, so
        #: no step attempt gets a slot after that, whatever the actors have
        #: heard of the close yet (a retry due, a slot freed).
        self._slots = slots
        #: The drain of a close() not given its own (``Runtime(drain=...)``).
        self._default = drain
        #: The drain of the close under way (seconds; 0: none).
        self.window = 0.0
        self._lock = threading.Lock()
        self._state = CloseState.OPEN
        self._hurried = threading.Event()
        self._closed = threading.Event()

    @property
    def state(self) -> CloseState:
        return self._state

    @property
    def hurried(self) -> bool:
        """Whether a second close() asked the drain to end now."""
        return self._hurried.is_set()

    def begin(self, drain: float | None, *, hurry: bool = False) -> bool:
        """Start closing, with a drain of ``drain`` seconds (None: the
        runtime's; 0: none; none either once the runtime stopped itself).
        False if a close began already; then, with ``hurry``, only once that
        close is over, its drain ended now (a second close()).

        Raises:
            InvalidArgument: ``drain`` is not a finite number of seconds >= 0
                (``InvalidArgumentType`` if not a number); nothing changed.
        """
        window = self._default if drain is None else seconds("drain", drain)
        with self._lock:
            first = self._state is CloseState.OPEN
            if first:
                self.window = 0.0 if self._halted.is_set() else window
                event = CloseEvent.DRAIN if self.window > 0 else CloseEvent.STOP
                self._state = next_close_state(self._state, event)
                self._slots.close()
        if not first and hurry:
            self._hurried.set()
            self._closed.wait()
        return first

    def stop(self) -> None:
        """The drain, if any, is over: what still runs is asked to stop."""
        with self._lock:
            if self._state is CloseState.SETTLING:
                self._state = next_close_state(self._state, CloseEvent.STOP)

    def finish(self) -> None:
        """The actors are stopped (or gave up on): the runtime is closed."""
        self.stop()
        with self._lock:
            self._state = next_close_state(self._state, CloseEvent.FINISH)
        self._closed.set()

    def check_open(self) -> None:
        """Raise unless the runtime still serves calls (OPEN, or SETTLING:
        control and reads go on during a drain).

        Raises:
            StoreError: the runtime stopped itself (its reason).
            RuntimeClosed: it is closed, or being closed past its drain.
        """
        if self._halted.error is not None:
            self._halted.check(self._owner)
        if self._state in (CloseState.STOPPING, CloseState.CLOSED):
            raise RuntimeClosed(f"runtime {self._owner} is closed")

    def check_accepting(self) -> None:
        """Raise unless the runtime is OPEN: a start, or a wait for a run's
        end, is refused from the moment close() begins.

        Raises:
            StoreError, RuntimeClosed: as :meth:`check_open`; RuntimeClosed
                also while it drains.
        """
        self.check_open()
        if self._state is CloseState.SETTLING:
            raise RuntimeClosed(
                f"runtime {self._owner} is closed to new work: it drains (close(drain=...)),"
                " starting no run and waiting for no run's end; unfinished runs go on in the"
                " next runtime"
            )


def settle(done: pykka.Future[Any], drain: float, closing: Closing, report: DrainReport) -> bool:
    """Wait up to ``drain`` seconds for the actor tree to stop by itself
    (``done``): True if it did, False when the drain ran out or was hurried."""
    end = time.monotonic() + drain
    drained = False
    while not closing.hurried and (left := end - time.monotonic()) > 0:
        try:
            done.get(timeout=min(left, DRAIN_POLL))
        except pykka.Timeout:
            report.update(left)
        else:
            drained = True
            break
    report.finish(drained)
    return drained


class DrainReport:
    """Logs what a drain waits for: the step attempts still running (by
    run, step, call and attempt), when that changes, at most every
    ``REPORT_INTERVAL`` (the first at once)."""

    def __init__(self, owner: str, census: Census) -> None:
        self._owner = owner
        self._census = census
        self._last: list[str] | None = None
        self._next = 0.0

    def update(self, left: float) -> None:
        now = time.monotonic()
        if now < self._next:
            return
        steps = running_steps(self._census)
        if steps == self._last:
            return
        self._last, self._next = steps, now + REPORT_INTERVAL
        named = ", ".join(steps[:REPORT_NAMES])
        more = f" and {len(steps) - REPORT_NAMES} more" if len(steps) > REPORT_NAMES else ""
        logger.info(
            "runtime %s drains (%.1fs left): waiting for %d running step attempt(s)%s%s",
            self._owner,
            left,
            len(steps),
            f": {named}" if named else "",
            more,
        )

    def finish(self, drained: bool) -> None:
        """The drain is over: every step finished (``drained``), or not."""
        if drained:
            logger.info("runtime %s drained: no step attempt is left running", self._owner)
            return
        steps = running_steps(self._census)
        logger.info(
            "runtime %s: drain over, asking %d running step attempt(s) to stop",
            self._owner,
            len(steps),
        )


def running_steps(census: Census) -> list[str]:
    """The step attempts whose actors live, as ``run/step#call.attempt``."""
    live = census.live()
    return [name.removeprefix(NAME_PREFIX) for name in live if name.startswith(NAME_PREFIX)]
