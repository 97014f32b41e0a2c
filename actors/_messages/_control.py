"""Control: what changes a run from outside, and the runtime's alarms.

Cancel and terminate reach a supervisor ahead of its backlog (they are
:class:`ControlMessage`); a shutdown, a lease renewal, a lost lease or a
lost store concern the runtime's own life. Invariant: a control message
carries everything its receiver needs (the cancel's reason and source), so
handling control never waits on the store.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from actors._messages._kinds import FROZEN, ControlMessage
from persistence import StoreError

if TYPE_CHECKING:
    from pykka import Future


@dataclass(**FROZEN)
class Cancel(ControlMessage):
    """Graceful: reaches code only at its next checkpoint (C2)."""

    reason: str | None
    source: str


#: A JSON value as decoded (``json.loads``): what a signal's payload is (D4).
JsonValue = None | bool | int | float | str | list[Any] | dict[str, Any]


@dataclass(**FROZEN)
class SignalArrived(ControlMessage):
    """A signal sent to the run was recorded (B5): its ``signal_sent`` committed.

    From the facade's Journal right after the commit, or from the
    ControlInbox for one another process wrote. ``payload`` is JSON as
    decoded (the sender's to leave alone). Control-first, as a cancel: a
    waiting body is resumed as fast as a cancel reaches it.
    """

    signal_id: str
    name: str
    payload: JsonValue


@dataclass(**FROZEN)
class Terminate(ControlMessage):
    """Forceful: the run's actors stop; a busy step unwinds at its next check (T3)."""

    reason: str | None


@dataclass(**FROZEN)
class Shutdown:
    """Stop hosting: leave unfinished runs for resume.

    Running steps are asked to stop and their ends awaited, so a result that
    arrives meanwhile is recorded (A4); with ``let_finish`` (a graceful
    drain, ``close(drain=s)``) they are not asked to stop: they run on and
    their ends are recorded, until a later Shutdown without it; with
    ``abandon`` (the runtime gives up waiting, or is killed) what still runs
    is abandoned at once.
    """

    reply: Future[None] | None = None
    abandon: bool = False
    let_finish: bool = False


@dataclass(**FROZEN)
class TakeNoRuns:
    """Guardian -> ControlInbox: the runtime drains (A4): claim and resume
    no run from now on; go on renewing the lease and delivering control."""


@dataclass(**FROZEN)
class RenewLease(ControlMessage):
    """ControlInbox -> Journal: this runtime is still alive (D2).

    Control-first: a renewal must not wait behind a backlog of appends, or
    an overloaded runtime loses its runs to another while still running them.
    """


@dataclass(**FROZEN)
class GraceExpired:
    run_id: str
    reason: str | None


@dataclass(**FROZEN)
class RunTimedOut:
    """Timers -> Guardian: run ``run_id``'s deadline has passed (B4): cancel it
    with source ``timeout`` and ``reason``, terminate it ``grace`` seconds
    later if it is still not terminal (None: never)."""

    run_id: str
    reason: str
    grace: float | None


@dataclass(**FROZEN)
class Forward:
    """ControlInbox -> Guardian: deliver ``message`` to the run's supervisor, if hosted.

    An ordinary message on purpose (not control-first): it must stay behind a
    StartRun the Guardian got from the same sender, so that a run claimed
    and then cancelled at once still gets its cancel.
    """

    run_id: str
    message: ControlMessage


@dataclass(**FROZEN)
class LeaseLost:
    """-> Guardian: stop hosting ``run_id`` (None: every run) without recording
    what is no longer ours to record; ``why`` says what was seen."""

    why: str
    run_id: str | None = None


@dataclass(**FROZEN)
class StoreLost:
    """ControlInbox or Journal -> Guardian: the store cannot be used any more
    (its file was deleted, replaced or damaged); the runtime must stop."""

    error: StoreError
