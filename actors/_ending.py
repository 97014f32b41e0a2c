"""Ending: a run's end, from the body's return to the supervisor's exit.

The body returns, raises, or meets a cancel; its end is recorded
(``run_completed``, ``run_failed``, ``run_cancelled``) and, once that
commits, the supervisor exits with it, its parent recording the child's
end from the exit report. A run that ends with child runs it started with
``start_child()`` and never awaited first applies their parent close policy
(``_children``) and lingers until they have ended, as Temporal's parent
close policies and an OTP supervisor's children do.

Invariants: a completed run's result is the JSON round trip of the value
(D4: a parent awaiting it gets what replay would give), and a value that
is not serializable fails the run instead; the end is recorded before the
exit that reports it (an end the store refused exits at once with what the
supervisor knows); a lingering supervisor exits, with the recorded end,
exactly when its last child has; the run's outcome is logged once its
end is durable (``_log_records``).
"""

from __future__ import annotations

from types import MappingProxyType
from typing import Any, Protocol

from actors._body import Body
from actors._children import Children
from actors._errors import describe
from actors._lifecycle import Lifecycle, Phase, PhaseEvent
from actors._log_records import RunOutcome
from actors._messages import ExitKind, ExitReason, RunFinished
from actors._recorder import Recorder
from persistence import EventType, NewEvent, NotSerializable, roundtrip

_E = EventType


class EndingHost(Protocol):
    """What ending the run needs of its supervisor."""

    def exit(self, reason: ExitReason) -> None:
        """Stop after the current message, reporting ``reason``."""


class Ending:
    """Records one run's end and exits with it (see the module docstring)."""

    def __init__(
        self,
        host: EndingHost,
        *,
        outcome: RunOutcome,
        run_id: str,
        workflow_name: str,
        max_payload_bytes: int,
        life: Lifecycle,
        body: Body,
        children: Children,
        log: Recorder,
    ) -> None:
        self._host = host
        self._outcome = outcome
        self._run_id = run_id
        self._workflow_name = workflow_name
        self._max_payload_bytes = max_payload_bytes
        self._life = life
        self._body = body
        self._children = children
        self._log = log
        #: The run ended with children still running under their parent close
        #: policy: the supervisor stays until they end, then exits with this.
        self._linger: ExitReason | None = None

    def completed(self, value: Any) -> None:
        try:
            # D4: a parent awaiting this run gets the round trip, as on replay.
            _, value = roundtrip(
                value,
                what=f"result of workflow {self._workflow_name!r}",
                limit=self._max_payload_bytes,
            )
        except NotSerializable as exc:
            self.failed(exc)
            return
        self._finish(_E.RUN_COMPLETED, ExitKind.NORMAL, result=value)

    def failed(self, exc: BaseException) -> None:
        self._finish(_E.RUN_FAILED, ExitKind.FAILED, error=describe(exc))

    def cancelled(self, reason: str | None) -> None:
        self._finish(_E.RUN_CANCELLED, ExitKind.CANCELLED, reason=reason)

    def _finish(self, type_: EventType, kind: ExitKind, **data: Any) -> None:
        self._life.advance(PhaseEvent.FINISH)
        self._body.coro = None
        self._log.append(
            NewEvent(run_id=self._run_id, type=type_, data=data),
            tag=RunFinished(kind=kind, data=MappingProxyType(dict(data))),
        )

    def on_recorded(self, tag: RunFinished, accepted: bool) -> None:
        """The run's end is recorded; children it started and did not await
        meet their parent close policy, and the supervisor waits for them."""
        reason = ExitReason(kind=tag.kind, data=dict(tag.data))
        if accepted:
            self._outcome.ended(tag.kind, tag.data)  # O3: durable now
        if not accepted or not self._children:
            self._host.exit(reason)
            return
        self._linger = reason
        self._life.advance(PhaseEvent.LINGER)
        self._children.close()

    @property
    def lingering(self) -> bool:
        return self._life.phase is Phase.LINGERING

    def on_child_left(self) -> None:
        """Lingering: a child run has ended; the last one lets the supervisor go."""
        assert self._linger is not None
        if not self._children:
            self._host.exit(self._linger)
