"""A restarted run's reused calls (A7), as ``runs status`` shows them.

A restart from call N starts with the old run's recorded ends of calls
``0 .. N-1`` as ``call_reused`` records; they never ran in the new run, so
the ``steps`` projection has no row for them. ``runs status`` lists them
beside its steps, each marked reused and naming the run whose end it copies.

Invariants: pure (reads only the events it is given); one row per
``call_reused`` record, in call order.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from rich.text import Text

from cli._render import Grid, step_style
from cli._text import plain
from persistence import EventRecord, EventType, reused_end


def reused_calls(events: Iterable[EventRecord]) -> list[dict[str, Any]]:
    """Each reused call: call, kind (step, child, signal or timer), name, the status it
    ended with in the old run, and that run (``from_run``)."""
    rows = []
    for e in events:
        if e.type is not EventType.CALL_REUSED:
            continue
        end, data = reused_end(e)
        if end is EventType.CHILD_ENDED:
            status = str(data.get("status"))
        elif end is EventType.SIGNAL_RECEIVED:
            status = "received"  # B5: a signal wait, reused with its payload
        elif end is EventType.TIMER_FIRED:
            status = "timed out" if e.data.get("kind") == "signal" else "fired"
        else:
            status = end.value.removeprefix("step_")
        rows.append(
            {
                "call": e.call,
                "kind": e.data.get("kind"),
                "name": e.step,
                "status": status,
                "from_run": e.data.get("from_run"),
            }
        )
    return sorted(rows, key=lambda r: r["call"] if isinstance(r["call"], int) else -1)


def reused_table(rows: list[dict[str, Any]]) -> Grid:
    """The reused calls as a table, each marked ``reused``."""
    grid = Grid(
        ["CALL", "STEP", "KIND", "STATUS", "REUSED FROM"],
        title="reused calls",
        right=frozenset({0}),
    )
    for r in rows:
        status = r["status"]
        grid.add_row(
            str(r["call"]),
            plain(str(r["name"])),
            str(r["kind"]),
            Text(f"reused: {status}", style=step_style(status)),
            plain(str(r["from_run"])),
        )
    return grid
