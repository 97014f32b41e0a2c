"""Restart of a finished run (A7): a new linked run, optionally reusing calls.

``rt.restart(run_id, from_call=None)`` and ``proctor runs restart``: a new run
with the same workflow and arguments, linked both ways (``restarted_from``
on the new run; ``Store.restarted_as`` and ``runs status`` on the old one);
with ``from_call=N`` the recorded results of calls ``0..N-1`` are reused
without running them (DBOS's fork, Temporal's reset). Only a finished run
restarts; the old run is never written to.
"""

from __future__ import annotations

import contextlib
import json
from pathlib import Path
from typing import Any

import pytest

from actors import (
    InvalidArgument,
    InvalidArgumentType,
    RetryPolicy,
    RunCancelled,
    RunIdInUse,
    RunNotFinished,
    RunNotFound,
    RunState,
    Runtime,
    StepFailed,
    WorkflowFailed,
    get_context,
    shield,
    start_child,
    step,
    workflow,
)
from persistence import EventType, open_store, restart_plan
from tests.cli_workflows import long_job, three_marks
from tests.conftest import NOTES, gate, note, open_rt, wait_until
from tests.conftest import run_cli as proctor

pytestmark = pytest.mark.timeout(60)


@step()
def work(key: str, n: int) -> int:
    NOTES.setdefault(key, []).append(n)
    return n * 10


@step(retry=RetryPolicy(max_attempts=1))
def flaky(key: str, n: int) -> int:
    NOTES.setdefault(key, []).append(n)
    if NOTES.get(f"{key}.fail", True):
        raise RuntimeError(f"flaky {n}")
    return n * 10


@step()
def gated(key: str, n: int) -> int:
    NOTES.setdefault(key, []).append(n)
    note(f"{key}.started.{n}", True)
    ctx = get_context()
    while not gate(f"{key}.{n}").wait(0.001):  # checks its mailbox while it waits
        ctx.check_cancellation()
    return n * 10


@workflow()
async def three(key: str) -> list[int]:
    """Calls 0 and 1 are work; call 2 may fail (flaky); its result ends the run."""
    a = await work(key, 0)
    with shield():  # a body record inside the reused prefix (S4)
        b = await work(key, 1)
    c = await flaky(key, 2)
    return [a, b, c]


@workflow()
async def three_gated(key: str) -> list[int]:
    a = await work(key, 0)
    with shield():
        b = await work(key, 1)
    c = await gated(key, 2)
    return [a, b, c]


@workflow()
async def child(key: str, n: int) -> int:
    return await work(key, n)


@workflow()
async def with_children(key: str) -> list[int]:
    """Call 0 a child run awaited at once, call 1 one started with start_child(),
    call 2 a step that may fail."""
    a = await child(key, 0)
    started = await start_child(child, key, 1)
    b = await started
    return [a, b, await flaky(key, 2)]


@workflow()
async def caught(key: str) -> str:
    """Call 0 fails for good; the body goes on, so the failure is part of its history."""
    with contextlib.suppress(StepFailed):
        await flaky(key, 0)
    return str(await work(key, 1))


def calls_run(key: str) -> list[int]:
    return list(NOTES.get(key, []))


def failed_run(rt: Runtime, key: str) -> str:
    handle = rt.start(three, key)
    with pytest.raises(WorkflowFailed):
        handle.result(timeout=10)
    return handle.run_id


# -- restart through the API ------------------------------------------------------------------


def test_A7_a_restart_is_a_new_run_of_the_same_workflow_and_arguments_linked_both_ways(
    rt: Runtime,
) -> None:
    old = failed_run(rt, "a7-link")
    old_log = rt.events(old)
    NOTES["a7-link.fail"] = False
    new = rt.restart(old)
    assert new.run_id != old
    assert new.result(timeout=10) == [0, 10, 20]
    record = rt.get_run(new.run_id)
    assert (record.workflow, record.args) == (three.name, ["a7-link"])
    assert record.restarted_from == old
    assert rt._store.restarted_as(old) == [new.run_id]
    # The old run is untouched: still failed, its log as it was (append-only).
    assert rt.get_run(old).status is RunState.FAILED
    assert rt.events(old) == old_log
    assert calls_run("a7-link") == [0, 1, 2, 0, 1, 2]  # no from_call: everything runs again


