"""The runtime's shared actors: the Journal, the Timers and the ControlInbox.

The Guardian starts them in that order (the ControlInbox needs both), and
they live as long as the runtime. Only the ControlInbox is ever restarted,
within a restart intensity (Erlang/OTP's MaxR and MaxT): the Journal and the
Timers are not, because other actors hold their refs and their state
(unanswered appends, pending timers) dies with them, so their death stops
the runtime.

A collaborator of the Guardian (on its thread): it owns the refs, the
restart window, and which of them have ended, so that shutdown can tell
when none is left.

Invariants: a restarted ControlInbox goes on from its predecessor's cursor
(no request delivered twice, none skipped); the Journal is stopped last,
after every Append already in its mailbox.
"""

from __future__ import annotations

import collections
import os
import time
from collections.abc import Callable
from typing import Any

import pykka

from actors._base import logger, tell
from actors._census import Census
from actors._clock import Clock
from actors._control_inbox import ControlInbox
from actors._fencing import LeaseGuard
from actors._halt import Halt
from actors._journal import Journal
from actors._messages import TakeNoRuns
from actors._timers import Timers
from actors._tracing import TraceSink
from persistence import FileIdentity, RunState, Synchronous

#: Restart intensity of the ControlInbox: a death beyond RESTART_INTENSITY
#: restarts within RESTART_PERIOD seconds escalates, and the runtime stops.
RESTART_INTENSITY = 3
RESTART_PERIOD = 5.0


class Services:
    """The Journal, Timers and ControlInbox of one runtime (see the module)."""

    def __init__(
        self,
        *,
        census: Census,
        owner: str,
        path: str | os.PathLike[str],
        synchronous: Synchronous,
        busy_timeout: float,
        clock: Clock,
        on_terminal: Callable[[str, RunState], None],
        hosted: Callable[[], list[str]],
        control_interval: float,
        claim_runs: bool,
        resume: bool,
        lease_ttl: float,
        halted: Halt,
        max_batch: int,
        retention: float | None,
        opened: FileIdentity | None,
        guard: LeaseGuard | None,
        tracing: TraceSink | None = None,
    ) -> None:
        self._census = census
        self._owner = owner
        self._path = path
        self._synchronous: Synchronous = synchronous
        self._busy_timeout = busy_timeout
        self._clock = clock
        self._on_terminal = on_terminal
        self._hosted = hosted
        self._control_interval = control_interval
        self._claim_runs = claim_runs
        self._resume = resume
        self._lease_ttl = lease_ttl
        self._halted = halted
        self._max_batch = max_batch
        self._retention = retention
        self._opened = opened
        self._guard = guard
        self._tracing = tracing
        self._parent: pykka.ActorRef[Any] | None = None
        self._journal: pykka.ActorRef[Any] | None = None
        self._timers: pykka.ActorRef[Any] | None = None
        self.control: pykka.ActorRef[Any] | None = None
        self._control_actor: ControlInbox | None = None
        #: When the ControlInbox was restarted, within the last RESTART_PERIOD.
        self._restarts: collections.deque[float] = collections.deque()
        self.journal_dead = False
        #: Service actors (Timers, ControlInbox) that have ended.
        self._ended: set[str] = set()

    @property
    def journal(self) -> pykka.ActorRef[Any]:
        assert self._journal is not None
        return self._journal

    @property
    def timers(self) -> pykka.ActorRef[Any]:
        assert self._timers is not None
        return self._timers

    def start(self, parent: pykka.ActorRef[Any], control_cursor: int) -> None:
        """Start the three, supervised by ``parent`` (the Guardian)."""
        self._parent = parent
        self._journal = Journal.start(
            census=self._census,
            parent=parent,
            path=self._path,
            synchronous=self._synchronous,
            busy_timeout=self._busy_timeout,
            on_terminal=self._on_terminal,
            owner=self._owner,
            lease_ttl=self._lease_ttl,
            halted=self._halted,
            max_batch=self._max_batch,
            opened=self._opened,
            guard=self._guard,
            hosted=self._hosted,
            tracing=self._tracing,
        )
        self._timers = Timers.start(census=self._census, parent=parent, clock=self._clock)
        self._start_control(control_cursor)

    def _start_control(self, cursor: int) -> None:
        """(Re)start the ControlInbox; it delivers requests past ``cursor``."""
        assert self._parent is not None
        self._control_actor = ControlInbox.prepare(
            census=self._census,
            parent=self._parent,
            path=self._path,
            owner=self._owner,
            journal=self.journal,
            timers=self.timers,
            clock_monotonic=self._clock.monotonic,
            interval=self._control_interval,
            claim_runs=self._claim_runs,
            cursor=cursor,
            resume=self._resume,
            lease_ttl=self._lease_ttl,
            retention=self._retention,
            opened=self._opened,
            guard=self._guard,
            tracing=self._tracing,
        )
        self.control = self._control_actor.launch()

    def owns(self, ref: pykka.ActorRef[Any]) -> bool:
        """Whether ``ref`` is one of the three."""
        return ref in (self._journal, self._timers, self.control)

    def restart_control(self, dead: pykka.ActorRef[Any]) -> str | None:
        """Restart the ControlInbox if ``dead`` was it and the intensity allows;
        None if it was restarted, else why not (appended to the cause)."""
        if dead != self.control or self._control_actor is None:
            return ""
        now = time.monotonic()
        while self._restarts and self._restarts[0] <= now - RESTART_PERIOD:
            self._restarts.popleft()
        if len(self._restarts) >= RESTART_INTENSITY:
            return f"; it died {RESTART_INTENSITY + 1} times within {RESTART_PERIOD:.0f}s"
        self._restarts.append(now)
        logger.warning(
            "restarting the ControlInbox (%d of %d restarts allowed within %.0fs)",
            len(self._restarts),
            RESTART_INTENSITY,
            RESTART_PERIOD,
        )
        self._start_control(self._control_actor.cursor)
        return None

    def stop_control(self) -> None:
        """Take no new runs: the ControlInbox stops (again: no harm)."""
        if self.control is not None:
            self.control.stop(block=False)

    def take_no_runs(self) -> None:
        """A drain (A4): the ControlInbox claims and resumes no run any more,
        and neither does one restarted later; it still delivers control
        requests and renews the lease, which a drain may outlast."""
        self._claim_runs = self._resume = False
        if self.control is not None:
            tell(self.control, TakeNoRuns())

    def ended(self, ref: pykka.ActorRef[Any]) -> None:
        """The Timers or the ControlInbox ended."""
        self._ended.add(ref.actor_urn)

    def others_ended(self) -> bool:
        """Whether the Timers and the ControlInbox have ended (shutdown's last check)."""
        services = {ref.actor_urn for ref in (self._timers, self.control) if ref is not None}
        return services <= self._ended

    def stop(self) -> bool:
        """Stop the ControlInbox and the Timers, then the Journal after every Append in its mailbox;
        True if the Journal had died already (nothing to wait for)."""
        self.stop_control()  # still serving control, after a drain
        if self._timers is not None:
            self._timers.stop(block=False)
        if self.journal_dead:
            return True
        self.journal.stop(block=False)
        return False
