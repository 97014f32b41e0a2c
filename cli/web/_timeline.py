"""A run's timeline as data: what the run page's chart draws (O1).

One concept: :func:`build_timeline` folds a run's record, its event log and
its step attempts into a :class:`Timeline` (``_timeline_values``): one lane
per call of the body, in call order (a step's attempts and back-offs, a
child run, a durable sleep, a signal wait, a reused call), the body's shield
and cancel-scope spans, and the run's marks (created, cancel requested,
buffered, delivered, terminate, timeouts, the terminal event). The pass over
the log is ``_timeline_fold``'s; this module bounds what is drawn.

Invariants:

- Pure: no I/O and no clock of its own (``now`` is given); it never raises
  on records the store could read (an event with a ``defect`` is a mark).
- Every time is seconds since ``run.created_at``; an attempt, back-off or
  span still open ends at :attr:`Timeline.end`: ``now`` for a run still
  going (or at its dead owner's last sign of life, ``owner_gone``).
- Once the run has its terminal record nothing of it is still running:
  every bar, back-off or span open then ends at that record, a bar as
  ``abandoned``.
- At most ``max_lanes`` lanes are drawn; the others are summed up in
  :attr:`Timeline.hidden` (their count, outcomes and activity over time),
  keeping first what an operator chasing a stuck cancel looks for: calls
  still open or that ran on past the cancel, then those that failed, timed
  out or were abandoned, then retried, cancelled or other calls. So a run
  of 5,000 calls gives a chart of ``max_lanes + 1`` rows.
- The store keeps only the latest heartbeat of an attempt (as Temporal's
  pending activity keeps only its last heartbeat details), so an attempt
  has at most one heartbeat tick.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import replace
from typing import Final

from cli.web._timeline_fold import LogFold
from cli.web._timeline_values import (
    Attempt,
    Hidden,
    Lane,
    Mark,
    Span,
    Timeline,
    offset_text,
)
from persistence import EventRecord, RunRecord, StepRecord

__all__ = [
    "Attempt",
    "Hidden",
    "Lane",
    "Mark",
    "Span",
    "Timeline",
    "build_timeline",
    "offset_text",
]

#: Lanes drawn one by one at most; the rest are summed up in one row.
MAX_LANES: Final = 60
#: Slices of the chart's time in the hidden calls' activity row.
HIDDEN_SLICES: Final = 100


def build_timeline(
    run: RunRecord,
    events: Sequence[EventRecord],
    steps: Sequence[StepRecord],
    *,
    now: float,
    max_lanes: int = MAX_LANES,
    owner_gone_at: float | None = None,
) -> Timeline:
    """A run's :class:`Timeline`; pure, linear in the records.

    Args:
        run: the run's projection (``Store.get_run``).
        events: its log (``Store.events``), in any order; other runs' are ignored.
        steps: its step attempts (``Store.steps``): heartbeats, errors.
        now: wall-clock epoch seconds: the right edge of a run still going.
        max_lanes: lanes drawn one by one at most (at least 1).
        owner_gone_at: epoch seconds: the last sign of life of the run's dead
            owner (its runtime's last renewal), or None (alive, or unknown).
            Ignored for a finished run.

    Raises:
        ValueError: ``max_lanes`` is below 1.
    """
    if max_lanes < 1:
        raise ValueError(f"max_lanes must be at least 1, got {max_lanes}")
    fold = LogFold(run, steps)
    for event in sorted((e for e in events if e.run_id == run.run_id), key=_log_order):
        fold.take(event)
    terminal = run.status.is_terminal
    edge = (run.finished_at if terminal and run.finished_at is not None else now) - run.created_at
    end = max(fold.last, edge, 0.0)
    ended = fold.terminal
    if ended is None and terminal:  # its terminal record is not in the log read
        ended = (end, run.status.value.upper())
    fold.close(ended)
    gone = None
    if owner_gone_at is not None and not terminal:
        gone = min(max(owner_gone_at - run.created_at, 0.0), end)
    shown, hidden = _bounded(fold, max_lanes, end)
    left_out = set(fold.calls()) - {lane.call for lane in shown}
    marks = tuple(m for m in fold.marks if m.call not in left_out)
    if hidden is not None:  # the marks of calls not drawn go with them
        hidden = replace(hidden, marks=len(fold.marks) - len(marks))
    notes = []
    if run.defect:
        notes.append(f"this run's row has a defect: {run.defect}")
    if run.restarted_from:
        notes.append(f"a restart of run {run.restarted_from}")
    if gone is not None:
        notes.append(
            f"nobody hosts this run since {offset_text(gone)} (owner {run.owner} dead);"
            " a worker will resume it"
        )
    return Timeline(
        run_id=run.run_id,
        workflow=run.workflow,
        status=run.status.value.upper(),
        end=end,
        running=not terminal,
        lanes=shown,
        marks=marks,
        spans=tuple(s.frozen() for s in fold.spans if s.call is None),
        hidden=hidden,
        notes=tuple(notes),
        owner_gone=gone,
    )


def _log_order(event: EventRecord) -> tuple[int, int]:
    return event.run_seq, event.seq


def _bounded(fold: LogFold, max_lanes: int, end: float) -> tuple[tuple[Lane, ...], Hidden | None]:
    """The lanes to draw, in call order, and a summary of the others (built
    without making their lanes: a long log costs its fold, not its tooltips)."""
    calls = fold.calls()
    if len(calls) <= max_lanes:
        return tuple(fold.lane(call, end) for call in calls), None
    keep = set(sorted(calls, key=lambda call: (fold.interest(call), call))[:max_lanes])
    outcomes: Counter[str] = Counter()
    activity = [0] * HIDDEN_SLICES
    width = (end or 1.0) / HIDDEN_SLICES
    for call in calls:
        if call in keep:
            continue
        for start, stop, outcome in fold.bars(call):
            outcomes[outcome] += 1
            first = min(int(start / width), HIDDEN_SLICES - 1)
            last = min(int((end if stop is None else stop) / width), HIDDEN_SLICES - 1)
            for i in range(max(first, 0), last + 1):
                activity[i] += 1
    hidden = Hidden(
        count=len(calls) - len(keep),
        outcomes=tuple(sorted(outcomes.items())),
        activity=tuple(activity),
    )
    return tuple(fold.lane(call, end) for call in sorted(keep)), hidden
