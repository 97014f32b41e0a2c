"""A runtime's settings, checked before anything is opened.

Pure rules: :func:`check_settings` reads no clock, no file and no store, so
a bad setting is refused before the store is touched and costs nothing.

Invariant: a :class:`Settings` holds only values a runtime can run with
(every duration a finite count of seconds, every limit positive, a lease
long enough for a wait on a locked store).
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass, field

from actors._arguments import count, flag, instance, seconds, store_target
from actors._clock import Clock
from actors._fencing import MIN_LEASE_PER_BUSY_TIMEOUT, check_lease_config
from actors._slots import check_max_concurrent_steps
from persistence import (
    DEFAULT_BUSY_TIMEOUT,
    InvalidArgument,
    InvalidArgumentType,
    ProctorError,
    StoreTarget,
    check_payload_limit,
    retention_seconds,
)


@dataclass(frozen=True, slots=True, kw_only=True)
class Settings:
    """The checked settings of one runtime (see :class:`Runtime` for each)."""

    #: Where the store is, as ``open_store`` takes it: a SQLite file's path,
    #: or a PostgreSQL URL that may hold a password (never shown).
    db: str = field(repr=False)
    #: ``db`` read: which store, and how to show it (``target.display``).
    target: StoreTarget
    claim_runs: bool
    resume: bool
    max_payload_bytes: int
    retention: float | None
    request_timeout: float
    shutdown_timeout: float
    control_interval: float
    max_batch: int
    lease_ttl: float
    busy_timeout: float
    #: Seconds close() lets running steps finish (A4), unless given its own.
    drain: float


def check_settings(
    *,
    db: object,
    clock: object,
    claim_runs: object,
    resume: object,
    max_payload_bytes: int,
    retention: float | datetime.timedelta | None,
    request_timeout: float,
    shutdown_timeout: float,
    control_interval: float,
    max_batch: int,
    lease_ttl: float,
    busy_timeout: float | None,
    max_concurrent_steps: int | None,
    drain: float = 0.0,
) -> Settings:
    """The settings, checked; ``busy_timeout`` None gets its default (a third
    of ``lease_ttl``, at most ``DEFAULT_BUSY_TIMEOUT``).

    Raises:
        InvalidArgument: the first bad setting, named (a ``ValueError``);
            :class:`InvalidArgumentType` (also a ``TypeError``) for one of
            the wrong type.
    """
    # NaN compares false with every bound and infinity waits forever: every
    # duration is a finite count of seconds, checked before it is compared.
    seconds("shutdown_timeout", shutdown_timeout)
    seconds("drain", drain)
    for name, value in (
        ("request_timeout", request_timeout),
        ("control_interval", control_interval),
        ("lease_ttl", lease_ttl),
        ("busy_timeout", busy_timeout),
    ):
        if value is not None:
            seconds(name, value, positive=True)
    target = store_target("db", db)
    if clock is not None:
        instance("clock", clock, Clock, "a Clock (monotonic() and wait()), or None")
    count("max_batch", max_batch, minimum=1)
    if busy_timeout is None:
        busy_timeout = min(DEFAULT_BUSY_TIMEOUT, lease_ttl / MIN_LEASE_PER_BUSY_TIMEOUT)
    try:  # these shared rules raise builtins (the CLI uses them too); ours here
        if max_concurrent_steps is not None:
            check_max_concurrent_steps(max_concurrent_steps)
        payload = check_payload_limit(max_payload_bytes)
        kept = retention_seconds(retention)
        check_lease_config(lease_ttl, busy_timeout)
    except ProctorError:
        raise
    except TypeError as exc:
        raise InvalidArgumentType(str(exc)) from exc
    except ValueError as exc:
        raise InvalidArgument(str(exc)) from exc
    return Settings(
        db=target.location,
        target=target,
        claim_runs=flag("claim_runs", claim_runs),
        resume=flag("resume", resume),
        max_payload_bytes=payload,
        retention=kept,
        request_timeout=request_timeout,
        shutdown_timeout=shutdown_timeout,
        control_interval=control_interval,
        max_batch=max_batch,
        lease_ttl=lease_ttl,
        busy_timeout=busy_timeout,
        drain=drain,
    )
