"""How runs, steps and events look on a terminal (rich) and as JSON.

Invariants (docs/cli.md, "Reading the output"):

- User text is plain text, escaped (:mod:`cli._text`); the console never
  parses markup or emoji codes.
- No view drops content at any width. Rows under headers are a table when
  the table fits, and otherwise one block per row, each value wrapping under
  its label (:class:`Grid`); a status is never cut. A line that is longer
  than the width wraps, only at spaces (:mod:`cli._wrapping`): a value a
  user copies back (a run id, a cursor) is never broken; nothing is cropped.
- The width is ``COLUMNS`` when set, else the terminal's; output to a pipe
  or a file without ``COLUMNS`` is not limited (one line per row).
"""

from __future__ import annotations

import datetime as dt
import json
import math
import os
import sys
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

import click
from rich.console import Console, ConsoleOptions, RenderableType, RenderResult
from rich.measure import Measurement
from rich.table import Table
from rich.text import Text

from cli._text import clean, json_text, plain
from cli._wrapping import Console as WrappingConsole
from cli._wrapping import Labelled, Wrapped, copyable, whole
from persistence import EventRecord, EventType, RunRecord, RunState, StepRecord, calls_phrase

STATUS_STYLE = {
    RunState.PENDING: "dim",
    RunState.RUNNING: "cyan",
    RunState.CANCELLING: "yellow",
    RunState.COMPLETED: "green",
    RunState.FAILED: "red",
    RunState.CANCELLED: "magenta",
    RunState.TERMINATED: "bold red",
}

#: Width of output to a pipe or a file without ``COLUMNS``: in effect unlimited,
#: so a script reading it gets one line per row and nothing cut.
PIPE_WIDTH: Final = 1_000_000


def width() -> int | None:
    """``COLUMNS`` if set; None (the terminal's) on a terminal; else :data:`PIPE_WIDTH`."""
    columns = os.environ.get("COLUMNS", "").strip()
    if columns.isdigit() and int(columns) > 0:
        return int(columns)
    return None if sys.stdout.isatty() else PIPE_WIDTH


def console() -> Console:
    # Made at each call: click's test runner swaps sys.stdout per invocation.
    return WrappingConsole(highlight=False, markup=False, emoji=False, width=width())


def echo_json(value: Any) -> None:
    click.echo(json_text(value))


def status_text(
    status: RunState | str, *, owner_dead: bool = False, unreadable: bool = False
) -> Text:
    """The state in capitals; marks a run whose owner is dead, and a row that
    cannot be read whole."""
    state = RunState(status) if isinstance(status, str) else status
    text = Text(state.value.upper(), style=STATUS_STYLE.get(state, ""))
    if owner_dead:
        text.append(" (owner dead)", style="red")
    if unreadable:
        text.append(" (bad row)", style="bold red")
    return text


def when(ts: float | None) -> str:
    """A time as the CLI prints it: ISO 8601 in UTC, to the second
    (``2026-11-29T20:32:32Z``), one word that ``--since`` reads back as
    the same instant in any local zone. A stored instant that is no date
    (past year 9999, NaN, not a number: a store written by another version
    or by hand) is shown as its raw number, never a crash of a read command."""
    if ts is None:
        return "-"
    return utc_text(ts, "%Y-%m-%dT%H:%M:%SZ")


def utc_text(ts: Any, fmt: str) -> str:
    """``ts`` (epoch seconds) formatted in UTC, or its raw ``repr`` if it is no date."""
    try:
        return dt.datetime.fromtimestamp(ts, dt.UTC).strftime(fmt)
    except (ValueError, OverflowError, OSError, TypeError):
        return repr(ts)


def duration(start: float | None, end: float | None) -> str:
    if start is None:
        return "-"
    seconds = (end if end is not None else time.time()) - start
    text = _seconds(seconds)
    return text if end is not None else f"{text}+"


def seconds_text(seconds: float) -> str:
    """A span of seconds as the CLI prints it: ``250ms``, ``4.2s``, ``3m07s``, ``2h05m``."""
    return _seconds(seconds)


