"""Run ids chosen by the caller (A2) and what an error from start() means (A3).

A2: ``start(..., run_id=...)``; a repeated start with the same id returns the
existing run when workflow and arguments match and raises ``RunIdInUse``
when they differ; the store enforces it in the transaction that creates
the run (Temporal's workflow id with the USE_EXISTING conflict policy,
DBOS's workflow ids). A3: an error from start() means nothing was created,
or (``OutcomeUnknown``) names the run id and says the run may exist; with a
chosen id, retrying is always safe.
"""

from __future__ import annotations

import subprocess
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import actors._requests
from actors import (
    Client,
    InvalidArgument,
    InvalidArgumentType,
    NotSerializable,
    OutcomeUnknown,
    RunIdInUse,
    RunState,
    Runtime,
    StoreError,
    step,
    workflow,
)
from actors._directory import Directory
from persistence import (
    EventType,
    InvalidTransition,
    NewEvent,
    Refused,
    open_store,
    same_start,
)
from tests.cli_workflows import add
from tests.conftest import NOTES, gate, note, open_rt, wait_until
from tests.conftest import run_cli as proctor
from tests.processes import ROOT
from tests.store_access import write_lock

pytestmark = pytest.mark.timeout(60)


@step()
def ran(key: str, value: int) -> int:
    NOTES.setdefault(key, []).append(value)
    return value * 2


@step()
def held(key: str) -> str:
    note(f"{key}.started", True)
    gate(key).wait(30)
    return key


@workflow()
async def order(key: str, value: int) -> int:
    return await ran(key, value)


@workflow()
async def other(key: str, value: int) -> int:
    return await ran(key, value)


@workflow()
async def holding(key: str) -> str:
    return await held(key)


@workflow()
async def named(run_id: str) -> str:
    """A workflow parameter called run_id: passed positionally (A2)."""
    return run_id


def executions(key: str) -> int:
    return len(NOTES.get(key, []))


def store_size(db: Path) -> tuple[int, int]:
    """(runs, events) in the store: what a refused start must leave as it was."""
    with open_store(db, readonly=True) as store:
        runs = store.list_runs()
        return len(runs), sum(len(store.events(r.run_id)) for r in runs)


# -- A2 through the public API ----------------------------------------------------------


def test_A2_the_same_start_again_returns_the_existing_run_and_runs_nothing(
    rt: Runtime, db: Path
) -> None:
    first = rt.start(order, "a2-same", 21, run_id="order-42")
    assert first.run_id == "order-42"
    assert first.result(timeout=10) == 42
    before = store_size(db)
    # Finished: still the same run (USE_EXISTING whatever its state), nothing runs.
    again = rt.start(order, "a2-same", 21, run_id="order-42")
    assert again.run_id == "order-42"
    assert again.result(timeout=10) == 42
    assert executions("a2-same") == 1
    assert store_size(db) == before


def test_A2_the_same_start_of_a_running_run_returns_it(rt: Runtime) -> None:
    first = rt.start(holding, "a2-running", run_id="hold-1")
    wait_until(lambda: NOTES.get("a2-running.started"))
    again = rt.start(holding, "a2-running", run_id="hold-1")
    assert again.run_id == "hold-1"
    assert rt.get_run("hold-1").status is RunState.RUNNING
    gate("a2-running").set()
    assert first.result(timeout=10) == again.result(timeout=10) == "a2-running"
    assert len([e for e in rt.events("hold-1") if e.type is EventType.STEP_STARTED]) == 1


@pytest.mark.parametrize(
    ("start", "differs"),
    [
        (lambda rt: rt.start(order, "a2-diff", 22, run_id="order-7"), "other arguments"),
        (lambda rt: rt.start(other, "a2-diff", 21, run_id="order-7"), "another workflow"),
        # By keyword: bound to the signature, so only another value differs (the
        # same call by keyword is the same start: test_run_id_review.py).
        (lambda rt: rt.start(order, key="a2-diff", value=22, run_id="order-7"), "other arg"),
    ],
)
def test_A2_another_start_with_the_id_raises_run_id_in_use_and_writes_nothing(
    rt: Runtime, db: Path, start: Callable[[Runtime], Any], differs: str
) -> None:
    rt.start(order, "a2-diff", 21, run_id="order-7").result(timeout=10)
    before = store_size(db)
    with pytest.raises(RunIdInUse) as caught:
        start(rt)
    assert caught.value.run_id == "order-7"
    assert caught.value.workflow == order.name
    assert differs in str(caught.value)
    assert "'order-7'" in str(caught.value)
    assert store_size(db) == before
    assert executions("a2-diff") == 1


