"""Controlling runs from the Runtime facade, blocking or awaited: cancel, terminate, close.

:class:`RunControl` is the control half of the Runtime's public API, each
call with its awaitable twin (A1): ``cancel`` / ``cancel_async``,
``terminate`` / ``terminate_async``, ``close`` / ``close_async`` (and
``async with``), ``flush_traces`` / ``flush_traces_async``. A twin
runs the same submission (``_requests``: argument checks, the message to
the Journal) and the same answer; only the wait differs.

Invariants:

* an ``*_async`` call never blocks the event loop: the durable commit is
  awaited as a reply the Journal resolves (``_replies``), a wait for the
  run's end is the RunWaiter's async wait, and ``close_async`` runs the
  blocking ``close`` in the loop's default executor;
* a twin raises exactly what its blocking call raises, at the same point
  (``RuntimeClosed`` after close, ``RunNotFound``, ``OutcomeUnknown``
  naming the run, A3).
"""

from __future__ import annotations

import abc
import asyncio
import dataclasses
import functools
from typing import Self

from actors._errors import RuntimeClosed
from actors._handle import ControlResult
from actors._replies import Submitted
from actors._requests import Requests
from actors._waiting import RunWaiter


class RunControl(abc.ABC):
    """Cancel, terminate, close and flush traces, each with its awaitable twin.

    Subclasses set ``_requests`` and ``_waiter`` and define
    :meth:`_check_open` and :meth:`close`.
    """

    _requests: Requests
    _waiter: RunWaiter

    @abc.abstractmethod
    def _check_open(self) -> None:
        """Raise ``RuntimeClosed`` (or the reason the runtime stopped) once closed."""

    @abc.abstractmethod
    def _check_accepting(self) -> None:
        """Raise ``RuntimeClosed`` once closing: no new run, no wait (A4)."""

    @abc.abstractmethod
    def close(self, drain: float | None = None) -> None:
        """Stop the runtime (blocking), after a drain of ``drain`` seconds (A4)."""

    @abc.abstractmethod
    def flush_traces(self, timeout: float = 5.0) -> bool:
        """Wait (blocking) until what is logged so far is in spans (O2)."""

    async def flush_traces_async(self, timeout: float = 5.0) -> bool:
        """Like ``flush_traces``, awaited: it waits in the loop's default
        executor. True once the spans are made (or tracing is off), False if
        not within ``timeout`` seconds."""
        flush = functools.partial(self.flush_traces, timeout)
        return await asyncio.get_running_loop().run_in_executor(None, flush)

    async def close_async(self, drain: float | None = None) -> None:
        """Like ``close``, awaited: it runs in the loop's default executor, so
        the loop goes on while running steps finish (up to ``drain`` seconds,
        A4) and unwind (up to ``shutdown_timeout``)."""
        close = functools.partial(self.close, drain)
        await asyncio.get_running_loop().run_in_executor(None, close)

    async def __aenter__(self) -> Self:
        """``async with Runtime(...) as rt:`` closes it with :meth:`close_async`.

        Raises :class:`RuntimeClosed` if the runtime was closed or killed.
        """
        self._check_open()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close_async()

    def _submit_cancel(
        self,
        run_id: str,
        reason: str | None,
        *,
        wait: bool,
        timeout: float | None,
        grace: float | None,
        source: str,
    ) -> Submitted[ControlResult]:
        self._check_open()
        return self._requests.cancel(
            run_id, reason, wait=wait, timeout=timeout, grace=grace, source=source
        )

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
        terminal ``grace`` seconds later is terminated (C8). ``wait``: return
        once the run is terminal or after ``timeout`` seconds; a wait that
        runs out is no error (``ControlResult.status`` says CANCELLING).

        Raises:
            InvalidArgument: ``timeout`` or ``grace`` is not a finite number
                of seconds >= 0; nothing was written.
            RunNotFound: no such run.
            OutcomeUnknown: the request was not confirmed within
                ``request_timeout``; it may still take effect.
            StoreError: the store refused it (nothing was written), or the
                runtime stopped (see :attr:`failure`).
            NotSerializable: ``reason`` is not text; nothing was written.
            RuntimeClosed: the runtime was closed or killed; nothing was
                written (with ``wait``: also while it closes, which waits for
                no run's end). A close that begins during the wait ends the
                wait instead: the answer says so, with the status it knew.
        """
        if wait:
            self._check_accepting()  # no wait goes on once closing: refused unwritten
        submitted = self._submit_cancel(
            run_id, reason, wait=wait, timeout=timeout, grace=grace, source=source
        )
        result = self._requests.wait(submitted)
        if not wait:
            return result
        try:
            record = self._waiter.wait_finished(submitted.run_id, timeout)
        except RuntimeClosed:
            return _wait_cut(result)
        return dataclasses.replace(result, status=record.status)

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
        """Like :meth:`cancel`, awaited: neither the commit nor ``wait`` blocks the loop (A1)."""
        if wait:
            self._check_accepting()
        submitted = self._submit_cancel(
            run_id, reason, wait=wait, timeout=timeout, grace=grace, source=source
        )
        result = await self._requests.wait_async(submitted)
        if not wait:
            return result
        try:
            record = await self._waiter.wait_finished_async(submitted.run_id, timeout)
        except RuntimeClosed:
            return _wait_cut(result)
        return dataclasses.replace(result, status=record.status)

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
            RuntimeClosed: the runtime was closed or killed.
        """
        self._check_open()
        return self._requests.wait(self._requests.terminate(run_id, reason, source=source))

    async def terminate_async(
        self, run_id: str, reason: str | None = None, *, source: str = "api"
    ) -> ControlResult:
        """Like :meth:`terminate`, awaited: the commit does not block the loop (A1)."""
        self._check_open()
        submitted = self._requests.terminate(run_id, reason, source=source)
        return await self._requests.wait_async(submitted)


def _wait_cut(result: ControlResult) -> ControlResult:
    """A cancel that was written, whose wait a close of the runtime cut short (A4)."""
    return dataclasses.replace(
        result, message=result.message + "; stopped waiting: the runtime is closing"
    )
