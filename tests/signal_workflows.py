"""Workflows of the signal tests (B5) that a ``proctor worker`` subprocess runs.

``approvals`` takes one signal, holds in a step (the test kills its worker
there), then takes a second one: the replay after the kill must hand the
first wait the same signal again, and the second wait the next one.
"""

from __future__ import annotations

from actors import wait_for_signal, workflow
from tests.crash_workflows import hold


@workflow(name="signals.approvals")
async def approvals(folder: str) -> list[object]:
    first = await wait_for_signal("approved")
    await hold(folder, "between")
    second = await wait_for_signal("approved")
    return [first, second]
