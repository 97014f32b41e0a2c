"""Step handles: ``start_step(call)`` in a workflow body, and what it returns (B2).

``handle = start_step(charge(order))`` records and starts the step and
returns at once, without suspending the body (Temporal's
``workflow.start_activity``, which returns an ``ActivityHandle``).
``await handle`` later is a checkpoint and gives the step's result, or
raises what awaiting the step directly would (``StepFailed``, ...).
``handle.cancel(reason, mode)`` cancels that one step (``CancellationType``).

A handle can be awaited many times and gives the same outcome each time:
Temporal's handle is an asyncio Task, awaitable again. Each await is a
checkpoint of its own (C3).

What is done with the call lives in the run supervisor's ``HandleDesk``
(``_handle_desk``), reached through the body's context: these objects hold
only the call id, so a body replayed after a crash builds the same ones.

Invariant: a handle is made only by ``start_step`` inside a workflow body,
for a call that is recorded (or replayed) under the handle's call id.
"""

from __future__ import annotations

from collections.abc import Generator
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from actors._body_only import body_only, own_run
from actors._cancellation_type import CancellationType
from actors._child_handles import StartChild
from actors._context import call_handles, cancel_call
from actors._definitions import ChildCall, StepCall
from persistence import InvalidArgumentType, safe_repr

R = TypeVar("R")


@dataclass(frozen=True, slots=True, kw_only=True)
class JoinStep:
    """``await handle``: what the body yields to its supervisor."""

    call_id: int


class StepHandle(Generic[R]):
    """A step started with :func:`start_step`: await it, or cancel it.

    A handle belongs to the run whose body started it: used in another
    run's body (say, kept in a global), in a step or outside any body, its
    ``cancel()`` and ``await`` raise ``ProctorError`` naming its run.

    Attributes:
        call_id: the call's id in the run's log (``runs logs`` shows it).
        step_name: the step's name.
        run_id: the id of the run whose body started it.
    """

    __slots__ = ("call_id", "run_id", "step_name")

    def __init__(self, call_id: int, step_name: str, run_id: str) -> None:
        self.call_id = call_id
        self.step_name = step_name
        self.run_id = run_id

    def cancel(self, reason: str | None = None, mode: CancellationType | None = None) -> bool:
        """Cancel this step only; the run and its other calls go on (B2).

        ``mode`` (default: the step's ``@step(cancellation=...)``, itself
        ``TRY_CANCEL`` by default, as Temporal's) says what happens (see
        :class:`CancellationType`). Recorded (``call_cancel_requested``) and
        replayed exactly: the await gives the same outcome after a restart.

        Returns:
            True if the cancel took effect; False if the step had already
            ended (its outcome stands) or this handle was cancelled before:
            both change nothing.

        Raises:
            InvalidArgumentType: ``mode`` is not a CancellationType, or
                ``reason`` is not a str (or None).
            ProctorError: called outside the workflow body that started it.
        """
        own_run("StepHandle.cancel()", self.run_id, self.call_id)
        return cancel_call(self.call_id, reason, mode, "StepHandle.cancel")

    def __await__(self) -> Generator[Any, Any, R]:
        own_run("await StepHandle", self.run_id, self.call_id)
        result: R = yield JoinStep(call_id=self.call_id)
        return result

    def __repr__(self) -> str:
        return f"<StepHandle {self.step_name} #{self.call_id} of run {self.run_id}>"


def start_step(call: StepCall[R], /) -> StepHandle[R]:
    """In a workflow body: record and start a step, and return its handle at once.

    ``handle = start_step(charge(order))``; several may run at once and be
    awaited in any order. Not a suspension point: the body goes on at once.
    As a step is never started while the run is cancelling outside a
    shield (C3), ``start_step`` then raises ``CancellationError``, as
    ``ctx.check_cancellation()`` would. A step whose handle is never awaited
    and is still running when the body ends is abandoned with the run
    (``step_abandoned``; its next check raises, its result is discarded), as
    Temporal's activities are when their workflow completes.

    Raises:
        InvalidArgumentType: ``call`` is not a step call (``charge(order)``),
            e.g. the step itself, or a child workflow call (use
            ``start_child``).
        ProctorError: called in a step or outside a workflow body.
    """
    body_only("start_step()")
    handles = call_handles("start_step()")
    if not isinstance(call, StepCall):
        hint = ""
        if isinstance(call, ChildCall | StartChild):
            hint = "; to start a child run without waiting, use start_child()"
        elif callable(call):
            hint = "; call the step with its arguments: start_step(charge(order))"
        raise InvalidArgumentType(
            f"start_step() takes a step call such as charge(order), got {safe_repr(call)}{hint}"
        )
    handle: StepHandle[R] = handles.start_step(call)
    return handle
