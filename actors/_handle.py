"""A run seen from the service: :class:`RunHandle`, and :class:`ControlResult`.

A handle is an id and a way to its runtime (:class:`RunHost`, which the
Runtime facade implements): it holds no state of the run, so any number of
handles on one run agree, and a handle outlives a test kit's restart (it
follows the runtime that replaced the killed one).

Invariants: :meth:`RunHandle.result` returns only for a COMPLETED run; every
other end is an exception that says how it ended (``run_outcome`` of
``actors._outcomes``, the one mapping). Every call that reads or writes the
store has an ``*_async`` twin that raises what it raises and never blocks
the event loop (A1): it awaits its runtime's twin, and what it reads to
explain a timeout is read in the loop's default executor.
"""

from __future__ import annotations

import asyncio
from collections.abc import Generator
from dataclasses import dataclass
from typing import Any, Generic, Protocol, TypeVar, cast

from actors._diagnosis import explain
from actors._errors import WaitTimeout
from actors._outcomes import run_outcome
from persistence import (
    MAX_REASON_BYTES,
    AppendOutcome,
    EventRecord,
    RunNotFound,
    RunRecord,
    RunState,
    StepRecord,
)

R = TypeVar("R")


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


def cut_note(cut: bool) -> str:
    """What a ControlResult's message adds when the reason was cut to size."""
    return f" (its reason was cut to {MAX_REASON_BYTES} bytes)" if cut else ""


def terminated_result(run_id: str, cut: bool) -> ControlResult:
    """The answer to a terminate the store took (T1): the run is TERMINATED."""
    return ControlResult(
        run_id=run_id,
        status=RunState.TERMINATED,
        changed=True,
        message="terminated" + cut_note(cut),
    )


def refused_result(run_id: str, outcome: AppendOutcome, verb: str) -> ControlResult:
    """The answer to a cancel or terminate the store refused (C6): the run
    had finished, so nothing changed.

    Raises:
        RunNotFound: the refusal names no run.
    """
    status = outcome.status
    if status is None:
        raise RunNotFound(run_id)
    return ControlResult(
        run_id=run_id,
        status=status,
        changed=False,
        message=f"run already finished: {status}; {verb} changed nothing",
    )


class RunHost(Protocol):
    """What a :class:`RunHandle` needs of its runtime (the Runtime facade)."""

    @property
    def _successor(self) -> RunHost | None: ...

    def get_run(self, run_id: str) -> RunRecord: ...

    def events(self, run_id: str) -> list[EventRecord]: ...

    async def get_run_async(self, run_id: str) -> RunRecord: ...

    async def events_async(self, run_id: str) -> list[EventRecord]: ...

    def cancel(
        self,
        run_id: str,
        reason: str | None = None,
        *,
        wait: bool = False,
        timeout: float | None = None,
        grace: float | None = None,
        source: str = "api",
    ) -> ControlResult: ...

    def terminate(
        self, run_id: str, reason: str | None = None, *, source: str = "api"
    ) -> ControlResult: ...

    def signal(self, run_id: str, name: str, payload: Any = None) -> ControlResult: ...

    async def signal_async(self, run_id: str, name: str, payload: Any = None) -> ControlResult: ...

    async def cancel_async(
        self,
        run_id: str,
        reason: str | None = None,
        *,
        wait: bool = False,
        timeout: float | None = None,
        grace: float | None = None,
        source: str = "api",
    ) -> ControlResult: ...

    async def terminate_async(
        self, run_id: str, reason: str | None = None, *, source: str = "api"
    ) -> ControlResult: ...

    def _steps(self, run_id: str) -> list[StepRecord]: ...

    def _wait_finished(self, run_id: str, timeout: float | None) -> RunRecord: ...

    async def _wait_finished_async(self, run_id: str, timeout: float | None) -> RunRecord: ...


