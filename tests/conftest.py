"""Shared fixtures: a runtime per test with a leak check, and gates for steps.

``db`` is parametrized by store (``tests/stores.py``): ``db[sqlite]`` is a
file path, ``db[postgres]`` the URL of an empty database on the session's
throw-away PostgreSQL cluster (``tests/pg_cluster.py``).
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pykka
import pytest
from click.testing import CliRunner, Result

from actors import EventRecord, EventType, Runtime, StepRecord
from cli import cli
from persistence import open_store

# The cluster's fixtures (pg_cluster, pg_database, pg_url), the store
# parametrization's hooks (--store, sqlite_only) and the browser tests'
# fixtures (chromium, dashboard); imported here too, so registered for
# assertion rewriting first.
pytest_plugins = ["tests.pg_cluster", "tests.stores", "tests.browser"]
pytest.register_assert_rewrite(*pytest_plugins)

from tests.processes import Worker  # noqa: E402
from tests.stores import STORES  # noqa: E402

#: What names a store: a SQLite file path, or a ``postgresql://`` URL.
Target = str | os.PathLike[str]

#: Gates that steps wait on; keyed by a JSON-friendly string (step args are JSON).
GATES: dict[str, threading.Event] = {}
#: What steps report back to the test, keyed the same way.
NOTES: dict[str, list[object]] = {}


def gate(key: str) -> threading.Event:
    return GATES.setdefault(key, threading.Event())


def note(key: str, value: object) -> None:
    NOTES.setdefault(key, []).append(value)


def wait_until(
    condition: Callable[[], object], timeout: float = 10.0, what: str = "condition not met"
) -> None:
    """Poll ``condition`` until it is truthy; fail the test at the deadline, saying ``what``."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"{what} within {timeout}s")
        time.sleep(0.001)


def wait_for_event(
    rt: Runtime, run_id: str, type_: EventType, step: str | None = None, timeout: float = 10.0
) -> None:
    wait_until(
        lambda: any(
            e.type is type_ and (step is None or (e.step or "").endswith(step))
            for e in rt.events(run_id)
        ),
        timeout,
    )


def event_types(rt: Runtime, run_id: str) -> list[str]:
    return [e.type.value for e in events_of(rt, run_id)]


def events_of(rt: Runtime, run_id: str) -> list[EventRecord]:
    """The run's log, read on a connection of our own (works after rt.close())."""
    with open_store(rt.db, readonly=True) as store:
        return store.events(run_id)


def steps_of(rt: Runtime, run_id: str) -> list[StepRecord]:
    with open_store(rt.db, readonly=True) as store:
        return store.steps(run_id)


@pytest.fixture(autouse=True)
def _clean_gates() -> Iterator[None]:
    yield
    for event in GATES.values():
        event.set()  # release any step a failing test left waiting
    GATES.clear()
    NOTES.clear()


def assert_nothing_left(threads_before: set[threading.Thread]) -> None:
    """No pykka actor and no thread started by the test outlives its runtime."""
    assert pykka.ActorRegistry.get_all() == []
    extra = [t for t in threading.enumerate() if t not in threads_before and t.is_alive()]
    assert extra == [], f"threads left behind: {extra}"


@pytest.fixture(params=STORES)
def db(request: pytest.FixtureRequest, tmp_path: Path) -> Path | str:
    """The store a test runs on: ``[sqlite]`` a file path (not created yet),
    ``[postgres]`` the URL of an empty database of the test's own."""
    if request.param == "sqlite":
        return tmp_path / "proctor.db"
    url: str = request.getfixturevalue("pg_url")
    return url


@pytest.fixture
def proctor_db(db: Path | str) -> Path | str:
    """The test kit's store (the plugin's fixture, overridden here): the
    suite's ``db``, so the tests written with the kit run on both stores."""
    return db


@pytest.fixture
def rt(db: Target) -> Iterator[Runtime]:
    before = set(threading.enumerate())
    runtime = Runtime(db)
    try:
        yield runtime
    finally:
        for event in GATES.values():
            event.set()
        runtime.close()
    assert_nothing_left(before)


@pytest.fixture
def runtimes(db: Target) -> Iterator[list[Runtime]]:
    """Runtimes a test opens on ``db``; all closed, and nothing left, at the end."""
    before = set(threading.enumerate())
    opened: list[Runtime] = []
    try:
        yield opened
    finally:
        for event in GATES.values():
            event.set()
        for runtime in opened:
            runtime.close()
    assert_nothing_left(before)


def open_rt(runtimes: list[Runtime], db: Target, **options: object) -> Runtime:
    runtime = Runtime(db, **options)  # type: ignore[arg-type]
    runtimes.append(runtime)
    return runtime


def run_cli(db: Target, *args: str) -> Result:
    """``proctor --db DB ARGS...`` in this process, through click's runner."""
    return CliRunner().invoke(cli, ["--db", os.fspath(db), *args])


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    """A folder for a test's marker files (what its steps did, and when)."""
    path = tmp_path / "markers"
    path.mkdir()
    return path


@pytest.fixture
def workers() -> Iterator[list[Worker]]:
    """Worker processes a test starts (``spawn_worker``); those still running
    at its end are stopped."""
    started: list[Worker] = []
    yield started
    for w in started:
        if w.process.poll() is None:
            w.stop()
