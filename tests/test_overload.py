"""Under load it degrades, never collapses: step slots, waiting attempts,
control that jumps the Journal's backlog, coalesced heartbeats."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pykka
import pytest
from click.testing import CliRunner

from actors import (
    RunState,
    Runtime,
    StepState,
    get_context,
    shield,
    step,
    workflow,
)
from actors._messages import Append, RenewLease
from actors._slots import StepSlots
from cli import cli
from persistence import (
    EventType,
    NewEvent,
    Store,
    StoreLocked,
    cancel_request,
    open_store,
)
from tests.conftest import (
    NOTES,
    events_of,
    gate,
    note,
    open_rt,
    steps_of,
    wait_until,
)
from tests.store_access import store_class, store_exists, write_lock

pytestmark = pytest.mark.timeout(60)

#: Steps in these tests note entering and leaving under this lock.
_LOCK = threading.Lock()
_RUNNING: list[str] = []


@step()
def counted(key: str) -> str:
    """Notes how many attempts run beside it, then waits for its gate (checking)."""
    ctx = get_context()
    with _LOCK:
        _RUNNING.append(key)
        note("entered", key)
        note("peak", len(_RUNNING))
    try:
        while not gate(key).wait(0.005):
            ctx.check_cancellation()
    finally:
        with _LOCK:
            _RUNNING.remove(key)
    return key


@workflow()
async def one_counted(key: str) -> str:
    return await counted(key)


@workflow()
async def shielded_counted(key: str) -> str:
    with shield():
        return await counted(key)


@pytest.fixture(autouse=True)
def _forget_running() -> Iterator[None]:
    yield
    _RUNNING.clear()


def entered() -> list[object]:
    with _LOCK:
        return list(NOTES.get("entered", []))


def step_status(rt: Runtime, run_id: str) -> list[StepState]:
    return [s.status for s in steps_of(rt, run_id)]


def test_overload_at_most_max_concurrent_steps_run_and_the_rest_start_in_order(
    runtimes: list[Runtime], db: Path
) -> None:
    rt = open_rt(runtimes, db, max_concurrent_steps=2)
    keys = [f"r{i}" for i in range(6)]
    handles = [rt.start(one_counted, key) for key in keys]
    wait_until(lambda: len(entered()) == 2)
    for handle in handles[2:]:  # recorded as waiting, not started
        assert step_status(rt, handle.run_id) == [StepState.WAITING]
    # Free one slot at a time: the oldest waiting attempt takes it.
    for i, key in enumerate(keys):
        gate(key).set()
        assert handles[i].result(timeout=10) == key
        wait_until(lambda i=i: len(entered()) == min(len(keys), i + 3))
    assert entered() == keys
    assert max(NOTES["peak"]) <= 2  # type: ignore[type-var]
    for handle in handles:
        types = [e.type.value for e in handle.events()]
        # Waiting is in the log, and the attempt started once, as attempt 1.
        if handle in handles[2:]:
            assert types.index("step_waiting") < types.index("step_started")
        assert [(s.attempt, s.status) for s in steps_of(rt, handle.run_id)] == [
            (1, StepState.COMPLETED)
        ]


def test_overload_a_waiting_attempt_shows_in_runs_status(runtimes: list[Runtime], db: Path) -> None:
    rt = open_rt(runtimes, db, max_concurrent_steps=1)
    busy = rt.start(one_counted, "busy")
    wait_until(lambda: entered() == ["busy"])
    waiting = rt.start(one_counted, "later")
    result = CliRunner().invoke(cli, ["--db", str(db), "runs", "status", waiting.run_id, "--json"])
    assert result.exit_code == 0, result.output
    shown = json.loads(result.stdout)
    assert [(s["name"], s["attempt"], s["status"]) for s in shown["steps"]] == [
        (counted.name, 1, "waiting")
    ]
    text = CliRunner().invoke(cli, ["--db", str(db), "runs", "status", waiting.run_id])
    assert text.exit_code == 0, text.output
    assert "waiting" in text.stdout
    gate("busy").set()
    gate("later").set()
    assert busy.result(timeout=10) == "busy"
    assert waiting.result(timeout=10) == "later"


@pytest.mark.parametrize("how", ["cancel", "terminate"])
def test_C3_waiting_attempt_of_a_stopped_run_is_never_started(
    runtimes: list[Runtime], db: Path, how: str
) -> None:
    """C3 (cancel) and T2 (terminate): an attempt still waiting for a slot
    ends with its run at once, while the slot stays taken, and never starts."""
    rt = open_rt(runtimes, db, max_concurrent_steps=1)
    rt.start(one_counted, "busy")
    wait_until(lambda: entered() == ["busy"])
    victim = rt.start(one_counted, "victim")
    after = rt.start(one_counted, "after")
    if how == "cancel":
        rt.cancel(victim.run_id, "not needed")
        expected, step_end = RunState.CANCELLED, StepState.CANCELLED
    else:
        rt.terminate(victim.run_id, "not needed")
        expected, step_end = RunState.TERMINATED, StepState.ABANDONED
    # Immediate: the busy step still holds the only slot.
    assert victim.wait_finished(timeout=5).status is expected
    wait_until(lambda: step_status(rt, victim.run_id) == [step_end])
    assert entered() == ["busy"]
    gate("busy").set()
    gate("after").set()
    assert after.result(timeout=10) == "after"  # the victim's place in line was skipped
    assert entered() == ["busy", "after"]
    assert "step_started" not in [e.type.value for e in events_of(rt, victim.run_id)]


def test_C3_a_shielded_waiting_attempt_still_starts_when_cancelled(
    runtimes: list[Runtime], db: Path
) -> None:
    """S1: a cancel does not withdraw an attempt called inside a shield."""
    rt = open_rt(runtimes, db, max_concurrent_steps=1)
    busy = rt.start(one_counted, "busy")
    wait_until(lambda: entered() == ["busy"])
    cleanup = rt.start(shielded_counted, "cleanup")
    rt.cancel(cleanup.run_id, "stop")
    gate("busy").set()
    wait_until(lambda: entered() == ["busy", "cleanup"])
    gate("cleanup").set()
    # The shielded step ran to its end, and the body returned (C5).
    assert cleanup.wait_finished(timeout=10).status is RunState.COMPLETED
    assert step_status(rt, cleanup.run_id) == [StepState.COMPLETED]
    assert "cancel_buffered" in [e.type.value for e in cleanup.events()]
    busy.result(timeout=10)


def test_D2_a_waiting_attempt_is_resumed_as_itself_not_reexecuted(
    runtimes: list[Runtime], db: Path
) -> None:
    first = open_rt(runtimes, db, max_concurrent_steps=1)
    busy = first.start(one_counted, "busy")
    wait_until(lambda: entered() == ["busy"])
    waiting = first.start(one_counted, "w")
    first.kill()
    gate("busy").set()  # its run is resumed too, and returns at once
    second = open_rt(runtimes, db, max_concurrent_steps=1)
    wait_until(lambda: "w" in entered())
    gate("w").set()
    assert second.handle(waiting.run_id).result(timeout=10) == "w"
    assert second.handle(busy.run_id).result(timeout=10) == "busy"
    types = [e.type.value for e in events_of(second, waiting.run_id)]
    assert "step_reexecuted" not in types  # it never ran, so nothing ran again
    assert [(s.attempt, s.status) for s in steps_of(second, waiting.run_id)] == [
        (1, StepState.COMPLETED)
    ]


@step()
def flood(key: str, beats: int) -> str:
    ctx = get_context()
    for i in range(beats):
        ctx.heartbeat({"i": i})
    return key


@workflow()
async def one_flood(key: str, beats: int) -> str:
    return await flood(key, beats)


def test_H1_a_heartbeat_flood_is_coalesced_with_the_latest_details_recorded(
    rt: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    written: list[int] = []
    store = store_class(rt.db)
    append_groups = store.append_groups

    def counting(self: Store, groups: Any, heartbeats: Any = (), **kw: Any) -> Any:
        written.append(len(heartbeats))
        return append_groups(self, groups, heartbeats, **kw)

    monkeypatch.setattr(store, "append_groups", counting)
    handle = rt.start(one_flood, "f", 20_000)
    assert handle.result(timeout=30) == "f"
    (row,) = steps_of(rt, handle.run_id)
    assert row.heartbeat_details == {"i": 19_999}  # the last one, not the first
    # One durable write per attempt per second at most, plus the last one.
    assert 1 <= sum(written) <= 2 + (row.finished_at or 0) - row.started_at


def test_overload_control_jumps_the_journals_backlog(
    runtimes: list[Runtime], db: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Cancel, terminate and lease renewal are taken before ordinary appends
    already waiting in the Journal's mailbox, so they keep their latency."""
    # The Journal waits out the test's write lock, however loaded the machine
    # (and the lease outlasts that wait, so the runtime does not fence itself).
    rt = open_rt(runtimes, db, busy_timeout=60, lease_ttl=600)
    calls: list[str] = []
    store = store_class(db)
    append_groups, renew, terminate_tree = (
        store.append_groups,
        store.renew_lease,
        store.terminate_tree,
    )

    def spy_groups(self: Store, groups: Any, heartbeats: Any = (), **kw: Any) -> Any:
        calls.extend(str(e.data.get("reason")) for g in groups for e in g)
        return append_groups(self, groups, heartbeats, **kw)

    def spy_renew(self: Store, owner: str, **kw: Any) -> bool:
        calls.append("renew")
        return renew(self, owner, **kw)

    def spy_terminate(self: Store, run_id: str, reason: str | None, **kw: Any) -> Any:
        calls.append(str(reason))
        return terminate_tree(self, run_id, reason, **kw)

    victims = [rt.start(one_counted, f"v{i}") for i in range(2)]
    wait_until(lambda: len(entered()) == 2)
    monkeypatch.setattr(store, "append_groups", spy_groups)
    monkeypatch.setattr(store, "renew_lease", spy_renew)
    monkeypatch.setattr(store, "terminate_tree", spy_terminate)
    journal = rt._journal
    inbox = journal.actor_inbox
    with write_lock(db):  # the Journal blocks on its first commit
        first = pykka.ThreadingFuture[Any]()
        journal.tell(Append(events=(backlog(victims[0].run_id, "first"),), reply=first))
        wait_until(inbox.empty)  # taken, and stuck in its commit
        for _ in range(600):
            journal.tell(Append(events=(backlog(victims[0].run_id, "backlog"),)))
        done: list[object] = []
        threading.Thread(
            target=lambda: done.append(rt.cancel(victims[0].run_id, "cancel")), daemon=True
        ).start()
        threading.Thread(
            target=lambda: done.append(rt.terminate(victims[1].run_id, "terminate")), daemon=True
        ).start()
        journal.tell(RenewLease())
        wait_until(lambda: len(inbox._control) >= 3)
    wait_until(lambda: len(done) == 2)
    first.get(timeout=10)
    last = pykka.ThreadingFuture[Any]()
    journal.tell(Append(events=(), reply=last))
    last.get(timeout=10)  # the whole backlog is written
    # Control went right after the commit it waited for, before any backlog.
    control = calls[calls.index("first") + 1 : calls.index("backlog")]
    assert {"cancel", "renew", "terminate"} <= set(control) <= {"cancel", "renew", "terminate"}