class RunHandle(Generic[R]):
    """A run of a workflow: its id, state, log, outcome, and control."""

    def __init__(self, runtime: RunHost, run_id: str, *, created: bool | None = None) -> None:
        self._runtime = runtime
        self.run_id = run_id
        self._created = created

    @property
    def created(self) -> bool | None:
        """Whether the start that returned this handle created its run.

        True: this call wrote the run's creation. False: the run id was
        chosen (A2) and an existing run of the same start was returned;
        nothing new runs. None: a handle not from a start (``handle()``,
        ``handle_async()``). Read-only; it never changes, whatever the run
        does later. Temporal answers the same with the ``started`` flag of
        ``temporal.api.workflowservice.v1.StartWorkflowExecutionResponse``
        ("If true, a new workflow was started"; false when the USE_EXISTING
        conflict policy returned the running workflow).
        """
        return self._created

    @property
    def _rt(self) -> RunHost:
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

    async def status_async(self) -> RunState:
        """Like :meth:`status`; the store is read off the loop (A1)."""
        return (await self._rt.get_run_async(self.run_id)).status

    def record(self) -> RunRecord:
        return self._rt.get_run(self.run_id)

    async def record_async(self) -> RunRecord:
        """Like :meth:`record`; the store is read off the loop (A1)."""
        return await self._rt.get_run_async(self.run_id)

    def events(self) -> list[EventRecord]:
        return self._rt.events(self.run_id)

    async def events_async(self) -> list[EventRecord]:
        """Like :meth:`events`; the store is read off the loop (A1)."""
        return await self._rt.events_async(self.run_id)

    def cancel(
        self,
        reason: str | None = None,
        *,
        wait: bool = False,
        timeout: float | None = None,
        grace: float | None = None,
    ) -> ControlResult:
        return self._rt.cancel(self.run_id, reason, wait=wait, timeout=timeout, grace=grace)

    async def cancel_async(
        self,
        reason: str | None = None,
        *,
        wait: bool = False,
        timeout: float | None = None,
        grace: float | None = None,
    ) -> ControlResult:
        """Like :meth:`cancel`, awaited; ``wait`` does not block the loop either."""
        return await self._rt.cancel_async(
            self.run_id, reason, wait=wait, timeout=timeout, grace=grace
        )

    def terminate(self, reason: str | None = None) -> ControlResult:
        return self._rt.terminate(self.run_id, reason)

    def signal(self, name: str, payload: Any = None) -> ControlResult:
        """Send the signal ``name`` to this run (B5): see ``Runtime.signal``."""
        return self._rt.signal(self.run_id, name, payload)

    async def signal_async(self, name: str, payload: Any = None) -> ControlResult:
        """Like :meth:`signal`, awaited: the commit does not block the loop (A1)."""
        return await self._rt.signal_async(self.run_id, name, payload)

    async def terminate_async(self, reason: str | None = None) -> ControlResult:
        """Like :meth:`terminate`, awaited: the commit does not block the loop (A1)."""
        return await self._rt.terminate_async(self.run_id, reason)

    def wait_finished(self, timeout: float | None = None) -> RunRecord:
        """Block until the run is terminal or ``timeout`` passes; return its record.

        A wait that runs out is no error (unlike :meth:`result`, which raises
        ``WaitTimeout``): the record is then the unfinished run's, its
        ``status.is_terminal`` False.

        Raises :class:`RuntimeClosed` once the runtime is closed, killed or
        closing (a drain: no run ends here any more but by a terminate).
        """
        return self._rt._wait_finished(self.run_id, timeout)

    async def wait_finished_async(self, timeout: float | None = None) -> RunRecord:
        """Like :meth:`wait_finished`, awaited: the loop runs on meanwhile."""
        return await self._rt._wait_finished_async(self.run_id, timeout)

    def result(self, timeout: float | None = None) -> R:
        """The run's result, once it is terminal.

        Raises:
            RunCancelled, RunTerminated, WorkflowFailed: the run did not complete.
            WaitTimeout: (a ``TimeoutError``) still not terminal after
                ``timeout`` seconds; says what the run waits for.
            RunNotFound: no such run.
            RuntimeClosed: the runtime was closed or killed, or began to
                close (a drain, A4), before or during the wait.
            StoreError: the runtime stopped itself (see ``Runtime.failure``);
                ``StoreUnavailable`` or ``StoreLocked``: the store was still out
                of reach at the deadline (until then the wait reads again: a
                server restarting does not end it).
        """
        return cast(R, self._outcome(self.wait_finished(timeout), timeout))

    async def result_async(self, timeout: float | None = None) -> R:
        """Like :meth:`result`, without blocking the event loop."""
        record = await self._rt._wait_finished_async(self.run_id, timeout)
        if record.status.is_terminal:
            return cast(R, run_outcome(record))
        # Explaining a timeout reads the log and steps: off the loop.
        loop = asyncio.get_running_loop()
        return cast(R, await loop.run_in_executor(None, self._outcome, record, timeout))

    def _outcome(self, record: RunRecord, timeout: float | None) -> Any:
        if record.status.is_terminal:
            return run_outcome(record)
        events, steps = self._rt.events(self.run_id), self._rt._steps(self.run_id)
        raise WaitTimeout(
            self.run_id, record.status.value, explain(record, events, steps, waited=timeout)
        )

    def __await__(self) -> Generator[Any, None, R]:
        return self.result_async().__await__()
