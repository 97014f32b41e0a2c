"""The one mapping of a run's end: state <-> exit kind <-> value or exception."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from actors import RunCancelled, RunTerminated, WorkflowFailed
from actors._messages import ExitKind
from actors._outcomes import EXIT_KIND, EXIT_STATUS, child_outcome, recorded_exit, run_outcome
from persistence import TERMINAL_STATES, CorruptRecord, RunRecord, RunState

#: What each terminal state raises for whoever awaits the run (None: returns).
RAISES: dict[RunState, type[BaseException] | None] = {
    RunState.COMPLETED: None,
    RunState.CANCELLED: RunCancelled,
    RunState.TERMINATED: RunTerminated,
    RunState.FAILED: WorkflowFailed,
}


def _record(status: RunState, **fields: Any) -> RunRecord:
    values: dict[str, Any] = {
        "run_id": "r1",
        "workflow": "wf",
        "status": status,
        "args": [],
        "kwargs": {},
        "result": {"answer": 42},
        "error": {"type": "ValueError", "message": "boom"},
        "parent_run_id": None,
        "owner": None,
        "cancel_requested_at": 1.0,
        "cancel_reason": "asked",
        "cancel_source": "api",
        "cancel_grace": None,
        "terminate_requested_at": 2.0,
        "terminate_reason": "killed",
        "created_at": 0.0,
        "started_at": 0.5,
        "finished_at": 3.0,
        "last_seq": 7,
    }
    values.update(fields)
    return RunRecord(**values)


def test_exit_status_is_a_bijection_onto_the_terminal_states() -> None:
    assert set(EXIT_STATUS.values()) == TERMINAL_STATES
    assert len(set(EXIT_STATUS.values())) == len(EXIT_STATUS)
    assert ExitKind.TIMED_OUT not in EXIT_STATUS  # a step attempt's kind only
    for kind, status in EXIT_STATUS.items():
        assert EXIT_KIND[status] is kind


@pytest.mark.parametrize("status", sorted(TERMINAL_STATES, key=str))
def test_every_view_of_a_terminal_run_agrees(status: RunState) -> None:
    record = _record(status)
    exit_reason = recorded_exit(record)
    assert EXIT_STATUS[exit_reason.kind] is status
    assert exit_reason.data is not None
    state, error = child_outcome(record.run_id, status, exit_reason.data)
    assert state is status
    expected = RAISES[status]
    if expected is None:
        assert error is None
        assert run_outcome(record) == {"answer": 42}
        return
    assert type(error) is expected
    with pytest.raises(expected) as raised:
        run_outcome(record)
    # The handle and a parent's await say the same thing.
    assert str(raised.value) == str(error)
    assert raised.value.run_id == "r1"  # type: ignore[attr-defined]


def test_each_error_carries_its_own_field_of_the_record() -> None:
    with pytest.raises(RunCancelled) as cancelled:
        run_outcome(_record(RunState.CANCELLED))
    assert cancelled.value.reason == "asked"
    with pytest.raises(RunTerminated) as terminated:
        run_outcome(_record(RunState.TERMINATED))
    assert terminated.value.reason == "killed"
    with pytest.raises(WorkflowFailed) as failed:
        run_outcome(_record(RunState.FAILED))
    assert failed.value.error == {"type": "ValueError", "message": "boom"}


def test_a_child_that_ended_in_no_terminal_state_counts_as_failed() -> None:
    state, error = child_outcome("c", RunState.RUNNING, {"error": None})
    assert state is RunState.FAILED
    assert isinstance(error, WorkflowFailed)


@pytest.mark.parametrize("status", [RunState.PENDING, RunState.RUNNING, RunState.CANCELLING])
def test_a_run_that_has_not_ended_has_no_outcome(status: RunState) -> None:
    with pytest.raises(AssertionError, match="not terminal"):
        run_outcome(_record(status))
    with pytest.raises(KeyError):
        recorded_exit(_record(status))


def test_an_unreadable_result_is_a_corrupt_record_not_a_value() -> None:
    record = replace(_record(RunState.COMPLETED), result=None, defect="bad JSON")
    with pytest.raises(CorruptRecord, match="bad JSON"):
        run_outcome(record)
