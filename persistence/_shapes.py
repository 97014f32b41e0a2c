"""What a record must look like: checked when it is appended, and again when read.

Every process on a store reads every other's records: a runtime's shared
actors (the ControlInbox's claims, resumes and control requests), the CLI,
another runtime's replay. So one malformed record written anywhere could
stop them all. Two invariants keep a bad record to its own run:

* :func:`check_event` checks every event at append, whoever appends it
  (the Journal, the CLI, a tool calling ``Store.append``): its data is a JSON
  object no deeper than the limit, and each field a reader relies on has
  the type it expects (a run's ``args`` a list, its ``kwargs`` an object, an
  ``error`` an object, ...). A bad event is refused with the reason; nothing
  of its group is written.
* :func:`decode` reads a stored JSON column without ever raising: a value
  that is not JSON, nested too deeply for the decoder, or of the wrong shape
  (a row written by hand, or by an older Proctor) comes back as a
  placeholder with a *defect*, one sentence saying what is wrong. Records
  carry it (``RunRecord.defect``, ...); the runtime fails such a run with a
  clear error instead of hosting it, and the CLI shows it.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from typing import Any, Final, Literal, Protocol

from persistence._json import MAX_RECORD_DEPTH
from persistence._states import STEP_END_EVENTS, EventType, RunState

_E = EventType

#: How deeply a stored event's data may nest: a value checked at the call
#: (``MAX_VALUE_DEPTH``) plus the levels the record adds around it (the data
#: object itself, a run's ``args`` list, ...), so a value accepted at the call
#: is never refused by the store later.
MAX_STORED_DEPTH: Final = MAX_RECORD_DEPTH

Shape = Literal["any", "list", "object"]

_STR: Final = (str,)
_OPT_STR: Final = (str, type(None))
_NUMBER: Final = (int, float)
_OPT_NUMBER: Final = (int, float, type(None))
_OPT_OBJECT: Final = (dict, type(None))
_OPT_INT: Final = (int, type(None))

#: event type -> {field: (allowed types, required)}: the fields some reader
#: relies on. Other fields may hold any JSON.
_FIELDS: Final[Mapping[EventType, Mapping[str, tuple[tuple[type, ...], bool]]]] = {
    _E.RUN_CREATED: {
        "workflow": (_STR, True),
        "args": ((list,), False),
        "kwargs": (_OPT_OBJECT, False),
        "owner": (_OPT_STR, False),
        "parent_run_id": (_OPT_STR, False),
        "restarted_from": (_OPT_STR, False),
        "timeout": (_OPT_NUMBER, False),
        "deadline": (_OPT_NUMBER, False),
        "cancel_grace": (_OPT_NUMBER, False),
        # O2: the W3C trace context of the caller of start(), for the run's spans.
        "traceparent": (_OPT_STR, False),
        "tracestate": (_OPT_STR, False),
    },
    _E.RUN_CLAIMED: {"owner": (_STR, True)},
    _E.RUN_RESUMED: {
        "owner": (_STR, True),
        "previous_owner": (_OPT_STR, False),
        "seen_seq": ((int,), True),
        "why": (_OPT_STR, False),
    },
    _E.CANCEL_REQUESTED: {
        "reason": (_OPT_STR, False),
        "source": (_OPT_STR, False),
        "origin": (_OPT_STR, False),
        "grace": (_OPT_NUMBER, False),
    },
    _E.TERMINATE_REQUESTED: {
        "reason": (_OPT_STR, False),
        "source": (_OPT_STR, False),
        "origin": (_OPT_STR, False),
    },
    _E.RUN_TERMINATED: {"reason": (_OPT_STR, False)},
    _E.RUN_FAILED: {"error": (_OPT_OBJECT, False)},
    _E.STEP_SCHEDULED: {"args": ((list,), False), "kwargs": (_OPT_OBJECT, False)},
    _E.STEP_RETRY_SCHEDULED: {"retry_at": (_OPT_NUMBER, False)},
    _E.CHILD_STARTED: {"child_run_id": (_STR, True)},
    _E.CHILD_ENDED: {
        "child_run_id": (_OPT_STR, False),
        "status": (_STR, True),
        "error": (_OPT_OBJECT, False),
    },
    _E.CALL_REUSED: {
        "from_run": (_STR, True),
        "kind": (_STR, True),
        "end": (_STR, True),
        "error": (_OPT_OBJECT, False),
        "child_run_id": (_OPT_STR, False),
    },
    _E.SHIELD_ENTERED: {"depth": ((int,), False)},
    _E.SHIELD_EXITED: {"depth": ((int,), False)},
    _E.CANCEL_DELIVERED: {"checkpoint": (_OPT_INT, False)},
    _E.SCOPE_ENTERED: {
        "scope": ((int,), True),
        "shield": ((bool,), True),
        "deadline": (_OPT_NUMBER, False),
        "timer_call": (_OPT_INT, False),
    },
    _E.SCOPE_EXITED: {"scope": ((int,), True), "cancelled_caught": ((bool,), False)},
    _E.SCOPE_CANCELLED: {
        "scope": ((int,), True),
        "cause": (_STR, True),
        "reason": (_OPT_STR, False),
        "deadline": (_OPT_NUMBER, False),
        "checkpoint": (_OPT_INT, False),
    },
    _E.SIGNAL_SENT: {
        "name": (_STR, True),
        "signal_id": (_STR, True),
        "origin": (_OPT_STR, False),
    },
    _E.SIGNAL_WAITING: {},
    _E.SIGNAL_RECEIVED: {"signal_id": (_STR, True)},
    _E.TIMER_STARTED: {
        "due_at": (_NUMBER, True),
        "due": (_STR, True),
        "seconds": (_OPT_NUMBER, False),
    },
    _E.TIMER_CANCELLED: {"reason": (_OPT_STR, False)},
    _E.CALL_CANCEL_REQUESTED: {
        "call_id": ((int,), True),
        "kind": (_STR, True),
        "mode": (_STR, True),
        "reason": (_OPT_STR, False),
        "ended": ((bool,), False),
    },
    **{t: {"error": (_OPT_OBJECT, False)} for t in STEP_END_EVENTS},
}

#: Events that name a step attempt: the ``steps`` projection is keyed by them.
_ATTEMPT_EVENTS: Final = frozenset({_E.STEP_STARTED, *STEP_END_EVENTS})


class InvalidEvent(ValueError):
    """An event the store refuses: one sentence saying what is wrong."""


class EventShape(Protocol):
    """What :func:`check_event` reads of an event (a ``NewEvent``, structurally:
    this module sits below the records, so it does not import them). Every
    field is ``object`` because checking its type is the point."""

    @property
    def run_id(self) -> object: ...
    @property
    def type(self) -> object: ...
    @property
    def step(self) -> object: ...
    @property
    def call(self) -> object: ...
    @property
    def attempt(self) -> object: ...
    @property
    def data(self) -> object: ...


def check_event(ev: EventShape) -> None:
    """Check ``ev`` as every reader will need it (its JSON is checked where it
    is encoded, at ``MAX_STORED_DEPTH``).

    Raises:
        InvalidEvent: a field has the wrong type (``args`` not a list, ...).
    """
    type_, data = ev.type, ev.data
    if not isinstance(type_, EventType):
        raise InvalidEvent(f"event type must be an EventType, got {type_!r}")
    if not isinstance(ev.run_id, str) or not ev.run_id:
        raise InvalidEvent(f"{type_} needs a run id (a non-empty string), got {ev.run_id!r}")
    if ev.step is not None and not isinstance(ev.step, str):
        raise InvalidEvent(f"{type_} step must be a string, got {type(ev.step).__name__}")
    call, attempt = ev.call, ev.attempt
    if type_ in _ATTEMPT_EVENTS:
        if not (_is_int(call) and _is_int(attempt)):
            raise InvalidEvent(f"{type_} needs integer call and attempt, got {call!r}, {attempt!r}")
        if ev.step is None and type_ is _E.STEP_STARTED:
            raise InvalidEvent(f"{type_} needs its step's name")
    elif not ((call is None or _is_int(call)) and (attempt is None or _is_int(attempt))):
        raise InvalidEvent(f"{type_} call and attempt must be integers, got {call!r}, {attempt!r}")
    if not isinstance(data, dict):
        raise InvalidEvent(f"{type_} data must be a JSON object, got {type(data).__name__}")
    if type_ in _FIELDS:
        problem = data_problem(type_, data)
        if problem is not None:
            raise InvalidEvent(problem)


def data_problem(type_: EventType, data: dict[str, Any]) -> str | None:
    """What is wrong with an event's data for its readers, or None.

    The same rules at append (a refusal) and at read (a defect).
    """
    for key, (types, required) in _FIELDS.get(type_, {}).items():
        if key not in data:
            if required:
                return f"{type_} data needs {key!r}"
            continue
        value = data[key]
        if not isinstance(value, types) or (isinstance(value, bool) and bool not in types):
            return f"{type_} {key!r} must be {_names(types)}, got {type(value).__name__}"
    if type_ is _E.RUN_CREATED and not data["workflow"]:
        return "run_created 'workflow' must not be empty"
    grace = data.get("grace") if type_ is _E.CANCEL_REQUESTED else None
    if grace is not None and not (math.isfinite(grace) and grace >= 0):
        return f"cancel_requested 'grace' must be a number of seconds >= 0, not {grace}"
    if type_ is _E.CALL_REUSED and (
        data["kind"] not in _REUSED_KINDS or data["end"] not in _REUSED_ENDS
    ):
        return (
            "call_reused needs kind 'step', 'child', 'signal' or 'timer' and a call's end,"
            f" got {data['kind']!r}, {data['end']!r}"
        )
    if type_ is _E.CHILD_ENDED and data["status"] not in _RUN_STATES:
        return f"child_ended 'status' must be a run state, got {data['status']!r}"
    return None


_RUN_STATES: Final = frozenset(s.value for s in RunState)
#: What a reused call's end may be: a step's or a child run's recorded end;
#: a sleep's ``timer_fired``; a signal wait's ``signal_received`` or timeout.
_REUSED_ENDS: Final = frozenset(
    {
        _E.STEP_COMPLETED.value,
        _E.STEP_FAILED.value,
        _E.STEP_TIMED_OUT.value,
        _E.CHILD_ENDED.value,
        _E.TIMER_FIRED.value,
        _E.SIGNAL_RECEIVED.value,
    }
)
_REUSED_KINDS: Final = frozenset({"step", "child", "signal", "timer"})


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _names(types: tuple[type, ...]) -> str:
    words = {
        str: "a string",
        int: "an integer",
        float: "a number",
        list: "a JSON array",
        dict: "a JSON object",
        type(None): "null",
    }
    return " or ".join(dict.fromkeys(words[t] for t in types))


def decode(text: str | None, column: str, shape: Shape = "any") -> tuple[Any, str | None]:
    """A stored JSON column as (value, defect); never raises.

    ``None`` (SQL NULL) decodes to None, or to an empty list/object for the
    shapes that have one. A value that is not JSON, too deep to decode, or
    not of ``shape`` decodes to that empty value, with a defect saying so.
    """
    empty: Any = [] if shape == "list" else {} if shape == "object" else None
    if text is None:
        return empty, None
    try:
        value = json.loads(text)
    except RecursionError:
        return empty, f"{column} is nested too deeply to read"
    except (ValueError, TypeError) as exc:  # not text, or not JSON
        return empty, f"{column} is not JSON ({exc})"
    if value is None:
        return empty, None
    if shape == "list" and not isinstance(value, list):
        return empty, f"{column} must be a JSON array, found {_json_type(value)}"
    if shape == "object" and not isinstance(value, dict):
        return empty, f"{column} must be a JSON object, found {_json_type(value)}"
    return value, None


def _json_type(value: object) -> str:
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return f"the number {value}"
    if isinstance(value, str):
        return "a string"
    return "an array" if isinstance(value, list) else "an object"


def decode_data(text: str | None, type_: EventType) -> tuple[dict[str, Any], str | None]:
    """An event's stored data as (data, defect); never raises.

    Data that is not a JSON object, or whose fields break the rules
    :func:`check_event` applies, decodes to ``{}`` with a defect.
    """
    data, defect = decode(text, "data", "object")
    if defect is None:
        defect = data_problem(type_, data)
        if defect is not None:
            data = {}
    return data, defect


def joined(*defects: str | None) -> str | None:
    """The defects of a record's columns, joined; None if it has none."""
    found = [d for d in defects if d is not None]
    return "; ".join(found) if found else None
