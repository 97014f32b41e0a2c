"""A4 graceful drain, in one process: ``close(drain=s)`` and ``Runtime(drain=s)``.

During the drain running steps finish undisturbed and their results are
recorded; nothing new starts (no run, no attempt, no retry, no claim);
cancel and terminate still work; waits for a run's end raise
``RuntimeClosed``. After it, what still runs is abandoned and re-run on
resume (``step_reexecuted``). Peers: Temporal's worker
``graceful_shutdown_timeout``, Kubernetes' SIGTERM grace period. The worker's
SIGTERM drain is tested with real processes in ``test_drain_processes.py``.
"""

from __future__ import annotations

import asyncio
import math
import threading
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from actors import (
    ControlResult,
    EventType,
    InvalidArgument,
    RetryPolicy,
    RunState,
    Runtime,
    RuntimeClosed,
    get_context,
    step,
    workflow,
)
from actors._closing import CLOSE_TRANSITIONS, CloseEvent, CloseState, next_close_state
from cli import cli
from persistence import InvalidTransition, NewEvent, open_store
from tests.conftest import NOTES, events_of, gate, note, open_rt, wait_until
from tests.store_access import store_exists

pytestmark = pytest.mark.timeout(60)


@step()
def busy(key: str) -> str:
    """Heartbeats (a mailbox check) every 5 ms until its gate opens: a
    Terminate would raise at once, so it proves the drain let it be."""
    note(f"{key}:runs", 1)
    gate(f"{key}:started").set()
    ctx = get_context()
    while not gate(key).wait(0.005):
        ctx.heartbeat()
        note(f"{key}:beats", 1)
    note(f"{key}:returned", 1)
    return f"{key} done"


@step()
def quick(key: str) -> str:
    note(f"{key}:runs", 1)
    return f"{key} done"


@workflow()
async def two_busy(key: str) -> list[str]:
    return [await busy(f"{key}.1"), await quick(f"{key}.2")]


@step(retry=RetryPolicy(max_attempts=3, initial_interval=0.0))
def fails_once(key: str) -> str:
    note(f"{key}:runs", 1)
    gate(f"{key}:started").set()
    assert gate(key).wait(10)
    if len(NOTES[f"{key}:runs"]) == 1:
        raise RuntimeError("first attempt fails")
    return f"{key} done"


@workflow()
async def retried(key: str) -> str:
    return await fails_once(key)


def runs_on(key: str, beats: int = 20) -> None:
    """Wait until step ``key`` heartbeats ``beats`` more times: had it been
    asked to stop, its next heartbeat would have raised ``Terminated``."""
    before = len(NOTES.get(f"{key}:beats", []))
    wait_until(lambda: len(NOTES.get(f"{key}:beats", [])) >= before + beats)


def draining(rt: Runtime) -> bool:
    return rt._closing.state is CloseState.SETTLING


def close_in_thread(rt: Runtime, drain: float | None = None) -> threading.Thread:
    closer = threading.Thread(target=rt.close, kwargs={"drain": drain})
    closer.start()
    wait_until(lambda: rt._closing.state is not CloseState.OPEN)
    return closer


def types_of(db: Path, run_id: str, step_name: str | None = None) -> list[str]:
    """The run's event types (of one step's calls only, if named), read apart."""
    with open_store(db, readonly=True) as store:
        events = store.events(run_id)
    return [e.type.value for e in events if step_name is None or (e.step or "").endswith(step_name)]


