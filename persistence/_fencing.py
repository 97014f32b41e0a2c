"""Fencing: the pure rules that decide whether an event may be appended to a run.

Every write meets them, whoever writes it (a runtime's Journal, the CLI in
another process, a step thread abandoned long ago), because the store applies
them inside the transaction that appends. They read only what the caller
read of the run's row in that transaction (status, owner, log length) and
the event itself: no SQL, so every store implementation applies the very
same rules (DESIGN §4).

Invariants (each function returns the refusal, or None to go on):

- A runtime writes a run's records only while it owns the run; anyone may
  create, take over, cancel or terminate one (``OPEN_EVENTS``).
- A terminal run never changes again; only its teardown is noted
  (``POST_MORTEM_EVENTS``).
- The first claim wins: a run that has an owner cannot be claimed.
- A takeover (``run_resumed``) is a compare-and-swap of the owner and of the
  log's length: of two runtimes resuming one orphan, one wins, and the winner
  replays exactly the history it read.
"""

from __future__ import annotations

from persistence._records import NewEvent, Refused
from persistence._states import OPEN_EVENTS, POST_MORTEM_EVENTS, EventType, RunState


def check_owner(
    ev: NewEvent, status: RunState, owner: str | None, writer: str | None
) -> Refused | None:
    """A runtime (``writer``; None: a tool such as the CLI) that does not own the run."""
    if writer is not None and owner != writer and ev.type not in OPEN_EVENTS:
        # Fencing (D2): a runtime that lost its lease writes no more, and
        # learns so from this refusal whatever else happened to the run.
        return Refused(f"run {ev.run_id} is owned by {owner}, not {writer}", status, fenced=True)
    return None


def check_terminal(ev: NewEvent, status: RunState) -> Refused | None:
    """Any change but teardown notes to a run that already finished."""
    # Invariant: a terminal run never changes again; only its teardown is noted.
    if status.is_terminal and ev.type not in POST_MORTEM_EVENTS:
        return Refused(f"run {ev.run_id} already finished: {status}", status)
    return None


def check_claim(ev: NewEvent, status: RunState, owner: str | None) -> Refused | None:
    """A claim of a run somebody owns already."""
    if ev.type is EventType.RUN_CLAIMED and owner is not None:
        # Two runtimes never run the same run: the first claim wins, in
        # the same transaction as the check.
        return Refused(f"run {ev.run_id} is owned by {owner}", status)
    return None


def check_resume(
    ev: NewEvent, status: RunState, owner: str | None, last_seq: int
) -> Refused | None:
    """A takeover whose expected owner or log length is not the row's."""
    # A takeover is a compare-and-swap: of the owner (two runtimes resuming
    # the same orphan: one wins) and of the log's length (the new owner
    # replays exactly the history it read).
    if ev.type is EventType.RUN_RESUMED and (
        owner != ev.data.get("previous_owner") or last_seq != ev.data.get("seen_seq")
    ):
        return Refused(f"run {ev.run_id} changed hands or grew since it was read", status)
    return None


def fence(
    ev: NewEvent, status: RunState, owner: str | None, last_seq: int, writer: str | None
) -> Refused | None:
    """All the rules, in the order a refusal names the first one broken.

    Args:
        ev: the event to append to an existing run.
        status: the run's state before ``ev`` (as the group so far left it).
        owner: the run's owner (None: nobody's yet).
        last_seq: the run's log length before ``ev``.
        writer: the runtime writing; None for a tool such as the CLI.

    Returns:
        The refusal of the whole group, or None if ``ev`` may be appended.
    """
    return (
        check_owner(ev, status, owner, writer)
        or check_terminal(ev, status)
        or check_claim(ev, status, owner)
        or check_resume(ev, status, owner, last_seq)
    )