@pytest.mark.parametrize(
    ("bad", "error"),
    [
        ("", InvalidArgument),
        (42, InvalidArgumentType),
        ("x" * 201, InvalidArgument),
        ("line\nbreak", InvalidArgument),
        ("bell\x07", InvalidArgument),
        ("order-7.0", InvalidArgument),  # names call 0 of run order-7: a child run's id
    ],
)
def test_A2_a_bad_run_id_is_refused_before_anything_is_written(
    rt: Runtime, db: Path, bad: object, error: type[Exception]
) -> None:
    with pytest.raises(error):
        rt.start(order, "a2-bad", 1, run_id=bad)  # type: ignore[arg-type]
    assert store_size(db) == (0, 0)
    assert executions("a2-bad") == 0


def test_A2_the_longest_run_id_allowed_is_taken(rt: Runtime) -> None:
    run_id = "é" * 200
    assert rt.start(order, "a2-long", 1, run_id=run_id).result(timeout=10) == 2
    assert rt.get_run(run_id).run_id == run_id


def test_A2_the_keyword_run_id_is_reserved_by_start(rt: Runtime) -> None:
    """A workflow parameter named run_id is passed positionally; a keyword-only
    one could never be passed, so @workflow() refuses it at definition."""
    handle = rt.start(named, "the-argument", run_id="the-id")
    assert handle.run_id == "the-id"
    assert handle.result(timeout=10) == "the-argument"
    with pytest.raises(InvalidArgument, match="keyword-only parameter 'run_id'"):

        @workflow(name="tests.a2.keyword_only")
        async def keyword_only(*, run_id: str) -> str:
            return run_id


