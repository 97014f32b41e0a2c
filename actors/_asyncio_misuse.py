"""asyncio in a workflow body: told apart from other errors, and named clearly.

A workflow body is an ``async def`` that the run supervisor steps by hand
(``coro.send``), one await at a time, so that each await is recorded and
replayed (D1, D2). No asyncio event loop runs it: ``await asyncio.sleep(1)``,
``asyncio.wait_for``, ``asyncio.create_task`` and ``asyncio.gather`` raise
asyncio's own ``RuntimeError`` ("no running event loop", "There is no
current event loop in thread ..."), which says nothing of the fix, and
leave the coroutines handed to them never awaited (a ``RuntimeWarning``
later, from the garbage collector).

:func:`translated` turns such an error into :class:`WorkflowUsesAsyncio`,
naming Proctor's own primitives, with asyncio's error kept as its
``__cause__``; it closes the coroutines asyncio was handed (they never ran),
so no warning follows. The run fails with it: a programming error, as
Temporal's workflow sandbox rejects non-deterministic calls.

Invariants: only a ``RuntimeError`` raised inside the asyncio package and
speaking of an event loop is translated (the innermost frame of its
traceback is asyncio's), so a user's own ``RuntimeError`` is never
renamed; pure apart from closing never-started coroutines.
"""

from __future__ import annotations

import inspect
from types import TracebackType
from typing import Any, Final

from persistence import ProctorError

#: What to use instead, said in every such error.
HINT: Final = (
    "a workflow body is not run by an asyncio event loop: use Proctor's own"
    " awaitables instead (actors.sleep / sleep_until for a durable timer,"
    " actors.gather for several calls at once, start_step / start_child for a"
    " call that runs while the body goes on); run asyncio code inside a @step"
)


class WorkflowUsesAsyncio(ProctorError, RuntimeError):
    """A workflow body called asyncio, which needs an event loop it does not have.

    Its ``__cause__`` is asyncio's own error. Peer: Temporal's workflow
    sandbox (``RestrictedWorkflowAccessError``) fails the workflow task.
    """


def translated(exc: BaseException) -> BaseException:
    """``exc``, or a :class:`WorkflowUsesAsyncio` caused by it if asyncio raised it
    for want of an event loop (see the module docstring)."""
    if not isinstance(exc, RuntimeError) or isinstance(exc, ProctorError):
        return exc
    if "event loop" not in str(exc) or not _raised_in_asyncio(exc.__traceback__):
        return exc
    _close_unstarted(exc.__traceback__)
    error = WorkflowUsesAsyncio(f"{HINT} (asyncio said: {exc})")
    error.__cause__ = exc
    return error


def _raised_in_asyncio(tb: TracebackType | None) -> bool:
    last = None
    while tb is not None:
        last, tb = tb, tb.tb_next
    return last is not None and _in_asyncio(last.tb_frame.f_globals)


def _in_asyncio(module_globals: dict[str, Any]) -> bool:
    name = module_globals.get("__name__")
    return isinstance(name, str) and (name == "asyncio" or name.startswith("asyncio."))


def _close_unstarted(tb: TracebackType | None) -> None:
    """Close the coroutines asyncio's frames were handed and never started."""
    while tb is not None:
        frame = tb.tb_frame
        if _in_asyncio(frame.f_globals):
            for value in list(frame.f_locals.values()):
                for item in value if isinstance(value, tuple | list) else (value,):
                    if (
                        inspect.iscoroutine(item)
                        and inspect.getcoroutinestate(item) == inspect.CORO_CREATED
                    ):
                        item.close()
        tb = tb.tb_next
