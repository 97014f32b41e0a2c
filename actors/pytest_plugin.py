"""Proctor's pytest plugin, registered through the ``pytest11`` entry point.

Installing Proctor gives every test these fixtures:

- ``proctor_db``: the path of a fresh store, in the test's tmp_path. Override
  it to return a store URL (``postgresql://...`` of an empty database) to run
  the kit on PostgreSQL.
- ``virtual_clock``: a :class:`FakeClock`; ``virtual_clock.advance(s)`` fires
  back-offs, step timeouts, heartbeat deadlines, cancel graces and durable
  sleeps (B1) at once.
- ``proctor``: a :class:`~actors.testing.ProctorTestKit` on both: its
  ``runtime``, fault injection (``fail``, ``hang``, ``crash_after`` then
  ``restart``), ``wait_for_status`` and ``assert_events``. Torn down with a
  leak check.
- ``runtime``: ``proctor.runtime``, for tests that need nothing else.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from actors._clock import FakeClock
from actors._runtime import Runtime
from actors.testing import ProctorTestKit


@pytest.fixture
def proctor_db(tmp_path: Path) -> Path:
    """The path of a fresh Proctor store for this test."""
    return tmp_path / "proctor.db"


@pytest.fixture
def virtual_clock() -> FakeClock:
    """Virtual time for the runtime: advance it instead of waiting."""
    return FakeClock()


@pytest.fixture
def proctor(
    proctor_db: str | os.PathLike[str], virtual_clock: FakeClock
) -> Iterator[ProctorTestKit]:
    """A runtime on a fresh store and virtual time, with faults to inject."""
    kit = ProctorTestKit(proctor_db, virtual_clock)
    try:
        yield kit
    finally:
        kit.close()


@pytest.fixture
def runtime(proctor: ProctorTestKit) -> Runtime:
    """A Proctor runtime on a fresh store and virtual time, closed after the test."""
    return proctor.runtime
