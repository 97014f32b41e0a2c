"""Resuming: one supervisor's takeover of a run whose runtime died, until replay (D2).

The rules of a takeover are ``_takeover``'s (what to read, what to claim,
when to read again); this is the one takeover in flight of one supervisor:
it reads the run and appends the claim, and when the Journal's reply comes
either begins the body's replay from the history it read, starts a run
that never started, reads again (someone wrote to the run meanwhile), or
leaves the run alone and exits.

Invariants: at most one takeover is in flight (the next read waits for
the reply to the last claim), and the history it read is kept here, never
in the (frozen) reply tag; the body replays exactly that history plus the
claim's records (``adopt``); the step ends handed over by a predecessor
are written once, in the claim, then dropped; the run's state and a cancel
recorded while nobody hosted it are learnt from the claim's commit.
"""

from __future__ import annotations

import time
from types import MappingProxyType
from typing import Protocol

from actors._base import logger
from actors._body import Body
from actors._cancelling import Cancelling
from actors._lifecycle import PhaseEvent
from actors._log_records import run_extra
from actors._messages import (
    Cancel,
    ExitKind,
    ExitReason,
    Journaled,
    Resumed,
    RunFinished,
    Started,
)
from actors._recorder import Recorder
from actors._replay import History
from actors._signals import SignalWaits
from actors._takeover import FailUnreadable, adopt, plan_takeover, read_again
from persistence import Appended, EventType, NewEvent, Store

_E = EventType


class ResumeHost(Protocol):
    """What resuming a run needs of its supervisor."""

    def exit(self, reason: ExitReason) -> None:
        """Stop after the current message, reporting ``reason``."""

    def begin_body(self, begin: PhaseEvent) -> None:
        """Begin the body (here: its replay)."""


class Resumption:
    """One supervisor's takeover of its run (see the module docstring)."""

    def __init__(
        self,
        host: ResumeHost,
        *,
        run_id: str,
        owner: str,
        resume_from: str | None,
        why: str | None,
        reader: Store,
        run: Cancelling,
        body: Body,
        log: Recorder,
        signals: SignalWaits,
    ) -> None:
        self._host = host
        self._run_id = run_id
        self._owner = owner
        self._resume_from = resume_from
        self._why = why
        self._reader = reader
        self._run = run
        self._body = body
        self._log = log
        self._signals = signals
        #: Claims refused so far because the run's log grew meanwhile.
        self._tries = 0
        #: The history the takeover in flight was based on.
        self._taking: History | None = None

    def take_over(self) -> None:
        """Read the run's log, then claim it if nobody wrote to it meanwhile."""
        plan = plan_takeover(
            self._reader,
            self._run_id,
            owner=self._owner,
            resume_from=self._resume_from,
            why=self._why,
            handed=self._log.handed,
        )
        if isinstance(plan, ExitReason):
            self._host.exit(plan)
        elif isinstance(plan, FailUnreadable):
            data = MappingProxyType(plan.group[-1].data)
            self._log.append(*plan.group, tag=RunFinished(kind=ExitKind.FAILED, data=data))
        else:
            # One takeover at a time: the next is tried only once this one's
            # reply is in. The history is kept here, not in the (frozen) tag.
            self._taking = plan.history
            self._log.append(*plan.group, tag=Resumed(group=plan.group))

    def on_claimed(self, group: tuple[NewEvent, ...], msg: Journaled) -> None:
        """The Journal's reply to the claim ``group``."""
        history, self._taking = self._taking, None
        assert history is not None
        if not msg.accepted:
            # Someone wrote to the run after we read it (a cancel, or another
            # runtime that took it first): read again, or leave it.
            self._tries += 1
            if read_again(self._tries, msg.outcomes):
                self.take_over()
            else:
                refused = msg.outcomes[0] if msg.outcomes else None
                logger.info(
                    "run %s: not resumed: %s",
                    self._run_id,
                    refused,
                    extra=run_extra(self._run_id, event_type=_E.RUN_RESUMED),
                )
                self._host.exit(ExitReason(kind=ExitKind.TERMINATED))
            return
        adopt(history, group, msg.outcomes, time.time())
        self._log.handed = []
        resumed = msg.outcomes[0]
        assert isinstance(resumed, Appended)
        record = history.record
        assert record is not None
        logger.info(
            "run %s: resumed from %s",
            self._run_id,
            record.owner,
            extra=run_extra(self._run_id, event_type=_E.RUN_RESUMED),
        )
        self._run.learn(
            resumed.status,
            lambda: Cancel(reason=record.cancel_reason, source=record.cancel_source or "api"),
        )
        self._signals.adopt(history.signals)  # B5: before the body replays its waits
        if history.calls:  # a restart's reused calls (A7), or what the body did
            self._body.history = history
        if not history.started:
            # The runtime died before the run started: start it now.
            self._log.append(NewEvent(run_id=self._run_id, type=_E.RUN_STARTED), tag=Started())
            return
        self._body.history = history
        self._host.begin_body(PhaseEvent.BEGIN_REPLAY)
