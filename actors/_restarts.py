"""Restarts: the pure rules of retrying step attempts (H2, SV1-SV3).

- SV1: whether a failed or timed-out attempt may run again (its policy,
  and never while the run is cancelling outside a shield: C3).
- SV2: restart intensity, Erlang/OTP's ``intensity``/``period``: more than
  ``max_restarts`` restarts within ``within`` seconds escalates instead.
- SV3: which siblings of a gather restart with a failed step: none
  (one_for_one), all (one_for_all), the later ones (rest_for_one).
- H2: when an attempt's timeout or heartbeat timeout falls due.

Invariants: everything here is a function of its arguments, except the
intensity window, whose only state is the times of the restarts it admitted
(runtime clock, ascending); none of it reads a clock, the store or an actor.
"""

from __future__ import annotations

from collections import deque
from typing import Any

from actors._definitions import StepDef
from actors._policy import Intensity, RetryPolicy
from persistence import NotSerializable


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
