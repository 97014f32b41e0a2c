"""Cancel scopes (B3): ``CancelScope``, ``move_on_after``, ``fail_after`` in a body.

The user's side of a scope: the context manager, its checks of its
arguments (made before anything is recorded) and what it says of itself.
What entering, cancelling and exiting a scope does to the run is the run
supervisor's business (``_scopes``), reached through the body's context.

Invariants: a scope object is entered at most once, only inside a workflow
body; its deadline is fixed when it is entered (a durable timer: replay
reads it back from the log, never from the clock).
"""

from __future__ import annotations

import datetime as dt
from types import TracebackType
from typing import Any

from actors._arguments import seconds as checked_seconds
from actors._context import StepContext, WorkflowContext, _current
from actors._errors import DeadlineExceeded
from persistence import InvalidArgument, InvalidArgumentType, ProctorError, check_reason, safe_repr

#: The run supervisor's ``_scopes.Scopes`` and its ``ScopeState`` (typed
#: loosely: this module sits below the supervisor's collaborators).
Scopes = Any
ScopeState = Any


def _scopes(what: str) -> Scopes:
    ctx = _current.get()
    if isinstance(ctx, StepContext):
        raise ProctorError(
            f"{what} is for workflow bodies; in a step use shield() (a step's cancel "
            "is met at its own checks)"
        )
    if not isinstance(ctx, WorkflowContext) or ctx.scopes is None:
        raise ProctorError(f"{what} was used outside a workflow body; use it inside a @workflow")
    return ctx.scopes


def _until(what: str, when: object) -> float:
    if not isinstance(when, dt.datetime):
        raise InvalidArgumentType(f"{what} needs a timezone-aware datetime, got {safe_repr(when)}")
    if when.tzinfo is None or when.utcoffset() is None:
        raise InvalidArgument(
            f"{what} needs a timezone-aware datetime, got the naive {when!r}; give it a tzinfo"
        )
    return when.timestamp()


class CancelScope:
    """A block of a workflow body that can be cancelled on its own (B3, Trio's model).

    Use as ``with CancelScope() as scope:`` or ``async with``. ``scope.cancel()``
    (or the scope's deadline) cancels what was started inside the block: every
    checkpoint inside it (the await of a step, child run, sleep, handle;
    ``ctx.check_cancellation()``) raises ``CancellationError`` until the block
    exits, level-triggered (C3); its steps and child runs are sent the cancel
    (a step that never checks runs to its end, its result recorded, and the
    await raises then: C4). The scope's exit catches its own
    ``CancellationError`` and only its own; the run stays RUNNING and goes on
    after the block. Nothing outside the scope is cancelled.

    ``shield=True`` blocks cancels from outside the scope (the run's own, and
    outer scopes'), buffering them until the block ends, as ``shield()``
    does (S1-S4). Sources: ``trio.CancelScope``; Temporal TypeScript
    ``CancellationScope`` (``nonCancellable`` is ``shield=True``).

    Attributes:
        cancel_called: ``cancel()`` was called, or the deadline fired. A
            deadline fires at a checkpoint (or while the body waits), and is
            recorded there: a block with no checkpoint never sees its
            deadline fire, so ``cancel_called`` stays False (Trio reads the
            clock instead; Proctor's answer must be the log's, for replay).
        cancelled_caught: the block ended by this scope's cancel, caught at exit.
        deadline: read-only; UTC epoch seconds of the deadline once entered
            (None without one). Unlike Trio's, it cannot be moved.
        shield: whether the scope is a shield (read-only once entered).
    """

    __slots__ = ("_fail", "_scopes", "_seconds", "_state", "_until", "shield")

    def __init__(self, *, shield: bool = False) -> None:
        if not isinstance(shield, bool):
            raise InvalidArgumentType(f"CancelScope(shield=...) must be a bool, got {shield!r}")
        self.shield = shield
        self._seconds: float | None = None
        self._until: float | None = None
        self._fail = False
        self._scopes: Scopes | None = None
        self._state: ScopeState | None = None

    @property
    def cancel_called(self) -> bool:
        return self._state is not None and self._state.cancel_called

    @property
    def cancelled_caught(self) -> bool:
        return self._state is not None and self._state.cancelled_caught

    @property
    def deadline(self) -> float | None:
        if self._state is not None:
            due: float | None = self._state.due_at
            return due
        return self._until

    def cancel(self, reason: str | None = None) -> None:
        """Cancel the scope (idempotent; the first cancel's reason stands).

        Raises:
            InvalidArgumentType: ``reason`` is not a str or None.
            ProctorError: the scope was never entered.
        """
        if reason is not None and not isinstance(reason, str):
            raise InvalidArgumentType(
                f"scope.cancel(reason=...) must be a str or None; got {reason!r}"
            )
        check_reason(reason, "scope.cancel(reason=...)")
        if self._scopes is None or self._state is None:
            raise ProctorError("cancel() of a scope that was never entered; enter it with `with`")
        self._scopes.cancel(self._state, reason)

    def __enter__(self) -> CancelScope:
        if self._scopes is not None:
            raise ProctorError("a CancelScope cannot be entered twice; make a new one")
        scopes = _scopes(type(self).__name__)
        ctx = _current.get()
        assert isinstance(ctx, WorkflowContext)
        state = scopes.enter(shield=self.shield, seconds=self._seconds, until=self._until)
        self._scopes, self._state = scopes, state
        if self.shield:
            ctx._shield_enter()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool:
        assert self._scopes is not None
        assert self._state is not None
        caught: bool = self._scopes.exit(self._state, exc)
        if self.shield:
            ctx = _current.get()
            assert isinstance(ctx, WorkflowContext)
            ctx._shield_exit()
        if caught and self._fail and self._state.cause == "deadline":
            raise DeadlineExceeded(
                "the deadline of fail_after/fail_at passed before its block ended"
            ) from exc
        return caught

    async def __aenter__(self) -> CancelScope:
        return self.__enter__()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool:
        return self.__exit__(exc_type, exc, tb)

    def __repr__(self) -> str:
        state = self._state
        ident = "not entered" if state is None else f"scope {state.id}"
        return f"<CancelScope {ident} shield={self.shield} cancel_called={self.cancel_called}>"


