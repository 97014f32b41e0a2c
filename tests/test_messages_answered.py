"""Every message an actor takes is handled, or its sender hears why not (D1).

A request that is lost leaves a caller waiting out a timeout for something
that happened (a lost ``start()`` reply) or a run stranded (a lost step end).
These tests queue work where it used to be dropped: behind a full batch,
behind a stopping actor, to an actor that has died.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from pathlib import Path

import pykka
import pytest

from actors import OutcomeUnknown, Runtime, StoreError, step, workflow
from actors._base import tell
from actors._census import Census
from actors._journal import Journal
from actors._messages import Append
from persistence import EventType, NewEvent, RunState, open_store
from tests.conftest import assert_nothing_left, gate, wait_until

#: Enough appends to fill several batches of the default size.
QUEUED = 2000


@pytest.fixture
def census() -> Iterator[Census]:
    """The Journal's census; after the test, no actor or thread is left."""
    before = set(threading.enumerate())
    census = Census()
    yield census
    assert census.wait_empty(10)
    assert_nothing_left(before)


def _start_journal(census: Census, path: Path, max_batch: int) -> pykka.ActorRef[object]:
    return Journal.start(
        census=census,
        parent=None,
        path=path,
        synchronous="NORMAL",
        busy_timeout=30,  # the test holds the lock; the Journal must wait it out
        on_terminal=lambda run_id, state: None,
        owner="me",
        lease_ttl=60,
        halted=threading.Event(),
        max_batch=max_batch,
    )


@pytest.mark.parametrize("max_batch", [1, 2, 512])
def test_D1_every_append_queued_behind_a_lock_is_answered_and_written_once(
    census: Census, tmp_path: Path, max_batch: int
) -> None:
    """2,000 appends queue behind another process's write lock; once it is
    released every one is answered and every run exists exactly once. (A full
    batch used to drop the message it had just taken: #512, #1025, #1538.)"""
    path = tmp_path / "j.db"
    with open_store(path) as store:
        store.register_runtime("me", ttl=60)
    journal = _start_journal(census, path, max_batch)
    try:
        _queue_behind_a_lock_and_check(journal, path)
    finally:
        journal.stop()


def _queue_behind_a_lock_and_check(journal: pykka.ActorRef[object], path: Path) -> None:
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")  # another process holds the write lock
    replies: list[pykka.Future[object]] = []
    try:
        for n in range(QUEUED):
            reply: pykka.Future[object] = pykka.ThreadingFuture()
            created = NewEvent(
                run_id=f"r{n}", type=EventType.RUN_CREATED, data={"workflow": "w", "args": [n]}
            )
            journal.tell(Append(events=(created,), reply=reply))
            replies.append(reply)
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    unanswered = []
    for n, reply in enumerate(replies):
        try:
            outcomes = reply.get(timeout=30)
        except pykka.Timeout:
            unanswered.append(n)
            continue
        assert isinstance(outcomes, tuple)
        assert all(o.accepted for o in outcomes)
    assert unanswered == []
    with open_store(path, readonly=True) as store:
        runs = store.list_runs()
    assert sorted(r.run_id for r in runs) == sorted(f"r{n}" for n in range(QUEUED))