def test_A7_from_call_reuses_the_calls_before_it_without_running_them(rt: Runtime) -> None:
    old = failed_run(rt, "a7-fork")
    NOTES["a7-fork.fail"] = False
    new = rt.restart(old, from_call=2)
    assert new.result(timeout=10) == [0, 10, 20]
    assert calls_run("a7-fork") == [0, 1, 2, 2]  # calls 0 and 1 did not run again
    log = rt.events(new.run_id)
    reused = [e for e in log if e.type is EventType.CALL_REUSED]
    assert [(e.call, e.step, e.data["from_run"]) for e in reused] == [
        (0, "tests.test_restart.work", old),
        (1, "tests.test_restart.work", old),
    ]
    assert [e.call for e in log if e.type is EventType.STEP_STARTED] == [2]
    # The body's own records are written live: its shield, once.
    assert [e.type for e in log].count(EventType.SHIELD_ENTERED) == 1
    assert rt.get_run(new.run_id).restarted_from == old


def test_A7_a_reused_failure_is_raised_again_where_the_body_caught_it(rt: Runtime) -> None:
    handle = rt.start(caught, "a7-caught")
    assert handle.result(timeout=10) == "10"
    NOTES["a7-caught.fail"] = False  # if call 0 ran again, it would succeed now
    new = rt.restart(handle.run_id, from_call=1)
    assert new.result(timeout=10) == "10"
    assert calls_run("a7-caught") == [0, 1, 1]


def test_A7_reusing_every_call_runs_no_step(rt: Runtime) -> None:
    NOTES["a7-all.fail"] = False  # before the start: its step may run at once
    handle = rt.start(three, "a7-all")
    assert handle.result(timeout=10) == [0, 10, 20]
    new = rt.restart(handle.run_id, from_call=3)
    assert new.result(timeout=10) == [0, 10, 20]
    assert calls_run("a7-all") == [0, 1, 2]
    assert not [e for e in rt.events(new.run_id) if e.type is EventType.STEP_STARTED]


def test_A7_a_restart_of_a_restart_reuses_the_reused_calls(rt: Runtime) -> None:
    first = failed_run(rt, "a7-twice")
    second = rt.restart(first, from_call=2)
    with pytest.raises(WorkflowFailed):
        second.result(timeout=10)
    NOTES["a7-twice.fail"] = False
    third = rt.restart(second.run_id, from_call=2)
    assert third.result(timeout=10) == [0, 10, 20]
    assert calls_run("a7-twice") == [0, 1, 2, 2, 2]
    assert rt._store.restarted_as(first) == [second.run_id]
    assert rt._store.restarted_as(second.run_id) == [third.run_id]


def test_A7_only_a_finished_run_can_be_restarted(rt: Runtime) -> None:
    running = rt.start(three_gated, "a7-running")
    wait_until(lambda: NOTES.get("a7-running.started.2"))
    before = len(rt.list_runs())
    with pytest.raises(RunNotFinished, match="only a finished run"):
        rt.restart(running.run_id)
    with pytest.raises(RunNotFound):
        rt.restart("no-such-run")
    assert len(rt.list_runs()) == before
    gate("a7-running.2").set()
    assert running.result(timeout=10) == [0, 10, 20]


@pytest.mark.parametrize(
    ("from_call", "error", "message"),
    [
        (-1, InvalidArgument, "between 0 and 3"),
        (4, InvalidArgument, "between 0 and 3"),
        ("1", InvalidArgumentType, "must be an int"),
        (True, InvalidArgumentType, "must be an int"),
        (1.0, InvalidArgumentType, "must be an int"),
    ],
)
def test_A7_from_call_out_of_range_is_refused_and_creates_nothing(
    rt: Runtime, from_call: Any, error: type[Exception], message: str
) -> None:
    old = failed_run(rt, "a7-range")
    before = len(rt.list_runs())
    with pytest.raises(error, match=message):
        rt.restart(old, from_call=from_call)
    assert len(rt.list_runs()) == before
    assert rt._store.restarted_as(old) == []


