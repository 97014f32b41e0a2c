"""Step attempts: the book of one run's attempts, and the records they write.

A step call of the body runs as attempts (1, 2, ...), one StepActor each.
At any moment a call's current attempt is in exactly one place of the book:
waiting for a step slot (``queued``), running (``active``), or waiting out
its back-off before the next one (``backoff``); or it has ended. What was
called, and the latest heartbeat details of its ended attempts (H2), are
kept by call for retries and restarts.

Invariants: an attempt's start is recorded (``step_started``) before its
StepActor runs, and its end is recorded once (D1); a result from an attempt
that is no longer the book's (fencing by attempt number) is dropped by the
supervisor before it gets here. The record builders below are pure.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pykka

from actors._context import BeatBox
from actors._definitions import Call, StepCall
from actors._errors import CancellationError, StepFailed, Terminated, describe
from actors._messages import CallEnded, Raised, Returned, StepCancelled, StepOutcome
from actors._replay import RecordedCall
from actors._slots import Ticket
from persistence import EventType, NewEvent, NotSerializable, loads

_E = EventType


@dataclass(slots=True)
class Active:
    """A step attempt whose StepActor is running."""

    ref: pykka.ActorRef[Any]
    #: What was called: a retry starts it again.
    call: StepCall[Any]
    attempt: int
    shielded: bool
    #: Runtime-clock time its timeout and heartbeat timeout count from (H1).
    started_at: float
    cancel_sent: bool = False
    #: B2: cancelled alone (its handle, ``_call_cancel``): never retried (SV1).
    cancelled: bool = False
    #: The attempt's latest heartbeat, written by its thread (steps with a
    #: heartbeat_timeout only).
    beats: BeatBox | None = None
    details: Any = None

    @property
    def name(self) -> str:
        return self.call.step.name

    def last_heartbeat(self) -> tuple[float, Any]:
        """When it last beat (its start, if never) and the latest details."""
        last = self.beats.last if self.beats is not None else None
        return last if last is not None else (self.started_at, self.details)

    def end_data(self) -> dict[str, Any]:
        """What every end record of the attempt carries: its latest heartbeat
        details (H2), so a write the heartbeat throttle skipped is made good
        and a resumed run's next attempt gets them."""
        details = self.last_heartbeat()[1]
        return {} if details is None else {"last_heartbeat_details": details}


@dataclass(slots=True)
class Backoff:
    """A step waiting out its back-off before its next attempt (H2)."""

    call: StepCall[Any]
    shielded: bool
    attempt: int
    details: Any = None


@dataclass(frozen=True, slots=True)
class Scheduled:
    """A call the body awaits, decided and about to be recorded and started."""

    call_id: int
    call: Call
    shielded: bool
    #: The attempt to start: 1, or the one after an attempt lost in a crash.
    attempt: int = 1
    #: A child run that exists already (replay): resume it rather than create it.
    resume_child: bool = False
    #: The last heartbeat details of the previous attempt (a retry after a timeout).
    details: Any = None
    #: A child started with start_child(): its parent close policy.
    policy: str | None = None
    #: When (runtime clock) the start was decided, before its record: the
    #: attempt's deadlines count from here. Whoever sees the record, a test
    #: moving virtual time included, sees it after this instant.
    decided_at: float = 0.0
    #: A step attempt's claim on a step slot (StepSlots), once requested.
    ticket: Ticket | None = None
    #: The log has this attempt waiting for a slot already (replay).
    waited: bool = False


@dataclass(slots=True)
class Waiting:
    """What the suspended body is waiting for: one call, or a gather()."""

    gathered: bool
    call_ids: tuple[int, ...]
    values: dict[int, Any] = field(default_factory=dict)
    errors: dict[int, BaseException | None] = field(default_factory=dict)
    strategy: str = "one_for_one"


class Attempts:
    """Every step attempt of one run, by call id (see the module docstring)."""

    def __init__(self) -> None:
        #: Running attempts.
        self.active: dict[int, Active] = {}
        #: Attempts recorded as waiting for a step slot.
        self.queued: dict[int, Scheduled] = {}
        #: Calls waiting out a back-off before their next attempt.
        self.backoff: dict[int, Backoff] = {}
        #: Every step call this run made: what, its last attempt, shielded or not.
        self.calls: dict[int, tuple[StepCall[Any], int, bool]] = {}
        #: The latest heartbeat details of each call's ended attempts (H2).
        self.details: dict[int, Any] = {}
        #: SV3: running siblings stopped for a group restart: when, and why.
        self.restart_after: dict[int, tuple[float, str]] = {}

    def release_queued(self) -> None:
        """Give up every waiting attempt's step slot (or place in line)."""
        for s in self.queued.values():
            assert s.ticket is not None
            s.ticket.release()
        self.queued.clear()


