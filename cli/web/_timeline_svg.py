"""A run's timeline drawn as one ``<svg id="timeline">``: the run page's chart (O1).

One concept: :func:`timeline_svg` renders the :class:`~cli.web._timeline.Timeline`
of a run (built by :func:`~cli.web._timeline.build_timeline`) as SVG text.

Invariants:

- Every value that comes from the store (step and workflow names, run ids,
  reasons, error messages, heartbeat details) reaches the output only
  through :func:`markupsafe.escape`: elements are assembled by :func:`_el`,
  which escapes every attribute value and every text child; tag and
  attribute names are literals of this module. The result is well-formed XML.
- Every mark is one element with ``data-kind``, ``data-t`` (seconds since the
  run's creation), ``data-seq`` (the event's, when an event made it) and a
  ``<title>`` child (its tooltip): the page's DOM contract, which the
  browser tests read.
- The chart scales with its ``viewBox`` to the page's width, never below
  ``min-width`` (its style; the page scrolls it sideways); the only text
  is the header, the axis, the lane labels and the legend, laid out in
  columns of their own, so no two labels overlap.
"""

from __future__ import annotations

import bisect
import itertools
import math
from collections.abc import Sequence
from typing import Final
from urllib.parse import quote

from markupsafe import Markup

from cli.web._timeline import (
    Attempt,
    Hidden,
    Lane,
    Mark,
    Span,
    Timeline,
    build_timeline,
    offset_text,
)
from cli.web._timeline_key import (
    LINES,
    OUTCOMES,
    STYLE,
    STYLED,
    SYMBOLS,
    defs,
    el,
    legend,
    num,
    text_el,
)
from cli.web._timeline_scale import instants, stretched, tick_step, tick_text
from cli.web._timeline_values import cut
from persistence import EventRecord, RunRecord, StepRecord

WIDTH: Final = 1000
_LABEL_X: Final = 196  # lane labels end here (text-anchor end)
_X0: Final = 204
_X1: Final = 984
_TOP: Final = 52  # the run's own row starts here, below the header and the axis
_ROW: Final = 22
_BAR: Final = 12
_LABEL_CHARS: Final = 30
#: The least width between two instants something happens at (see ``_Chart``).
_MIN_GAP: Final = 12.0
#: The least width between two labels of the time axis.
_TICK_GAP: Final = 56.0


def timeline_svg(
    run: RunRecord,
    events: Sequence[EventRecord],
    steps: Sequence[StepRecord],
    *,
    now: float,
    owner_gone_at: float | None = None,
) -> Markup:
    """The run's timeline chart: one ``<svg id="timeline">`` element, safe to embed.

    Args:
        run: the run (``Store.get_run``); its ``created_at`` is time 0.
        events: its event log (``Store.events``).
        steps: its step attempts (``Store.steps``), for heartbeats and errors.
        now: wall-clock epoch seconds: the right edge of a run still going.
        owner_gone_at: epoch seconds: the dead owner's last sign of life (its
            runtime's last renewal) for a run nobody hosts; its open bars are
            drawn to it, then hatched "owner gone" to ``now``. None: alive.

    Returns:
        The SVG as :class:`markupsafe.Markup` (every user value escaped inside).
    """
    return render(build_timeline(run, events, steps, now=now, owner_gone_at=owner_gone_at))


