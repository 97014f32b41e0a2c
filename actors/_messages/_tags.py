"""The run supervisor's journal tags: what a committed group was for.

A tag rides on an :class:`Append` and comes back in its :class:`Journaled`
reply; the supervisor acts on the reply by the tag's type. The
supervisor's own records (a scheduled call, a child handle) are type
parameters, so that no message module imports another actors module.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from actors._messages._exits import ExitKind
from actors._messages._kinds import FROZEN
from persistence import NewEvent

_Sched = TypeVar("_Sched")
_Handle = TypeVar("_Handle")
_Then = TypeVar("_Then")


@dataclass(**FROZEN)
class Created(Generic[_Then]):
    """The group that creates a new run (with the body's first records):
    its reply confirms the run exists, or says nothing of it may go on.
    ``then`` is what the group is for besides (another tag, or None)."""

    then: _Then


@dataclass(**FROZEN)
class Started:
    """``run_started`` is recorded: the body starts."""


@dataclass(**FROZEN)
class StepsScheduled(Generic[_Sched]):
    """Step (or child) starts are recorded: launch them."""

    steps: tuple[_Sched, ...]


@dataclass(**FROZEN)
class CallEnded:
    """A step or child run ended; what its await gives the body, once recorded."""

    call_id: int
    #: The decoded result: decoded once, for the log and the body.
    value: object = None
    #: Raised at the await instead of returning ``value``.
    error: BaseException | None = None


@dataclass(**FROZEN)
class RunFinished:
    """The run's end is being recorded: the supervisor exits with it."""

    kind: ExitKind
    #: The end record's data (read-only).
    data: Mapping[str, Any]


@dataclass(**FROZEN)
class ChildStartedNoWait(Generic[_Sched, _Handle]):
    """start_child() is recorded: spawn the child, resume the body with its handle."""

    child: _Sched
    handle: _Handle


@dataclass(**FROZEN)
class RetryScheduled:
    """A retry is recorded: set its back-off timer."""

    call_id: int
    attempt: int
    #: Runtime-clock time the retry is due.
    due: float


@dataclass(**FROZEN)
class Resumed:
    """Our takeover of a run whose runtime died is recorded (or refused)."""

    #: The takeover group: its handed-over step ends join the history replayed.
    group: tuple[NewEvent, ...] = ()
