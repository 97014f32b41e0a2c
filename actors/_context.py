"""What user code sees of its run: ``get_context()`` in a step or a workflow body.

A step's context performs the *mailbox check*: the step thread takes the
control messages (Cancel, Terminate) waiting in its own StepActor's inbox.
That is the only place cancel reaches step code (C2), and it costs one
unlocked deque read when nothing is waiting.
"""

from __future__ import annotations

import contextvars
import time
from collections.abc import Callable, Generator
from typing import Any, Final, Protocol

import pykka

from actors._base import tell
from actors._cancellation_type import cancellation_type
from actors._errors import CancellationError, Terminated
from actors._fencing import LeaseGuard
from actors._mailbox import ControlFirstInbox
from actors._messages import Append, Cancel, Heartbeat, Terminate
from persistence import (
    DEFAULT_MAX_PAYLOAD_BYTES,
    EventType,
    InvalidArgumentType,
    NewEvent,
    ProctorError,
    check_reason,
    roundtrip,
    safe_repr,
)


class _Checked:
    """What a check returns: awaiting it is a no-op, so both call styles work."""

    __slots__ = ()

    def __await__(self) -> Generator[Any, None, None]:
        return
        yield  # pragma: no cover - makes this a generator

    def __repr__(self) -> str:
        return "<checked>"


_CHECKED: Final = _Checked()

#: A step's heartbeats reach the store at most this often (seconds).
HEARTBEAT_RECORD_INTERVAL: Final = 1.0

_current: contextvars.ContextVar[Context | None] = contextvars.ContextVar(
    "proctor_context", default=None
)


def get_context() -> Context:
    """The context of the running step or workflow body.

    Raises:
        ProctorError: when called outside a step or workflow body.
    """
    ctx = _current.get()
    if ctx is None:
        raise ProctorError("get_context() called outside a Proctor step or workflow body")
    return ctx


class Context:
    """Common surface of :class:`StepContext` and :class:`WorkflowContext`."""

    run_id: str
    step_name: str | None = None
    attempt: int | None = None
    #: The runtime's payload limit (D4): bytes of JSON an argument, a result
    #: or heartbeat details may take.
    max_payload_bytes: int = DEFAULT_MAX_PAYLOAD_BYTES

    def __init__(self, run_id: str) -> None:
        self.run_id = run_id
        self.shield_depth = 0

    @property
    def is_cancelling(self) -> bool:
        raise NotImplementedError

    @property
    def cancel_reason(self) -> str | None:
        raise NotImplementedError

    def check_cancellation(self) -> _Checked:
        """A checkpoint: raise :class:`CancellationError` if cancelled and unshielded.

        Works called plainly and with ``await``.
        """
        raise NotImplementedError

    def heartbeat(self, details: Any = None) -> _Checked:
        """Renew liveness, keep ``details`` (JSON) and check the mailbox (H1)."""
        raise ProctorError("heartbeat() is for steps; a workflow body has no heartbeat")

    def _shield_enter(self) -> None:
        raise NotImplementedError

    def _shield_exit(self) -> None:
        raise NotImplementedError


class BeatBox:
    """The latest heartbeat of a step attempt (H1): its time on the runtime
    clock and its details. The step's thread writes it on every heartbeat; its
    supervisor reads it when the attempt's heartbeat deadline is due and when
    the attempt ends, so the end record carries the latest details (H2). No
    message per heartbeat; one tuple assignment, atomic in Python."""

    __slots__ = ("last",)

    def __init__(self) -> None:
        self.last: tuple[float, Any] | None = None


