"""Bad input gets a clear error and loses nothing; nothing leaks; nothing crosses runs."""

from __future__ import annotations

import asyncio
import contextlib
import queue
import sqlite3
import threading
from pathlib import Path

import pykka
import pytest

import actors
import actors._runtime
from actors import (
    InvalidTransition,
    NotAProctorStore,
    NotSerializable,
    ProctorError,
    RunState,
    Runtime,
    SchemaTooNew,
    StepFailed,
    StoreError,
    StoreLocked,
    WorkflowFailed,
    gather,
    step,
    workflow,
)
from actors._census import Census
from actors._journal import Journal
from actors._messages import Append, Journaled
from persistence import (
    RUN_TRANSITIONS,
    SCHEMA_VERSION,
    EventType,
    NewEvent,
    cancel_request,
    next_state,
    open_store,
)
from tests.conftest import assert_nothing_left, event_types, gate, wait_until

pytestmark = pytest.mark.timeout(30)


@step()
def add(a: int, b: int) -> int:
    return a + b


@step()
def exits() -> None:
    raise SystemExit(3)


@step()
def returns_a_set() -> object:
    return {1, 2}


@workflow()
async def two_adds(x: int) -> int:
    return await add(await add(x, 1), 1)


def test_a_finished_runtime_leaves_no_actor_and_no_thread(db: Path) -> None:
    before = set(threading.enumerate())
    with Runtime(db) as rt:
        handles = [rt.start(two_adds, i) for i in range(20)]
        assert [h.result(timeout=10) for h in handles] == [i + 2 for i in range(20)]
    assert pykka.ActorRegistry.get_all() == []
    assert_nothing_left(before)


def test_a_step_raising_SystemExit_fails_its_run_only(rt: Runtime) -> None:
    @workflow()
    async def doomed() -> None:
        await exits()

    bad = rt.start(doomed)
    good = [rt.start(two_adds, i) for i in range(5)]
    with pytest.raises(WorkflowFailed) as info:
        bad.result(timeout=10)
    assert info.value.error["type"] == "StepFailed"
    assert "SystemExit" in info.value.error["message"]
    assert [h.result(timeout=10) for h in good] == [2, 3, 4, 5, 6]
    # The runtime is intact: a new run still works.
    assert rt.start(two_adds, 40).result(timeout=10) == 42


def test_a_body_raising_BaseException_fails_its_run_only(rt: Runtime) -> None:
    @workflow()
    async def interrupts() -> None:
        raise KeyboardInterrupt

    assert rt.start(interrupts).wait_finished(10).status is RunState.FAILED
    assert rt.start(two_adds, 1).result(timeout=10) == 3


def test_step_failure_reaches_the_body_as_StepFailed_with_its_cause(rt: Runtime) -> None:
    @step()
    def boom() -> None:
        raise ValueError("bad input")

    @workflow()
    async def catches() -> str:
        try:
            await boom()
        except StepFailed as exc:
            return f"caught {exc.error['type']} caused by {type(exc.__cause__).__name__}"
        return "unreachable"

    assert rt.start(catches).result(timeout=10) == "caught ValueError caused by ValueError"


def test_D4_non_json_arguments_are_refused_at_start_and_nothing_is_written(rt: Runtime) -> None:
    with pytest.raises(NotSerializable, match="object"):
        rt.start(two_adds, object())
    with pytest.raises(NotSerializable):
        rt.start(two_adds, float("nan"))
    assert rt.list_runs() == []


