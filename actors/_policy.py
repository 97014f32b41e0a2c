"""Retry policies and restart intensity: what a supervisor does when a step fails.

Like an Erlang/OTP supervisor's restart strategy and intensity, and like
Temporal's activity retry policy: a failed or timed-out attempt is restarted
as a fresh StepActor after an exponential back-off, up to ``max_attempts``;
a run's supervisor that restarts more than ``max_restarts`` times within
``within`` seconds stops restarting and lets the failure escalate.
Cancellation and termination are never retried.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any

from actors._arguments import count, number, seconds
from persistence import InvalidArgument, InvalidArgumentType


@dataclass(frozen=True, slots=True, kw_only=True)
class RetryPolicy:
    """How a step is retried.

    Args:
        max_attempts: attempts in all, the first included (1: never retry;
            None: no limit but the run's restart intensity).
        initial_interval: seconds before the first retry.
        backoff_coefficient: each retry waits this many times longer.
        max_interval: the longest wait between two attempts.
        jitter: a fraction of each wait drawn at random (0.1: +/- 10%), so
            that many runs failing together do not retry in lockstep.
        non_retryable: exception classes, or their names, that fail the step
            at once (matched against the class and its bases).
    """

    max_attempts: int | None = 3
    initial_interval: float = 1.0
    backoff_coefficient: float = 2.0
    max_interval: float = 60.0
    jitter: float = 0.0
    non_retryable: tuple[type[BaseException] | str, ...] = field(default=())

    def __post_init__(self) -> None:
        """Raises InvalidArgumentType / InvalidArgument naming the bad field."""
        if self.max_attempts is not None:
            count("RetryPolicy.max_attempts", self.max_attempts, minimum=1)
        seconds("RetryPolicy.initial_interval", self.initial_interval)
        seconds("RetryPolicy.max_interval", self.max_interval)
        if number("RetryPolicy.backoff_coefficient", self.backoff_coefficient) < 1:
            raise InvalidArgument("RetryPolicy.backoff_coefficient must be at least 1")
        if not 0 <= number("RetryPolicy.jitter", self.jitter) <= 1:
            raise InvalidArgument("RetryPolicy.jitter is a fraction between 0 and 1")
        if not isinstance(self.non_retryable, tuple) or not all(
            isinstance(e, str) or (isinstance(e, type) and issubclass(e, BaseException))
            for e in self.non_retryable
        ):
            raise InvalidArgumentType(
                "RetryPolicy.non_retryable must be a tuple of exception classes or their names,"
                f" got {self.non_retryable!r}"
            )

    def delay(self, failed_attempt: int, rng: random.Random | None = None) -> float:
        """Seconds to wait after attempt ``failed_attempt`` (1-based) failed."""
        base = self.initial_interval * self.backoff_coefficient ** (failed_attempt - 1)
        base = min(base, self.max_interval)
        if self.jitter:
            base *= 1 + (rng or random).uniform(-self.jitter, self.jitter)
        return max(0.0, base)

    def allows_another(self, failed_attempt: int) -> bool:
        return self.max_attempts is None or failed_attempt < self.max_attempts

    def is_retryable(self, error: BaseException | None, error_type: str) -> bool:
        for entry in self.non_retryable:
            if isinstance(entry, str):
                names = {c.__name__ for c in type(error).__mro__} if error else {error_type}
                if entry in names or entry == error_type:
                    return False
            elif error is not None and isinstance(error, entry):
                return False
        return True

    def to_json(self) -> dict[str, Any]:
        return {
            "max_attempts": self.max_attempts,
            "initial_interval": self.initial_interval,
            "backoff_coefficient": self.backoff_coefficient,
            "max_interval": self.max_interval,
            "jitter": self.jitter,
        }


@dataclass(frozen=True, slots=True, kw_only=True)
class Intensity:
    """At most ``max_restarts`` restarts within ``within`` seconds, per run."""

    max_restarts: int = 10
    within: float = 60.0
