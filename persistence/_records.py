"""Immutable records read from and written to the store.

Reading a row never raises for a bad JSON column (written by hand, or by an
older Proctor): the record holds an empty value there and says what is
wrong in ``defect``. A state or event type no table knows raises
:class:`CorruptRecord` (a StoreError): nothing sensible stands in for it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, TypeVar

from persistence._errors import CorruptRecord
from persistence._shapes import decode, decode_data, joined
from persistence._states import EventType, RunState, StepState


@dataclass(frozen=True, slots=True, kw_only=True)
class NewEvent:
    """An event to append. The store checks it (JSON data, field types) and
    refuses it whole if it is malformed."""

    run_id: str
    type: EventType
    step: str | None = None
    call: int | None = None
    attempt: int | None = None
    data: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Appended:
    """The event was written with this global ``seq`` and per-run ``run_seq``.

    ``previous`` and ``status`` are the run's state before and after it.
    """

    seq: int
    run_seq: int
    status: RunState
    previous: RunState | None = None
    #: The event's ``ts`` as logged (epoch seconds of the writer's commit).
    ts: float | None = None

    @property
    def changed(self) -> bool:
        return self.status is not self.previous

    @property
    def accepted(self) -> bool:
        return True


@dataclass(frozen=True, slots=True)
class Refused:
    """The store refused the event; ``status`` is the run's state (None: no run)."""

    reason: str
    status: RunState | None
    #: True when the writer does not own the run (any more): it lost its lease
    #: and another runtime resumed the run. The writer must stop driving it.
    fenced: bool = False
    #: True when a ``run_created`` was refused because a run with that id
    #: exists already (A2): look the existing run up.
    duplicate: bool = False
    #: True when an unshielded re-execution (``step_reexecuted``) was refused
    #: because the run is CANCELLING (C3): the cancel came in after the
    #: writer read the log; the await meets it instead.
    cancelling: bool = False

    @property
    def accepted(self) -> bool:
        return False


AppendOutcome = Appended | Refused


@dataclass(frozen=True, slots=True)
class HeartbeatRecord:
    """The latest heartbeat of a running step attempt; ``details_json`` None keeps the last."""

    run_id: str
    call: int
    attempt: int
    at: float
    details_json: str | None


@dataclass(frozen=True, slots=True, kw_only=True)
class RunRecord:
    """One row of the ``runs`` projection."""

    run_id: str
    workflow: str
    status: RunState
    args: Any
    kwargs: dict[str, Any]
    result: Any
    error: dict[str, Any] | None
    parent_run_id: str | None
    owner: str | None
    cancel_requested_at: float | None
    cancel_reason: str | None
    cancel_source: str | None
    cancel_grace: float | None
    terminate_requested_at: float | None
    terminate_reason: str | None
    created_at: float
    started_at: float | None
    finished_at: float | None
    last_seq: int
    #: What is wrong with this row, if a column could not be read (that
    #: column then holds an empty value). The runtime fails such a run.
    defect: str | None = None
    #: The run this one is a restart of (A7), or None.
    restarted_from: str | None = None

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> RunRecord:
        run_id = row["run_id"]
        args, bad_args = decode(row["args"], "args", "list")
        kwargs, bad_kwargs = decode(row["kwargs"], "kwargs", "object")
        result, bad_result = decode(row["result"], "result")
        error, bad_error = decode(row["error"], "error", "object")
        return cls(
            run_id=run_id,
            workflow=row["workflow"],
            status=_enum(RunState, row["status"], f"run {run_id}'s status"),
            args=args,
            kwargs=kwargs,
            result=result,
            error=error or None,
            parent_run_id=row["parent_run_id"],
            owner=row["owner"],
            cancel_requested_at=row["cancel_requested_at"],
            cancel_reason=row["cancel_reason"],
            cancel_source=row["cancel_source"],
            cancel_grace=row["cancel_grace"],
            terminate_requested_at=row["terminate_requested_at"],
            terminate_reason=row["terminate_reason"],
            created_at=row["created_at"],
            started_at=row["started_at"],
            finished_at=row["finished_at"],
            last_seq=row["last_seq"],
            defect=joined(bad_args, bad_kwargs, bad_result, bad_error),
            restarted_from=row.get("restarted_from"),
        )

    def to_json(self) -> dict[str, Any]:
        fields = {
            "run_id": self.run_id,
            "workflow": self.workflow,
            "status": self.status.value,
            "args": self.args,
            "kwargs": self.kwargs,
            "result": self.result,
            "error": self.error,
            "parent_run_id": self.parent_run_id,
            "owner": self.owner,
            "cancel_requested_at": self.cancel_requested_at,
            "cancel_reason": self.cancel_reason,
            "cancel_source": self.cancel_source,
            "cancel_grace": self.cancel_grace,
            "terminate_requested_at": self.terminate_requested_at,
            "terminate_reason": self.terminate_reason,
            "created_at": self.created_at,
            "started_at": self.started_at,
            "finished_at": self.finished_at,
            "restarted_from": self.restarted_from,
        }
        return _with_defect(self.defect, fields)


