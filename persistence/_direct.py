"""Requests written straight into the store, by a process that hosts no runs.

``actors.Client`` and the CLI's ``start``, ``cancel``, ``terminate`` and
``runs restart`` call these, so each request has one implementation: a run
created for a worker to claim, a restart of a finished run (A7), a cancel,
the wait for a run's end with a cancel's grace (C8).
A terminate of a whole tree is the store's own transaction
(``Store.terminate_tree``).

Invariants:

* each request is one transaction: it is written whole or not at all;
* a run created here is PENDING and owned by nobody, until a worker
  (``proctor worker``, ``Runtime(claim_runs=True)``) claims it;
* a wait only reads, except the terminate when a cancel's grace ends, which
  is written with source ``grace`` as the owning runtime would write it.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Any, Final

from persistence._control import cancel_request
from persistence._errors import RunNotActive, RunNotFound
from persistence._interface import Store
from persistence._records import Appended, AppendOutcome, EventRecord, NewEvent, RunRecord
from persistence._restarting import restart_plan
from persistence._signals import signal_request
from persistence._starting import Binder, create_run
from persistence._states import EventType

#: How often a wait or ``--follow`` looks for news in the store.
FOLLOW_INTERVAL: Final = 0.05


def create_unowned_run(
    store: Store,
    workflow: str,
    args: list[Any],
    kwargs: dict[str, Any],
    *,
    run_id: str,
    bind: Binder | None = None,
    extra: Mapping[str, Any] | None = None,
) -> tuple[RunRecord, bool]:
    """Create a PENDING run of ``workflow`` that nobody owns.

    ``extra``: more fields of its ``run_created`` (a timeout's, B4:
    ``deadline_data``).

    ``args`` and ``kwargs`` must already be the JSON round trip the body
    gets (``roundtrip_arguments``). ``bind``: the workflow's signature, where
    its definition is imported, to compare arguments as bound (A2,
    ``start_difference``).

    Returns:
        (the run, True) if this call created it; (the existing run, False)
        if ``run_id`` was taken by the same start (A2, see ``create_run``).

    Raises:
        RunIdInUse: ``run_id`` is taken by another start; nothing was written.
        ProctorError: the store refused the creation; nothing was written.
        StoreError: nothing was written.
    """
    created = NewEvent(
        run_id=run_id,
        type=EventType.RUN_CREATED,
        data={"workflow": workflow, "args": args, "kwargs": kwargs, "owner": None, **(extra or {})},
    )
    return create_run(store, [created], bind=bind)


def restart_unowned(
    store: Store, run_id: str, from_call: int | None, new_run_id: str
) -> tuple[RunRecord, bool, int]:
    """Create ``new_run_id``, a restart of the finished run ``run_id`` that
    nobody owns, for a worker to claim (A7): ``restart_plan`` with owner
    None, created as :func:`create_unowned_run` creates a run.

    Returns:
        (the new run, True if this call created it, how many recorded calls
        it reuses); (the existing run, False, ...) if ``new_run_id`` was
        taken by the same restart (A2).

    Raises:
        RunNotFound: no run ``run_id``.
        RunNotFinished: it has not finished; nothing was written.
        InvalidArgument: ``from_call`` is out of range (``reused_calls``).
        RunIdInUse: ``new_run_id`` is taken by another start.
        ProctorError, StoreError: as :func:`create_unowned_run`.
    """
    group = restart_plan(store, run_id, from_call, new_run_id, owner=None)
    record, new = create_run(store, group)
    return record, new, len(group) - 1


def request_cancel(
    store: Store,
    run_id: str,
    reason: str | None,
    *,
    source: str,
    origin: str | None,
    grace: float | None,
) -> AppendOutcome:
    """C1: record the cancel request; the run is CANCELLING once it returns.

    Returns the store's outcome: ``Appended`` (``changed`` False when the
    run was already cancelling, C6), or ``Refused`` (``status`` None: no
    such run; a terminal status: the run already finished).

    Raises:
        NotSerializable, InvalidArgument: see ``cancel_request``; nothing written.
    """
    event = cancel_request(run_id, reason, source=source, origin=origin, grace=grace)
    return store.append([event])[0]


def request_signal(
    store: Store,
    run_id: str,
    name: str,
    payload: Any,
    *,
    origin: str | None,
    limit: int | None,
) -> Appended:
    """B5: record the signal ``name`` with ``payload`` for the run ``run_id``.

    Returns the store's ``Appended`` (its ``seq`` is the signal's place in
    the log). A runtime hosting the run hears of it through its
    ControlInbox, as of a cancel.

    Raises:
        RunNotFound: no such run; nothing written.
        RunNotActive: the run already finished; nothing written.
        InvalidArgument, NotSerializable, PayloadTooLarge: see
            ``signal_request``; nothing written.
    """
    event = signal_request(run_id, name, payload, origin=origin, limit=limit)
    return accepted_signal(run_id, store.append([event])[0])


def accepted_signal(run_id: str, outcome: AppendOutcome) -> Appended:
    """The store's outcome of a ``signal_sent``: appended, or the error of its refusal.

    Raises:
        RunNotFound: the refusal names no run.
        RunNotActive: the run had finished (fencing, B5).
    """
    if isinstance(outcome, Appended):
        return outcome
    if outcome.status is None:
        raise RunNotFound(run_id)
    raise RunNotActive(run_id, outcome.status)


def follow_run(
    store: Store,
    run_id: str,
    emit: Callable[[EventRecord], None],
    *,
    after: int = 0,
    deadline: float | None = None,
) -> RunRecord | None:
    """Emit the run's events past ``after`` as they come, until it is terminal.

    Returns the final record, or None if ``deadline`` (``time.monotonic``)
    passed first. Polls the store's change token (``Store.changes``) so that
    an idle store costs no query.
    """
    version: int | None = None
    while True:
        current = store.changes()
        if current != version:
            version = current
            for event in store.events(run_id, after=after):
                emit(event)
                after = event.run_seq
            record = store.get_run(run_id)
            if record.status.is_terminal and record.last_seq <= after:
                return record
        if deadline is not None and time.monotonic() >= deadline:
            return None
        pause = (
            FOLLOW_INTERVAL
            if deadline is None
            else min(FOLLOW_INTERVAL, deadline - time.monotonic())
        )
        time.sleep(max(pause, 0.0))


def grace_reason(reason: str | None) -> str:
    """The reason of the terminate that ends a cancel's grace (C8)."""
    return f"cancel grace expired ({reason})" if reason else "cancel grace expired"


