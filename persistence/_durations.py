"""The one bound on durations and due instants: every one stays representable.

A duration (a sleep, a timeout, a grace, a retry interval...) becomes a due
instant by adding it to a clock reading, and a due instant is recorded and
later shown as a UTC date. Python's ``datetime`` ends at year 9999, a float
overflows at about 1.8e308, and an ``int`` such as ``10**400`` has no float
at all: an unbounded duration crashes whoever adds or formats it, far from
the call that passed it.

Invariants: a duration accepted here is a finite real number of seconds in
``[0, MAX_SECONDS]`` (1000 years); an instant accepted here is epoch seconds
before :data:`LATEST_INSTANT` (9000-01-01 UTC). So ``now + duration`` is
before year 9999 for any ``now`` before 8999: every due instant formats.
Like Temporal, which refuses a timer or timeout it cannot represent
(durations are bounded protobuf ``Duration`` values) at the call.
"""

from __future__ import annotations

import math
from typing import Final

from persistence._errors import InvalidArgument, InvalidArgumentType

#: The longest duration any argument may give: 1000 years (of 365 days), in
#: seconds; past ``threading.TIMEOUT_MAX`` (292 years), which the Timers cap.
MAX_SECONDS: Final = 1000 * 365 * 86400.0
#: The latest due instant any argument may give: 9000-01-01T00:00:00Z, in epoch seconds.
LATEST_INSTANT: Final = 221845392000.0
#: The bound as messages say it.
BOUND_TEXT: Final = "at most 1000 years (31536000000 seconds), so that its due instant is a date"


def finite_number(what: str, value: object, *, unit: str = "") -> float:
    """``value`` as a finite real number (``unit`` names it in the messages).

    Raises:
        InvalidArgumentType: not a real number (a str, a bool, None...).
        InvalidArgument: NaN, infinite, or an ``int`` too large for a float.
    """
    kind = f"a number of {unit}" if unit else "a number"
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InvalidArgumentType(f"{what} must be {kind}, got {type(value).__name__}: {value!r}")
    try:
        checked = float(value)
    except OverflowError:
        raise InvalidArgument(
            f"{what} must be {kind}, finite, got an int too large for a float"
        ) from None
    if not math.isfinite(checked):
        raise InvalidArgument(f"{what} must be {kind}, finite, got {value!r}")
    return checked


def duration_seconds(what: str, value: object, *, positive: bool = False) -> float:
    """``value`` as a number of seconds in ``[0, MAX_SECONDS]`` (above 0 if ``positive``).

    Raises:
        InvalidArgumentType: not a real number (a str, a bool, None...).
        InvalidArgument: NaN, infinite, negative, 0 where ``positive``, or
            above :data:`MAX_SECONDS`; the message names ``what``.
    """
    checked = finite_number(what, value, unit="seconds")
    if checked < 0 or (positive and checked == 0):
        bound = "positive" if positive else "at least 0"
        raise InvalidArgument(f"{what} must be {bound} (seconds), got {value!r}")
    if checked > MAX_SECONDS:
        raise InvalidArgument(f"{what} must be {BOUND_TEXT}, got {checked:g} seconds")
    return checked


def due_instant(what: str, value: float) -> float:
    """``value`` (epoch seconds) if it is before :data:`LATEST_INSTANT`.

    Raises:
        InvalidArgument: it is not finite, or at or after 9000-01-01 UTC.
    """
    if not math.isfinite(value) or value >= LATEST_INSTANT:
        raise InvalidArgument(
            f"{what} must be before 9000-01-01T00:00:00Z, so that it is a date, got {value!r}"
            " epoch seconds"
        )
    return value