class StepContext(Context):
    """The context of one step attempt, used only from that step's thread."""

    def __init__(
        self,
        *,
        run_id: str,
        step_name: str,
        call: int,
        attempt: int,
        inbox: ControlFirstInbox,
        journal: pykka.ActorRef[Any],
        last_heartbeat_details: Any = None,
        cancel: Cancel | None = None,
        beats: BeatBox | None = None,
        clock: Callable[[], float] | None = None,
        max_payload_bytes: int = DEFAULT_MAX_PAYLOAD_BYTES,
        guard: LeaseGuard | None = None,
    ) -> None:
        super().__init__(run_id)
        self.max_payload_bytes = max_payload_bytes
        self.step_name = step_name
        self.call = call
        self.attempt: int = attempt
        self.last_heartbeat_details = last_heartbeat_details
        self.last_heartbeat_at: float | None = None
        self._recorded_at: float | None = None
        #: The latest details as JSON, sent with every recorded heartbeat (the
        #: Journal keeps only an attempt's newest one of a batch), and whether
        #: a heartbeat since the last record is still unrecorded.
        self._details_json: str | None = None
        self._unrecorded = False
        self._beat_at = 0.0
        self._inbox = inbox
        self._journal = journal
        self._cancel: Cancel | None = cancel
        #: Told of heartbeats when the step has a heartbeat timeout (H1).
        self._beats = beats
        self._runtime_now = clock or time.monotonic
        self._terminate: Terminate | None = None
        #: The runtime's lease: a step whose runtime may no longer own the run
        #: unwinds at its next check, like a terminated one (fencing).
        self._guard = guard
        self._delivered = False
        self._buffered = False

    @property
    def is_cancelling(self) -> bool:
        self._take_control()
        return self._cancel is not None

    @property
    def cancel_reason(self) -> str | None:
        return self._cancel.reason if self._cancel else None

    def check_cancellation(self) -> _Checked:
        self._take_control()
        if self._terminate is not None:
            raise Terminated(self._terminate.reason)
        if self._guard is not None:
            self._guard.check(self.run_id)
        if self._cancel is not None:
            if self.shield_depth:
                if not self._buffered:
                    self._buffered = True
                    self._record(EventType.CANCEL_BUFFERED, reason=self._cancel.reason)
            else:
                if not self._delivered:
                    self._delivered = True
                    self._record(EventType.CANCEL_DELIVERED, reason=self._cancel.reason)
                # Level-triggered (C3): every unshielded check raises again.
                raise CancellationError(self._cancel.reason)
        return _CHECKED

    def check_terminated(self) -> None:
        """Raise :class:`Terminated` if the run was terminated; ignore cancel."""
        self._take_control()
        if self._terminate is not None:
            raise Terminated(self._terminate.reason)
        if self._guard is not None:
            self._guard.check(self.run_id)

    def heartbeat(self, details: Any = None) -> _Checked:
        """Renew liveness, keep ``details`` (JSON) and check the mailbox (H1).

        ``details=None`` keeps the latest details. The step sees (and a later
        attempt gets) the details' JSON round trip, as after a resume (D4).

        Raises:
            NotSerializable: ``details`` is not JSON; the latest details stay.
            CancellationError: the run is cancelling and no shield is active.
            Terminated: the run was terminated.
        """
        if self._guard is not None:  # a fenced step writes no heartbeat either
            self._guard.check(self.run_id)
        if details is not None:
            self._details_json, details = roundtrip(
                details, what="heartbeat details", limit=self.max_payload_bytes
            )
            self.last_heartbeat_details = details
        now = time.monotonic()
        self.last_heartbeat_at = now
        if self._beats is not None:
            # One atomic store, read by the supervisor when a deadline is due
            # and when the attempt ends (its end record carries the latest).
            self._beats.last = (self._runtime_now(), self.last_heartbeat_details)
        # The store keeps the latest heartbeat; a chatty step costs one write
        # a second, and the one held back last is written at its end.
        self._unrecorded = True
        self._beat_at = time.time()
        if self._recorded_at is None or now - self._recorded_at >= HEARTBEAT_RECORD_INTERVAL:
            self._recorded_at = now
            self.flush_heartbeat()
        return self.check_cancellation()

    def flush_heartbeat(self) -> None:
        """Send the latest heartbeat to the Journal if it is not recorded yet."""
        if not self._unrecorded:
            return
        self._unrecorded = False
        tell(
            self._journal,
            Heartbeat(
                run_id=self.run_id,
                call=self.call,
                attempt=self.attempt,
                at=self._beat_at,
                details_json=self._details_json,
            ),
        )

    def _take_control(self) -> None:
        for msg in self._inbox.take_control_nowait():
            if isinstance(msg, Terminate):
                self._terminate = msg
            elif isinstance(msg, Cancel) and self._cancel is None:
                self._cancel = msg

    def _shield_enter(self) -> None:
        self.shield_depth += 1
        self._record(EventType.SHIELD_ENTERED, depth=self.shield_depth)

    def _shield_exit(self) -> None:
        self.shield_depth -= 1
        self._take_control()
        self._record(
            EventType.SHIELD_EXITED,
            depth=self.shield_depth,
            cancel_pending=self._cancel is not None,
        )

    def _record(self, type_: EventType, **data: Any) -> None:
        event = NewEvent(
            run_id=self.run_id,
            type=type_,
            step=self.step_name,
            call=self.call,
            attempt=self.attempt,
            data=data,
        )
        tell(self._journal, Append(events=(event,)))


