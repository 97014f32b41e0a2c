"""The Client: start, inspect and control runs of a store without hosting any (A5).

A :class:`Client` (for a CLI, an admin tool, another service) writes
requests straight into the store, the records the ``proctor`` commands
write (``persistence._direct``, ``Store.terminate_tree``); a worker claims
the runs it starts; the runtime owning a run acts on its cancel and terminate.

Invariants:

* no actor, no thread of its own, no lease, no resume: a Client never runs a
  workflow, and a store with only Clients on it runs nothing;
* each request is one store transaction, written whole or not at all, and
  every argument is checked before it is written;
* an ``*_async`` twin never runs a store call on the event loop's thread: the
  call runs in the loop's default executor (A1), and waits poll the store
  from there, sleeping with ``asyncio.sleep``;
* after :meth:`Client.close` every call raises :class:`RuntimeClosed`.
"""

from __future__ import annotations

import asyncio
import os
import time
import uuid
from typing import Any, TypeVar

from actors._arguments import fits, flag, instance, optional_seconds, seconds, text
from actors._arguments import run_id as check_run_id
from actors._definitions import WorkflowDef, lookup_workflow
from actors._directory import Directory
from actors._errors import RuntimeClosed
from actors._handle import ControlResult, RunHandle
from actors._reading import StoreReads
from actors._requests import Requests, _cut_note
from actors._waiting import RunWaiter
from persistence import (
    DEFAULT_BUSY_TIMEOUT,
    DEFAULT_MAX_PAYLOAD_BYTES,
    Appended,
    InvalidArgument,
    InvalidArgumentType,
    RunRecord,
    RunState,
    StepRecord,
    StoreError,
    cap_reason,
    check_chosen_run_id,
    check_payload_limit,
    check_reason,
    create_unowned_run,
    follow_to_end,
    grace_reason,
    open_store,
    reason_cut,
    request_cancel,
    roundtrip_arguments,
    safe_repr,
)

R = TypeVar("R")


