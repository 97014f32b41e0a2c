"""Proctor: durable, cancellable workflows on actors, with supervision trees.

The public API is exactly ``__all__``; everything else is private.
"""

from actors._cancellation_type import CancellationType
from actors._child_handles import ChildRun, start_child
from actors._client import Client
from actors._clock import Clock, FakeClock, SystemClock
from actors._context import Context, StepContext, WorkflowContext, get_context
from actors._definitions import (
    StepDef,
    WorkflowDef,
    gather,
    registered_workflows,
    step,
    workflow,
)
from actors._errors import (
    CancellationError,
    NonDeterminismError,
    RunCancelled,
    RunEnded,
    RunTerminated,
    RuntimeClosed,
    SignalTimeout,
    StepFailed,
    Terminated,
    WaitTimeout,
    WorkflowFailed,
)
from actors._handle import ControlResult, RunHandle
from actors._policy import RetryPolicy
from actors._runtime import Runtime
from actors._shield import shield
from actors._signal_wait import wait_for_signal
from actors._sleep import sleep, sleep_until
from actors._step_handles import StepHandle, start_step
from persistence import (
    CorruptRecord,
    EventRecord,
    EventType,
    InvalidArgument,
    InvalidArgumentType,
    InvalidTransition,
    NotAProctorStore,
    NotSerializable,
    OutcomeUnknown,
    PayloadTooLarge,
    ProctorError,
    RunIdInUse,
    RunNotActive,
    RunNotFinished,
    RunNotFound,
    RunPage,
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
    "CancellationType",
    "ChildRun",
    "Client",
    "Clock",
    "Context",
    "ControlResult",
    "CorruptRecord",
    "EventRecord",
    "EventType",
    "FakeClock",
    "InvalidArgument",
    "InvalidArgumentType",
    "InvalidTransition",
    "NonDeterminismError",
    "NotAProctorStore",
    "NotSerializable",
    "OutcomeUnknown",
    "PayloadTooLarge",
    "ProctorError",
    "RetryPolicy",
    "RunCancelled",
    "RunEnded",
    "RunHandle",
    "RunIdInUse",
    "RunNotActive",
    "RunNotFinished",
    "RunNotFound",
    "RunPage",
    "RunRecord",
    "RunState",
    "RunTerminated",
    "Runtime",
    "RuntimeClosed",
    "SchemaTooNew",
    "SignalTimeout",
    "StepContext",
    "StepDef",
    "StepFailed",
    "StepHandle",
    "StepRecord",
    "StepState",
    "StoreCorrupt",
    "StoreError",
    "StoreLocked",
    "StoreReplaced",
    "SystemClock",
    "Terminated",
    "WaitTimeout",
    "WorkflowContext",
    "WorkflowDef",
    "WorkflowFailed",
    "gather",
    "get_context",
    "registered_workflows",
    "shield",
    "sleep",
    "sleep_until",
    "start_child",
    "start_step",
    "step",
    "wait_for_signal",
    "workflow",
]
