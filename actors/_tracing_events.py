"""What a logged event means to a trace (O2): pure rules, no OpenTelemetry.

The span model follows the log, one fact at a time: a run span opens at the
run's creation, claim or resume and ends at its terminal event; an attempt
span opens at ``step_started`` and ends at the attempt's end event. Control
and shield events become span events, on the run's span and on the attempt
span of the step that recorded them (an event with a ``call`` and an
``attempt``).

Invariants: every function here is pure (no clock, no store, no
OpenTelemetry), so the model can be tested without the SDK; an outcome
is always one of :data:`RUN_OUTCOMES` or :data:`ATTEMPT_OUTCOMES`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from persistence import EventType

_E = EventType


@dataclass(frozen=True, slots=True, kw_only=True)
class Fact:
    """One logged event as the tracing sees it: what, of which run, when (``ts``, epoch s)."""

    run_id: str
    type: EventType
    ts: float
    data: Mapping[str, Any] = field(default_factory=dict)
    step: str | None = None
    call: int | None = None
    attempt: int | None = None

    @property
    def attempt_key(self) -> tuple[int, int] | None:
        """(call, attempt) of the step attempt it concerns, if any."""
        if self.call is None or self.attempt is None:
            return None
        return (self.call, self.attempt)


#: A run's terminal event -> the run span's ``proctor.outcome``.
RUN_OUTCOMES: Final[Mapping[EventType, str]] = {
    _E.RUN_COMPLETED: "completed",
    _E.RUN_FAILED: "failed",
    _E.RUN_CANCELLED: "cancelled",
    _E.RUN_TERMINATED: "terminated",
}

#: An attempt's end event -> the attempt span's ``proctor.outcome``.
ATTEMPT_OUTCOMES: Final[Mapping[EventType, str]] = {
    _E.STEP_COMPLETED: "completed",
    _E.STEP_FAILED: "failed",
    _E.STEP_CANCELLED: "cancelled",
    _E.STEP_TIMED_OUT: "timed_out",
    _E.STEP_ABANDONED: "abandoned",
}

#: Outcomes shown with an error status (OTel ``StatusCode.ERROR``): the code
#: failed. A cancel, a terminate or an abandoned attempt is an operator's
#: decision, not an error, as Temporal's interceptor marks only failures.
ERROR_OUTCOMES: Final = frozenset({"failed", "timed_out"})

#: Events that open a run span here.
OPENING: Final = frozenset({_E.RUN_CREATED, _E.RUN_CLAIMED, _E.RUN_RESUMED})

#: Event type -> span event name, for the events that become span events.
SPAN_EVENTS: Final[Mapping[EventType, str]] = {
    _E.CANCEL_REQUESTED: "cancel requested",
    _E.CANCEL_DELIVERED: "cancel delivered",
    _E.CANCEL_BUFFERED: "cancel buffered",
    _E.SHIELD_ENTERED: "shield entered",
    _E.SHIELD_EXITED: "shield exited",
    _E.TERMINATE_REQUESTED: "terminate requested",
    _E.STEP_RETRY_SCHEDULED: "retry scheduled",
}

#: Event data fields copied into a span event's attributes, as ``proctor.<field>``.
_EVENT_FIELDS: Final = ("reason", "source", "grace", "depth", "cancel_pending", "retry_at")


def event_attributes(
    type_: EventType, data: Mapping[str, Any], step: str | None, call: int | None
) -> dict[str, str | int | float | bool]:
    """The attributes of the span event for an event of ``type_``.

    ``proctor.target`` says where a cancel was delivered or buffered: ``step``
    (a step's check or heartbeat) or ``body`` (the workflow's checkpoint).
    Only JSON scalars are kept (OTel attributes cannot hold None or objects).
    """
    attributes: dict[str, str | int | float | bool] = {}
    for name in _EVENT_FIELDS:
        value = data.get(name)
        if isinstance(value, str | int | float | bool):
            attributes[f"proctor.{name}"] = value
    if step is not None:
        attributes["proctor.step"] = step
    if call is not None:
        attributes["proctor.call"] = call
    if type_ in (_E.CANCEL_DELIVERED, _E.CANCEL_BUFFERED):
        attributes["proctor.target"] = "step" if call is not None and step else "body"
    return attributes


def error_text(data: Mapping[str, Any]) -> tuple[str, str]:
    """The error's type and message from an end event's ``error`` (``describe``'s shape)."""
    error = data.get("error")
    if not isinstance(error, Mapping):
        return "", ""
    kind, message = error.get("type"), error.get("message")
    return (kind if isinstance(kind, str) else "", message if isinstance(message, str) else "")


def to_ns(ts: float) -> int:
    """Epoch seconds (the log's ``ts``) as OTel's epoch nanoseconds."""
    return round(ts * 1e9)
