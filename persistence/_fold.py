"""The log is the truth: fold a run's events into the state they imply.

The store keeps ``runs`` and ``steps`` as projections it updates in the same
transaction as each append. :func:`fold` recomputes them from the log alone,
with the same transition tables; a test checks the two never disagree.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from persistence._records import EventRecord
from persistence._states import (
    RUN_TRANSITION_EVENTS,
    STEP_END_EVENTS,
    EventType,
    RunState,
    StepState,
    next_state,
    next_step_state,
)


@dataclass(slots=True)
class Folded:
    """A run's state, and each step attempt's, as its log says."""

    status: RunState = RunState.PENDING
    owner: str | None = None
    steps: dict[tuple[int, int], StepState] = field(default_factory=dict)


def fold(events: Iterable[EventRecord]) -> Folded:
    """Replay ``events`` (one run's, in order) through the transition tables.

    Raises:
        InvalidTransition: the log holds a transition the tables forbid.
    """
    state = Folded()
    for ev in events:
        if ev.type is EventType.RUN_CREATED:
            state.owner = ev.data.get("owner")
        elif ev.type in (EventType.RUN_CLAIMED, EventType.RUN_RESUMED):
            state.owner = ev.data.get("owner")  # a defective record reads as {}
        elif ev.type in RUN_TRANSITION_EVENTS:
            state.status = next_state(state.status, ev.type)
        if ev.call is None or ev.attempt is None:
            continue
        key = (ev.call, ev.attempt)
        if ev.type is EventType.STEP_WAITING:
            state.steps[key] = StepState.WAITING
        elif ev.type is EventType.STEP_STARTED and key in state.steps:
            state.steps[key] = next_step_state(state.steps[key], ev.type)
        elif ev.type is EventType.STEP_STARTED:
            state.steps[key] = StepState.RUNNING
        elif ev.type in STEP_END_EVENTS:
            state.steps[key] = next_step_state(state.steps[key], ev.type)
    return state
