"""B4 run timeouts: a run is cancelled at its deadline (source ``timeout``),
terminated after ``cancel_grace`` (C8), and a restart does not reset the clock.

Peers: Temporal's WorkflowExecutionTimeout (counted from the start request,
across retries and continue-as-new; a child workflow has its own), DBOS's
workflow timeouts (a deadline recorded with the workflow, enforced after a
recovery), OTP's supervisor shutdown (a shutdown signal, then kill after the
shutdown time). In-process tests run on the test kit's virtual clock: an
hour passes at once; the kill -9 tests are in test_run_timeout_processes.py.
"""

from __future__ import annotations

import asyncio
import json
import math
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from actors import (
    Client,
    FakeClock,
    InvalidArgument,
    InvalidArgumentType,
    RunHandle,
    RunIdInUse,
    RunState,
    Runtime,
    workflow,
)
from actors._messages import PendingTimers
from actors.testing import ProctorTestKit
from persistence import EventRecord, EventType
from tests import timeout_workflows as wf
from tests.conftest import open_rt, run_cli, wait_until

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
def kit(tmp_path: Path) -> Iterator[ProctorTestKit]:
    with ProctorTestKit(tmp_path / "kit.db") as k:
        yield k


@pytest.fixture
def folder(tmp_path: Path) -> Iterator[str]:
    path = tmp_path / "markers"
    path.mkdir()
    yield str(path)
    for key in ("a", "b", "c"):  # let any step still held return (no thread left)
        (path / f"{key}.release").touch()


def of_type(run: RunHandle[Any], type_: EventType) -> list[EventRecord]:
    return [e for e in run.events() if e.type is type_]


def armed(kit: ProctorTestKit) -> frozenset[object]:
    """The tokens of the runtime's Timers that have not fired or been cancelled."""
    tokens: frozenset[object] = kit.runtime._tree.timers.ask(PendingTimers(), timeout=5)
    return tokens


def no_cancel_for(run: RunHandle[Any], seconds: float = 0.2, *, had: int = 0) -> None:
    """No cancel beyond the ``had`` it had comes within ``seconds`` of real time
    (a check of absence: it polls the log, and fails at the first one)."""
    until = time.monotonic() + seconds
    while time.monotonic() < until:
        assert len(of_type(run, EventType.CANCEL_REQUESTED)) == had
        time.sleep(0.01)


def test_B4_a_run_is_cancelled_at_its_deadline_with_source_timeout_and_cleans_up_in_a_shield(
    kit: ProctorTestKit, folder: str
) -> None:
    run = kit.runtime.start(wf.patient, folder, "a")
    kit.wait_for_event(run, "step_started")
    created = run.events()[0]
    assert created.data["timeout"] == 3600
    assert created.data["deadline"] == pytest.approx(kit.clock.time() + 3600, abs=1e-6)
    kit.clock.advance(3599.9)
    no_cancel_for(run)
    kit.clock.advance(0.1)  # the hour is up: at once, on the virtual clock
    record = run.wait_finished(timeout=10)
    assert record.status is RunState.CANCELLED
    (cancel,) = of_type(run, EventType.CANCEL_REQUESTED)
    assert cancel.data["source"] == "timeout"
    assert cancel.data["reason"] == "run timed out after 3600 s"
    assert record.cancel_source == "timeout"
    assert Path(folder, "a.cleaned").exists()  # the shielded cleanup ran (S1)
    assert ("timeout", run.run_id) not in armed(kit)


def test_B4_a_body_that_ignores_the_cancel_is_terminated_after_cancel_grace(
    kit: ProctorTestKit, folder: str
) -> None:
    """C8: OTP's shutdown timeout, then kill; the terminate's source is ``grace``."""
    run = kit.runtime.start(wf.stubborn, folder, "a")
    kit.wait_for_event(run, "step_started")
    kit.clock.advance(60)
    kit.wait_for_event(run, "cancel_requested")
    assert run.status() is RunState.CANCELLING  # the step never checks
    kit.clock.advance(4.9)
    assert run.status() is RunState.CANCELLING
    kit.clock.advance(0.1)
    record = run.wait_finished(timeout=10)
    assert record.status is RunState.TERMINATED
    (terminate,) = of_type(run, EventType.TERMINATE_REQUESTED)
    assert terminate.data["source"] == "grace"
    assert "run timed out after 60 s" in terminate.data["reason"]
    Path(folder, "a.release").touch()  # the abandoned step thread unwinds (T3)


