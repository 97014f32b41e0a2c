"""B2: ``gather()`` of handles is refused with a message that says how to
await several handles; awaiting each in turn gives every result, the steps
running in parallel meanwhile.

Temporal's workflows ``asyncio.gather`` activity handles; Proctor's
``gather()`` is a command that starts its calls under a restart strategy
(SV3), which an already started call cannot follow, so it takes calls,
and the way to wait for several handles is to await each (docs/guides/
step-handles.md, "Awaiting").
"""

from __future__ import annotations

import pytest

from actors import InvalidArgumentType, Runtime, gather, start_step, step, workflow
from tests.conftest import gate

pytestmark = pytest.mark.timeout(30)


@step()
def meet(me: str, other: str) -> str:
    """Ends only if the other step runs at the same time."""
    gate(f"{me}:started").set()
    assert gate(f"{other}:started").wait(10)
    return me


@workflow()
async def gathers_handles(key: str) -> str:
    first = start_step(meet(f"{key}.a", f"{key}.b"))
    second = start_step(meet(f"{key}.b", f"{key}.a"))
    try:
        gather(first, second)  # type: ignore[arg-type]
    except InvalidArgumentType as exc:
        message = str(exc)
    results = [await h for h in (first, second)]  # what the message says to do
    return f"{message} | {results}"


def test_B2_gather_of_handles_says_to_await_each_handle_in_turn(rt: Runtime) -> None:
    message, _, results = rt.start(gathers_handles, "g").result(timeout=15).partition(" | ")
    assert message.startswith("gather() takes step calls and child workflow calls, got ")
    assert "StepHandle" in message
    assert "await each handle in turn" in message
    assert "[await h for h in handles]" in message
    assert results == "['g.a', 'g.b']"
