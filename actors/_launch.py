"""Launch: starting a run's step attempts, and abandoning them.

A step attempt starts in three moves, each after the one before is durable
(D1): it takes a step slot (``StepSlots``, the runtime's bound on steps in
flight) or is recorded waiting for one (``step_waiting``); its start is
recorded (``step_started``); its StepActor, built before the record, is
launched by the Journal right after the commit. A run already cancelling
hands its cancel to the attempt at birth (C3), and an attempt with a
timeout or heartbeat timeout gets its deadline timer (H2).

Invariants: an attempt is in the book's ``active`` from the moment its
actor is built; a waiting attempt holds a ticket for a slot, released when
it starts elsewhere, is withdrawn (cancel, terminate) or the run stops, and
one withdrawn is recorded (cancelled or abandoned) and never starts; an
abandoned attempt is told to stop and its late result is dropped (fencing
by attempt number, T3).
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import replace
from typing import Any, Protocol

import pykka

from actors._attempts import Active, Attempts, Scheduled, step_event
from actors._base import tell
from actors._census import Census
from actors._clock import Clock
from actors._context import BeatBox
from actors._definitions import ChildCall, StepCall
from actors._errors import CancellationError
from actors._fencing import LeaseGuard
from actors._messages import (
    CallEnded,
    Cancel,
    Deadline,
    SlotGranted,
    StepsScheduled,
    Terminate,
)
from actors._recorder import Recorder
from actors._slots import waiting_records
from actors._step import StepActor
from persistence import EventType, NewEvent

_E = EventType


class LaunchHost(Protocol):
    """What starting attempts needs of the run supervisor."""

    @property
    def current_cancel(self) -> Cancel | None:
        """The run's cancel, once it has one."""

    def cancelling(self) -> bool:
        """The run is cancelling."""

    def cancel_due(self) -> bool:
        """The run is cancelling and the body is not in a shield."""

    def may_start(self) -> bool:
        """Not terminated, not ended, not draining: a new attempt may start."""

    def schedule_timer(self, key: tuple[str, int], due: float, message: Any) -> None: ...

    def on_call_recorded(self, ended: CallEnded) -> None:
        """A call ended (here: a waiting attempt withdrawn by a cancel)."""