def test_D1_an_append_to_a_stopped_journal_is_refused_at_once(
    census: Census, tmp_path: Path
) -> None:
    """Sent after the Journal stopped, or left in its mailbox when it stopped:
    the sender hears a StoreError, it does not wait out a timeout."""
    path = tmp_path / "j.db"
    journal = _start_journal(census, path, 512)
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")
    try:
        queued: list[pykka.Future[object]] = []
        for n in range(50):
            reply: pykka.Future[object] = pykka.ThreadingFuture()
            created = NewEvent(run_id=f"q{n}", type=EventType.RUN_CREATED, data={"workflow": "w"})
            journal.tell(Append(events=(created,), reply=reply))
            queued.append(reply)
        stopped = journal.stop(block=False)  # behind the appends already queued
        late: pykka.Future[object] = pykka.ThreadingFuture()
        created = NewEvent(run_id="late", type=EventType.RUN_CREATED, data={"workflow": "w"})
        # The stop is queued, not handled yet: the Journal takes this, behind it.
        journal.tell(Append(events=(created,), reply=late))
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    stopped.get(timeout=30)
    for reply in queued:  # queued before the stop: written
        outcomes = reply.get(timeout=30)
        assert isinstance(outcomes, tuple)
        assert all(o.accepted for o in outcomes)
    with pytest.raises(StoreError, match="nothing more is written"):
        late.get(timeout=5)
    after: pykka.Future[object] = pykka.ThreadingFuture()
    assert not tell(journal, Append(events=(created,), reply=after))
    with pytest.raises(StoreError, match="nothing more is written"):
        after.get(timeout=5)


@step()
def adds(a: int, b: int) -> int:
    return a + b


@workflow()
async def sums(a: int) -> int:
    return await adds(a, 1)


@step()
def waits(key: str) -> str:
    gate(key).wait(30)
    return key


@workflow()
async def parked(key: str) -> str:
    return await waits(key)


def test_A3_a_start_not_confirmed_in_time_names_the_run_and_a_lookup_finds_it(
    tmp_path: Path,
) -> None:
    """An error from start() says the run may exist and names it (A3): under a
    write lock held past ``request_timeout`` the run is created later, once
    the lock is released, under the id the error gave."""
    path = tmp_path / "a3.db"
    before = set(threading.enumerate())
    with Runtime(path, busy_timeout=30, lease_ttl=120, request_timeout=0.2) as rt:
        holder = sqlite3.connect(path, isolation_level=None)
        holder.execute("BEGIN EXCLUSIVE")
        try:
            with pytest.raises(OutcomeUnknown, match="may have taken effect") as caught:
                rt.start(sums, 41)
        finally:
            holder.execute("ROLLBACK")
            holder.close()
        run_id = caught.value.run_id
        assert caught.value.request == "start"
        assert run_id in str(caught.value)
        # The request was still with the Journal: it lands under that id.
        wait_until(lambda: [r.run_id for r in rt.list_runs(workflow=sums.name)] == [run_id])
        assert rt.handle(run_id).result(timeout=10) == 42
    assert_nothing_left(before)


def test_A3_a_cancel_not_confirmed_in_time_says_it_may_have_taken_effect(
    tmp_path: Path,
) -> None:
    path = tmp_path / "a3c.db"
    before = set(threading.enumerate())
    with Runtime(path, busy_timeout=30, lease_ttl=120, request_timeout=0.2) as rt:
        run = rt.start(parked, "a3c")
        holder = sqlite3.connect(path, isolation_level=None)
        holder.execute("BEGIN EXCLUSIVE")
        try:
            with pytest.raises(OutcomeUnknown, match=f"cancel of run {run.run_id}"):
                rt.cancel(run.run_id, "ops")
        finally:
            holder.execute("ROLLBACK")
            holder.close()
        # It took effect once the lock was gone; the step never checks, so
        # the run stays CANCELLING until it returns, then ends CANCELLED (C4).
        wait_until(lambda: run.status() is RunState.CANCELLING)
        gate("a3c").set()
        wait_until(lambda: run.status() is RunState.CANCELLED)
    assert_nothing_left(before)


@pytest.mark.parametrize("value", [0, -1])
def test_bad_journal_and_request_settings_are_clear_errors(tmp_path: Path, value: int) -> None:
    with pytest.raises(ValueError, match="max_batch must be at least 1"):
        Runtime(tmp_path / "x.db", max_batch=value)
    with pytest.raises(ValueError, match="request_timeout must be positive"):
        Runtime(tmp_path / "x.db", request_timeout=value)
