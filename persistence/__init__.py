"""Proctor's store: the append-only event log and its projections in SQLite.

This package imports neither ``actors`` nor ``cli``; both build on it.
"""

from persistence._control import (
    cancel_request,
    claim_request,
    resume_request,
    terminate_request,
)
from persistence._errors import (
    InvalidTransition,
    NotAProctorStore,
    NotSerializable,
    ProctorError,
    RunAlreadyFinished,
    RunNotFound,
    SchemaTooNew,
    StoreError,
    StoreLocked,
)
from persistence._fold import Folded, fold
from persistence._json import dumps, loads
from persistence._leases import DEFAULT_LEASE_TTL, LeaseObserver, why_dead
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
    "EventRecord",
    "EventType",
    "Folded",
    "HeartbeatRecord",
    "InvalidTransition",
    "LeaseObserver",
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
    "StoreError",
    "StoreLocked",
    "Synchronous",
    "cancel_request",
    "claim_request",
    "dumps",
    "fold",
    "loads",
    "next_state",
    "next_step_state",
    "resume_request",
    "terminate_request",
    "why_dead",
]
