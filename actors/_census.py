"""The Census: every live actor of one runtime and the threads they run on.

Shutdown asks it to prove that nothing of the runtime is left (T3, and the
no-leak fixtures of the tests), and it owns the two shared resources whose
life is the runtime's: the :class:`ThreadPool` lending threads to
short-lived actors, and the :class:`StepSlots` bounding concurrent steps.

Invariants: an actor is counted from the first line of its ``on_start`` to
the last of its ``on_stop``; only actors with threads of their own have
them remembered (the pool joins its own), so the census does not grow with
the number of step attempts.
"""

from __future__ import annotations

import threading
import time

from actors._slots import StepSlots, default_max_concurrent_steps
from actors._threads import ThreadPool


class Census:
    """Every live actor of one runtime and the threads they run on, so that
    shutdown can prove none is left.

    Short-lived actors (``pooled = True``: step attempts and run supervisors)
    borrow their thread from the census's :class:`ThreadPool`; the others
    (Guardian, Journal, Timers, ControlInbox) live as long as the runtime and
    own theirs. How many step attempts may run at once is its
    :class:`StepSlots`.
    """

    def __init__(self, max_concurrent_steps: int | None = None) -> None:
        self._cond = threading.Condition()
        self._live: dict[str, str] = {}
        self._threads: list[threading.Thread] = []
        self.pool = ThreadPool("proctor")
        if max_concurrent_steps is None:
            max_concurrent_steps = default_max_concurrent_steps()
        self.slots = StepSlots(max_concurrent_steps)

    def enter(self, urn: str, name: str, *, pooled: bool) -> None:
        """An actor starts, on its own thread or (``pooled``) a lent one.

        Only own threads are remembered for shutdown to join; the pool joins
        its own. (Remembering the pooled thread of every step attempt grew
        this list by one per attempt for the runtime's whole life.)
        """
        with self._cond:
            self._live[urn] = name
            if not pooled:
                self._threads.append(threading.current_thread())

    def leave(self, urn: str) -> None:
        with self._cond:
            self._live.pop(urn, None)
            self._cond.notify_all()

    def live(self) -> list[str]:
        with self._cond:
            return sorted(self._live.values())

    def wait_empty(self, timeout: float) -> bool:
        """At shutdown: wait until every actor stopped and every thread, pooled
        or not, ended; False on timeout."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while self._live:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    # Parked threads end now; a stuck one after its task.
                    self.pool.close()
                    return False
                self._cond.wait(remaining)
            threads, self._threads = self._threads, []
        self.pool.close()
        pooled_done = self.pool.join(max(0.0, deadline - time.monotonic()))
        for thread in threads:
            if thread is not threading.current_thread():
                thread.join(max(0.0, deadline - time.monotonic()))
        own = [t for t in threads if t is not threading.current_thread()]
        return pooled_done and not any(t.is_alive() for t in own)