def due_text(due_at: float, now: float) -> str:
    """How far a due instant is from ``now``: ``in 3m07s`` or ``overdue by 4.2s``."""
    left = due_at - now
    return f"in {_seconds(left)}" if left > 0 else f"overdue by {_seconds(-left)}"


def _seconds(seconds: float) -> str:
    if not isinstance(seconds, int | float) or not math.isfinite(seconds):
        return repr(seconds)  # a stored value that is no span (another version, a hand edit)
    if seconds < 1:
        return f"{seconds * 1000:.0f}ms"
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, secs = divmod(int(seconds), 60)
    if minutes < 60:
        return f"{minutes}m{secs:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m"


# -- rows under headers ----------------------------------------------------------------


@dataclass(slots=True)
class Grid:
    """Rows under headers: a table if it fits the width, else a block per row.

    In a block each value wraps under its label, so nothing is cut at any
    width; empty values are left out of a block.
    """

    headers: Sequence[str]
    rows: list[Sequence[Text]] = field(default_factory=list)
    title: str | None = None
    caption: str | Text | None = None
    #: Indexes of the columns justified right in the table form.
    right: frozenset[int] = frozenset()

    def add_row(self, *cells: Text | str) -> None:
        self.rows.append([c if isinstance(c, Text) else plain(c) for c in cells])

    def table(self) -> Table:
        table = Table(
            title=self.title,
            title_justify="left",
            box=None,
            header_style="bold",
        )
        for i, header in enumerate(self.headers):
            table.add_column(header, no_wrap=True, justify="right" if i in self.right else "left")
        for row in self.rows:
            table.add_row(*row)
        return table

    def blocks(self) -> Iterator[RenderableType]:
        if self.title:
            yield Text(self.title, style="bold")
        label_width = max((len(h) for h in self.headers), default=0)
        for i, row in enumerate(self.rows):
            if i:
                yield Text()
            cells = zip(self.headers, row, strict=True)
            yield Labelled([(h, cell) for h, cell in cells if cell.plain], label_width)

    def caption_lines(self) -> Iterator[RenderableType]:
        # Under the rows at the console's full width, not the table's (a caption
        # of rich's wraps to the table's width), so a cursor in it stays whole.
        if self.caption:
            caption = self.caption if isinstance(self.caption, Text) else plain(self.caption)
            yield Wrapped(Text.assemble(caption, style="dim"))

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        table = self.table()
        # Measured with room to spare: a measurement is clamped to the room given.
        natural = Measurement.get(console, options.update_width(PIPE_WIDTH), table).maximum
        if natural <= options.max_width:
            yield table
        else:
            yield from self.blocks()
        yield from self.caption_lines()


def key_values(rows: Iterable[tuple[str, Text | str]]) -> Labelled:
    """``label  value`` lines; a long value wraps under itself, never cut."""
    return Labelled(
        (key, value if isinstance(value, Text) else plain(value)) for key, value in rows
    )


def runs_table(
    runs: list[RunRecord],
    *,
    next_cursor: str | None = None,
    dead: frozenset[str] = frozenset(),
    after_cursor: bool = False,
) -> Grid:
    """``dead``: the ids of the runs whose owner is dead (marked in STATUS);
    ``next_cursor``: the cursor of the next page, if there is one;
    ``after_cursor``: this page continues a listing (it was given a cursor)."""
    count = f"{len(runs)} run" + ("" if len(runs) == 1 else "s")
    shown = f"{count} after the cursor" if after_cursor else f"the newest {count}"
    notes = (
        [Text(f"{shown}; there are more; next page: the same command with ")] if next_cursor else []
    )
    if next_cursor:
        notes[0].append_text(whole(f"--cursor {next_cursor}"))
    if any(run.defect is not None for run in runs):
        notes.append(
            Text("a (bad row) cannot be read whole: `proctor runs status RUN_ID` says why")
        )
    caption = Text("; ").join(notes) if notes else None
    grid = Grid(
        ["RUN ID", "WORKFLOW", "STATUS", "STARTED", "DURATION", "CANCEL REASON"],
        caption=caption,
        right=frozenset({4}),
    )
    for run in runs:
        grid.add_row(
            copyable(run.run_id),
            plain(run.workflow),
            status_text(
                run.status, owner_dead=run.run_id in dead, unreadable=run.defect is not None
            ),
            when(run.started_at or run.created_at),
            duration(run.started_at, run.finished_at),
            plain(run.cancel_reason or ""),
        )
    return grid