def backlog(run_id: str, reason: str) -> NewEvent:
    return cancel_request(run_id, reason, source="api", origin="test")


def test_overload_bad_max_concurrent_steps_is_a_clear_error(db: Path) -> None:
    for bad, error in [(0, ValueError), (-3, ValueError), ("2", TypeError), (True, TypeError)]:
        with pytest.raises(error, match="max_concurrent_steps"):
            Runtime(db, max_concurrent_steps=bad)
    assert not store_exists(db)  # refused before anything was opened
    result = CliRunner().invoke(
        cli, ["--db", str(db), "worker", "--max-concurrent-steps", "0", "x"]
    )
    assert result.exit_code == 2
    assert "--max-concurrent-steps" in result.output


def test_overload_step_slots_grant_in_order_and_skip_withdrawn_tickets() -> None:
    slots = StepSlots(1)
    got: list[str] = []
    holder = slots.request(lambda: got.append("never") is None)
    assert holder.granted
    a = slots.request(lambda: got.append("a") is None)
    slots.request(lambda: got.append("gone") is not None)  # its actor died
    b = slots.request(lambda: got.append("b") is None)
    withdrawn = slots.request(lambda: got.append("withdrawn") is None)
    c = slots.request(lambda: got.append("c") is None)
    withdrawn.release()
    assert slots.statistics() == (1, 4)
    holder.release()
    assert got == ["a"]
    assert a.granted
    a.release()
    a.release()  # idempotent: the slot is not freed twice
    assert got == ["a", "gone", "b"]  # a dead taker passes the slot on
    b.release()
    assert got == ["a", "gone", "b", "c"]
    c.release()
    assert slots.statistics() == (0, 0)
    assert not withdrawn.granted


