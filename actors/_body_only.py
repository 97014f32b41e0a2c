"""What only a workflow body may call or await, and the one check of it.

Every body-only primitive (``sleep``, ``sleep_until``, ``wait_for_signal``,
``start_step``, ``start_child``, ``gather``, a step or child workflow call)
calls :func:`body_only` first, so that called in a step or outside any run
it raises the same clear :class:`ProctorError` at the call, instead of
returning a command object that fails later, far away (asyncio's "Task got
bad yield"). :data:`BODY_AWAITABLES` is the one list of what a body may
await, quoted by every message that names it.

A handle (``StepHandle``, ``ChildRun``) is bound to the run whose body made
it: :func:`own_run` refuses it anywhere else (another run's body, where its
call id would name another call; a step; no run at all), as Temporal's
handles belong to their workflow and Trio's cancel scope to its task.

Invariants: ``body_only`` and ``own_run`` return only the calling run's own
``WorkflowContext``; they never record or change anything.
"""

from __future__ import annotations

from typing import Final

from actors._context import StepContext, WorkflowContext, _current
from persistence import ProctorError

#: Everything a workflow body may await: the one list the messages quote.
BODY_AWAITABLES: Final = (
    "steps, child workflows, proctor gather() of them, sleep(), sleep_until(),"
    " wait_for_signal(), start_child(), and the StepHandle and ChildRun handles"
    " of its own run"
)


def body_only(what: str) -> WorkflowContext:
    """The calling workflow body's context, for the body-only primitive ``what``.

    Raises:
        ProctorError: called in a step (it is ordinary code), or outside any
            run's body (a test, a thread, another event loop).
    """
    ctx = _current.get()
    if isinstance(ctx, StepContext):
        raise ProctorError(
            f"{what} was called in a step; it is for workflow bodies only (a step "
            "is ordinary code: use time.sleep or asyncio.sleep there)"
        )
    if not isinstance(ctx, WorkflowContext):
        raise ProctorError(f"{what} was called outside a workflow body; await it in a @workflow")
    return ctx


def own_run(what: str, owner: str, call_id: int) -> WorkflowContext:
    """The calling body's context, if it is the body of run ``owner``, which
    made the handle of call ``call_id`` that ``what`` uses.

    Raises:
        ProctorError: called anywhere else; the message names the handle's run.
    """
    ctx = _current.get()
    if isinstance(ctx, WorkflowContext) and ctx.run_id == owner:
        return ctx
    if isinstance(ctx, WorkflowContext):
        where = f"in the body of run {ctx.run_id!r}"
    elif isinstance(ctx, StepContext):
        where = f"in a step of run {ctx.run_id!r}"
    else:
        where = "outside any workflow body"
    raise ProctorError(
        f"{what}: the handle of call #{call_id} belongs to run {owner!r} and can only be"
        f" used in that run's body; it was used {where}"
    )