def step_event(
    run_id: str, type_: EventType, step: str, call: int, attempt: int | None, **data: Any
) -> NewEvent:
    """A record of one step call (or child run call) of run ``run_id``."""
    return NewEvent(run_id=run_id, type=type_, step=step, call=call, attempt=attempt, data=data)


def start_records(run_id: str, s: Scheduled, recorded: RecordedCall | None) -> list[NewEvent]:
    """The records that start step call ``s``; ``recorded``: its log, on replay."""
    assert isinstance(s.call, StepCall)
    name = s.call.step.name
    if recorded is None:
        return [
            step_event(
                run_id,
                _E.STEP_SCHEDULED,
                name,
                s.call_id,
                None,
                args=list(s.call.args),
                kwargs=dict(s.call.kwargs),
            ),
            step_event(run_id, _E.STEP_STARTED, name, s.call_id, 1, shielded=s.shielded),
        ]
    started = step_event(run_id, _E.STEP_STARTED, name, s.call_id, s.attempt, shielded=s.shielded)
    if not recorded.lost or recorded.waiting:
        # It failed and was waiting out its back-off (this is its retry),
        # or it waits for a step slot (its records are written already).
        return [started]
    # The attempt in flight was lost with its runtime: run it again, and say so.
    reexecuted = step_event(
        run_id,
        _E.STEP_REEXECUTED,
        name,
        s.call_id,
        s.attempt,
        lost_attempt=recorded.last_attempt,
        shielded=s.shielded,  # the store refuses an unshielded one while cancelling (C3)
    )
    return [reexecuted, started]


def step_error(
    name: str, outcome: Raised, attempt: int = 1, escalated: str | None = None
) -> BaseException:
    """What the await of a step that ended in ``outcome`` raises (SV4)."""
    if isinstance(outcome.exception, NotSerializable):
        # D4: a result that is not JSON is the caller's error, reported as such.
        return outcome.exception
    err = StepFailed(name, attempt, outcome.error, escalated=escalated)
    err.__cause__ = outcome.exception
    return err


def step_end(
    run_id: str,
    key: tuple[str, int, int],
    outcome: StepOutcome,
    beat: dict[str, Any],
    *,
    escalated: str = "",
) -> tuple[NewEvent, CallEnded]:
    """Outcome -> event: the record of an attempt's end, and what its await gets.

    ``key``: (step name, call id, attempt); ``beat``: its latest heartbeat
    details, carried by every end record (H2); ``escalated``: why a failure
    the policy would retry was not (SV2). An ``Unwound`` here was raised by
    user code, the run not being terminated: it fails the step.
    """
    name, call_id, attempt = key
    if isinstance(outcome, Returned):
        # Decoded twice on purpose: the body goes on before this record
        # commits (it is written with the body's next group), so the body
        # must not hold the very object the record will encode (D1, D4).
        event = step_event(
            run_id, _E.STEP_COMPLETED, *key, result=loads(outcome.result_json), **beat
        )
        return event, CallEnded(call_id=call_id, value=loads(outcome.result_json))
    if isinstance(outcome, StepCancelled):
        event = step_event(run_id, _E.STEP_CANCELLED, *key, reason=outcome.reason, **beat)
        return event, CallEnded(call_id=call_id, error=CancellationError(outcome.reason))
    if isinstance(outcome, Raised):
        data: dict[str, Any] = {"error": outcome.error, **beat}
        if escalated:
            data["escalated"] = escalated
        event = step_event(run_id, _E.STEP_FAILED, *key, **data)
        error = step_error(name, outcome, attempt, escalated)
        return event, CallEnded(call_id=call_id, error=error)
    exc = Terminated("step raised Terminated on its own")
    described = describe(exc)
    event = step_event(run_id, _E.STEP_FAILED, *key, error=described, **beat)
    raised = Raised(error=described, exception=exc)
    return event, CallEnded(call_id=call_id, error=step_error(name, raised))
