"""Death watch: every actor's end reaches its supervisor exactly once, with why.

pykka alone lets an actor die silently (a failing ``tell``), skips
``on_failure`` when ``on_start`` fails, and lets a BaseException stop every
actor in the process. Proctor's base actor closes these holes; this checks
each way an actor can end.
"""

from __future__ import annotations

import queue
import threading
from typing import Any

import pykka
import pytest

from actors._base import ProctorActor
from actors._census import Census
from actors._messages import ChildExited, ExitKind, ExitReason
from tests.conftest import assert_nothing_left, wait_until

pytestmark = pytest.mark.timeout(30)


class Watcher(ProctorActor):
    """Collects the ChildExited reports of its children."""

    def __init__(self, census: Census, reports: queue.Queue[ChildExited]) -> None:
        super().__init__(parent=None, name="watcher", census=census)
        self.reports = reports

    def handle(self, message: Any) -> None:
        assert isinstance(message, ChildExited)
        self.reports.put(message)


class Child(ProctorActor):
    def __init__(self, census: Census, parent: pykka.ActorRef[Any], how: str) -> None:
        super().__init__(parent=parent, name=how, census=census)
        self.how = how

    def started(self) -> None:
        if self.how == "fails_to_start":
            raise RuntimeError("cannot start")

    def handle(self, message: Any) -> None:
        if self.how == "raises":
            raise ValueError("bad message")
        if self.how == "system_exit":
            raise SystemExit(3)
        if self.how == "exits_cancelled":
            self.exit(ExitReason(kind=ExitKind.CANCELLED))
            self.exit(ExitReason(kind=ExitKind.FAILED))  # the first reason is the one reported
        if self.how == "stops":
            self.exit(ExitReason.normal())


def test_death_watch_reports_every_end_exactly_once_with_its_reason() -> None:
    before = set(threading.enumerate())
    census = Census()
    reports: queue.Queue[ChildExited] = queue.Queue()
    watcher = Watcher.start(census, reports)
    expected = {
        "stops": ExitKind.NORMAL,
        "raises": ExitKind.FAILED,
        "system_exit": ExitKind.FAILED,
        "fails_to_start": ExitKind.FAILED,
        "exits_cancelled": ExitKind.CANCELLED,
    }
    children = {how: Child.start(census, watcher, how) for how in expected}
    for how, ref in children.items():
        if how != "fails_to_start":
            ref.tell("go")
            ref.tell("and again")  # a dying actor acts on nothing more
    got = [reports.get(timeout=10) for _ in expected]
    assert {r.name: r.reason.kind for r in got} == expected
    errors = {r.name: type(r.reason.error).__name__ for r in got if r.reason.error}
    assert errors == {
        "raises": "ValueError",
        "system_exit": "SystemExit",
        "fails_to_start": "RuntimeError",
    }
    assert watcher.is_alive()  # a SystemExit in one actor stopped that actor only
    wait_until(lambda: census.live() == ["watcher"])  # every child has ended and reported
    watcher.stop()  # handles whatever is still in its mailbox first
    assert reports.empty()  # exactly once: no second report from anyone
    assert census.wait_empty(10)
    assert_nothing_left(before)
