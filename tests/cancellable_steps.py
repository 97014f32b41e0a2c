"""Steps of the three kinds every cancel test needs, shared by the tests of
step handles (B2) and cancel scopes (B3): one that checks (heartbeats), one
that never checks (C4), one that swallows the cancel. Each waits on the gate
named by its ``key``, signals ``<key>:started`` and notes how it ended under
``<key>:step``."""

from __future__ import annotations

from actors import CancellationError, get_context, step
from tests.conftest import gate, note


@step()
def heartbeating(key: str) -> str:
    """Checks (heartbeats) until its gate opens; notes how it ended."""
    ctx = get_context()
    gate(f"{key}:started").set()
    try:
        while not gate(key).wait(0.001):
            ctx.heartbeat()
    except BaseException as exc:
        note(f"{key}:step", type(exc).__name__)
        raise
    note(f"{key}:step", "returned")
    return key


@step()
def never_checks(key: str) -> str:
    """Never looks at its mailbox: runs until its gate opens (C4)."""
    gate(f"{key}:started").set()
    gate(key).wait(20)
    note(f"{key}:step", "returned")
    return key


@step()
def swallows(key: str) -> str:
    """Meets the cancel at a check, catches it and returns."""
    ctx = get_context()
    gate(f"{key}:started").set()
    try:
        while not gate(key).wait(0.001):
            ctx.check_cancellation()
    except CancellationError:
        note(f"{key}:step", "swallowed")
        return "swallowed"
    note(f"{key}:step", "returned")
    return key


@step()
def started(key: str) -> None:
    """Returns once the step ``key`` is running."""
    gate(f"{key}:started").wait(20)
