"""Hand-over: step ends a run's supervisor saw but the store did not take.

When the store fails under a run (locked past the busy timeout, say), its
supervisor stops and the Guardian hosts the run again from its log after a
back-off (D2). A step that had returned by then must not run again: its end
was in the group that failed to commit, or came while the supervisor was
stopping. The stopping supervisor hands those ends to its successor, which
writes them in its takeover group in place of ``step_abandoned``, so its
replay returns them like any recorded end.

Invariant: an end is written only for an attempt the log shows running (its
``step_started`` is durable and nothing ended it); the takeover's
compare-and-swap on the log's length makes that check exact.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from actors._replay import History
from persistence import Appended, AppendOutcome, EventRecord, EventType, NewEvent

_E = EventType

#: Records of a step attempt's end (and the retry planned with a failure)
#: that a successor can write for its predecessor.
HANDED_OVER = frozenset(
    {
        _E.STEP_COMPLETED,
        _E.STEP_FAILED,
        _E.STEP_CANCELLED,
        _E.STEP_TIMED_OUT,
        _E.STEP_RETRY_SCHEDULED,
    }
)


def unrecorded(run_id: str, events: Iterable[NewEvent]) -> list[NewEvent]:
    """The step ends (and retries) of ``run_id`` among ``events``, in order."""
    return [e for e in events if e.run_id == run_id and e.type in HANDED_OVER]


def ends_of_lost(handed: Sequence[NewEvent], call: int, attempt: int) -> list[NewEvent] | None:
    """What to write for a lost attempt: its handed-over end (with the retry
    planned with it), or None if its end was never seen."""
    for i, event in enumerate(handed):
        if event.call != call or event.attempt != attempt or event.type is _E.STEP_RETRY_SCHEDULED:
            continue
        retry = [
            e
            for e in handed[i + 1 :]
            if e.call == call and e.type is _E.STEP_RETRY_SCHEDULED and e.attempt == attempt + 1
        ]
        return [event, *retry[:1]]
    return None


def fold_written(
    history: History, events: Sequence[NewEvent], outcomes: Sequence[AppendOutcome], ts: float
) -> None:
    """Fold the takeover group's committed records into the history replayed."""
    for event, outcome in zip(events, outcomes, strict=True):
        if isinstance(outcome, Appended) and event.type in HANDED_OVER:
            history.fold(
                EventRecord(
                    seq=outcome.seq,
                    run_id=event.run_id,
                    run_seq=outcome.run_seq,
                    ts=ts,
                    type=event.type,
                    step=event.step,
                    call=event.call,
                    attempt=event.attempt,
                    data=event.data,
                )
            )