def error_text(error: Any) -> str:
    """A recorded error (``{"type", "message"}``) as ``Type: message``."""
    if isinstance(error, dict):
        return f"{error.get('type')}: {error.get('message')}"
    return str(error)


def steps_table(steps: Iterable[StepRecord]) -> Grid:
    grid = Grid(
        ["CALL", "STEP", "ATTEMPT", "STATUS", "STARTED", "DURATION", "SHIELDED", "LAST HEARTBEAT"],
        title="steps",
        right=frozenset({0, 2, 5}),
    )
    for s in steps:
        heartbeat = "-"
        if s.heartbeat_at is not None:
            heartbeat = when(s.heartbeat_at)
            if s.heartbeat_details is not None:
                heartbeat += f" {json.dumps(s.heartbeat_details, ensure_ascii=False)}"
        grid.add_row(
            str(s.call),
            plain(s.name),
            str(s.attempt),
            Text(s.status.value, style=step_style(s.status.value)),
            when(s.started_at),
            duration(s.started_at, s.finished_at),
            "yes" if s.shielded else "",
            plain(heartbeat),
        )
    return grid


def step_style(status: str) -> str:
    styles = {
        "completed": "green",
        "failed": "red",
        "cancelled": "magenta",
        "abandoned": "red",
        "timed_out": "red",
    }
    return styles.get(status, "cyan")


# -- trees ---------------------------------------------------------------------------------


def tree_node(run: RunRecord) -> Text:
    text = Text("run ", style="bold")
    text.append_text(copyable(run.run_id, style="bold"))
    text.append(f" ({clean(run.workflow)}) ")
    text.append_text(status_text(run.status))
    if run.cancel_reason:
        text.append(f"  cancel: {clean(run.cancel_reason)}", style="yellow")
    return text


class Tree:
    """A tree drawn with guides, one line per node, at any depth.

    Unlike rich's Tree, which narrows each level's room and crops what does
    not fit (a deep tree loses its leaves), a line that is longer than the
    width wraps: no node and no status is ever lost.
    """

    def __init__(self, label: Text) -> None:
        self.label = label
        self.children: list[Tree] = []

    def add(self, label: Text) -> Tree:
        child = Tree(label)
        self.children.append(child)
        return child

    def lines(self) -> Iterator[Text]:
        # Iterative: a tree deeper than Python's recursion limit still draws.
        stack: list[tuple[Tree, str, str]] = [(self, "", "")]
        while stack:
            node, guide, prefix = stack.pop()
            line = Text()
            line.append(guide, style="dim")  # the guides only: the label keeps its own style
            line.append_text(node.label)
            yield line
            last = len(node.children) - 1
            for i in range(last, -1, -1):
                child = node.children[i]
                branch, rest = ("└── ", "    ") if i == last else ("├── ", "│   ")
                stack.append((child, prefix + branch, prefix + rest))

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        yield from (Wrapped(line) for line in self.lines())


def new_tree(run: RunRecord) -> Tree:
    return Tree(tree_node(run))


def restart_rows(
    run: RunRecord, restarted_as: list[str], events: list[EventRecord]
) -> list[tuple[str, str]]:
    """A7: the runs this one restarts and is restarted as, and what it reused."""
    rows = []
    if run.restarted_from:
        reused = sum(1 for e in events if e.type is EventType.CALL_REUSED)
        more = f" (reusing its {calls_phrase(reused)})" if reused else ""
        rows.append(("restarted from", run.restarted_from + more))
    if restarted_as:
        rows.append(("restarted as", ", ".join(restarted_as)))
    return rows
