"""The Client: start, inspect and control runs of a store without hosting any (A5).

A :class:`Client` (for a CLI, an admin tool, another service) writes
requests straight into the store, the records the ``proctor`` commands
write (``persistence._direct``, ``Store.terminate_tree``); a worker claims
the runs it starts; the runtime owning a run acts on its cancel and terminate.
Its reads are ``_reading.StoreReads``'s, its cancel, terminate and restart
``_client_control.ClientControl``'s; this module holds its lifecycle, its
starts and its waits.

Invariants:

* no actor, no thread of its own, no lease, no resume: a Client never runs a
  workflow, and a store with only Clients on it runs nothing;
* each request is one store transaction, written whole or not at all, and
  every argument is checked before it is written;
* an ``*_async`` twin never runs a store call on the event loop's thread: the
  call runs in the loop's default executor (A1), and waits are a
  ``RunWaiter``'s, as the Runtime's are (nothing is hosted here, so they
  poll the store, from the executor);
* a Client opens an existing store only, unless ``create=True``: a mistyped
  path is an error, never a new empty store no worker reads;
* after :meth:`Client.close` every call raises :class:`RuntimeClosed`.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from typing import Any, TypeVar

from actors._arguments import binder, fits, flag, seconds, store_target
from actors._arguments import run_id as check_run_id
from actors._client_control import ClientControl
from actors._definitions import WorkflowDef, lookup_workflow
from actors._directory import Directory
from actors._errors import RuntimeClosed
from actors._handle import RunHandle
from actors._reading import InFlight, StoreReads
from actors._run_timeouts import start_deadline
from actors._signalling import ClientSignals
from actors._tracing import trace_context
from actors._waiting import RunWaiter
from persistence import (
    DEFAULT_BUSY_TIMEOUT,
    DEFAULT_MAX_PAYLOAD_BYTES,
    InvalidArgument,
    InvalidArgumentType,
    RunRecord,
    StepRecord,
    StoreError,
    check_chosen_run_id,
    check_payload_limit,
    create_unowned_run,
    open_store,
    roundtrip_arguments,
    safe_repr,
)

R = TypeVar("R")


class Client(StoreReads, ClientControl, ClientSignals):
    """Start, read, cancel, terminate, restart and wait for runs of a store, hosting none.

    Reads (``get_run``, ``list_runs``, ``list_runs_page``, ``events``) are
    :class:`StoreReads`'s, shared with :class:`Runtime`; ``cancel``,
    ``terminate`` and ``restart`` are :class:`ClientControl`'s. Every call
    has an awaitable twin (``start_async``, ``handle_async``, ``wait_async``,
    ``close_async``, ...; A1). Use it as a context manager::

        with Client("proctor.db") as client:
            handle = client.start(order, "o-1")   # PENDING until a worker claims it
            print(handle.result(timeout=30))

        async with Client("proctor.db") as client:
            handle = await client.start_async("shop.orders.order", "o-1")

    Modelled on Temporal's ``Client`` and DBOS's ``DBOSClient``.

    Args:
        db: the store, as ``Runtime(db)`` takes it: a SQLite file's path
            (or ``sqlite:`` URL), or a ``postgresql://`` URL (P1). It must
            exist (a worker or runtime made it) unless ``create=True``: a
            mistyped path would otherwise be a new empty store, with empty
            listings and starts no worker ever sees. Messages show it with
            its password hidden.
        create: make the store if ``db`` does not exist (as
            ``Runtime(db)`` does); default False.
        busy_timeout: how long a write waits for another process's lock
            before failing with ``StoreLocked`` (default 5 s).
        max_payload_bytes: the most bytes of JSON a run's arguments may take
            (D4); more is a ``PayloadTooLarge`` at :meth:`start`.

    Raises:
        InvalidArgument: a bad setting, or a malformed ``db`` URL
            (``InvalidArgumentType`` for one of the wrong type); nothing is opened.
        StoreError: the store cannot be opened: ``db`` does not exist (and
            not ``create``), or it is locked, not a Proctor store
            (``NotAProctorStore``), newer, damaged.
    """

    #: A Client is never replaced (the RunHost protocol of its handles).
    _successor: Client | None = None

    def __init__(
        self,
        db: str | os.PathLike[str] = "proctor.db",
        *,
        create: bool = False,
        busy_timeout: float | None = None,
        max_payload_bytes: int = DEFAULT_MAX_PAYLOAD_BYTES,
    ) -> None:
        target = store_target("db", db)
        flag("create", create)
        waiting = DEFAULT_BUSY_TIMEOUT if busy_timeout is None else busy_timeout
        seconds("busy_timeout", waiting)
        try:
            self.max_payload_bytes = check_payload_limit(max_payload_bytes)
        except TypeError as exc:
            raise InvalidArgumentType(str(exc)) from exc
        except ValueError as exc:
            raise InvalidArgument(str(exc)) from exc
        #: Where the store is, as opened (a PostgreSQL URL keeps its password:
        #: show ``persistence.redact(client.db)``).
        self.db = target.location
        self._shown = target.display
        self._closed = False
        self._in_flight = InFlight()
        #: Who wrote a request (``origin``), so that no runtime mistakes it for its own.
        self.id = f"client-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        if not create and target.is_file and not os.path.exists(self.db):
            raise StoreError(
                f"no Proctor store at {self._shown}: the file does not exist (check the path;"
                " Client(db, create=True) makes a new store)"
            )
        if not create:
            # Judge the store as the CLI's commands do: an empty file (0 bytes,
            # no tables), or a database without Proctor's schema, is not a
            # store, and is not made one.
            open_store(target, readonly=True, busy_timeout=waiting).close()
        self._store = open_store(target, busy_timeout=waiting, create=create)
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

    async def __aenter__(self) -> Client:
        """``async with Client(...) as client:`` closes it with :meth:`close_async`.

        Raises :class:`RuntimeClosed` if the client was closed.
        """
        self._check_open()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close_async()

    def close(self) -> None:
        """Close the store connection; idempotent. Runs are not affected.

        Every later call (of this client and of its handles) raises
        :class:`RuntimeClosed`.
        """
        if self._closed:
            return
        self._in_flight.settle(self._mark_closed)  # calls under way end first (A3)
        self._store.close()

    def _mark_closed(self) -> None:
        self._closed = True

    async def close_async(self) -> None:
        """Like :meth:`close`, in the loop's default executor (A1): closing
        waits for a read or write another thread has in flight."""
        if not self._closed:
            await asyncio.get_running_loop().run_in_executor(None, self.close)

    def _check_open(self) -> None:
        if self._closed:
            raise RuntimeClosed(f"client {self.id} of {self._shown} is closed")

    # -- starting ------------------------------------------------------------------

    def start(
        self,
        workflow: WorkflowDef[..., R] | str,
        /,
        *args: Any,
        run_id: str | None = None,
        timeout: float | None = None,
        **kwargs: Any,
    ) -> RunHandle[R]:
        """Create a run of ``workflow`` for a worker to claim; its handle.

        The run is PENDING, owned by nobody, until a worker that imported the
        workflow (``proctor worker``, ``Runtime(claim_runs=True)``) claims
        it; this is what ``proctor start`` does. ``workflow`` is a
        ``@workflow()`` (its signature is checked here, and the arguments
        bound to it, so positional and keyword forms of one call are the same
        start) or its registered name. A name is never resolved, whether or
        not this process imported the workflow: the signature is checked by
        the worker only, and the arguments are compared as written (A2).

        A name is taken as written: the **full** registered name
        (``module.qualname``, as ``runs list`` prints it, or the
        ``@workflow(name=...)``). A short name (``"order"``, which a listing's
        ``workflow=`` filter accepts) or a typo is not refused: the client
        cannot know what the workers import, so, as Temporal accepts any
        workflow type name and the run waits for a worker that polls for
        it, the run stays PENDING until a worker registering exactly that
        name claims it (maybe never; ``cancel`` or ``terminate`` ends it).
        Pass the ``@workflow()`` itself where this process can import it.
        ``run_id`` (reserved: a workflow's own keyword argument cannot be
        called ``run_id``) names the run; default a new random id.
        ``timeout`` (B4, reserved too): seconds the run may take, counted
        from now, PENDING time included; default the ``@workflow()``'s own
        ``timeout``, also for a name when this process imported the workflow
        under it (so ``start("orders.report", 1)`` and
        ``start(orders.report, 1)`` record the same deadline, as ``proctor
        start orders:report 1`` does); for a name this process did not
        import, only an explicit ``timeout=`` applies (none otherwise). A
        PENDING run's deadline fires when a worker claims it (see the guide
        "Run timeouts").

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
        # B4: a name's timeout is its decorator's where this process imported it,
        # as `proctor start module:name` does; the signature is still not checked.
        deadline = start_deadline(definition or lookup_workflow(name), timeout)
        run_id = uuid.uuid4().hex if run_id is None else check_chosen_run_id(run_id)
        args_in, kwargs_in = roundtrip_arguments(
            args, kwargs, what=f"arguments of workflow {name!r}", limit=self.max_payload_bytes
        )
        if definition is not None:
            fits(f"workflow {name}", definition.signature, args_in, kwargs_in)
        with self._using():
            _, new = create_unowned_run(
                self._store,
                name,
                list(args_in),
                kwargs_in,
                run_id=run_id,
                bind=None if definition is None else binder(definition.signature),
                extra=deadline | trace_context(),  # O2: the caller's trace
            )
        return RunHandle(self, run_id, created=new)  # a new run, or the same start's (A2)

    async def start_async(
        self,
        workflow: WorkflowDef[..., R] | str,
        /,
        *args: Any,
        run_id: str | None = None,
        timeout: float | None = None,
        **kwargs: Any,
    ) -> RunHandle[R]:
        """Like :meth:`start`, without blocking the event loop (A1)."""
        return await self._off_loop(
            self.start, workflow, *args, run_id=run_id, timeout=timeout, **kwargs
        )

    @staticmethod
    def _workflow(workflow: object) -> tuple[str, WorkflowDef[..., Any] | None]:
        if isinstance(workflow, WorkflowDef):
            return workflow.name, workflow
        if isinstance(workflow, str) and workflow:
            # Never resolved, even if this process imported it: a name means
            # the same start whatever the caller imported.
            return workflow, None
        raise InvalidArgumentType(
            f"start() takes a @workflow() or its name, got {safe_repr(workflow)}"
        )

    def handle(self, run_id: str) -> RunHandle[Any]:
        """A handle on an existing run. Raises :class:`RunNotFound`."""
        with self._using():
            self._store.get_run(check_run_id(run_id))
        return RunHandle(self, run_id)

    async def handle_async(self, run_id: str) -> RunHandle[Any]:
        """Like :meth:`handle`; the store is read off the loop (A1)."""
        await self.get_run_async(check_run_id(run_id))
        return RunHandle(self, run_id)

    def _handle(self, run_id: str, *, created: bool | None = None) -> RunHandle[Any]:
        return RunHandle(self, run_id, created=created)

    # -- waiting -------------------------------------------------------------------

    def wait(self, run_id: str, timeout: float | None = None) -> RunRecord:
        """Block until the run is terminal or ``timeout`` seconds pass; its record.

        A wait that runs out is no error (unlike ``RunHandle.result``, which
        raises ``WaitTimeout``): the record returned is then the unfinished
        run's, ``record.status.is_terminal`` False. (Temporal's and DBOS's
        handles have only the raising wait; this one is for a poller that
        wants the status either way.)

        Raises:
            InvalidArgument: ``timeout`` is not None or a finite number >= 0.
            RunNotFound: no such run.
            RuntimeClosed: the client was closed (before or during the wait).
            StoreUnavailable, StoreLocked: the store was still out of reach at
                the deadline (until then the wait reads again).
        """
        self._check_open()
        return self._wait_finished(check_run_id(run_id), timeout)

    async def wait_async(self, run_id: str, timeout: float | None = None) -> RunRecord:
        """Like :meth:`wait`, without blocking the event loop (A1)."""
        self._check_open()
        return await self._wait_finished_async(check_run_id(run_id), timeout)

    # -- the RunHost protocol of RunHandle -------------------------------------------

    def _steps(self, run_id: str) -> list[StepRecord]:
        with self._using():
            return self._store.steps(run_id)

    def _wait_finished(self, run_id: str, timeout: float | None) -> RunRecord:
        return self._waiter.wait_finished(run_id, timeout)

    async def _wait_finished_async(self, run_id: str, timeout: float | None) -> RunRecord:
        return await self._waiter.wait_finished_async(run_id, timeout)
