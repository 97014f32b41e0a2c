"""The pure rules of restarts (SV1-SV3, H2), without a runtime."""

from __future__ import annotations

import pytest

from actors import NotSerializable, RetryPolicy, step
from actors._policy import Intensity
from actors._restarts import (
    RestartIntensity,
    may_retry,
    next_deadline,
    siblings_to_restart,
    timed_out_error,
)


def test_SV1_a_retry_needs_a_policy_attempts_left_and_a_retryable_error() -> None:
    policy = RetryPolicy(max_attempts=3, non_retryable=(KeyError,))
    boom = ValueError("boom")
    assert may_retry(policy, boom, "ValueError", 1, cancelling=False)
    assert may_retry(policy, boom, "ValueError", 2, cancelling=False)
    assert not may_retry(policy, boom, "ValueError", 3, cancelling=False)  # the last one
    assert not may_retry(None, boom, "ValueError", 1, cancelling=False)
    assert not may_retry(policy, KeyError("k"), "KeyError", 1, cancelling=False)
    assert not may_retry(
        policy, NotSerializable.recorded("not JSON"), "NotSerializable", 1, cancelling=False
    )
    assert may_retry(policy, None, "StepTimedOut", 1, cancelling=False)  # a timeout


def test_C3_nothing_is_retried_while_cancelling() -> None:
    assert not may_retry(RetryPolicy(), ValueError(), "ValueError", 1, cancelling=True)


def test_SV2_intensity_counts_restarts_in_a_sliding_window() -> None:
    window = RestartIntensity(Intensity(max_restarts=2, within=10.0))
    assert window.admit(0.0) is None
    assert window.admit(5.0) is None
    exceeded = window.admit(9.0)
    assert exceeded is not None
    assert "2 restarts within 10s (max_restarts=2)" in exceeded
    assert window.admit(10.0) is None  # the one at 0.0 left the window (not counted at 9.0)
    assert window.admit(14.0) is not None
    assert window.admit(15.0) is None


@pytest.mark.parametrize(
    ("strategy", "failed", "expected"),
    [
        ("one_for_one", 2, []),
        ("one_for_all", 2, [1, 3, 4]),
        ("rest_for_one", 2, [4]),
        ("rest_for_one", 1, [3, 2, 4]),
        ("one_for_all", 9, []),  # not in this gather
    ],
)
def test_SV3_which_siblings_restart(strategy: str, failed: int, expected: list[int]) -> None:
    assert siblings_to_restart(strategy, (1, 3, 2, 4), failed) == expected


@step(timeout=5.0, heartbeat_timeout=2.0)
def guarded() -> None:
    """Never run: its definition's deadlines are what is tested."""


@step(timeout=5.0)
def timed() -> None:
    """Never run."""


def test_H2_the_earliest_deadline_is_the_one_due() -> None:
    assert next_deadline(guarded, 100.0, 100.0) == (102.0, "heartbeat_timeout", 2.0)
    assert next_deadline(guarded, 100.0, 104.0) == (105.0, "timeout", 5.0)
    assert next_deadline(timed, 100.0, 200.0) == (105.0, "timeout", 5.0)
    assert timed_out_error("timeout", 5.0)["message"] == "timeout: no result within 5s"
    assert timed_out_error("heartbeat_timeout", 2.0)["message"] == (
        "heartbeat_timeout: no heartbeat within 2s"
    )
