"""A new user's review of caller-chosen run ids (A2, A3) and restart (A7).

What defines a restart (the run it restarts and the call it restarts
from), how two starts' arguments are compared (bound to the workflow's
signature where it is known, as written otherwise), which ids are refused,
and that each error names the true bound or the next thing to do.
"""

from __future__ import annotations

import asyncio
import json
import re
from pathlib import Path
from typing import Any

import pytest

from actors import (
    Client,
    InvalidArgument,
    InvalidArgumentType,
    OutcomeUnknown,
    RunIdInUse,
    RunNotFound,
    Runtime,
    WorkflowFailed,
    workflow,
)
from persistence import EventType, NewEvent, create_run, open_store
from tests.cli_workflows import three_marks
from tests.conftest import NOTES, gate, open_rt, wait_until
from tests.conftest import run_cli as proctor
from tests.store_access import write_lock
from tests.test_restart import failed_run, gated, work
from tests.test_run_ids import executions, named, order, store_size

pytestmark = pytest.mark.timeout(60)


@workflow()
async def defaulted(key: str, value: int = 1) -> int:
    return await work(key, value)


@workflow()
async def two_gated(key: str) -> int:
    """Call 0 completes; call 1 waits on a gate (a terminate leaves it unended)."""
    a = await work(key, 0)
    return a + await gated(key, 1)


# -- 1, 3: a restart is defined by the run it restarts and its from_call ------------------


def test_A7_a_restart_from_another_call_with_the_same_id_raises_run_id_in_use(
    rt: Runtime, db: Path
) -> None:
    old = failed_run(rt, "a7-other-call")
    NOTES["a7-other-call.fail"] = False
    first = rt.restart(old, None, run_id="r-1")
    first.result(timeout=10)
    before = store_size(db)
    with pytest.raises(RunIdInUse) as caught:
        rt.restart(old, 2, run_id="r-1")
    message = str(caught.value)
    assert "another from_call (it reuses no call" in message
    assert "this restart reuses calls 0 to 1" in message
    # The hint fits a restart, not a start (3).
    assert "restart the same run from the same call" in message
    assert "start with the same workflow and arguments" not in message
    assert store_size(db) == before
    # None and 0 reuse nothing: the same restart.
    assert rt.restart(old, 0, run_id="r-1").run_id == "r-1"
    # The other way round: a restart from call 2, then one from none.
    rt.restart(old, 2, run_id="r-2").result(timeout=10)
    with pytest.raises(RunIdInUse, match=r"it reuses calls 0 to 1 .*this restart reuses no call"):
        rt.restart(old, run_id="r-2")
    with pytest.raises(RunIdInUse, match=r"it reuses calls 0 to 1 .*this restart reuses call 0"):
        rt.restart(old, 1, run_id="r-2")
    assert rt.restart(old, 2, run_id="r-2").run_id == "r-2"
    assert rt.restarts(old) == ["r-1", "r-2"]


def test_A7_a_restart_of_another_run_with_the_same_id_raises_with_the_restart_hint(
    rt: Runtime,
) -> None:
    one = failed_run(rt, "a7-origin")
    two = failed_run(rt, "a7-origin")
    rt.restart(one, run_id="r-3")
    with pytest.raises(RunIdInUse, match=r"another origin .*restart the same run from the same"):
        rt.restart(two, run_id="r-3")


def test_A7_cli_runs_restart_from_another_call_with_the_same_id_exits_6(
    runtimes: list[Runtime], db: Path, folder: Path
) -> None:
    rt = open_rt(runtimes, db)
    old = rt.start(three_marks, str(folder), "k")
    assert old.result(timeout=10) == 3
    first = proctor(db, "runs", "restart", old.run_id, "--run-id", "rr-1")
    assert first.exit_code == 0, first.output
    count = len(rt.list_runs())
    again = proctor(db, "runs", "restart", old.run_id, "--run-id", "rr-1", "--from-call", "1")
    assert again.exit_code == 6, again.output
    assert "another from_call" in again.stderr
    assert "the same restart" not in again.stderr
    assert len(rt.list_runs()) == count
    same = proctor(db, "runs", "restart", old.run_id, "--run-id", "rr-1", "--from-call", "0")
    assert same.exit_code == 0, same.output
    assert "the same restart" in same.stderr


