"""Every message the actors exchange. All frozen; control messages jump the queue.

pykka does not copy messages: whoever sends one must not mutate it, which
frozen dataclasses with immutable fields make hard to get wrong.

Invariants: every message is a frozen dataclass; its containers are tuples,
read-only mappings (``MappingProxyType``) or frozen dataclasses; a field
holding a live actor is an ``ActorRef`` (or a :class:`Launchable` prepared
actor), a future says what it resolves to. Known exceptions: JSON values
carried as they were decoded (a run's arguments, a step error's
description, ``Raised.error``) are the senders' to leave alone, and
``StartRun.workflow`` is a ``WorkflowDef`` typed ``Any`` (naming it here
would make this bottom module import the definitions, a cycle).
"""

from __future__ import annotations

import enum
from collections.abc import Hashable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Generic, Protocol, TypeVar

from persistence import AppendOutcome, NewEvent, RunRecord, RunState, StoreError

if TYPE_CHECKING:
    from pykka import ActorRef, Future

_FROZEN = {"frozen": True, "slots": True, "kw_only": True}


class ControlMessage:
    """Marker: delivered before every ordinary message (control-first mailbox)."""

    __slots__ = ()


class Launchable(Protocol):
    """A prepared actor (a step attempt) the Journal launches or discards."""

    def launch(self) -> ActorRef[Any]: ...

    def discard(self) -> None: ...


# -- control ---------------------------------------------------------------


@dataclass(**_FROZEN)
class Cancel(ControlMessage):
    """Graceful: reaches code only at its next checkpoint (C2)."""

    reason: str | None
    source: str


@dataclass(**_FROZEN)
class Terminate(ControlMessage):
    """Forceful: the run's actors stop; a busy step unwinds at its next check (T3)."""

    reason: str | None


# -- exits (death watch) ---------------------------------------------------


class ExitKind(enum.Enum):
    NORMAL = "normal"
    CANCELLED = "cancelled"
    FAILED = "failed"
    TIMED_OUT = "timed_out"
    TERMINATED = "terminated"


@dataclass(**_FROZEN)
class ExitReason:
    kind: ExitKind
    error: BaseException | None = None
    #: A RunSupervisor's last record (result, error or reason), for its parent
    #: run; read-only (a copy of what it is built with).
    data: Mapping[str, Any] | None = None
    #: A StepActor's outcome. Like an Erlang worker's exit reason, the exit
    #: report is how the result reaches the supervisor: one message, not two.
    #: None from a StepActor means it crashed outside the user's code.
    outcome: StepOutcome | None = None
    #: A RunSupervisor stopped by a store failure: step ends it saw but the
    #: store did not take, for the supervisor that hosts the run next.
    unrecorded: tuple[NewEvent, ...] = ()

    def __post_init__(self) -> None:
        if self.data is not None and not isinstance(self.data, MappingProxyType):
            object.__setattr__(self, "data", MappingProxyType(dict(self.data)))

    @classmethod
    def normal(cls) -> ExitReason:
        return cls(kind=ExitKind.NORMAL)


@dataclass(**_FROZEN)
class ChildExited:
    """Sent exactly once by every actor to its supervisor when it stops."""

    child: ActorRef[Any]
    name: str
    reason: ExitReason


# -- journal ---------------------------------------------------------------


@dataclass(**_FROZEN)
class Append:
    """Append one atomic group of events.

    After the commit the Journal sets ``reply``, tells ``notify`` a
    :class:`Journaled` carrying ``tag``, and, if every event was accepted,
    delivers each ``(actor, message)`` of ``deliver``: the effect follows the
    durable record, never the other way round (D1).
    """

    events: tuple[NewEvent, ...]
    reply: Future[tuple[AppendOutcome, ...]] | None = None
    notify: ActorRef[Any] | None = None
    tag: object = None
    deliver: tuple[tuple[ActorRef[Any], ControlMessage], ...] = ()
    #: Prepared actors (step attempts) the Journal launches once the group
    #: commits, or discards if it does not. Launching them is the whole
    #: effect, so ``notify`` then hears only of a failure.
    launch: tuple[Launchable, ...] = ()


