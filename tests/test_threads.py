"""The thread pool that step attempts and run supervisors borrow their thread from."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from actors import Runtime, step, workflow
from actors._threads import ThreadPool
from tests.conftest import assert_nothing_left, wait_until

pytestmark = pytest.mark.timeout(30)

PoolFactory = Callable[..., ThreadPool]


@pytest.fixture
def make_pool() -> Iterator[PoolFactory]:
    """Pools that are closed after the test, which then checks no thread is left."""
    before = set(threading.enumerate())
    pools: list[ThreadPool] = []

    def make(idle_timeout: float = 5.0) -> ThreadPool:
        pools.append(ThreadPool("t", idle_timeout=idle_timeout))
        return pools[-1]

    yield make
    for pool in pools:
        pool.close()
        assert pool.join(10)
    assert_nothing_left(before)


def test_a_thread_is_reused_by_the_next_task_and_named_after_it(make_pool: PoolFactory) -> None:
    pool = make_pool()
    seen: list[tuple[threading.Thread, str]] = []
    for name in ("first", "second", "third"):
        done = threading.Event()

        def task(done: threading.Event = done) -> None:
            me = threading.current_thread()
            seen.append((me, me.name))
            done.set()

        pool.run(task, name)
        assert done.wait(10)
        # The worker parks again before the next task arrives.
        wait_until(lambda: len(pool._idle) == 1)
    assert len({thread for thread, _ in seen}) == 1
    assert [name for _, name in seen] == ["t-1 first", "t-1 second", "t-1 third"]


def test_busy_threads_are_not_shared_and_every_task_runs_at_once(make_pool: PoolFactory) -> None:
    pool = make_pool()
    release = threading.Event()
    arrived = threading.Barrier(9)  # eight tasks and this test, all at once

    def task() -> None:
        arrived.wait(10)
        release.wait(10)

    for i in range(8):
        pool.run(task, f"task{i}")
    arrived.wait(10)  # would time out if any task waited for a thread
    assert len(pool.threads()) == 8
    release.set()


def test_an_idle_thread_ends_after_its_idle_timeout(make_pool: PoolFactory) -> None:
    pool = make_pool(idle_timeout=0.05)
    done = threading.Event()
    pool.run(done.set, "once")
    assert done.wait(10)
    wait_until(lambda: pool.threads() == [])
    # It is gone, and the next task gets a new thread.
    again = threading.Event()
    pool.run(again.set, "again")
    assert again.wait(10)


def test_close_lets_a_busy_thread_finish_its_task_then_end(make_pool: PoolFactory) -> None:
    pool = make_pool()
    inside, release, finished = threading.Event(), threading.Event(), threading.Event()

    def task() -> None:
        inside.set()
        release.wait(10)
        finished.set()

    pool.run(task, "busy")
    assert inside.wait(10)
    pool.close()
    assert not pool.join(0.01)  # still in its task
    release.set()
    assert pool.join(10)
    assert finished.is_set()
    # A task given after close still runs, on a thread that then ends.
    late = threading.Event()
    pool.run(late.set, "late")
    assert late.wait(10)
    assert pool.join(10)
    assert pool.threads() == []


def test_a_task_that_raises_does_not_kill_its_thread(
    make_pool: PoolFactory, caplog: pytest.LogCaptureFixture
) -> None:
    pool = make_pool()

    def bad() -> None:
        raise SystemExit(3)

    pool.run(bad, "bad")
    wait_until(lambda: len(pool._idle) == 1)
    ok = threading.Event()
    pool.run(ok.set, "ok")
    assert ok.wait(10)
    assert len(pool.threads()) == 1
    assert "a pooled task failed" in caplog.text


@step()
def add_one(x: int) -> int:
    return x + 1


@workflow()
async def two_adds(x: int) -> int:
    return await add_one(await add_one(x))


def test_a_busy_runtime_remembers_no_thread_per_step_attempt(tmp_path: Path) -> None:
    """The census joins the pool at shutdown; it does not list a pooled
    thread once per actor it ran, which grew without bound."""
    before = set(threading.enumerate())
    with Runtime(tmp_path / "p.db") as rt:
        for i in range(20):
            assert rt.start(two_adds, i).result(timeout=10) == i + 2
        assert len(rt._census._threads) == 4  # Guardian, Journal, Timers, ControlInbox
    assert_nothing_left(before)
