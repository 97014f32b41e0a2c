"""The Runtime facade and RunHandle: what a service embeds.

The facade is not an actor. It validates at the call (JSON arguments, known
runs), writes through the Journal, and hands messages to the actor tree.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import datetime
import os
import threading
import time
import uuid
import weakref
from collections.abc import Callable, Generator
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Final, Generic, TypeVar, cast

import pykka

from actors._base import Census, logger, tell
from actors._clock import Clock, SystemClock
from actors._definitions import WorkflowDef
from actors._diagnosis import explain
from actors._directory import Directory
from actors._errors import RunCancelled, RunTerminated, WaitTimeout, WorkflowFailed
from actors._fencing import MIN_LEASE_PER_BUSY_TIMEOUT, LeaseGuard, check_lease_config
from actors._guardian import GetWiring, Guardian, Wiring
from actors._halt import Halt
from actors._journal import MAX_BATCH
from actors._messages import (
    Cancel,
    ControlAppend,
    GraceExpired,
    ScheduleTimer,
    Shutdown,
    StartRun,
    TerminateTree,
)
from actors._messages import Terminate as TerminateMsg
from actors._slots import check_max_concurrent_steps
from persistence import (
    DEFAULT_BUSY_TIMEOUT,
    DEFAULT_LEASE_TTL,
    DEFAULT_MAX_PAYLOAD_BYTES,
    MAX_REASON_BYTES,
    Appended,
    AppendOutcome,
    CorruptRecord,
    EventRecord,
    EventType,
    NewEvent,
    OutcomeUnknown,
    ProctorError,
    Refused,
    RunNotFound,
    RunRecord,
    RunState,
    Store,
    StoreError,
    Synchronous,
    cancel_request,
    cap_reason,
    check_payload_limit,
    check_reason,
    reason_cut,
    retention_seconds,
    roundtrip_arguments,
    safe_repr,
)

R = TypeVar("R")

#: Upper bound on any internal ask; a healthy runtime answers in microseconds.
ASK_TIMEOUT: Final = 30.0
#: How often a waiter re-reads the store for runs that end in another process.
POLL_INTERVAL: Final = 0.05
#: How often the ControlInbox checks the store for requests of other processes.
CONTROL_INTERVAL: Final = 0.005


@dataclass(frozen=True, slots=True, kw_only=True)
class ControlResult:
    """What a cancel or terminate did.

    ``changed`` is False when the request changed nothing (C6): the run was
    already terminal, or already cancelling. ``status`` is the run's state
    when the call returned (its final state, with ``wait=True``). ``message``
    says so when the reason was longer than ``MAX_REASON_BYTES`` (4 KiB) and
    was cut to it.
    """

    run_id: str
    status: RunState
    changed: bool
    message: str


def _cut_note(cut: bool) -> str:
    return f" (its reason was cut to {MAX_REASON_BYTES} bytes)" if cut else ""


class _Watchers:
    """Wakes threads and event loops waiting for runs to end in this process."""

    #: How many ended runs it remembers (see :meth:`ended`).
    MEMORY: Final = 4096

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._watch: dict[str, list[Callable[[], None]]] = {}
        self._ended: collections.deque[str] = collections.deque(maxlen=self.MEMORY)
        self._ended_set: set[str] = set()

    def add(self, run_id: str, wake: Callable[[], None]) -> None:
        with self._lock:
            self._watch.setdefault(run_id, []).append(wake)

    def discard(self, run_id: str, wake: Callable[[], None]) -> None:
        with self._lock:
            wakes = self._watch.get(run_id, [])
            if wake in wakes:
                wakes.remove(wake)
            if not wakes:
                self._watch.pop(run_id, None)

    def notify(self, run_id: str, _status: RunState) -> None:
        with self._lock:
            if len(self._ended) == self.MEMORY:
                self._ended_set.discard(self._ended[0])
            self._ended.append(run_id)
            self._ended_set.add(run_id)
            wakes = list(self._watch.get(run_id, ()))
        for wake in wakes:
            wake()

    def ended(self, run_id: str) -> bool:
        """Whether this process saw the run end (recently)."""
        with self._lock:
            return run_id in self._ended_set


class Runtime:
    """An embedded Proctor runtime: an actor system over one store.

    Use it as a context manager::

        with Runtime(db="proctor.db") as rt:
            handle = rt.start(order, "o-1")
            print(handle.result(timeout=30))

    Args:
        db: path of the SQLite store; created if missing.
        synchronous: SQLite ``synchronous`` level of the writer. ``NORMAL``
            (default) survives a crash of the process; ``FULL`` also survives
            power loss, for an fsync per commit.
        clock: time source of the Timers actor; a FakeClock in tests.
        shutdown_timeout: how long :meth:`close` waits for step threads that
            do not check their mailbox.
        busy_timeout: how long a write waits for another process's lock
            before failing with :class:`StoreLocked`. Default: a third of
            ``lease_ttl``, at most 5 s.
        claim_runs: also run the runs nobody owns yet (created by ``proctor
            start``) of every workflow this process has imported, as
            ``proctor worker`` does. Two runtimes never run the same run.
        control_interval: how often the ControlInbox looks for cancel and
            terminate requests written by other processes (``proctor cancel``).
        resume: resume, by replay, the unfinished runs (of workflows this
            process has imported) whose runtime died or stopped (D2). A run's
            owner is dead when its lease ran out, when it stopped, or when its
            process is gone from this host.
        lease_ttl: how long this runtime's lease lasts unless renewed (it is
            renewed every third of it). Another runtime that sees it not
            renewed for this long, on its own clock, takes its runs over.
            This runtime stops its own steps first (self-fencing): when three
            quarters of it pass without a renewal that took, every check and
            heartbeat of its steps raises :class:`Terminated` and it stops
            hosting its runs, as Chubby's and Temporal's workers do.
        max_concurrent_steps: how many step attempts run at once, at most
            (Temporal's ``max_concurrent_activities``); the others wait,
            recorded as ``waiting`` (``step_waiting``), and start in the order
            they were decided as slots free. Default: 50 per CPU, at least 16.
            An abandoned attempt (terminate, timeout) holds its slot until its
            code returns. Raises ``TypeError``/``ValueError`` if not an int
            of at least 1.
        max_batch: the most appends the Journal commits in one transaction
            (group commit); at least 1. Larger batches amortise the commit
            over more runs; smaller ones bound how long one commit holds the
            write lock.
        request_timeout: how long (seconds) ``start``, ``cancel`` and
            ``terminate`` wait for their durable record before raising
            :class:`OutcomeUnknown`, which names the run: the request may
            still take effect.
        max_payload_bytes: the most bytes of JSON a workflow or step argument,
            a step or workflow result, or heartbeat details may take (D4);
            a larger one is a :class:`PayloadTooLarge` at the call.
        retention: seconds (or a ``timedelta``) a finished run is kept; older
            ones are pruned with their log, steps and finished child runs,
            in small batches off the hot path. None (default) keeps every
            run forever. See ``proctor runs prune``.

    Raises:
        ValueError, TypeError: a bad setting (``max_payload_bytes``,
            ``retention``, ``max_concurrent_steps``, ``max_batch``,
            ``request_timeout``), or ``lease_ttl`` under 3x
            ``busy_timeout`` (one wait for a locked store could then outlast
            the lease's safe window); nothing is opened.
        StoreError: the store cannot be opened.
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
    ) -> None:
        if max_concurrent_steps is not None:
            check_max_concurrent_steps(max_concurrent_steps)
        # Bad settings are refused before the store is touched.
        self.max_payload_bytes = check_payload_limit(max_payload_bytes)
        self.retention = retention_seconds(retention)
        if request_timeout <= 0:
            raise ValueError(f"request_timeout must be positive, got {request_timeout}")
        self.request_timeout = request_timeout
        if max_batch < 1:
            raise ValueError(f"max_batch must be at least 1, got {max_batch}")
        if busy_timeout is None:
            busy_timeout = min(DEFAULT_BUSY_TIMEOUT, lease_ttl / MIN_LEASE_PER_BUSY_TIMEOUT)
        check_lease_config(lease_ttl, busy_timeout)
        self.id = f"rt-{uuid.uuid4().hex[:12]}"
        self.db = os.fspath(db)
        self.clock: Clock = clock or SystemClock()
        self.shutdown_timeout = shutdown_timeout
        # Opening the store first surfaces a bad file (locked, foreign, newer
        # schema) here, at construction, as a StoreError.
        self._store = Store.open(self.db, synchronous=synchronous, busy_timeout=busy_timeout)
        registered_at = time.monotonic()  # sent; the guard counts from here
        try:
            self._store.register_runtime(self.id, ttl=lease_ttl)
        except BaseException:
            self._store.close()
            raise
        self._guard = LeaseGuard(owner=self.id, lease_ttl=lease_ttl, registered_at=registered_at)
        self._census = Census(max_concurrent_steps)
        self._directory = Directory()
        self._watchers = _Watchers()
        self._closed = False
        #: Set by the test kit's restart(): handles of this runtime use it.
        self._successor: Runtime | None = None
        self._halted = Halt()
        self._guardian = Guardian.start(
            census=self._census,
            owner=self.id,
            path=self.db,
            synchronous=synchronous,
            busy_timeout=busy_timeout,
            clock=self.clock,
            directory=self._directory,
            on_terminal=self._watchers.notify,
            control_interval=control_interval,
            claim_runs=claim_runs,
            control_cursor=self._store.last_seq(),
            reader=self._store,
            resume=resume,
            lease_ttl=lease_ttl,
            halted=self._halted,
            max_batch=max_batch,
            max_payload_bytes=self.max_payload_bytes,
            retention=self.retention,
            guard=self._guard,
        )
        wiring = self._guardian.ask(GetWiring(), timeout=ASK_TIMEOUT)
        assert isinstance(wiring, Wiring)
        self._journal = wiring.journal
        self._timers = wiring.timers
        self._finalizer = weakref.finalize(self, _warn_unclosed, self.id)

    # -- lifecycle ---------------------------------------------------------------

    def __enter__(self) -> Runtime:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        """Stop every actor of this runtime; unfinished runs stay in the store.

        Nothing new starts. Steps still running are asked to stop: they
        unwind with :class:`Terminated` at their next check, and their
        attempts are abandoned (``step_abandoned``) and run again by the next
        runtime. A step that returns (or fails) before ``shutdown_timeout``
        has its result recorded (A4), and the next runtime's replay returns
        it without running the step again. A step still running after
        ``shutdown_timeout`` is abandoned, reported in the log and left as a
        daemon thread; its late result is discarded.
        """
        if self._closed:
            return
        self._stop_actors(abandon=False)
        self._store.close()

    def _stop_actors(self, *, abandon: bool) -> None:
        self._closed = True
        self._finalizer.detach()
        deadline = time.monotonic() + self.shutdown_timeout
        done: pykka.Future[Any] = pykka.ThreadingFuture()
        try:
            self._guardian.tell(Shutdown(reply=done, abandon=abandon))
            try:
                done.get(timeout=self.shutdown_timeout)
            except pykka.Timeout:
                # Steps that are still running now are abandoned: their
                # results would come after this process stopped writing.
                with contextlib.suppress(pykka.ActorDeadError):
                    self._guardian.tell(Shutdown(abandon=True))
                done.get(timeout=ASK_TIMEOUT)
        except (pykka.ActorDeadError, pykka.Timeout):
            if self._halted.error is None:  # else it said why when it stopped
                logger.exception("runtime %s: guardian did not shut down cleanly", self.id)
        # Threads of abandoned steps, and pooled threads on their way out.
        grace = max(deadline - time.monotonic(), min(1.0, self.shutdown_timeout))
        if not self._census.wait_empty(grace):
            logger.warning(
                "runtime %s: %s still running user code that never checks its mailbox",
                self.id,
                ", ".join(self._census.live()),
            )

    def kill(self) -> None:
        """Stop as abruptly as a SIGKILLed process, for tests of crash recovery.

        From this call on nothing more reaches the store: no step end, no
        ``step_abandoned``, no release of the runtime's lease, which is
        expired at once (as if it had run out) so that another runtime resumes
        the runs without waiting for it. The actors then stop, like
        :meth:`close`.
        """
        if self._closed:
            return
        self._halted.set()
        self._stop_actors(abandon=True)
        # After the actors: a lease renewal already under way cannot undo it.
        self._store.expire_lease(self.id, "killed")
        self._store.close()

    @property
    def failure(self) -> StoreError | None:
        """Why this runtime stopped itself, or None while it runs.

        It stops, and hosts nothing more, when its store's path no longer
        names the file it opened (deleted or replaced), when the file is
        damaged, or when a shared actor keeps dying; every call then raises
        this error (``StoreReplaced``, ``StoreCorrupt`` or ``StoreError``).
        """
        return self._halted.error

    def _check_open(self) -> None:
        if self._halted.error is not None:
            self._halted.check(self.id)
        if self._closed:
            raise ProctorError(f"runtime {self.id} is closed")

    # -- runs --------------------------------------------------------------------

    def start(self, workflow: WorkflowDef[..., R], /, *args: Any, **kwargs: Any) -> RunHandle[R]:
        """Start a durable run of ``workflow``; arguments must be JSON (D4).

        The body receives the arguments' JSON round trip (a tuple arrives as
        a list), the same values it receives if the run is resumed.

        Returns once the run is durable. Its creation is written with the
        body's first records (its first step's start, usually), so the body
        is already under way: a workflow body must not block before its first
        ``await``.

        Raises:
            NotSerializable: an argument is not JSON (a NaN, a dict key that
                is not a str, a cycle, nested deeper than ``MAX_VALUE_DEPTH``);
                nothing is written.
            PayloadTooLarge: the arguments take more than ``max_payload_bytes``
                of JSON; nothing is written.
            OutcomeUnknown: its creation was not confirmed within
                ``request_timeout`` (a slow or locked store, or a body that
                blocked before its first await); the run may exist, and the
                error names its id (A3).
            StoreError: the store cannot take the run (locked past the busy
                timeout, say); nothing was written. ``StoreReplaced`` or
                ``StoreCorrupt`` once the runtime stopped because its store
                file was deleted, replaced or damaged.
        """
        self._check_open()
        if not isinstance(workflow, WorkflowDef):
            raise TypeError(f"start() takes a @workflow(), got {safe_repr(workflow)}")
        # D4: the body gets the arguments' JSON round trip, as it will after a resume.
        args, kwargs = roundtrip_arguments(
            args,
            kwargs,
            what=f"arguments of workflow {workflow.name!r}",
            limit=self.max_payload_bytes,
        )
        run_id = uuid.uuid4().hex
        created = NewEvent(
            run_id=run_id,
            type=EventType.RUN_CREATED,
            data={
                "workflow": workflow.name,
                "args": list(args),
                "kwargs": kwargs,
                "owner": self.id,
            },
        )
        # The run's supervisor writes the record with the body's first ones
        # (usually the first step's start), in one group; we return once it
        # is durable.
        reply: pykka.Future[tuple[AppendOutcome, ...]] = pykka.ThreadingFuture()
        tell(
            self._guardian,
            StartRun(
                run_id=run_id,
                workflow=workflow,
                args=args,
                kwargs=tuple(kwargs.items()),
                state=RunState.PENDING,
                create=created,
                created=reply,
            ),
        )
        late = (
            f"its creation was not confirmed within {self.request_timeout}s (the store is slow or"
            " locked, or the body blocked before its first await: its creation is written"
            " with the body's first step, so a workflow body must not block; do blocking"
            " work in a step)"
        )
        outcomes = self._answer(reply, run_id, "start", late)
        refused = next((o for o in outcomes if isinstance(o, Refused)), None)
        if refused is not None:
            raise ProctorError(f"run {run_id} was not created: {refused.reason}")
        return RunHandle(self, run_id)

    def handle(self, run_id: str) -> RunHandle[Any]:
        """A handle on an existing run. Raises :class:`RunNotFound`."""
        self._store.get_run(run_id)
        return RunHandle(self, run_id)

    def cancel(
        self,
        run_id: str,
        reason: str | None = None,
        *,
        wait: bool = False,
        timeout: float | None = None,
        grace: float | None = None,
        source: str = "api",
    ) -> ControlResult:
        """Request a graceful cancel (C1); returns at once unless ``wait``.

        The run becomes CANCELLING durably before this returns. Its code meets
        the cancel at its next checkpoint (C2). With ``grace``, a run still not
        terminal ``grace`` seconds later is terminated (C8).

        Raises:
            RunNotFound: no such run.
            OutcomeUnknown: the request was not confirmed within
                ``request_timeout``; it may still take effect.
            StoreError: the store refused it (nothing was written), or the
                runtime stopped (see :attr:`failure`).
            NotSerializable: ``reason`` is not text; nothing was written.
        """
        self._check_open()
        ref = self._directory.get(run_id)
        reason = check_reason(reason)  # refused here, not by the Journal
        cut, reason = reason_cut(reason), cap_reason(reason)
        event = cancel_request(run_id, reason, source=source, origin=self.id, grace=grace)
        deliver = ((ref, Cancel(reason=reason, source=source)),) if ref is not None else ()
        outcome = self._append(event, run_id=run_id, request="cancel", deliver=deliver)[0]
        if not isinstance(outcome, Appended):
            return self._refused(run_id, outcome, "cancel")
        if grace is not None:
            tell(
                self._timers,
                ScheduleTimer(
                    token=("grace", run_id),
                    due=self.clock.monotonic() + grace,
                    target=self._guardian,
                    message=GraceExpired(run_id=run_id, reason=reason),
                ),
            )
        changed = outcome.changed
        status = outcome.status
        if wait:
            status = self._wait_finished(run_id, timeout).status
        message = "cancel requested" if changed else "run is already cancelling"
        return ControlResult(
            run_id=run_id, status=status, changed=changed, message=message + _cut_note(cut)
        )

    def terminate(
        self, run_id: str, reason: str | None = None, *, source: str = "api"
    ) -> ControlResult:
        """Terminate the run and its child runs at once (T1, T4).

        The run and every unfinished descendant are durably TERMINATED before
        this returns; their actors stop right after.

        Raises:
            RunNotFound: no such run.
            OutcomeUnknown: the request was not confirmed within
                ``request_timeout``; it may still take effect.
            StoreError: the store refused it; nothing was written.
            NotSerializable: ``reason`` is not text; nothing was written.
        """
        self._check_open()
        reason = check_reason(reason)  # refused here, not by the Journal
        ref = self._directory.get(run_id)
        cut, reason = reason_cut(reason), cap_reason(reason)
        deliver = ((ref, TerminateMsg(reason=reason)),) if ref is not None else ()
        # The whole tree in one transaction, through our one writer: durable
        # before we return, and reaching children no runtime of ours hosts.
        # (The run's supervisor also terminates its live children's actors.)
        reply: pykka.Future[Any] = pykka.ThreadingFuture()
        tell(
            self._journal,
            TerminateTree(
                run_id=run_id,
                reason=reason,
                source=source,
                origin=self.id,
                reply=reply,
                deliver=deliver,
            ),
        )
        outcome, _ = self._answer(reply, run_id, "terminate")
        if not isinstance(outcome, Appended):
            return self._refused(run_id, outcome, "terminate")
        return ControlResult(
            run_id=run_id,
            status=RunState.TERMINATED,
            changed=True,
            message="terminated" + _cut_note(cut),
        )

    def get_run(self, run_id: str) -> RunRecord:
        """The run's current record. Raises :class:`RunNotFound`."""
        self._check_open()
        return self._store.get_run(run_id)

    def list_runs(
        self,
        status: RunState | None = None,
        *,
        workflow: str | None = None,
        parent_run_id: str | None = None,
        limit: int | None = None,
    ) -> list[RunRecord]:
        """Runs in the store, newest first; ``parent_run_id`` gives a run's child runs."""
        self._check_open()
        return self._store.list_runs(
            status=status, workflow=workflow, parent_run_id=parent_run_id, limit=limit
        )

    def events(self, run_id: str) -> list[EventRecord]:
        """The run's event log, in order. Raises :class:`RunNotFound`."""
        self._check_open()
        self._store.get_run(run_id)
        return self._store.events(run_id)

    # -- internals ---------------------------------------------------------------

    def _append(
        self,
        *events: NewEvent,
        run_id: str,
        request: str,
        deliver: tuple[tuple[Any, Any], ...] = (),
    ) -> tuple[AppendOutcome, ...]:
        reply: pykka.Future[tuple[AppendOutcome, ...]] = pykka.ThreadingFuture()
        # Control-first: a cancel does not wait behind the Journal's backlog.
        tell(self._journal, ControlAppend(events=events, reply=reply, deliver=deliver))
        return self._answer(reply, run_id, request)  # type: ignore[no-any-return]

    def _answer(
        self, reply: pykka.Future[Any], run_id: str, request: str, late: str | None = None
    ) -> Any:
        """The Journal's answer to ``request`` of ``run_id``.

        Raises:
            OutcomeUnknown: no answer within ``request_timeout``: the request was
                handed to the Journal and may yet take effect (A3).
            StoreError: the store refused it, or the Journal had stopped;
                nothing of it was written.
        """
        try:
            return reply.get(timeout=self.request_timeout)
        except pykka.Timeout as exc:
            detail = late or f"the journal did not answer within {self.request_timeout}s"
            raise OutcomeUnknown(run_id, request, detail) from exc

    def _refused(self, run_id: str, outcome: AppendOutcome, verb: str) -> ControlResult:
        status = outcome.status
        if status is None:
            raise RunNotFound(run_id)
        return ControlResult(
            run_id=run_id,
            status=status,
            changed=False,
            message=f"run already finished: {status}; {verb} changed nothing",
        )

    def _poll(
        self, run_id: str, deadline: float | None, now: float
    ) -> tuple[RunRecord, float | None]:
        """The run's record, and how long to wait before reading it again.

        ``None`` means stop waiting: the run is terminal or the deadline passed.
        The wait is capped so that runs ending in another process (no wake-up
        from our Journal) are seen within POLL_INTERVAL.
        """
        if self._halted.error is not None:  # the store under the run is gone
            self._halted.check(self.id)
        record = self._store.get_run(run_id)
        if record.status.is_terminal:
            return record, None
        pause = POLL_INTERVAL if deadline is None else min(POLL_INTERVAL, deadline - now)
        return record, (pause if pause > 0 else None)

    def _live_here(self, run_id: str) -> bool:
        """Whether the run is hosted here and has not ended: its end will wake
        a watcher already registered, so there is no need to read it first."""
        return not self._watchers.ended(run_id) and self._directory.get(run_id) is not None

    @staticmethod
    def _first_pause(deadline: float | None, now: float) -> float:
        return POLL_INTERVAL if deadline is None else max(0.0, min(POLL_INTERVAL, deadline - now))

    def _wait_finished(self, run_id: str, timeout: float | None) -> RunRecord:
        deadline = None if timeout is None else time.monotonic() + timeout
        woken = threading.Event()
        self._watchers.add(run_id, woken.set)
        try:
            if self._live_here(run_id):
                woken.wait(self._first_pause(deadline, time.monotonic()))
            while True:
                record, pause = self._poll(run_id, deadline, time.monotonic())
                if pause is None:
                    return record
                woken.wait(pause)
        finally:
            self._watchers.discard(run_id, woken.set)

    async def _wait_finished_async(self, run_id: str, timeout: float | None) -> RunRecord:
        loop = asyncio.get_running_loop()
        deadline = None if timeout is None else loop.time() + timeout
        woken = asyncio.Event()

        def wake() -> None:
            loop.call_soon_threadsafe(woken.set)

        self._watchers.add(run_id, wake)
        try:
            if self._live_here(run_id):
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(woken.wait(), self._first_pause(deadline, loop.time()))
            while True:
                record, pause = self._poll(run_id, deadline, loop.time())
                if pause is None:
                    return record
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(woken.wait(), pause)
        finally:
            self._watchers.discard(run_id, wake)


class RunHandle(Generic[R]):
    """A run of a workflow: its id, state, log, outcome, and control."""

    def __init__(self, runtime: Runtime, run_id: str) -> None:
        self._runtime = runtime
        self.run_id = run_id

    @property
    def _rt(self) -> Runtime:
        # The test kit's restart() hands a killed runtime's handles on to
        # the runtime that replaced it.
        runtime = self._runtime
        while runtime._successor is not None:
            runtime = runtime._successor
        return runtime

    def __repr__(self) -> str:
        return f"<RunHandle {self.run_id}>"

    def status(self) -> RunState:
        return self._rt.get_run(self.run_id).status

    def record(self) -> RunRecord:
        return self._rt.get_run(self.run_id)

    def events(self) -> list[EventRecord]:
        return self._rt.events(self.run_id)

    def cancel(
        self,
        reason: str | None = None,
        *,
        wait: bool = False,
        timeout: float | None = None,
        grace: float | None = None,
    ) -> ControlResult:
        return self._rt.cancel(self.run_id, reason, wait=wait, timeout=timeout, grace=grace)

    def terminate(self, reason: str | None = None) -> ControlResult:
        return self._rt.terminate(self.run_id, reason)

    def wait_finished(self, timeout: float | None = None) -> RunRecord:
        """Block until the run is terminal or ``timeout`` passes; return its record."""
        return self._rt._wait_finished(self.run_id, timeout)

    def result(self, timeout: float | None = None) -> R:
        """The run's result, once it is terminal.

        Raises:
            RunCancelled, RunTerminated, WorkflowFailed: the run did not complete.
            WaitTimeout: (a ``TimeoutError``) still not terminal after
                ``timeout`` seconds; says what the run waits for.
        """
        return cast(R, self._outcome(self.wait_finished(timeout), timeout))

    async def result_async(self, timeout: float | None = None) -> R:
        """Like :meth:`result`, without blocking the event loop."""
        record = await self._rt._wait_finished_async(self.run_id, timeout)
        return cast(R, self._outcome(record, timeout))

    def _outcome(self, record: RunRecord, timeout: float | None) -> Any:
        if record.status.is_terminal:
            return _outcome(record)
        events, steps = self._rt.events(self.run_id), self._rt._store.steps(self.run_id)
        raise WaitTimeout(
            self.run_id, record.status.value, explain(record, events, steps, waited=timeout)
        )

    def __await__(self) -> Generator[Any, None, R]:
        return self.result_async().__await__()


def _outcome(record: RunRecord) -> Any:
    """A terminal run's result, or the error that says how it ended."""
    status = record.status
    if status is RunState.COMPLETED:
        if record.defect is not None:
            raise CorruptRecord(f"run {record.run_id}'s result cannot be read: {record.defect}")
        return record.result
    if status is RunState.CANCELLED:
        raise RunCancelled(record.run_id, record.cancel_reason)
    if status is RunState.TERMINATED:
        raise RunTerminated(record.run_id, record.terminate_reason)
    if status is RunState.FAILED:
        raise WorkflowFailed(record.run_id, record.error)
    raise AssertionError(f"run {record.run_id} is not terminal: {status}")


def _warn_unclosed(runtime_id: str) -> None:
    logger.warning("runtime %s was garbage-collected without close()", runtime_id)