class Client(StoreReads):
    """Start, read, cancel, terminate and wait for runs of a store, hosting none.

    Reads (``get_run``, ``list_runs``, ``list_runs_page``, ``events`` and
    their ``*_async`` twins) are :class:`StoreReads`'s, shared with
    :class:`Runtime`. Use it as a context manager::

        with Client("proctor.db") as client:
            handle = client.start(order, "o-1")   # PENDING until a worker claims it
            print(handle.result(timeout=30))

    Modelled on Temporal's ``Client`` and DBOS's ``DBOSClient``.

    Args:
        db: path of the SQLite store; created if missing.
        busy_timeout: how long a write waits for another process's lock
            before failing with ``StoreLocked`` (default 5 s).
        max_payload_bytes: the most bytes of JSON a run's arguments may take
            (D4); more is a ``PayloadTooLarge`` at :meth:`start`.

    Raises:
        InvalidArgument: a bad setting (``InvalidArgumentType`` for one of the
            wrong type); nothing is opened.
        StoreError: the store cannot be opened.
    """

    #: A Client is never replaced (the RunHost protocol of its handles).
    _successor: Client | None = None

    def __init__(
        self,
        db: str | os.PathLike[str] = "proctor.db",
        *,
        busy_timeout: float | None = None,
        max_payload_bytes: int = DEFAULT_MAX_PAYLOAD_BYTES,
    ) -> None:
        path = instance("db", db, (str, os.PathLike), "a path (str or os.PathLike)")
        waiting = DEFAULT_BUSY_TIMEOUT if busy_timeout is None else busy_timeout
        seconds("busy_timeout", waiting)
        try:
            self.max_payload_bytes = check_payload_limit(max_payload_bytes)
        except TypeError as exc:
            raise InvalidArgumentType(str(exc)) from exc
        except ValueError as exc:
            raise InvalidArgument(str(exc)) from exc
        self.db = os.fspath(path)
        self._closed = False
        #: Who wrote a request (``origin``), so that no runtime mistakes it for its own.
        self.id = f"client-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        self._store = open_store(self.db, busy_timeout=waiting)
        # A runtime's waits without its actors: nothing is hosted here, so they poll.
        self._waiter = RunWaiter(
            owner=self.id, store=self._store, directory=Directory(), check_open=self._check_open
        )

    # -- lifecycle ---------------------------------------------------------------

    def __enter__(self) -> Client:
        """Raises :class:`RuntimeClosed` if the client was closed."""
        self._check_open()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the store connection; idempotent. Runs are not affected.

        Every later call (of this client and of its handles) raises
        :class:`RuntimeClosed`.
        """
        if self._closed:
            return
        self._closed = True
        self._store.close()

    def _check_open(self) -> None:
        if self._closed:
            raise RuntimeClosed(f"client {self.id} of {self.db} is closed")

    # -- starting ------------------------------------------------------------------

    def start(
        self,
        workflow: WorkflowDef[..., R] | str,
        /,
        *args: Any,
        run_id: str | None = None,
        **kwargs: Any,
    ) -> RunHandle[R]:
        """Create a run of ``workflow`` for a worker to claim; its handle.

        The run is PENDING, owned by nobody, until a worker that imported the
        workflow (``proctor worker``, ``Runtime(claim_runs=True)``) claims
        it; this is what ``proctor start`` does. ``workflow`` is a
        ``@workflow()`` or its registered name (a workflow this process did
        not import: its signature is then checked by the worker only).
        ``run_id`` (reserved: a workflow's own keyword argument cannot be
        called ``run_id``) names the run; default a new random id.

        Raises:
            NotSerializable: an argument is not JSON (D4).
            PayloadTooLarge: the arguments take over ``max_payload_bytes``.
            InvalidArgumentType: ``workflow`` is neither, or the arguments do
                not fit its signature; nothing was written.
            InvalidArgument: ``run_id`` is not a run id a caller may choose
                (``check_chosen_run_id``).
            RunIdInUse: ``run_id`` names a run of another workflow or other
                arguments; nothing was written. The same start again returns
                a handle on the existing run (A2, Temporal's USE_EXISTING).
            StoreError: the store cannot take it; nothing was written.
            RuntimeClosed: the client was closed.
        """
        self._check_open()
        name, definition = self._workflow(workflow)
        run_id = uuid.uuid4().hex if run_id is None else check_chosen_run_id(run_id)
        args_in, kwargs_in = roundtrip_arguments(
            args, kwargs, what=f"arguments of workflow {name!r}", limit=self.max_payload_bytes
        )
        if definition is not None:
            fits(f"workflow {name}", definition.signature, args_in, kwargs_in)
        create_unowned_run(self._store, name, list(args_in), kwargs_in, run_id=run_id)
        return RunHandle(self, run_id)  # a new run, or the same start's (A2)

    async def start_async(
        self,
        workflow: WorkflowDef[..., R] | str,
        /,
        *args: Any,
        run_id: str | None = None,
        **kwargs: Any,
    ) -> RunHandle[R]:
        """Like :meth:`start`, without blocking the event loop (A1)."""
        return await self._off_loop(self.start, workflow, *args, run_id=run_id, **kwargs)

    @staticmethod
    def _workflow(workflow: object) -> tuple[str, WorkflowDef[..., Any] | None]:
        if isinstance(workflow, WorkflowDef):
            return workflow.name, workflow
        if isinstance(workflow, str) and workflow:
            return workflow, lookup_workflow(workflow)
        raise InvalidArgumentType(
            f"start() takes a @workflow() or its name, got {safe_repr(workflow)}"
        )

    def handle(self, run_id: str) -> RunHandle[Any]:
        """A handle on an existing run. Raises :class:`RunNotFound`."""
        self._check_open()
        self._store.get_run(check_run_id(run_id))
        return RunHandle(self, run_id)

    # -- control -------------------------------------------------------------------

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
        """Request a graceful cancel (C1), as :meth:`Runtime.cancel` does.

        The run is durably CANCELLING when this returns; the runtime that
        owns it delivers the cancel (a run nobody owns yet gets it when a
        worker claims it). ``grace`` (C8) is recorded: the owning runtime
        terminates the run that long after the request; with ``wait``, so
        does this call. ``wait``: return once the run is terminal or
        ``timeout`` seconds passed (no error: ``status`` says CANCELLING).

        Raises:
            InvalidArgument: ``timeout`` or ``grace`` is not a finite number
                of seconds >= 0; nothing was written.
            NotSerializable: ``reason`` is not text; nothing was written.
            RunNotFound: no such run.
            StoreError: the store refused it; nothing was written.
            RuntimeClosed: the client was closed.
        """
        self._check_open()
        begun = time.monotonic()
        reason, cut = self._checked(run_id, reason, source)
        timeout = optional_seconds("timeout", timeout)
        flag("wait", wait)
        outcome = request_cancel(
            self._store, run_id, reason, source=source, origin=self.id, grace=grace
        )
        if not isinstance(outcome, Appended):
            return Requests._refused(run_id, outcome, "cancel")
        status = outcome.status
        if wait:
            final = follow_to_end(
                self._store,
                run_id,
                timeout_at=None if timeout is None else begun + timeout,
                grace_at=None if grace is None else begun + grace,
                reason=reason,
                origin=self.id,
                after=outcome.run_seq,
            )
            status = (final or self._store.get_run(run_id)).status
        return self._cancelled(run_id, status, outcome.changed, cut)

    async def cancel_async(
        self,
        run_id: str,
        reason: str | None = None,
        *,
        wait: bool = False,
        timeout: float | None = None,
        grace: float | None = None,
        source: str = "api",
    ) -> ControlResult:
        """Like :meth:`cancel`, without blocking the event loop (A1)."""
        loop = asyncio.get_running_loop()
        begun = loop.time()
        self._check_open()
        reason, cut = self._checked(run_id, reason, source)
        timeout = optional_seconds("timeout", timeout)
        flag("wait", wait)
        outcome = await self._off_loop(
            request_cancel, self._store, run_id, reason, source=source, origin=self.id, grace=grace
        )
        if not isinstance(outcome, Appended):
            return Requests._refused(run_id, outcome, "cancel")
        status = outcome.status
        if wait:
            timeout_at = None if timeout is None else begun + timeout
            grace_at = None if grace is None else begun + grace
            while True:
                deadline = min((d for d in (timeout_at, grace_at) if d is not None), default=None)
                left = None if deadline is None else max(0.0, deadline - loop.time())
                record = await self._wait_finished_async(run_id, left)
                status = record.status
                if status.is_terminal or grace_at is None or loop.time() < grace_at:
                    break  # the end, or the timeout came first
                grace_at = None
                await self._off_loop(
                    self._store.terminate_tree,
                    run_id,
                    grace_reason(reason),
                    source="grace",
                    origin=self.id,
                )
        return self._cancelled(run_id, status, outcome.changed, cut)

    def terminate(
        self, run_id: str, reason: str | None = None, *, source: str = "api"
    ) -> ControlResult:
        """Terminate the run and its unfinished child runs at once (T1, T4).

        They are durably TERMINATED, in one transaction, when this returns,
        whether or not a runtime hosts them; a hosting runtime stops their
        actors right after. A run already finished changes nothing and says
        so (``changed`` False, C6).

        Raises:
            NotSerializable: ``reason`` is not text; nothing was written.
            RunNotFound: no such run.
            StoreError: the store refused it; nothing was written.
            RuntimeClosed: the client was closed.
        """
        self._check_open()
        reason, cut = self._checked(run_id, reason, source)
        outcome, _ = self._store.terminate_tree(run_id, reason, source=source, origin=self.id)
        if not isinstance(outcome, Appended):
            return Requests._refused(run_id, outcome, "terminate")
        return ControlResult(
            run_id=run_id,
            status=RunState.TERMINATED,
            changed=True,
            message="terminated" + _cut_note(cut),
        )

    async def terminate_async(
        self, run_id: str, reason: str | None = None, *, source: str = "api"
    ) -> ControlResult:
        """Like :meth:`terminate`, without blocking the event loop (A1)."""
        return await self._off_loop(self.terminate, run_id, reason, source=source)

    @staticmethod
    def _checked(run_id: object, reason: object, source: object) -> tuple[str | None, bool]:
        """Every argument of a request, checked before it is written: the
        reason as recorded, and whether it was cut."""
        check_run_id(run_id)
        checked = check_reason(reason)
        text("source", source)
        return cap_reason(checked), reason_cut(checked)

    @staticmethod
    def _cancelled(run_id: str, status: RunState, changed: bool, cut: bool) -> ControlResult:
        message = "cancel requested" if changed else "run is already cancelling"
        return ControlResult(
            run_id=run_id, status=status, changed=changed, message=message + _cut_note(cut)
        )

    # -- waiting -------------------------------------------------------------------

    def wait(self, run_id: str, timeout: float | None = None) -> RunRecord:
        """Block until the run is terminal or ``timeout`` seconds pass; its record.

        Raises:
            InvalidArgument: ``timeout`` is not None or a finite number >= 0.
            RunNotFound: no such run.
            RuntimeClosed: the client was closed (before or during the wait).
        """
        self._check_open()
        return self._wait_finished(check_run_id(run_id), timeout)

    async def wait_async(self, run_id: str, timeout: float | None = None) -> RunRecord:
        """Like :meth:`wait`, without blocking the event loop (A1)."""
        self._check_open()
        return await self._wait_finished_async(check_run_id(run_id), timeout)

    # -- the RunHost protocol of RunHandle -------------------------------------------

    def _steps(self, run_id: str) -> list[StepRecord]:
        self._check_open()
        return self._store.steps(run_id)

    def _wait_finished(self, run_id: str, timeout: float | None) -> RunRecord:
        return self._waiter.wait_finished(run_id, timeout)

    async def _wait_finished_async(self, run_id: str, timeout: float | None) -> RunRecord:
        """Poll the store from the loop's executor until the run is terminal
        or ``timeout`` passes (the rule of ``RunWaiter.poll``)."""
        timeout = optional_seconds("timeout", timeout)
        loop = asyncio.get_running_loop()
        deadline = None if timeout is None else loop.time() + timeout
        while True:
            try:
                record, pause = await self._off_loop(
                    self._waiter.poll, run_id, deadline, loop.time()
                )
            except StoreError:
                self._check_open()  # closed meanwhile: that is the reason
                raise
            if pause is None:
                return record
            await asyncio.sleep(pause)