def render(tl: Timeline) -> Markup:
    """SVG text of a built :class:`Timeline` (see :func:`timeline_svg`)."""
    chart = _Chart(tl)
    rows = len(tl.lanes) + (1 if tl.hidden else 0)
    bottom = _TOP + _ROW * (rows + 1)
    parts: list[Markup] = [el("style", {}, STYLE), defs()]
    parts.append(_header(tl))
    parts += chart.axis(bottom)
    parts.append(text_el(_LABEL_X, _TOP + 15, "run", cls="tl-label", anchor="end"))
    parts += [chart.span(s, _TOP, bottom) for s in tl.spans]
    if tl.owner_gone is not None:
        parts.append(chart.gone(_TOP))
    for row, lane in enumerate(tl.lanes, start=1):
        parts += chart.lane(lane, _TOP + row * _ROW)
    if tl.hidden:
        parts += chart.hidden(tl.hidden, _TOP + (len(tl.lanes) + 1) * _ROW)
    rows_of = {lane.call: _TOP + row * _ROW for row, lane in enumerate(tl.lanes, start=1)}
    for mark in tl.marks:  # a call's line spans its own lane; the run's, every row
        y = rows_of.get(mark.call, -1) if mark.call is not None else -1
        own = y >= 0
        parts.append(chart.mark(mark, y if own else _TOP, y + _ROW if own else bottom, own))
    parts.append(legend(bottom + 10))
    height = bottom + 82
    return el(
        "svg",
        {
            "id": "timeline",
            "xmlns": "http://www.w3.org/2000/svg",
            "viewBox": f"0 0 {WIDTH} {height}",
            "width": "100%",
            "preserveAspectRatio": "xMinYMin meet",
            "role": "img",
            "aria-label": f"timeline of run {tl.run_id}",
            "data-run-id": tl.run_id,
            "data-status": tl.status,
            "data-end": _t(tl.end),
        },
        *parts,
    )


