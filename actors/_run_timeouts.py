"""Run timeouts (B4): a run's deadline, armed on the Timers while the run is
hosted here; and the end of a cancel's grace (C8), which terminates the run.

A run started with a timeout records its deadline in its ``run_created``
(``persistence.RunDeadline``). Whoever hosts the run arms one timer for it
on the runtime's Timers actor (no thread of its own; a FakeClock drives it):
the Guardian arms it when it starts the run's supervisor (a new run, a
claimed PENDING run, a run resumed or re-hosted after its owner died) and
disarms it when that supervisor exits. The time left is measured once, at
arming, against the wall clock (``deadline`` minus the Timers' clock's wall
time, ``Clock.time()``; at least 0: a deadline that passed while nobody
hosted the run fires at once) and counted on the Timers' monotonic clock
from then, so a later jump of the wall clock does not move it.

When it fires, the run is cancelled as ``cancel(reason, grace=...)`` would
cancel it (C1, C8), with source ``timeout``: one ``cancel_requested``
record, delivered to the run's supervisor once it commits, and the
``cancel_grace`` timer that terminates the run if it is still not terminal.
The record carries the grace, so another runtime that takes the run over
re-arms that grace from the request's time (``_control_inbox``), and does
not arm the deadline again (the run's cancel source says it timed out).

Invariants: at most one deadline timer per hosted run (token ``("timeout",
run_id)``); a run hosted nowhere has none armed (a PENDING run's deadline
fires when a runtime claims it); a timeout is an ordinary cancel in the
log, so replay needs nothing new.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pykka

from actors._arguments import optional_seconds
from actors._base import tell
from actors._clock import Clock
from actors._definitions import WorkflowDef
from actors._directory import Directory
from actors._messages import (
    Cancel,
    CancelTimer,
    ControlAppend,
    GraceExpired,
    RunTimedOut,
    ScheduleTimer,
    StartRun,
    Terminate,
    TerminateTree,
)
from actors._replies import Reply
from persistence import TIMEOUT_SOURCE, cancel_request, deadline_data


def start_deadline(
    workflow: WorkflowDef[..., Any] | None, timeout: object, *, now: float | None = None
) -> dict[str, Any]:
    """The ``run_created`` fields of a start's timeout (B4): ``timeout``
    (``start(timeout=...)``) if given, else the workflow's own
    (``@workflow(timeout=...)``; None where only its name is known), with
    the workflow's ``cancel_grace``; the deadline counts from ``now``
    (default: the wall clock, now). Empty without a timeout.

    Raises:
        InvalidArgumentType: ``timeout`` is not a number (a str, a bool).
        InvalidArgument: it is not a positive finite number of seconds.
    """
    seconds = optional_seconds("start(timeout=...)", timeout, positive=True)
    grace = None
    if workflow is not None:
        if seconds is None:
            seconds = workflow.timeout
        grace = workflow.cancel_grace
    return deadline_data(seconds, grace, now=time.time() if now is None else now)


def _token(run_id: str) -> tuple[str, str]:
    return ("timeout", run_id)


class RunTimeouts:
    """The deadlines of the runs one Guardian hosts (see the module docstring).

    Args:
        owner: the runtime's id (the origin of the cancels it writes).
        timers: the Timers actor; guardian: the Guardian (the timers' target);
        journal: the Journal, as a function (the Guardian's may be restarted).
        directory: the runs hosted here, to deliver the cancel to.
        clock: the Timers' clock; its wall clock (``Clock.time()``)
            measures what is left of a deadline.
    """

    def __init__(
        self,
        *,
        owner: str,
        timers: pykka.ActorRef[Any],
        guardian: pykka.ActorRef[Any],
        journal: Callable[[], pykka.ActorRef[Any]],
        directory: Directory,
        clock: Clock,
    ) -> None:
        self._owner = owner
        self._timers = timers
        self._guardian = guardian
        self._journal = journal
        self._directory = directory
        self._clock = clock

    def arm(self, msg: StartRun) -> None:
        """The run ``msg`` hosts has a deadline: fire it when due (at once if passed).

        Not armed again for a run whose cancel came from its timeout: that
        cancel is recorded, and its grace re-armed with it (C8, D3).
        """
        deadline = msg.deadline
        if deadline is None or msg.cancel_source == TIMEOUT_SOURCE:
            return
        left = max(0.0, deadline.left(self._clock.time()))
        tell(
            self._timers,
            ScheduleTimer(
                token=_token(msg.run_id),
                due=self._clock.monotonic() + left,
                target=self._guardian,
                message=RunTimedOut(
                    run_id=msg.run_id, reason=deadline.reason, grace=deadline.cancel_grace
                ),
            ),
        )

    def disarm(self, run_id: str) -> None:
        """The run's supervisor exited: its deadline is no longer ours to keep."""
        tell(self._timers, CancelTimer(token=_token(run_id)))

    def fire(self, msg: RunTimedOut) -> None:
        """B4: cancel the run with source ``timeout``; terminate it after the grace (C8).

        The store refuses the cancel of a run that ended meanwhile (C6), and
        then the grace's terminate too. The grace is armed first, so that it
        counts from before the cancel can be seen in the log.
        """
        if msg.grace is not None:
            tell(
                self._timers,
                ScheduleTimer(
                    token=("grace", msg.run_id),
                    due=self._clock.monotonic() + msg.grace,
                    target=self._guardian,
                    message=GraceExpired(run_id=msg.run_id, reason=msg.reason),
                ),
            )
        event = cancel_request(
            msg.run_id, msg.reason, source=TIMEOUT_SOURCE, origin=self._owner, grace=msg.grace
        )
        ref = self._directory.get(msg.run_id)
        cancel = Cancel(reason=msg.reason, source=TIMEOUT_SOURCE)
        deliver = ((ref, cancel),) if ref is not None else ()
        tell(self._journal(), ControlAppend(events=(event,), deliver=deliver))

    def grace_expired(self, msg: GraceExpired) -> None:
        """C8: a cancel's grace ended (a timeout's or any other cancel's):
        terminate the run, unless it finished meanwhile (the store refuses
        then). The one path of ``Runtime.terminate``: the tree in one
        transaction (T4), and the supervisor told, so its running steps are
        abandoned (T3)."""
        ref = self._directory.get(msg.run_id)
        reason = f"cancel grace expired ({msg.reason})" if msg.reason else "cancel grace expired"
        deliver = ((ref, Terminate(reason=reason)),) if ref is not None else ()
        terminate = TerminateTree(
            run_id=msg.run_id,
            reason=reason,
            source="grace",
            origin=self._owner,
            reply=Reply(),
            deliver=deliver,
        )
        tell(self._journal(), terminate)