def test_D4_non_json_step_arguments_and_results_raise_NotSerializable_at_the_call(
    rt: Runtime,
) -> None:
    @workflow()
    async def bad_args() -> str:
        try:
            await add(object(), 1)  # type: ignore[arg-type]
        except NotSerializable:
            return "refused at the call"
        return "unreachable"

    @workflow()
    async def bad_result() -> str:
        try:
            await returns_a_set()
        except NotSerializable:
            return "refused at the await"
        return "unreachable"

    @workflow()
    async def bad_run_result() -> object:
        return {1, 2}

    handle = rt.start(bad_args)
    assert handle.result(timeout=10) == "refused at the call"
    assert "step_scheduled" not in event_types(rt, handle.run_id)
    assert rt.start(bad_result).result(timeout=10) == "refused at the await"
    with pytest.raises(WorkflowFailed, match="NotSerializable"):
        rt.start(bad_run_result).result(timeout=10)


def test_gather_returns_results_in_argument_order(rt: Runtime) -> None:
    @workflow()
    async def fan() -> list[int]:
        return await gather(add(1, 1), add(2, 2), add(3, 3))

    assert rt.start(fan).result(timeout=10) == [2, 4, 6]


def test_awaiting_something_else_in_a_body_fails_clearly(rt: Runtime) -> None:
    @workflow()
    async def sleeps() -> None:
        await asyncio.sleep(0)

    with pytest.raises(WorkflowFailed, match="can only await steps"):
        rt.start(sleeps).result(timeout=10)


def test_calling_a_step_outside_a_workflow_is_a_clear_error() -> None:
    with pytest.raises(ProctorError, match="outside a workflow body"):
        add(1, 2)
    assert add.fn(1, 2) == 3


def test_result_can_be_awaited_without_blocking_the_loop(rt: Runtime) -> None:
    async def service() -> list[int]:
        handles = [rt.start(two_adds, i) for i in range(3)]
        return list(await asyncio.gather(*handles))

    assert asyncio.run(service()) == [2, 3, 4]


def test_result_times_out_with_a_clear_error(rt: Runtime) -> None:
    @step()
    def slow(key: str) -> None:
        gate(key).wait(20)

    @workflow()
    async def wf() -> None:
        await slow("slow")

    handle = rt.start(wf)
    with pytest.raises(TimeoutError, match="still running"):
        handle.result(timeout=0.01)


# -- the transition table ----------------------------------------------------------


@pytest.mark.parametrize(("pair", "target"), list(RUN_TRANSITIONS.items()))
def test_every_transition_in_the_table(pair: tuple[RunState, EventType], target: RunState) -> None:
    assert next_state(*pair) is target


def test_every_pair_not_in_the_table_raises() -> None:
    for state in RunState:
        for event in EventType:
            if (state, event) not in RUN_TRANSITIONS:
                with pytest.raises(InvalidTransition):
                    next_state(state, event)


def test_terminal_states_have_no_way_out() -> None:
    assert not [pair for pair in RUN_TRANSITIONS if pair[0].is_terminal]


# -- bad databases -------------------------------------------------------------------


def test_a_foreign_sqlite_database_is_refused_untouched(tmp_path: Path) -> None:
    path = tmp_path / "other.db"
    with contextlib.closing(sqlite3.connect(path)) as conn, conn:
        conn.execute("CREATE TABLE invoices (id INTEGER)")
    before = path.read_bytes()
    with pytest.raises(NotAProctorStore, match="another application"):
        Runtime(path)
    assert path.read_bytes() == before


def test_a_file_that_is_not_sqlite_is_refused_untouched(tmp_path: Path) -> None:
    path = tmp_path / "notes.db"
    path.write_text("these are my notes, not a database\n" * 100)
    with pytest.raises(NotAProctorStore):
        Runtime(path)
    assert path.read_text().startswith("these are my notes")


def test_a_store_from_a_newer_proctor_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "new.db"
    open_store(path).close()
    with contextlib.closing(sqlite3.connect(path)) as conn, conn:
        conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    with pytest.raises(SchemaTooNew, match="upgrade Proctor"):
        Runtime(path)


