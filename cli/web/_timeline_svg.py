"""TEMP stand-in for the run page's timeline chart (engineer "timeline" owns it).

Returns an empty ``svg#timeline`` so the run page renders until the real
renderer is merged; this whole commit is dropped then.
"""

from __future__ import annotations

from collections.abc import Sequence

from markupsafe import Markup

from persistence import EventRecord, RunRecord, StepRecord


def timeline_svg(
    run: RunRecord,
    events: Sequence[EventRecord],
    steps: Sequence[StepRecord],
    *,
    now: float,
) -> Markup:
    """An empty ``<svg id="timeline">`` (stand-in)."""
    del run, events, steps, now
    return Markup('<svg id="timeline" xmlns="http://www.w3.org/2000/svg"></svg>')
