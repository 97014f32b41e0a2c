"""The timeline chart's time axis: its round ticks and where its scale is not linear.

One concept: reading the chart's piecewise-linear time scale (knots of
``(time, x)`` built by ``_timeline_svg._Chart``) back as an axis a person
can trust: round tick times and their labels, and the stretches the scale
draws wider than their share of the run's time (:func:`stretched`), which
the axis marks with a band so nobody reads distances there as durations.

Invariants: pure functions of numbers; a stretch is reported only where its
scale is at least :data:`STRETCH` times the chart's mean scale, and
consecutive such gaps are merged into one stretch.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from typing import Final

from cli.web._timeline_values import Timeline

#: A gap drawn this many times wider than the chart's mean scale is "stretched".
STRETCH: Final = 2.0


def instants(tl: Timeline) -> Iterator[tuple[float, int]]:
    """Every instant something happens on the chart, with the record that made
    it (-1: none): the knots of its time axis."""
    spans = list(tl.spans)
    for m in tl.marks:
        yield m.t, -1 if m.seq is None else m.seq
    for lane in tl.lanes:
        spans += lane.spans
        for a in lane.attempts:
            yield a.start, -1 if a.seq is None else a.seq
            if a.end is not None:
                yield a.end, -1
            if a.heartbeat is not None:
                yield a.heartbeat, -1
        for m in lane.marks:
            yield m.t, -1 if m.seq is None else m.seq
    for s in spans:
        yield s.t, -1 if s.seq is None else s.seq
        if s.end is not None:
            yield s.end, -1


def stretched(
    times: Sequence[float], xs: Sequence[float], end: float
) -> list[tuple[float, float, float, float]]:
    """The stretches drawn wider than their time's share, merged: ``(t0, t1, x0, x1)``.

    ``times``/``xs``: the scale's knots (times in seconds, ascending, with
    their x); ``end``: the chart's duration (the mean scale is the knots' x
    range over it). A zero-length gap between two knots (records of one
    instant set apart) always counts as stretched.
    """
    if len(times) < 2 or end <= 0:
        return []
    mean = (xs[-1] - xs[0]) / end
    found: list[tuple[float, float, float, float]] = []
    for i in range(len(times) - 1):
        dt, dx = times[i + 1] - times[i], xs[i + 1] - xs[i]
        if dx <= 0 or dx < STRETCH * mean * dt:
            continue
        if found and found[-1][3] == xs[i]:
            t0, _, x0, _ = found[-1]
            found[-1] = (t0, times[i + 1], x0, xs[i + 1])
        else:
            found.append((times[i], times[i + 1], xs[i], xs[i + 1]))
    return found


def tick_step(end: float) -> float:
    """A round step giving 4 to 10 ticks over ``end`` seconds (1, 2, 5 times a power of ten,
    or minutes and hours past a minute)."""
    if end <= 0:
        return 1.0
    raw = end / 8
    for nice in (60, 120, 300, 600, 900, 1800, 3600, 7200, 21600, 43200, 86400):
        if raw <= nice and end > 60:
            return float(nice)
    power = 10.0 ** math.floor(math.log10(raw))
    return next(m * power for m in (1, 2, 5, 10) if m * power >= raw)


def tick_text(t: float, step: float) -> str:
    """A tick's label: ``t`` seconds in the unit of ``step`` (h, m, s or ms)."""
    if step >= 3600:
        return f"{t / 3600:g}h"
    if step >= 60:
        return f"{t / 60:g}m"
    if step >= 1:
        return f"{t:g}s"
    return f"{t * 1000:.{max(0, -math.floor(math.log10(step * 1000)))}f}ms"
