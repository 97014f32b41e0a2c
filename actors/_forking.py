"""Restart of a finished run by a runtime (A7): a new, linked run it hosts.

What the new run starts with is ``persistence.restart_plan``'s (the same
workflow and arguments, ``restarted_from``, the reused calls before
``from_call``), shared with ``proctor runs restart``; this module adds what
hosting it needs: the workflow's definition in this process, the new id
(the caller's, idempotent as any start with a chosen id, A2), and the
creation through the runtime's Guardian like any new run.

Invariants: the old run is only read, never written; the new run's body
never runs a reused call; nothing is created when this raises (but
:class:`OutcomeUnknown`, which names the new id).
"""

from __future__ import annotations

import abc
import asyncio
import contextlib
import functools
import uuid
from typing import Any

from actors._definitions import lookup_workflow
from actors._handle import RunHandle
from actors._replies import Submitted
from actors._requests import Requests
from persistence import InvalidArgument, Store, check_chosen_run_id, restart_plan, safe_repr


class RunRestarts(abc.ABC):
    """``restart`` and its awaitable twin, for the Runtime facade.

    Subclasses set ``_requests``, ``_store`` and ``id`` and define
    :meth:`_using`, :meth:`_check_accepting` and :meth:`_handle`.
    """

    _requests: Requests
    _store: Store
    id: str

    @abc.abstractmethod
    def _using(self) -> contextlib.AbstractContextManager[None]:
        """Around one store operation: refused once closed, waited for by close."""

    @abc.abstractmethod
    def _check_accepting(self) -> None:
        """Raise ``RuntimeClosed`` once closed or closing: no new run starts (A4)."""

    @abc.abstractmethod
    def _handle(self, run_id: str, *, created: bool | None = None) -> RunHandle[Any]:
        """A handle on the run ``run_id``, without reading it."""

    def restart(
        self, old_run_id: str, /, from_call: int | None = None, *, run_id: str | None = None
    ) -> RunHandle[Any]:
        """A new run of a finished run's workflow and arguments, linked to it (A7).

        With ``from_call=N``, the old run's recorded calls ``0..N-1`` are
        reused, not run again (DBOS's fork, Temporal's reset). ``run_id`` as
        for ``start``: the same restart again (the same old run, the same
        ``from_call``; None and 0 both reuse nothing) returns the run it
        made; a restart of another run or from another call with that id
        raises ``RunIdInUse``. ``restarts(old_run_id)`` lists the restarts.
        See the guide "Starting runs" for the rules.

        Raises:
            RunNotFound: no run ``old_run_id``.
            RunNotFinished: it has not finished; nothing was written.
            InvalidArgument: ``from_call`` is out of range, or past a call
                that did not end; the workflow is not imported here.
            RunIdInUse, OutcomeUnknown, StoreError, RuntimeClosed: as ``start``.
        """
        self._check_accepting()
        with self._using():  # the old run is read, the new id looked up
            submitted = self._submit_restart(old_run_id, from_call, run_id)
        new_id = self._requests.wait(submitted)
        return self._handle(new_id, created=submitted.created)

    async def restart_async(
        self, old_run_id: str, /, from_call: int | None = None, *, run_id: str | None = None
    ) -> RunHandle[Any]:
        """Like :meth:`restart`, awaited: the old run is read off the loop (A1)."""
        self._check_accepting()
        submit = functools.partial(self._guarded_submit, old_run_id, from_call, run_id)
        submitted = await asyncio.get_running_loop().run_in_executor(None, submit)
        new_id = await self._requests.wait_async(submitted)
        return self._handle(new_id, created=submitted.created)

    def _guarded_submit(
        self, old_run_id: str, from_call: int | None, run_id: str | None
    ) -> Submitted[str]:
        with self._using():
            return self._submit_restart(old_run_id, from_call, run_id)

    def _submit_restart(
        self, old_run_id: str, from_call: int | None, run_id: str | None
    ) -> Submitted[str]:
        new_id = uuid.uuid4().hex if run_id is None else check_chosen_run_id(run_id)
        if not isinstance(old_run_id, str):
            raise InvalidArgument(f"restart() takes a run id (a str), got {safe_repr(old_run_id)}")
        created, *reused = restart_plan(self._store, old_run_id, from_call, new_id, owner=self.id)
        name = created.data["workflow"]
        workflow = lookup_workflow(name)
        if workflow is None:
            raise InvalidArgument(
                f"run {old_run_id} is a run of workflow {name}, which this process has not"
                " imported; import its module first (or use `proctor runs restart`, for a"
                " worker that imports it)"
            )
        return self._requests.host_new(workflow, created, tuple(reused), chosen=run_id is not None)
