"""Acks: the Journal's reply to a group of the run's records, and what it means.

Every effect waits for its record (D1): a group goes to the Journal with a
tag (``_messages``) saying what to do once it is durable, and the reply
(``Journaled``) comes back with the tag and the store's outcome of each
record. In the order they are tested:

- the group failed to commit (``error``): the store cannot take the run's
  records; it drains (``_draining``);
- a re-execution refused because the run turned CANCELLING meanwhile (C3):
  its calls end as the cancel would have ended them;
- a refusal neither fencing nor the run's end explains is a fault: the run
  fails, visibly, rather than wait for an effect that will never come;
- the run's creation refused: nothing of it may go on;
- refused because the run already ended: a terminate learnt late
  (``_terminating``);
- ``RunFinished``: the run's end is recorded (``_ending``);
- refused as fenced: the runtime no longer owns the run (``_draining``);
- ``Resumed``: the reply to a takeover's claim (``_resuming``);
- otherwise, accepted and not terminated: ``Started`` begins the body;
  ``StepsScheduled`` / ``ChildStartedNoWait`` start what was recorded
  (nothing new while draining: the log has the starts, resume runs them);
  ``RetryScheduled`` sets the back-off timer; ``CallEnded`` resumes the
  await (``_call_ends``).

Invariants: a step slot taken for attempts that will never start is given
back whatever the reply; nothing a refused or failed group announced takes
effect; a terminated run acts on no reply but a store failure, its end, a
fencing and a takeover's claim.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any, Protocol

from actors._attempts import Scheduled
from actors._base import logger
from actors._body import Body
from actors._call_ends import CallEnds
from actors._cancelling import Cancelling
from actors._draining import Drain
from actors._ending import Ending
from actors._errors import CancellationError
from actors._launch import Launcher
from actors._lifecycle import Lifecycle, PhaseEvent
from actors._log_records import run_extra
from actors._messages import (
    CallEnded,
    ChildStartedNoWait,
    Created,
    ExitKind,
    ExitReason,
    Journaled,
    Resumed,
    RetryDue,
    RetryScheduled,
    RunFinished,
    Started,
    StepsScheduled,
)
from actors._resuming import Resumption
from actors._terminating import Termination
from persistence import Appended, ProctorError, Refused, RunState


def refused_as_ended(msg: Journaled) -> bool:
    """Whether the store refused the group because the run is terminal (not fenced)."""
    return any(
        isinstance(o, Refused) and not o.fenced and o.status is not None and o.status.is_terminal
        for o in msg.outcomes
    )


def refusal_fault(run_id: str, msg: Journaled) -> ProctorError | None:
    """A refusal of a run that exists, neither fencing nor its end explains
    (the store cannot take a record of ours: a bug), as the run's error."""
    refused = next((o for o in msg.outcomes if isinstance(o, Refused)), None)
    if (
        refused is None
        or refused.fenced
        or refused.status is None  # no such run: a creation the store refused
        or refused.status.is_terminal
        or isinstance(msg.tag, Resumed)
    ):
        return None
    return ProctorError(f"the store refused a record of run {run_id}: {refused.reason}")


class AckHost(Protocol):
    """What acting on the Journal's replies needs of the run supervisor."""

    def exit(self, reason: ExitReason) -> None:
        """Stop after the current message, reporting ``reason``."""

    def begin_body(self, begin: PhaseEvent) -> None: ...

    def drive(self, value: Any = None, error: BaseException | None = None) -> None:
        """Resume the body."""

    def spawn(self, calls: tuple[Scheduled, ...]) -> None:
        """Start calls whose starts are recorded."""

    def schedule_timer(self, key: tuple[str, int], due: float, message: Any) -> None: ...


