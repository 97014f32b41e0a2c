"""Log records: the structured fields of the runtime's log records about runs (O3).

The runtime logs on the ``proctor`` logger (stdlib ``logging``). Every
record about a run or one of its steps carries, as attributes of the
``LogRecord`` (``logging``'s ``extra=``), the fields of :data:`LOG_FIELDS`
it knows, so a handler can index, filter or print them without parsing the
message (as structlog's bound context or Temporal's workflow/activity
logger ``extra`` do). The message itself stays a readable sentence that
names the run.

This module builds those fields (:func:`run_extra`, one place instead of
dicts copied at every call) and logs a run's outcome
(:class:`RunOutcome`, one line per run when it ends).

Invariants: a field is set on a record only when it is known (never
``None``; read them with ``getattr(record, "run_id", None)``); ``event_type``
is an ``EventType`` value (a str); a run's outcome is logged at most once
per supervisor, and only after its terminal record is durable (the callers
call :meth:`RunOutcome.ended` from the Journal's acknowledgement of the end,
or once a terminate, durable before its message is sent (T1), reaches the
supervisor); it never reads the store (nothing on the control path waits
for a log line).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any, Final

from actors._base import logger
from actors._clock import Clock
from actors._messages import ExitKind
from actors._outcomes import EXIT_STATUS
from persistence import EventType, RunState

#: The fields a runtime's log record may carry about a run (stable interface):
#: ``run_id`` (str), ``step`` (the step's name), ``call`` (the call's number in
#: the run's log, int), ``attempt`` (int, from 1), ``event_type`` (the
#: ``EventType`` value the record is about), and on a run's outcome record
#: ``workflow``, ``status`` (the ``RunState`` value), ``duration_s`` (float),
#: ``error_type`` and ``error_message`` (failed), ``reason`` (cancelled,
#: terminated; absent when none was given).
LOG_FIELDS: Final = (
    "run_id",
    "step",
    "call",
    "attempt",
    "event_type",
    "workflow",
    "status",
    "duration_s",
    "error_type",
    "error_message",
    "reason",
)

#: A run's final state -> the type of its terminal record.
_END_EVENT: Final[Mapping[RunState, EventType]] = {
    RunState.COMPLETED: EventType.RUN_COMPLETED,
    RunState.FAILED: EventType.RUN_FAILED,
    RunState.CANCELLED: EventType.RUN_CANCELLED,
    RunState.TERMINATED: EventType.RUN_TERMINATED,
}


def run_extra(
    run_id: str | None,
    *,
    step: str | None = None,
    call: int | None = None,
    attempt: int | None = None,
    event_type: EventType | None = None,
    **more: Any,
) -> dict[str, Any]:
    """The ``extra=`` of a log record about run ``run_id`` (see :data:`LOG_FIELDS`).

    Fields given as None are left out, so a record never claims a field it
    does not know. ``more``: further fields of :data:`LOG_FIELDS`.

    Raises:
        ValueError: a key of ``more`` is not one of :data:`LOG_FIELDS`.
    """
    unknown = set(more) - set(LOG_FIELDS)
    if unknown:
        raise ValueError(f"not a log field: {', '.join(sorted(unknown))}")
    fields: dict[str, Any] = {
        "run_id": run_id,
        "step": step,
        "call": call,
        "attempt": attempt,
        "event_type": event_type.value if event_type is not None else None,
        **more,
    }
    return {k: v for k, v in fields.items() if v is not None}


class RunOutcome:
    """Logs how one run ended, once: ``run <id> <workflow> <status> in <s>s``.

    One INFO record on the ``proctor`` logger per run per runtime (a resumed
    run's outcome is logged by the runtime that ends it), with the fields
    ``run_id``, ``workflow``, ``event_type`` (``run_completed``,
    ``run_failed``, ``run_cancelled``, ``run_terminated``), ``status``,
    ``duration_s`` (wall-clock seconds since the run was created, on the
    runtime's clock), and ``error_type``/``error_message`` or ``reason``.
    A run that times out (B4) is cancelled, or terminated after its grace:
    its outcome says so, with the timeout's reason. Like Temporal's and
    Celery's workers, which log each task's end with its duration.
    """

    def __init__(self, *, run_id: str, workflow: str, created_at: float, clock: Clock) -> None:
        self._run_id = run_id
        self._workflow = workflow
        self._created_at = created_at
        self._clock = clock
        self._logged = False

    def ended(self, kind: ExitKind, data: Mapping[str, Any] | None) -> None:
        """The run's end (its supervisor's exit ``kind``, its last record's
        ``data``) is durable: log it, unless it was logged already."""
        if self._logged:
            return
        self._logged = True
        if not logger.isEnabledFor(logging.INFO):
            return
        status = EXIT_STATUS[kind]
        data = data or {}
        duration = max(0.0, self._clock.time() - self._created_at)
        more: dict[str, Any] = {}
        detail = ""
        if status is RunState.FAILED:
            error = data.get("error")
            if isinstance(error, Mapping):
                more["error_type"] = str(error.get("type") or "") or None
                more["error_message"] = str(error.get("message") or "")
                detail = f": {more['error_type'] or 'error'}: {more['error_message']}"
        elif status in (RunState.CANCELLED, RunState.TERMINATED):
            reason = data.get("reason")
            if reason is not None:
                more["reason"] = str(reason)
                detail = f": {reason}"
        logger.info(
            "run %s %s %s in %.2fs%s",
            self._run_id,
            self._workflow,
            status.value,
            duration,
            detail,
            extra=run_extra(
                self._run_id,
                event_type=_END_EVENT[status],
                workflow=self._workflow,
                status=status.value,
                duration_s=round(duration, 6),
                **more,
            ),
        )