def test_A7_from_call_past_a_call_that_did_not_complete_is_refused(rt: Runtime) -> None:
    handle = rt.start(three_gated, "a7-cancelled")
    wait_until(lambda: NOTES.get("a7-cancelled.started.2"))
    rt.terminate(handle.run_id)
    with pytest.raises(InvalidArgument, match=r"between 0 and 2 \(call 2 .*cannot be reused"):
        rt.restart(handle.run_id, from_call=3)
    gate("a7-cancelled.2").set()
    new = rt.restart(handle.run_id, from_call=2)
    wait_until(lambda: NOTES.get("a7-cancelled.started.2") and len(calls_run("a7-cancelled")) == 4)
    assert new.result(timeout=10) == [0, 10, 20]
    assert calls_run("a7-cancelled") == [0, 1, 2, 2]


def test_A7_a_restart_with_a_chosen_id_is_idempotent(rt: Runtime) -> None:
    old = failed_run(rt, "a7-idem")
    NOTES["a7-idem.fail"] = False
    first = rt.restart(old, from_call=2, run_id="retry-of-old")
    again = rt.restart(old, from_call=2, run_id="retry-of-old")
    assert first.run_id == again.run_id == "retry-of-old"
    assert again.result(timeout=10) == [0, 10, 20]
    assert calls_run("a7-idem") == [0, 1, 2, 2]
    assert rt._store.restarted_as(old) == ["retry-of-old"]
    # The same workflow and arguments, but not a restart of that run: another start.
    rt.start(three, "a7-idem", run_id="plain").result(timeout=10)
    with pytest.raises(RunIdInUse, match="another origin"):
        rt.restart(old, run_id="plain")
    other = rt.start(three, "a7-idem-other")
    with pytest.raises(WorkflowFailed):
        other.result(timeout=10)
    with pytest.raises(RunIdInUse, match="other arguments"):
        rt.restart(other.run_id, run_id="retry-of-old")


def test_A7_a_restarted_run_in_flight_is_resumed_with_its_reused_calls(
    runtimes: list[Runtime], db: Path
) -> None:
    first = open_rt(runtimes, db)
    old = first.start(three_gated, "a7-flight")
    wait_until(lambda: NOTES.get("a7-flight.started.2"))
    gate("a7-flight.2").set()
    assert old.result(timeout=10) == [0, 10, 20]
    gate("a7-flight.2").clear()
    NOTES.pop("a7-flight.started.2")
    new = first.restart(old.run_id, from_call=2)
    wait_until(lambda: NOTES.get("a7-flight.started.2"))
    first.kill()
    gate("a7-flight.2").set()
    second = open_rt(runtimes, db)
    assert second.handle(new.run_id).result(timeout=10) == [0, 10, 20]
    # Calls 0 and 1 never ran again: reused, then replayed from the new run's own log.
    assert calls_run("a7-flight")[:3] == [0, 1, 2]
    assert 0 not in calls_run("a7-flight")[3:]
    assert 1 not in calls_run("a7-flight")[3:]


# -- restart through the CLI ------------------------------------------------------------------


def test_A7_cli_runs_restart_from_a_call_for_a_worker_to_run(
    runtimes: list[Runtime], db: Path, folder: Path
) -> None:
    rt = open_rt(runtimes, db, claim_runs=True)
    old = rt.start(three_marks, str(folder), "k")
    assert old.result(timeout=10) == 3
    result = proctor(db, "runs", "restart", old.run_id, "--from-call", "2")
    assert result.exit_code == 0, result.output
    new_id = result.stdout.strip()
    assert "reusing its calls 0 to 1" in result.stderr
    assert rt.handle(new_id).result(timeout=10) == 3
    # Calls 0 and 1 (markers a and b) did not run again; call 2 (c) did.
    assert [(folder / f"k.{n}").read_text() for n in "abc"] == ["x\n", "x\n", "x\nx\n"]
    status_new = proctor(db, "runs", "status", new_id)
    assert f"restarted from {old.run_id}" in " ".join(status_new.stdout.split())
    status_old = proctor(db, "runs", "status", old.run_id, "--json")
    assert json.loads(status_old.stdout)["restarted_as"] == [new_id]
    assert (
        json.loads(proctor(db, "runs", "status", new_id, "--json").stdout)["run"]["restarted_from"]
        == old.run_id
    )
    tree = proctor(db, "runs", "tree", new_id)
    assert f"restarted from {old.run_id}" in tree.stdout
    assert "reused" in tree.stdout
    tree_old = json.loads(proctor(db, "runs", "tree", old.run_id, "--json").stdout)
    assert tree_old["restarted_as"] == [new_id]
    # The same restart again (same new id) starts nothing.
    again = proctor(db, "runs", "restart", old.run_id, "--run-id", new_id, "--from-call", "2")
    assert again.exit_code == 0, again.output
    assert "already existed" in again.stderr


