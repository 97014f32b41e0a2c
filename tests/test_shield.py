"""Shield: DESIGN.md rules S1-S4, through the public API."""

from __future__ import annotations

import time

import pytest

from actors import (
    CancellationError,
    Context,
    RunCancelled,
    RunState,
    Runtime,
    get_context,
    shield,
    step,
    workflow,
)
from tests.conftest import NOTES, event_types, gate, note

pytestmark = pytest.mark.timeout(30)


@step()
def wait_then_check(key: str) -> str:
    """Blocks until released, then checks: inside a body shield it must not raise."""
    gate(f"{key}:started").set()
    gate(key).wait(20)
    get_context().check_cancellation()
    return f"{key} ok"


def wait_until_cancelling(ctx: Context) -> None:
    """Inside a shield: poll (with a deadline) until the cancel has reached us."""
    deadline = time.monotonic() + 10
    while not ctx.is_cancelling and time.monotonic() < deadline:
        time.sleep(0.001)


@step()
def quick(value: int) -> int:
    return value


def test_S1_body_shield_buffers_cancel_and_steps_started_inside_do_not_see_it(
    rt: Runtime,
) -> None:
    @workflow()
    async def wf(key: str) -> str:
        with shield():
            kept = await wait_then_check(key)
            note(key, kept)
            note(key, get_context().is_cancelling)
        await quick(1)  # first checkpoint after the shield: raises here
        return "unreachable"

    handle = rt.start(wf, "s1")
    assert gate("s1:started").wait(10)
    rt.cancel(handle.run_id, "during shield")
    gate("s1").set()
    with pytest.raises(RunCancelled):
        handle.result(timeout=10)
    assert NOTES["s1"] == ["s1 ok", True]
    types = event_types(rt, handle.run_id)
    assert "cancel_buffered" in types
    assert types.index("cancel_buffered") < types.index("step_completed")
    assert types[-3:] == ["shield_exited", "cancel_delivered", "run_cancelled"]


def test_S1_shield_in_a_sync_step_and_an_async_step(rt: Runtime) -> None:
    @step()
    def sync_step(key: str) -> str:
        ctx = get_context()
        with shield():
            gate(f"{key}:started").set()
            wait_until_cancelling(ctx)
            ctx.check_cancellation()  # buffered: does not raise
            note(key, "inside")
        ctx.check_cancellation()  # the buffered cancel takes effect here
        return "unreachable"

    @step()
    async def async_step(key: str) -> str:
        ctx = get_context()
        async with shield():
            gate(f"{key}:started").set()
            wait_until_cancelling(ctx)
            await ctx.check_cancellation()
            note(key, "inside")
        await ctx.check_cancellation()
        return "unreachable"

    @workflow()
    async def wf(kind: str, key: str) -> str:
        return await (sync_step(key) if kind == "sync" else async_step(key))

    for kind in ("sync", "async"):
        key = f"s1{kind}"
        handle = rt.start(wf, kind, key)
        assert gate(f"{key}:started").wait(10)
        rt.cancel(handle.run_id)
        with pytest.raises(RunCancelled):
            handle.result(timeout=10)
        assert NOTES[key] == ["inside"]
        types = event_types(rt, handle.run_id)
        assert types.index("cancel_buffered") < types.index("shield_exited")
        assert types.index("shield_exited") < types.index("cancel_delivered")


def test_S2_nested_shields_buffer_until_the_outermost_exits(rt: Runtime) -> None:
    @workflow()
    async def wf(key: str) -> str:
        with shield():
            with shield():
                await wait_then_check(key)
            note(key, await quick(1))  # still inside the outer shield: runs
        note(key, "after shields")  # plain code: not a checkpoint
        await quick(2)
        return "unreachable"

    handle = rt.start(wf, "s2")
    assert gate("s2:started").wait(10)
    rt.cancel(handle.run_id)
    gate("s2").set()
    with pytest.raises(RunCancelled):
        handle.result(timeout=10)
    assert NOTES["s2"] == [1, "after shields"]
    depths = [
        (e.type.value, e.data["depth"])
        for e in rt.events(handle.run_id)
        if e.type.value.startswith("shield")
    ]
    assert depths == [
        ("shield_entered", 1),
        ("shield_entered", 2),
        ("shield_exited", 1),
        ("shield_exited", 0),
    ]


def test_S2_buffered_cancel_is_kept_when_body_catches_nothing_until_after(rt: Runtime) -> None:
    @workflow()
    async def wf(key: str) -> str:
        try:
            with shield():
                await wait_then_check(key)
            await quick(1)
        except CancellationError:
            note(key, "raised after the shield")
            raise
        return "unreachable"

    handle = rt.start(wf, "s2b")
    assert gate("s2b:started").wait(10)
    rt.cancel(handle.run_id)
    gate("s2b").set()
    assert handle.wait_finished(10).status is RunState.CANCELLED
    assert NOTES["s2b"] == ["raised after the shield"]


def test_S3_terminate_ignores_shields(rt: Runtime) -> None:
    @step()
    def shielded_loop(key: str) -> None:
        ctx = get_context()
        with shield():
            gate(f"{key}:started").set()
            try:
                for _ in range(20_000):
                    ctx.check_cancellation()
                    gate(key).wait(0.001)
            except BaseException as exc:
                note(key, type(exc).__name__)
                raise

    @workflow()
    async def wf(key: str) -> None:
        with shield():
            await shielded_loop(key)

    handle = rt.start(wf, "s3")
    assert gate("s3:started").wait(10)
    rt.cancel(handle.run_id)  # buffered by both shields
    result = rt.terminate(handle.run_id, "now")
    assert result.status is RunState.TERMINATED
    assert handle.status() is RunState.TERMINATED
    rt.close()  # waits for the step thread: it must unwind
    assert NOTES["s3"] == ["Terminated"]


def test_S4_shield_entry_exit_and_buffering_are_in_the_log(rt: Runtime) -> None:
    @workflow()
    async def wf(key: str) -> str:
        with shield():
            await wait_then_check(key)
        return "done"

    handle = rt.start(wf, "s4")
    assert gate("s4:started").wait(10)
    rt.cancel(handle.run_id, "why not")
    gate("s4").set()
    # No checkpoint after the shield: the body returns, the run completes (C5).
    assert handle.result(timeout=10) == "done"
    events = {e.type.value: e for e in rt.events(handle.run_id)}
    assert events["shield_entered"].data == {"depth": 1}
    assert events["cancel_buffered"].data == {"reason": "why not", "depth": 1}
    assert events["shield_exited"].data == {"depth": 0, "cancel_pending": True}