@dataclass(frozen=True, slots=True, kw_only=True)
class EventRecord:
    """One row of the append-only ``events`` log."""

    seq: int
    run_id: str
    run_seq: int
    ts: float
    type: EventType
    step: str | None
    call: int | None
    attempt: int | None
    data: dict[str, Any]
    #: What is wrong with this row's data, if it could not be read (``data``
    #: is then empty). Replaying a run with such an event fails the run.
    defect: str | None = None

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> EventRecord:
        type_ = _enum(EventType, row["type"], f"event {row['seq']}'s type")
        data, defect = decode_data(row["data"], type_)
        return cls(
            seq=row["seq"],
            run_id=row["run_id"],
            run_seq=row["run_seq"],
            ts=row["ts"],
            type=type_,
            step=row["step"],
            call=row["call"],
            attempt=row["attempt"],
            data=data,
            defect=defect,
        )

    def to_json(self) -> dict[str, Any]:
        fields = {
            "seq": self.seq,
            "run_id": self.run_id,
            "run_seq": self.run_seq,
            "ts": self.ts,
            "type": self.type.value,
            "step": self.step,
            "call": self.call,
            "attempt": self.attempt,
            "data": self.data,
        }
        return _with_defect(self.defect, fields)


@dataclass(frozen=True, slots=True, kw_only=True)
class StepRecord:
    """One step attempt (one StepActor), from the ``steps`` projection."""

    run_id: str
    call: int
    attempt: int
    name: str
    status: StepState
    shielded: bool
    started_at: float
    finished_at: float | None
    result: Any
    error: dict[str, Any] | None
    heartbeat_at: float | None = None
    heartbeat_details: Any = None
    #: What is wrong with this row, if a column could not be read.
    defect: str | None = None

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> StepRecord:
        result, bad_result = decode(row["result"], "result")
        error, bad_error = decode(row["error"], "error", "object")
        details, bad_details = decode(row["heartbeat_details"], "heartbeat_details")
        return cls(
            run_id=row["run_id"],
            call=row["call"],
            attempt=row["attempt"],
            name=row["name"],
            status=_enum(StepState, row["status"], f"step {row['call']}.{row['attempt']}'s status"),
            shielded=bool(row["shielded"]),
            started_at=row["started_at"],
            finished_at=row["finished_at"],
            result=result,
            error=error or None,
            heartbeat_at=row["heartbeat_at"],
            heartbeat_details=details,
            defect=joined(bad_result, bad_error, bad_details),
        )

    def to_json(self) -> dict[str, Any]:
        fields = {
            "run_id": self.run_id,
            "call": self.call,
            "attempt": self.attempt,
            "name": self.name,
            "status": self.status.value,
            "shielded": self.shielded,
            "started_at": self.started_at,
            "finished_at": self.finished_at,
            "result": self.result,
            "error": self.error,
            "heartbeat_at": self.heartbeat_at,
            "heartbeat_details": self.heartbeat_details,
        }
        return _with_defect(self.defect, fields)


@dataclass(frozen=True, slots=True, kw_only=True)
class RuntimeRecord:
    """A runtime that registered on the store, and its lease."""

    owner: str
    pid: int
    hostname: str
    started_at: float
    heartbeat_at: float | None
    lease_expires_at: float | None
    stopped_at: float | None
    version: str | None
    #: Bumped by every renewal: what another runtime watches (P3).
    renewals: int = 0
    lease_ttl: float | None = None
    #: Where its pid is meaningful: ``/proc/self/ns/pid`` and the boot id.
    pid_ns: str | None = None
    boot_id: str | None = None
    #: Why its lease was ended while it did not stop on purpose, if it was.
    revoked: str | None = None

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> RuntimeRecord:
        return cls(
            owner=row["owner"],
            pid=row["pid"],
            hostname=row["hostname"],
            started_at=row["started_at"],
            heartbeat_at=row["heartbeat_at"],
            lease_expires_at=row["lease_expires_at"],
            stopped_at=row["stopped_at"],
            version=row["version"],
            renewals=row["renewals"],
            lease_ttl=row["lease_ttl"],
            pid_ns=row["pid_ns"],
            boot_id=row["boot_id"],
            revoked=row["revoked"],
        )


_Enum = TypeVar("_Enum", RunState, EventType, StepState)


def _enum(kind: type[_Enum], value: Any, what: str) -> _Enum:
    """A stored state or event type; CorruptRecord if no table knows it."""
    try:
        return kind(value)
    except ValueError:
        raise CorruptRecord(
            f"{what} is {value!r}, which this Proctor does not know"
            " (the row was written by hand, or by another version)"
        ) from None


def _with_defect(defect: str | None, fields: dict[str, Any]) -> dict[str, Any]:
    """A record as JSON; ``defect`` only appears on a row that has one."""
    if defect is not None:
        fields["defect"] = defect
    return fields
