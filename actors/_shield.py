"""``shield()``: buffer cancellation for a block of code (S1-S4).

Unlike ``asyncio.shield`` (which protects an inner task but still cancels the
awaiting one) and like a Trio ``CancelScope(shield=True)``, the cancel is not
lost: it is kept, and takes effect at the first checkpoint after the
outermost shield exits. Terminate ignores shields (S3).
"""

from __future__ import annotations

from types import TracebackType
from typing import Any

from actors._context import Context, _current
from persistence import ProctorError


class shield:  # noqa: N801 - a context manager named like trio's
    """Use as ``with shield():`` or ``async with shield():`` in a step or body."""

    __slots__ = ("_ctx", "_scope")

    def __init__(self) -> None:
        self._ctx: Context | None = None
        #: In a body, a shield is a cancel scope with shield=True (B3, Trio's model).
        self._scope: Any = None

    def __enter__(self) -> shield:
        if self._ctx is not None:
            raise ProctorError("a shield() object cannot be entered twice; make a new one")
        ctx = _current.get()
        if ctx is None:
            raise ProctorError("shield() is used inside a step or a workflow body, not outside")
        self._ctx = ctx
        scopes = getattr(ctx, "scopes", None)
        if scopes is not None:
            # Recorded as shield_entered/shield_exited only, as before B3.
            self._scope = scopes.enter(shield=True, legacy=True)
        self._ctx._shield_enter()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        assert self._ctx is not None
        if self._scope is not None:
            self._ctx.scopes.exit(self._scope, exc)  # type: ignore[attr-defined]
        self._ctx._shield_exit()

    async def __aenter__(self) -> shield:
        return self.__enter__()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.__exit__(exc_type, exc, tb)
