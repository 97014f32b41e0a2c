"""Run and step states, the event types, and the transition tables.

The tables are the single source of truth: the store applies them to every
event it appends (so fencing holds whoever writes), and the run supervisor
applies the same function to its own view of the run.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from typing import Final

from persistence._errors import InvalidTransition


class RunState(enum.Enum):
    """The life of a run. A terminal state is final."""

    PENDING = "pending"
    RUNNING = "running"
    CANCELLING = "cancelling"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"
    TERMINATED = "terminated"

    @property
    def is_terminal(self) -> bool:
        return self in TERMINAL_STATES

    def __str__(self) -> str:
        return self.value


TERMINAL_STATES: Final = frozenset(
    {RunState.COMPLETED, RunState.FAILED, RunState.CANCELLED, RunState.TERMINATED}
)


class StepState(enum.Enum):
    """The life of one step attempt (one StepActor).

    WAITING: decided and recorded, but every step slot of its runtime is
    taken (``max_concurrent_steps``); it starts, in order, when one frees.
    """

    WAITING = "waiting"
    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"
    ABANDONED = "abandoned"
    TIMED_OUT = "timed_out"

    def __str__(self) -> str:
        return self.value


class EventType(enum.Enum):
    """Every kind of record in the append-only event log."""

    RUN_CREATED = "run_created"
    RUN_CLAIMED = "run_claimed"
    RUN_RESUMED = "run_resumed"
    RUN_STARTED = "run_started"
    STEP_SCHEDULED = "step_scheduled"
    STEP_WAITING = "step_waiting"
    STEP_STARTED = "step_started"
    STEP_COMPLETED = "step_completed"
    STEP_FAILED = "step_failed"
    STEP_CANCELLED = "step_cancelled"
    STEP_ABANDONED = "step_abandoned"
    STEP_REEXECUTED = "step_reexecuted"
    STEP_TIMED_OUT = "step_timed_out"
    STEP_RETRY_SCHEDULED = "step_retry_scheduled"
    CHILD_STARTED = "child_started"
    CHILD_ENDED = "child_ended"
    #: A call of a restarted run answered from the run it restarts (A7):
    #: its recorded end, copied, so the call does not run again.
    CALL_REUSED = "call_reused"
    CANCEL_REQUESTED = "cancel_requested"
    CANCEL_BUFFERED = "cancel_buffered"
    CANCEL_DELIVERED = "cancel_delivered"
    #: B2: the body cancelled one call through its handle (call_id, kind, mode, reason).
    CALL_CANCEL_REQUESTED = "call_cancel_requested"
    SHIELD_ENTERED = "shield_entered"
    SHIELD_EXITED = "shield_exited"
    #: B3: a cancel scope of the body entered (scope id, shield, deadline,
    #: the call id of its deadline's timer), exited (cancelled_caught), and
    #: cancelled (reason, cause ``cancel`` or ``deadline``; a deadline's names
    #: the body's checkpoint where it took effect).
    SCOPE_ENTERED = "scope_entered"
    SCOPE_EXITED = "scope_exited"
    SCOPE_CANCELLED = "scope_cancelled"
    #: A durable timer of the body (B1): started for call ``n`` (``due_at``:
    #: a UTC wall-clock instant), fired, or dropped before it fired.
    TIMER_STARTED = "timer_started"
    TIMER_FIRED = "timer_fired"
    TIMER_CANCELLED = "timer_cancelled"
    TERMINATE_REQUESTED = "terminate_requested"
    #: B5: a signal sent to the run (name, payload, id); kept until a wait takes it.
    SIGNAL_SENT = "signal_sent"
    #: B5: the body's wait (call ``n``) for a signal of its name found none and waits.
    SIGNAL_WAITING = "signal_waiting"
    #: B5: the body's wait (call ``n``) took the signal with this id.
    SIGNAL_RECEIVED = "signal_received"
    RUN_COMPLETED = "run_completed"
    RUN_FAILED = "run_failed"
    RUN_CANCELLED = "run_cancelled"
    RUN_TERMINATED = "run_terminated"

    def __str__(self) -> str:
        return self.value


_E = EventType
_R = RunState

RUN_TRANSITIONS: Final[Mapping[tuple[RunState, EventType], RunState]] = {
    (_R.PENDING, _E.RUN_STARTED): _R.RUNNING,
    (_R.PENDING, _E.CANCEL_REQUESTED): _R.CANCELLING,
    (_R.PENDING, _E.RUN_TERMINATED): _R.TERMINATED,
    (_R.RUNNING, _E.CANCEL_REQUESTED): _R.CANCELLING,
    (_R.RUNNING, _E.RUN_COMPLETED): _R.COMPLETED,
    (_R.RUNNING, _E.RUN_FAILED): _R.FAILED,
    # A CancellationError can escape a body that was never asked to cancel
    # (raised by user code, or by a cancelled child); the outcome follows the code.
    (_R.RUNNING, _E.RUN_CANCELLED): _R.CANCELLED,
    (_R.RUNNING, _E.RUN_TERMINATED): _R.TERMINATED,
    # A cancelled run that had not started yet still starts, so that its body
    # meets the cancel at its first checkpoint and may clean up.
    (_R.CANCELLING, _E.RUN_STARTED): _R.CANCELLING,
    # Idempotence (C6): a repeated cancel is logged and changes nothing.
    (_R.CANCELLING, _E.CANCEL_REQUESTED): _R.CANCELLING,
    (_R.CANCELLING, _E.RUN_COMPLETED): _R.COMPLETED,
    (_R.CANCELLING, _E.RUN_FAILED): _R.FAILED,
    (_R.CANCELLING, _E.RUN_CANCELLED): _R.CANCELLED,
    (_R.CANCELLING, _E.RUN_TERMINATED): _R.TERMINATED,
}

#: Event types that change the run's state; each must match RUN_TRANSITIONS.
RUN_TRANSITION_EVENTS: Final = frozenset(event for _, event in RUN_TRANSITIONS)

#: Event types that end a run, derived from the table.
TERMINAL_EVENTS: Final = frozenset(
    event for (_, event), target in RUN_TRANSITIONS.items() if target.is_terminal
)

#: Records allowed after a run is terminal: they describe its teardown.
#: Everything else aimed at a terminal run is fenced off by the store.
POST_MORTEM_EVENTS: Final = frozenset({EventType.STEP_ABANDONED})

#: Records any process may write to a run it does not own: creating it,
#: taking it over, and asking it to stop. Everything else is fenced: only the
#: run's owner writes it (a runtime that lost its lease is refused).
OPEN_EVENTS: Final = frozenset(
    {
        EventType.RUN_CREATED,
        EventType.RUN_CLAIMED,
        EventType.RUN_RESUMED,
        EventType.CANCEL_REQUESTED,
        EventType.TERMINATE_REQUESTED,
        EventType.RUN_TERMINATED,
        EventType.SIGNAL_SENT,
    }
)

#: Records the workflow body itself writes (not a step, not the supervisor's
#: bookkeeping). Replay matches them one by one against the body's actions.
BODY_EVENTS: Final = frozenset(
    {
        EventType.SHIELD_ENTERED,
        EventType.SHIELD_EXITED,
        EventType.CANCEL_DELIVERED,
        EventType.CALL_CANCEL_REQUESTED,
        EventType.SCOPE_ENTERED,
        EventType.SCOPE_EXITED,
        EventType.SCOPE_CANCELLED,
    }
)

_S = StepState

STEP_TRANSITIONS: Final[Mapping[tuple[StepState, EventType], StepState]] = {
    # A waiting attempt (no free step slot) starts when one frees; one whose
    # run is cancelled or terminated meanwhile is never started (C3, T2).
    (_S.WAITING, _E.STEP_STARTED): _S.RUNNING,
    (_S.WAITING, _E.STEP_CANCELLED): _S.CANCELLED,
    (_S.WAITING, _E.STEP_ABANDONED): _S.ABANDONED,
    (_S.RUNNING, _E.STEP_COMPLETED): _S.COMPLETED,
    (_S.RUNNING, _E.STEP_FAILED): _S.FAILED,
    (_S.RUNNING, _E.STEP_CANCELLED): _S.CANCELLED,
    (_S.RUNNING, _E.STEP_ABANDONED): _S.ABANDONED,
    (_S.RUNNING, _E.STEP_TIMED_OUT): _S.TIMED_OUT,
}

#: Event types that end a step attempt, derived from the table.
STEP_END_EVENTS: Final = frozenset(
    event for (_, event), target in STEP_TRANSITIONS.items() if target is not _S.RUNNING
)


def next_state(state: RunState, event: EventType) -> RunState:
    """Pure; raises :class:`InvalidTransition` for anything not in the table."""
    try:
        return RUN_TRANSITIONS[(state, event)]
    except KeyError:
        raise InvalidTransition(f"run cannot take {event} while {state}") from None


def next_step_state(state: StepState, event: EventType) -> StepState:
    """Pure; raises :class:`InvalidTransition` for anything not in the table."""
    try:
        return STEP_TRANSITIONS[(state, event)]
    except KeyError:
        raise InvalidTransition(f"step attempt cannot take {event} while {state}") from None


def later_state(current: RunState, learned: RunState) -> RunState:
    """The later of two states of one run, by the transition table.

    For a holder of ``current`` that learns, from an acknowledgement, that
    the run was ``learned`` when some record committed: the run may have
    moved on since (a cancel that arrived after that commit), and a state it
    has moved to is never overwritten by an older one. Between two terminal
    states the store's (``learned``) stands: it fences every other.
    """
    if learned is current or learned in _reachable(current):
        return learned
    if current in _reachable(learned):
        return current
    if current.is_terminal and learned.is_terminal:
        return learned
    raise InvalidTransition(f"run states {current} and {learned} are on no common path")


def _reachable(state: RunState) -> frozenset[RunState]:
    """Every state the table leads to from ``state``, in one step or more."""
    return _REACHABLE[state]


def _closure() -> dict[RunState, frozenset[RunState]]:
    reach: dict[RunState, set[RunState]] = {s: set() for s in RunState}
    for (source, _), target in RUN_TRANSITIONS.items():
        reach[source].add(target)
    changed = True
    while changed:
        changed = False
        for targets in reach.values():
            more = set().union(*(reach[t] for t in targets)) - targets
            if more:
                targets.update(more)
                changed = True
    return {s: frozenset(t - {s}) for s, t in reach.items()}


_REACHABLE: Final = _closure()
