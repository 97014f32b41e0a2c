"""The cancel and terminate requests as one process writes them, and what it says.

``proctor cancel``/``proctor terminate`` and the dashboard's buttons
(``proctor ui``) call these very functions, so both write the same records
(source ``cli``; the origin names the writing process: ``cli-<pid>`` or
``ui-<pid>``) and print the same sentences.

Invariants: the reason is checked before anything is written; a request is
one transaction (``persistence.request_cancel``, ``Store.terminate_tree``);
an unknown run raises :class:`RunNotFoundError` and a finished one
:class:`AlreadyFinishedError`, with the CLI's message, and nothing is written.
"""

from __future__ import annotations

import os

from cli._main import AlreadyFinishedError, RunNotFoundError
from cli._text import clean
from persistence import (
    MAX_REASON_BYTES,
    Appended,
    AppendOutcome,
    Store,
    check_reason,
    reason_cut,
    request_cancel,
)

#: The ``source`` of every request written from the command line or the dashboard.
SOURCE = "cli"


def origin(process: str = "cli") -> str:
    """Who wrote a request: ``cli-<pid>`` for ``proctor cancel``, ``ui-<pid>`` for the dashboard."""
    return f"{process}-{os.getpid()}"


def checked_reason(reason: str | None, what: str) -> str | None:
    """The reason as the log keeps it (cut to ``MAX_REASON_BYTES``).

    Raises:
        NotSerializable: the reason cannot be recorded (``what`` names it).
    """
    return check_reason(reason, what)


def cut_note(reason: str | None) -> str | None:
    """The note that the reason was cut, or None when it was kept whole."""
    if reason_cut(reason):
        return f"note: the reason was cut to {MAX_REASON_BYTES} bytes; its end is not recorded"
    return None


def accepted(outcome: AppendOutcome, run_id: str, verb: str) -> Appended:
    """The request was recorded, or :class:`RunNotFoundError` (exit 3) /
    :class:`AlreadyFinishedError` (exit 4) with the CLI's message."""
    if isinstance(outcome, Appended):
        return outcome
    if outcome.status is None:
        raise RunNotFoundError(f"no run with id {run_id!r}")
    raise AlreadyFinishedError(
        f"run {run_id} already finished: {outcome.status}; {verb} changed nothing"
    )


def write_cancel(
    store: Store, run_id: str, reason: str | None, *, origin: str, grace: float | None
) -> Appended:
    """C1: record the cancel request (the run is CANCELLING on return); see :func:`accepted`."""
    outcome = request_cancel(store, run_id, reason, source=SOURCE, origin=origin, grace=grace)
    return accepted(outcome, run_id, "cancel")


def cancel_said(run_id: str, appended: Appended) -> str:
    """What ``proctor cancel`` prints once the request is recorded."""
    if appended.changed:
        return f"cancel requested: run {clean(run_id)} is now cancelling"
    return f"run {clean(run_id)} is already cancelling; the repeated request is logged"


def write_terminate(store: Store, run_id: str, reason: str | None, *, origin: str) -> int:
    """T1 and T4, in one transaction: the run and each unfinished descendant.

    Returns how many descendants this terminated; see :func:`accepted`.
    """
    outcome, terminated = store.terminate_tree(run_id, reason, source=SOURCE, origin=origin)
    accepted(outcome, run_id, "terminate")
    return len(terminated)


def terminate_said(run_id: str, children: int) -> str:
    """What ``proctor terminate`` prints once the run is terminated."""
    more = f" with {children} child run{'s' if children != 1 else ''}" if children else ""
    return f"run {clean(run_id)} terminated{more}"
