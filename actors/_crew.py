"""Crew: one run supervisor's collaborators, built together and wired to each other.

Each concept of a run's supervision is an object of its own (its module
states its invariants); this is who they are and what each shares:

=================  =============  ==========================================
collaborator       module         concept
=================  =============  ==========================================
``life``           _lifecycle     the supervisor's phase and hosting
``attempts``       _attempts      the run's step attempts (the shared book)
``log``            _recorder      the run's records, in groups, to the Journal
``launcher``       _launch        starting and abandoning step attempts
``restarts``       _restarts      retries, group restarts, timeouts
``children``       _children      child runs and what flows down to them
``body``           _body          the workflow coroutine and its replay cursor
``awaits``         _awaits        what the body awaits, as calls
``timers``         _body_timers   the body's durable timers (B1)
``sleeps``         _sleeping      the body's ``await sleep(...)`` (B1)
``run``            _cancelling    the run's state and the cancel it acts on
``resuming``       _resuming      the takeover of a run whose runtime died
``terminate``      _terminating   a terminate (T1-T4)
``ending``         _ending        recording the run's end, lingering
``drain``          _draining      shutdown, store failure, lost lease
``ends``           _call_ends     what a step's or child's end means
``replies``        _acks          what each reply of the Journal means
``signals``        _signals       the body's waits for signals (B5)
``calls``          _call_cancel   cancelling some calls only (B2, B3)
``handles``        _handle_desk   step and child-run handles (B2)
``scopes``         _scopes        the body's cancel scopes (B3)
=================  =============  ==========================================

Invariants: one crew per supervisor, built in its constructor, before its
actor runs, so no collaborator acts before all exist; they share one
Lifecycle, one Attempts book, one Recorder and one Body, each handed in
here and nowhere else; the supervisor is every collaborator's host
(``RunHost``, the union of their Host protocols): a collaborator knows
only those handed to it here, and reaches the rest through the supervisor.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

import pykka

from actors._acks import AckHost, JournalReplies
from actors._attempts import Attempts
from actors._awaits import AwaitHost, Awaits
from actors._body import Body, BodyHost
from actors._body_timers import BodyTimers, TimerHost
from actors._call_cancel import CallCancel, CallCancelHost
from actors._call_ends import CallEndHost, CallEnds
from actors._cancelling import CancelHost, Cancelling
from actors._census import Census
from actors._children import Children
from actors._clock import Clock
from actors._definitions import WorkflowDef
from actors._directory import Directory
from actors._draining import Drain, DrainHost
from actors._ending import Ending, EndingHost
from actors._fencing import LeaseGuard
from actors._handle_desk import HandleDesk, HandleHost
from actors._launch import Launcher, LaunchHost
from actors._lifecycle import Lifecycle
from actors._log_records import RunOutcome
from actors._messages import Cancel
from actors._recorder import Recorder
from actors._restarts import RestartHost, Restarts
from actors._resuming import ResumeHost, Resumption
from actors._scopes import Scopes, ScopesHost
from actors._signals import SignalHost, SignalWaits
from actors._sleeping import SleepHost, Sleeps
from actors._terminating import TerminateHost, Termination
from persistence import NewEvent, RunState, Store


class RunHost(
    BodyHost,
    AwaitHost,
    LaunchHost,
    RestartHost,
    CancelHost,
    CallEndHost,
    DrainHost,
    EndingHost,
    TerminateHost,
    ResumeHost,
    AckHost,
    SignalHost,
    TimerHost,
    SleepHost,
    CallCancelHost,
    HandleHost,
    ScopesHost,
    Protocol,
):
    """Everything the collaborators need of their run supervisor."""


@dataclass(frozen=True, slots=True, kw_only=True)
class RunServices:
    """What every run supervisor of one runtime shares, built once by the
    Guardian and handed down unchanged to child runs."""

    census: Census
    journal: pykka.ActorRef[Any]
    directory: Directory
    owner: str
    reader: Store
    timers: pykka.ActorRef[Any]
    clock: Clock
    max_payload_bytes: int
    guard: LeaseGuard | None


@dataclass(frozen=True, slots=True)
class Crew:
    """One run supervisor's collaborators (see the module docstring)."""

    life: Lifecycle
    attempts: Attempts
    log: Recorder
    launcher: Launcher
    restarts: Restarts
    children: Children
    body: Body
    awaits: Awaits
    timers: BodyTimers
    sleeps: Sleeps
    run: Cancelling
    resuming: Resumption
    terminate: Termination
    ending: Ending
    drain: Drain
    ends: CallEnds
    replies: JournalReplies
    signals: SignalWaits
    calls: CallCancel
    handles: HandleDesk
    scopes: Scopes