class CallHandles(Protocol):
    """The run supervisor's side of call handles (B2, ``_handle_desk``)."""

    def start_step(self, call: Any) -> Any:
        """Record and start a step call; its handle."""

    def cancel_call(self, call_id: int, reason: str | None, mode: Any) -> bool:
        """Cancel one call of the body through its handle."""


class WorkflowContext(Context):
    """The context of a workflow body; lives in its RunSupervisor's thread."""

    def __init__(
        self,
        run_id: str,
        *,
        is_cancelling: Callable[[], bool],
        cancel_reason: Callable[[], str | None],
        checkpoint: Callable[[], None],
        record: Callable[..., None],
        max_payload_bytes: int = DEFAULT_MAX_PAYLOAD_BYTES,
    ) -> None:
        super().__init__(run_id)
        self.max_payload_bytes = max_payload_bytes
        self._is_cancelling = is_cancelling
        self._cancel_reason = cancel_reason
        self._checkpoint = checkpoint
        self._record = record
        self.sealed = False
        self.call_counter = 0
        #: Step and child-run handles (B2): set by the run supervisor.
        self.handles: CallHandles | None = None
        #: Cancel scopes (B3, ``_scopes.Scopes``): set by the run supervisor.
        self.scopes: Any = None

    @property
    def is_cancelling(self) -> bool:
        return self._is_cancelling()

    @property
    def cancel_reason(self) -> str | None:
        return self._cancel_reason()

    def check_cancellation(self) -> _Checked:
        self._checkpoint()
        return _CHECKED

    def _shield_enter(self) -> None:
        self.shield_depth += 1
        if not self.sealed:
            self._record(EventType.SHIELD_ENTERED, depth=self.shield_depth)

    def _shield_exit(self) -> None:
        self.shield_depth -= 1
        if not self.sealed:
            self._record(
                EventType.SHIELD_EXITED,
                depth=self.shield_depth,
                cancel_pending=self.is_cancelling,
            )


def call_handles(what: str) -> CallHandles:
    """The run supervisor's side of handles (B2), for a call made in a body."""
    ctx = _current.get()
    if not isinstance(ctx, WorkflowContext) or ctx.handles is None:
        raise ProctorError(f"{what} was called outside a workflow body; use it inside a @workflow")
    if ctx.sealed:
        raise ProctorError(f"{what} was called in a workflow body that has ended")
    return ctx.handles


def cancel_call(call_id: int, reason: object, mode: object, what: str) -> bool:
    """Check a handle's ``cancel()`` arguments, then cancel its call (B2)."""
    if reason is not None and not isinstance(reason, str):
        raise InvalidArgumentType(
            f"{what}(reason=...) must be a str or None; got {safe_repr(reason)}"
        )
    check_reason(reason, f"{what}(reason=...)")
    checked = None if mode is None else cancellation_type(f"{what}(mode=...)", mode)
    return call_handles(what).cancel_call(call_id, reason, checked)


def set_current(ctx: Context | None) -> contextvars.Token[Context | None]:
    return _current.set(ctx)


def reset_current(token: contextvars.Token[Context | None]) -> None:
    _current.reset(token)