# -- 2: arguments, as bound to the signature where it is known -----------------------------


def test_A2_run_id_in_use_shows_both_positional_and_keyword_arguments(rt: Runtime) -> None:
    rt.start(order, "a2-kw", 7, run_id="k-1").result(timeout=10)
    with pytest.raises(RunIdInUse) as caught:
        rt.start(order, "a2-kw", value=8, run_id="k-1")
    message = str(caught.value)
    assert 'it has args ["a2-kw",7] and kwargs {}' in message
    assert 'this start has args ["a2-kw"] and kwargs {"value":8}' in message


def test_A2_positional_and_keyword_forms_of_one_call_are_the_same_start(rt: Runtime) -> None:
    first = rt.start(order, "a2-bound", 7, run_id="k-2")
    again = rt.start(order, key="a2-bound", value=7, run_id="k-2")
    assert again.run_id == first.run_id == "k-2"
    assert first.result(timeout=10) == 14
    assert executions("a2-bound") == 1
    assert len(rt.list_runs()) == 1


def test_A2_a_default_left_out_is_not_the_same_start_as_the_default_passed(
    rt: Runtime,
) -> None:
    """Defaults are not applied when binding: a default may change between deploys."""
    rt.start(defaulted, "a2-default", run_id="k-3").result(timeout=10)
    with pytest.raises(RunIdInUse, match="other arguments"):
        rt.start(defaulted, "a2-default", 1, run_id="k-3")


def test_A2_without_the_workflow_arguments_are_compared_as_written(db: Path) -> None:
    """proctor start and a Client by name cannot bind: positional and keyword
    forms of one call differ there (documented in the guide)."""

    def created(args: list[Any], kwargs: dict[str, Any]) -> NewEvent:
        data = {"workflow": order.name, "args": args, "kwargs": kwargs, "owner": None}
        return NewEvent(run_id="k-4", type=EventType.RUN_CREATED, data=data)

    with open_store(db) as store:
        create_run(store, [created(["a2-written", 7], {})])
        with pytest.raises(RunIdInUse, match=re.escape('kwargs {"key":"a2-written","value":7}')):
            create_run(store, [created([], {"key": "a2-written", "value": 7})])


# -- 4: a workflow parameter named run_id ---------------------------------------------------


def test_A2_a_missing_run_id_parameter_says_start_reserves_the_keyword(
    rt: Runtime, db: Path
) -> None:
    with pytest.raises(InvalidArgumentType) as caught:
        rt.start(named, run_id="abc")
    assert "missing a required argument: 'run_id'" in str(caught.value)
    assert "start() reserves the keyword run_id" in str(caught.value)
    assert "pass the workflow's parameter run_id positionally" in str(caught.value)
    assert store_size(db) == (0, 0)
    # A workflow without such a parameter gets no such hint.
    with pytest.raises(InvalidArgumentType) as other:
        rt.start(order, run_id="abc")
    assert "reserves" not in str(other.value)


@workflow()
async def calls_named() -> str:
    return await named()  # type: ignore[call-arg]


def test_A2_a_child_call_missing_run_id_gets_no_start_hint(rt: Runtime) -> None:
    """Only start() reserves the keyword: a child call in a body does not."""
    with pytest.raises(WorkflowFailed) as caught:
        rt.start(calls_named).result(timeout=10)
    assert "missing a required argument: 'run_id'" in str(caught.value)
    assert "reserves" not in str(caught.value)


# -- 5: from_call out of range: one message, the true bound --------------------------------


@pytest.mark.parametrize("from_call", [-1, 2, 5])
def test_A7_from_call_out_of_range_names_the_true_bound(rt: Runtime, from_call: int) -> None:
    key = f"a7-bound{from_call}"
    handle = rt.start(two_gated, key)
    wait_until(lambda: NOTES.get(f"{key}.started.1"))
    rt.terminate(handle.run_id)
    gate(f"{key}.1").set()
    with pytest.raises(InvalidArgument) as caught:
        rt.restart(handle.run_id, from_call=from_call)
    assert str(caught.value).startswith("from_call must be between 0 and 1 (call 1 (step")
    assert "cannot be reused" in str(caught.value)
    assert str(caught.value).endswith(f"got {from_call}")
    assert rt.restarts(handle.run_id) == []


