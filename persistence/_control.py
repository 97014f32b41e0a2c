"""The records of a cancel or terminate request, shared by every writer.

The Runtime facade and the CLI (in another process, with or without a
runtime alive) must write exactly the same records, so they build them here.
"""

from __future__ import annotations

import math
from typing import Final

from persistence._durations import duration_seconds
from persistence._errors import InvalidArgument, InvalidArgumentType, NotSerializable
from persistence._json import dumps
from persistence._records import NewEvent, RunRecord
from persistence._states import EventType, RunState
from persistence._text import safe_repr, type_name


def check_reason(reason: object, what: str = "reason") -> str | None:
    """A request's reason as the log keeps it: text or None.

    Raises:
        NotSerializable: ``reason`` is not a str (or None), not valid
            Unicode, or holds a NUL character; checked before anything is
            written, so the writer gets the error instead of a refusal that
            reads like "no such run".
    """
    if reason is None:
        return None
    if not isinstance(reason, str):
        given = f"{type_name(reason)}: {safe_repr(reason)}"
        raise NotSerializable.recorded(f"{what} must be text (a str) or None, got {given}", what)
    if "\x00" in reason:
        # PostgreSQL keeps no NUL in text: refused on every store, so a reason
        # means the same wherever it is recorded.
        raise NotSerializable.recorded(
            f"{what} holds a NUL character (\\x00), which a store cannot keep in text", what
        )
    dumps(reason, what=what)
    return reason


#: ``source`` of a request: who asked. ``origin``: which process wrote it, so
#: that a runtime's ControlInbox skips the requests its own facade delivered.

#: The most a recorded cancel or terminate reason holds, in UTF-8 bytes. A
#: reason is a sentence for an operator; it is repeated in the run's record,
#: its log, its children's and every listing, so it is bounded.
MAX_REASON_BYTES: Final = 4096


def reason_cut(reason: str | None) -> bool:
    """Whether :func:`cap_reason` shortens ``reason``."""
    return reason is not None and len(reason.encode("utf-8", "surrogatepass")) > MAX_REASON_BYTES


def cap_reason(reason: str | None) -> str | None:
    """``reason`` as recorded: at most :data:`MAX_REASON_BYTES`, cut on a character
    boundary, and ending with a note that says how long it was when it is cut."""
    if not reason_cut(reason):
        return reason
    assert reason is not None
    raw = reason.encode("utf-8", "surrogatepass")
    note = f"... [cut: {len(raw)} bytes]"
    head = raw[: MAX_REASON_BYTES - len(note)].decode("utf-8", "ignore")
    return head + note


def cancel_request(
    run_id: str,
    reason: str | None,
    *,
    source: str,
    origin: str | None = None,
    grace: float | None = None,
) -> NewEvent:
    """C1: the request, with its reason (checked, :func:`check_reason`, and
    capped, :func:`cap_reason`) and source; the run becomes CANCELLING.

    ``grace`` (C8): seconds after which a run still not terminal is
    terminated; a finite number >= 0, or None.

    Raises:
        NotSerializable: see :func:`check_reason`.
        InvalidArgument: ``grace`` is not a finite number of seconds >= 0 (a
            ``ValueError``; ``InvalidArgumentType`` for a non-number); nothing
            is written.
    """
    reason = cap_reason(check_reason(reason))
    if grace is not None and (isinstance(grace, bool) or not isinstance(grace, int | float)):
        raise InvalidArgumentType(f"grace must be a number of seconds, got {grace!r}")
    if grace is not None and (grace < 0 or (isinstance(grace, float) and not math.isfinite(grace))):
        raise InvalidArgument(f"grace must be a finite number of seconds >= 0, got {grace!r}")
    if grace is not None:  # the one bound of every duration (an int past a float too)
        grace = duration_seconds("grace", grace)
    return NewEvent(
        run_id=run_id,
        type=EventType.CANCEL_REQUESTED,
        data={"reason": reason, "source": source, "origin": origin, "grace": grace},
    )


def terminate_request(
    run_id: str, reason: str | None, *, source: str, origin: str | None = None
) -> list[NewEvent]:
    """T1: one atomic group that makes the run TERMINATED (reason checked and
    capped, :func:`check_reason`, :func:`cap_reason`).

    Raises:
        NotSerializable: see :func:`check_reason`.
    """
    reason = cap_reason(check_reason(reason))
    return [
        NewEvent(
            run_id=run_id,
            type=EventType.TERMINATE_REQUESTED,
            data={"reason": reason, "source": source, "origin": origin},
        ),
        NewEvent(run_id=run_id, type=EventType.RUN_TERMINATED, data={"reason": reason}),
    ]


def claim_request(run_id: str, owner: str) -> NewEvent:
    """A runtime takes a run nobody owns; the store refuses it if someone does."""
    return NewEvent(run_id=run_id, type=EventType.RUN_CLAIMED, data={"owner": owner})


def resume_request(
    run_id: str, owner: str, *, previous_owner: str | None, seen_seq: int, why: str | None
) -> NewEvent:
    """D2: ``owner`` takes over a run whose owner died, after reading its log up
    to ``seen_seq``; the store refuses it if the owner or the log changed since."""
    return NewEvent(
        run_id=run_id,
        type=EventType.RUN_RESUMED,
        data={"owner": owner, "previous_owner": previous_owner, "seen_seq": seen_seq, "why": why},
    )


def unreadable_run_failure(
    record: RunRecord, defect: str, *, take: NewEvent | None = None
) -> list[NewEvent]:
    """A run whose records cannot be read is failed, never hosted: one group.

    ``take`` is the claim or takeover that makes the writer its owner (None
    if it owns the run already); a run that never started starts first, so
    that the transition tables allow its end.
    """
    message = (
        f"run {record.run_id} cannot be read from the store: {defect}"
        " (the row was written by hand or by another version of Proctor)"
    )
    error = {"type": "CorruptRecord", "module": "persistence", "message": message}
    group = [take] if take is not None else []
    if record.status is RunState.PENDING:
        group.append(NewEvent(run_id=record.run_id, type=EventType.RUN_STARTED))
    group.append(NewEvent(run_id=record.run_id, type=EventType.RUN_FAILED, data={"error": error}))
    return group