def test_A4_a_step_finishing_within_the_drain_is_recorded_and_not_run_again(
    runtimes: list[Runtime], db: Path
) -> None:
    first = open_rt(runtimes, db)
    run_id = first.start(two_busy, "a").run_id
    assert gate("a.1:started").wait(10)
    began = time.monotonic()
    closer = close_in_thread(first, drain=30)
    assert draining(first)
    runs_on("a.1")
    gate("a.1").set()  # it returns during the drain, never told to stop
    closer.join(20)
    assert not closer.is_alive()
    assert time.monotonic() - began < 10  # the drain ends once nothing runs
    log = events_of(first, run_id)
    step1 = [e.type for e in log if e.step and e.step.endswith("busy")]
    assert step1 == [EventType.STEP_SCHEDULED, EventType.STEP_STARTED, EventType.STEP_COMPLETED]
    # No step attempt started after it: the next step did not run. (The body
    # may record that call, as waiting, if the result beats the Guardian's
    # word of the drain to the run's supervisor; its slot is never granted.)
    assert not [e for e in log if e.type is EventType.STEP_STARTED and e.call == 1]
    assert "a.2:runs" not in NOTES

    second = open_rt(runtimes, db)
    assert second.handle(run_id).result(timeout=10) == ["a.1 done", "a.2 done"]
    assert NOTES["a.1:runs"] == [1]  # recorded once, never run again
    assert not [e for e in events_of(second, run_id) if e.type is EventType.STEP_REEXECUTED]


def test_A4_a_step_outlasting_the_drain_is_abandoned_and_reexecuted_on_resume(
    runtimes: list[Runtime], db: Path
) -> None:
    first = open_rt(runtimes, db, shutdown_timeout=5.0)
    run_id = first.start(two_busy, "b").run_id
    assert gate("b.1:started").wait(10)
    began = time.monotonic()
    first.close(drain=0.3)  # then asked to stop: its next heartbeat unwinds it
    assert time.monotonic() - began < 4  # not the 5 s shutdown_timeout: it checks
    assert "b.1:returned" not in NOTES
    busy_log = [e.type for e in events_of(first, run_id) if (e.step or "").endswith("busy")]
    assert busy_log[-1] is EventType.STEP_ABANDONED

    gate("b.1:started").clear()
    second = open_rt(runtimes, db)
    assert gate("b.1:started").wait(10)  # run again
    gate("b.1").set()
    assert second.handle(run_id).result(timeout=10) == ["b.1 done", "b.2 done"]
    reexecuted = [e for e in events_of(second, run_id) if e.type is EventType.STEP_REEXECUTED]
    assert [(e.call, e.attempt) for e in reexecuted] == [(0, 2)]
    assert NOTES["b.1:runs"] == [1, 1]


def test_A4_nothing_new_starts_during_the_drain_and_it_all_runs_on_resume(
    runtimes: list[Runtime], db: Path
) -> None:
    first = open_rt(runtimes, db, max_concurrent_steps=2)
    running = first.start(two_busy, "c").run_id
    failing = first.start(retried, "r").run_id
    assert gate("c.1:started").wait(10)
    assert gate("r:started").wait(10)
    waiting = first.start(two_busy, "w").run_id  # no slot free: it waits
    wait_until(lambda: "step_waiting" in types_of(db, waiting))
    closer = close_in_thread(first, drain=30)

    with pytest.raises(RuntimeClosed, match="drains"):
        first.start(two_busy, "new")
    gate("r").set()  # its first attempt fails: the retry is decided, not launched
    wait_until(lambda: "step_retry_scheduled" in types_of(db, failing))
    runs_on("c.1")
    gate("c.1").set()  # frees a slot: the waiting attempt still does not start
    closer.join(20)
    assert not closer.is_alive()
    assert "w.1:runs" not in NOTES
    assert NOTES["r:runs"] == [1]
    assert types_of(db, waiting, "busy")[-1] == "step_waiting"
    assert len(NOTES) == len({k for k in NOTES if not k.startswith("new")})

    second = open_rt(runtimes, db)
    gate("w.1").set()
    assert second.handle(waiting).result(timeout=10) == ["w.1 done", "w.2 done"]
    assert second.handle(failing).result(timeout=10) == "r done"
    assert second.handle(running).result(timeout=10) == ["c.1 done", "c.2 done"]
    assert NOTES["c.1:runs"] == [1]
    assert NOTES["r:runs"] == [1, 1]