class JournalReplies:
    """Acts on the Journal's replies to one run's groups (see the module docstring)."""

    def __init__(
        self,
        host: AckHost,
        *,
        run_id: str,
        life: Lifecycle,
        run: Cancelling,
        body: Body,
        launcher: Launcher,
        ends: CallEnds,
        ending: Ending,
        terminate: Termination,
        resuming: Resumption,
        drain: Drain,
    ) -> None:
        self._host = host
        self._run_id = run_id
        self._life = life
        self._run = run
        self._body = body
        self._launcher = launcher
        self._ends = ends
        self._ending = ending
        self._terminate = terminate
        self._resuming = resuming
        self._drain = drain

    def on_journaled(self, msg: Journaled) -> None:
        creating = isinstance(msg.tag, Created)
        if isinstance(msg.tag, Created):
            msg = replace(msg, tag=msg.tag.then)
        if isinstance(msg.tag, StepsScheduled) and not (msg.accepted and not self._life.terminated):
            # Never to be started: their step slots go to the next attempts.
            for s in msg.tag.steps:
                if s.ticket is not None:
                    s.ticket.release()
        if msg.error is not None:
            self._drain.on_store_failure(msg)
            return
        tag = msg.tag
        if isinstance(tag, StepsScheduled) and self._cancelled_rerun(tag, msg):
            return
        if not msg.accepted and not self._life.terminated and self._failed_by_refusal(msg):
            return
        if creating and not msg.accepted:  # the run was not created: nothing of it may go on
            self._body.close()
            self._host.exit(ExitReason(kind=ExitKind.TERMINATED))
            return
        if refused_as_ended(msg):
            self._terminate.ended_elsewhere()
        elif isinstance(tag, RunFinished):
            self._ending.on_recorded(tag, msg.accepted)
        elif any(isinstance(o, Refused) and o.fenced for o in msg.outcomes):
            refused = next(o for o in msg.outcomes if isinstance(o, Refused) and o.fenced)
            self._drain.lost_ownership(refused.reason)
        elif isinstance(tag, Resumed):
            self._resuming.on_claimed(tag.group, msg)
        elif not msg.accepted or self._life.terminated:
            return
        elif isinstance(tag, Started):
            started = msg.outcomes[0]
            assert isinstance(started, Appended)
            # The run's state when run_started committed: a cancel that came
            # in since (a parent's, say) has moved us on, and stays; one from
            # before this supervisor existed is read from the store, here,
            # not on the control path.
            self._run.learn(started.status, self._run.recorded_cancel)
            self._host.begin_body(PhaseEvent.BEGIN)
        elif self._life.draining and isinstance(
            tag, StepsScheduled | ChildStartedNoWait | RetryScheduled
        ):
            return  # nothing new starts; the log has the starts, resume runs them
        elif isinstance(tag, StepsScheduled):
            self._host.spawn(tag.steps)
        elif isinstance(tag, ChildStartedNoWait):
            self._host.spawn((tag.child,))
            self._host.drive(value=tag.handle)
        elif isinstance(tag, RetryScheduled):
            self._host.schedule_timer(
                ("retry", tag.call_id), tag.due, RetryDue(call=tag.call_id, attempt=tag.attempt)
            )
        elif isinstance(tag, CallEnded):
            self._ends.on_call_recorded(tag)

    def _cancelled_rerun(self, tag: StepsScheduled[Any], msg: Journaled) -> bool:
        """C3: the store refused to run again an attempt lost with its runtime,
        because the run turned CANCELLING after this supervisor read its log
        (a cancel from another process, right after the takeover). The run is
        cancelling, as the store says; each call of the group ends as if the
        cancel had been read with the log (``_awaits``: no new attempt, the
        await meets the cancel). Whether it was handled."""
        if self._life.terminated or not any(
            isinstance(o, Refused) and o.cancelling for o in msg.outcomes
        ):
            return False
        self._run.learn(RunState.CANCELLING, self._run.recorded_cancel)
        reason = self._run.cancel.reason if self._run.cancel is not None else None
        for s in tag.steps:
            self._ends.on_call_recorded(
                CallEnded(call_id=s.call_id, error=CancellationError(reason))
            )
        return True

    def _failed_by_refusal(self, msg: Journaled) -> bool:
        """Fail the run if the refusal is a fault (see ``refusal_fault``)."""
        error = refusal_fault(self._run_id, msg)
        if error is None:
            return False
        logger.error("%s", error, extra=run_extra(self._run_id))
        self._launcher.abandon_running("a record was refused")
        self._body.close()
        self._host.exit(ExitReason(kind=ExitKind.FAILED, error=error))
        return True