# -- 6: which run ids are refused -----------------------------------------------------------


@pytest.mark.parametrize("bad", [" ", "\t", "  ", " order-7", "order-7 ", "order-7\n"])
def test_A2_blank_ids_and_ids_with_whitespace_at_an_end_are_refused(
    rt: Runtime, db: Path, bad: str
) -> None:
    with pytest.raises(InvalidArgument, match="a run id"):
        rt.start(order, "a2-blank", 1, run_id=bad)
    assert store_size(db) == (0, 0)
    assert proctor(db, "start", "tests.cli_workflows:add", "1", "2", "--run-id", bad).exit_code == 2
    assert store_size(db) == (0, 0)


@pytest.mark.parametrize("good", ["a b", "a/b", "customer/42 order 7"])
def test_A2_other_printable_ids_are_kept(rt: Runtime, good: str) -> None:
    assert rt.start(order, "a2-good", 1, run_id=good).result(timeout=10) == 2
    assert rt.get_run(good).run_id == good


# -- 7: runs status shows the reused calls ---------------------------------------------------


def test_A7_runs_status_lists_the_reused_calls_marked_reused(
    runtimes: list[Runtime], db: Path, folder: Path
) -> None:
    rt = open_rt(runtimes, db, claim_runs=True)
    old = rt.start(three_marks, str(folder), "s")
    assert old.result(timeout=10) == 3
    one = proctor(db, "runs", "restart", old.run_id, "--from-call", "1")
    assert one.exit_code == 0, one.output
    assert "reusing its call 0;" in one.stderr
    two = proctor(db, "runs", "restart", old.run_id, "--from-call", "2")
    assert "reusing its calls 0 to 1;" in two.stderr
    new_id = two.stdout.strip()
    assert rt.handle(new_id).result(timeout=10) == 3
    status = proctor(db, "runs", "status", new_id)
    assert status.exit_code == 0, status.output
    text = status.stdout
    assert "reused calls" in text
    assert text.count("reused: completed") == 2
    assert "(reusing its calls 0 to 1)" in " ".join(text.split())
    data = json.loads(proctor(db, "runs", "status", new_id, "--json").stdout)
    assert [(r["call"], r["status"], r["from_run"]) for r in data["reused_calls"]] == [
        (0, "completed", old.run_id),
        (1, "completed", old.run_id),
    ]
    # Call 2 ran live: it is in the steps table, the reused ones are not.
    assert [s["call"] for s in data["steps"]] == [2]
    plain = json.loads(proctor(db, "runs", "status", old.run_id, "--json").stdout)
    assert plain["reused_calls"] == []


# -- 8: the restarts of a run, through the public API ----------------------------------------


def test_A7_restarts_lists_a_runs_restarts_through_runtime_and_client(
    rt: Runtime, db: Path
) -> None:
    old = failed_run(rt, "a7-restarts")
    assert rt.restarts(old) == []
    new = rt.restart(old)
    with pytest.raises(WorkflowFailed):
        new.result(timeout=10)
    assert rt.restarts(old) == [new.run_id]
    assert rt.restarts(new.run_id) == []
    assert asyncio.run(rt.restarts_async(old)) == [new.run_id]
    with pytest.raises(RunNotFound):
        rt.restarts("no-such-run")
    with Client(db) as client:
        assert client.restarts(old) == [new.run_id]
        assert asyncio.run(client.restarts_async(old)) == [new.run_id]


# -- 9: OutcomeUnknown of a start says to retry with the same id ----------------------------


def test_A3_outcome_unknown_of_a_start_says_to_retry_with_the_same_id(
    runtimes: list[Runtime], db: Path
) -> None:
    rt = open_rt(runtimes, db, request_timeout=0.2)
    with write_lock(db), pytest.raises(OutcomeUnknown) as caught:
        rt.start(order, "a3-words", 7, run_id="words-1")
    message = str(caught.value)
    assert "can simply be retried with the same id" in message
    assert "otherwise look the run up by its id" in message
    # Not a start: the old advice.
    assert "look the run up by its id before asking again" in str(
        OutcomeUnknown("r", "cancel", "no answer")
    )
    assert rt.start(order, "a3-words", 7, run_id="words-1").result(timeout=10) == 14