def _with_deadline(
    seconds: float | None, until: float | None, *, shield: bool, fail: bool
) -> CancelScope:
    scope = CancelScope(shield=shield)
    scope._seconds, scope._until, scope._fail = seconds, until, fail
    return scope


def move_on_after(seconds: float, *, shield: bool = False) -> CancelScope:
    """A scope cancelled ``seconds`` from when it is entered; the block is left quietly.

    The deadline is a durable timer (``timer_started``); its firing is
    recorded (``scope_cancelled`` with cause ``deadline``), so replay leaves
    the block at the same point. ``cancelled_caught`` says whether it fired.
    Source: ``trio.move_on_after``; Temporal TS ``CancellationScope.withTimeout``.

    Raises:
        InvalidArgumentType: ``seconds`` is not a number.
        InvalidArgument: NaN, infinite or negative.
    """
    return _with_deadline(
        checked_seconds("move_on_after(seconds)", seconds), None, shield=shield, fail=False
    )


def move_on_at(when: dt.datetime, *, shield: bool = False) -> CancelScope:
    """Like :func:`move_on_after`, with an instant (a timezone-aware datetime)."""
    return _with_deadline(None, _until("move_on_at(when)", when), shield=shield, fail=False)


def fail_after(seconds: float, *, shield: bool = False) -> CancelScope:
    """Like :func:`move_on_after`, but the exit raises :class:`DeadlineExceeded`
    when the deadline cancelled the block (``scope.cancel()`` leaves quietly,
    as AnyIO's ``fail_after`` does). Source: ``trio.fail_after``.

    Raises:
        InvalidArgumentType, InvalidArgument: as :func:`move_on_after`.
    """
    return _with_deadline(
        checked_seconds("fail_after(seconds)", seconds), None, shield=shield, fail=True
    )


def fail_at(when: dt.datetime, *, shield: bool = False) -> CancelScope:
    """Like :func:`fail_after`, with an instant (a timezone-aware datetime)."""
    return _with_deadline(None, _until("fail_at(when)", when), shield=shield, fail=True)
