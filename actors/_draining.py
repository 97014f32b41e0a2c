"""Draining: the runtime stops hosting a run, and the run's supervisor ends.

Three things make a supervisor stop hosting its run while the run goes on
elsewhere (later, or on another runtime): the runtime shuts down; the
store cannot take the run's records; the runtime may no longer own the run
(fenced off by a takeover, or unable to prove its lease). In each, the body
goes no further and nothing new starts (the lifecycle's ``DRAINING``), the
running steps are asked to stop and the child runs are shut down, like an
OTP supervisor's children: the supervisor ends once none is left, so none
writes after the Journal is gone.

Invariants: a step end that arrives while draining is still recorded (A4),
so the next runtime's replay returns it instead of running the step again;
after a store failure nothing more is sent, the ends are handed over in the
exit report instead (``_handover``), and the wait is bounded
(``STORE_FAILURE_DRAIN``); a lost lease is told to the parent before the
exit, so the parent records no end of this run.
"""

from __future__ import annotations

from typing import Any, Protocol

import pykka

from actors._attempts import Attempts
from actors._awaits import Awaits
from actors._base import logger, tell
from actors._children import Children
from actors._clock import Clock
from actors._launch import Launcher
from actors._lifecycle import HostingEvent, Lifecycle
from actors._log_records import run_extra
from actors._messages import (
    ExitKind,
    ExitReason,
    Journaled,
    LeaseLost,
    Shutdown,
    StepsScheduled,
    Terminate,
)
from actors._recorder import Recorder

#: After a store failure, how long (runtime clock) the supervisor waits for
#: its running steps' ends before it abandons them and lets the run be re-hosted.
STORE_FAILURE_DRAIN = 5.0


class DrainHost(Protocol):
    """What draining needs of the run supervisor."""

    def exit(self, reason: ExitReason) -> None:
        """Stop after the current message, reporting ``reason``."""

    def schedule_timer(self, key: tuple[str, int], due: float, message: Any) -> None: ...


class Drain:
    """Stops hosting one run (see the module docstring)."""

    def __init__(
        self,
        host: DrainHost,
        *,
        run_id: str,
        parent: pykka.ActorRef[Any],
        life: Lifecycle,
        attempts: Attempts,
        awaits: Awaits,
        launcher: Launcher,
        children: Children,
        log: Recorder,
        clock: Clock,
    ) -> None:
        self._host = host
        self._run_id = run_id
        self._parent = parent
        self._life = life
        self._attempts = attempts
        self._awaits = awaits
        self._launcher = launcher
        self._children = children
        self._log = log
        self._clock = clock
        #: Whether the running steps were asked to stop (Terminate) already.
        self._stop_asked = False

    def on_shutdown(self, msg: Shutdown) -> None:
        """The runtime stops hosting: leave the run (and its children) for resume.

        The body goes no further and nothing new starts. Running steps are
        asked to stop (a busy one unwinds at its next check and is
        abandoned), but their ends are awaited: a result that arrives
        meanwhile is recorded (A4), so the next runtime's replay returns it
        instead of running the step again. ``let_finish`` (the runtime's
        graceful drain, A4): the steps are not asked to stop, only awaited,
        until a Shutdown without it. ``abandon``: stop waiting; what
        still runs is abandoned now. Like an OTP supervisor, this one stops
        its children and waits for them before it ends, so none writes after
        the Journal is gone.
        """
        first = not self._life.draining
        self._life.host(HostingEvent.SHUTDOWN)
        self._awaits.waiting = None  # the body is resumed no more
        ask_to_stop = not (msg.abandon or msg.let_finish or self._stop_asked)
        if msg.abandon:
            self._launcher.abandon_running("runtime shutdown")
        elif ask_to_stop:
            self._stop_asked = True
            for active in self._attempts.active.values():
                tell(active.ref, Terminate(reason="runtime shutdown"))
        if first or msg.abandon or ask_to_stop:
            self._children.shutdown(abandon=msg.abandon, let_finish=msg.let_finish)
        self.exit_if_drained()

    def exit_if_drained(self) -> None:
        """Shutting down: end once no step attempt and no child run is left."""
        if not self._life.draining or self._attempts.active or self._children:
            return
        error = self._log.store_error
        if error is None:
            self._host.exit(ExitReason(kind=ExitKind.TERMINATED))
            return
        handed = tuple(self._log.handed)
        self._host.exit(ExitReason(kind=ExitKind.FAILED, error=error, unrecorded=handed))

    def on_store_failure(self, msg: Journaled) -> None:
        """The store cannot take our records: stop driving the run, leave it
        unfinished for a supervisor that can (the Guardian hosts it again
        after a back-off, D2), and lose no step end on the way.

        The step ends in the failed group, and those of steps that return
        while this supervisor stops (as at a shutdown), go to the successor
        in the exit report (``_handover``).
        """
        assert msg.error is not None
        first = self._log.store_failed(msg.error, msg.events)
        if isinstance(msg.tag, StepsScheduled):
            for s in msg.tag.steps:  # never launched: no exit report will come
                active = self._attempts.active.get(s.call_id)
                if active is not None and active.attempt == s.attempt:
                    del self._attempts.active[s.call_id]
        if first:
            logger.error(
                "run %s: journal failed: %s",
                self._run_id,
                msg.error,
                extra=run_extra(self._run_id),
            )
            if not self._life.draining:
                self.on_shutdown(Shutdown())
                due = self._clock.monotonic() + STORE_FAILURE_DRAIN
                self._host.schedule_timer(("drain", 0), due, Shutdown(abandon=True))
        self.exit_if_drained()

    def lost_ownership(self, why: str) -> None:
        """The store fenced us off (another runtime took the run over), or our
        runtime could not prove it still owns it (self-fencing). Stop driving
        it; the owner's replay re-runs what we were doing. The Guardian hears
        of it (and hosts the run again if it turns out to be still ours)."""
        if self._life.draining:
            self.exit_if_drained()  # stopping already: this attempt was the last, say
            return
        logger.warning(
            "run %s: no longer ours, stopping: %s", self._run_id, why, extra=run_extra(self._run_id)
        )
        # The parent first (a run supervisor, or the Guardian): it stops
        # hosting too before it hears of our exit, so it records no end of us.
        tell(self._parent, LeaseLost(why=why, run_id=self._run_id))
        self.on_shutdown(Shutdown(abandon=True))
