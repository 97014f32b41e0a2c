"""Hosting runs: starting a run's supervisor, its timers, its step slots.

What the Guardian, the Timers and the step slots say to a run's
supervisor (and the facade to the Guardian) while a run is hosted.
"""

from __future__ import annotations

from collections.abc import Hashable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from actors._messages._kinds import FROZEN
from persistence import AppendOutcome, NewEvent, RunDeadline, RunRecord, RunState

if TYPE_CHECKING:
    from pykka import ActorRef, Future


@dataclass(**FROZEN)
class StartRun:
    run_id: str
    workflow: Any  # WorkflowDef; Any keeps this module free of import cycles
    args: tuple[Any, ...]
    kwargs: tuple[tuple[str, Any], ...]
    #: The run's state in the store when it was handed over (PENDING or CANCELLING).
    state: RunState
    cancel_reason: str | None = None
    cancel_source: str | None = None
    #: Resume an unfinished run by replay, taking it over from this owner (D2).
    resume_from: str | None = None
    #: Why the previous owner is considered dead, for the log.
    resume_why: str | None = None
    #: A new run started in this process: its ``run_created`` record, written
    #: by the supervisor with the body's first records in one group, and the
    #: future that gets that group's outcomes (``Runtime.start`` waits on it).
    create: NewEvent | None = None
    created: Future[tuple[AppendOutcome, ...]] | None = None
    #: Step ends the previous supervisor of this run saw and could not record.
    unrecorded: tuple[NewEvent, ...] = ()
    #: A restart's ``call_reused`` records (A7): the body replays them. A new
    #: run writes them with its creation; a claimed one has them in its log.
    reused: tuple[NewEvent, ...] = ()
    #: The run's timeout as its ``run_created`` recorded it (B4), or None.
    deadline: RunDeadline | None = None
    #: When the run was created (its record's ``created_at``), for its
    #: outcome's duration (O3); None for a new run (now).
    created_at: float | None = None

    @classmethod
    def of_record(
        cls,
        record: RunRecord,
        workflow: Any,
        state: RunState,
        *,
        resume_from: str | None = None,
        resume_why: str | None = None,
        unrecorded: tuple[NewEvent, ...] = (),
        reused: tuple[NewEvent, ...] = (),
        deadline: RunDeadline | None = None,
    ) -> StartRun:
        """Host a run that exists in the store (claimed, resumed or re-hosted)."""
        return cls(
            run_id=record.run_id,
            workflow=workflow,
            args=tuple(record.args),
            kwargs=tuple(record.kwargs.items()),
            state=state,
            cancel_reason=record.cancel_reason,
            cancel_source=record.cancel_source,
            resume_from=resume_from,
            resume_why=resume_why,
            unrecorded=unrecorded,
            reused=reused,
            deadline=deadline,
            created_at=record.created_at,
        )


@dataclass(**FROZEN)
class ResumeBody:
    """Supervisor -> itself: resume the body with the cancel it met at an await.

    Sent instead of resuming at once, so that the mailbox (a Terminate, a
    Shutdown) is read between two resumptions: a body that catches every
    CancellationError in a loop must not hold the supervisor's thread.
    """

    reason: str | None


@dataclass(**FROZEN)
class RetryDue:
    """Timers -> supervisor: the back-off of a failed attempt is over."""

    call: int
    attempt: int


@dataclass(**FROZEN)
class TimerDue:
    """Timers -> supervisor: the body's durable timer of this call is due (B1)."""

    call: int


@dataclass(**FROZEN)
class Deadline:
    """Timers -> supervisor: check an attempt's timeout and heartbeat timeout."""

    call: int
    attempt: int


@dataclass(**FROZEN)
class SlotGranted:
    """StepSlots -> supervisor: a step slot freed for this waiting attempt."""

    call: int
    attempt: int


@dataclass(**FROZEN)
class Rehost:
    """Guardian -> itself, by timer: host again, by replay, a run whose
    supervisor stopped because the store failed."""

    run_id: str
    why: str


@dataclass(**FROZEN)
class ScheduleTimer:
    token: Hashable
    #: Absolute time on the runtime's clock, fixed by the requester: a timer
    #: counts from the request, not from when the Timers actor got to it.
    due: float
    target: ActorRef[Any]
    message: object


@dataclass(**FROZEN)
class CancelTimer:
    token: Hashable


@dataclass(**FROZEN)
class TimerTick:
    """Synthesised by the Timers inbox when the earliest deadline passes."""


@dataclass(**FROZEN)
class GetWiring:
    """Facade -> Guardian: ask for the refs of the Journal and the Timers."""


@dataclass(**FROZEN)
class PendingTimers:
    """Anyone -> Timers (ask): the tokens of the timers not yet fired or
    cancelled, a frozenset (a test's check that nothing is left armed)."""


@dataclass(**FROZEN)
class Wiring:
    """Guardian -> facade: the answer to :class:`GetWiring`."""

    journal: ActorRef[Any]
    timers: ActorRef[Any]
