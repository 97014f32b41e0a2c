"""Child-run handles: ``start_child(...)`` in a workflow body, and the
:class:`ChildRun` it gives (B2 for its ``cancel``).

``child = await start_child(other, x)`` records and starts a child run and
returns once that start is durable; ``await child`` later gives its result
(or raises what awaiting the child directly would); ``child.cancel(reason,
mode)`` cancels that child only. What is done with the call lives in the
run supervisor (``_awaits``, ``_handle_desk``); these objects hold only the
call id, so a body replayed after a crash builds the same ones.

Invariant: a ChildRun is made only by its supervisor, for a child call that
is recorded (or replayed) under its call id.
"""

from __future__ import annotations

from collections.abc import Generator
from dataclasses import dataclass
from typing import Any, Generic, Literal, TypeVar

from actors._body_only import body_only, own_run
from actors._cancellation_type import CancellationType
from actors._context import cancel_call
from actors._definitions import ChildCall, WorkflowDef

R = TypeVar("R")

#: What happens to a started child run still running when its parent ends.
ParentClosePolicy = Literal["terminate", "request_cancel", "abandon"]
PARENT_CLOSE_POLICIES: tuple[ParentClosePolicy, ...] = ("terminate", "request_cancel", "abandon")


@dataclass(frozen=True, slots=True, kw_only=True)
class StartChild(Generic[R]):
    """``await start_child(...)``: start a child run without waiting for it."""

    call: ChildCall[R]
    parent_close_policy: ParentClosePolicy

    def __await__(self) -> Generator[Any, Any, ChildRun[R]]:
        handle: ChildRun[R] = yield self
        return handle


@dataclass(frozen=True, slots=True)
class ChildRun(Generic[R]):
    """A child run started with :func:`start_child`; ``await`` it for its result.

    It belongs to the parent run whose body started it: used in another
    run's body, in a step or outside any body, its ``cancel()`` and
    ``await`` raise ``ProctorError`` naming that run.

    Attributes:
        run_id: the child run's id.
        call_id: the child call's id in the parent's log.
        parent_run_id: the id of the run whose body started it.
    """

    run_id: str
    call_id: int
    parent_run_id: str

    def __await__(self) -> Generator[Any, Any, R]:
        own_run("await ChildRun", self.parent_run_id, self.call_id)
        result: R = yield JoinChild(call_id=self.call_id)
        return result

    def cancel(self, reason: str | None = None, mode: CancellationType | None = None) -> bool:
        """Cancel this child run only; the parent and its other calls go on (B2).

        ``mode`` (default ``TRY_CANCEL``, as Temporal's): ``TRY_CANCEL`` and
        ``WAIT_CANCELLATION_COMPLETED`` send the child a cancel (source
        ``parent``; it flows down its tree, C7); ``ABANDON`` never tells it.
        ``await child`` then raises ``CancellationError`` at once, except
        after WAIT_CANCELLATION_COMPLETED: it gives what awaiting the child
        directly would (``RunCancelled``, or its result). Recorded
        (``call_cancel_requested``) and replayed exactly.

        Returns:
            True if the cancel took effect; False if the child had already
            ended or was cancelled through its handle before.

        Raises:
            InvalidArgumentType: ``mode`` is not a CancellationType, or
                ``reason`` is not a str (or None).
            ProctorError: called outside the workflow body that started it.
        """
        own_run("ChildRun.cancel()", self.parent_run_id, self.call_id)
        return cancel_call(self.call_id, reason, mode, "ChildRun.cancel")


@dataclass(frozen=True, slots=True, kw_only=True)
class JoinChild:
    call_id: int


def start_child(
    workflow: WorkflowDef[..., R],
    /,
    *args: Any,
    parent_close_policy: ParentClosePolicy = "terminate",
    **kwargs: Any,
) -> StartChild[R]:
    """In a workflow body: start a child run and go on without waiting for it.

    ``child = await start_child(other, x)`` returns at once with a
    :class:`ChildRun`; ``await child`` later gives its result (or raises what
    awaiting it directly would). If the parent run ends by itself (completes,
    fails, is cancelled) while the child still runs, ``parent_close_policy``
    decides: ``terminate`` (default) terminates it, ``request_cancel`` asks it
    to cancel, ``abandon`` lets it run on. A terminate of the parent always
    takes the whole tree (T4).

    Raises:
        ValueError: an unknown ``parent_close_policy``.
        ProctorError: called in a step or outside a workflow body.
    """
    if parent_close_policy not in PARENT_CLOSE_POLICIES:
        raise ValueError(
            f"parent_close_policy must be one of {', '.join(PARENT_CLOSE_POLICIES)}; "
            f"got {parent_close_policy!r}"
        )
    body_only("start_child()")
    return StartChild(call=workflow(*args, **kwargs), parent_close_policy=parent_close_policy)
