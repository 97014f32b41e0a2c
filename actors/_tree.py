"""One runtime's actor tree, seen from the facade: started whole, stopped whole.

The facade starts the Guardian (which starts the Journal, the Timers and the
ControlInbox) and learns the refs it sends requests to; at close it asks
the Guardian to shut down, after a graceful drain if asked (``_closing``),
and waits for every actor and thread to end. When the runtime traces (O2)
the tree also holds its tracing thread, started before the Guardian and
stopped (drained for a bounded time) after it.

Invariants: :meth:`ActorTree.start` returns only once the Journal and the
Timers exist (the facade's first request cannot find them missing);
:meth:`ActorTree.stop` never raises: whatever did not stop in time is
logged, named by the census, and left as a daemon thread.
"""

from __future__ import annotations

import contextlib
import dataclasses
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

import pykka

from actors._base import logger
from actors._census import Census
from actors._closing import Closing, DrainReport, settle
from actors._errors import RuntimeClosed
from actors._guardian import Guardian
from actors._halt import Halt
from actors._messages import GetWiring, Shutdown, Wiring
from actors._settings import Settings
from actors._tracing_thread import TracingThread

if TYPE_CHECKING:
    from actors._tracing_spans import SpanBook

#: Upper bound on any internal ask; a healthy runtime answers in microseconds.
ASK_TIMEOUT: Final = 30.0


@dataclass(frozen=True, slots=True)
class ActorTree:
    """The refs of a started tree: its Guardian, Journal and Timers."""

    owner: str
    census: Census
    halted: Halt
    guardian: pykka.ActorRef[Any]
    journal: pykka.ActorRef[Any]
    timers: pykka.ActorRef[Any]
    tracing: TracingThread | None = None

    @classmethod
    def start(cls, *, tracing: SpanBook | None = None, **kwargs: Any) -> ActorTree:
        """Start the tree (see :meth:`_start`); a ``tracing`` SpanBook is run
        on a :class:`TracingThread` that reads through ``reader``.

        Raises:
            RuntimeClosed: as :meth:`_start`; the tracing thread is stopped.
        """
        if tracing is None:
            return cls._start(**kwargs)
        thread = TracingThread(tracing, kwargs["reader"].events)
        try:
            tree = cls._start(tracing=thread, **kwargs)
        except BaseException:
            thread.close(0.0)
            raise
        return dataclasses.replace(tree, tracing=thread)

    @classmethod
    def _start(
        cls, *, census: Census, owner: str, halted: Halt, settings: Settings, **guardian: Any
    ) -> ActorTree:
        """Start the Guardian with ``settings`` and ``guardian`` (its other
        keyword arguments).

        Raises:
            RuntimeClosed: the Guardian died or did not answer while starting
                (its error is the ``__cause__``); nothing of it is left running.
        """
        ref = Guardian.start(
            census=census,
            owner=owner,
            halted=halted,
            busy_timeout=settings.busy_timeout,
            lease_ttl=settings.lease_ttl,
            max_batch=settings.max_batch,
            max_payload_bytes=settings.max_payload_bytes,
            retention=settings.retention,
            path=settings.db,
            control_interval=settings.control_interval,
            claim_runs=settings.claim_runs,
            resume=settings.resume,
            **guardian,
        )
        try:
            wiring = ref.ask(GetWiring(), timeout=ASK_TIMEOUT)
        except (pykka.ActorDeadError, pykka.Timeout) as exc:
            with contextlib.suppress(pykka.ActorDeadError):
                ref.tell(Shutdown(abandon=True))
            raise RuntimeClosed(f"runtime {owner} could not start its actors: {exc}") from exc
        assert isinstance(wiring, Wiring)
        return cls(
            owner=owner,
            census=census,
            halted=halted,
            guardian=ref,
            journal=wiring.journal,
            timers=wiring.timers,
        )

    def stop(self, *, abandon: bool, timeout: float, closing: Closing | None = None) -> None:
        """Shut the tree down; steps still running after ``timeout`` (seconds)
        are abandoned (with ``abandon``, at once).

        If ``closing`` has a drain (``window``, seconds), first a graceful
        drain (A4, ``_closing``): the running steps are let finish, not asked
        to stop, until they have or the drain runs out or is hurried; only
        then does the stop above begin.
        """
        try:
            deadline = self._shut_down(abandon=abandon, timeout=timeout, closing=closing)
            # Threads of abandoned steps, and pooled threads on their way out.
            grace = max(deadline - time.monotonic(), min(1.0, timeout))
            if not self.census.wait_empty(grace):
                logger.warning(
                    "runtime %s: %s still running user code that never checks its mailbox",
                    self.owner,
                    ", ".join(self.census.live()),
                )
        finally:
            if self.tracing is not None:  # after the Journal's last hand-over
                self.tracing.close()
            if closing is not None:
                closing.finish()  # even if interrupted: a second close() waits for it

    def _shut_down(self, *, abandon: bool, timeout: float, closing: Closing | None) -> float:
        """Have the Guardian shut the tree down, after the drain if any;
        returns when the threads' wait ends (``timeout`` after the drain)."""
        done: pykka.Future[Any] = pykka.ThreadingFuture()
        deadline = time.monotonic() + timeout
        try:
            drain = closing.window if closing is not None and not abandon else 0.0
            self.guardian.tell(Shutdown(reply=done, abandon=abandon, let_finish=drain > 0))
            if closing is not None and drain > 0:
                if not settle(done, drain, closing, DrainReport(self.owner, self.census)):
                    # What still runs is asked to stop, as without a drain.
                    self.guardian.tell(Shutdown())
                closing.stop()
                deadline = time.monotonic() + timeout
            try:
                done.get(timeout=max(0.0, deadline - time.monotonic()))
            except pykka.Timeout:
                # Steps that are still running now are abandoned: their
                # results would come after this process stopped writing.
                with contextlib.suppress(pykka.ActorDeadError):
                    self.guardian.tell(Shutdown(abandon=True))
                done.get(timeout=ASK_TIMEOUT)
        except (pykka.ActorDeadError, pykka.Timeout):
            if self.halted.error is None:  # else it said why when it stopped
                logger.exception("runtime %s: guardian did not shut down cleanly", self.owner)
        return deadline


def warn_unclosed(runtime_id: str) -> None:
    """A runtime garbage-collected without ``close()``: its tree was never stopped."""
    logger.warning("runtime %s was garbage-collected without close()", runtime_id)
