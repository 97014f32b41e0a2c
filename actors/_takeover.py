"""Takeover: claiming a run whose runtime died, so that its replay can begin (D2).

The new owner reads the run's record, log and step rows in one snapshot,
then appends one group: ``run_resumed`` (a compare-and-swap on the run's
owner and the length of its log, see ``persistence.resume_request``) and,
for each attempt the log shows running, its end: the one its predecessor
handed over (``_handover``), or ``step_abandoned``. If the log grew in
between, the store refuses the group and the owner reads again, a few times.

Invariants: nothing is written for a run that is terminal, owned by
another runtime, or unreadable (that one is failed, whole, in the same
compare-and-swap); the history replayed is the one read, plus exactly the
records the takeover group added. The decisions here are pure apart from
the one snapshot read; the supervisor appends and exits.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from actors._attempts import step_event
from actors._base import logger
from actors._handover import ends_of_lost, fold_written
from actors._log_records import run_extra
from actors._messages import ExitKind, ExitReason
from actors._outcomes import recorded_exit
from actors._replay import History
from persistence import (
    AppendOutcome,
    CorruptRecord,
    EventType,
    NewEvent,
    RunRecord,
    Store,
    StoreError,
    resume_request,
    unreadable_run_failure,
)

#: How often a takeover is retried when the run's log grew while it was read.
RESUME_TRIES = 5


@dataclass(frozen=True, slots=True)
class Claim:
    """Take the run over: append ``group``; replay ``history`` once it commits."""

    history: History
    group: tuple[NewEvent, ...]


@dataclass(frozen=True, slots=True)
class FailUnreadable:
    """The run's log cannot be read: append ``group``, which fails the run."""

    group: tuple[NewEvent, ...]


def plan_takeover(
    reader: Store,
    run_id: str,
    *,
    owner: str,
    resume_from: str | None,
    why: str | None,
    handed: Sequence[NewEvent],
) -> Claim | FailUnreadable | ExitReason:
    """Read the run and decide: claim it, fail it, or leave it (the exit to report).

    ``resume_from``: the owner it was found with (it must still be that one);
    ``handed``: step ends a predecessor saw but could not record.
    """
    record: RunRecord | None = None
    unreadable: str | None = None
    try:
        with reader.snapshot():  # the record and the log it projects
            record = reader.get_run(run_id)
            events = reader.events(run_id)
            steps = reader.steps(run_id)
    except CorruptRecord as exc:
        if record is None:
            return ExitReason(kind=ExitKind.FAILED, error=exc)
        unreadable, events, steps = str(exc), [], []
    except StoreError as exc:
        return ExitReason(kind=ExitKind.FAILED, error=exc, unrecorded=tuple(handed))
    if record.status.is_terminal:
        # It ended, but the parent's log does not say so: the parent's
        # runtime died first. Report the recorded end; write nothing.
        return recorded_exit(record)
    if record.owner != resume_from:
        # Another runtime took it over first: it is alive and owns it now.
        logger.info("run %s: taken over by %s first", run_id, record.owner, extra=run_extra(run_id))
        return ExitReason(kind=ExitKind.TERMINATED)
    take = resume_request(
        run_id, owner, previous_owner=record.owner, seen_seq=record.last_seq, why=why
    )
    unreadable = unreadable or record.defect or next((e.defect for e in events if e.defect), None)
    if unreadable is not None:
        # Replaying a log it cannot read would return wrong results: fail the run.
        logger.error(
            "run %s cannot be read, failing it: %s",
            run_id,
            unreadable,
            extra=run_extra(run_id, event_type=EventType.RUN_FAILED),
        )
        return FailUnreadable(tuple(unreadable_run_failure(record, unreadable, take=take)))
    history = History(record, events, steps)
    group = [take]
    for call, attempt in history.lost_attempts():
        # An end our predecessor saw but could not record is written now.
        group += ends_of_lost(handed, call.call, attempt) or [
            step_event(
                run_id,
                EventType.STEP_ABANDONED,
                call.name,
                call.call,
                attempt,
                reason=f"lost with runtime {record.owner}",
                **call.end_data(),
            )
        ]
    return Claim(history, tuple(group))


def read_again(tries: int, outcomes: Sequence[AppendOutcome]) -> bool:
    """The takeover group was refused (the log grew, or the run changed
    hands or ended): whether to read again, after ``tries`` refusals."""
    refused = outcomes[0] if outcomes else None
    return (
        tries < RESUME_TRIES
        and refused is not None
        and not (refused.status is not None and refused.status.is_terminal)
    )


def adopt(
    history: History, group: Sequence[NewEvent], outcomes: Sequence[AppendOutcome], ts: float
) -> None:
    """The takeover committed: fold what it wrote into the history replayed,
    and mark every attempt it found running as lost (it runs again)."""
    fold_written(history, group, outcomes, ts)
    for call, attempt in history.lost_attempts():
        call.running.remove(attempt)
        call.lost = True
