"""Signals: DESIGN.md rule B5, through the public API and the CLI.

``await wait_for_signal(name)`` in a body; ``signal(run_id, name, payload)``
on the Runtime, the Client and a RunHandle (each with its awaitable twin),
and ``proctor signal RUN_ID NAME [JSON]``. The peers' rules these follow:
Temporal buffers signals sent before the workflow waits and delivers them
in order; DBOS ``recv(topic)`` takes messages of one topic FIFO; a signal
to a closed Temporal workflow fails (here: ``RunNotActive``, CLI exit 4).
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from actors import (
    CancellationError,
    Client,
    InvalidArgument,
    InvalidArgumentType,
    NotSerializable,
    PayloadTooLarge,
    ProctorError,
    RunCancelled,
    RunNotActive,
    RunNotFound,
    RunState,
    Runtime,
    WorkflowFailed,
    get_context,
    shield,
    step,
    wait_for_signal,
    workflow,
)
from cli import cli
from persistence import EventType
from tests.conftest import (
    NOTES,
    events_of,
    gate,
    note,
    open_rt,
    run_cli,
    wait_for_event,
    wait_until,
)
from tests.processes import DEADLINE, Worker, events, proctor, record

pytestmark = pytest.mark.timeout(60)

_E = EventType


@step()
def echo(value: object) -> object:
    return value


@step()
def held(key: str) -> str:
    """Blocks until the test opens the gate ``key``, checking its mailbox
    meanwhile: an attempt abandoned by a killed runtime unwinds at once (T3)."""
    note(f"{key}:runs", 1)
    gate(f"{key}:started").set()
    ctx = get_context()
    deadline = time.monotonic() + 20
    while not gate(key).wait(0.001) and time.monotonic() < deadline:
        ctx.check_cancellation()
    return key


@workflow()
async def one_approval() -> object:
    return await wait_for_signal("approved")


@workflow()
async def takes(names: list[str]) -> list[object]:
    """Waits for each name in turn; returns the payloads it took."""
    return [await wait_for_signal(name) for name in names]


def received(rt: Runtime, run_id: str) -> list[tuple[int | None, str | None, str]]:
    """(call, name, signal id) of each signal_received, in log order."""
    return [
        (e.call, e.step, e.data["signal_id"])
        for e in events_of(rt, run_id)
        if e.type is _E.SIGNAL_RECEIVED
    ]


def sent_ids(rt: Runtime, run_id: str) -> list[str]:
    return [e.data["signal_id"] for e in events_of(rt, run_id) if e.type is _E.SIGNAL_SENT]


def waiting(rt: Runtime, run_id: str, nth: int = 1) -> None:
    """Until the body has suspended ``nth`` times in a wait for a signal."""
    wait_until(
        lambda: [e.type for e in events_of(rt, run_id)].count(_E.SIGNAL_WAITING) >= nth,
        timeout=10,
    )


# -- delivery and order --------------------------------------------------------------


def test_B5_a_signal_sent_before_the_wait_is_kept_and_a_waiting_body_takes_one_sent_later(
    rt: Runtime,
) -> None:
    @workflow()
    async def wf(key: str) -> list[object]:
        await held(key)  # the first signal comes while the body is busy here
        first = await wait_for_signal("approved")
        second = await wait_for_signal("approved")
        return [first, second]

    handle = rt.start(wf, "early")
    assert gate("early:started").wait(10)
    rt.signal(handle.run_id, "approved", {"by": "ann"})
    gate("early").set()
    waiting(rt, handle.run_id)  # the first was taken at once; the second waits
    handle.signal("approved", {"by": "bob"})
    assert handle.result(timeout=10) == [{"by": "ann"}, {"by": "bob"}]
    sent = sent_ids(rt, handle.run_id)
    assert received(rt, handle.run_id) == [(1, "approved", sent[0]), (2, "approved", sent[1])]


def test_B5_signals_of_other_names_do_not_satisfy_a_wait(rt: Runtime) -> None:
    handle = rt.start(takes, ["approved", "rejected"])
    waiting(rt, handle.run_id)
    rt.signal(handle.run_id, "rejected", "no")
    rt.signal(handle.run_id, "approve", "typo")  # a near miss is another name
    # The wait for "approved" is still waiting: nothing was taken.
    assert received(rt, handle.run_id) == []
    assert handle.status() is RunState.RUNNING
    rt.signal(handle.run_id, "approved", "yes")
    # "rejected" was kept for the wait that asks for it.
    assert handle.result(timeout=10) == ["yes", "no"]


@workflow()
async def held_then_takes(key: str, names: list[str]) -> list[object]:
    await held(key)
    return [await wait_for_signal(name) for name in names]


def test_B5_many_signals_in_a_row_keep_their_order(rt: Runtime, db: Path) -> None:
    count = 60
    handle = rt.start(held_then_takes, "many", ["n"] * count)
    assert gate("many:started").wait(10)
    with Client(db) as client:
        # A third pending before any wait, from the runtime's facade and from
        # a client (another writer); the rest while the body waits.
        for i in range(count // 3):
            (rt if i % 2 else client).signal(handle.run_id, "n", i)
        gate("many").set()
        for i in range(count // 3, count):
            (rt if i % 2 else client).signal(handle.run_id, "n", i)
    assert handle.result(timeout=20) == list(range(count))
    assert [r[2] for r in received(rt, handle.run_id)] == sent_ids(rt, handle.run_id)


def test_B5_signals_from_two_threads_are_each_taken_once_in_each_senders_order(
    rt: Runtime,
) -> None:
    count = 40
    handle = rt.start(takes, ["n"] * (2 * count))

    def send(who: str) -> None:
        for i in range(count):
            rt.signal(handle.run_id, "n", [who, i])

    senders = [threading.Thread(target=send, args=(w,)) for w in "ab"]
    for t in senders:
        t.start()
    for t in senders:
        t.join(20)
    got = handle.result(timeout=20)
    assert sorted(map(tuple, got)) == sorted((w, i) for w in "ab" for i in range(count))
    for who in "ab":
        assert [i for w, i in got if w == who] == list(range(count))
    # Each wait took the signals in the order the log has them.
    assert [r[2] for r in received(rt, handle.run_id)] == sent_ids(rt, handle.run_id)


# -- checkpoints: cancel, shield, terminate -----------------------------------------------


def test_B5_a_cancel_during_a_wait_raises_there_at_once(rt: Runtime) -> None:
    @workflow()
    async def wf() -> str:
        try:
            await wait_for_signal("approved")
        except CancellationError as exc:
            note("cancelled", exc.reason)
            raise
        return "unreachable"

    handle = rt.start(wf)
    waiting(rt, handle.run_id)
    begun = time.monotonic()
    rt.cancel(handle.run_id, "no approval coming")
    record = handle.wait_finished(timeout=10)
    assert time.monotonic() - begun < 2.0  # not waiting for any signal
    assert record.status is RunState.CANCELLED
    assert NOTES["cancelled"] == ["no approval coming"]
    types = [e.type for e in events_of(rt, handle.run_id)]
    assert types.count(_E.CANCEL_DELIVERED) == 1
    assert _E.SIGNAL_RECEIVED not in types


def test_B5_a_wait_that_starts_while_cancelling_raises_and_takes_no_signal(rt: Runtime) -> None:
    @workflow()
    async def wf(key: str) -> object:
        with shield():
            await held(key)
        return await wait_for_signal("approved")  # the first checkpoint after the shield

    handle = rt.start(wf, "c3")
    assert gate("c3:started").wait(10)
    rt.signal(handle.run_id, "approved", "kept")
    rt.cancel(handle.run_id, "stop")
    gate("c3").set()
    with pytest.raises(RunCancelled):
        handle.result(timeout=10)
    assert received(rt, handle.run_id) == []


def test_B5_a_wait_in_a_shield_is_not_interrupted_by_a_cancel(rt: Runtime) -> None:
    @workflow()
    async def wf() -> object:
        with shield():
            payload = await wait_for_signal("approved")
            note("inside", payload)
        return await echo(payload)  # the first checkpoint after the shield raises

    handle = rt.start(wf)
    waiting(rt, handle.run_id)
    rt.cancel(handle.run_id, "later")
    wait_for_event(rt, handle.run_id, _E.CANCEL_BUFFERED)
    assert handle.status() is RunState.CANCELLING
    assert _E.CANCEL_DELIVERED not in [e.type for e in events_of(rt, handle.run_id)]
    rt.signal(handle.run_id, "approved", "signed")
    with pytest.raises(RunCancelled):
        handle.result(timeout=10)
    assert NOTES["inside"] == ["signed"]
    assert "echo" not in "".join(e.step or "" for e in events_of(rt, handle.run_id))


def test_B5_terminate_ends_a_waiting_run(rt: Runtime) -> None:
    handle = rt.start(one_approval)
    waiting(rt, handle.run_id)
    handle.terminate("gone")
    assert handle.wait_finished(timeout=10).status is RunState.TERMINATED
    with pytest.raises(RunNotActive):
        handle.signal("approved", 1)


# -- durability: a restart replays the same payloads to the same waits ------------------


def test_B5_a_resumed_run_hands_the_same_signals_to_the_same_waits(
    runtimes: list[Runtime], db: Path
) -> None:
    @workflow()
    async def wf(key: str) -> list[object]:
        first = await wait_for_signal("approved")
        await held(key)
        second = await wait_for_signal("approved")
        return [first, second]

    first_rt = open_rt(runtimes, db)
    run_id = first_rt.start(wf, "resume").run_id
    waiting(first_rt, run_id)
    first_rt.signal(run_id, "approved", "one")
    first_rt.signal(run_id, "approved", "two")  # before the second wait
    assert gate("resume:started").wait(10)
    first_rt.kill()
    gate("resume:started").clear()

    second_rt = open_rt(runtimes, db)
    assert gate("resume:started").wait(10)  # the lost step runs again
    gate("resume").set()
    assert second_rt.handle(run_id).result(timeout=10) == ["one", "two"]
    sent = sent_ids(second_rt, run_id)
    assert received(second_rt, run_id) == [(0, "approved", sent[0]), (2, "approved", sent[1])]


def test_B5_a_wait_in_flight_at_a_crash_takes_a_signal_sent_while_nobody_hosted_the_run(
    runtimes: list[Runtime], db: Path
) -> None:
    first_rt = open_rt(runtimes, db)
    run_id = first_rt.start(takes, ["approved", "approved"]).run_id
    waiting(first_rt, run_id)
    first_rt.kill()
    with Client(db) as client:
        client.signal(run_id, "approved", "while down")
        client.signal(run_id, "approved", "also")
    second_rt = open_rt(runtimes, db)
    assert second_rt.handle(run_id).result(timeout=10) == ["while down", "also"]
    types = [e.type for e in events_of(second_rt, run_id)]
    assert types.count(_E.SIGNAL_WAITING) == 1  # the resumed wait is not recorded twice


def test_B5_a_wait_in_flight_at_a_crash_meets_a_cancel_recorded_while_nobody_hosted_the_run(
    runtimes: list[Runtime], db: Path
) -> None:
    @workflow()
    async def wf() -> str:
        try:
            await wait_for_signal("approved")
        except CancellationError as exc:
            note("d3", exc.reason)
            raise
        return "unreachable"

    first_rt = open_rt(runtimes, db)
    run_id = first_rt.start(wf).run_id
    waiting(first_rt, run_id)
    first_rt.kill()
    with Client(db) as client:
        client.signal(run_id, "other", "not for this wait")
        client.cancel(run_id, "while down")
    second_rt = open_rt(runtimes, db)
    record = second_rt.handle(run_id).wait_finished(timeout=10)
    assert record.status is RunState.CANCELLED  # D3: met at the resumed wait
    assert NOTES["d3"] == ["while down"]
    assert received(second_rt, run_id) == []


def test_B5_a_cancel_met_in_a_wait_replays_at_the_same_wait_after_a_crash(
    runtimes: list[Runtime], db: Path
) -> None:
    @workflow()
    async def wf(key: str) -> str:
        try:
            await wait_for_signal("approved")
        except CancellationError:
            with shield():
                await held(key)  # cleanup, in flight at the crash
            raise
        return "unreachable"

    first_rt = open_rt(runtimes, db)
    run_id = first_rt.start(wf, "cleanup").run_id
    waiting(first_rt, run_id)
    first_rt.cancel(run_id, "stop")
    assert gate("cleanup:started").wait(10)
    first_rt.kill()
    gate("cleanup:started").clear()

    second_rt = open_rt(runtimes, db)
    assert gate("cleanup:started").wait(10)  # replay met the cancel at the same wait
    gate("cleanup").set()
    record = second_rt.handle(run_id).wait_finished(timeout=10)
    assert record.status is RunState.CANCELLED, record.error
    assert [e.type for e in events_of(second_rt, run_id)].count(_E.CANCEL_DELIVERED) == 1


# -- refusals and bad input -----------------------------------------------------------------


def test_B5_signalling_a_finished_run_is_refused_and_writes_nothing(rt: Runtime, db: Path) -> None:
    handle = rt.start(takes, [])
    assert handle.result(timeout=10) == []
    before = len(events_of(rt, handle.run_id))
    with pytest.raises(RunNotActive) as refused:
        rt.signal(handle.run_id, "approved", 1)
    assert refused.value.status is RunState.COMPLETED
    assert "already finished: completed" in str(refused.value)
    with pytest.raises(RunNotActive):
        asyncio.run(rt.signal_async(handle.run_id, "approved", 1))
    with Client(db) as client, pytest.raises(RunNotActive):
        client.signal(handle.run_id, "approved", 1)
    result = run_cli(db, "signal", handle.run_id, "approved", "1")
    assert result.exit_code == 4, result.output
    assert "already finished: completed" in result.output
    assert len(events_of(rt, handle.run_id)) == before


def test_B5_an_unknown_run_id_is_refused(rt: Runtime, db: Path) -> None:
    with pytest.raises(RunNotFound):
        rt.signal("no-such-run", "approved")
    with Client(db) as client, pytest.raises(RunNotFound):
        client.signal("no-such-run", "approved")
    result = run_cli(db, "signal", "no-such-run", "approved")
    assert result.exit_code == 3, result.output
    assert "no-such-run" in result.output


def test_B5_bad_names_and_payloads_are_clear_errors_and_write_nothing(
    rt: Runtime, db: Path
) -> None:
    handle = rt.start(one_approval)
    waiting(rt, handle.run_id)
    before = len(events_of(rt, handle.run_id))
    with pytest.raises(NotSerializable, match="payload of signal 'approved'"):
        rt.signal(handle.run_id, "approved", object())
    with pytest.raises(NotSerializable):
        rt.signal(handle.run_id, "approved", float("nan"))
    with pytest.raises(PayloadTooLarge):
        rt.signal(handle.run_id, "approved", "x" * (rt.max_payload_bytes + 1))
    with pytest.raises(InvalidArgumentType, match="signal name must be text"):
        rt.signal(handle.run_id, 42, 1)  # type: ignore[arg-type]
    for name in ("", "a\nb", "n" * 201):
        with pytest.raises(InvalidArgument):
            rt.signal(handle.run_id, name, 1)
    with Client(db) as client, pytest.raises(NotSerializable):
        client.signal(handle.run_id, "approved", {1, 2})
    assert len(events_of(rt, handle.run_id)) == before
    handle.signal("approved", None)  # None is a payload like any other
    assert handle.result(timeout=10) is None


def test_B5_a_wait_with_a_bad_timeout_or_name_is_refused_clearly(rt: Runtime) -> None:
    """(Timeouts themselves are tested in test_signal_timeouts.py.)"""

    @workflow()
    async def wf() -> object:
        return await wait_for_signal("approved", timeout=-5)

    with pytest.raises(WorkflowFailed, match=r"wait_for_signal\(timeout\) must be at least 0"):
        rt.start(wf).result(timeout=10)
    with pytest.raises(ProctorError):
        wait_for_signal("approved", timeout=-1.0)
    with pytest.raises(InvalidArgument):
        wait_for_signal("")


def test_B5_the_async_twins_send_as_the_blocking_calls_do(rt: Runtime, db: Path) -> None:
    handle = rt.start(takes, ["a", "b", "c"])

    async def send() -> None:
        await rt.signal_async(handle.run_id, "a", 1)
        await handle.signal_async("b", 2)
        async with Client(db) as client:
            result = await client.signal_async(handle.run_id, "c", 3)
            assert result.changed
            assert "signal 'c' sent" in result.message
            with pytest.raises(RunNotFound):
                await client.signal_async("nope", "c", 3)

    asyncio.run(send())
    assert handle.result(timeout=10) == [1, 2, 3]


# -- the CLI ----------------------------------------------------------------------------------


def test_B5_a_signal_from_the_cli_in_another_process_wakes_a_waiting_body(
    rt: Runtime, db: Path
) -> None:
    handle = rt.start(one_approval)
    waiting(rt, handle.run_id)
    done = proctor(db, "signal", handle.run_id, "approved", '{"by": "ops"}')
    assert done.returncode == 0, done.stderr
    assert "signal 'approved' sent" in done.stdout
    assert handle.result(timeout=10) == {"by": "ops"}
    origins = [e.data["origin"] for e in events_of(rt, handle.run_id) if e.type is _E.SIGNAL_SENT]
    assert origins[0].startswith("cli-")


def test_B5_cli_payload_from_stdin_and_bad_json_is_a_usage_error(rt: Runtime, db: Path) -> None:
    handle = rt.start(takes, ["approved", "approved"])
    waiting(rt, handle.run_id)
    bad = run_cli(db, "signal", handle.run_id, "approved", "{not json")
    assert bad.exit_code == 2
    assert "is not JSON" in bad.output
    nan = run_cli(db, "signal", handle.run_id, "approved", "NaN")
    assert nan.exit_code == 2
    empty_name = run_cli(db, "signal", handle.run_id, "", "1")
    assert empty_name.exit_code == 2
    assert "must not be empty" in empty_name.output
    assert received(rt, handle.run_id) == []
    piped = CliRunner().invoke(
        cli, ["--db", str(db), "signal", handle.run_id, "approved", "-"], input='["from", "stdin"]'
    )
    assert piped.exit_code == 0, piped.output
    assert run_cli(db, "signal", handle.run_id, "approved").exit_code == 0  # null payload
    assert handle.result(timeout=10) == [["from", "stdin"], None]


def test_B5_runs_status_shows_pending_signals_and_a_waiting_body_and_logs_show_them(
    rt: Runtime, db: Path
) -> None:
    @workflow()
    async def wf(key: str) -> list[object]:
        await held(key)
        return [await wait_for_signal("approved"), await wait_for_signal("approved")]

    handle = rt.start(wf, "status")
    assert gate("status:started").wait(10)
    rt.signal(handle.run_id, "shipped", "x" * 500)
    rt.signal(handle.run_id, "approved", {"by": "ann"})
    status = run_cli(db, "runs", "status", handle.run_id)
    assert status.exit_code == 0, status.output
    assert "2 pending (oldest first): shipped, approved" in status.output
    as_json = json.loads(run_cli(db, "runs", "status", handle.run_id, "--json").output)
    assert [s["name"] for s in as_json["signals"]["pending"]] == ["shipped", "approved"]
    gate("status").set()
    # The first wait took "approved" (at once, or once it was delivered);
    # the second waits.
    wait_until(
        lambda: any(
            e.type is _E.SIGNAL_WAITING and e.call == 2 for e in events_of(rt, handle.run_id)
        )
    )
    status = run_cli(db, "runs", "status", handle.run_id)
    assert "for signal approved" in status.output
    assert "1 pending (oldest first): shipped" in status.output
    logs = run_cli(db, "runs", "logs", handle.run_id)
    assert logs.exit_code == 0
    lines = logs.output.splitlines()
    assert any("signal_sent" in ln and "'approved'" in ln and '{"by": "ann"}' in ln for ln in lines)
    long = next(ln for ln in lines if "signal_sent" in ln and "shipped" in ln)
    assert "…" in long  # payloads abbreviated
    assert "x" * 100 not in long
    assert any("signal_received" in ln and "approved #1" in ln for ln in lines)
    assert any("signal_waiting" in ln and "approved #2" in ln for ln in lines)
    handle.signal("approved", 2)
    assert handle.result(timeout=10) == [{"by": "ann"}, 2]


# -- real processes: kill -9 of the worker --------------------------------------------------


@pytest.mark.timeout(120)
def test_B5_two_signals_sent_before_the_wait_arrive_in_order_after_a_kill_9(
    db: Path, tmp_path: Path
) -> None:
    folder = tmp_path / "markers"
    folder.mkdir()
    module = "tests.signal_workflows"
    started = proctor(db, "start", f"{module}:approvals", json.dumps(str(folder)))
    assert started.returncode == 0, started.stderr
    run_id = started.stdout.strip()
    # Both signals are in the log before any runtime hosts the run, so
    # before either wait: each is kept, and they are taken in order.
    for payload in ('"one"', '"two"'):
        sent = proctor(db, "signal", run_id, "approved", payload)
        assert sent.returncode == 0, sent.stderr
    workers: list[Worker] = []
    try:
        workers.append(Worker(db, tmp_path / "w0.log", module))
        # The first wait took "one"; the run is in the step after it.
        wait_until((folder / "between.started.1").exists, timeout=DEADLINE)
        workers[0].kill()
        workers.append(Worker(db, tmp_path / "w1.log", module))
        wait_until((folder / "between.started.2").exists, timeout=DEADLINE)
        (folder / "between.release").touch()
        wait_until(lambda: record(db, run_id).status.is_terminal, timeout=DEADLINE)
    finally:
        for w in workers:
            if w.process.poll() is None:
                w.stop()
    final = record(db, run_id)
    assert final.status is RunState.COMPLETED, final.error
    assert final.result == ["one", "two"]  # the replayed wait got "one" again, from the log
    log = events(db, run_id)
    sent_order = [e.data["signal_id"] for e in log if e.type is _E.SIGNAL_SENT]
    taken = [(e.call, e.data["signal_id"]) for e in log if e.type is _E.SIGNAL_RECEIVED]
    assert taken == [(0, sent_order[0]), (2, sent_order[1])]  # each once, not taken again
