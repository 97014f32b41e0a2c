"""Restarts: retrying step attempts (H2, SV1-SV3): the rules, and applying them.

- SV1: whether a failed or timed-out attempt may run again (its policy,
  and never while the run is cancelling outside a shield: C3).
- SV2: restart intensity, Erlang/OTP's ``intensity``/``period``: more than
  ``max_restarts`` restarts within ``within`` seconds escalates instead.
- SV3: which siblings of a gather restart with a failed step: none
  (one_for_one), all (one_for_all), the later ones (rest_for_one).
- H2: when an attempt's timeout or heartbeat timeout falls due.

The rules are pure functions of their arguments (the intensity window's
only state is the times of the restarts it admitted, runtime clock,
ascending). ``Restarts`` applies them to one run's attempts (``_attempts``).

Invariants: a retry is recorded (``step_retry_scheduled``, in one group
with the failed attempt's end) before its back-off timer is set, and starts
only when that timer fires for the same attempt number; cancellation and
termination are never retried (SV1); a sibling stopped for a group restart
restarts once, when its end is in.
"""

from __future__ import annotations

import random
import time
from collections import deque
from typing import Any, Protocol

from actors._attempts import Active, Attempts, Backoff, Scheduled, Waiting, step_event
from actors._base import logger, tell
from actors._clock import Clock
from actors._definitions import StepDef
from actors._errors import StepFailed
from actors._log_records import run_extra
from actors._messages import CallEnded, Cancel, Deadline, RetryDue, RetryScheduled, Terminate
from actors._policy import Intensity, RetryPolicy
from actors._recorder import Recorder
from persistence import EventType, NewEvent, NotSerializable

_E = EventType


def may_retry(
    policy: RetryPolicy | None,
    error: BaseException | None,
    error_type: str,
    attempt: int,
    *,
    cancelling: bool,
) -> bool:
    """SV1: whether attempt ``attempt``, which failed with ``error`` (None:
    timed out) of type ``error_type``, may be followed by another.

    ``cancelling``: the run is cancelling and the attempt is not shielded;
    cancellation is never retried (C3).
    """
    return not (
        policy is None
        or isinstance(error, NotSerializable)  # the caller's bug; retrying cannot help
        or not policy.allows_another(attempt)
        or not policy.is_retryable(error, error_type)
        or cancelling
    )


class RestartIntensity:
    """SV2: a run's restarts within a sliding window (OTP supervisor intensity)."""

    def __init__(self, intensity: Intensity) -> None:
        self._intensity = intensity
        #: When (runtime clock) each restart in the window was admitted.
        self._restarts: deque[float] = deque()

    def admit(self, now: float) -> str | None:
        """Count a restart at ``now``; or, if that would exceed the intensity,
        count nothing and say why (the failure escalates)."""
        intensity = self._intensity
        while self._restarts and self._restarts[0] <= now - intensity.within:
            self._restarts.popleft()
        if len(self._restarts) >= intensity.max_restarts:
            return (
                f"restart intensity exceeded: {len(self._restarts)} restarts within "
                f"{intensity.within:g}s (max_restarts={intensity.max_restarts})"
            )
        self._restarts.append(now)
        return None


def siblings_to_restart(strategy: str, call_ids: tuple[int, ...], failed: int) -> list[int]:
    """SV3: the calls of a gather (``call_ids``, in order) that restart with
    ``failed``, by the gather's strategy; ``failed`` itself is not among them."""
    if strategy == "one_for_one" or failed not in call_ids:
        return []
    position = call_ids.index(failed)
    return [
        call_id
        for index, call_id in enumerate(call_ids)
        if call_id != failed and not (strategy == "rest_for_one" and index < position)
    ]


def next_deadline(
    step: StepDef[..., Any], started_at: float, last_beat: float
) -> tuple[float, str, float]:
    """H2: the attempt's earliest deadline: (when, which, its limit in seconds).

    ``started_at`` and ``last_beat`` are runtime-clock times; the step has a
    ``timeout`` or a ``heartbeat_timeout`` (or both).
    """
    due: list[tuple[float, str, float]] = []
    if step.timeout is not None:
        due.append((started_at + step.timeout, "timeout", step.timeout))
    if step.heartbeat_timeout is not None:
        due.append(
            (last_beat + step.heartbeat_timeout, "heartbeat_timeout", step.heartbeat_timeout)
        )
    return min(due)


