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

import json
from dataclasses import dataclass
from typing import Any, Final

from persistence import EventRecord, EventType

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
    #: When it ignored the cancel: the request's time (drawn from there on).
    ignored_from: float | None = None


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
    count), ``activity[i]``: how many of their bars were open in the i-th of
    equal slices of the chart's time, and ``marks``: how many marks of theirs
    (a cancel delivered to one of them, ...) are left out with them."""

    count: int
    outcomes: tuple[tuple[str, int], ...]
    activity: tuple[int, ...]
    marks: int = 0


@dataclass(frozen=True, slots=True, kw_only=True)
class Timeline:
    """Everything the chart draws of one run.

    ``status``: the run's, upper case. ``end``: the right edge in seconds
    (``now`` for a run still going). ``lanes`` in call order; ``marks`` and
    ``spans`` the run's and its body's; ``notes``: what the header says
    besides (a defect of the run's row, the run it restarts, its owner gone).
    ``owner_gone``: for a run still going whose owner is dead, its owner's
    last sign of life (seconds): open bars are drawn to it, then an "owner
    gone" hatch to ``end``; None otherwise.
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
    owner_gone: float | None = None

    @property
    def open_end(self) -> float:
        """Where what is still open is drawn to: the owner's death, else ``end``."""
        return self.end if self.owner_gone is None else self.owner_gone


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


# -- the tooltips' words: each returns "" for a value that is not there ----------------


def run_mark_what(e: EventRecord) -> str:
    """A run-level record in words: created, claimed, resumed (by whom, why), started, a signal."""
    d = e.data
    if e.type is EventType.RUN_CREATED:
        return f"run created: workflow {d.get('workflow')}"
    if e.type is EventType.RUN_RESUMED:
        was = f" (was {d['previous_owner']})" if d.get("previous_owner") else ""
        return f"run resumed by {d.get('owner')}{was}{why(d.get('why'))}"
    if e.type is EventType.RUN_CLAIMED:
        return f"run claimed by {d.get('owner')}"
    if e.type is EventType.SIGNAL_SENT:
        return f"signal {d.get('name')} sent"
    return "run started"


def cancel_what(d: dict[str, Any]) -> str:
    grace = d.get("grace")
    after = f", grace {grace:g}s" if isinstance(grace, (int, float)) else ""
    return f"cancel requested{source_text(d)}{after}{why(d.get('reason'))}"


def source_text(d: dict[str, Any]) -> str:
    return f" by {d['source']}" if d.get("source") else ""


def why(reason: object) -> str:
    return f": {cut(str(reason))}" if reason else ""


def error_why(error: object) -> str:
    if not isinstance(error, dict):
        return ""
    return f": {cut(str(error.get('type', 'error')) + ': ' + str(error.get('message', '')))}"


def details_text(details: object) -> str:
    if details is None:
        return ""
    return f", details {cut(json.dumps(details, ensure_ascii=False, default=str), 120)}"
