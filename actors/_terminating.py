"""Terminating: a run stopped from outside, its body given no say (T1-T4).

A terminate is recorded (``run_terminated``) before its supervisor hears of
it (T1). From then on the body gets no CancellationError, no shield and no
further step (T2, the lifecycle's ``TERMINATED``); running attempts are
abandoned, a busy one unwinding at its next check (T3); every child run is
terminated with it, whatever its shields, its records written before the
child hears of it (T4). The supervisor then exits.

A terminate whose message could not reach the supervisor (written before
it existed, or forwarded while the directory did not list it) is learnt
from the store's refusal of a later record instead (``ended_elsewhere``):
the run stops as if the Terminate had come, and exits with the end the
store holds, which its parent records.

Invariants: a run is terminated once (a second Terminate is ignored); the
run's state moves to TERMINATED unless the store already holds another
terminal state; the store is read only on the refusal path, never on the
Terminate message's.
"""

from __future__ import annotations

from typing import Protocol

from actors._cancelling import Cancelling
from actors._children import Children
from actors._launch import Launcher
from actors._lifecycle import Lifecycle, PhaseEvent
from actors._log_records import RunOutcome
from actors._messages import ExitKind, ExitReason, Terminate
from actors._outcomes import recorded_exit
from persistence import EventType, Store, StoreError

_E = EventType


class TerminateHost(Protocol):
    """What terminating needs of the run supervisor."""

    def exit(self, reason: ExitReason) -> None:
        """Stop after the current message, reporting ``reason``."""


class Termination:
    """Terminates one run (see the module docstring)."""

    def __init__(
        self,
        host: TerminateHost,
        *,
        outcome: RunOutcome,
        run_id: str,
        reader: Store,
        life: Lifecycle,
        run: Cancelling,
        launcher: Launcher,
        children: Children,
    ) -> None:
        self._host = host
        self._outcome = outcome
        self._run_id = run_id
        self._reader = reader
        self._life = life
        self._run = run
        self._launcher = launcher
        self._children = children

    def on_terminate(self, msg: Terminate, recorded: ExitReason | None = None) -> None:
        """Stop the run now; exit with ``recorded`` (the store's end) or as terminated."""
        if self._life.terminated:
            return
        # T2: from here the body gets no say: no CancellationError, no shield,
        # no further step. The record (run_terminated) is already durable (T1).
        self._life.advance(PhaseEvent.TERMINATE)
        if not self._run.state.is_terminal:
            self._run.advance(_E.RUN_TERMINATED)
        self._launcher.abandon_running(msg.reason)
        self._launcher.end_waiting(_E.STEP_ABANDONED, msg.reason, shielded=True)
        # T4: the child's records go to the Journal before the child hears of
        # it, so whatever the child writes next is ordered after them (fenced).
        self._children.terminate_all(msg.reason)
        reason = recorded or ExitReason(kind=ExitKind.TERMINATED, data={"reason": msg.reason})
        self._outcome.ended(reason.kind, reason.data)  # O3: the end is durable (T1)
        self._host.exit(reason)

    def ended_elsewhere(self) -> None:
        """The store refused our records because the run already ended.

        A terminate whose message could not reach this supervisor is learnt
        here instead (see the module docstring).
        """
        try:
            record = self._reader.find_run(self._run_id)
        except StoreError:
            record = None
        if record is None or not record.status.is_terminal:
            self.on_terminate(Terminate(reason=None))
            return
        self.on_terminate(Terminate(reason=record.terminate_reason), recorded_exit(record))
