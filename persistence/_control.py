"""The records of a cancel or terminate request, shared by every writer.

The Runtime facade and the CLI (in another process, with or without a
runtime alive) must write exactly the same records, so they build them here.
"""

from __future__ import annotations

from collections.abc import Iterable

from persistence._records import NewEvent
from persistence._states import EventType


def cancel_request(
    run_id: str, reason: str | None, *, source: str, grace: float | None = None
) -> NewEvent:
    """C1: the request, with its reason and source; the run becomes CANCELLING."""
    return NewEvent(
        run_id=run_id,
        type=EventType.CANCEL_REQUESTED,
        data={"reason": reason, "source": source, "grace": grace},
    )


def terminate_request(run_id: str, reason: str | None, *, source: str) -> list[NewEvent]:
    """T1: one atomic group that makes the run TERMINATED."""
    return [
        NewEvent(
            run_id=run_id,
            type=EventType.TERMINATE_REQUESTED,
            data={"reason": reason, "source": source},
        ),
        NewEvent(run_id=run_id, type=EventType.RUN_TERMINATED, data={"reason": reason}),
    ]


def terminate_descendants(descendants: Iterable[str], reason: str | None) -> list[list[NewEvent]]:
    """T4: one group per unfinished descendant, to append once the run's own
    terminate was accepted (a run that had already finished keeps its children).

    Each group stands alone: a child that finished meanwhile is refused
    without holding back its siblings.
    """
    return [terminate_request(child, reason, source="parent") for child in descendants]