def test_B4_start_timeout_overrides_the_decorator(kit: ProctorTestKit, folder: str) -> None:
    run = kit.runtime.start(wf.patient, folder, "a", timeout=10)
    kit.wait_for_event(run, "step_started")
    kit.clock.advance(10)
    assert run.wait_finished(timeout=10).status is RunState.CANCELLED
    assert of_type(run, EventType.CANCEL_REQUESTED)[0].data["reason"] == (
        "run timed out after 10 s"
    )


def test_B4_start_timeout_gives_a_workflow_without_one_a_deadline(
    kit: ProctorTestKit, folder: str
) -> None:
    run = kit.runtime.start(wf.unbounded, folder, "a", timeout=2.5)
    kit.wait_for_event(run, "step_started")
    kit.clock.advance(2.5)
    assert run.wait_finished(timeout=10).status is RunState.CANCELLED


def test_B4_a_run_without_a_timeout_has_no_deadline_and_no_timer(
    kit: ProctorTestKit, folder: str
) -> None:
    run = kit.runtime.start(wf.unbounded, folder, "a")
    kit.wait_for_event(run, "step_started")
    assert "deadline" not in run.events()[0].data
    assert not [t for t in armed(kit) if isinstance(t, tuple) and t[0] == "timeout"]
    Path(folder, "a.release").touch()
    assert run.result(timeout=10) == "a"


def test_B4_a_run_that_finishes_before_its_deadline_is_unaffected_and_leaves_no_timer(
    kit: ProctorTestKit,
) -> None:
    run = kit.runtime.start(wf.brisk, 7)
    assert run.result(timeout=10) == 7
    # The supervisor's exit disarms the deadline (its Guardian hears of it).
    wait_until(lambda: ("timeout", run.run_id) not in armed(kit))
    kit.clock.advance(7200)
    assert run.record().status is RunState.COMPLETED
    assert of_type(run, EventType.CANCEL_REQUESTED) == []


def test_B4_a_restart_does_not_reset_the_clock(kit: ProctorTestKit, folder: str) -> None:
    """The deadline is in the run's log: the new runtime fires it at the original instant."""
    run = kit.runtime.start(wf.patient, folder, "a")
    kit.wait_for_event(run, "step_started")
    kit.clock.advance(1800)
    kit.restart()  # as kill -9, then a new process on the same store
    kit.wait_for_event(run, "run_resumed")
    kit.wait_for_event(run, "step_started", count=2)
    kit.clock.advance(1799.9)
    no_cancel_for(run)
    kit.clock.advance(0.1)  # 3600 s after the start, not after the restart
    assert run.wait_finished(timeout=10).status is RunState.CANCELLED
    assert of_type(run, EventType.CANCEL_REQUESTED)[0].data["source"] == "timeout"


def test_B4_a_deadline_that_passed_while_no_runtime_was_alive_fires_at_once_on_resume(
    kit: ProctorTestKit, folder: str
) -> None:
    run = kit.runtime.start(wf.patient, folder, "a")
    kit.wait_for_event(run, "step_started")
    kit.runtime.kill()
    kit.clock.advance(7200)  # nobody hosts the run meanwhile
    kit.restart()
    record = run.wait_finished(timeout=10)  # no clock advance needed
    assert record.status is RunState.CANCELLED
    assert of_type(run, EventType.CANCEL_REQUESTED)[0].data["source"] == "timeout"


def test_B4_a_timed_out_run_taken_over_is_not_cancelled_twice(
    kit: ProctorTestKit, folder: str
) -> None:
    """Once the timeout's cancel is recorded, a new owner does not fire the
    deadline again (the grace, recorded with it, is re-armed from the request
    as for any cancel, C8, D3)."""
    run = kit.runtime.start(wf.shielded, folder, "a")
    kit.wait_for_event(run, "step_started")
    kit.clock.advance(60)
    kit.wait_for_event(run, "cancel_buffered")  # CANCELLING, the step in a shield
    kit.restart()
    kit.wait_for_event(run, "run_resumed")
    kit.wait_for_event(run, "step_started", count=2)  # hosted by the new runtime
    kit.clock.advance(1)
    no_cancel_for(run, had=1)  # a second one would come at once
    Path(folder, "a.release").touch()
    assert run.wait_finished(timeout=10).status.is_terminal
    assert len(of_type(run, EventType.CANCEL_REQUESTED)) == 1