def test_A2_a_creation_the_store_refuses_as_a_duplicate_runs_nothing(
    rt: Runtime, db: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The race the look-up before creating cannot see (another process
    created the id in between): the store refuses the creation in its
    transaction; nothing of the second start runs, and the caller gets the
    existing run, or RunIdInUse."""
    rt.start(order, "a2-race", 5, run_id="raced").result(timeout=10)
    before = store_size(db)
    monkeypatch.setattr(actors._requests, "existing_start", lambda *_: None)
    assert rt.start(order, "a2-race", 5, run_id="raced").run_id == "raced"
    with pytest.raises(RunIdInUse):
        rt.start(order, "a2-race", 6, run_id="raced")
    assert executions("a2-race") == 1
    assert store_size(db) == before
    wait_until(lambda: rt._directory.get("raced") is None)


def test_A2_the_store_refuses_a_second_run_created_for_an_id(db: Path) -> None:
    created = NewEvent(
        run_id="dup", type=EventType.RUN_CREATED, data={"workflow": "w", "args": [1]}
    )
    with open_store(db) as store:
        assert store.append([created])[0].accepted
        refused = store.append([created])[0]
        assert isinstance(refused, Refused)
        assert refused.duplicate
        record = store.get_run("dup")
        assert record.last_seq == 1
        assert same_start(record, "w", [1], {})
        assert not same_start(record, "w", [1.0], {})  # JSON: 1 and 1.0 differ
        assert not same_start(record, "w", [True], {})
        assert not same_start(record, "w2", [1], {})
        assert not same_start(record, "w", [1], {"x": 1})


def test_A2_a_directory_never_holds_two_supervisors_of_one_run() -> None:
    directory = Directory()
    first, second = object(), object()
    directory.add("r", first)  # type: ignore[arg-type]
    with pytest.raises(InvalidTransition):
        directory.add("r", second)  # type: ignore[arg-type]
    directory.remove("r", second)  # type: ignore[arg-type]
    assert directory.get("r") is first
    directory.remove("r", first)  # type: ignore[arg-type]
    assert directory.get("r") is None


def _race(starts: list[Callable[[], Any]]) -> list[Any]:
    """Run ``starts`` at once from threads; their results (or errors)."""
    barrier = threading.Barrier(len(starts))
    results: list[Any] = [None] * len(starts)

    def go(i: int) -> None:
        barrier.wait(10)
        try:
            results[i] = starts[i]()
        except BaseException as exc:
            results[i] = exc

    threads = [threading.Thread(target=go, args=(i,)) for i in range(len(starts))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    return results


def test_A2_concurrent_starts_of_one_id_from_threads_make_one_run(rt: Runtime, db: Path) -> None:
    handles = _race([lambda: rt.start(order, "a2-threads", 3, run_id="t-1")] * 8)
    assert all(getattr(h, "run_id", None) == "t-1" for h in handles), handles
    assert all(h.result(timeout=10) == 6 for h in handles)
    assert executions("a2-threads") == 1
    assert store_size(db)[0] == 1


def test_A2_concurrent_starts_of_one_id_from_two_runtimes_make_one_run(
    runtimes: list[Runtime], db: Path
) -> None:
    a, b = open_rt(runtimes, db), open_rt(runtimes, db)
    handles = _race(
        [lambda rt=rt: rt.start(order, "a2-two", 4, run_id="two-1") for rt in (a, b, a, b)]
    )
    assert all(getattr(h, "run_id", None) == "two-1" for h in handles), handles
    assert all(h.result(timeout=10) == 8 for h in handles)
    assert executions("a2-two") == 1
    assert store_size(db)[0] == 1
    assert len([e for e in a.events("two-1") if e.type is EventType.STEP_STARTED]) == 1


@pytest.mark.timeout(120)
def test_A2_concurrent_starts_of_one_id_from_two_processes_make_one_run(
    db: Path, tmp_path: Path
) -> None:
    folder = tmp_path / "race"
    folder.mkdir()
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "tests.run_id_starter", str(db), str(folder), "proc-1"],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    try:
        wait_until(lambda: len(list(folder.glob("ready-*"))) == 2, timeout=60)
        (folder / "go").touch()
        outputs = [p.communicate(timeout=60) for p in procs]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
    assert [p.returncode for p in procs] == [0, 0], outputs
    assert [out.strip() for out, _ in outputs] == ["proc-1", "proc-1"]
    assert (folder / "race.ran").read_text() == "x\n"  # one execution of the step
    assert store_size(db)[0] == 1


# -- A2 through the CLI --------------------------------------------------------------------


def test_A2_cli_start_with_a_run_id_is_safe_to_repeat(db: Path) -> None:
    first = proctor(db, "start", "tests.cli_workflows:add", "2", "40", "--run-id", "cli-1")
    assert first.exit_code == 0, first.output
    assert first.stdout.strip() == "cli-1"
    again = proctor(db, "start", "tests.cli_workflows:add", "2", "40", "--run-id", "cli-1")
    assert again.exit_code == 0, again.output
    assert again.stdout.strip() == "cli-1"
    assert "already existed" in again.stderr
    assert store_size(db) == (1, 1)  # one run, its run_created only
    differs = proctor(db, "start", "tests.cli_workflows:add", "2", "41", "--run-id", "cli-1")
    assert differs.exit_code == 6
    assert "in use" in differs.stderr
    assert "other arguments" in differs.stderr
    bad = proctor(db, "start", "tests.cli_workflows:add", "2", "40", "--run-id", "a\tb")
    assert bad.exit_code == 2
    assert store_size(db) == (1, 1)


def test_A2_cli_start_then_a_runtime_start_of_the_same_id_is_one_run(db: Path) -> None:
    result = proctor(db, "start", "tests.cli_workflows:add", "1", "2", "--run-id", "mixed")
    assert result.exit_code == 0, result.output
    with Runtime(db, claim_runs=True) as rt:
        handle = rt.start(add, 1, 2, run_id="mixed")
        assert handle.result(timeout=10) == 3
        with pytest.raises(RunIdInUse):
            rt.start(add, 1, 3, run_id="mixed")
    assert store_size(db)[0] == 1


# -- A3 -------------------------------------------------------------------------------------


def test_A3_a_start_that_timed_out_then_a_retry_give_one_run_and_one_execution(
    runtimes: list[Runtime], db: Path
) -> None:
    rt = open_rt(runtimes, db, request_timeout=0.2)
    # Another connection holds the write lock: the creation cannot commit in time.
    with write_lock(db):
        with pytest.raises(OutcomeUnknown) as caught:
            rt.start(order, "a3-retry", 7, run_id="retry-1")
        assert caught.value.run_id == "retry-1"
        assert "retry-1" in str(caught.value)
        assert "may have taken effect" in str(caught.value)
    handle = None
    for _ in range(100):  # what a client does: retry with the same id until answered
        try:
            handle = rt.start(order, "a3-retry", 7, run_id="retry-1")
            break
        except OutcomeUnknown:
            continue
    assert handle is not None
    assert handle.result(timeout=10) == 14
    assert executions("a3-retry") == 1
    assert store_size(db)[0] == 1
    assert len([e for e in rt.events("retry-1") if e.type is EventType.STEP_STARTED]) == 1


@pytest.mark.parametrize(
    "start",
    [
        lambda rt: rt.start(order, "a3-bad", float("nan"), run_id="bad-1"),  # not JSON
        lambda rt: rt.start(order, "a3-bad", run_id="bad-1"),  # does not fit
        lambda rt: rt.start(order.fn, "a3-bad", 1, run_id="bad-1"),  # not a workflow
        lambda rt: rt.start(order, "a3-bad", 1, run_id=""),  # bad id
        lambda rt: rt.start(order, "a3-bad", 1, run_id="taken"),  # RunIdInUse
    ],
)
def test_A3_every_other_error_of_start_wrote_nothing(
    rt: Runtime, db: Path, start: Callable[[Runtime], Any]
) -> None:
    rt.start(order, "a3-taken", 1, run_id="taken").result(timeout=10)
    before = store_size(db)
    with pytest.raises((InvalidArgument, NotSerializable, RunIdInUse)):
        start(rt)
    assert store_size(db) == before
    assert executions("a3-bad") == 0


def test_A3_a_start_the_store_refuses_wrote_nothing(runtimes: list[Runtime], db: Path) -> None:
    """The store cannot take the creation (locked past the busy timeout): the
    start raises a StoreError or says the run may exist; either way, once the
    lock is gone, no run exists unless its id was named."""
    rt = open_rt(runtimes, db, busy_timeout=0.05, lease_ttl=3.0, request_timeout=5.0)
    with write_lock(db), pytest.raises(StoreError) as caught:  # StoreLocked, or OutcomeUnknown
        rt.start(order, "a3-refused", 1, run_id="refused-1")
    if isinstance(caught.value, OutcomeUnknown):
        assert caught.value.run_id == "refused-1"
    else:
        assert store_size(db) == (0, 0)
    assert executions("a3-refused") == 0


@pytest.mark.parametrize("retry", ["same runtime", "client, then a claim"])
def test_A3_a_start_the_store_refused_can_be_retried_once_the_store_is_free(
    runtimes: list[Runtime], db: Path, retry: str
) -> None:
    """A creation that failed wrote nothing, so it leaves no hole for later
    records of that run to be refused over: once the store is free, the same
    start again (here, or written by a Client and claimed here) makes the run,
    once, and runs it, once."""
    rt = open_rt(
        runtimes, db, busy_timeout=0.05, lease_ttl=3.0, request_timeout=5.0, claim_runs=True
    )
    with write_lock(db), pytest.raises(StoreError):  # StoreLocked, or OutcomeUnknown
        rt.start(order, "a3-again", 2, run_id="again-1")
    if retry == "same runtime":
        handle = None
        for _ in range(100):  # a creation still in flight answers OutcomeUnknown
            try:
                handle = rt.start(order, "a3-again", 2, run_id="again-1")
                break
            except OutcomeUnknown:
                continue
        assert handle is not None
    else:
        with Client(db) as client:
            client.start(order, "a3-again", 2, run_id="again-1")
        handle = rt.handle("again-1")
    assert handle.result(timeout=10) == 4
    assert executions("a3-again") == 1
    assert store_size(db)[0] == 1
