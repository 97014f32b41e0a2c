"""A runtime's settings, checked before anything is opened.

Pure rules: :func:`check_settings` reads no clock, no file and no store, so
a bad setting is refused before the store is touched and costs nothing.

Invariant: a :class:`Settings` holds only values a runtime can run with
(every duration a finite count of seconds, every limit positive, a lease
long enough for a wait on a locked store).
"""

from __future__ import annotations

import datetime
import math
from dataclasses import dataclass

from actors._fencing import MIN_LEASE_PER_BUSY_TIMEOUT, check_lease_config
from actors._slots import check_max_concurrent_steps
from persistence import (
    DEFAULT_BUSY_TIMEOUT,
    InvalidArgument,
    InvalidArgumentType,
    ProctorError,
    check_payload_limit,
    retention_seconds,
)


@dataclass(frozen=True, slots=True, kw_only=True)
class Settings:
    """The checked settings of one runtime (see :class:`Runtime` for each)."""

    max_payload_bytes: int
    retention: float | None
    request_timeout: float
    shutdown_timeout: float
    control_interval: float
    max_batch: int
    lease_ttl: float
    busy_timeout: float


def check_settings(
    *,
    max_payload_bytes: int,
    retention: float | datetime.timedelta | None,
    request_timeout: float,
    shutdown_timeout: float,
    control_interval: float,
    max_batch: int,
    lease_ttl: float,
    busy_timeout: float | None,
    max_concurrent_steps: int | None,
) -> Settings:
    """The settings, checked; ``busy_timeout`` None gets its default (a third
    of ``lease_ttl``, at most ``DEFAULT_BUSY_TIMEOUT``).

    Raises:
        InvalidArgument: the first bad setting, named (a ``ValueError``);
            :class:`InvalidArgumentType` (also a ``TypeError``) for one of
            the wrong type.
    """
    try:
        return _check(
            max_payload_bytes=max_payload_bytes,
            retention=retention,
            request_timeout=request_timeout,
            shutdown_timeout=shutdown_timeout,
            control_interval=control_interval,
            max_batch=max_batch,
            lease_ttl=lease_ttl,
            busy_timeout=busy_timeout,
            max_concurrent_steps=max_concurrent_steps,
        )
    except ProctorError:
        raise
    except TypeError as exc:  # the helpers raise builtins; the API raises ours
        raise InvalidArgumentType(str(exc)) from exc
    except ValueError as exc:
        raise InvalidArgument(str(exc)) from exc


def _check(
    *,
    max_payload_bytes: int,
    retention: float | datetime.timedelta | None,
    request_timeout: float,
    shutdown_timeout: float,
    control_interval: float,
    max_batch: int,
    lease_ttl: float,
    busy_timeout: float | None,
    max_concurrent_steps: int | None,
) -> Settings:
    # NaN compares false with everything and infinity waits forever: every
    # duration is a finite count of seconds, checked before it is compared.
    for name, value in (
        ("request_timeout", request_timeout),
        ("shutdown_timeout", shutdown_timeout),
        ("control_interval", control_interval),
        ("lease_ttl", lease_ttl),
        ("busy_timeout", busy_timeout),
    ):
        if value is not None:
            _finite_seconds(name, value)
    if shutdown_timeout < 0:
        raise ValueError(f"shutdown_timeout must be >= 0 seconds, got {shutdown_timeout}")
    if control_interval <= 0:
        raise ValueError(f"control_interval must be positive, got {control_interval}")
    if max_concurrent_steps is not None:
        check_max_concurrent_steps(max_concurrent_steps)
    payload = check_payload_limit(max_payload_bytes)
    kept = retention_seconds(retention)
    if request_timeout <= 0:
        raise ValueError(f"request_timeout must be positive, got {request_timeout}")
    if max_batch < 1:
        raise ValueError(f"max_batch must be at least 1, got {max_batch}")
    if busy_timeout is None:
        busy_timeout = min(DEFAULT_BUSY_TIMEOUT, lease_ttl / MIN_LEASE_PER_BUSY_TIMEOUT)
    check_lease_config(lease_ttl, busy_timeout)
    return Settings(
        max_payload_bytes=payload,
        retention=kept,
        request_timeout=request_timeout,
        shutdown_timeout=shutdown_timeout,
        control_interval=control_interval,
        max_batch=max_batch,
        lease_ttl=lease_ttl,
        busy_timeout=busy_timeout,
    )


def _finite_seconds(name: str, value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(f"{name} must be a number of seconds, got {type(value).__name__}")
    if not math.isfinite(value):
        raise ValueError(f"{name} must be a finite number of seconds, got {value!r}")
