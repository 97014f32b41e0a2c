"""Recorder: what one run supervisor writes to the Journal, and in which group.

Every effect waits for its record (D1): a group of the run's records goes
to the Journal in one Append, and the Journaled reply carries a tag (see
``_messages``) that says what to do once the group is durable.

- Ends of steps whose await the body already got past are held in memory
  (``defer``) and go at the head of the body's next group: one commit
  instead of two, and whatever the body does next still takes effect only
  once both are durable.
- While the body is being stepped (``driving``), its own records (a shield,
  a cancel delivered) join that next group too.
- A new run's creation (and its ``run_started``) head its first group, whose
  reply says so (``Created``); whoever started the run hears of the commit.
- Once the store has failed under the run, nothing more is sent: step ends
  are kept (``handed``) for the supervisor that hosts the run next
  (``_handover``), with those it was handed by its predecessor.

Invariants: records reach the Journal in the order they are made, the
deferred ones first (also before a teardown's ``send``); nothing is sent
after a store failure; the run's creation is in the first group sent, and
only there.
"""

from __future__ import annotations

from typing import Any

import pykka

from actors._base import tell
from actors._handover import unrecorded
from actors._messages import Append, Created
from persistence import EventType, NewEvent


class Recorder:
    """The Journal-facing side of one run supervisor (see the module docstring)."""

    def __init__(
        self,
        *,
        run_id: str,
        journal: pykka.ActorRef[Any],
        notify: pykka.ActorRef[Any],
        create: NewEvent | None,
        created: pykka.Future[Any] | None,
        handed: tuple[NewEvent, ...],
    ) -> None:
        self._run_id = run_id
        self._journal = journal
        self._notify = notify
        #: A new run of this process: its creation is written with the body's
        #: first records, and ``created`` hears when (Runtime.start waits on it).
        self.create = create
        self._created = created
        #: Step ends seen and not recorded (a store failure): a predecessor's,
        #: written at takeover, or ours, for the successor (``_handover``).
        self.handed: list[NewEvent] = list(handed)
        self.store_error: BaseException | None = None
        #: Records held for the head of the next group (see the docstring).
        self._unsent: list[NewEvent] = []
        #: Re-entrancy guard, not a phase: the body is being stepped now.
        self.driving = False

    def begin_with(self, *events: NewEvent) -> None:
        """Head the first group with ``events`` (a new run's creation)."""
        self._unsent = [*events, *self._unsent]

    def defer(self, event: NewEvent) -> None:
        """Write ``event`` at the head of the next group."""
        self._unsent.append(event)

    def flush(self) -> None:
        """Send what is deferred, if anything (the body waits on something)."""
        if self._unsent:
            self.append(tag=None)

    def append(self, *events: NewEvent, tag: Any, launch: tuple[Any, ...] = ()) -> None:
        """Append a group of this run's records; the Journaled reply carries ``tag``.

        Step ends the body has already got past go first, in the same group.
        """
        if self._unsent:
            events, self._unsent = (*self._unsent, *events), []
        if self.store_error is not None:  # kept for the successor instead
            self.handed += unrecorded(self._run_id, events)
            return
        if self.create is not None:
            # The group that creates the run: its reply says so (Created).
            tag, self.create = Created(then=tag), None
        reply, self._created = self._created, None
        tell(
            self._journal,
            Append(events=events, reply=reply, notify=self._notify, tag=tag, launch=launch),
        )

    def record(self, type_: EventType, **data: Any) -> None:
        """Record an event of this run whose effect does not wait for the commit.

        The body's own records (a shield entered, a cancel delivered) join
        its next group, with the step ends before them. A failed commit still
        stops the run (the Journaled reply, tag None).
        """
        event = NewEvent(run_id=self._run_id, type=type_, data=data)
        if self.driving:
            self._unsent.append(event)
        else:
            self.append(event, tag=None)

    def send(self, *events: NewEvent) -> None:
        """Write records no reply waits for (a teardown's: steps abandoned, say).

        Deferred records were made before these, so they go first (D1: the
        step end that let the body end precedes the abandons its end caused),
        in a group of their own, so that a refusal of theirs (the run ended
        elsewhere) cannot take these post-mortem records with it.
        """
        if self._unsent and self.create is None:
            self.flush()
        tell(self._journal, Append(events=events))

    def store_failed(self, error: BaseException, events: tuple[NewEvent, ...]) -> bool:
        """A group failed to commit: keep its step ends for the successor.

        Returns whether this is the first failure (the run must stop).
        """
        self.handed += [e for e in unrecorded(self._run_id, events) if e not in self.handed]
        if self.store_error is not None:
            return False
        self.store_error = error
        return True
