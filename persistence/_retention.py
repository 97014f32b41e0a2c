"""Retention policy: how old a finished run must be to go, and what a prune did.

Pure values and parsing, shared by every store: ``retention_seconds`` (the
``Runtime(retention=)`` argument), ``parse_duration`` (``proctor prune
--older-than 30d``), ``PruneReport`` and the keyset ``PruneCursor``. The
deleting itself, and its invariants, are in ``_pruning``.

Invariant: a retention age is a positive, finite number of seconds; anything
else is refused with ``TypeError`` or ``ValueError`` before anything is read.
"""

from __future__ import annotations

import dataclasses
import datetime
import math
import re
from dataclasses import dataclass, field
from typing import Final

from persistence._durations import duration_seconds, finite_number

#: Runs deleted per transaction by default.
PRUNE_BATCH: Final = 100
_UNITS: Final = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
_DURATION: Final = re.compile(r"(\d+(?:\.\d+)?)([smhdw])")

#: Where the candidate scan stopped: (created_at, rowid) of the last root visited.
PruneCursor = tuple[float, int]


def retention_seconds(value: float | datetime.timedelta | None) -> float | None:
    """A retention age in seconds, or None (keep forever).

    Raises:
        TypeError: neither a number of seconds nor a ``timedelta``.
        ValueError: zero, negative, not finite, an ``int`` too large for a
            float, or above 1000 years (``InvalidArgument``, the one bound).
    """
    if value is None:
        return None
    if isinstance(value, datetime.timedelta):
        seconds = value.total_seconds()
    elif isinstance(value, int | float) and not isinstance(value, bool):
        seconds = float(value) if isinstance(value, float) else finite_number("retention", value)
    else:
        raise TypeError(f"retention must be seconds or a timedelta, got {value!r}")
    if not math.isfinite(seconds) or seconds <= 0:
        raise ValueError(f"retention must be a positive age, got {value!r}")
    return duration_seconds("retention", seconds)  # the one bound of every duration


def parse_duration(text: str) -> float:
    """``30d``, ``12h``, ``90m``, ``45s`` (or ``2w``, ``1.5h``) -> seconds.

    Raises:
        ValueError: not a positive number followed by one unit of s, m, h, d, w.
    """
    match = _DURATION.fullmatch(text.strip().lower())
    if match is None:
        raise ValueError(
            f"{text!r} is not a duration: a number and a unit (s, m, h, d or w), e.g. 30d or 12h"
        )
    seconds = float(match[1]) * _UNITS[match[2]]
    if seconds <= 0:
        raise ValueError(f"{text!r} is not a positive duration")
    return seconds


@dataclass(slots=True)
class PruneReport:
    """What one prune did (or, with ``dry_run``, would do).

    ``runs``, ``events``, ``steps`` and ``runtimes`` count deleted rows;
    ``transactions`` the write transactions, ``longest_transaction`` the
    longest one's duration in seconds and ``largest_transaction`` the most
    runs one deleted; ``kept`` the old finished top-level
    runs kept because something in their tree is unfinished or recent.
    """

    cutoff: float
    dry_run: bool
    runs: int = 0
    events: int = 0
    steps: int = 0
    runtimes: int = 0
    kept: int = 0
    transactions: int = 0
    longest_transaction: float = 0.0
    largest_transaction: int = 0
    run_ids: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, object]:
        return dataclasses.asdict(self)
