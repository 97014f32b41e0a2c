"""Body-only primitives: called in a step or outside any run, one clear error at the call.

``sleep``, ``sleep_until``, ``wait_for_signal``, ``start_step``,
``start_child`` and ``gather`` only make sense in a workflow body (as
Temporal's ``workflow.*`` functions raise "Not in workflow event loop"
outside one). Each raises the same ``ProctorError`` at the call, instead of
returning a command that fails later ("Task got bad yield"). A body that
awaits something else is told every awaitable, from the one list.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Callable, Generator
from typing import Any

import pytest

from actors import (
    ProctorError,
    WorkflowFailed,
    gather,
    sleep,
    sleep_until,
    start_child,
    start_step,
    step,
    wait_for_signal,
    workflow,
)
from actors.testing import ProctorTestKit

pytestmark = pytest.mark.timeout(60)


@workflow()
async def child() -> int:
    return 1


@step()
def plain() -> int:
    return 1


PRIMITIVES: dict[str, Callable[[], object]] = {
    "sleep()": lambda: sleep(1),
    "sleep_until()": lambda: sleep_until(dt.datetime.now(dt.UTC)),
    "wait_for_signal()": lambda: wait_for_signal("go"),
    "start_step()": lambda: start_step(None),  # type: ignore[arg-type]
    "start_child()": lambda: start_child(child),
    "gather()": gather,
}


@pytest.mark.parametrize("what", list(PRIMITIVES))
def test_every_body_only_primitive_outside_a_body_raises_at_the_call(what: str) -> None:
    """Before: wait_for_signal() and gather() returned a bare command object."""
    with pytest.raises(ProctorError) as raised:
        PRIMITIVES[what]()
    assert str(raised.value).startswith(f"{what} was called outside a workflow body")


def test_every_body_only_primitive_outside_a_body_raises_in_an_event_loop_too() -> None:
    """As a caller awaiting one in plain asyncio would: no "Task got bad yield"."""

    async def main() -> list[str]:
        errors = []
        for make in PRIMITIVES.values():
            try:
                await make()  # type: ignore[misc]
            except ProctorError as exc:
                errors.append(str(exc))
        return errors

    assert len(asyncio.run(main())) == len(PRIMITIVES)


@step()
def tries_primitives() -> list[str]:
    said = []
    for what, make in PRIMITIVES.items():
        try:
            make()
        except ProctorError as exc:
            if str(exc).startswith(f"{what} was called in a step"):
                said.append(what)
    return said


@workflow()
async def calls_a_primitive_step() -> list[str]:
    return await tries_primitives()


def test_every_body_only_primitive_in_a_step_raises_at_the_call(proctor: ProctorTestKit) -> None:
    run = proctor.runtime.start(calls_a_primitive_step)
    assert run.result(timeout=10) == list(PRIMITIVES)


class Foreign:
    def __await__(self) -> Generator[Any, Any, None]:
        yield "not a proctor command"


@workflow()
async def awaits_foreign() -> None:
    await Foreign()


def test_the_error_for_a_foreign_await_lists_every_awaitable(proctor: ProctorTestKit) -> None:
    run = proctor.runtime.start(awaits_foreign)
    with pytest.raises(WorkflowFailed) as failed:
        run.result(timeout=10)
    message = str(failed.value)
    for awaitable in (
        "steps",
        "child workflows",
        "gather()",
        "sleep()",
        "sleep_until()",
        "wait_for_signal()",
        "start_child()",
        "StepHandle",
        "ChildRun",
    ):
        assert awaitable in message, (awaitable, message)
