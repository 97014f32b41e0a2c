"""A reply future that a thread can block on and an event loop can await (A1),
and a request submitted with one (:class:`Submitted`).

The facade hands each request to an actor with a :class:`Reply` in it; the
actor (the Journal, or the Guardian when nothing could be written) resolves
it with pykka's ``set`` / ``set_exception``, from its own thread. A thread
waits with pykka's ``get(timeout=...)``; an event loop awaits
:meth:`Reply.wait_async`, which the resolving thread wakes through
``loop.call_soon_threadsafe``: the loop never blocks on the actor.

Invariants:

* a reply is resolved at most once (pykka's ``queue.Full`` otherwise), and
  each callback registered before or after that runs exactly once, after it;
* a callback never raises into the resolving actor: an event loop that has
  closed meanwhile (its waiter gave up) is no error of the actor;
* a waiter that gives up (timeout, cancellation) takes its callback back.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

import pykka

T = TypeVar("T")


class Reply(pykka.ThreadingFuture[T]):
    """A ``pykka.ThreadingFuture`` that also wakes awaiting event loops."""

    def __init__(self) -> None:
        super().__init__()
        self._callbacks_lock = threading.Lock()
        self._callbacks: list[Callable[[], None]] | None = []  # None once resolved

    def set(self, value: Any | None = None) -> None:
        super().set(value)  # raises queue.Full if already resolved: no callback then
        self._resolved()

    def set_exception(self, exc_info: Any = None) -> None:
        super().set_exception(exc_info)  # None: pykka reads sys.exc_info(), same thread
        self._resolved()

    def _resolved(self) -> None:
        with self._callbacks_lock:
            callbacks, self._callbacks = self._callbacks or [], None
        for callback in callbacks:
            callback()

    def add_done_callback(self, callback: Callable[[], None]) -> None:
        """Run ``callback()`` once resolved: at once, here, if it already is."""
        with self._callbacks_lock:
            if self._callbacks is not None:
                self._callbacks.append(callback)
                return
        callback()

    def remove_done_callback(self, callback: Callable[[], None]) -> None:
        with self._callbacks_lock:
            if self._callbacks is not None and callback in self._callbacks:
                self._callbacks.remove(callback)

    async def wait_async(self, timeout: float | None) -> T:
        """The reply's value (or its exception, raised), awaited on the running loop.

        Raises:
            pykka.Timeout: not resolved within ``timeout`` seconds, like ``get``.
        """
        loop = asyncio.get_running_loop()
        done = loop.create_future()

        def resolve() -> None:
            if not done.done():
                done.set_result(None)

        def wake() -> None:
            # The loop may be closed by now (its waiter gave up): nobody waits.
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(resolve)

        self.add_done_callback(wake)
        try:
            await asyncio.wait_for(done, timeout)
        except TimeoutError:
            raise pykka.Timeout(f"{timeout} seconds") from None
        finally:
            self.remove_done_callback(wake)
        return self.get(timeout=0)  # type: ignore[no-any-return]


class Creation:
    """Whether a start created its run (``RunHandle.created``): None until
    the start's answer is read, then True (this start wrote the run's
    creation) or False (the same start of an existing run id, A2: nothing
    new runs). Written once, by the start's answer (``settle_creation``)."""

    def __init__(self, created: bool | None = None) -> None:
        self.created = created


@dataclass(frozen=True, slots=True, kw_only=True)
class Submitted(Generic[T]):
    """A request handed to an actor: the reply to wait for, and how to read it.

    ``answer`` maps the reply's value to what the request returns, raising
    what it means (``RunNotFound``, a refused creation); ``late`` explains a
    reply missing after ``request_timeout`` (the OutcomeUnknown's detail).
    """

    reply: Reply[Any]
    run_id: str
    request: str
    answer: Callable[[Any], T]
    late: str | None = None
    #: ``answer`` may read the store or wait (a start with a chosen id,
    #: A2): an event loop runs it in its executor.
    blocking: bool = False
    #: A start's: whether it created its run, once answered (``Creation``).
    creation: Creation | None = None

    @property
    def created(self) -> bool | None:
        return None if self.creation is None else self.creation.created