class _Chart:
    """Positions on the chart: ``x(t)`` maps seconds to the plot's width.

    The time axis is stretched where records are dense: every instant
    something happens (a mark, a bar's or a span's ends, a heartbeat) is a
    knot, each gap between two knots gets at least ``_MIN_GAP`` units (less
    when there are too many knots for that) and the rest of the width is
    shared in proportion to the gaps' durations. So a cancel requested,
    buffered and delivered within a millisecond at the end of a long step
    stays readable; a band on the axis marks each stretch drawn wider than
    its duration (``_timeline_scale.stretched``).
    """

    def __init__(self, tl: Timeline) -> None:
        self.tl = tl
        end = tl.end if tl.end > 0 else 1.0
        # A knot is (time, seq): records of one instant (a group commit) get a
        # knot each, in log order, so their marks stand apart; -1 is an instant
        # no record made (a bar's end, a heartbeat), placed first at its time.
        knots = sorted(
            {(0.0, -1), (end, -1), *((min(max(t, 0.0), end), s) for t, s in instants(tl))}
        )
        width = _X1 - _X0
        gap = min(_MIN_GAP, width / 2 / (len(knots) - 1))
        spare = width - gap * (len(knots) - 1)
        xs = [float(_X0)]
        for (before, _), (after, _) in itertools.pairwise(knots):
            xs.append(xs[-1] + gap + spare * (after - before) / end)
        self.knots, self.xs = knots, xs
        self.at_knot = dict(zip(knots, xs, strict=True))

    def x(self, t: float, seq: int | None = None) -> float:
        """Where ``t`` is; with the ``seq`` of the record made then, that record's knot."""
        found = self.at_knot.get((t, -1 if seq is None else seq))
        if found is not None:
            return found
        knots, xs = self.knots, self.xs
        i = min(max(bisect.bisect_left(knots, (t, -2)), 1), len(knots) - 1)
        if knots[i][0] <= t:  # at a knot's time (or past the end): its first knot
            return xs[i]
        before, after = knots[i - 1][0], knots[i][0]
        return xs[i - 1] + (t - before) / (after - before) * (xs[i] - xs[i - 1])

    def axis(self, bottom: float) -> list[Markup]:
        """Round times along the top, each at least ``_TICK_GAP`` from the last drawn."""
        step = tick_step(self.tl.end)
        parts = [el("line", {"class": "tl-axis", "x1": _X0, "x2": _X1, "y1": 40, "y2": 40})]
        times = [k[0] for k in self.knots]
        for t0, t1, x0, x1 in stretched(times, self.xs, self.tl.end or 1.0):
            what = f"time stretched from {offset_text(t0)} to {offset_text(t1)}"
            what += ": drawn wider than its duration (records of one instant set apart)"
            box = {"x": num(x0), "y": 38, "width": num(x1 - x0), "height": 5}
            band = el("rect", {"class": "tl-stretched", **box})
            attrs = {"class": "tl-scale", "data-t": _t(t0), "data-t-end": _t(t1)}
            parts.append(el("g", attrs, el("title", {}, what), band))
        last = -math.inf
        for i in range(int(self.tl.end / step + 1e-9) + 1):
            x = self.x(i * step)
            if x - last < _TICK_GAP or (x > _X1 - _TICK_GAP / 3 and i):
                continue
            last = x
            grid = {"class": "tl-grid", "x1": num(x), "x2": num(x), "y1": 40, "y2": bottom}
            parts.append(el("line", grid))
            label = tick_text(i * step, step)
            parts.append(text_el(x, 36, label, cls="tl-tick-label", anchor="middle"))
        return parts

    def lane(self, lane: Lane, y: float) -> list[Markup]:
        label = _lane_label(lane)
        text = text_el(_LABEL_X, y + 15, label, cls="tl-label", anchor="end")
        if lane.child_run_id is not None:
            text = el("a", {"href": f"/runs/{quote(lane.child_run_id, safe='')}"}, text)
        parts = [
            el("g", {"class": "tl-lane", "data-call": lane.call}, el("title", {}, label), text)
        ]
        # a shield in a step's code is drawn over its bar (else the bar hides it)
        over = [s for s in lane.spans if s.kind == "shield"]
        parts += [self.span(s, y, y + _ROW) for s in lane.spans if s.kind != "shield"]
        for attempt in lane.attempts:
            parts += self.attempt(lane, attempt, y)
        parts += [self.span(s, y, y + _ROW, over=True) for s in over]
        parts += [self.mark(m, y, y + _ROW, True) for m in lane.marks]
        return parts

    def attempt(self, lane: Lane, a: Attempt, y: float) -> list[Markup]:
        end = a.end if a.end is not None else self.tl.open_end
        x0, x1 = self.x(a.start, a.seq), self.x(end)
        cls = f"tl-bar tl-{a.outcome if a.outcome in OUTCOMES else 'other'}"
        if a.waiting:
            cls += " tl-waiting"
        bar = el(
            "rect",
            {
                "class": cls,
                "x": num(x0),
                "y": y + 5,
                "width": num(max(x1 - x0, 2.0)),
                "height": _BAR,
                "rx": 2,
            },
        )
        kind = "attempt" if lane.kind == "step" else lane.kind
        attrs = {
            "data-kind": kind,
            "data-t": _t(a.start),
            "data-seq": a.seq,
            "data-call": lane.call,
            "data-attempt": a.number,
            "data-outcome": a.outcome,
            "data-t-end": _t(a.end) if a.end is not None else None,
            "data-ignored-cancel": "true" if a.ignored_cancel else None,
            "data-child-run-id": lane.child_run_id,
        }
        shapes = [bar]
        if a.ignored_from is not None:  # outlined from the cancel request on, not before
            xi = max(self.x(a.ignored_from), x0)
            box = {"x": num(xi), "y": y + 5, "width": num(max(x1 - xi, 2.0)), "height": _BAR}
            shapes.append(el("rect", {"class": "tl-ignored", **box, "data-t": _t(a.ignored_from)}))
        parts = [el("g", attrs, el("title", {}, a.what), *shapes)]
        if a.end is None and self.tl.owner_gone is not None:
            parts.append(self.gone(y))
        if a.heartbeat is not None:
            x = num(self.x(a.heartbeat))
            tick = el(
                "line", {"class": "tl-heartbeat", "x1": x, "x2": x, "y1": y + 2, "y2": y + 20}
            )
            beat = {
                "data-kind": "heartbeat",
                "data-t": _t(a.heartbeat),
                "data-call": lane.call,
                "data-attempt": a.number,
            }
            parts.append(el("g", beat, el("title", {}, a.heartbeat_what or "heartbeat"), tick))
        return parts

    def gone(self, y: float) -> Markup:
        """The "owner gone" hatch of a row, from the owner's last sign of life to the end."""
        gone = self.tl.owner_gone or 0.0
        x0 = self.x(gone)
        box = {"x": num(x0), "y": y + 3, "width": num(max(self.x(self.tl.end) - x0, 2.0))}
        shape = el("rect", {"class": "tl-owner-gone", **box, "height": _BAR + 4})
        what = (
            f"nobody hosts this run since {offset_text(gone)} (owner dead); a worker will resume it"
        )
        attrs = {"data-kind": "owner-gone", "data-t": _t(gone), "data-t-end": _t(self.tl.end)}
        return el("g", attrs, el("title", {}, what), shape)

    def span(self, s: Span, top: float, bottom: float, *, over: bool = False) -> Markup:
        end = s.end if s.end is not None else self.tl.open_end
        x0, x1 = self.x(s.t, s.seq), self.x(end)
        inset = 2 + 2 * s.depth if s.kind != "backoff" else 5
        height = max(bottom - top - 2 * inset, 2) if s.kind != "backoff" else _BAR
        shape = el(
            "rect",
            {
                "class": f"tl-{s.kind}" + (" tl-over" if over else ""),
                "x": num(x0),
                "y": top + inset,
                "width": num(max(x1 - x0, 1.0)),
                "height": height,
            },
        )
        until = offset_text(s.end) if s.end is not None else "still open"
        what = f"{s.what}: {offset_text(s.t)} to {until}"
        attrs = {
            "data-kind": s.kind,
            "data-t": _t(s.t),
            "data-seq": s.seq,
            "data-t-end": _t(s.end) if s.end is not None else None,
            "data-call": s.call,
            "data-attempt": s.attempt,
            "data-depth": s.depth,
        }
        return el("g", attrs, el("title", {}, what), shape)

    def mark(self, m: Mark, y: float, bottom: float, own: bool = False) -> Markup:
        """A mark at row ``y``; its line (if its kind has one) runs to ``bottom``,
        from the axis, or from ``y`` when ``own`` (a call's mark: its lane only)."""
        x = num(self.x(m.t, m.seq))
        shapes = []
        if m.kind in LINES:
            top = y if own else 42
            line = {"class": f"tl-line tl-{m.kind}", "x1": x, "x2": x, "y1": top, "y2": bottom}
            shapes.append(el("line", line))
        symbol = SYMBOLS.get(m.kind, "M0,-5 L0,5")
        cls = f"tl-{m.kind}" if m.kind in STYLED else "tl-symbol"
        shapes.append(
            el("path", {"class": cls, "d": symbol, "transform": f"translate({x},{num(y + 11)})"})
        )
        attrs = {
            "data-kind": m.kind,
            "data-t": _t(m.t),
            "data-seq": m.seq,
            "data-call": m.call,
            "data-attempt": m.attempt,
            "data-status": m.status,
        }
        return el("g", attrs, el("title", {}, f"{m.what} ({offset_text(m.t)})"), *shapes)

    def hidden(self, h: Hidden, y: float) -> list[Markup]:
        outcomes = ", ".join(f"{n} {o}" for o, n in h.outcomes)
        label = f"+{h.count} more calls"
        what = f"{h.count} calls not drawn one by one ({outcomes}); bars: how many were busy"
        if h.marks:
            what += f"; {h.marks} marks of theirs (cancels delivered, ...) left out"
        peak = max(h.activity, default=0) or 1
        width = self.tl.end / len(h.activity) if h.activity else 0.0
        bars = [
            el(
                "rect",
                {
                    "class": "tl-hidden",
                    "x": num(self.x(i * width)),
                    "width": num(max(self.x((i + 1) * width) - self.x(i * width), 0.5)),
                    "y": num(y + 19 - 16 * n / peak),
                    "height": num(16 * n / peak),
                },
            )
            for i, n in enumerate(h.activity)
            if n
        ]
        text = text_el(_LABEL_X, y + 15, label, cls="tl-label", anchor="end")
        return [
            el(
                "g",
                {"class": "tl-hidden-calls", "data-count": h.count},
                el("title", {}, what),
                text,
                *bars,
            )
        ]


def _header(tl: Timeline) -> Markup:
    state = f"{tl.status}, {offset_text(tl.end)}" + (" so far" if tl.running else "")
    line = f"{tl.workflow} · run {tl.run_id} · {state}"
    parts = [text_el(10, 16, cut(line, 150), cls="tl-label")]
    notes = "; ".join(tl.notes)
    if notes:
        parts.append(text_el(10, 28, cut(notes, 160), cls="tl-tick-label"))
    return el("g", {"class": "tl-header"}, *parts)


def _lane_label(lane: Lane) -> str:
    name = lane.name.rsplit(".", 1)[-1] if lane.kind in ("step", "child") else lane.name
    return f"{cut(name, _LABEL_CHARS)} #{lane.call}"


def _t(t: float | None) -> str | None:
    return None if t is None else f"{t:.6f}"
