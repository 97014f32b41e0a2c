"""Helpers for testing workflows and their supervision trees.

The pytest plugin (``actors.pytest_plugin``, installed with Proctor) builds
its fixtures on these; they work in any test framework too.

- :func:`wait_for_status` waits, without sleeping blindly, for a run to reach
  a state.
- :func:`assert_events` checks that a run's log holds events in order (gaps
  allowed), and prints the run's timeline when it does not.
- :class:`ProctorTestKit`: a runtime on a virtual clock, plus fault injection
  (make a step fail N times, hang, or raise a BaseException) and crash and
  resume (stop the runtime right after a given event is recorded, then start
  another that resumes the run by replay).
"""

from __future__ import annotations

import functools
import os
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from actors._arguments import store_target
from actors._clock import FakeClock
from actors._context import get_context
from actors._definitions import StepDef
from actors._diagnosis import timeline
from actors._errors import RuntimeClosed
from actors._handle import RunHandle
from actors._journal import AFTER_COMMIT
from actors._runtime import Runtime
from persistence import EventRecord, EventType, InvalidArgument, NewEvent, RunRecord, RunState

__all__ = ["ProctorTestKit", "assert_events", "timeline", "wait_for_event", "wait_for_status"]


def wait_for_status(
    run: RunHandle[Any], status: RunState | str, timeout: float = 10.0
) -> RunRecord:
    """Wait until ``run`` is in ``status``; return its record.

    Raises:
        AssertionError: it was not in ``status`` within ``timeout`` seconds
            (or reached another terminal state first), with its timeline.
    """
    wanted = RunState(status)
    deadline = time.monotonic() + timeout
    while True:
        record = run.record()
        if record.status is wanted:
            return record
        if record.status.is_terminal or time.monotonic() >= deadline:
            raise AssertionError(
                f"run {run.run_id} is {record.status}, not {wanted}, after "
                f"{timeout}s\n{timeline(run.events())}"
            )
        time.sleep(0.002)  # a poll interval with a deadline, not a wait for luck


def wait_for_event(
    run: RunHandle[Any], event: str | EventType, count: int = 1, timeout: float = 10.0
) -> EventRecord:
    """Wait until the run's log holds ``count`` events of this type; return the last.

    The way to move virtual time safely: wait until the supervisor has
    recorded that it waits (``step_retry_scheduled``, ``step_started``), then
    advance the clock.
    """
    wanted = EventType(event)
    if isinstance(count, bool) or not isinstance(count, int) or count < 1:
        raise InvalidArgument(f"count must be a whole number of events, at least 1, not {count!r}")
    deadline = time.monotonic() + timeout
    while True:
        events = run.events()
        found = [e for e in events if e.type is wanted]
        if len(found) >= count:
            return found[count - 1]
        if time.monotonic() >= deadline:
            raise AssertionError(
                f"run {run.run_id}: {len(found)} {wanted} event(s), not {count}, after "
                f"{timeout}s\n{timeline(events)}"
            )
        time.sleep(0.002)  # a poll interval with a deadline


def assert_events(run: RunHandle[Any], expected: Sequence[str | EventType]) -> None:
    """The run's log holds ``expected`` event types in this order (gaps allowed)."""
    events = run.events()
    wanted = [EventType(e).value for e in expected]
    position = 0
    for event in events:
        if position < len(wanted) and event.type.value == wanted[position]:
            position += 1
    if position < len(wanted):
        raise AssertionError(
            f"run {run.run_id}: expected {wanted[position]!r} after "
            f"{wanted[:position]} in its log, in this order:\n{timeline(events)}"
        )


