"""CallCancel: cancel these calls (steps and child runs) of one run, and only those.

The run-wide cancel (``_cancelling``) reaches every call of the run that is
not shielded. This is the narrower primitive: the body names some of its
calls (by call id) and each is cancelled with one reason, while the run
and every other call go on untouched (the run stays RUNNING). A step
handle's ``cancel()`` (B2, ``_step_handles``) is built on it, and cancel
scopes (B3) are meant to be: cancelling a scope is ``cancel(<the calls
started inside it and not shielded from it>, reason)``.

Interface (typed; the caller decides *which* calls, this decides *how*)::

    cancel(call_ids, reason, *, abandon=False) -> dict[int, CallFate]

For each call id, by where the call is now:

- a running step attempt: sent ``Cancel(reason, source="call")``; it meets it
  at its next ``ctx.check_cancellation()`` or heartbeat (C2) and a step that
  never checks runs to its end (C4). ``abandon=True``: it is not told, and
  the run's own cancel will not tell it later either (Temporal's ABANDON).
  Either way no retry policy restarts it (SV1: cancellation is never
  retried): a failure after the cancel is its end;
- a step attempt waiting for a step slot: withdrawn, recorded
  ``step_cancelled`` with the reason, never started (C3); one waiting out
  its back-off: its retry is withdrawn (as the run's cancel does); unless
  ``abandon`` (then it starts and runs as it would have);
- a running child run: sent a cancel with source ``parent`` (recorded in
  the child's own log first), which flows down its tree (C7); ``abandon``:
  left running, never told, not even by the run's own cancel later (it
  meets its parent close policy when the parent ends);
- anything else (ended, unknown, not started yet): nothing.

Shields (S1): the run-wide cancel skips calls started inside a shield. This
primitive does not look at shields: its caller passes only the calls the
cancel may reach. A handle's own cancel reaches its call even if it was
started inside a shield (Trio: a shield blocks cancels from scopes outside
it, not the call's own); a cancel scope passes only calls no shield
inside the scope protects.

The caller records *why* (``call_cancel_requested``, ``scope_cancelled``);
this module records only each call's own end when it withdraws one.

Invariants: a call is told at most once (``Active.cancel_sent``,
``Child.cancel_sent``); nothing here ends the body's await by itself
except a withdrawal, whose ``step_cancelled`` is recorded before the await
sees it (D1).
"""

from __future__ import annotations

import enum
from collections.abc import Iterable
from typing import Protocol

from actors._attempts import Attempts, step_event
from actors._base import tell
from actors._children import Children
from actors._definitions import StepCall
from actors._errors import CancellationError
from actors._messages import CallEnded, Cancel
from actors._recorder import Recorder
from persistence import EventType

_E = EventType


class CallFate(enum.Enum):
    """What a cancel did to one call."""

    #: A running step or child run was sent the cancel (or had it already).
    TOLD = "told"
    #: A step waiting for a slot or a back-off: withdrawn, recorded cancelled.
    WITHDRAWN = "withdrawn"
    #: Left running, never to be told (``abandon=True``).
    ABANDONED = "abandoned"
    #: Not running here (ended, or not started yet): nothing was done.
    UNTOUCHED = "untouched"


class CallCancelHost(Protocol):
    """What cancelling single calls needs of the run supervisor."""

    def cancel_timer(self, key: tuple[str, int]) -> None: ...

    def on_call_recorded(self, ended: CallEnded) -> None:
        """A call ended (here: a back-off withdrawn by the cancel)."""


class CallCancel:
    """Cancel named calls of one run (see the module docstring)."""

    def __init__(
        self,
        host: CallCancelHost,
        *,
        run_id: str,
        attempts: Attempts,
        children: Children,
        log: Recorder,
    ) -> None:
        self._host = host
        self._run_id = run_id
        self._attempts = attempts
        self._children = children
        self._log = log

    def cancel(
        self, call_ids: Iterable[int], reason: str | None, *, abandon: bool = False
    ) -> dict[int, CallFate]:
        """Cancel each of ``call_ids`` with ``reason`` (see the module docstring)."""
        return {call_id: self._cancel_one(call_id, reason, abandon) for call_id in call_ids}

    def _cancel_one(self, call_id: int, reason: str | None, abandon: bool) -> CallFate:
        attempts = self._attempts
        active = attempts.active.get(call_id)
        if active is not None:
            active.cancelled = True  # SV1: whatever it ends with, never retried
            if abandon:
                active.cancel_sent = True  # Invariant: never told, now or by the run's cancel.
                return CallFate.ABANDONED
            if not active.cancel_sent:
                active.cancel_sent = tell(active.ref, Cancel(reason=reason, source="call"))
            return CallFate.TOLD
        queued = attempts.queued.get(call_id)
        backoff = attempts.backoff.get(call_id)
        if queued is not None or backoff is not None:
            if abandon:
                return CallFate.ABANDONED
            if queued is not None:
                del attempts.queued[call_id]
                if queued.ticket is not None:
                    queued.ticket.release()
                assert isinstance(queued.call, StepCall)
                # C3: never started; the await learns it once this is durable (D1).
                ended = step_event(
                    self._run_id,
                    _E.STEP_CANCELLED,
                    queued.call.step.name,
                    call_id,
                    queued.attempt,
                    reason=reason,
                )
                error = CancellationError(reason)
                self._log.append(ended, tag=CallEnded(call_id=call_id, error=error))
            else:
                # Its last attempt's failure is recorded; the retry is not
                # (as the run's own cancel does, ``_cancelling``): replay knows
                # from ``call_cancel_requested`` not to run it again.
                del attempts.backoff[call_id]
                self._host.cancel_timer(("retry", call_id))
                self._host.on_call_recorded(
                    CallEnded(call_id=call_id, error=CancellationError(reason))
                )
            return CallFate.WITHDRAWN
        child = self._children.running.get(call_id)
        if child is not None:
            if abandon:
                child.cancel_sent = True  # never told, not even by the run's cancel (C7)
                return CallFate.ABANDONED
            self._children.cancel_one(call_id, reason)
            return CallFate.TOLD
        return CallFate.UNTOUCHED
