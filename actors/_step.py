"""StepActor: one per step attempt; runs the user's step code in its own thread.

The step's code runs inside the actor (from ``started``), so the actor's
mailbox stays reachable from that code: ``ctx.check_cancellation()`` takes
whatever control messages wait there. The result, or the failure, goes back
to the RunSupervisor in the actor's exit report (``ExitReason.outcome``), the
one message every actor sends its supervisor when it stops; a supervisor that
has abandoned this attempt (terminate) simply no longer listens.

An attempt holds one of its runtime's step slots (``StepSlots``) from its
launch until its thread leaves the user's code, abandoned or not; it gives
it back itself, so the bound counts threads really running step code.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any, Final

import pykka

from actors._base import ProctorActor
from actors._census import Census
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
from actors._slots import Ticket
from persistence import DEFAULT_MAX_PAYLOAD_BYTES, MAX_VALUE_DEPTH, dumps

#: How a step attempt's actor ends, by the step's outcome.
#: A step attempt's actor is named ``StepActor run/step#call.attempt`` (the
#: census's names of live actors: a drain reports them, ``_closing``).
NAME_PREFIX: Final = "StepActor "

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
        max_payload_bytes: int = DEFAULT_MAX_PAYLOAD_BYTES,
        ticket: Ticket | None = None,
        guard: LeaseGuard | None = None,
    ) -> None:
        name = f"{NAME_PREFIX}{run_id}/{step.name}#{call}.{attempt}"
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
        self._max_payload_bytes = max_payload_bytes
        #: The step slot this attempt holds (StepSlots): given back when its
        #: thread leaves the user's code, or if it is never launched.
        self._ticket = ticket
        self._guard = guard

    def discard(self) -> None:
        super().discard()
        self._release_slot()

    def stopping(self) -> None:
        self._release_slot()

    def _release_slot(self) -> None:
        if self._ticket is not None:
            self._ticket.release()

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
            max_payload_bytes=self._max_payload_bytes,
            guard=self._guard,
        )
        outcome = self._run(ctx)
        # The latest heartbeat the throttle held back reaches the store before
        # the attempt's end does (H1: none is lost).
        ctx.flush_heartbeat()
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
            # D4: a result that is not JSON or over the limit fails the step
            # (PayloadTooLarge is a NotSerializable: never retried).
            what = f"result of step {self._step.name!r}"
            return Returned(
                result_json=dumps(
                    value, what=what, max_depth=MAX_VALUE_DEPTH, limit=self._max_payload_bytes
                )
            )
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