class ProctorTestKit:
    """A runtime on a fresh store and a virtual clock, with faults to inject.

    Use it through the ``proctor`` fixture, or as a context manager::

        with ProctorTestKit(tmp_path / "p.db") as kit:
            run = kit.runtime.start(my_workflow, 1)
            kit.clock.advance(30)
    """

    def __init__(self, db: str | os.PathLike[str], clock: FakeClock | None = None) -> None:
        target = store_target("db", db)
        #: The store: a SQLite file's ``Path``, or a PostgreSQL URL (a str, which
        #: ``Path`` would mangle); ``persistence.redact`` shows it.
        self.db: Path | str = Path(target.location) if target.is_file else target.location
        self._shown = target.display
        self.clock = clock or FakeClock()
        self._runtimes: list[Runtime] = []
        self._patches: list[Callable[[], None]] = []
        self._hooks: list[Callable[[list[NewEvent]], None]] = []
        self._threads_before = set(threading.enumerate())
        self._closed = False
        self.runtime = self._open()

    def __enter__(self) -> ProctorTestKit:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _open(self) -> Runtime:
        runtime = Runtime(self.db, clock=self.clock)
        self._runtimes.append(runtime)
        return runtime

    # -- crash and resume ----------------------------------------------------------

    def restart(self) -> Runtime:
        """Kill the runtime (as SIGKILL would) and start another on the same store.

        The new one resumes the unfinished runs by replay; it becomes
        :attr:`runtime`. Handles from the old one keep working through it.

        Raises:
            RuntimeClosed: the kit was closed (a runtime started now would
                be left running).
        """
        if self._closed:
            raise RuntimeClosed(f"this test kit on {self._shown} is closed")
        old = self.runtime
        old.kill()
        self.runtime = self._open()
        old._successor = self.runtime
        return self.runtime

    def crash_after(
        self, event: str | EventType, *, step: StepDef[..., Any] | None = None
    ) -> threading.Event:
        """Stop the runtime from recording anything after ``event`` commits.

        Returns an Event set when that happened; then call :meth:`restart`.
        ``step`` narrows it to that step's events. Arm it before the event can
        happen: a run's first records (its first step's start included)
        commit before ``start()`` returns.
        """
        wanted = EventType(event)
        crashed = threading.Event()
        runtime = self.runtime

        def hook(events: list[NewEvent]) -> None:
            if crashed.is_set():
                return
            for e in events:
                if e.type is wanted and (step is None or e.step == step.name):
                    runtime._halted.set()  # nothing after this commit is written
                    crashed.set()
                    return

        AFTER_COMMIT.append(hook)
        self._hooks.append(hook)
        return crashed

    # -- faults in steps --------------------------------------------------------------

    def fail(
        self,
        step: StepDef[..., Any],
        times: int = 1,
        error: BaseException | None = None,
    ) -> None:
        """Make the step's next ``times`` attempts raise ``error`` (a RuntimeError
        by default; any BaseException, such as SystemExit, works too)."""
        left = [times]

        def fault() -> None:
            if left[0] > 0:
                left[0] -= 1
                raise (
                    error if error is not None else RuntimeError(f"injected failure of {step.name}")
                )

        self._wrap(step, fault)

    def hang(self, step: StepDef[..., Any], times: int | None = None) -> None:
        """Make the step's attempts hang without heartbeating, until stopped
        (a cancel, a terminate, or a timeout that abandons them).

        ``times``: only the next ``times`` attempts hang, later ones run as
        usual ("time out once, then the retry succeeds"); None: every one.
        """
        if times is not None and times < 1:
            raise InvalidArgument(
                f"times must be at least 1 (or None for every attempt), got {times}"
            )
        released = threading.Event()
        left = [times]
        lock = threading.Lock()

        def fault() -> None:
            with lock:
                if left[0] is not None:
                    if left[0] == 0:
                        return
                    left[0] -= 1
            ctx = get_context()
            while not released.wait(0.001):
                ctx.check_cancellation()

        self._patches.append(released.set)
        self._wrap(step, fault)

    def _wrap(self, step: StepDef[..., Any], fault: Callable[[], None]) -> None:
        original = step.fn
        if step.is_async:

            @functools.wraps(original)
            async def async_faulty(*args: Any, **kwargs: Any) -> Any:
                fault()
                return await original(*args, **kwargs)

            step.fn = async_faulty
        else:

            @functools.wraps(original)
            def faulty(*args: Any, **kwargs: Any) -> Any:
                fault()
                return original(*args, **kwargs)

            step.fn = faulty

        def restore() -> None:
            step.fn = original

        self._patches.append(restore)

    # -- waiting and checking ---------------------------------------------------------

    def wait_for_status(
        self, run: RunHandle[Any], status: RunState | str, timeout: float = 10.0
    ) -> RunRecord:
        return wait_for_status(self.runtime.handle(run.run_id), status, timeout)

    def wait_for_event(
        self, run: RunHandle[Any], event: str | EventType, count: int = 1, timeout: float = 10.0
    ) -> EventRecord:
        return wait_for_event(self.runtime.handle(run.run_id), event, count, timeout)

    def assert_events(self, run: RunHandle[Any], expected: Sequence[str | EventType]) -> None:
        assert_events(self.runtime.handle(run.run_id), expected)

    def close(self) -> None:
        """Undo every fault, close every runtime, and check nothing was left running."""
        self._closed = True
        for hook in self._hooks:
            if hook in AFTER_COMMIT:
                AFTER_COMMIT.remove(hook)
        for restore in reversed(self._patches):
            restore()
        self._patches.clear()
        for runtime in self._runtimes:
            runtime.close()
        leaked = [name for rt in self._runtimes for name in rt._census.live()]
        assert not leaked, f"actors still running after the runtime closed: {leaked}"