class Launcher:
    """Starts one run's step attempts (see the module docstring)."""

    def __init__(
        self,
        host: LaunchHost,
        *,
        run_id: str,
        parent: pykka.ActorRef[Any],
        census: Census,
        journal: pykka.ActorRef[Any],
        attempts: Attempts,
        log: Recorder,
        clock: Clock,
        max_payload_bytes: int,
        guard: LeaseGuard | None,
    ) -> None:
        self._host = host
        self._run_id = run_id
        self._parent = parent
        self._census = census
        self._journal = journal
        self._attempts = attempts
        self._log = log
        self._clock = clock
        self._max_payload_bytes = max_payload_bytes
        self._guard = guard

    def take_slots(
        self, events: list[NewEvent], scheduled: tuple[Scheduled, ...]
    ) -> tuple[list[NewEvent], tuple[Scheduled, ...]]:
        """A step slot for each step attempt; those that get none wait (StepSlots).

        A waiting attempt is recorded ``step_waiting`` instead of
        ``step_started``, and starts when its SlotGranted comes. Returns the
        records to write and the calls to start now.
        """
        ready: list[Scheduled] = []
        waiting: dict[tuple[int | None, int | None], bool] = {}
        for s in scheduled:
            if isinstance(s.call, ChildCall):
                ready.append(s)
                continue
            granted = SlotGranted(call=s.call_id, attempt=s.attempt)
            ticket = self._census.slots.request(functools.partial(tell, self._parent, granted))
            if ticket.granted:
                ready.append(replace(s, ticket=ticket))
            else:
                self._attempts.queued[s.call_id] = replace(s, ticket=ticket)
                waiting[(s.call_id, s.attempt)] = s.waited
        if waiting:
            events = waiting_records(events, waiting)
        return events, tuple(ready)

    def on_slot_granted(self, msg: SlotGranted) -> None:
        """A waiting attempt got its step slot: record its start, then launch it."""
        s = self._attempts.queued.get(msg.call)
        if s is None or s.attempt != msg.attempt:
            return  # withdrawn (cancel): its ticket was released then
        cancel = self._host.current_cancel
        if self._host.cancel_due() and not s.shielded and cancel is not None:
            # C3: the run was cancelling before this supervisor hosted it (a
            # resumed run): its waiting attempt never starts either.
            self.end_waiting(_E.STEP_CANCELLED, cancel.reason, shielded=False)
            return
        del self._attempts.queued[msg.call]
        if not self._host.may_start():
            assert s.ticket is not None
            s.ticket.release()
            return
        assert isinstance(s.call, StepCall)
        name = s.call.step.name
        s = replace(s, decided_at=self._clock.monotonic())
        started = step_event(
            self._run_id, _E.STEP_STARTED, name, s.call_id, s.attempt, shielded=s.shielded
        )
        self._log.append(started, tag=StepsScheduled(steps=(s,)), launch=(self.prepare(s),))

    def end_waiting(
        self,
        type_: EventType,
        reason: str | None,
        *,
        shielded: bool,
        reasons: Mapping[int, str] | None = None,
    ) -> None:
        """Withdraw waiting attempts (only unshielded ones unless ``shielded``):
        they are recorded ``type_`` (cancelled or abandoned) and never start.
        ``reasons`` gives a call its own reason in place of ``reason``."""
        for call_id, s in list(self._attempts.queued.items()):
            if s.shielded and not shielded:
                continue
            del self._attempts.queued[call_id]
            assert s.ticket is not None
            assert isinstance(s.call, StepCall)
            s.ticket.release()
            why = (reasons or {}).get(call_id, reason)
            self._log.send(
                step_event(self._run_id, type_, s.call.step.name, call_id, s.attempt, reason=why)
            )
            if type_ is _E.STEP_CANCELLED:
                self._host.on_call_recorded(
                    CallEnded(call_id=call_id, error=CancellationError(reason))
                )

    def prepare(self, s: Scheduled) -> StepActor:
        """Build the attempt's actor, not yet running, and count it active."""
        assert isinstance(s.call, StepCall)
        call_id, call, shielded, attempt, details = (
            s.call_id,
            s.call,
            s.shielded,
            s.attempt,
            s.details,
        )
        # A run already cancelling hands its cancel to the attempt at birth, so
        # the attempt's very first check sees it (no race with a later tell).
        cancel = self._host.current_cancel if self._host.cancelling() and not shielded else None
        now = s.decided_at
        beats = BeatBox()
        actor = StepActor.prepare(
            ticket=s.ticket,
            census=self._census,
            parent=self._parent,
            journal=self._journal,
            run_id=self._run_id,
            call=call_id,
            attempt=attempt,
            step=call.step,
            args=call.args,
            kwargs=call.kwargs,
            cancel=cancel,
            last_heartbeat_details=details,
            clock=self._clock.monotonic,
            beats=beats,
            max_payload_bytes=self._max_payload_bytes,
            guard=self._guard,
        )
        self._attempts.calls[call_id] = (call, attempt, shielded)
        self._attempts.active[call_id] = Active(
            ref=actor.actor_ref,
            attempt=attempt,
            shielded=shielded,
            cancel_sent=cancel is not None,
            call=call,
            started_at=now,
            beats=beats,
            details=details,
        )
        limits = [t for t in (call.step.timeout, call.step.heartbeat_timeout) if t is not None]
        if limits:
            self._host.schedule_timer(
                ("deadline", call_id), now + min(limits), Deadline(call=call_id, attempt=attempt)
            )
        return actor

    def abandon_running(
        self, reason: str | None, *, reasons: Mapping[int, str] | None = None
    ) -> None:
        """Leave every running attempt; a busy one unwinds at its next check (T3).

        ``reasons`` gives a call its own reason in place of ``reason``.
        """
        if not self._attempts.active:
            return
        why = reasons or {}
        events = [
            step_event(
                self._run_id,
                _E.STEP_ABANDONED,
                a.name,
                call_id,
                a.attempt,
                reason=why.get(call_id, reason),
                **a.end_data(),
            )
            for call_id, a in self._attempts.active.items()
        ]
        self._log.send(*events)
        for call_id, active in self._attempts.active.items():
            tell(active.ref, Terminate(reason=why.get(call_id, reason)))
        self._attempts.active.clear()