def test_A4_cancel_and_terminate_still_work_during_the_drain(
    runtimes: list[Runtime], db: Path
) -> None:
    first = open_rt(runtimes, db)
    cancelled = first.start(two_busy, "k").run_id
    terminated = first.start(two_busy, "t").run_id
    assert gate("k.1:started").wait(10)
    assert gate("t.1:started").wait(10)
    closer = close_in_thread(first, drain=30)

    first.cancel(cancelled, "drained")  # its heartbeat raises CancellationError
    wait_until(lambda: "step_cancelled" in types_of(db, cancelled, "busy"))
    assert first.terminate(terminated, "now").status is RunState.TERMINATED
    closer.join(20)  # nothing is left to wait for: the drain ends
    assert not closer.is_alive()
    assert "k.1:returned" not in NOTES
    assert "t.1:returned" not in NOTES

    # The run ends CANCELLED: on the next runtime, which goes on where the
    # drain left it (CANCELLING), or here if the cancel overtook the drain's
    # word to its supervisor (control messages jump the queue).
    second = open_rt(runtimes, db)
    record = second.handle(cancelled).wait_finished(timeout=10)
    assert record.status is RunState.CANCELLED
    assert record.cancel_reason == "drained"


def test_A4_result_and_result_async_raise_runtime_closed_during_the_drain(
    runtimes: list[Runtime], db: Path
) -> None:
    rt = open_rt(runtimes, db)
    handle = rt.start(two_busy, "d")
    assert gate("d.1:started").wait(10)
    failed: list[BaseException] = []

    def wait_sync() -> None:
        try:
            handle.result(timeout=30)
        except BaseException as exc:
            failed.append(exc)

    async def wait_async() -> None:
        try:
            await handle.result_async(timeout=30)
        except BaseException as exc:
            failed.append(exc)

    waiters = [
        threading.Thread(target=wait_sync),
        threading.Thread(target=asyncio.run, args=(wait_async(),)),
    ]
    for waiter in waiters:
        waiter.start()
    wait_until(lambda: len(rt._waiter.watchers._watch.get(handle.run_id, ())) == 2)
    closer = close_in_thread(rt, drain=30)
    for waiter in waiters:
        waiter.join(5)  # woken at once, while the step still runs
        assert not waiter.is_alive()
    runs_on("d.1")
    assert draining(rt)
    assert [type(e) for e in failed] == [RuntimeClosed, RuntimeClosed], failed
    assert all("drains" in str(e) for e in failed)
    with pytest.raises(RuntimeClosed, match="drains"):
        handle.result(timeout=1)
    gate("d.1").set()
    closer.join(20)
    assert not closer.is_alive()


def test_A4_a_second_close_ends_the_drain_at_once(runtimes: list[Runtime], db: Path) -> None:
    rt = open_rt(runtimes, db, drain=60)  # Runtime(drain=...): close()'s default
    run_id = rt.start(two_busy, "s").run_id
    assert gate("s.1:started").wait(10)
    closer = close_in_thread(rt)  # drain=None: the runtime's 60 s
    assert draining(rt)
    began = time.monotonic()
    rt.close()  # from another thread: ends the drain, returns once closed
    assert time.monotonic() - began < 4
    closer.join(5)
    assert not closer.is_alive()
    assert rt._closing.state is CloseState.CLOSED
    busy_log = types_of(db, run_id, "busy")
    assert busy_log[-1] == "step_abandoned"


def test_A4_a_drain_longer_than_the_lease_keeps_renewing_it(
    runtimes: list[Runtime], db: Path
) -> None:
    # Self-fencing would stop the step at 3/4 of an unrenewed lease (0.45 s).
    rt = open_rt(runtimes, db, lease_ttl=0.6)
    run_id = rt.start(two_busy, "l").run_id
    assert gate("l.1:started").wait(10)
    closer = close_in_thread(rt, drain=30)
    deadline = time.monotonic() + 1.5
    while time.monotonic() < deadline:  # three leases, the step heartbeating
        assert closer.is_alive()
        closer.join(0.05)
    gate("l.1").set()
    closer.join(20)
    assert not closer.is_alive()
    assert types_of(db, run_id, "busy")[-1] == "step_completed"


