"""Proctor's store: the append-only event log and its projections in SQLite.

This package imports neither ``actors`` nor ``cli``; both build on it.
"""

from persistence._control import (
    cancel_request,
    claim_request,
    resume_request,
    terminate_request,
    unreadable_run_failure,
)
from persistence._errors import (
    CorruptRecord,
    InvalidTransition,
    NotAProctorStore,
    NotSerializable,
    ProctorError,
    RunAlreadyFinished,
    RunNotFound,
    SchemaTooNew,
    StoreCorrupt,
    StoreError,
    StoreLocked,
    StoreReplaced,
)
from persistence._file import FileIdentity, check_same_file
from persistence._fold import Folded, fold
from persistence._json import dumps, loads
from persistence._leases import DEFAULT_LEASE_TTL, why_dead
from persistence._records import (
    Appended,
    AppendOutcome,
    EventRecord,
    HeartbeatRecord,
    NewEvent,
    Refused,
    RunRecord,
    RuntimeRecord,
    StepRecord,
)
from persistence._schema import SCHEMA_VERSION
from persistence._states import (
    BODY_EVENTS,
    OPEN_EVENTS,
    POST_MORTEM_EVENTS,
    RUN_TRANSITIONS,
    STEP_TRANSITIONS,
    TERMINAL_EVENTS,
    TERMINAL_STATES,
    EventType,
    RunState,
    StepState,
    next_state,
    next_step_state,
)
from persistence._store import DEFAULT_BUSY_TIMEOUT, Store, Synchronous

__all__ = [
    "BODY_EVENTS",
    "DEFAULT_BUSY_TIMEOUT",
    "DEFAULT_LEASE_TTL",
    "OPEN_EVENTS",
    "POST_MORTEM_EVENTS",
    "RUN_TRANSITIONS",
    "SCHEMA_VERSION",
    "STEP_TRANSITIONS",
    "TERMINAL_EVENTS",
    "TERMINAL_STATES",
    "AppendOutcome",
    "Appended",
    "CorruptRecord",
    "EventRecord",
    "EventType",
    "FileIdentity",
    "Folded",
    "HeartbeatRecord",
    "InvalidTransition",
    "NewEvent",
    "NotAProctorStore",
    "NotSerializable",
    "ProctorError",
    "Refused",
    "RunAlreadyFinished",
    "RunNotFound",
    "RunRecord",
    "RunState",
    "RuntimeRecord",
    "SchemaTooNew",
    "StepRecord",
    "StepState",
    "Store",
    "StoreCorrupt",
    "StoreError",
    "StoreLocked",
    "StoreReplaced",
    "Synchronous",
    "cancel_request",
    "check_same_file",
    "claim_request",
    "dumps",
    "fold",
    "loads",
    "next_state",
    "next_step_state",
    "resume_request",
    "terminate_request",
    "unreadable_run_failure",
    "why_dead",
]