@dataclass(**_FROZEN)
class ControlAppend(Append, ControlMessage):
    """An :class:`Append` of a control request from the facade (cancel):
    taken before the Journal's backlog of ordinary appends, so a cancel keeps
    its latency under load. Only for requests with no ordering to keep
    against the sender's earlier appends (the facade writes nothing else
    about a run it did not create)."""


@dataclass(**_FROZEN)
class TerminateTree(ControlMessage):
    """Facade -> Journal: T1 and T4 in one transaction (``Store.terminate_tree``).

    If the run's terminate is accepted, ``deliver`` is sent after the commit;
    ``reply`` gets (the run's outcome, the descendants terminated).
    """

    run_id: str
    reason: str | None
    source: str
    origin: str
    #: The run's outcome, and the ids of the descendants it terminated.
    reply: Future[tuple[AppendOutcome, tuple[str, ...]]]
    deliver: tuple[tuple[ActorRef[Any], ControlMessage], ...] = ()


@dataclass(**_FROZEN)
class Heartbeat:
    """A step attempt's latest heartbeat, for ``runs status`` (not a log event).

    Liveness is not a transition: like Temporal, Proctor keeps the latest
    heartbeat on the step's row instead of growing the log with each one.
    """

    run_id: str
    call: int
    attempt: int
    at: float
    details_json: str | None


@dataclass(**_FROZEN)
class Journaled:
    tag: object
    outcomes: tuple[AppendOutcome, ...]
    error: BaseException | None = None
    #: On error: the group that was not written (what it carried is not lost
    #: to the sender, which may hand it over; see ``_handover``).
    events: tuple[NewEvent, ...] = ()

    @property
    def accepted(self) -> bool:
        return self.error is None and all(o.accepted for o in self.outcomes)


# -- step outcomes ---------------------------------------------------------


@dataclass(**_FROZEN)
class Returned:
    result_json: str


@dataclass(**_FROZEN)
class Raised:
    error: dict[str, Any]
    exception: BaseException


@dataclass(**_FROZEN)
class StepCancelled:
    reason: str | None


@dataclass(**_FROZEN)
class Unwound:
    """The step thread unwound with Terminated; its outcome is discarded.

    ``fenced``: why, when the runtime no longer owns the run (self-fencing):
    its supervisor then records nothing of the attempt and stops hosting it.
    """

    fenced: str | None = None


StepOutcome = Returned | Raised | StepCancelled | Unwound


@dataclass(**_FROZEN)
class StepFinished:
    call: int
    attempt: int
    outcome: StepOutcome


# -- supervisor, guardian, timers ------------------------------------------


@dataclass(**_FROZEN)
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
        )


@dataclass(**_FROZEN)
class ResumeBody:
    """Supervisor -> itself: resume the body with the cancel it met at an await.

    Sent instead of resuming at once, so that the mailbox (a Terminate, a
    Shutdown) is read between two resumptions: a body that catches every
    CancellationError in a loop must not hold the supervisor's thread.
    """

    reason: str | None


@dataclass(**_FROZEN)
class RetryDue:
    """Timers -> supervisor: the back-off of a failed attempt is over."""

    call: int
    attempt: int


@dataclass(**_FROZEN)
class Deadline:
    """Timers -> supervisor: check an attempt's timeout and heartbeat timeout."""

    call: int
    attempt: int


@dataclass(**_FROZEN)
class SlotGranted:
    """StepSlots -> supervisor: a step slot freed for this waiting attempt."""

    call: int
    attempt: int


@dataclass(**_FROZEN)
class RenewLease(ControlMessage):
    """ControlInbox -> Journal: this runtime is still alive (D2).

    Control-first: a renewal must not wait behind a backlog of appends, or
    an overloaded runtime loses its runs to another while still running them.
    """


@dataclass(**_FROZEN)
class Rehost:
    """Guardian -> itself, by timer: host again, by replay, a run whose
    supervisor stopped because the store failed."""

    run_id: str
    why: str


@dataclass(**_FROZEN)
class GraceExpired:
    run_id: str
    reason: str | None


@dataclass(**_FROZEN)
class Shutdown:
    """Stop hosting: leave unfinished runs for resume.

    Running steps are asked to stop and their ends awaited, so a result that
    arrives meanwhile is recorded (A4); with ``abandon`` (the runtime gives up
    waiting, or is killed) what still runs is abandoned at once.
    """

    reply: Future[None] | None = None
    abandon: bool = False