def test_B4_C7_the_parents_timeout_cancels_its_child_run(kit: ProctorTestKit, folder: str) -> None:
    """A child run is bounded by its parent's timeout: the parent's cancel flows
    down (C7); the child records source ``parent``."""
    run = kit.runtime.start(wf.parent_of_unbounded, folder, "a")
    wait_until(Path(folder, "a.started").exists)
    kit.clock.advance(30)
    assert run.wait_finished(timeout=10).status is RunState.CANCELLED
    (child,) = kit.runtime.list_runs(parent_run_id=run.run_id)
    child_run = kit.runtime.handle(child.run_id)
    assert child_run.wait_finished(timeout=10).status is RunState.CANCELLED
    assert of_type(child_run, EventType.CANCEL_REQUESTED)[0].data["source"] == "parent"
    assert "deadline" not in child_run.events()[0].data


def test_B4_a_pending_run_times_out_when_a_worker_claims_it_after_its_deadline(
    db: Path, runtimes: list[Runtime], folder: str
) -> None:
    """Created by a Client, claimed by nobody until its deadline passed: the
    runtime that claims it cancels it at once, PENDING time counted
    (Temporal's execution timeout counts from the start request too)."""
    with Client(db, create=True) as client:
        run_id = client.start(wf.patient, folder, "a", timeout=5).run_id
    clock = FakeClock()
    clock.advance(10)  # its wall clock reads 10 s after the client's start
    worker = open_rt(runtimes, db, clock=clock, claim_runs=True)
    run = worker.handle(run_id)
    assert run.wait_finished(timeout=10).status is RunState.CANCELLED
    (claimed,) = of_type(run, EventType.RUN_CLAIMED)
    (cancel,) = of_type(run, EventType.CANCEL_REQUESTED)
    assert cancel.data["source"] == "timeout"
    assert cancel.seq > claimed.seq


# -- the reserved keyword, and bad input (A2, A3) -----------------------------------------


@pytest.mark.parametrize(
    ("timeout", "error", "words"),
    [
        (0, InvalidArgument, "positive"),
        (-1, InvalidArgument, "positive"),
        (math.nan, InvalidArgument, "finite"),
        (math.inf, InvalidArgument, "finite"),
        (True, InvalidArgumentType, "must be a number"),
        ("5", InvalidArgumentType, "must be a number"),
    ],
)
def test_B4_a_bad_timeout_is_a_clear_error_and_nothing_is_written(
    kit: ProctorTestKit, tmp_path: Path, timeout: object, error: type[Exception], words: str
) -> None:
    with pytest.raises(error, match=words) as caught:
        kit.runtime.start(wf.brisk, 1, timeout=timeout)  # type: ignore[arg-type]
    assert "timeout" in str(caught.value)
    with Client(kit.db) as client, pytest.raises(error, match=words):
        client.start(wf.brisk, 1, timeout=timeout)  # type: ignore[arg-type]
    assert kit.runtime.list_runs() == []


@pytest.mark.parametrize(
    ("options", "words"),
    [
        ({"timeout": 0}, "positive"),
        ({"timeout": math.inf}, "finite"),
        ({"timeout": False}, "must be a number"),
        ({"timeout": 5, "cancel_grace": -1}, "at least 0"),
        ({"timeout": 5, "cancel_grace": math.nan}, "finite"),
        ({"cancel_grace": 5}, "needs a timeout"),
    ],
)
def test_B4_bad_workflow_timeout_options_are_refused_at_definition(
    options: dict[str, Any], words: str
) -> None:
    with pytest.raises((InvalidArgument, InvalidArgumentType), match=words):

        @workflow(name="b4.bad", **options)
        async def bad() -> None:
            return None


def test_B4_start_reserves_the_keyword_timeout_as_it_reserves_run_id(
    kit: ProctorTestKit,
) -> None:
    with pytest.raises(InvalidArgument, match="keyword-only parameter 'timeout'"):

        @workflow(name="b4.kwonly")
        async def kwonly(*, timeout: int) -> None:
            return None

    @workflow(name="b4.positional")
    async def positional(timeout: int) -> int:
        return timeout

    run = kit.runtime.start(positional, 42)  # the workflow's own parameter
    assert run.result(timeout=10) == 42
    assert "deadline" not in run.events()[0].data
    with pytest.raises(InvalidArgumentType, match="reserves the keyword timeout"):
        kit.runtime.start(positional, timeout=5)  # the run's timeout; the parameter is missing


