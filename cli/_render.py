"""How runs, steps and events look on a terminal (rich) and as JSON."""

from __future__ import annotations

import datetime as dt
import json
import sys
import time
from collections.abc import Iterable
from typing import Any

import click
from rich.console import Console
from rich.table import Table
from rich.text import Text
from rich.tree import Tree

from persistence import EventRecord, EventType, RunRecord, RunState, StepRecord

STATUS_STYLE = {
    RunState.PENDING: "dim",
    RunState.RUNNING: "cyan",
    RunState.CANCELLING: "yellow",
    RunState.COMPLETED: "green",
    RunState.FAILED: "red",
    RunState.CANCELLED: "magenta",
    RunState.TERMINATED: "bold red",
}


#: Width of output that goes to a pipe or a file, where rich would assume 80.
PIPE_WIDTH = 200


def console() -> Console:
    # Made at each call: click's test runner swaps sys.stdout per invocation.
    width = None if sys.stdout.isatty() else PIPE_WIDTH
    return Console(highlight=False, soft_wrap=True, width=width)


def echo_json(value: Any) -> None:
    click.echo(json.dumps(value, ensure_ascii=False))


def status_text(status: RunState | str, *, unreadable: bool = False) -> Text:
    """The state in capitals; ``unreadable`` marks a row that cannot be read whole."""
    state = RunState(status) if isinstance(status, str) else status
    text = Text(state.value.upper(), style=STATUS_STYLE.get(state, ""))
    if unreadable:
        text.append(" (bad row)", style="bold red")
    return text


def when(ts: float | None) -> str:
    if ts is None:
        return "-"
    return dt.datetime.fromtimestamp(ts).strftime("%Y-%m-%d %H:%M:%S")


def duration(start: float | None, end: float | None) -> str:
    if start is None:
        return "-"
    seconds = (end if end is not None else time.time()) - start
    text = _seconds(seconds)
    return text if end is not None else f"{text}+"


def _seconds(seconds: float) -> str:
    if seconds < 1:
        return f"{seconds * 1000:.0f}ms"
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, secs = divmod(int(seconds), 60)
    if minutes < 60:
        return f"{minutes}m{secs:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m"


def runs_table(runs: list[RunRecord], *, more: bool = False) -> Table:
    notes = [f"the newest {len(runs)} runs; there are more (use --limit)"] if more else []
    if any(run.defect is not None for run in runs):
        notes.append("a (bad row) cannot be read whole: `proctor runs status RUN_ID` says why")
    caption = "; ".join(notes) or None
    table = Table(caption=caption, box=None, header_style="bold")
    table.add_column("RUN ID", no_wrap=True, min_width=32)
    table.add_column("WORKFLOW", no_wrap=True)
    table.add_column("STATUS", no_wrap=True)
    table.add_column("STARTED", no_wrap=True)
    table.add_column("DURATION", justify="right", no_wrap=True)
    table.add_column("CANCEL REASON")
    for run in runs:
        table.add_row(
            run.run_id,
            run.workflow,
            status_text(run.status, unreadable=run.defect is not None),
            when(run.started_at or run.created_at),
            duration(run.started_at, run.finished_at),
            run.cancel_reason or "",
        )
    return table


def event_details(e: EventRecord) -> str:
    if e.defect is not None:
        return f"(cannot be read: {e.defect})"
    data = e.data
    if "error" in data and isinstance(data["error"], dict):
        return f"{data['error'].get('type')}: {data['error'].get('message')}"
    parts = []
    for key, value in data.items():
        if value is None or key in {"origin", "traceback"}:
            continue
        parts.append(f"{key}={json.dumps(value, ensure_ascii=False)}")
    return " ".join(parts)


def step_label(e: EventRecord) -> str:
    if e.step is None:
        return ""
    if e.attempt is not None:
        return f"{e.step} #{e.call}.{e.attempt}"
    return f"{e.step} #{e.call}" if e.call is not None else e.step


def event_line(e: EventRecord) -> Text:
    """One event, one line: for ``runs logs`` and ``cancel --wait``."""
    clock = dt.datetime.fromtimestamp(e.ts).strftime("%H:%M:%S.%f")[:-3]
    line = Text(f"{e.run_seq:>4}  {clock}  ")
    line.append(f"{e.type.value:<20}", style=_event_style(e.type))
    label = step_label(e)
    if label:
        line.append(f" {label}", style="bold")
    details = event_details(e)
    if details:
        line.append(f"  {details}", style="dim")
    return line


def _event_style(t: EventType) -> str:
    name = t.value
    if name.startswith("cancel"):
        return "yellow"
    if name.startswith("shield"):
        return "blue"
    if name.endswith(("failed", "terminated", "abandoned")) or name == "terminate_requested":
        return "red"
    if name.endswith("completed"):
        return "green"
    return ""


def timeline(events: list[EventRecord], title: str = "run timeline") -> Table:
    """The run's events as a table, times relative to the first."""
    table = Table(title=title, header_style="bold")
    table.add_column("#", justify="right")
    table.add_column("+ms", justify="right")
    table.add_column("event")
    table.add_column("step")
    table.add_column("details")
    start = events[0].ts if events else 0.0
    for e in events:
        table.add_row(
            str(e.run_seq),
            f"{(e.ts - start) * 1000:.1f}",
            Text(e.type.value, style=_event_style(e.type)),
            step_label(e),
            event_details(e),
        )
    return table


def steps_table(steps: Iterable[StepRecord]) -> Table:
    table = Table(box=None, header_style="bold", title="steps", title_justify="left")
    table.add_column("CALL", justify="right")
    table.add_column("STEP", no_wrap=True)
    table.add_column("ATTEMPT", justify="right")
    table.add_column("STATUS")
    table.add_column("STARTED", no_wrap=True)
    table.add_column("DURATION", justify="right")
    table.add_column("SHIELDED")
    table.add_column("LAST HEARTBEAT")
    for s in steps:
        heartbeat = "-"
        if s.heartbeat_at is not None:
            heartbeat = when(s.heartbeat_at)
            if s.heartbeat_details is not None:
                heartbeat += f" {json.dumps(s.heartbeat_details)}"
        table.add_row(
            str(s.call),
            s.name,
            str(s.attempt),
            s.status.value,
            when(s.started_at),
            duration(s.started_at, s.finished_at),
            "yes" if s.shielded else "",
            heartbeat,
        )
    return table


def tree_node(run: RunRecord) -> Text:
    text = Text("run ", style="bold")
    text.append(run.run_id, style="bold")
    text.append(f" ({run.workflow}) ")
    text.append_text(status_text(run.status))
    if run.cancel_reason:
        text.append(f"  cancel: {run.cancel_reason}", style="yellow")
    return text


def new_tree(run: RunRecord) -> Tree:
    return Tree(tree_node(run))
