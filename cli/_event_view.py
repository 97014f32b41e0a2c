"""The event log as a terminal shows it: ``runs logs`` lines, ``cancel --wait``
streams and the demo's timelines.

Invariants: one event is one line (wrapped, never cut); each value of an
event's data is cut at :data:`VALUE_CHARS` characters with a note saying
how long it is and where to read it whole (``--json`` keeps every value);
user text is plain text, escaped (:mod:`cli._text`).
"""

from __future__ import annotations

import json
from typing import Final

from rich.text import Text

from cli._render import Grid, error_text, utc_text, when
from cli._signal_view import SIGNAL_EVENTS, signal_details
from cli._text import clean, plain
from persistence import EventRecord, EventType

#: The most characters of one value (a result, an argument, an error) a
#: line of ``runs logs`` shows; ``--json`` keeps every value whole.
VALUE_CHARS: Final = 1000


def cut(text: str) -> str:
    """``text``, or its first :data:`VALUE_CHARS` characters, how long it is,
    and where to read it whole (a 4 MB result was once printed in full)."""
    if len(text) <= VALUE_CHARS:
        return text
    return (
        f"{text[: VALUE_CHARS - 1]}… ({len(text)} chars; in full: runs logs --json"
        " or runs status --json)"
    )


def event_details(e: EventRecord) -> str:
    """One event's data for a line of ``runs logs``: each value cut (:func:`cut`)."""
    if e.defect is not None:
        return f"(cannot be read: {e.defect})"
    data = e.data
    if e.type in SIGNAL_EVENTS:
        return signal_details(e)
    if "error" in data and isinstance(data["error"], dict):
        return cut(error_text(data["error"]))
    parts = []
    for key, value in data.items():
        if value is None or key in {"origin", "traceback"}:
            continue
        # B4: a deadline is an instant, shown as every other time is.
        shown = when(value) if key == "deadline" and isinstance(value, int | float) else value
        parts.append(f"{key}={cut(json.dumps(shown, ensure_ascii=False))}")
    return " ".join(parts)


def step_label(e: EventRecord) -> str:
    if e.step is None:
        return ""
    if e.attempt is not None:
        return f"{e.step} #{e.call}.{e.attempt}"
    return f"{e.step} #{e.call}" if e.call is not None else e.step


def event_line(e: EventRecord) -> Text:
    """One event, one line (wrapped, never cut): for ``runs logs`` and ``cancel --wait``."""
    clock = utc_text(e.ts, "%H:%M:%S.%f")  # as `when`
    clock = clock[:-3] if ":" in clock else clock
    line = Text(f"{e.run_seq:>4}  {clock}  ")
    line.append(f"{e.type.value:<20}", style=_event_style(e.type))
    label = step_label(e)
    if label:
        line.append(f" {clean(label)}", style="bold")
    details = event_details(e)
    if details:
        line.append(f"  {clean(details)}", style="dim")
    return line


def _event_style(t: EventType) -> str:
    name = t.value
    if name.startswith("cancel"):
        return "yellow"
    if name.startswith(("shield", "scope")):
        return "blue"
    if name.startswith("signal"):
        return "cyan"
    if name.endswith(("failed", "terminated", "abandoned")) or name == "terminate_requested":
        return "red"
    if name.endswith("completed"):
        return "green"
    return ""


def timeline(events: list[EventRecord], title: str = "run timeline") -> Grid:
    """The run's events as rows, times relative to the first."""
    grid = Grid(["#", "+ms", "event", "step", "details"], title=title, right=frozenset({0, 1}))
    start = events[0].ts if events else 0.0
    for e in events:
        grid.add_row(
            str(e.run_seq),
            f"{(e.ts - start) * 1000:.1f}",
            Text(e.type.value, style=_event_style(e.type)),
            plain(step_label(e)),
            plain(event_details(e)),
        )
    return grid
