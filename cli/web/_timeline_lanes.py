"""One call's lane of the timeline while the log is read, and the lane it freezes into.

One concept: a :class:`LaneBuilder` holds what the log says of one call of
the body (its bars, back-offs and marks) as the fold reads it, and turns it
into a frozen :class:`~cli.web._timeline_values.Lane` with its tooltips.
It also says how much an operator wants the lane drawn (:meth:`interest`)
and whether an attempt ignored the run's cancel (:meth:`ignored`).

Invariants:

- A bar has one start; its end is set once, by the first record that ends
  it (``Bar.end`` None: still open, drawn to the chart's end).
- An attempt *ignored the cancel* when it is a step attempt, not started in
  a shield, the run's first cancel request came while it ran and before it
  ended, no ``cancel_delivered`` or ``cancel_buffered`` names its call (a
  shield in its code that held the cancel met it), and it did not end
  cancelled: the step that never checks (C2, C4).
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from typing import Final

from cli.web._timeline_values import (
    Attempt,
    Lane,
    Mark,
    Span,
    cut,
    details_text,
    error_why,
    offset_text,
)
from persistence import StepRecord

#: Outcomes of an attempt that ran on past a cancel it never met.
_RAN_ON: Final = frozenset({"running", "completed", "failed", "abandoned", "timed_out"})
_TROUBLE: Final = frozenset({"failed", "timed_out", "abandoned"})


@dataclass(slots=True)
class Bar:
    """A bar under construction (see :class:`Attempt`)."""

    number: int
    start: float
    seq: int | None
    outcome: str = "running"
    end: float | None = None
    note: str | None = None
    shielded: bool = False
    waiting: bool = False


@dataclass(slots=True)
class OpenSpan:
    """A span under construction (see :class:`Span`); ``scope``: a cancel scope's."""

    kind: str
    t: float
    seq: int | None
    what: str
    call: int | None = None
    attempt: int | None = None
    depth: int = 0
    scope: bool = False
    end: float | None = None

    def frozen(self) -> Span:
        return Span(
            kind=self.kind,
            t=self.t,
            end=self.end,
            seq=self.seq,
            what=self.what,
            call=self.call,
            attempt=self.attempt,
            depth=self.depth,
        )


@dataclass(frozen=True, slots=True)
class CancelSeen:
    """What the log says of the run's cancel: when it was first requested (None:
    never) and the calls it reached: delivered, or buffered by a shield in
    the step's code (None: the body)."""

    at: float | None
    met: Collection[int | None]


@dataclass(slots=True)
class LaneBuilder:
    """One call's lane under construction: ``kind`` step, child, sleep, signal or reused."""

    call: int
    kind: str
    name: str
    bars: list[Bar] = field(default_factory=list)
    backoffs: list[OpenSpan] = field(default_factory=list)
    marks: list[Mark] = field(default_factory=list)
    child: str | None = None

    def end_last(self, t: float, outcome: str, note: str | None) -> None:
        """The lane's last bar ends (one is made if its start is not in the log)."""
        if not self.bars or self.bars[-1].end is not None:
            self.bars.append(Bar(1, t, None))
        bar = self.bars[-1]
        bar.end, bar.outcome, bar.note = t, outcome, note or bar.note

    def summary(self) -> list[tuple[float, float | None, str]]:
        """The bars as (start, end or None, outcome): cheap, for a lane not drawn."""
        return [(b.start, b.end, b.outcome) for b in self.bars]

    def ignored(self, bar: Bar, stop: float, cancel: CancelSeen) -> bool:
        """The attempt ran on past the run's cancel request without meeting it."""
        return (
            self.kind == "step"
            and cancel.at is not None
            and not bar.shielded
            and self.call not in cancel.met
            and bar.start <= cancel.at < stop
            and bar.outcome in _RAN_ON
        )

    def interest(self, cancel: CancelSeen) -> int:
        """How much an operator chasing a stuck run wants this lane drawn (lower:
        more): 0 open or ran on past the cancel, 1 failed, timed out or abandoned,
        2 retried, cancelled, marked or not a step, 3 one plain completed attempt."""
        if any(b.end is None or self.ignored(b, b.end, cancel) for b in self.bars):
            return 0
        if any(b.outcome in _TROUBLE for b in self.bars):
            return 1
        plain = self.kind == "step" and not self.marks and len(self.bars) == 1
        return 3 if plain and self.bars[0].outcome == "completed" else 2

    def freeze(
        self,
        end: float,
        cancel: CancelSeen,
        records: Mapping[tuple[int, int], StepRecord],
        created_at: float,
        spans: list[Span],
    ) -> Lane:
        """The lane, frozen: open bars are drawn to ``end``; ``records`` are the
        run's step attempts (heartbeats, errors); ``spans`` the call's own shields."""
        attempts = []
        for bar in self.bars:
            record = records.get((self.call, bar.number)) if self.kind == "step" else None
            attempts.append(self._attempt(bar, end, cancel, record, created_at))
        return Lane(
            call=self.call,
            kind=self.kind,
            name=self.name,
            attempts=tuple(attempts),
            spans=tuple([b.frozen() for b in self.backoffs] + spans),
            marks=tuple(self.marks),
            child_run_id=self.child,
        )

    def _attempt(
        self,
        bar: Bar,
        end: float,
        cancel: CancelSeen,
        record: StepRecord | None,
        created_at: float,
    ) -> Attempt:
        stop = bar.end if bar.end is not None else end
        beat = beat_what = None
        note = bar.note
        if record is not None:
            note = note or error_why(record.error) or None
            if record.heartbeat_at is not None:
                beat = min(max(record.heartbeat_at - created_at, bar.start), stop)
                beat_what = (
                    f"latest heartbeat of {self.name} #{self.call} attempt {bar.number}"
                    f" at {offset_text(beat)}{details_text(record.heartbeat_details)}"
                    " (the store keeps only an attempt's latest heartbeat)"
                )
        ignored = self.ignored(bar, stop, cancel)
        head = {
            "step": f"step {self.name} #{self.call} attempt {bar.number}",
            "child": f"child run {self.name} #{self.call}",
        }.get(self.kind, f"{self.name} #{self.call}")
        until = offset_text(bar.end) if bar.end is not None else "still open"
        what = f"{head}: {bar.outcome}, {offset_text(bar.start)} to {until}"
        what += ", waiting for a step slot" if bar.waiting else ""
        what += ", started in a shield" if bar.shielded else ""
        what += f"; {note.lstrip(': ')}" if note else ""
        if ignored:
            what += "; ran on past the cancel request without meeting it (no check, no heartbeat)"
        if record is not None and record.defect:
            what += f"; its row has a defect: {record.defect}"
        return Attempt(
            number=bar.number,
            start=bar.start,
            end=bar.end,
            outcome=bar.outcome,
            seq=bar.seq,
            what=cut(what),
            heartbeat=beat,
            heartbeat_what=beat_what,
            shielded=bar.shielded,
            waiting=bar.waiting,
            ignored_cancel=ignored,
            ignored_from=cancel.at if ignored else None,
        )
