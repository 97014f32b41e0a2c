"""Outcomes: the one mapping between a run's final state, its supervisor's
exit kind, and what the run's end raises for whoever awaits it.

A run ends in one terminal state. Its supervisor reports the end to its
parent as an exit kind (death watch, with the run's last record as data); a
parent run's await of a child, and a handle's ``result()``, turn the end into
a value or an exception. All three views are written here once:

    RunState.COMPLETED   <-> ExitKind.NORMAL      -> the result
    RunState.CANCELLED   <-> ExitKind.CANCELLED   -> RunCancelled
    RunState.TERMINATED  <-> ExitKind.TERMINATED  -> RunTerminated
    RunState.FAILED      <-> ExitKind.FAILED      -> WorkflowFailed

Invariants: ``EXIT_STATUS`` is a bijection between the exit kinds a run
supervisor reports and the terminal run states (``TIMED_OUT`` is a step
attempt's kind only); a completed run raises nothing, every other terminal
state raises the error of its row above, whichever view asks (SV4).
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Any, Final

from actors._errors import RunCancelled, RunTerminated, WorkflowFailed
from actors._messages import ExitKind, ExitReason
from persistence import CorruptRecord, RunRecord, RunState

#: A run supervisor's exit kind -> the run's final state.
EXIT_STATUS: Final[Mapping[ExitKind, RunState]] = MappingProxyType(
    {
        ExitKind.NORMAL: RunState.COMPLETED,
        ExitKind.CANCELLED: RunState.CANCELLED,
        ExitKind.TERMINATED: RunState.TERMINATED,
        ExitKind.FAILED: RunState.FAILED,
    }
)

#: A terminal run state -> the exit kind its supervisor reports.
EXIT_KIND: Final[Mapping[RunState, ExitKind]] = MappingProxyType(
    {status: kind for kind, status in EXIT_STATUS.items()}
)


def child_outcome(
    run_id: str, status: RunState, data: Mapping[str, Any]
) -> tuple[RunState, BaseException | None]:
    """A child run's final state, and what its await raises in the parent.

    ``data`` is the run's last record (``result``, ``error`` or ``reason``).
    Like :meth:`RunHandle.result`: a child that did not complete raises
    ``WorkflowFailed``, ``RunCancelled`` or ``RunTerminated`` (SV4). A child
    cancelled because its parent is cancelling never gets that far: the
    parent's await is a checkpoint and raises CancellationError first. A
    state that is not terminal counts as FAILED.
    """
    if status is RunState.COMPLETED:
        return status, None
    if status is RunState.CANCELLED:
        return status, RunCancelled(run_id, data.get("reason"))
    if status is RunState.TERMINATED:
        return status, RunTerminated(run_id, data.get("reason"))
    return RunState.FAILED, WorkflowFailed(run_id, data.get("error"))


def recorded_exit(record: RunRecord) -> ExitReason:
    """How a run that already ended ended, as its supervisor's exit reason.

    Raises:
        KeyError: ``record`` is not terminal.
    """
    kind = EXIT_KIND[record.status]
    data: dict[str, Any]
    if record.status is RunState.COMPLETED:
        data = {"result": record.result}
    elif record.status is RunState.FAILED:
        data = {"error": record.error}
    elif record.status is RunState.CANCELLED:
        data = {"reason": record.cancel_reason}
    else:
        data = {"reason": record.terminate_reason}
    return ExitReason(kind=kind, data=data)


def run_outcome(record: RunRecord) -> Any:
    """A terminal run's result, or the error that says how it ended.

    What ``RunHandle.result()`` returns for the run's row.

    Raises:
        RunCancelled, RunTerminated, WorkflowFailed: the run did not complete.
        CorruptRecord: it completed, but its result cannot be read.
        AssertionError: the run is not terminal (a caller's bug).
    """
    status = record.status
    if not status.is_terminal:
        raise AssertionError(f"run {record.run_id} is not terminal: {status}")
    if status is RunState.COMPLETED and record.defect is not None:
        raise CorruptRecord(f"run {record.run_id}'s result cannot be read: {record.defect}")
    _, error = child_outcome(record.run_id, status, recorded_exit(record).data or {})
    if error is not None:
        raise error
    return record.result
