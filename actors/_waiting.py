"""Waiting for a run to end: the watcher registry and the sync and async waits.

A run hosted here wakes its waiters the moment the Journal commits its end
(:class:`Watchers`); a run that ends in another process is seen by polling
the store every ``POLL_INTERVAL``. Both waits (a thread's and an event
loop's) run the same rule, :meth:`RunWaiter.poll`.

Invariants:

* a waiter registers before it first reads the store, so an end committed
  between the read and the wait still wakes it;
* a wait never outlasts its deadline by more than one store read, and never
  blocks an event loop (the async wait only awaits: its store reads run in
  the loop's default executor);
* a store out of reach for a while (a server restarting) does not end a
  wait early: the wait reads again until its deadline;
* the registry forgets a waiter when its wait ends, however it ends.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import threading
import time
from collections.abc import Callable
from typing import Final

from actors._arguments import optional_seconds
from actors._directory import Directory
from persistence import RunRecord, RunState, Store, StoreError, StoreLocked, StoreUnavailable

#: How often a waiter re-reads the store for runs that end in another process.
POLL_INTERVAL: Final = 0.05
#: Store errors a wait outlasts (until its deadline): the store is back soon.
TRANSIENT: Final = (StoreUnavailable, StoreLocked)
#: How often a waiter tries again to read a store out of reach.
RETRY_INTERVAL: Final = 0.1


class Watchers:
    """Wakes threads and event loops waiting for runs to end in this process."""

    #: How many ended runs it remembers (see :meth:`ended`).
    MEMORY: Final = 4096

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._watch: dict[str, list[Callable[[], None]]] = {}
        self._ended: collections.deque[str] = collections.deque(maxlen=self.MEMORY)
        self._ended_set: set[str] = set()

    def add(self, run_id: str, wake: Callable[[], None]) -> None:
        with self._lock:
            self._watch.setdefault(run_id, []).append(wake)

    def discard(self, run_id: str, wake: Callable[[], None]) -> None:
        with self._lock:
            wakes = self._watch.get(run_id, [])
            if wake in wakes:
                wakes.remove(wake)
            if not wakes:
                self._watch.pop(run_id, None)

    def notify(self, run_id: str, _status: RunState) -> None:
        with self._lock:
            if len(self._ended) == self.MEMORY:
                self._ended_set.discard(self._ended[0])
            self._ended.append(run_id)
            self._ended_set.add(run_id)
            wakes = list(self._watch.get(run_id, ()))
        for wake in wakes:
            wake()

    def wake_all(self) -> None:
        """Wake every waiter now (the runtime is closing: each wait's next
        check raises ``RuntimeClosed`` instead of waiting for its run)."""
        with self._lock:
            wakes = [wake for wakes in self._watch.values() for wake in wakes]
        for wake in wakes:
            wake()

    def ended(self, run_id: str) -> bool:
        """Whether this process saw the run end (recently)."""
        with self._lock:
            return run_id in self._ended_set


class RunWaiter:
    """Waits for runs of one runtime's store to become terminal.

    Args:
        owner: the runtime's id, for the error of a stopped runtime.
        store: the facade's reading connection.
        directory: the runs hosted here (their end wakes a watcher).
        check_open: raises if the runtime stopped (closed, killed, or
            stopped itself) or is closing (draining): a wait on it raises
            that, not a store error, and does not wait for a run that no
            body will drive further here.
    """

    def __init__(
        self,
        *,
        owner: str,
        store: Store,
        directory: Directory,
        check_open: Callable[[], None],
    ) -> None:
        self._owner = owner
        self._store = store
        self._directory = directory
        self._check_open = check_open
        self.watchers = Watchers()

    def poll(
        self, run_id: str, deadline: float | None, now: float
    ) -> tuple[RunRecord | None, float | None]:
        """The run's record, and how long to wait before reading it again.

        ``None`` means stop waiting: the run is terminal or the deadline passed.
        The wait is capped so that runs ending in another process (no wake-up
        from our Journal) are seen within POLL_INTERVAL.

        A store out of reach for a while (``StoreUnavailable``: its server
        restarting; ``StoreLocked``) gives no record and a pause of
        RETRY_INTERVAL: the run's end is still to come, so the wait goes on
        until its deadline, and only then raises that error (as DBOS's
        ``get_result`` retries its database reads, ``_sys_db.db_retry``).
        """
        self._check_open()  # the store under the run is gone, or closed
        try:
            record = self._store.get_run(run_id)
        except TRANSIENT:
            self._check_open()  # closed meanwhile: that is the reason
            pause = RETRY_INTERVAL if deadline is None else min(RETRY_INTERVAL, deadline - now)
            if pause <= 0:
                raise
            return None, pause
        except StoreError:
            self._check_open()
            raise
        if record.status.is_terminal:
            return record, None
        pause = POLL_INTERVAL if deadline is None else min(POLL_INTERVAL, deadline - now)
        return record, (pause if pause > 0 else None)

    def _live_here(self, run_id: str) -> bool:
        """Whether the run is hosted here and has not ended: its end will wake
        a watcher already registered, so there is no need to read it first."""
        return not self.watchers.ended(run_id) and self._directory.get(run_id) is not None

    @staticmethod
    def _first_pause(deadline: float | None, now: float) -> float:
        return POLL_INTERVAL if deadline is None else max(0.0, min(POLL_INTERVAL, deadline - now))

    def wait_finished(self, run_id: str, timeout: float | None) -> RunRecord:
        """Block until the run is terminal or ``timeout`` passes; its last record.

        Raises:
            InvalidArgument: ``timeout`` is not None or a finite number of
                seconds >= 0 (``InvalidArgumentType`` for a non-number).
        """
        timeout = optional_seconds("timeout", timeout)
        deadline = None if timeout is None else time.monotonic() + timeout
        woken = threading.Event()
        self.watchers.add(run_id, woken.set)
        try:
            if self._live_here(run_id):
                woken.wait(self._first_pause(deadline, time.monotonic()))
            while True:
                record, pause = self.poll(run_id, deadline, time.monotonic())
                if pause is None:
                    assert record is not None  # poll raises instead
                    return record
                woken.wait(pause)
        finally:
            self.watchers.discard(run_id, woken.set)

    async def wait_finished_async(self, run_id: str, timeout: float | None) -> RunRecord:
        """Like :meth:`wait_finished`, awaiting instead of blocking the loop."""
        timeout = optional_seconds("timeout", timeout)
        loop = asyncio.get_running_loop()
        deadline = None if timeout is None else loop.time() + timeout
        woken = asyncio.Event()

        def wake() -> None:
            loop.call_soon_threadsafe(woken.set)

        self.watchers.add(run_id, wake)
        try:
            if self._live_here(run_id):
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(woken.wait(), self._first_pause(deadline, loop.time()))
            while True:
                # The read may wait for the store's lock: never on the loop (A1).
                record, pause = await loop.run_in_executor(
                    None, self.poll, run_id, deadline, loop.time()
                )
                if pause is None:
                    assert record is not None  # poll raises instead
                    return record
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(woken.wait(), pause)
        finally:
            self.watchers.discard(run_id, wake)
