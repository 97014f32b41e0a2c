"""The Journal's conversation: append a group, hear that it committed.

Invariant (D1): the effects a group carries (``deliver``, ``launch``) follow
its durable commit, never precede it; every :class:`Append` is answered
(``reply``, ``notify``) whether it committed, was refused or failed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from actors._messages._kinds import FROZEN, ControlMessage
from persistence import AppendOutcome, NewEvent, RunRecord

if TYPE_CHECKING:
    from pykka import ActorRef, Future


class Launchable(Protocol):
    """A prepared actor (a step attempt) the Journal launches or discards."""

    def launch(self) -> ActorRef[Any]: ...

    def discard(self) -> None: ...


@dataclass(**FROZEN)
class Append:
    """Append one atomic group of events.

    After the commit the Journal sets ``reply``, tells ``notify`` a
    :class:`Journaled` carrying ``tag``, and, if every event was accepted,
    delivers each ``(actor, message)`` of ``deliver``: the effect follows the
    durable record, never the other way round (D1).
    """

    events: tuple[NewEvent, ...]
    reply: Future[tuple[AppendOutcome, ...]] | None = None
    notify: ActorRef[Any] | None = None
    tag: object = None
    deliver: tuple[tuple[ActorRef[Any], ControlMessage], ...] = ()
    #: Prepared actors (step attempts) the Journal launches once the group
    #: commits, or discards if it does not. Launching them is the whole
    #: effect, so ``notify`` then hears only of a failure.
    launch: tuple[Launchable, ...] = ()


@dataclass(**FROZEN)
class ControlAppend(Append, ControlMessage):
    """An :class:`Append` of a control request from the facade (cancel):
    taken before the Journal's backlog of ordinary appends, so a cancel keeps
    its latency under load. Only for requests with no ordering to keep
    against the sender's earlier appends (the facade writes nothing else
    about a run it did not create)."""


@dataclass(**FROZEN)
class TerminateTree(ControlMessage):
    """Facade -> Journal: T1 and T4 in one transaction (``Store.terminate_tree``).

    If the run's terminate is accepted, ``deliver`` is sent after the commit;
    ``reply`` gets (the run's outcome, the descendants terminated).
    """

    run_id: str
    reason: str | None
    source: str
    origin: str
    #: The run's outcome, and the ids of the descendants it terminated.
    reply: Future[tuple[AppendOutcome, tuple[str, ...]]]
    deliver: tuple[tuple[ActorRef[Any], ControlMessage], ...] = ()


@dataclass(**FROZEN)
class Heartbeat:
    """A step attempt's latest heartbeat, for ``runs status`` (not a log event).

    Liveness is not a transition: like Temporal, Proctor keeps the latest
    heartbeat on the step's row instead of growing the log with each one.
    """

    run_id: str
    call: int
    attempt: int
    at: float
    details_json: str | None


@dataclass(**FROZEN)
class Journaled:
    tag: object
    outcomes: tuple[AppendOutcome, ...]
    error: BaseException | None = None
    #: On error: the group that was not written (what it carried is not lost
    #: to the sender, which may hand it over; see ``_handover``).
    events: tuple[NewEvent, ...] = ()

    @property
    def accepted(self) -> bool:
        return self.error is None and all(o.accepted for o in self.outcomes)


@dataclass(**FROZEN)
class ClaimTag:
    """The tag of a claim's :class:`Append`: the claimed run's record, which
    the ControlInbox hands to the Guardian once the claim commits."""

    record: RunRecord