def timed_out_error(kind: str, limit: float) -> dict[str, Any]:
    """The recorded error of an attempt that missed its deadline ``kind``."""
    return {
        "type": "StepTimedOut",
        "module": "proctor",
        "message": f"{kind}: no {'heartbeat' if kind != 'timeout' else 'result'} within {limit:g}s",
        "traceback": "",
    }


class RestartHost(Protocol):
    """What the restarts need of their run supervisor."""

    @property
    def waiting(self) -> Waiting | None:
        """What the suspended body awaits (a gather's siblings restart together)."""

    def cancelling(self) -> bool:
        """The run is cancelling: an unshielded attempt is never restarted (C3)."""

    def start_calls(self, events: list[NewEvent], scheduled: tuple[Scheduled, ...]) -> None:
        """Record the starts, then start the attempts."""

    def schedule_timer(self, key: tuple[str, int], due: float, message: Any) -> None: ...


class Restarts:
    """Applies the rules above to one run's attempts: back-off, retry,
    group restarts and timeouts, each recorded before it takes effect."""

    def __init__(
        self,
        host: RestartHost,
        *,
        run_id: str,
        attempts: Attempts,
        log: Recorder,
        clock: Clock,
        intensity: Intensity,
    ) -> None:
        self._host = host
        self._run_id = run_id
        self._attempts = attempts
        self._log = log
        self._clock = clock
        self._rng = random.Random()  # noqa: S311 - jitter, not secrets
        self._intensity = RestartIntensity(intensity)

    def retry(
        self,
        call_id: int,
        active: Active,
        error: BaseException | None,
        end: EventType,
        data: dict[str, Any],
    ) -> str | None:
        """Restart a failed or timed-out attempt after its back-off, if allowed.

        Returns None when a retry is scheduled (the end and the retry are
        recorded together); otherwise "" or, when the run's restart intensity
        stopped a retry the policy allowed, why (the failure escalates).
        """
        policy = active.call.step.retry
        error_type = data["error"]["type"]
        cancelling = (self._host.cancelling() and not active.shielded) or active.cancelled
        if not may_retry(policy, error, error_type, active.attempt, cancelling=cancelling):
            return ""
        assert policy is not None
        now = self._clock.monotonic()
        exceeded = self._intensity.admit(now)
        if exceeded is not None:
            return exceeded
        delay = policy.delay(active.attempt, self._rng)
        attempt = active.attempt + 1
        backoff = Backoff(
            call=active.call,
            shielded=active.shielded,
            attempt=attempt,
            details=active.last_heartbeat()[1],
        )
        ended = step_event(self._run_id, end, active.name, call_id, active.attempt, **data)
        self._schedule_retry(call_id, backoff, ended, now + delay, error_type)
        logger.info(
            "run %s: step %s (call %d) attempt %d %s (%s: %s); attempt %d in %.2fs",
            self._run_id,
            active.name,
            call_id,
            active.attempt,
            "timed out" if end is _E.STEP_TIMED_OUT else "failed",
            error_type,
            data["error"].get("message", ""),
            attempt,
            delay,
            extra=run_extra(
                self._run_id,
                step=active.name,
                call=call_id,
                attempt=attempt,
                event_type=_E.STEP_RETRY_SCHEDULED,
            ),
        )
        self._restart_siblings(call_id, active.name, now + delay)
        return None

    def _schedule_retry(
        self, call_id: int, backoff: Backoff, ended: NewEvent | None, due: float, after: str
    ) -> None:
        """Wait out a back-off, then start ``backoff.attempt`` (RetryDue).

        The previous attempt's end (if not recorded yet) and the retry are one
        record group; the timer is set once they are durable.
        """
        self._attempts.backoff[call_id] = backoff
        delay = max(0.0, due - self._clock.monotonic())
        retry = step_event(
            self._run_id,
            _E.STEP_RETRY_SCHEDULED,
            backoff.call.step.name,
            call_id,
            backoff.attempt,
            delay=round(delay, 6),
            retry_at=time.time() + delay,
            after=after,
        )
        events = [ended, retry] if ended is not None else [retry]
        self._log.append(
            *events, tag=RetryScheduled(call_id=call_id, attempt=backoff.attempt, due=due)
        )

    def _restart_siblings(self, failed: int, name: str, due: float) -> None:
        """SV3: a step of a gather restarts; under one_for_all (rest_for_one)
        its other (later) sibling steps restart with it, at the same time."""
        waiting = self._host.waiting
        if waiting is None:
            return
        reason = f"restarted with {name} ({waiting.strategy})"
        for call_id in siblings_to_restart(waiting.strategy, waiting.call_ids, failed):
            if call_id not in self._attempts.calls or call_id in self._attempts.backoff:
                continue
            if call_id in self._attempts.queued:
                continue  # waiting for a slot: it has not started, so it starts once
            active = self._attempts.active.get(call_id)
            if active is not None:
                # Running: it stops at its next check, and restarts when it ends.
                self._attempts.restart_after[call_id] = (due, reason)
                tell(active.ref, Cancel(reason=reason, source="supervisor"))
            elif call_id in waiting.errors:
                # It ended already: its outcome is dropped; it runs again.
                del waiting.errors[call_id]
                waiting.values.pop(call_id, None)
                self.restart_later(call_id, None, due, reason)
            else:
                # It ended and its end is being recorded: restart it once it is.
                self._attempts.restart_after[call_id] = (due, reason)

    def restart_later(self, call_id: int, ended: NewEvent | None, due: float, reason: str) -> None:
        call, attempt, shielded = self._attempts.calls[call_id]
        details = self._attempts.details.get(call_id)  # H2, as for any other restart
        backoff = Backoff(call=call, shielded=shielded, attempt=attempt + 1, details=details)
        self._schedule_retry(call_id, backoff, ended, due, reason)

    def on_retry_due(self, msg: RetryDue) -> None:
        backoff = self._attempts.backoff.get(msg.call)
        if backoff is None or backoff.attempt != msg.attempt:
            return
        del self._attempts.backoff[msg.call]
        s = Scheduled(
            msg.call,
            backoff.call,
            backoff.shielded,
            msg.attempt,
            details=backoff.details,
            decided_at=self._clock.monotonic(),
        )
        started = step_event(
            self._run_id,
            _E.STEP_STARTED,
            backoff.call.step.name,
            msg.call,
            msg.attempt,
            shielded=s.shielded,
        )
        self._host.start_calls([started], (s,))

    def on_deadline(self, msg: Deadline) -> None:
        """H1: time out an attempt that ran too long or stopped heartbeating."""
        active = self._attempts.active.get(msg.call)
        if active is None or active.attempt != msg.attempt:
            return
        now = self._clock.monotonic()
        last, _ = active.last_heartbeat()
        when, kind, limit = next_deadline(active.call.step, active.started_at, last)
        if when > now:
            self._host.schedule_timer(("deadline", msg.call), when, msg)
            return
        # Abandon the attempt: its thread unwinds at its next check, and its
        # late result is dropped (fencing by attempt).
        del self._attempts.active[msg.call]
        tell(active.ref, Terminate(reason=f"{kind} ({limit:g}s)"))
        error = timed_out_error(kind, limit)
        logger.warning(
            "run %s: step %s (call %d) attempt %d timed out: %s",
            self._run_id,
            active.name,
            msg.call,
            active.attempt,
            error["message"],
            extra=run_extra(
                self._run_id,
                step=active.name,
                call=msg.call,
                attempt=active.attempt,
                event_type=_E.STEP_TIMED_OUT,
            ),
        )
        data: dict[str, Any] = {
            "kind": kind,
            "error": error,
            "last_heartbeat_details": active.last_heartbeat()[1],
        }
        if data["last_heartbeat_details"] is not None:
            self._attempts.details[msg.call] = data["last_heartbeat_details"]
        escalated = self.retry(msg.call, active, None, _E.STEP_TIMED_OUT, data)
        if escalated is None:
            return
        if escalated:
            data["escalated"] = escalated
        event = step_event(
            self._run_id, _E.STEP_TIMED_OUT, active.name, msg.call, active.attempt, **data
        )
        failed = StepFailed(active.name, active.attempt, error, escalated=escalated)
        self._log.append(event, tag=CallEnded(call_id=msg.call, error=failed))