def follow_to_end(
    store: Store,
    run_id: str,
    *,
    timeout_at: float | None,
    grace_at: float | None,
    reason: str | None,
    origin: str,
    emit: Callable[[EventRecord], None] = lambda _e: None,
    after: int = 0,
    on_grace: Callable[[], None] = lambda: None,
) -> RunRecord | None:
    """Follow the run until it is terminal; terminate it when the grace ends (C8).

    ``timeout_at`` and ``grace_at`` are ``time.monotonic`` instants (None:
    none). Returns the final record, or None if the timeout came first.
    ``on_grace`` is called just before the grace's terminate is written.
    """
    seen = after

    def seen_emit(event: EventRecord) -> None:
        nonlocal seen
        seen = event.run_seq
        emit(event)

    while True:
        deadline = min((d for d in (timeout_at, grace_at) if d is not None), default=None)
        final = follow_run(store, run_id, seen_emit, after=seen, deadline=deadline)
        if final is not None:
            return final
        if grace_at is None or time.monotonic() < grace_at:
            return None  # the timeout came first
        grace_at = None
        on_grace()
        # It may have finished meanwhile, or its runtime's own grace timer
        # fired: the store's refusal then changes nothing, and the loop reads
        # the end.
        store.terminate_tree(run_id, grace_reason(reason), source="grace", origin=origin)
