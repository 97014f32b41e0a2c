"""Workflows of the signal tests (B5) that a ``proctor worker`` subprocess runs.

``approvals`` takes one signal, holds in a step (the test kills its worker
there), then takes a second one: the replay after the kill must hand the
first wait the same signal again, and the second wait the next one.
``timed`` waits with a timeout (the worker is killed once its timer is
recorded; the next worker must time out at the recorded instant).
"""

from __future__ import annotations

from actors import SignalTimeout, wait_for_signal, workflow
from tests.crash_workflows import hold, mark


@workflow(name="signals.approvals")
async def approvals(folder: str) -> list[object]:
    first = await wait_for_signal("approved")
    await hold(folder, "between")
    second = await wait_for_signal("approved")
    return [first, second]


@workflow(name="signals.timed")
async def timed(folder: str, seconds: float) -> object:
    """A wait with a timeout, after a counted step (``mark``): the payload,
    or ``"timed out"``. The process test SIGKILLs its worker right after the
    timeout's ``timer_started`` commits."""
    await mark(folder, "before")
    try:
        return await wait_for_signal("approved", timeout=seconds)
    except SignalTimeout:
        return "timed out"
