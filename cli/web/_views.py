"""HTML rendering: the Jinja2 templates (autoescape on for every one) and their filters.

Invariants: every template is rendered with autoescaping, so a user value
(a workflow name, run id, reason, argument, error message, event data) is
shown as text, never as markup; the only markup passed through unescaped is
``markupsafe.Markup`` built by code (the timeline's SVG, whose values are
escaped by its renderer). Filters are pure functions of their inputs.
"""

from __future__ import annotations

import json
import time
from typing import Any, Final

from jinja2 import Environment, PackageLoader, StrictUndefined

from cli._text import clean
from persistence import RunState, iso_utc

#: Every state, for the status filter (its option values are these).
STATES: Final = tuple(s.value for s in RunState)
#: The most characters a value shows on a page (an argument, a result, an
#: event's data): a page and its live refresh stay small whatever a run
#: carries; ``proctor runs status --json`` and ``runs logs --json`` show all.
MAX_SHOWN_CHARS: Final = 20_000
#: The event table's data column, per event.
MAX_CELL_CHARS: Final = 2_000


def _cut(text: str, limit: int) -> str:
    if len(text) <= limit:
        return text
    return f"{text[:limit]}\n… ({len(text) - limit:,} more characters; the CLI's --json shows all)"


def when(ts: float | None) -> str:
    """An instant as ISO 8601 UTC (the CLI's ``--json`` form), ``-`` for none."""
    shown = iso_utc(ts)
    return "-" if shown is None else shown


def age(ts: float | None, now: float | None = None) -> str:
    """How long ago ``ts`` was, in the largest whole unit: ``5s``, ``3m``, ``2h``, ``4d``."""
    if ts is None:
        return "-"
    try:
        seconds = max(0.0, (time.time() if now is None else now) - float(ts))
    except (TypeError, ValueError, OverflowError):
        return "-"
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{int(seconds // size)}{unit}"
    return f"{int(seconds)}s"


def pretty(value: Any) -> str:
    """A JSON value, indented, cut at :data:`MAX_SHOWN_CHARS`; unsafe
    characters escaped as the CLI's JSON does."""
    try:
        text = json.dumps(value, indent=2, ensure_ascii=False, default=repr)
    except (RecursionError, ValueError):
        return "(nested too deeply to show)"
    return "\n".join(clean(line) for line in _cut(text, MAX_SHOWN_CHARS).split("\n"))


def compact(value: Any) -> str:
    """A JSON value on one line, cut at :data:`MAX_CELL_CHARS` (the event table's data column)."""
    try:
        return clean(_cut(json.dumps(value, ensure_ascii=False, default=repr), MAX_CELL_CHARS))
    except (RecursionError, ValueError):
        return "(nested too deeply to show)"


def upper(status: RunState | str) -> str:
    """A state as the CLI shows it: in capitals."""
    return (status.value if isinstance(status, RunState) else str(status)).upper()


def environment() -> Environment:
    """The templates of ``cli/web/templates``, autoescaped, with the filters above."""
    env = Environment(
        loader=PackageLoader("cli.web", "templates"),
        autoescape=True,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(when=when, age=age, pretty=pretty, compact=compact, upper=upper)
    env.globals["states"] = STATES
    return env