def test_a_workflow_body_that_blocks_before_its_first_step_is_a_clear_error(
    tmp_path: Path,
) -> None:
    """start() returns once the run's creation is durable, which is written
    with the body's first step: a body that blocks first is named as the bug."""
    before = set(threading.enumerate())
    with Runtime(tmp_path / "blocks.db", request_timeout=0.2) as rt:
        _a_body_that_blocks(rt)
    assert_nothing_left(before)


def _a_body_that_blocks(rt: Runtime) -> None:
    release = gate("blocks")

    @workflow()
    async def blocks() -> int:
        release.wait(10)  # blocking in a body: the bug the error names
        return await add(1, 1)

    with pytest.raises(StoreError, match="a workflow body must not block"):
        rt.start(blocks)
    release.set()
    # Nothing was lost: the run goes on once the body lets go.
    wait_until(lambda: rt.list_runs(workflow=blocks.name))
    [run] = rt.list_runs(workflow=blocks.name)
    assert rt.handle(run.run_id).result(timeout=10) == 2


def test_a_locked_store_is_a_clear_error_not_a_hang(tmp_path: Path) -> None:
    path = tmp_path / "locked.db"
    before = set(threading.enumerate())
    with Runtime(path, busy_timeout=0.05) as rt:
        holder = sqlite3.connect(path, isolation_level=None)
        holder.execute("BEGIN EXCLUSIVE")  # another process holds the write lock
        try:
            with pytest.raises(StoreLocked, match="locked by another process"):
                rt.start(two_adds, 1)
            assert rt.list_runs() == []  # WAL: reading still works while locked
        finally:
            holder.execute("ROLLBACK")
            holder.close()
        # Nothing was lost or half-written; the runtime carries on.
        assert rt.start(two_adds, 1).result(timeout=10) == 3
    assert_nothing_left(before)


def test_readonly_open_of_a_missing_file_creates_nothing(tmp_path: Path) -> None:
    path = tmp_path / "missing.db"
    with pytest.raises(StoreError, match="does not exist"):
        open_store(path, readonly=True)
    assert not path.exists()


# -- the public API ------------------------------------------------------------------


def test_every_public_name_is_exported_exactly_once() -> None:
    assert len(actors.__all__) == len(set(actors.__all__))
    assert sorted(actors.__all__) == sorted(
        name for name in dir(actors) if not name.startswith("_") and name in actors.__all__
    )
    for name in actors.__all__:
        assert getattr(actors, name) is not None


def _open_together(path: Path, barrier: threading.Barrier, errors: list[BaseException]) -> None:
    barrier.wait()
    try:
        open_store(path).close()
        open_store(path, readonly=True).close()
    except BaseException as exc:
        errors.append(exc)