def test_A7_cli_runs_restart_refuses_what_it_cannot_do(
    runtimes: list[Runtime], db: Path, folder: Path
) -> None:
    rt = open_rt(runtimes, db)
    done = rt.start(three_marks, str(folder), "r")
    assert done.result(timeout=10) == 3
    running = rt.start(long_job, str(folder), "hold")
    wait_until((folder / "hold.started").exists)
    count = len(rt.list_runs())
    assert proctor(db, "runs", "restart", running.run_id).exit_code == 4
    assert proctor(db, "runs", "restart", "nope").exit_code == 3
    too_far = proctor(db, "runs", "restart", done.run_id, "--from-call", "4")
    assert too_far.exit_code == 2
    assert "between 0 and 3" in too_far.stderr
    assert proctor(db, "runs", "restart", done.run_id, "--from-call", "-1").exit_code == 2
    taken = proctor(db, "runs", "restart", done.run_id, "--run-id", running.run_id)
    assert taken.exit_code == 6
    assert len(rt.list_runs()) == count
    (folder / "hold.release").touch()
    assert running.result(timeout=10) == "hold"


def test_A7_a_cancelled_run_restarts_without_the_cancel(rt: Runtime) -> None:
    """The new run is not cancelled: the old run's cancel is not replayed."""
    handle = rt.start(three_gated, "a7-cancel")
    wait_until(lambda: NOTES.get("a7-cancel.started.2"))
    rt.cancel(handle.run_id)  # call 2 meets it at its next check: cancelled
    with pytest.raises(RunCancelled):
        handle.result(timeout=10)
    with pytest.raises(InvalidArgument, match=r"call 2 .*ended step_cancelled"):
        rt.restart(handle.run_id, from_call=3)
    gate("a7-cancel.2").set()
    new = rt.restart(handle.run_id, from_call=2)
    assert new.result(timeout=10) == [0, 10, 20]
    assert calls_run("a7-cancel") == [0, 1, 2, 2]
    assert rt.get_run(handle.run_id).status is RunState.CANCELLED


def test_A7_a_restart_whose_runtime_died_before_it_started_replays_its_reused_calls(
    rt: Runtime, db: Path
) -> None:
    """The takeover of a restart that never started (its runtime died right
    after creating it) replays the reused calls too."""
    old = failed_run(rt, "a7-orphan")
    with open_store(db) as store:
        store.register_runtime("rt-dead", ttl=10)
        store.expire_lease("rt-dead", "killed")
        group = restart_plan(store, old, 2, "orphan-restart", owner="rt-dead")
        assert all(o.accepted for o in store.append(group))
    NOTES["a7-orphan.fail"] = False
    wait_until(lambda: rt.get_run("orphan-restart").status.is_terminal)
    assert rt.handle("orphan-restart").result(timeout=10) == [0, 10, 20]
    assert calls_run("a7-orphan") == [0, 1, 2, 2]
    assert "run_resumed" in [e.type.value for e in rt.events("orphan-restart")]


def test_A7_the_calls_reused_may_be_child_runs(rt: Runtime) -> None:
    handle = rt.start(with_children, "a7-child")
    with pytest.raises(WorkflowFailed):
        handle.result(timeout=10)
    NOTES["a7-child.fail"] = False
    new = rt.restart(handle.run_id, from_call=2)
    assert new.result(timeout=10) == [0, 10, 20]
    assert calls_run("a7-child") == [0, 1, 2, 2]  # neither child ran again
    assert rt.list_runs(parent_run_id=new.run_id) == []
    reused = [e for e in rt.events(new.run_id) if e.type is EventType.CALL_REUSED]
    assert [(e.call, e.data["kind"]) for e in reused] == [(0, "child"), (1, "child")]
