"""What a run's timeline chart shows, as frozen values: lanes, bars, spans and marks.

One concept: the shape :func:`cli.web._timeline.build_timeline` returns and
:mod:`cli.web._timeline_svg` draws. Nothing here reads a store or a clock.

Invariants:

- Every time is a float of seconds since the run's creation (its
  ``created_at``), never negative.
- ``end`` None means still open: the chart draws it to :attr:`Timeline.end`.
- ``what`` is the tooltip of the thing: what happened, to what, and why,
  as plain text (the renderer escapes it), at most a few hundred characters.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

#: A tooltip's longest text; past it, cut with an ellipsis.
TEXT_LIMIT: Final = 300

#: What a step attempt's bar can say (the SVG's ``data-outcome``).
STEP_OUTCOMES: Final = ("completed", "failed", "cancelled", "timed_out", "abandoned", "running")


@dataclass(frozen=True, slots=True, kw_only=True)
class Mark:
    """An instant: ``kind`` is the SVG's ``data-kind`` (``cancel-requested``, ...).

    ``call`` None: the run's or its body's own; else the lane of that call.
    ``seq``: the event's global sequence number. ``status``: a terminal
    mark's run status (``COMPLETED``, ``FAILED``, ``CANCELLED``, ``TERMINATED``).
    """

    kind: str
    t: float
    seq: int | None
    what: str
    call: int | None = None
    attempt: int | None = None
    status: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Span:
    """A stretch of time: ``kind`` ``shield``, ``scope`` (a cancel scope) or ``backoff``.

    ``call`` None: the body's; else that call's (a shield inside a step's
    code, a back-off between two attempts). ``depth``: how many spans of its
    kind it is nested in (0: the outermost).
    """

    kind: str
    t: float
    end: float | None
    seq: int | None
    what: str
    call: int | None = None
    attempt: int | None = None
    depth: int = 0


@dataclass(frozen=True, slots=True, kw_only=True)
class Attempt:
    """One bar of a lane: a step attempt, or a child run, a sleep or a signal wait.

    ``outcome``: for a step one of :data:`STEP_OUTCOMES`; a child run's
    status (``completed``, ``cancelled``, ...), a sleep's ``fired``, a
    wait's ``received``, a reused call's ``reused`` otherwise.
    ``heartbeat``: the attempt's latest heartbeat (the only one the store keeps).
    ``ignored_cancel``: it ran on after the run's cancel request without
    meeting it (not shielded, no ``cancel_delivered`` to its call): the step
    that never checks (C4).
    """

    number: int
    start: float
    end: float | None
    outcome: str
    seq: int | None
    what: str
    heartbeat: float | None = None
    heartbeat_what: str | None = None
    shielded: bool = False
    waiting: bool = False
    ignored_cancel: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class Lane:
    """One call of the body: ``kind`` ``step``, ``child``, ``sleep``, ``signal`` or ``reused``."""

    call: int
    kind: str
    name: str
    attempts: tuple[Attempt, ...] = ()
    spans: tuple[Span, ...] = ()
    marks: tuple[Mark, ...] = ()
    child_run_id: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Hidden:
    """The lanes not drawn one by one: how many, how their bars ended (outcome,
    count), and ``activity[i]``: how many of their bars were open in the i-th
    of equal slices of the chart's time."""

    count: int
    outcomes: tuple[tuple[str, int], ...]
    activity: tuple[int, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class Timeline:
    """Everything the chart draws of one run.

    ``status``: the run's, upper case. ``end``: the right edge in seconds
    (``now`` for a run still going). ``lanes`` in call order; ``marks`` and
    ``spans`` the run's and its body's; ``notes``: what the header says
    besides (a defect of the run's row, the run it restarts).
    """

    run_id: str
    workflow: str
    status: str
    end: float
    running: bool
    lanes: tuple[Lane, ...]
    marks: tuple[Mark, ...]
    spans: tuple[Span, ...]
    hidden: Hidden | None = None
    notes: tuple[str, ...] = ()


def offset_text(t: float) -> str:
    """Seconds since the run's creation as read by a person: ``+0.153s``,
    ``+2m03.1s``, ``+1h02m``."""
    if t < 60:
        return f"+{t:.3f}s"
    if t < 3600:
        return f"+{int(t // 60)}m{t % 60:04.1f}s"
    return f"+{int(t // 3600)}h{int(t % 3600 // 60):02d}m"


def cut(text: str, limit: int = TEXT_LIMIT) -> str:
    """``text``, at most ``limit`` characters (an ellipsis says it was cut)."""
    return text if len(text) <= limit else text[: limit - 1] + "…"
