"""The Runtime facade: what a service embeds.

The facade is not an actor. It validates at the call (JSON arguments, known
runs), writes through the Journal, and hands messages to the actor tree.
Runs are seen through :class:`RunHandle` (``_handle``); waits for their end
are a :class:`RunWaiter`'s (``_waiting``).

Invariants: a call returns only once what it asked for is durable, or raises
an error that says whether it may still take effect (A3); after
:meth:`Runtime.close` or :meth:`Runtime.kill` every call raises a
:class:`ProctorError`.
"""

from __future__ import annotations

import asyncio
import datetime
import functools
import os
import uuid
import weakref
from typing import Any, Final, TypeVar

from actors._arguments import light
from actors._census import Census
from actors._clock import Clock, SystemClock
from actors._closing import CloseState, Closing
from actors._controlling import RunControl
from actors._definitions import WorkflowDef
from actors._directory import Directory
from actors._fencing import register
from actors._forking import RunRestarts
from actors._halt import Halt
from actors._handle import RunHandle
from actors._journal import MAX_BATCH
from actors._reading import InFlight, StoreReads
from actors._requests import Requests
from actors._settings import READ_POOL_SIZE, check_settings
from actors._signalling import RuntimeSignals
from actors._tracing import start_tracing
from actors._tree import ASK_TIMEOUT, ActorTree, warn_unclosed
from actors._waiting import RunWaiter
from persistence import (
    DEFAULT_LEASE_TTL,
    DEFAULT_MAX_PAYLOAD_BYTES,
    RunRecord,
    StepRecord,
    StoreError,
    Synchronous,
    open_store,
)

R = TypeVar("R")

#: How often the ControlInbox checks the store for requests of other processes.
CONTROL_INTERVAL: Final = 0.005


