"""Cancelling: the run's state as its supervisor knows it, and the cancel it acts on.

Cancelling is a state of the run (``RunState.CANCELLING``, C1), so the
run's state lives here with the cancel that moved it there:

- a ``Cancel`` message moves a running run to CANCELLING; the first one is
  the one acted on (C6), and it carries its reason, so handling it never
  reads the store; inside a shield it is buffered (``cancel_buffered``) and
  the body meets it when the shield closes (S1);
- it is passed down (``forward``): to running step attempts (C2), to child
  runs (C7), never to those started inside a shield (S1); an attempt
  waiting for a step slot or a back-off is never started while cancelling:
  its await gets CancellationError (C3);
- it ends the body's durable timers that a cancel interrupts (an
  unshielded ``await sleep``, B1): the sleep raises at once;
- the store's view, learnt from an acknowledgement (``learn``): a cancel
  recorded before this supervisor existed (or while nobody hosted the run,
  D3) is adopted then; only then may the store be read, for its reason.

Invariants: every change of ``state`` goes through ``persistence.next_state``
(or ``later_state``, from an acknowledgement); ``cancel`` is set at most
once (or handed over at creation, with the state it explains); a step or
child run gets the cancel at most once (its ``cancel_sent``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from actors._attempts import Attempts
from actors._base import logger, tell
from actors._body import Body
from actors._body_timers import BodyTimers
from actors._children import Children
from actors._errors import CancellationError
from actors._launch import Launcher
from actors._lifecycle import Lifecycle
from actors._log_records import run_extra
from actors._messages import CallEnded, Cancel
from actors._recorder import Recorder
from persistence import EventType, RunState, Store, StoreError, later_state, next_state

_E = EventType


class CancelHost(Protocol):
    """What cancelling needs of the run supervisor."""

    def cancel_timer(self, key: tuple[str, int]) -> None: ...

    def on_call_recorded(self, ended: CallEnded) -> None:
        """A call ended (here: a back-off withdrawn by the cancel, C3)."""

    def cancel_came(self) -> None:
        """The run's cancel is in: a wait that is no call of a step or child
        (a signal's, B5) meets it now, unless shielded."""


class Cancelling:
    """One run's state and cancel (see the module docstring)."""

    def __init__(
        self,
        host: CancelHost,
        *,
        run_id: str,
        state: RunState,
        cancel: Cancel | None,
        reader: Store,
        life: Lifecycle,
        body: Body,
        attempts: Attempts,
        launcher: Launcher,
        children: Children,
        log: Recorder,
        timers: BodyTimers,
    ) -> None:
        self._host = host
        self._run_id = run_id
        #: The run's state, as far as this supervisor knows it.
        self.state = state
        #: The cancel acted on (C6); None until the run is cancelling.
        self.cancel = cancel
        self._reader = reader
        self._life = life
        self._body = body
        self._attempts = attempts
        self._launcher = launcher
        self._children = children
        self._log = log
        self._timers = timers

    def advance(self, type_: EventType) -> None:
        """The run's state after a record of ``type_`` (``next_state``)."""
        self.state = next_state(self.state, type_)

    def cancelling(self) -> bool:
        return self.state is RunState.CANCELLING

    def cancel_due(self) -> bool:
        """Cancelling, and the body is in no shield: the next checkpoint raises."""
        return self.state is RunState.CANCELLING and self._body.ctx.shield_depth == 0

    def forward_pending(self) -> bool:
        """A cancel to pass to calls that start now (their starts were recorded
        while it came, or the run was cancelled while nobody hosted it)."""
        return self.state is RunState.CANCELLING and self.cancel is not None

    def on_cancel(self, msg: Cancel) -> None:
        if self._life.terminated or self._life.ended or self.state.is_terminal:
            return
        if self.state is not RunState.CANCELLING:
            self.advance(_E.CANCEL_REQUESTED)
        if self.cancel is None:
            # The first request is the one acted on (C6). The message says
            # why: a supervisor never waits on the store while handling
            # control. Requests of one process reach it in record order; a
            # cancel recorded before it existed came with its creation, or
            # with run_started's commit (learn).
            self.cancel = msg
        depth = self._body.ctx.shield_depth
        if depth:
            self._log.record(_E.CANCEL_BUFFERED, reason=msg.reason, depth=depth)
        if self.cancel is msg:
            buffered = f"; buffered: the body is in a shield (depth {depth})" if depth else ""
            logger.info(
                "run %s: cancel requested (%s): %s%s",
                self._run_id,
                msg.source,
                msg.reason if msg.reason is not None else "no reason given",
                buffered,
                extra=run_extra(
                    self._run_id,
                    event_type=_E.CANCEL_BUFFERED if depth else _E.CANCEL_REQUESTED,
                    reason=msg.reason,
                ),
            )
        self.forward()
        self._host.cancel_came()

    def forward(self) -> None:
        """Pass the run's cancel to its active steps (C2) and child runs (C7).

        S1: steps and child runs started inside a shield of the body do not get it.
        """
        cancel = self.cancel
        assert cancel is not None
        for active in self._attempts.active.values():
            if not active.shielded and not active.cancel_sent:
                active.cancel_sent = tell(active.ref, cancel)
        # C3: an attempt waiting for a step slot is never started while cancelling.
        self._launcher.end_waiting(_E.STEP_CANCELLED, cancel.reason, shielded=False)
        for call_id, backoff in list(self._attempts.backoff.items()):
            if not backoff.shielded:
                # C3: a step waiting to be retried is never restarted while cancelling.
                del self._attempts.backoff[call_id]
                self._host.cancel_timer(("retry", call_id))
                self._host.on_call_recorded(
                    CallEnded(call_id=call_id, error=CancellationError(cancel.reason))
                )
        self._children.forward_cancel(cancel.reason)
        # C2 for a sleeping body (B1): its timer ends now, not when due.
        self._timers.on_run_cancel(cancel.reason)

    def learn(self, status: RunState, recorded: Callable[[], Cancel]) -> None:
        """The run's state when a group of ours committed (``status``): a
        cancel that came in since (a parent's, say) has moved us on, and
        stays; a cancel we did not hear of is ``recorded()``."""
        self.state = later_state(self.state, status)
        if self.state is RunState.CANCELLING and self.cancel is None:
            self.cancel = recorded()

    def recorded_cancel(self) -> Cancel:
        """The cancel the store holds for this run: read only when the run
        turns out to be cancelling as its start commits, never while a
        control message is being handled."""
        try:
            record = self._reader.find_run(self._run_id)
        except StoreError:
            record = None
        if record is None or record.cancel_requested_at is None:
            return Cancel(reason=None, source="unknown")
        return Cancel(reason=record.cancel_reason, source=record.cancel_source or "unknown")