def test_B4_A2_a_repeated_start_with_another_timeout_is_run_id_in_use(
    kit: ProctorTestKit,
) -> None:
    first = kit.runtime.start(wf.brisk, 1, run_id="order-1", timeout=100)
    again = kit.runtime.start(wf.brisk, 1, run_id="order-1", timeout=100)
    assert again.run_id == first.run_id
    with pytest.raises(RunIdInUse, match=r"another timeout \(it has 100 s; this start has 200 s\)"):
        kit.runtime.start(wf.brisk, 1, run_id="order-1", timeout=200)
    with pytest.raises(RunIdInUse, match="another timeout"):
        kit.runtime.start(wf.brisk, 1, run_id="order-1")  # the decorator's 3600 s
    with Client(kit.db) as client, pytest.raises(RunIdInUse, match="another timeout"):
        client.start(wf.brisk, 1, run_id="order-1", timeout=50)
    assert len(kit.runtime.list_runs()) == 1


# -- the CLI -----------------------------------------------------------------------------


def test_B4_runs_status_shows_the_deadline_and_time_left_and_logs_show_the_timeout(
    kit: ProctorTestKit, folder: str
) -> None:
    run = kit.runtime.start(wf.patient, folder, "a", timeout=600)
    kit.wait_for_event(run, "step_started")
    shown = run_cli(kit.db, "runs", "status", run.run_id)
    assert shown.exit_code == 0, shown.output
    line = next(x for x in shown.output.splitlines() if x.strip().startswith("timeout"))
    assert "600 s, deadline 20" in line
    assert "left)" in line
    as_json = run_cli(kit.db, "runs", "status", run.run_id, "--json")
    timeout = json.loads(as_json.output)["timeout"]
    assert timeout["timeout"] == 600
    assert 0 < timeout["left"] <= 600
    kit.clock.advance(600)
    run.wait_finished(timeout=10)
    logs = run_cli(kit.db, "runs", "logs", run.run_id)
    assert 'reason="run timed out after 600 s" source="timeout"' in logs.output
    status = run_cli(kit.db, "runs", "status", run.run_id).output
    assert "run timed out after 600 s (from timeout" in status


def test_B4_proctor_start_run_timeout_records_the_deadline(tmp_path: Path, folder: str) -> None:
    db = tmp_path / "cli.db"
    before = time.time()
    target = "tests.timeout_workflows:unbounded"
    result = run_cli(db, "start", target, f'"{folder}"', '"a"', "--run-timeout", "90")
    assert result.exit_code == 0, result.output
    run_id = result.output.splitlines()[0].strip()
    with Client(db) as client:
        created = client.events(run_id)[0]
    assert created.data["timeout"] == 90
    assert before + 90 <= created.data["deadline"] <= time.time() + 90
    decorated = run_cli(db, "start", "tests.timeout_workflows:brisk", "1")
    assert decorated.exit_code == 0, decorated.output
    with Client(db) as client:
        assert client.events(decorated.output.splitlines()[0].strip())[0].data["timeout"] == 3600


@pytest.mark.parametrize("value", ["0", "-1", "nan", "inf", "soon"])
def test_B4_proctor_start_refuses_a_bad_run_timeout(tmp_path: Path, value: str) -> None:
    db = tmp_path / "cli.db"
    result = run_cli(db, "start", "tests.timeout_workflows:brisk", "1", "--run-timeout", value)
    assert result.exit_code == 2, result.output
    assert "--run-timeout" in result.output
    if db.exists():
        with Client(db) as client:
            assert client.list_runs() == []


def test_B4_A1_start_async_and_the_clients_starts_take_a_timeout_too(
    kit: ProctorTestKit, folder: str
) -> None:
    async def starts() -> list[str]:
        run = await kit.runtime.start_async(wf.unbounded, folder, "a", timeout=7)
        with Client(kit.db) as client:
            by_def = client.start(wf.brisk, 1)  # the decorator's 3600 s
            by_name = await client.start_async("tests.timeout_workflows.brisk", 2, timeout=9)
            # A name this process registered: its decorator's 3600 s, as by definition.
            plain = client.start("tests.timeout_workflows.brisk", 3)
        return [run.run_id, by_def.run_id, by_name.run_id, plain.run_id]

    ids = asyncio.run(starts())
    timeouts = [kit.runtime.events(i)[0].data.get("timeout") for i in ids]
    assert timeouts == [7, 3600, 9, 3600]
    run = kit.runtime.handle(ids[0])
    kit.wait_for_event(run, "step_started")
    kit.clock.advance(7)
    assert run.wait_finished(timeout=10).status is RunState.CANCELLED