class Runtime(StoreReads, RunControl, RunRestarts, RuntimeSignals):
    """An embedded Proctor runtime: an actor system over one store.

    Reads (``get_run``, ``list_runs``, ``events``, ``*_async``) are :class:`StoreReads`'s,
    shared with ``Client``; ``cancel``, ``terminate`` and ``close_async`` are
    :class:`RunControl`'s. Every call that can block has a ``*_async`` twin (A1).

    Use it as a context manager::

        with Runtime(db="proctor.db") as rt:
            handle = rt.start(order, "o-1")
            print(handle.result(timeout=30))

    Args:
        db: a SQLite file's path or ``sqlite:///path`` (created if missing), or
            a ``postgresql://`` URL (P1, extra ``proctor[postgres]``); messages
            hide its password (``persistence.redact``).
        synchronous: SQLite ``synchronous`` level of the writer. ``NORMAL``
            (default) survives a crash of the process; ``FULL`` also power
            loss (an fsync per commit). PostgreSQL: ``OFF`` or else ``on``.
        clock: time source of the Timers actor; a FakeClock in tests.
        shutdown_timeout: how long :meth:`close` waits for steps that never check.
        busy_timeout: how long a write waits for another process's lock, then
            :class:`StoreLocked`. Default: a third of ``lease_ttl``, at most 5 s.
        claim_runs: also run the unowned runs (``proctor start``'s) of every workflow
            imported here, as ``proctor worker`` does. Two runtimes never run one run.
        control_interval: how often the ControlInbox looks for requests of other processes.
        resume: resume by replay the unfinished runs (of imported workflows) whose
            runtime died or stopped (D2): its lease ran out, it stopped, or its
            process is gone from this host.
        lease_ttl: how long this runtime's lease lasts unless renewed (it is
            renewed every third of it). Another runtime that sees it not
            renewed for this long, on its own clock, takes its runs over.
            This runtime stops its own steps first (self-fencing): when three
            quarters of it pass without a renewal that took, every check and
            heartbeat of its steps raises :class:`Terminated` and it stops
            hosting its runs, as Chubby's and Temporal's workers do.
        max_concurrent_steps: how many step attempts run at once, at least 1
            (Temporal's ``max_concurrent_activities``); the others wait, recorded
            as ``step_waiting``, and start in the order decided as slots free.
            Default: 50 per CPU, at least 16. An abandoned attempt (terminate,
            timeout) holds its slot until its code returns.
        max_batch: the most appends one Journal transaction commits (group commit), at least 1.
        request_timeout: seconds start/cancel/terminate wait, then :class:`OutcomeUnknown`.
        max_payload_bytes: the most bytes of JSON an argument, a result or
            heartbeat details may take (D4); more is a :class:`PayloadTooLarge`.
        retention: seconds (or a ``timedelta``) a finished run is kept, then pruned with its
            log and finished child runs; None (default): forever (``proctor runs prune``).
        drain: seconds :meth:`close` lets running steps finish by default (A4); 0: none.
        tracer_provider: OpenTelemetry's, for spans of runs and step attempts (O2,
            ``proctor[otel]``); None: the global one. No spans without one (guide "Tracing").

    Raises:
        InvalidArgument: (a ``ValueError``) a bad setting, named: a malformed
            ``db``, a duration that is not a finite number of seconds, a limit
            out of range, or ``lease_ttl`` under 3x ``busy_timeout``;
            ``InvalidArgumentType`` (a ``TypeError``) for one of the wrong type;
            nothing is opened.
        StoreError: the store cannot be opened.
        RuntimeClosed: its actors could not start; the store is closed again.
    """

    def __init__(
        self,
        db: str | os.PathLike[str] = "proctor.db",
        *,
        synchronous: Synchronous = "NORMAL",
        clock: Clock | None = None,
        shutdown_timeout: float = 5.0,
        busy_timeout: float | None = None,
        claim_runs: bool = False,
        control_interval: float = CONTROL_INTERVAL,
        resume: bool = True,
        lease_ttl: float = DEFAULT_LEASE_TTL,
        max_batch: int = MAX_BATCH,
        request_timeout: float = ASK_TIMEOUT,
        max_payload_bytes: int = DEFAULT_MAX_PAYLOAD_BYTES,
        retention: float | datetime.timedelta | None = None,
        max_concurrent_steps: int | None = None,
        drain: float = 0.0,
        tracer_provider: object | None = None,
    ) -> None:
        # Bad settings are refused before the store is touched.
        settings = check_settings(
            db=db,
            clock=clock,
            claim_runs=claim_runs,
            resume=resume,
            max_payload_bytes=max_payload_bytes,
            retention=retention,
            request_timeout=request_timeout,
            shutdown_timeout=shutdown_timeout,
            control_interval=control_interval,
            max_batch=max_batch,
            lease_ttl=lease_ttl,
            busy_timeout=busy_timeout,
            max_concurrent_steps=max_concurrent_steps,
            drain=drain,
        )
        self.max_payload_bytes = settings.max_payload_bytes
        self.retention = settings.retention
        self.request_timeout = settings.request_timeout
        self.id = f"rt-{uuid.uuid4().hex[:12]}"
        tracing = start_tracing(tracer_provider, self.id)
        self.db = settings.db
        self.clock: Clock = clock or SystemClock()
        self.shutdown_timeout = settings.shutdown_timeout
        # A bad store (locked, foreign, newer, out of reach) is a StoreError here.
        self._in_flight = InFlight()
        self._store = open_store(
            self.db,
            synchronous=synchronous,
            busy_timeout=settings.busy_timeout,
            pool_size=READ_POOL_SIZE,
        )
        self._guard = register(self._store, self.id, lease_ttl)
        self._census = Census(max_concurrent_steps)
        self._directory = Directory()
        self._halted = Halt()
        self._closing = Closing(self.id, self._halted, self._census.slots, drain=settings.drain)
        wait_ok = self._closing.check_accepting  # no wait goes on once closing
        self._waiter = RunWaiter(
            owner=self.id, store=self._store, directory=self._directory, check_open=wait_ok
        )
        #: Set by the test kit's restart(): handles of this runtime use it.
        self._successor: Runtime | None = None
        try:
            self._tree = ActorTree.start(
                census=self._census,
                owner=self.id,
                halted=self._halted,
                settings=settings,
                synchronous=synchronous,
                clock=self.clock,
                directory=self._directory,
                on_terminal=self._waiter.watchers.notify,
                control_cursor=self._store.last_seq(),
                reader=self._store,
                guard=self._guard,
                tracing=tracing,
            )
        except BaseException:
            self._store.close()
            raise
        self._journal = self._tree.journal  # for tests that watch its mailbox
        self._requests = Requests(
            owner=self.id,
            guardian=self._tree.guardian,
            journal=self._tree.journal,
            timers=self._tree.timers,
            directory=self._directory,
            clock=self.clock,
            request_timeout=request_timeout,
            reader=self._store,
            closing=lambda: self._closing.state is not CloseState.OPEN,
        )
        self._finalizer = weakref.finalize(self, warn_unclosed, self.id)

    # -- lifecycle ---------------------------------------------------------------

    def __enter__(self) -> Runtime:
        """Raises :class:`RuntimeClosed` if the runtime was closed or killed."""
        self._check_open()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self, drain: float | None = None) -> None:
        """Stop every actor of this runtime; unfinished runs stay in the store.

        Nothing new starts, and waits for a run's end raise :class:`RuntimeClosed`.
        Running steps first get ``drain`` seconds (None: the runtime's) to
        finish, cancel and reads still working (A4, see ``_closing``); then
        what still runs is asked to stop and, after ``shutdown_timeout``,
        abandoned, to run again on resume. A close() from another thread ends
        a drain now. ``InvalidArgument``: ``drain`` is not a number >= 0.
        """
        if not self._closing.begin(drain, hurry=True):
            return
        self._waiter.watchers.wake_all()
        self._stop_actors(abandon=False)
        self._in_flight.settle()  # the reads under way end first (A3)
        self._store.close()

    def _stop_actors(self, *, abandon: bool) -> None:
        self._finalizer.detach()
        self._tree.stop(abandon=abandon, timeout=self.shutdown_timeout, closing=self._closing)

    def kill(self) -> None:
        """Stop as abruptly as a SIGKILLed process, for tests of crash recovery.

        From this call on nothing more reaches the store: no step end, no
        ``step_abandoned``, no release of the runtime's lease, which is
        expired at once (as if it had run out) so that another runtime resumes
        the runs without waiting for it. The actors then stop, like
        :meth:`close`.
        """
        if not self._closing.begin(0.0):
            self._kill_closing()
            return
        self._halted.set()
        self._stop_actors(abandon=True)
        # After the actors: a lease renewal already under way cannot undo it.
        self._store.expire_lease(self.id, "killed")
        self._in_flight.settle()
        self._store.close()

    def _kill_closing(self) -> None:
        """kill() during a close (a drain, say): nothing more is written from
        now on, the close is hurried to its end, and the lease expired."""
        if self._halted.is_set() or self._closing.state is CloseState.CLOSED:
            return
        self._halted.set()
        self._closing.begin(0.0, hurry=True)  # returns once that close is over
        with open_store(self.db) as store:
            store.expire_lease(self.id, "killed")

    def flush_traces(self, timeout: float = 5.0) -> bool:
        """Wait up to ``timeout`` s until what is logged so far is in spans (O2: they are
        made on a thread of their own); False if not done in time. True if tracing is off."""
        return self._tree.tracing is None or self._tree.tracing.flush(timeout)

    @property
    def failure(self) -> StoreError | None:
        """Why this runtime stopped itself (its store file deleted, replaced or
        damaged, or a shared actor kept dying), or None while it runs; every
        call then raises it (``StoreReplaced``, ``StoreCorrupt``, ``StoreError``)."""
        return self._halted.error

    def _check_open(self) -> None:
        self._closing.check_open()

    def _check_accepting(self) -> None:
        self._closing.check_accepting()

    # -- runs --------------------------------------------------------------------

    def start(
        self,
        workflow: WorkflowDef[..., R],
        /,
        *args: Any,
        run_id: str | None = None,
        timeout: float | None = None,
        **kwargs: Any,
    ) -> RunHandle[R]:
        """Start a durable run of ``workflow``; arguments must be JSON (D4).

        The body receives the arguments' JSON round trip (a tuple arrives as
        a list), the same values it receives if the run is resumed.

        ``run_id``: the run's id, chosen by the caller (A2; this keyword is
        reserved); the same start again returns the existing run, runs nothing.
        See the guide "Starting runs" for the rules. ``timeout`` (B4, reserved
        too): seconds the run may take; see the guide "Run timeouts".

        Returns once the run is durable. Its creation is written with the
        body's first records (its first step's start, usually), so the body
        is already under way: a workflow body must not block before its first
        ``await``.

        Raises:
            NotSerializable: an argument is not JSON (a NaN, a dict key that
                is not a str, a cycle, nested deeper than ``MAX_VALUE_DEPTH``).
            PayloadTooLarge: the arguments take over ``max_payload_bytes`` of JSON.
            InvalidArgumentType: ``workflow`` is not a ``@workflow()``, or the
                arguments do not fit its signature; nothing was written.
            OutcomeUnknown: its creation was not confirmed (within
                ``request_timeout``: a slow or locked store, a body that blocked
                before its first await; or a server out of reach); the run may
                exist, and the error names its id (A3). Otherwise nothing was written.
            RunIdInUse: ``run_id`` is the id of a run of another workflow or
                with other arguments; nothing was started.
            StoreError: the store cannot take the run (locked past the busy
                timeout, say); ``StoreReplaced`` or ``StoreCorrupt`` once the
                runtime stopped because its store file was deleted, replaced or damaged.
            RuntimeClosed: the runtime was closed or killed, or is closing.
        """
        self._closing.check_accepting()
        with self._using():  # a chosen id is looked up in the store first
            submitted = self._requests.create(
                workflow, args, kwargs, run_id=run_id, timeout=timeout, limit=self.max_payload_bytes
            )
        return RunHandle(self, self._requests.wait(submitted), created=submitted.created)

    async def start_async(
        self,
        workflow: WorkflowDef[..., R],
        /,
        *args: Any,
        run_id: str | None = None,
        timeout: float | None = None,
        **kwargs: Any,
    ) -> RunHandle[R]:
        """Like :meth:`start`, awaited: the durable commit does not block the loop (A1).

        The arguments' checks and JSON round trip run on the loop's thread
        when they are small (a few microseconds), in the loop's default
        executor otherwise (``_arguments.light``), as does the store read of
        a start with a chosen ``run_id``. Raises what :meth:`start` raises.
        """
        self._closing.check_accepting()
        create = functools.partial(
            self._requests.create,
            workflow,
            args,
            kwargs,
            run_id=run_id,
            timeout=timeout,
            limit=self.max_payload_bytes,
        )
        if run_id is None and light(args, kwargs):
            submitted = create()
        else:
            guarded = functools.partial(self._guarded, create)
            submitted = await asyncio.to_thread(guarded)  # with the caller's context (O2)
        run_id = await self._requests.wait_async(submitted)
        return RunHandle(self, run_id, created=submitted.created)

    def handle(self, run_id: str) -> RunHandle[Any]:
        """A handle on an existing run. Raises :class:`RunNotFound`."""
        self.get_run(run_id)
        return RunHandle(self, run_id)

    async def handle_async(self, run_id: str) -> RunHandle[Any]:
        """Like :meth:`handle`; the store is read off the loop (A1)."""
        await self.get_run_async(run_id)
        return RunHandle(self, run_id)

    def _handle(self, run_id: str, *, created: bool | None = None) -> RunHandle[Any]:
        return RunHandle(self, run_id, created=created)

    def _steps(self, run_id: str) -> list[StepRecord]:
        with self._using():
            return self._store.steps(run_id)

    def _wait_finished(self, run_id: str, timeout: float | None) -> RunRecord:
        return self._waiter.wait_finished(run_id, timeout)

    async def _wait_finished_async(self, run_id: str, timeout: float | None) -> RunRecord:
        return await self._waiter.wait_finished_async(run_id, timeout)