@pytest.mark.parametrize(
    ("drain", "error"),
    [(-1, InvalidArgument), (math.nan, InvalidArgument), (math.inf, InvalidArgument),
     ("5", TypeError), (None, TypeError), (True, TypeError)],
)  # fmt: skip
def test_A4_a_bad_drain_is_refused_and_loses_nothing(
    runtimes: list[Runtime], db: Path, drain: object, error: type[Exception]
) -> None:
    with pytest.raises(error, match="drain"):
        Runtime(db, drain=drain)  # type: ignore[arg-type]
    assert not store_exists(db)  # refused before the store was touched
    rt = open_rt(runtimes, db)
    if drain is not None:  # None is close()'s own default
        with pytest.raises(error, match="drain"):
            rt.close(drain=drain)  # type: ignore[arg-type]
    gate("v.1").set()
    assert rt.start(two_busy, "v").result(timeout=10) == ["v.1 done", "v.2 done"]


def test_A4_close_without_a_drain_still_asks_steps_to_stop_at_once(
    runtimes: list[Runtime], db: Path
) -> None:
    rt = open_rt(runtimes, db)
    run_id = rt.start(two_busy, "z").run_id
    assert gate("z.1:started").wait(10)
    began = time.monotonic()
    rt.close()
    assert time.monotonic() - began < 4
    assert "z.1:returned" not in NOTES
    assert types_of(db, run_id, "busy")[-1] == "step_abandoned"


@pytest.mark.parametrize(("state", "event"), sorted(CLOSE_TRANSITIONS, key=str))
def test_A4_the_close_table_moves_forward(state: CloseState, event: CloseEvent) -> None:
    after = next_close_state(state, event)
    assert after is CLOSE_TRANSITIONS[(state, event)]
    order = list(CloseState)
    assert order.index(after) > order.index(state)


def test_A4_every_close_transition_not_in_the_table_raises() -> None:
    missing = [(s, e) for s in CloseState for e in CloseEvent if (s, e) not in CLOSE_TRANSITIONS]
    assert missing
    for state, event in missing:
        with pytest.raises(InvalidTransition):
            next_close_state(state, event)


def test_A4_a_draining_runtime_claims_and_resumes_no_run(runtimes: list[Runtime], db: Path) -> None:
    orphaned_by = open_rt(runtimes, db)
    orphan = orphaned_by.start(two_busy, "o").run_id
    assert gate("o.1:started").wait(10)
    rt = open_rt(runtimes, db, claim_runs=True, lease_ttl=1.0)  # scans for orphans every 0.5 s
    hosted = rt.start(two_busy, "p").run_id
    assert gate("p.1:started").wait(10)
    closer = close_in_thread(rt, drain=30)
    orphaned_by.kill()  # its lease expires at once: its run is an orphan now
    pending = "pending-during-drain"
    with open_store(db) as store:  # as `proctor start` writes a run
        store.append(
            [
                NewEvent(
                    run_id=pending,
                    type=EventType.RUN_CREATED,
                    data={"workflow": two_busy.name, "args": ["q"], "kwargs": {}, "owner": None},
                )
            ]
        )
    runs_on("p.1", beats=200)  # a second at least: several claim polls and orphan scans
    gate("p.1").set()
    closer.join(20)
    assert not closer.is_alive()
    with open_store(db, readonly=True) as store:
        claimed = store.get_run(pending)
        resumed = store.get_run(orphan)
    assert (claimed.status, claimed.owner) == (RunState.PENDING, None)
    assert resumed.owner == orphaned_by.id
    assert "run_resumed" not in types_of(db, orphan)
    assert "q.1:runs" not in NOTES
    assert NOTES["o.1:runs"] == [1]
    assert types_of(db, hosted, "busy")[-1] == "step_completed"


