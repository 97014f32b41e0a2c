"""Exits: how an actor's end reaches its supervisor (death watch).

Like an Erlang exit signal, an actor's :class:`ExitReason` is the one
message that tells its supervisor how it ended; for a step actor it also
carries the step's outcome, so a result and the end never race as two
messages. Invariant: every actor sends exactly one :class:`ChildExited`.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from actors._messages._kinds import FROZEN
from persistence import NewEvent

if TYPE_CHECKING:
    from pykka import ActorRef


class ExitKind(enum.Enum):
    NORMAL = "normal"
    CANCELLED = "cancelled"
    FAILED = "failed"
    TIMED_OUT = "timed_out"
    TERMINATED = "terminated"


@dataclass(**FROZEN)
class ExitReason:
    kind: ExitKind
    error: BaseException | None = None
    #: A RunSupervisor's last record (result, error or reason), for its parent
    #: run; read-only (a copy of what it is built with).
    data: Mapping[str, Any] | None = None
    #: A StepActor's outcome. Like an Erlang worker's exit reason, the exit
    #: report is how the result reaches the supervisor: one message, not two.
    #: None from a StepActor means it crashed outside the user's code.
    outcome: StepOutcome | None = None
    #: A RunSupervisor stopped by a store failure: step ends it saw but the
    #: store did not take, for the supervisor that hosts the run next.
    unrecorded: tuple[NewEvent, ...] = ()

    def __post_init__(self) -> None:
        if self.data is not None and not isinstance(self.data, MappingProxyType):
            object.__setattr__(self, "data", MappingProxyType(dict(self.data)))

    @classmethod
    def normal(cls) -> ExitReason:
        return cls(kind=ExitKind.NORMAL)


@dataclass(**FROZEN)
class ChildExited:
    """Sent exactly once by every actor to its supervisor when it stops."""

    child: ActorRef[Any]
    name: str
    reason: ExitReason


@dataclass(**FROZEN)
class Returned:
    result_json: str


@dataclass(**FROZEN)
class Raised:
    error: dict[str, Any]
    exception: BaseException


@dataclass(**FROZEN)
class StepCancelled:
    reason: str | None


@dataclass(**FROZEN)
class Unwound:
    """The step thread unwound with Terminated; its outcome is discarded.

    ``fenced``: why, when the runtime no longer owns the run (self-fencing):
    its supervisor then records nothing of the attempt and stops hosting it.
    """

    fenced: str | None = None


StepOutcome = Returned | Raised | StepCancelled | Unwound


@dataclass(**FROZEN)
class StepFinished:
    call: int
    attempt: int
    outcome: StepOutcome