def test_many_processes_creating_one_store_at_once_all_see_a_proctor_store(
    tmp_path: Path,
) -> None:
    """The identity check reads id, version and tables in one snapshot: read
    separately, a store being created elsewhere looked foreign (seen once in
    the crash tests, a worker and `proctor start` racing)."""
    for attempt in range(10):
        errors: list[BaseException] = []
        barrier = threading.Barrier(6)
        args = (tmp_path / f"new{attempt}.db", barrier, errors)
        threads = [threading.Thread(target=_open_together, args=args) for _ in range(6)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
        assert errors == []


# -- a commit that fails ---------------------------------------------------------------


@step()
def waits_for(key: str) -> int:
    gate(f"{key}.inside").set()
    gate(key).wait(10)
    return 1


@workflow()
async def waits_then_adds(key: str) -> int:
    return await add(await waits_for(key), 1)


def test_a_store_failure_under_a_run_hosts_it_again_from_its_log(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A step's end is written with the body's next records in one group (the
    next step's start). If that commit fails (the store is locked past the
    busy timeout), neither is in the log and the next step never ran. The
    store failed, not the run: the Guardian hosts the run again by replay
    after a back-off, like an OTP supervisor restarting a crashed child."""
    path = tmp_path / "locked.db"
    before = set(threading.enumerate())
    with Runtime(path, busy_timeout=0.05) as rt:
        handle = rt.start(waits_then_adds, "k")
        assert gate("k.inside").wait(10)
        holder = sqlite3.connect(path, isolation_level=None)
        holder.execute("BEGIN EXCLUSIVE")
        try:
            gate("k").set()
            wait_until(lambda: "hosting it again" in caplog.text)
            assert event_types(rt, handle.run_id)[-2:] == ["step_scheduled", "step_started"]
        finally:
            holder.execute("ROLLBACK")
            holder.close()
        assert handle.result(timeout=10) == 2
        log = rt.events(handle.run_id)
    resumed = [e for e in log if e.type is EventType.RUN_RESUMED]
    assert len(resumed) == 1
    assert "locked" in resumed[0].data["why"]
    # The step's end was in the group that failed: the supervisor handed it
    # to the run's next host, which wrote it with its takeover; the step did
    # not run again (A4: a result that arrived is never discarded).
    assert [e for e in log if e.type is EventType.STEP_REEXECUTED] == []
    assert [e.call for e in log if e.type is EventType.STEP_STARTED] == [0, 1]
    types = [(e.type.value, e.call) for e in log]
    assert types.index(("step_completed", 0)) == types.index(("run_resumed", None)) + 1
    assert_nothing_left(before)


class _Collector(pykka.ThreadingActor):
    def __init__(self, into: queue.Queue[Journaled]) -> None:
        super().__init__()
        self.into = into

    def on_receive(self, message: object) -> None:
        assert isinstance(message, Journaled)
        self.into.put(message)


def test_after_a_failed_commit_no_later_group_of_that_supervisor_commits(tmp_path: Path) -> None:
    """A supervisor sends its next group before it hears that one failed; the
    Journal refuses it, so the log never has a hole. A cancel from outside
    the supervisor still gets through."""
    path = tmp_path / "j.db"
    before = set(threading.enumerate())
    census = Census()
    journal = Journal.start(
        census=census,
        parent=None,
        path=path,
        synchronous="NORMAL",
        busy_timeout=0.05,
        on_terminal=lambda run_id, state: None,
        owner="me",
        lease_ttl=10,
        halted=threading.Event(),
    )
    replies: queue.Queue[Journaled] = queue.Queue()
    probe = _Collector.start(replies)
    try:
        with open_store(path) as store:
            store.register_runtime("me", ttl=10)
        create = NewEvent(
            run_id="r", type=EventType.RUN_CREATED, data={"workflow": "w", "owner": "me"}
        )
        started = NewEvent(run_id="r", type=EventType.RUN_STARTED)
        journal.tell(Append(events=(create, started), notify=probe, tag="start"))
        assert replies.get(timeout=10).accepted

        holder = sqlite3.connect(path, isolation_level=None)
        holder.execute("BEGIN EXCLUSIVE")
        shield = NewEvent(run_id="r", type=EventType.SHIELD_ENTERED, data={"depth": 1})
        journal.tell(Append(events=(shield,), notify=probe, tag="first"))
        failed = replies.get(timeout=10)
        holder.execute("ROLLBACK")
        holder.close()
        assert isinstance(failed.error, StoreLocked)

        journal.tell(Append(events=(shield,), notify=probe, tag="second"))
        refused = replies.get(timeout=10)
        assert refused.tag == "second"
        assert isinstance(refused.error, StoreError)
        assert "an earlier record of this run failed" in str(refused.error)

        cancel = Append(
            events=(cancel_request("r", "ops", source="api"),), reply=pykka.ThreadingFuture()
        )
        journal.tell(cancel)
        assert all(o.accepted for o in cancel.reply.get(timeout=10))
        with open_store(path, readonly=True) as store:
            assert [e.type.value for e in store.events("r")] == [
                "run_created",
                "run_started",
                "cancel_requested",
            ]
    finally:
        probe.stop()
        journal.stop()
    assert census.wait_empty(10)
    assert_nothing_left(before)
