"""CancellationType: how cancelling one call's handle treats the call and its await.

The three types of Temporal's ``ActivityCancellationType`` (Python SDK,
``temporalio.workflow.ActivityCancellationType``), with the same meanings:

- ``TRY_CANCEL`` (the default, as in Temporal): the call is sent the cancel;
  the await raises ``CancellationError`` at once, whatever the call does next;
- ``WAIT_CANCELLATION_COMPLETED``: the call is sent the cancel; the await
  waits for the call to end and gives what it gave (a result if it finished
  anyway, ``CancellationError`` if it met the cancel);
- ``ABANDON``: the call is not told; the await raises ``CancellationError``
  at once; the call runs on, and its end is recorded, never returned.

Invariant: a pure table; the only function checks a user's value.
"""

from __future__ import annotations

import enum

from persistence import InvalidArgumentType, safe_repr


class CancellationType(enum.Enum):
    """How ``handle.cancel()`` treats the call (Temporal's ActivityCancellationType)."""

    TRY_CANCEL = "try_cancel"
    WAIT_CANCELLATION_COMPLETED = "wait_cancellation_completed"
    ABANDON = "abandon"

    def __str__(self) -> str:
        return self.value


def cancellation_type(what: str, value: object) -> CancellationType:
    """``value`` as a CancellationType.

    Raises:
        InvalidArgumentType: ``value`` is not a CancellationType (a string
            such as ``"abandon"`` is refused too: the enum names the choice).
    """
    if not isinstance(value, CancellationType):
        choices = ", ".join(f"CancellationType.{t.name}" for t in CancellationType)
        raise InvalidArgumentType(f"{what} must be one of {choices}; got {safe_repr(value)}")
    return value