def test_overload_a_closing_runtime_starts_no_waiting_step() -> None:
    """A4: once the runtime stops, a freed slot is granted to nobody."""
    slots = StepSlots(1)
    got: list[str] = []
    holder = slots.request(lambda: got.append("holder") is None)
    waiter = slots.request(lambda: got.append("waiter") is None)
    slots.close()
    holder.release()
    late = slots.request(lambda: got.append("late") is None)
    assert (got, waiter.granted, late.granted) == ([], False, False)
    waiter.release()
    late.release()
    assert slots.statistics() == (0, 0)


def create_unowned(db: Path, key: str, workflow: str = one_counted.name) -> str:
    """A run nobody owns yet, as `proctor start` writes it."""
    run_id = f"unowned-{key}"
    created = NewEvent(
        run_id=run_id,
        type=EventType.RUN_CREATED,
        data={"workflow": workflow, "args": [key], "kwargs": {}, "owner": None},
    )
    with open_store(db) as store:
        store.append([created])
    return run_id


def test_overload_a_worker_whose_steps_wait_claims_no_new_runs(
    runtimes: list[Runtime], db: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Backpressure (DBOS's worker_concurrency): runs are left to other
    workers while this one's steps wait for slots."""
    polls: list[int] = []
    claims: list[int] = []
    store = store_class(db)
    control_requests, claimable = store.control_requests, store.claimable

    def spy_poll(self: Store, **kw: Any) -> Any:
        polls.append(1)
        return control_requests(self, **kw)

    def spy_claim(self: Store, workflows: Any, **kw: Any) -> Any:
        claims.append(1)
        return claimable(self, workflows, **kw)

    monkeypatch.setattr(store, "control_requests", spy_poll)
    monkeypatch.setattr(store, "claimable", spy_claim)
    rt = open_rt(runtimes, db, claim_runs=True, max_concurrent_steps=1)
    first = create_unowned(db, "first")
    wait_until(lambda: entered() == ["first"])
    second = create_unowned(db, "second")
    wait_until(lambda: step_status(rt, second) == [StepState.WAITING])
    claimed = len(claims)
    # Two more polls of the ControlInbox, each after a write of its own: the
    # first one saw the third run, and has made its decision by the second.
    third = create_unowned(db, "third")
    for poke in range(2):  # runs of a workflow nobody serves: writes, nothing more
        seen = len(polls)
        create_unowned(db, f"poke{poke}", workflow="tests.nobody_serves_this")
        wait_until(lambda seen=seen: len(polls) > seen)
    assert len(claims) == claimed
    assert rt.get_run(third).owner is None
    for key in ("first", "second", "third"):
        gate(key).set()
    wait_until(lambda: rt.get_run(third).owner == rt.id)  # claimed once nothing waits
    assert rt.handle(first).result(timeout=10) == "first"
    assert rt.handle(third).result(timeout=10) == "third"
    assert rt.handle(second).result(timeout=10) == "second"


def test_overload_lease_renewal_waits_for_no_read_of_the_store(
    runtimes: list[Runtime], db: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The ControlInbox renews the lease before it reads the store, so a poll
    that cannot read (or reads a long backlog) does not hold the renewal up."""

    def unreadable(self: Store) -> int:
        raise StoreLocked("the store is locked by another process (test)")

    # The store's change token, which the ControlInbox polls (SQLite: PRAGMA data_version).
    monkeypatch.setattr(store_class(db), "changes", unreadable)
    rt = open_rt(runtimes, db, lease_ttl=0.3)  # renewed every 0.1 s

    def renewed_at() -> float:
        with open_store(db, readonly=True) as store:
            (me,) = [r for r in store.runtimes() if r.owner == rt.id]
            return me.heartbeat_at

    first = renewed_at()
    wait_until(lambda: renewed_at() > first)


def test_overload_withdrawn_tickets_do_not_pile_up() -> None:
    """Cancelling waiting runs while no slot frees keeps the line short."""
    slots = StepSlots(1)
    holder = slots.request(lambda: True)
    for _ in range(10_000):
        slots.request(lambda: True).release()
    last = slots.request(lambda: True)
    assert len(slots._queue) <= 65
    holder.release()
    assert last.granted  # the withdrawn ones were skipped
    last.release()
    assert slots.statistics() == (0, 0)