def assemble(
    host: RunHost,
    *,
    me: pykka.ActorRef[Any],
    start_run: Callable[..., pykka.ActorRef[Any]],
    shared: RunServices,
    parent: pykka.ActorRef[Any],
    run_id: str,
    workflow: WorkflowDef[..., Any],
    args: tuple[Any, ...],
    kwargs: tuple[tuple[str, Any], ...],
    state: RunState,
    cancel: Cancel | None,
    resume_from: str | None,
    resume_why: str | None,
    create: NewEvent | None,
    created: pykka.Future[Any] | None,
    unrecorded: tuple[NewEvent, ...],
    created_at: float | None = None,
) -> Crew:
    """Build the crew of the supervisor ``host`` (actor ``me``) of run ``run_id``.

    ``start_run``: how a child run's supervisor starts (``RunSupervisor.start``);
    ``created_at``: when the run was created (its record's), if it exists
    already; else now. The other arguments are the supervisor's own.
    """
    census, journal, owner, reader = shared.census, shared.journal, shared.owner, shared.reader
    clock, max_payload_bytes, guard = shared.clock, shared.max_payload_bytes, shared.guard
    life = Lifecycle()
    attempts = Attempts()
    log = Recorder(
        run_id=run_id, journal=journal, notify=me, create=create, created=created, handed=unrecorded
    )
    launcher = Launcher(
        host,
        run_id=run_id,
        parent=me,
        census=census,
        journal=journal,
        attempts=attempts,
        log=log,
        clock=clock,
        max_payload_bytes=max_payload_bytes,
        guard=guard,
    )
    restarts = Restarts(
        host, run_id=run_id, attempts=attempts, log=log, clock=clock, intensity=workflow.intensity
    )
    children = Children(
        run_id=run_id,
        journal=journal,
        owner=owner,
        reader=reader,
        start=functools.partial(
            start_run, shared=shared, parent=me, state=RunState.PENDING, cancel=None
        ),
    )
    body = Body(
        host,
        run_id=run_id,
        workflow=workflow,
        args=args,
        kwargs=dict(kwargs),
        max_payload_bytes=max_payload_bytes,
    )
    timers = BodyTimers(host, run_id=run_id, log=log, clock=clock)
    sleeps = Sleeps(host, body=body, timers=timers)
    awaits = Awaits(
        host,
        run_id=run_id,
        owner=owner,
        strategy=workflow.strategy,
        body=body,
        children=children,
        launcher=launcher,
        log=log,
        clock=clock,
        sleeps=sleeps,
    )
    signals = SignalWaits(host, run_id=run_id, body=body, log=log, reader=reader, timers=timers)
    calls = CallCancel(host, run_id=run_id, attempts=attempts, children=children, log=log)
    handles = HandleDesk(
        host,
        run_id=run_id,
        body=body,
        awaits=awaits,
        attempts=attempts,
        children=children,
        launcher=launcher,
        calls=calls,
        clock=clock,
    )
    awaits.handles = handles
    body.ctx.handles = handles
    scopes = Scopes(host, body=body, timers=timers, calls=calls, waits=signals)
    body.scopes = scopes
    body.ctx.scopes = scopes
    run = Cancelling(
        host,
        run_id=run_id,
        state=state,
        cancel=cancel,
        reader=reader,
        life=life,
        body=body,
        attempts=attempts,
        launcher=launcher,
        children=children,
        log=log,
        timers=timers,
    )
    resuming = Resumption(
        host,
        run_id=run_id,
        owner=owner,
        resume_from=resume_from,
        why=resume_why,
        reader=reader,
        run=run,
        body=body,
        log=log,
        signals=signals,
    )
    outcome = RunOutcome(
        run_id=run_id,
        workflow=workflow.name,
        created_at=clock.time() if created_at is None else created_at,
        clock=clock,
    )
    terminate = Termination(
        host,
        outcome=outcome,
        run_id=run_id,
        reader=reader,
        life=life,
        run=run,
        launcher=launcher,
        children=children,
    )
    ending = Ending(
        host,
        outcome=outcome,
        run_id=run_id,
        workflow_name=workflow.name,
        max_payload_bytes=max_payload_bytes,
        life=life,
        body=body,
        children=children,
        log=log,
    )
    drain = Drain(
        host,
        run_id=run_id,
        parent=parent,
        life=life,
        attempts=attempts,
        awaits=awaits,
        launcher=launcher,
        children=children,
        log=log,
        clock=clock,
    )
    ends = CallEnds(
        host,
        run_id=run_id,
        life=life,
        attempts=attempts,
        restarts=restarts,
        awaits=awaits,
        log=log,
    )
    replies = JournalReplies(
        host,
        run_id=run_id,
        life=life,
        run=run,
        body=body,
        launcher=launcher,
        ends=ends,
        ending=ending,
        terminate=terminate,
        resuming=resuming,
        drain=drain,
    )
    return Crew(
        life=life,
        attempts=attempts,
        log=log,
        launcher=launcher,
        restarts=restarts,
        children=children,
        body=body,
        awaits=awaits,
        timers=timers,
        sleeps=sleeps,
        run=run,
        resuming=resuming,
        terminate=terminate,
        ending=ending,
        drain=drain,
        ends=ends,
        replies=replies,
        signals=signals,
        calls=calls,
        handles=handles,
        scopes=scopes,
    )
