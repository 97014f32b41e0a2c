"""StepActor: one per step attempt; runs the user's step code in its own thread.

The step's code runs inside the actor (from ``started``), so the actor's
mailbox stays reachable from that code: ``ctx.check_cancellation()`` takes
whatever control messages wait there. The result, or the failure, goes back
to the RunSupervisor in the actor's exit report (``ExitReason.outcome``), the
one message every actor sends its supervisor when it stops; a supervisor that
has abandoned this attempt (terminate) simply no longer listens.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pykka

from actors._base import Census, ProctorActor
from actors._context import BeatBox, StepContext, reset_current, set_current
from actors._definitions import StepDef
from actors._errors import CancellationError, Terminated, describe
from actors._fencing import Fenced, LeaseGuard
from actors._messages import (
    Cancel,
    ExitKind,
    ExitReason,
    Raised,
    Returned,
    StepCancelled,
    StepOutcome,
    Unwound,
)
from persistence import dumps

#: How a step attempt's actor ends, by the step's outcome.
_EXIT_KIND: dict[type, ExitKind] = {
    Returned: ExitKind.NORMAL,
    Raised: ExitKind.FAILED,
    StepCancelled: ExitKind.CANCELLED,
    Unwound: ExitKind.TERMINATED,
}


class StepActor(ProctorActor):
    pooled = True

    def __init__(
        self,
        *,
        census: Census,
        parent: pykka.ActorRef[Any],
        journal: pykka.ActorRef[Any],
        run_id: str,
        call: int,
        attempt: int,
        step: StepDef[..., Any],
        args: tuple[Any, ...],
        kwargs: tuple[tuple[str, Any], ...],
        cancel: Cancel | None = None,
        last_heartbeat_details: Any = None,
        clock: Callable[[], float] | None = None,
        beats: BeatBox | None = None,
        guard: LeaseGuard | None = None,
    ) -> None:
        name = f"StepActor {step.name}#{call}.{attempt}"
        super().__init__(parent=parent, name=name, census=census)
        self._journal = journal
        self._run_id = run_id
        self._call = call
        self._attempt = attempt
        self._step = step
        self._args = args
        self._kwargs = dict(kwargs)
        #: A cancel the run had before this attempt started: its first check sees it.
        self._cancel = cancel
        self._last_heartbeat_details = last_heartbeat_details
        self._clock = clock
        self._beats = beats
        self._guard = guard

    def started(self) -> None:
        ctx = StepContext(
            run_id=self._run_id,
            step_name=self._step.name,
            call=self._call,
            attempt=self._attempt,
            inbox=self.inbox,
            journal=self._journal,
            cancel=self._cancel,
            last_heartbeat_details=self._last_heartbeat_details,
            beats=self._beats,
            clock=self._clock,
            guard=self._guard,
        )
        outcome = self._run(ctx)
        kind = _EXIT_KIND[type(outcome)]
        self.exit(ExitReason(kind=kind, error=getattr(outcome, "exception", None), outcome=outcome))

    def handle(self, message: Any) -> None:
        # Control messages that arrive after the code returned need no answer.
        return None

    def _run(self, ctx: StepContext) -> StepOutcome:
        token = set_current(ctx)
        try:
            # A Terminate that arrived before the code started: do not start it.
            ctx.check_terminated()
            if self._step.is_async:
                value = _run_async(self._step.fn(*self._args, **self._kwargs))
            else:
                value = self._step.fn(*self._args, **self._kwargs)
            return Returned(result_json=dumps(value, what=f"result of step {self._step.name!r}"))
        except Fenced as exc:
            return Unwound(fenced=exc.reason)
        except Terminated:
            return Unwound()
        except CancellationError as exc:
            return StepCancelled(reason=exc.reason)
        except BaseException as exc:
            # SystemExit, KeyboardInterrupt and friends fail this step only:
            # they are data here, never a reason to stop other actors.
            return Raised(error=describe(exc), exception=exc)
        finally:
            reset_current(token)


def _run_async(coro: Any) -> Any:
    """Run an async step on a private event loop in this step's thread."""
    loop = asyncio.new_event_loop()
    try:
        return loop.run_until_complete(coro)
    finally:
        loop.run_until_complete(loop.shutdown_asyncgens())
        loop.close()
