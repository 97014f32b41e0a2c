"""Scopes: the cancel scopes of one run's workflow body (B3), Trio's model, durable.

The body enters and exits scopes lexically (``with CancelScope():``,
``move_on_after``, ``fail_after``, ``shield()``); this object keeps their
stack and decides, at each checkpoint of the body, whether a scope's cancel
is met there, and which scope it belongs to.

- A scope's *calls* are the calls the body started inside it (steps, child
  runs, sleeps, handles), up to and including the innermost shield around
  the call: a shield blocks cancels from scopes outside it (S1), not from
  scopes inside it, nor its own.
- Cancelling a scope (``scope.cancel()`` or its deadline) cancels its
  running calls through the call-cancel primitive (``_call_cancel``: a
  step is told and runs to its end if it never checks, C4; a child run
  gets a cancel with source ``parent``, C7), interrupts its sleeps and
  ends its suspended signal wait (B5, ``WaitHook``: the deadline's
  ``scope_cancelled`` then names the wait's own checkpoint, so replay
  meets the cancel at that wait before it takes any signal). It cancels
  nothing else: the run stays RUNNING.
- At a checkpoint the cancel met is that of the *outermost* cancelled scope
  between the body and the innermost shield (the run's own cancel acts as
  the scope outside every other; ``_body`` decides that one first). The
  ``CancellationError`` raised carries that scope; only that scope's exit
  catches it (``ScopeCancelled``), so an inner scope never swallows an
  outer one's cancel. It is level-triggered (C3): every checkpoint inside
  the scope raises again until the block exits.
- A deadline is a durable body timer (``_body_timers``, kind ``scope``,
  call ``n`` numbered with the body's calls). Where it takes effect is
  recorded: ``scope_cancelled`` names the body's checkpoint (``cause``
  ``deadline``); replay marks the scope cancelled at exactly that
  checkpoint (D2), never from the clock. A deadline found passed at a live
  checkpoint (a timer resumed after a crash, or a virtual clock moved on)
  fires there, at once.
- A ``scope.cancel()`` is the body's own act, made again by its replay:
  its ``scope_cancelled`` (``cause`` ``cancel``) is matched, not rewritten.

Invariants: the stack is exited in the reverse order it is entered; scope
ids count the scopes the body entered, in order, so replay finds scope
``n`` again; a scope is cancelled at most once (its first cause stands);
a deadline fires at most once and never after its scope exited.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

from actors._body import Body
from actors._body_timers import BodyTimers
from actors._call_cancel import CallCancel
from actors._errors import CancellationError, NonDeterminismError
from actors._sleep import TimerCall
from persistence import EventType, ProctorError

_E = EventType

#: The kind of the body timer a scope's deadline starts (its records' ``step``).
SCOPE = "scope"

CAUSE_CANCEL = "cancel"
CAUSE_DEADLINE = "deadline"


class WaitHook(Protocol):
    """B5: the body's suspended signal wait (``_signals.SignalWaits``), as scopes see it."""

    def checkpoint_of(self, call_ids: list[int]) -> int | None:
        """The checkpoint of the wait suspended as one of ``call_ids``, or None."""

    def interrupt(self, call_ids: list[int], error: CancellationError) -> bool:
        """End the wait suspended as one of ``call_ids`` with ``error``."""


class ScopesHost(Protocol):
    """What scopes need of the run supervisor."""

    def go_live(self) -> None:
        """The body made a call its log does not have."""


@dataclass(slots=True, eq=False)
class ScopeState:
    """One scope the body entered: the runtime's side of a ``CancelScope``."""

    id: int
    shield: bool
    #: A plain ``shield()``: recorded as ``shield_entered``/``shield_exited`` only.
    legacy: bool = False
    #: The call id of its deadline's body timer, and its due instant (UTC epoch s).
    timer_call: int | None = None
    due_at: float | None = None
    cancel_called: bool = False
    reason: str | None = None
    cause: str | None = None
    cancelled_caught: bool = False
    active: bool = True
    calls: list[int] = field(default_factory=list)


