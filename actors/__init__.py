"""Proctor: durable, cancellable workflows on actors, with supervision trees.

The public API is exactly ``__all__``; everything else is private.
"""

from actors._clock import Clock, FakeClock, SystemClock
from actors._context import Context, StepContext, WorkflowContext, get_context
from actors._definitions import (
    ChildRun,
    StepDef,
    WorkflowDef,
    gather,
    registered_workflows,
    start_child,
    step,
    workflow,
)
from actors._errors import (
    CancellationError,
    NonDeterminismError,
    RunCancelled,
    RunEnded,
    RunTerminated,
    StepFailed,
    Terminated,
    WorkflowFailed,
)
from actors._policy import RetryPolicy
from actors._runtime import ControlResult, RunHandle, Runtime
from actors._shield import shield
from persistence import (
    CorruptRecord,
    EventRecord,
    EventType,
    InvalidTransition,
    NotAProctorStore,
    NotSerializable,
    ProctorError,
    RunAlreadyFinished,
    RunNotFound,
    RunRecord,
    RunState,
    SchemaTooNew,
    StepRecord,
    StepState,
    StoreCorrupt,
    StoreError,
    StoreLocked,
    StoreReplaced,
)

__all__ = [
    "CancellationError",
    "ChildRun",
    "Clock",
    "Context",
    "ControlResult",
    "CorruptRecord",
    "EventRecord",
    "EventType",
    "FakeClock",
    "InvalidTransition",
    "NonDeterminismError",
    "NotAProctorStore",
    "NotSerializable",
    "ProctorError",
    "RetryPolicy",
    "RunAlreadyFinished",
    "RunCancelled",
    "RunEnded",
    "RunHandle",
    "RunNotFound",
    "RunRecord",
    "RunState",
    "RunTerminated",
    "Runtime",
    "SchemaTooNew",
    "StepContext",
    "StepDef",
    "StepFailed",
    "StepRecord",
    "StepState",
    "StoreCorrupt",
    "StoreError",
    "StoreLocked",
    "StoreReplaced",
    "SystemClock",
    "Terminated",
    "WorkflowContext",
    "WorkflowDef",
    "WorkflowFailed",
    "gather",
    "get_context",
    "registered_workflows",
    "shield",
    "start_child",
    "step",
    "workflow",
]
