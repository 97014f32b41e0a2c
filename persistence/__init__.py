"""Proctor's store: the append-only event log and its projections.

``Store`` is the interface (a Protocol) the actors and the CLI type against;
``SQLiteStore`` is its SQLite implementation; :func:`open_store` is where a
store is opened and its implementation chosen.

This package imports neither ``actors`` nor ``cli``; both build on it.
"""

from persistence._connection import DEFAULT_BUSY_TIMEOUT, Synchronous
from persistence._control import (
    MAX_REASON_BYTES,
    cancel_request,
    cap_reason,
    check_reason,
    claim_request,
    reason_cut,
    resume_request,
    terminate_request,
    unreadable_run_failure,
)
from persistence._errors import (
    CorruptRecord,
    InvalidArgument,
    InvalidArgumentType,
    InvalidTransition,
    NotAProctorStore,
    NotSerializable,
    OutcomeUnknown,
    PayloadTooLarge,
    ProctorError,
    RunNotFound,
    SchemaTooNew,
    StoreCorrupt,
    StoreError,
    StoreLocked,
    StoreReplaced,
)
from persistence._file import FileIdentity, check_same_file
from persistence._fold import Folded, fold
from persistence._interface import Store
from persistence._json import (
    DEFAULT_MAX_PAYLOAD_BYTES,
    MAX_RECORD_DEPTH,
    MAX_VALUE_DEPTH,
    check_payload_limit,
    dumps,
    loads,
    roundtrip,
    roundtrip_arguments,
)
from persistence._leases import DEFAULT_LEASE_TTL, LeaseObserver, why_dead
from persistence._opening import open_same_store, open_store
from persistence._pruning import prune, prune_batch, prune_runtimes
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
from persistence._retention import (
    PRUNE_BATCH,
    PruneCursor,
    PruneReport,
    parse_duration,
    retention_seconds,
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
    later_state,
    next_state,
    next_step_state,
)
from persistence._store import SQLiteStore
from persistence._text import safe_repr, safe_str, type_name, valid_text

__all__ = [
    "BODY_EVENTS",
    "DEFAULT_BUSY_TIMEOUT",
    "DEFAULT_LEASE_TTL",
    "DEFAULT_MAX_PAYLOAD_BYTES",
    "MAX_REASON_BYTES",
    "MAX_RECORD_DEPTH",
    "MAX_VALUE_DEPTH",
    "OPEN_EVENTS",
    "POST_MORTEM_EVENTS",
    "PRUNE_BATCH",
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
    "InvalidArgument",
    "InvalidArgumentType",
    "InvalidTransition",
    "LeaseObserver",
    "NewEvent",
    "NotAProctorStore",
    "NotSerializable",
    "OutcomeUnknown",
    "PayloadTooLarge",
    "ProctorError",
    "PruneCursor",
    "PruneReport",
    "Refused",
    "RunNotFound",
    "RunRecord",
    "RunState",
    "RuntimeRecord",
    "SQLiteStore",
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
    "cap_reason",
    "check_payload_limit",
    "check_reason",
    "check_same_file",
    "claim_request",
    "dumps",
    "fold",
    "later_state",
    "loads",
    "next_state",
    "next_step_state",
    "open_same_store",
    "open_store",
    "parse_duration",
    "prune",
    "prune_batch",
    "prune_runtimes",
    "reason_cut",
    "resume_request",
    "retention_seconds",
    "roundtrip",
    "roundtrip_arguments",
    "safe_repr",
    "safe_str",
    "terminate_request",
    "type_name",
    "unreadable_run_failure",
    "valid_text",
    "why_dead",
]
