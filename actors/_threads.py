"""Threads lent to short-lived actors: a step attempt or a run's supervisor.

A pykka ``ThreadingActor`` starts a new OS thread and lets it die with the
actor. A step attempt lives for milliseconds, so that thread's birth and death
were a large part of a step's cost. Here an actor still has its own mailbox,
its own loop and its own thread for as long as it lives; only the OS thread is
reused. When the actor stops, its thread waits ``idle_timeout`` seconds for
the next actor and then ends, so an idle runtime holds no threads it does not
use. There is no upper bound: an abandoned step (T3) keeps its thread until
its code returns, and every other actor must still get one at once.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable
from typing import Final

logger = logging.getLogger("proctor")

IDLE_TIMEOUT: Final = 5.0

Task = Callable[[], None]
#: A task and the name its thread bears while it runs it.
_Job = tuple[Task, str]


class ThreadPool:
    def __init__(self, name: str, *, idle_timeout: float = IDLE_TIMEOUT) -> None:
        self._name = name
        self._idle_timeout = idle_timeout
        self._lock = threading.Lock()
        #: Parked workers, the most recently parked last (its stack is warm).
        #: A dict, not a list: a worker leaving after its idle timeout is
        #: removed in O(1); thousands of them (a runtime that hosted
        #: thousands of runs) made each removal a scan under the lock.
        self._idle: dict[queue.SimpleQueue[_Job | None], None] = {}
        self._threads: set[threading.Thread] = set()
        self._closed = False
        self._count = 0

    def run(self, task: Task, name: str) -> None:
        """Run ``task`` on a parked thread, or on a new one if none is parked."""
        with self._lock:
            if self._idle:
                self._idle.popitem()[0].put((task, name))
                return
            self._count += 1
            if self._count % 64 == 0:
                # Threads that ended idle are forgotten here, not by
                # themselves: join() must still see one on its way out.
                self._threads = {t for t in self._threads if t.is_alive()}
            thread = threading.Thread(
                target=self._work,
                args=((task, name), queue.SimpleQueue()),
                name=f"{self._name}-{self._count}",
                daemon=True,
            )
            self._threads.add(thread)
        thread.start()

    def close(self) -> None:
        """Let every thread end: parked ones now, busy ones after their task."""
        with self._lock:
            self._closed = True
            idle, self._idle = list(self._idle), {}
        for slot in idle:
            slot.put(None)

    def join(self, timeout: float) -> bool:
        """Wait for the threads to end after :meth:`close`; False if some did not."""
        deadline = time.monotonic() + timeout
        with self._lock:
            threads = list(self._threads)
        for thread in threads:
            if thread is not threading.current_thread():
                thread.join(max(0.0, deadline - time.monotonic()))
        return not any(t.is_alive() for t in threads if t is not threading.current_thread())

    def threads(self) -> list[threading.Thread]:
        with self._lock:
            return [t for t in self._threads if t.is_alive()]

    def _work(self, job: _Job | None, slot: queue.SimpleQueue[_Job | None]) -> None:
        me = threading.current_thread()
        base = me.name
        while job is not None:
            task, me.name = job[0], f"{base} {job[1]}"
            try:
                task()
            except BaseException:  # an actor loop handles its own; this is a bug
                logger.exception("%s: a pooled task failed", self._name)
            me.name = base
            job = self._park(slot)

    def _park(self, slot: queue.SimpleQueue[_Job | None]) -> _Job | None:
        """Wait for the next task; None when closed or idle too long."""
        with self._lock:
            if self._closed:
                return None
            self._idle[slot] = None
        try:
            return slot.get(timeout=self._idle_timeout)
        except queue.Empty:
            with self._lock:
                if slot in self._idle:
                    del self._idle[slot]
                    return None
            # Handed a task (or close) just as the wait ran out: it is in the slot.
            return slot.get()