@pytest.mark.parametrize("value", ["-1", "nan", "inf", "soon"])
def test_A4_worker_refuses_a_bad_drain_with_exit_2_and_opens_nothing(db: Path, value: str) -> None:
    result = CliRunner().invoke(
        cli, ["--db", str(db), "worker", "--drain", value, "tests.drain_workflows"]
    )
    assert result.exit_code == 2, result.output
    assert "--drain" in result.output
    assert not store_exists(db)


def test_A1_A4_close_async_drains_and_nothing_new_starts_by_any_way(
    runtimes: list[Runtime], db: Path
) -> None:
    """The awaited close drains as close() does, and during the drain every
    way of starting a run (start_async, a chosen id, restart and its twin)
    raises RuntimeClosed, writing nothing."""
    first = open_rt(runtimes, db)
    done = first.start(two_busy, "e")
    gate("e.1").set()
    assert done.result(timeout=10) == ["e.1 done", "e.2 done"]
    running = first.start(two_busy, "f").run_id
    assert gate("f.1:started").wait(10)

    async def service() -> None:
        closing = asyncio.create_task(first.close_async(drain=30))
        deadline = time.monotonic() + 10
        while first._closing.state is CloseState.OPEN and time.monotonic() < deadline:
            await asyncio.sleep(0.001)
        for attempt in (
            first.start_async(two_busy, "new"),
            first.start_async(two_busy, "new", run_id="chosen"),
            first.restart_async(done.run_id),
        ):
            with pytest.raises(RuntimeClosed, match="drains"):
                await attempt
        with pytest.raises(RuntimeClosed, match="drains"):
            first.restart(done.run_id)
        runs_on("f.1")
        gate("f.1").set()  # it returns during the drain
        await closing

    asyncio.run(service())
    with open_store(db, readonly=True) as store:
        assert {r.run_id for r in store.list_runs()} == {done.run_id, running}
    assert types_of(db, running, "busy")[-1] == EventType.STEP_COMPLETED.value
    assert "new.1:runs" not in NOTES


@pytest.mark.parametrize("call", ["cancel", "terminate", "cancel_async", "start_async"])
def test_A3_A4_calls_racing_a_close_succeed_or_raise_runtime_closed_having_written_nothing(
    runtimes: list[Runtime], db: Path, call: str
) -> None:
    """Whatever phase the close is in when a call meets it (the drain, the
    end of the drain while the actors stop, the store closing), the call
    either takes effect or raises RuntimeClosed, writing nothing; never the
    error of a stopped Journal or Guardian or a closed connection."""
    rt = open_rt(runtimes, db)
    done = [rt.start(two_busy, f"race{i}") for i in range(4)]
    for i in range(4):
        gate(f"race{i}.1").set()
    for handle in done:
        handle.result(timeout=10)
    finished = [r.run_id for r in rt.list_runs()]
    outcomes: list[str] = []
    stop = threading.Event()

    def caller(k: int) -> None:
        n = 0
        while not stop.is_set():
            n += 1
            target = done[n % len(done)].run_id
            try:
                if call == "cancel":
                    rt.cancel(target, "race")
                elif call == "terminate":
                    rt.terminate(target, "race")
                elif call == "cancel_async":
                    asyncio.run(rt.cancel_async(target, "race"))
                else:
                    asyncio.run(rt.start_async(two_busy, f"new{k}-{n}", run_id=f"new{k}-{n}"))
                outcomes.append("ok")
            except RuntimeClosed:
                outcomes.append("closed")
                return

    callers = [threading.Thread(target=caller, args=(k,)) for k in range(4)]
    for thread in callers:
        thread.start()
    wait_until(lambda: len(outcomes) >= 4)
    rt.close(drain=1)
    stop.set()
    for thread in callers:
        thread.join(20)
    assert outcomes.count("closed") == len(callers)  # each met the close as RuntimeClosed
    with open_store(db, readonly=True) as store:
        created = [r.run_id for r in store.list_runs() if r.run_id.startswith("new")]
        for run_id in finished:  # a cancel or terminate of a finished run changes nothing
            assert store.get_run(run_id).status is RunState.COMPLETED
    if call == "start_async":
        assert len(created) == outcomes.count("ok")  # each start that answered made its run


