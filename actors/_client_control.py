"""Controlling runs from a Client, blocking or awaited: cancel, terminate, restart.

:class:`ClientControl` is the control half of the ``Client``'s public API,
each call with its awaitable twin (A1), as ``_controlling.RunControl`` is
the Runtime's. A Client hosts nothing, so each request is written straight
into the store (``persistence._direct``, ``Store.terminate_tree``): the
same records, by the same functions, as ``proctor cancel``, ``proctor
terminate`` and ``proctor runs restart`` write.

Invariants:

* every argument is checked before anything is written; each request is one
  store transaction, written whole or not at all;
* an ``*_async`` twin runs every store call in the loop's default executor
  and raises what its blocking call raises;
* a wait that runs out is no error: the answer's ``status`` is the run's
  status then (CANCELLING, not terminal), as ``Runtime.cancel`` answers.
"""

from __future__ import annotations

import abc
import asyncio
import contextlib
import time
import uuid
from collections.abc import Callable
from typing import Any, TypeVar

from actors._arguments import flag, optional_seconds, text
from actors._arguments import run_id as check_run_id
from actors._handle import ControlResult, RunHandle, cut_note, refused_result, terminated_result
from persistence import (
    Appended,
    InvalidArgument,
    RunRecord,
    RunState,
    Store,
    cap_reason,
    check_chosen_run_id,
    check_reason,
    follow_to_end,
    grace_reason,
    reason_cut,
    request_cancel,
    restart_unowned,
    safe_repr,
)

T = TypeVar("T")


class ClientControl(abc.ABC):
    """Cancel, terminate and restart, each with its awaitable twin, for the Client.

    Subclasses set ``_store`` and ``id`` (the ``origin`` of their requests)
    and define :meth:`_check_open`, :meth:`_off_loop`, :meth:`_using`, :meth:`_handle` and
    :meth:`_wait_finished_async`.
    """

    _store: Store
    id: str

    @abc.abstractmethod
    def _check_open(self) -> None:
        """Raise ``RuntimeClosed`` once closed."""

    @abc.abstractmethod
    async def _off_loop(self, read: Callable[..., T], /, *args: object, **kwargs: object) -> T:
        """``read(*args, **kwargs)`` in the loop's default executor, awaited."""

    @abc.abstractmethod
    def _using(self) -> contextlib.AbstractContextManager[None]:
        """Around one store operation: refused once closed, waited for by close."""

    @abc.abstractmethod
    def _handle(self, run_id: str, *, created: bool | None = None) -> RunHandle[Any]:
        """A handle on the run ``run_id``, without reading it."""

    @abc.abstractmethod
    async def _wait_finished_async(self, run_id: str, timeout: float | None) -> RunRecord:
        """The run's record once terminal or after ``timeout`` seconds."""

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
        ``timeout`` seconds passed. A wait that runs out is no error (unlike
        ``RunHandle.result``, which raises ``WaitTimeout``): the answer's
        ``status`` is then still CANCELLING, ``status.is_terminal`` False.

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
        with self._using():
            outcome = request_cancel(
                self._store, run_id, reason, source=source, origin=self.id, grace=grace
            )
        if not isinstance(outcome, Appended):
            return refused_result(run_id, outcome, "cancel")
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
            return refused_result(run_id, outcome, "cancel")
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
        with self._using():
            outcome, _ = self._store.terminate_tree(run_id, reason, source=source, origin=self.id)
        if not isinstance(outcome, Appended):
            return refused_result(run_id, outcome, "terminate")
        return terminated_result(run_id, cut)

    async def terminate_async(
        self, run_id: str, reason: str | None = None, *, source: str = "api"
    ) -> ControlResult:
        """Like :meth:`terminate`, without blocking the event loop (A1)."""
        return await self._off_loop(self.terminate, run_id, reason, source=source)

    def restart(
        self, old_run_id: str, /, from_call: int | None = None, *, run_id: str | None = None
    ) -> RunHandle[Any]:
        """A new run of a finished run's workflow and arguments, for a worker (A7).

        Written as ``proctor runs restart`` writes it (one function,
        ``persistence.restart_unowned``): PENDING, owned by nobody, linked
        both ways (``restarted_from``), until a worker that imports the
        workflow claims it; the workflow need not be imported here. With
        ``from_call=N``, the old run's recorded calls ``0..N-1`` are reused,
        not run again (DBOS's fork, Temporal's reset). ``run_id`` as for
        ``start``: the same restart again returns the run it made (A2).

        Raises:
            RunNotFound: no run ``old_run_id``.
            RunNotFinished: it has not finished; nothing was written.
            InvalidArgument: ``from_call`` is out of range or past a call
                that did not end, or ``run_id`` is not one a caller may choose.
            RunIdInUse: ``run_id`` names another run; nothing was written.
            StoreError: the store refused it; nothing was written.
            RuntimeClosed: the client was closed.
        """
        self._check_open()
        if not isinstance(old_run_id, str):
            raise InvalidArgument(f"restart() takes a run id (a str), got {safe_repr(old_run_id)}")
        new_id = uuid.uuid4().hex if run_id is None else check_chosen_run_id(run_id)
        with self._using():
            _, new, _ = restart_unowned(self._store, old_run_id, from_call, new_id)
        return self._handle(new_id, created=new)

    async def restart_async(
        self, old_run_id: str, /, from_call: int | None = None, *, run_id: str | None = None
    ) -> RunHandle[Any]:
        """Like :meth:`restart`, without blocking the event loop (A1)."""
        return await self._off_loop(self.restart, old_run_id, from_call, run_id=run_id)

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
        if status is RunState.TERMINATED:
            message += "; it is terminated (its grace ran out, or another request)"
        return ControlResult(
            run_id=run_id, status=status, changed=changed, message=message + cut_note(cut)
        )
