"""What only a workflow body may call or await, and the one check of it.

Every body-only primitive (``sleep``, ``sleep_until``, ``wait_for_signal``,
``start_step``, ``start_child``, ``gather``, a step or child workflow call)
calls :func:`body_only` first, so that called in a step or outside any run
it raises the same clear :class:`ProctorError` at the call, instead of
returning a command object that fails later, far away (asyncio's "Task got
bad yield"). :data:`BODY_AWAITABLES` is the one list of what a body may
await, quoted by every message that names it.

Invariants: ``body_only`` returns only the calling run's own
``WorkflowContext``; it never records or changes anything.
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