@dataclass(**_FROZEN)
class ScheduleTimer:
    token: Hashable
    #: Absolute time on the runtime's clock, fixed by the requester: a timer
    #: counts from the request, not from when the Timers actor got to it.
    due: float
    target: ActorRef[Any]
    message: object


@dataclass(**_FROZEN)
class CancelTimer:
    token: Hashable


@dataclass(**_FROZEN)
class TimerTick:
    """Synthesised by the Timers inbox when the earliest deadline passes."""


# -- moved here from the modules that sent them (issue 15) ------------------
# Guardian wiring, ControlInbox forwarding and claims, fencing, store loss.


@dataclass(**_FROZEN)
class GetWiring:
    """Facade -> Guardian: ask for the refs of the Journal and the Timers."""


@dataclass(**_FROZEN)
class Wiring:
    """Guardian -> facade: the answer to :class:`GetWiring`."""

    journal: ActorRef[Any]
    timers: ActorRef[Any]


@dataclass(**_FROZEN)
class Forward:
    """ControlInbox -> Guardian: deliver ``message`` to the run's supervisor, if hosted.

    An ordinary message on purpose (not control-first): it must stay behind a
    StartRun the Guardian got from the same sender, so that a run claimed
    and then cancelled at once still gets its cancel.
    """

    run_id: str
    message: ControlMessage


@dataclass(**_FROZEN)
class ClaimTag:
    """The tag of a claim's :class:`Append`: the claimed run's record, which
    the ControlInbox hands to the Guardian once the claim commits."""

    record: RunRecord


@dataclass(**_FROZEN)
class LeaseLost:
    """-> Guardian: stop hosting ``run_id`` (None: every run) without recording
    what is no longer ours to record; ``why`` says what was seen."""

    why: str
    run_id: str | None = None


@dataclass(**_FROZEN)
class StoreLost:
    """ControlInbox or Journal -> Guardian: the store cannot be used any more
    (its file was deleted, replaced or damaged); the runtime must stop."""

    error: StoreError


# -- journal tags ------------------------------------------------------------
# The run supervisor's, kept at the end of this module on purpose. A tag
# rides on an Append and comes back in its Journaled reply: it says what the
# committed group was for, and the supervisor acts on the reply by its type.
# The supervisor's own records (a scheduled call, a child handle) are type
# parameters, so that this module imports no other actors module.
# ``CallEnded.value`` is a step's decoded JSON result: handed to the body as
# is, never mutated by the runtime.

_Sched = TypeVar("_Sched")
_Handle = TypeVar("_Handle")
_Then = TypeVar("_Then")


@dataclass(**_FROZEN)
class Created(Generic[_Then]):
    """The group that creates a new run (with the body's first records):
    its reply confirms the run exists, or says nothing of it may go on.
    ``then`` is what the group is for besides (another tag, or None)."""

    then: _Then


@dataclass(**_FROZEN)
class Started:
    """``run_started`` is recorded: the body starts."""


@dataclass(**_FROZEN)
class StepsScheduled(Generic[_Sched]):
    """Step (or child) starts are recorded: launch them."""

    steps: tuple[_Sched, ...]


@dataclass(**_FROZEN)
class CallEnded:
    """A step or child run ended; what its await gives the body, once recorded."""

    call_id: int
    #: The decoded result: decoded once, for the log and the body.
    value: object = None
    #: Raised at the await instead of returning ``value``.
    error: BaseException | None = None


@dataclass(**_FROZEN)
class RunFinished:
    """The run's end is being recorded: the supervisor exits with it."""

    kind: ExitKind
    #: The end record's data (read-only).
    data: Mapping[str, Any]


@dataclass(**_FROZEN)
class ChildStartedNoWait(Generic[_Sched, _Handle]):
    """start_child() is recorded: spawn the child, resume the body with its handle."""

    child: _Sched
    handle: _Handle


@dataclass(**_FROZEN)
class RetryScheduled:
    """A retry is recorded: set its back-off timer."""

    call_id: int
    attempt: int
    #: Runtime-clock time the retry is due.
    due: float


@dataclass(**_FROZEN)
class Resumed:
    """Our takeover of a run whose runtime died is recorded (or refused)."""

    #: The takeover group: its handed-over step ends join the history replayed.
    group: tuple[NewEvent, ...] = ()
