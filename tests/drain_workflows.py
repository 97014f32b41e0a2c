"""Workflows for the drain tests (A4): a ``proctor worker`` subprocess runs them.

Each step execution appends one line (``<key> <pid>``) to a ledger file
(``PROCTOR_TEST_LEDGER``) with ``O_APPEND`` as the last thing its body does
before it returns, so a test can compare the side effects that happened
with what the log recorded, across processes.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

from actors import get_context, step, workflow

#: The environment variable naming the ledger file.
LEDGER = "PROCTOR_TEST_LEDGER"


def _append(key: str) -> None:
    fd = os.open(os.environ[LEDGER], os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, f"{key} {os.getpid()}\n".encode())
    finally:
        os.close(fd)


@step()
def work(key: str, seconds: float) -> str:
    """Works ``seconds`` in 10 ms slices, heartbeating between them (so a
    worker that asked it to stop would unwind it at once), then writes its
    side effect."""
    ctx = get_context()
    end = time.monotonic() + seconds
    while (left := end - time.monotonic()) > 0:
        ctx.heartbeat()
        time.sleep(min(left, 0.01))
    _append(key)
    return key


@workflow()
async def drained(run_key: str, pauses: list[float]) -> list[str]:
    return [await work(f"{run_key}:{i}", pause) for i, pause in enumerate(pauses)]


@step()
def beating(key: str, release: str) -> str:
    """Heartbeats every 10 ms until the file ``release`` exists; says so in
    ``<release>.started`` when it begins."""
    Path(f"{release}.started").write_text(key)
    ctx = get_context()
    while not Path(release).exists():
        ctx.heartbeat()
        time.sleep(0.01)
    _append(key)
    return key


@workflow()
async def held(key: str, release: str) -> str:
    return await beating(key, release)


@step()
def stubborn(key: str, release: str) -> str:
    """Never heartbeats, so a stop request does not reach it: sleeps in 10 ms
    slices until the file ``release`` exists (at most 60 s); says so in
    ``<release>.started`` when it begins."""
    Path(f"{release}.started").write_text(key)
    end = time.monotonic() + 60
    while not Path(release).exists() and time.monotonic() < end:
        time.sleep(0.01)
    _append(key)
    return key


@workflow()
async def ignoring(key: str, release: str) -> str:
    return await stubborn(key, release)
