"""The runtime's half of the exception tree (drawn whole in ``persistence._errors``).

``CancellationError`` and ``Terminated`` derive from ``BaseException``, like
``trio.Cancelled`` and ``asyncio.CancelledError``: a broad ``except
Exception`` in user code must not swallow them.
"""

from __future__ import annotations

import traceback
from typing import Any

from persistence import ProctorError, safe_str, type_name, valid_text


class CancellationError(BaseException):
    """Raised at a checkpoint of a run that is cancelling (and not shielded).

    ``reason`` is kept as text (it goes to the log): anything else is turned
    into its ``str()``, or a placeholder when that raises.
    """

    def __init__(self, reason: str | None = None) -> None:
        reason = _reason(reason)
        super().__init__(reason or "cancelled")
        self.reason = reason


class Terminated(BaseException):
    """Raised in a step thread of a terminated run so that it unwinds (T3)."""

    def __init__(self, reason: str | None = None) -> None:
        reason = _reason(reason)
        super().__init__(reason or "terminated")
        self.reason = reason


class DeadlineExceeded(ProctorError, TimeoutError):
    """``fail_after``/``fail_at`` (B3): the scope's deadline passed before its block ended.

    A ``TimeoutError`` (so ``except TimeoutError`` catches it), as AnyIO's
    ``fail_after`` raises; Trio's equivalent is ``trio.TooSlowError``. Raised
    at the scope's exit, in place of the ``CancellationError`` the deadline
    raised inside the block (its ``__cause__``).
    """


class StepFailed(ProctorError):
    """A step raised; ``__cause__`` is the exception of its last attempt."""

    def __init__(
        self, step: str, attempt: int, error: dict[str, Any], *, escalated: str | None = None
    ) -> None:
        message = f"step {step!r} failed on attempt {attempt}: {error['type']}: {error['message']}"
        if escalated:
            message += f" (not retried: {escalated})"
        super().__init__(message)
        self.step = step
        self.attempt = attempt
        self.error = error
        #: Why the supervisor stopped restarting it (restart intensity), if it did.
        self.escalated = escalated


class NonDeterminismError(ProctorError):
    """Replay found the workflow asking for other steps than its log records.

    A resumed run re-runs its body against its log (D2). When the code changed
    so that it no longer makes the same calls in the same order, replaying it
    would return one step's recorded result to another: the run fails instead.
    """


class RuntimeClosed(ProctorError):
    """The runtime was closed or killed, or its actors could not start: it
    takes no more requests. (A runtime that stopped itself raises the reason
    instead, a :class:`StoreError`; see ``Runtime.failure``.)"""


class RunEnded(ProctorError):
    """Base of the errors :meth:`RunHandle.result` raises for a run that did not complete."""

    def __init__(self, run_id: str, message: str) -> None:
        super().__init__(message)
        self.run_id = run_id


class WorkflowFailed(RunEnded):
    """The run ended FAILED; ``error`` describes the exception that escaped the body."""

    def __init__(self, run_id: str, error: dict[str, Any] | None) -> None:
        error = error or {"type": "Unknown", "message": ""}
        super().__init__(run_id, f"run {run_id} failed: {error['type']}: {error['message']}")
        self.error = error


class RunCancelled(RunEnded):
    """The run ended CANCELLED."""

    def __init__(self, run_id: str, reason: str | None) -> None:
        super().__init__(run_id, f"run {run_id} was cancelled" + (f": {reason}" if reason else ""))
        self.reason = reason


class RunTerminated(RunEnded):
    """The run ended TERMINATED."""

    def __init__(self, run_id: str, reason: str | None) -> None:
        super().__init__(run_id, f"run {run_id} was terminated" + (f": {reason}" if reason else ""))
        self.reason = reason


class WaitTimeout(ProctorError, TimeoutError):
    """A wait for a run's end (``RunHandle.result(timeout=...)``) ran out.

    The run goes on. The message says its status, what it waits for (a
    retry's back-off on the runtime's clock, a running step and its last
    heartbeat, a child run, a cancel not met yet) and its log. A
    ``TimeoutError`` too, so ``except TimeoutError`` keeps working.
    """

    def __init__(self, run_id: str, status: str, message: str) -> None:
        super().__init__(message)
        self.run_id = run_id
        self.status = status


class SignalTimeout(ProctorError, TimeoutError):
    """``await wait_for_signal(name, timeout=s)`` ran out before a signal came (B5).

    Raised in the workflow body at the wait; no signal was taken (one sent
    later stays pending for a later wait). The log records the timeout as
    the wait's durable timer firing (``timer_fired``), so a replay raises it
    at the same wait. A ``TimeoutError`` too, as Temporal's
    ``workflow.wait_condition(timeout=...)`` raises ``asyncio.TimeoutError``
    (DBOS ``recv(timeout_seconds=...)`` returns None instead: here a None
    payload stays distinguishable from no signal).

    Attributes:
        name: the signal's name.
        timeout: the seconds the wait was given.
    """

    def __init__(self, name: str, timeout: float | None) -> None:
        super().__init__(f"no signal {name!r} came within {timeout} seconds")
        self.name = name
        self.timeout = timeout


def describe(exc: BaseException) -> dict[str, Any]:
    """A JSON description of an exception, for the log and the CLI.

    Shape: ``{"type": str, "module": str, "message": str, "traceback": str}``.
    Never raises: an exception whose ``__str__`` (or anything else of its
    own) raises keeps its real type, with a placeholder message.
    """
    cls = type(exc)
    qualname, module = getattr(cls, "__qualname__", None), getattr(cls, "__module__", None)
    try:
        trace = valid_text("".join(traceback.format_exception(exc)))
    except Exception as failed:  # its __notes__, __cause__ or such raised
        trace = f"{type_name(exc)}: <traceback unavailable: {type(failed).__name__}>"
    return {
        "type": qualname if isinstance(qualname, str) else type_name(exc),
        "module": module if isinstance(module, str) else "",
        "message": safe_str(exc),
        "traceback": trace,
    }


def _reason(reason: object) -> str | None:
    """A cancel or terminate reason as text; whatever the caller passed."""
    if reason is None:
        return None
    return valid_text(reason) if isinstance(reason, str) else safe_str(reason)