def test_A4_a_cancel_with_wait_is_refused_unwritten_during_a_drain(
    runtimes: list[Runtime], db: Path
) -> None:
    """Waits for a run's end are refused while the runtime drains; a cancel
    that would wait is refused before it writes, so RuntimeClosed means
    nothing was written. A cancel without wait is written, as before."""
    rt = open_rt(runtimes, db)
    run_id = rt.start(two_busy, "cw").run_id
    assert gate("cw.1:started").wait(10)
    closer = close_in_thread(rt, drain=30)
    with pytest.raises(RuntimeClosed, match="drains"):
        rt.cancel(run_id, "wait for me", wait=True, timeout=5)
    with pytest.raises(RuntimeClosed, match="drains"):
        asyncio.run(rt.cancel_async(run_id, "wait for me", wait=True, timeout=5))
    assert "cancel_requested" not in types_of(db, run_id)
    assert rt.cancel(run_id, "no wait").changed  # written: its heartbeat raises
    closer.join(20)
    assert not closer.is_alive()
    assert types_of(db, run_id).count("cancel_requested") == 1


def test_A4_a_wait_of_a_cancel_that_a_close_cuts_short_says_so(
    runtimes: list[Runtime], db: Path
) -> None:
    """A cancel written before the close, whose wait the close then cuts:
    the answer is the written cancel, saying the wait stopped, not an error."""
    rt = open_rt(runtimes, db)
    run_id = rt.start(stubborn, "cut").run_id
    assert gate("cut:started").wait(10)
    answers: list[object] = []
    waiter = threading.Thread(
        target=lambda: answers.append(rt.cancel(run_id, "cut", wait=True, timeout=30))
    )
    waiter.start()
    wait_until(lambda: "cancel_requested" in types_of(db, run_id))
    closer = close_in_thread(rt)
    waiter.join(20)
    gate("cut").set()
    closer.join(20)
    (answer,) = answers
    assert isinstance(answer, ControlResult)
    assert answer.changed
    assert answer.message.endswith("stopped waiting: the runtime is closing")


@step()
def ignores(key: str) -> str:
    """Never checks its mailbox: only its gate ends it."""
    gate(f"{key}:started").set()
    assert gate(key).wait(20)
    note(f"{key}:returned", 1)
    return f"{key} done"


@workflow()
async def stubborn(key: str) -> str:
    return await ignores(key)


def test_A4_kill_during_a_drain_stops_every_write_at_once(
    runtimes: list[Runtime], db: Path
) -> None:
    """kill() is a crash, drain or not: from the call on nothing more is
    written (the step's late result is not), and its runs are another
    runtime's to resume at once."""
    rt = open_rt(runtimes, db)
    run_id = rt.start(stubborn, "kd").run_id
    assert gate("kd:started").wait(10)
    closer = close_in_thread(rt, drain=30)
    killer = threading.Thread(target=rt.kill)
    killer.start()
    wait_until(rt._halted.is_set)
    logged = types_of(db, run_id)
    gate("kd").set()  # its result comes after the kill: never recorded
    killer.join(20)
    closer.join(20)
    assert not killer.is_alive()
    assert not closer.is_alive()
    wait_until(lambda: "kd:returned" in NOTES)
    assert types_of(db, run_id) == logged
    second = open_rt(runtimes, db)
    gate("kd").set()
    assert second.handle(run_id).result(timeout=10) == "kd done"
