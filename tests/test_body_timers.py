"""B1: the durable body timer's contract, the one scope deadlines (B3) and
signal timeouts (B5) build on: start records and schedules, a due timer fires
once, a drop wins over a late due, the run's cancel spares shielded timers,
a release records nothing."""

from __future__ import annotations

from typing import Any, cast

from actors._body_timers import TIMER_KEY, BodyTimers
from actors._clock import FakeClock
from actors._messages import TimerDue
from actors._recorder import Recorder
from persistence import EventType, NewEvent


class FakeLog:
    """What BodyTimers uses of a Recorder: records kept in order."""

    def __init__(self) -> None:
        self.driving = False
        self.sent: list[NewEvent] = []
        self._unsent: list[NewEvent] = []

    def defer(self, event: NewEvent) -> None:
        self._unsent.append(event)

    def flush(self) -> None:
        self.sent += self._unsent
        self._unsent = []

    def append(self, *events: NewEvent, tag: Any) -> None:
        self.flush()
        self.sent += events


class FakeHost:
    def __init__(self) -> None:
        self.scheduled: dict[tuple[str, int], tuple[float, Any]] = {}

    def schedule_timer(self, key: tuple[str, int], due: float, message: Any) -> None:
        self.scheduled[key] = (due, message)

    def cancel_timer(self, key: tuple[str, int]) -> None:
        self.scheduled.pop(key, None)


def make() -> tuple[BodyTimers, FakeHost, FakeLog, FakeClock]:
    host, log, clock = FakeHost(), FakeLog(), FakeClock(start=100.0)
    timers = BodyTimers(host, run_id="r", log=cast(Recorder, log), clock=clock)
    return timers, host, log, clock


def kinds(log: FakeLog) -> list[tuple[str, int | None]]:
    return [(e.type.value, e.call) for e in log.sent]


def test_B1_a_timer_is_recorded_with_its_utc_instant_and_scheduled_on_the_monotonic_clock() -> None:
    timers, host, log, clock = make()
    due_at = clock.time() + 60
    timers.start(3, kind="deadline", due_at=due_at, seconds=60, on_fired=lambda c: None)
    started = log.sent[0]
    assert (started.type, started.step, started.call) == (EventType.TIMER_STARTED, "deadline", 3)
    assert started.data["due_at"] == due_at
    assert started.data["due"].endswith("Z")
    due, message = host.scheduled[(TIMER_KEY, 3)]
    assert due == clock.monotonic() + 60
    assert message == TimerDue(call=3)


def test_B1_a_resumed_timer_is_due_at_its_recorded_instant_or_at_once() -> None:
    timers, host, log, clock = make()
    timers.resume(1, kind="sleep", due_at=clock.time() + 30, on_fired=lambda c: None)
    timers.resume(2, kind="sleep", due_at=clock.time() - 30, on_fired=lambda c: None)
    assert host.scheduled[(TIMER_KEY, 1)][0] == clock.monotonic() + 30
    assert host.scheduled[(TIMER_KEY, 2)][0] == clock.monotonic()  # passed: at once
    assert log.sent == []  # a resume records nothing


def test_B1_a_timer_fires_once_and_a_drop_wins_over_a_late_due() -> None:
    timers, _host, log, clock = make()
    fired: list[int] = []
    timers.start(0, kind="sleep", due_at=clock.time() + 1, seconds=1, on_fired=fired.append)
    timers.on_due(TimerDue(call=0))
    timers.on_due(TimerDue(call=0))  # a second report changes nothing
    assert fired == [0]
    timers.start(1, kind="sleep", due_at=clock.time() + 1, seconds=1, on_fired=fired.append)
    assert timers.drop(1, "scope cancelled")
    assert not timers.drop(1, "again")
    timers.on_due(TimerDue(call=1))  # already in the mailbox when dropped
    assert fired == [0]
    assert kinds(log) == [
        ("timer_started", 0),
        ("timer_fired", 0),
        ("timer_started", 1),
        ("timer_cancelled", 1),
    ]
    assert log.sent[-1].data == {"reason": "scope cancelled"}


def test_B1_S1_the_runs_cancel_drops_only_unshielded_timers_that_ask_for_it() -> None:
    timers, host, log, clock = make()
    cancelled: list[tuple[int, str | None]] = []

    def on_cancel(call: int, reason: str | None) -> None:
        cancelled.append((call, reason))

    due_at = clock.time() + 10
    timers.start(
        0, kind="sleep", due_at=due_at, seconds=10, on_fired=print, on_run_cancel=on_cancel
    )
    timers.start(
        1,
        kind="sleep",
        due_at=due_at,
        seconds=10,
        on_fired=print,
        on_run_cancel=on_cancel,
        shielded=True,
    )
    timers.start(2, kind="deadline", due_at=due_at, seconds=10, on_fired=print)  # not the cancel's
    timers.on_run_cancel("stop")
    assert cancelled == [(0, "stop")]
    assert sorted(timers.pending) == [1, 2]
    assert (TIMER_KEY, 0) not in host.scheduled
    assert kinds(log)[-1] == ("timer_cancelled", 0)


def test_B1_a_release_unschedules_every_timer_and_records_nothing() -> None:
    timers, host, log, clock = make()
    timers.start(0, kind="sleep", due_at=clock.time() + 5, seconds=5, on_fired=print)
    before = list(log.sent)
    timers.release()
    assert host.scheduled == {}
    assert timers.pending == {}
    assert log.sent == before