class ScopeCancelled(CancellationError):
    """The ``CancellationError`` of one scope: only that scope's exit catches it."""

    def __init__(self, scope: ScopeState) -> None:
        reason = scope.reason
        if reason is None and scope.cause == CAUSE_DEADLINE:
            reason = "deadline passed"
        super().__init__(reason)
        self.scope = scope


class Scopes:
    """One body's cancel scopes (see the module docstring)."""

    def __init__(
        self,
        host: ScopesHost,
        *,
        body: Body,
        timers: BodyTimers,
        calls: CallCancel,
        waits: WaitHook | None = None,
    ) -> None:
        self._host = host
        self._waits = waits
        self._body = body
        self._timers = timers
        self._calls = calls
        self.stack: list[ScopeState] = []
        self._count = 0
        self._by_id: dict[int, ScopeState] = {}

    # -- entering and exiting ---------------------------------------------------------

    def enter(
        self,
        *,
        shield: bool,
        legacy: bool = False,
        seconds: float | None = None,
        until: float | None = None,
    ) -> ScopeState:
        """The body enters a scope; its deadline (if any) becomes a durable timer."""
        body = self._body
        state = ScopeState(self._count, shield, legacy)
        self._count += 1
        self._by_id[state.id] = state
        if not body.ctx.sealed and (seconds is not None or until is not None):
            self._start_deadline(state, seconds, until)
        self.stack.append(state)
        if not legacy and not body.ctx.sealed:
            body.record_body(
                _E.SCOPE_ENTERED,
                scope=state.id,
                shield=shield,
                deadline=state.due_at,
                timer_call=state.timer_call,
            )
        return state

    def _start_deadline(
        self, state: ScopeState, seconds: float | None, until: float | None
    ) -> None:
        body = self._body
        call_id = body.ctx.call_counter  # not one of its own calls, nor an outer scope's
        body.ctx.call_counter += 1
        state.timer_call = call_id
        recorded = body.recorded(call_id, TimerCall(SCOPE))
        if isinstance(recorded, NonDeterminismError):
            body.diverge(recorded)
            raise recorded
        if recorded is not None:
            assert recorded.timer is not None
            state.due_at = float(recorded.timer["due_at"])
            if recorded.end is None:  # its runtime died before it fired: schedule it again
                self._timers.resume(
                    call_id,
                    kind=SCOPE,
                    due_at=state.due_at,
                    on_fired=self._fired,
                    shielded=True,
                )
            return
        self._host.go_live()
        state.due_at = until if until is not None else self._timers.now() + (seconds or 0.0)
        self._timers.start(
            call_id,
            kind=SCOPE,
            due_at=state.due_at,
            seconds=seconds,
            on_fired=self._fired,
            shielded=True,  # never dropped by the run's cancel: only its scope's exit
        )

    def exit(self, state: ScopeState, exc: BaseException | None) -> bool:
        """The body leaves ``state``; whether it catches ``exc`` (its own cancel)."""
        if not self.stack or self.stack[-1] is not state:
            raise ProctorError(
                "cancel scopes must be exited in the reverse order they were entered"
            )
        self.stack.pop()
        state.active = False
        sealed = self._body.ctx.sealed
        if state.timer_call is not None and not sealed:
            self._timers.drop(state.timer_call, "scope exited")
        caught = isinstance(exc, ScopeCancelled) and exc.scope is state
        state.cancelled_caught = caught
        if not state.legacy and not sealed:
            self._body.record_body(_E.SCOPE_EXITED, scope=state.id, cancelled_caught=caught)
        return caught

    # -- calls started inside ---------------------------------------------------------

    def started(self, call_id: int) -> None:
        """Call ``call_id`` starts: it belongs to every scope up to the innermost shield."""
        for state in reversed(self.stack):
            state.calls.append(call_id)
            if state.shield:
                break

    def scope_of(self, call_id: int) -> int | None:
        """The innermost active scope a call was started in (for display)."""
        for state in reversed(self.stack):
            if call_id in state.calls:
                return state.id
        return None

    # -- cancelling -------------------------------------------------------------------

    def cancel(self, state: ScopeState, reason: str | None) -> None:
        """``scope.cancel(reason)`` in the body: recorded (matched on replay), then acted on."""
        if state.cancel_called:
            return
        self._body.record_body(
            _E.SCOPE_CANCELLED, scope=state.id, reason=reason, cause=CAUSE_CANCEL
        )
        self._mark(state, reason, CAUSE_CANCEL)

    def _fired(self, call_id: int) -> None:
        """A deadline's timer fired while the body waits: its next checkpoint meets it."""
        state = self._by_timer(call_id)
        if state is not None and state.active:
            checkpoint = self._body.next_checkpoint
            if self._waits is not None:
                # B5: a signal wait suspended inside meets it at its own
                # checkpoint (as the run's cancel does), before any signal.
                at = self._waits.checkpoint_of(state.calls)
                checkpoint = checkpoint if at is None else at
            self._deadline(state, checkpoint)

    def _deadline(self, state: ScopeState, checkpoint: int) -> None:
        if state.cancel_called:
            return
        self._body.record_body(
            _E.SCOPE_CANCELLED,
            scope=state.id,
            cause=CAUSE_DEADLINE,
            deadline=state.due_at,
            checkpoint=checkpoint,
        )
        self._mark(state, None, CAUSE_DEADLINE)

    def _mark(self, state: ScopeState, reason: str | None, cause: str) -> None:
        state.cancel_called, state.reason, state.cause = True, reason, cause
        if not state.active:
            return  # Trio: cancelling a scope that was exited changes nothing
        if state.timer_call is not None and not self._body.ctx.sealed:
            self._timers.drop(state.timer_call, "scope cancelled")
        why = ScopeCancelled(state).reason
        calls = list(state.calls)
        self._calls.cancel(calls, why)
        for call_id in calls:
            self._timers.interrupt(call_id, why)
        effective = self.effective()
        if self._waits is not None and effective is not None:
            self._waits.interrupt(calls, ScopeCancelled(effective))

    def after_drive(self) -> None:
        """The body waits (again, live) at an await its log shows a deadline met.

        The first runtime fired the deadline while the body waited here and
        died before the wait ended: the scope's cancel takes effect now, on
        the calls this wait resumed (told, interrupted), as it did then.
        """
        body, history = self._body, self._body.history
        if body.coro is None or history is None or not history.body:
            return
        ev = history.body[0]
        if not (
            ev.type is _E.SCOPE_CANCELLED
            and ev.data.get("cause") == CAUSE_DEADLINE
            and ev.data.get("checkpoint") == body.next_checkpoint
        ):
            return
        history.body.popleft()
        state = self._by_id.get(int(ev.data.get("scope", -1)))
        if state is not None and state.active and not state.cancel_called:
            self._mark(state, None, CAUSE_DEADLINE)

    def _by_timer(self, call_id: int) -> ScopeState | None:
        for state in self.stack:
            if state.timer_call == call_id:
                return state
        return None

    # -- checkpoints --------------------------------------------------------------------

    def at_checkpoint(self, checkpoint: int, *, replaying: bool) -> CancellationError | None:
        """The body is at ``checkpoint``: the cancel of the scope met here, or None.

        Replay: a deadline the log says took effect here is marked now. Live:
        a deadline whose instant has passed fires here.
        """
        if replaying:
            history = self._body.history
            while history is not None and history.body:
                ev = history.body[0]
                if not (
                    ev.type is _E.SCOPE_CANCELLED
                    and ev.data.get("cause") == CAUSE_DEADLINE
                    and ev.data.get("checkpoint") == checkpoint
                ):
                    break
                history.body.popleft()
                state = self._by_id.get(int(ev.data.get("scope", -1)))
                if state is not None and not state.cancel_called:
                    state.cancel_called, state.cause = True, CAUSE_DEADLINE
        elif not self._body.ctx.sealed:
            now = self._timers.now()
            for state in list(self.stack):
                if (
                    state.due_at is not None
                    and state.timer_call is not None
                    and not state.cancel_called
                    and state.due_at <= now
                    and self._timers.fire_now(state.timer_call)
                ):
                    self._deadline(state, checkpoint)
        state = self.effective()
        return None if state is None else ScopeCancelled(state)

    def effective(self) -> ScopeState | None:
        """The outermost cancelled scope no shield inside it blocks, or None."""
        found = None
        for state in reversed(self.stack):
            if state.cancel_called:
                found = state
            if state.shield:
                break
        return found
