"""A run supervisor handles control (cancel, terminate) without the store.

Control must be handled within milliseconds whatever else is going on: a
supervisor never waits on the store, or on the store's other readers, while
it handles a Cancel or a Terminate. The Cancel message carries its reason.
"""

from __future__ import annotations

import threading
from typing import Any

import pytest

from actors import RunCancelled, RunState, Runtime, gather, get_context, step, workflow
from actors._messages import ControlMessage
from actors._supervisor import RunSupervisor
from tests.conftest import gate

pytestmark = pytest.mark.timeout(30)

#: Store reads a run supervisor made while handling a control message.
_READS: list[str] = []
_IN_CONTROL = threading.local()


@step()
def checking(key: str) -> str:
    ctx = get_context()
    gate(f"{key}:started").set()
    for _ in range(20_000):
        ctx.check_cancellation()
        gate(key).wait(0.001)
    return "never cancelled"


@workflow()
async def child(key: str) -> str:
    return await checking(key)


@workflow()
async def parent(key: str) -> list[str]:
    return await gather(checking(f"{key}.step"), child(f"{key}.child"))


@pytest.fixture
def spied(rt: Runtime, monkeypatch: pytest.MonkeyPatch) -> Runtime:
    """Every store read made inside RunSupervisor.handle(<control>) is noted."""
    _READS.clear()
    handle = RunSupervisor.handle

    def handle_spied(self: RunSupervisor, message: Any) -> None:
        _IN_CONTROL.on = isinstance(message, ControlMessage)
        try:
            handle(self, message)
        finally:
            _IN_CONTROL.on = False

    monkeypatch.setattr(RunSupervisor, "handle", handle_spied)
    store_type = type(rt._store)
    for name in ("find_run", "get_run", "events", "steps", "snapshot"):
        read = getattr(store_type, name)

        def read_spied(self: object, *args: Any, _read: Any = read, _name: str = name) -> Any:
            if getattr(_IN_CONTROL, "on", False):
                _READS.append(_name)
            return _read(self, *args)

        monkeypatch.setattr(store_type, name, read_spied)
    return rt


def test_cancel_of_a_tree_reads_nothing_from_the_store(spied: Runtime) -> None:
    rt = spied
    handle = rt.start(parent, "ctl")
    assert gate("ctl.step:started").wait(10)
    assert gate("ctl.child:started").wait(10)
    rt.cancel(handle.run_id, "from the message")
    with pytest.raises(RunCancelled):
        handle.result(timeout=10)
    assert _READS == []
    delivered = [e for e in handle.events() if e.type.value == "cancel_delivered"]
    assert delivered[0].data["reason"] == "from the message"
    child_run = rt.get_run(f"{handle.run_id}.1")
    assert child_run.status is RunState.CANCELLED
    assert child_run.cancel_reason == "from the message"


def test_terminate_of_a_tree_reads_nothing_from_the_store(spied: Runtime) -> None:
    rt = spied
    handle = rt.start(parent, "ctl-t")
    assert gate("ctl-t.step:started").wait(10)
    assert gate("ctl-t.child:started").wait(10)
    rt.terminate(handle.run_id, "stop")
    assert handle.wait_finished(10).status is RunState.TERMINATED
    assert rt.get_run(f"{handle.run_id}.1").status is RunState.TERMINATED
    assert _READS == []


def test_C6_the_first_recorded_cancel_is_acted_on_when_a_later_one_arrives_first(
    db: Any,
) -> None:
    """Two cancels, the first from another process (it reaches the host through
    its ControlInbox, here at a 1 s poll), the second in process (delivered
    at once): the run, its body and its log all follow the FIRST recorded.
    The second finds the run CANCELLING, changes nothing (C6) and is not
    delivered, so the supervisor never acts on it before the first arrives."""
    with Runtime(db, control_interval=1.0) as host, Runtime(db, resume=False) as other:
        handle = host.start(child, "order")
        assert gate("order:started").wait(10)
        first = other.cancel(handle.run_id, "FIRST")
        second = host.cancel(handle.run_id, "SECOND")
        assert first.changed
        assert not second.changed
        with pytest.raises(RunCancelled, match="FIRST"):
            handle.result(timeout=10)
        assert host.get_run(handle.run_id).cancel_reason == "FIRST"
        acted = {
            e.type.value: e.data.get("reason")
            for e in host.events(handle.run_id)
            if e.type.value in ("cancel_delivered", "step_cancelled", "run_cancelled")
        }
        assert acted == {
            "cancel_delivered": "FIRST",
            "step_cancelled": "FIRST",
            "run_cancelled": "FIRST",
        }
