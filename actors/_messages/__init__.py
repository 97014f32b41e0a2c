"""Every message the actors exchange, one module per conversation. All frozen;
control messages jump the queue.

Import them from here (``from actors._messages import Cancel``); the
modules below say who says what to whom: ``_kinds`` (frozen; control
first), ``_control`` (cancel, terminate, shutdown, alarms), ``_exits``
(death watch and step outcomes), ``_journal`` (append, committed),
``_hosting`` (starting runs, timers, slots, wiring), ``_tags`` (what a
run supervisor's committed group was for).

pykka does not copy messages: whoever sends one must not mutate it, which
frozen dataclasses with immutable fields make hard to get wrong.

Invariants: every message is a frozen dataclass; its containers are tuples,
read-only mappings (``MappingProxyType``) or frozen dataclasses; a field
holding a live actor is an ``ActorRef`` (or a :class:`Launchable` prepared
actor), a future says what it resolves to. Known exceptions: JSON values
carried as they were decoded (a run's arguments, a step error's
description, ``Raised.error``, ``SignalArrived.payload``) are the senders' to leave alone, and
``StartRun.workflow`` is a ``WorkflowDef`` typed ``Any`` (naming it here
would make this bottom module import the definitions, a cycle).
"""

from __future__ import annotations

from actors._messages._control import (
    Cancel,
    Forward,
    GraceExpired,
    LeaseLost,
    RenewLease,
    RunTimedOut,
    Shutdown,
    SignalArrived,
    StoreLost,
    TakeNoRuns,
    Terminate,
)
from actors._messages._exits import (
    ChildExited,
    ExitKind,
    ExitReason,
    Raised,
    Returned,
    StepCancelled,
    StepFinished,
    StepOutcome,
    Unwound,
)
from actors._messages._hosting import (
    CancelTimer,
    Deadline,
    GetWiring,
    PendingTimers,
    Rehost,
    ResumeBody,
    RetryDue,
    ScheduleTimer,
    SlotGranted,
    StartRun,
    TimerDue,
    TimerTick,
    Wiring,
)
from actors._messages._journal import (
    Append,
    ClaimTag,
    ControlAppend,
    Heartbeat,
    Journaled,
    Launchable,
    TerminateTree,
)
from actors._messages._kinds import ControlMessage
from actors._messages._tags import (
    CallEnded,
    ChildStartedNoWait,
    Created,
    Resumed,
    RetryScheduled,
    RunFinished,
    Started,
    StepsScheduled,
)

__all__ = [
    "FROZEN",
    "Append",
    "CallEnded",
    "Cancel",
    "CancelTimer",
    "ChildExited",
    "ChildStartedNoWait",
    "ClaimTag",
    "ControlAppend",
    "ControlMessage",
    "Created",
    "Deadline",
    "ExitKind",
    "ExitReason",
    "Forward",
    "GetWiring",
    "GraceExpired",
    "Heartbeat",
    "Journaled",
    "Launchable",
    "LeaseLost",
    "PendingTimers",
    "Raised",
    "Rehost",
    "RenewLease",
    "ResumeBody",
    "Resumed",
    "RetryDue",
    "RetryScheduled",
    "Returned",
    "RunFinished",
    "RunTimedOut",
    "ScheduleTimer",
    "Shutdown",
    "SignalArrived",
    "SlotGranted",
    "StartRun",
    "Started",
    "StepCancelled",
    "StepFinished",
    "StepOutcome",
    "StepsScheduled",
    "StoreLost",
    "TakeNoRuns",
    "Terminate",
    "TerminateTree",
    "TimerDue",
    "TimerTick",
    "Unwound",
    "Wiring",
]
