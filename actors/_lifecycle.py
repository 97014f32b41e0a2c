"""Lifecycle: a run supervisor's phases, as two transition tables.

A run supervisor does two independent things, each with its own phases
(two regions of one state chart, as in UML/Harel):

- it drives the run (``Phase``): waits for the run's start (or its takeover)
  to be recorded, replays the body's log, runs it live, records its end,
  lingers for children still under their parent close policy; or the run is
  terminated and the body gets no further say (T2);
- it hosts the run for this runtime (``Hosting``): until a shutdown, a store
  failure or a lost lease makes it drain (nothing new starts, running steps
  and children are awaited) and then stop.

A run can be finishing while its runtime drains, so the two are kept apart
rather than multiplied out; ``Lifecycle`` holds one supervisor's pair.
Invariants: every change of either goes through
``next_phase`` / ``next_hosting``, which raise ``InvalidTransition`` for any
pair not in its table (an illegal transition is a bug); TERMINATED has no
way out, and neither has STOPPED. The run's own state (RunState) is a third
thing, the store's, changed only through ``persistence.next_state``.

The creation of a new run is no phase: its confirmation is the Journal's
reply to the run's first group, which says so itself (``Created``).
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from types import MappingProxyType
from typing import Final

from persistence import InvalidTransition


class Phase(enum.Enum):
    """What the supervisor is doing with the run's body."""

    #: Waiting for ``run_started``, or its takeover of the run, to commit.
    STARTING = "starting"
    #: The body re-runs its log (D2): recorded calls return at once.
    REPLAYING = "replaying"
    #: The body runs live.
    LIVE = "live"
    #: The body ended; the run's end is being recorded.
    FINISHING = "finishing"
    #: The run's end is recorded; children started with start_child() are
    #: still running under their parent close policy.
    LINGERING = "lingering"
    #: Terminated (T2), or sealed as the actor stops: the body gets no say.
    TERMINATED = "terminated"

    def __str__(self) -> str:
        return self.value


class PhaseEvent(enum.Enum):
    """What moves a supervisor from one phase to the next."""

    #: The body begins live (a new run, or its ``run_started`` committed).
    BEGIN = "begin"
    #: The body begins by replaying the log of a run taken over.
    BEGIN_REPLAY = "begin_replay"
    #: The body made a call its log does not have: from here on it is live.
    GO_LIVE = "go_live"
    #: The body returned or raised: its end is appended.
    FINISH = "finish"
    #: The end is recorded, with children left under their close policy.
    LINGER = "linger"
    #: A Terminate (T2).
    TERMINATE = "terminate"
    #: The actor stops: a body still running is sealed.
    SEAL = "seal"

    def __str__(self) -> str:
        return self.value


class Hosting(enum.Enum):
    """Whether this runtime keeps hosting the run."""

    HOSTING = "hosting"
    #: Shutdown, store failure or lost lease: nothing new starts; running
    #: steps and child runs are awaited (or abandoned), then the actor stops.
    DRAINING = "draining"
    STOPPED = "stopped"

    def __str__(self) -> str:
        return self.value


class HostingEvent(enum.Enum):
    SHUTDOWN = "shutdown"
    STOP = "stop"

    def __str__(self) -> str:
        return self.value


_P = Phase
_V = PhaseEvent

PHASE_TRANSITIONS: Final[Mapping[tuple[Phase, PhaseEvent], Phase]] = MappingProxyType(
    {
        (_P.STARTING, _V.BEGIN): _P.LIVE,
        (_P.STARTING, _V.BEGIN_REPLAY): _P.REPLAYING,
        (_P.STARTING, _V.TERMINATE): _P.TERMINATED,
        (_P.STARTING, _V.SEAL): _P.TERMINATED,
        (_P.REPLAYING, _V.GO_LIVE): _P.LIVE,
        (_P.REPLAYING, _V.FINISH): _P.FINISHING,
        (_P.REPLAYING, _V.TERMINATE): _P.TERMINATED,
        (_P.REPLAYING, _V.SEAL): _P.TERMINATED,
        (_P.LIVE, _V.FINISH): _P.FINISHING,
        (_P.LIVE, _V.TERMINATE): _P.TERMINATED,
        (_P.LIVE, _V.SEAL): _P.TERMINATED,
        (_P.FINISHING, _V.LINGER): _P.LINGERING,
        # A terminate that comes while the end is being recorded still wins:
        # its record is durable already (T1), and the store fences the end.
        (_P.FINISHING, _V.TERMINATE): _P.TERMINATED,
        # An ended body has nothing left to seal.
        (_P.FINISHING, _V.SEAL): _P.FINISHING,
        (_P.LINGERING, _V.TERMINATE): _P.TERMINATED,
        (_P.LINGERING, _V.SEAL): _P.LINGERING,
        (_P.TERMINATED, _V.SEAL): _P.TERMINATED,
    }
)

#: Phases in which the body has ended (its end recorded or being recorded).
ENDED: Final = frozenset({Phase.FINISHING, Phase.LINGERING})

_H = Hosting
_HE = HostingEvent

HOSTING_TRANSITIONS: Final[Mapping[tuple[Hosting, HostingEvent], Hosting]] = MappingProxyType(
    {
        (_H.HOSTING, _HE.SHUTDOWN): _H.DRAINING,
        # A second shutdown (abandon what still runs) drains on.
        (_H.DRAINING, _HE.SHUTDOWN): _H.DRAINING,
        (_H.HOSTING, _HE.STOP): _H.STOPPED,
        (_H.DRAINING, _HE.STOP): _H.STOPPED,
    }
)


def next_phase(phase: Phase, event: PhaseEvent) -> Phase:
    """Pure; raises :class:`InvalidTransition` for anything not in the table."""
    try:
        return PHASE_TRANSITIONS[(phase, event)]
    except KeyError:
        raise InvalidTransition(f"run supervisor cannot {event} while {phase}") from None


def next_hosting(hosting: Hosting, event: HostingEvent) -> Hosting:
    """Pure; raises :class:`InvalidTransition` for anything not in the table."""
    try:
        return HOSTING_TRANSITIONS[(hosting, event)]
    except KeyError:
        raise InvalidTransition(f"run supervisor cannot {event} while {hosting}") from None


class Lifecycle:
    """One run supervisor's phase and hosting, changed only through the tables."""

    __slots__ = ("hosting", "phase")

    def __init__(self) -> None:
        self.phase = Phase.STARTING
        self.hosting = Hosting.HOSTING

    def advance(self, event: PhaseEvent) -> None:
        self.phase = next_phase(self.phase, event)

    def host(self, event: HostingEvent) -> None:
        self.hosting = next_hosting(self.hosting, event)

    def go_live(self) -> None:
        """The body made a call its log does not have: it runs live from here."""
        if self.phase is Phase.REPLAYING:
            self.advance(PhaseEvent.GO_LIVE)

    @property
    def replaying(self) -> bool:
        return self.phase is Phase.REPLAYING

    @property
    def terminated(self) -> bool:
        return self.phase is Phase.TERMINATED

    @property
    def ended(self) -> bool:
        """The body ended: its end is recorded, or being recorded."""
        return self.phase in ENDED

    @property
    def draining(self) -> bool:
        return self.hosting is not Hosting.HOSTING
