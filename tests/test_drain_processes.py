"""A4 with real processes: ``proctor worker`` drains on SIGTERM or Ctrl-C.

The service test of issue 16: runs in flight on a worker, SIGTERM, a new
worker on the same store: every step whose body returned before the exit is
recorded once and never run again; every run completes. Steps write one
ledger line per execution (``tests.drain_workflows``), compared with the log.
"""

from __future__ import annotations

import os
import random
import signal
import time
import uuid
from pathlib import Path

import pytest

from persistence import EventRecord, EventType, NewEvent, RunState, open_store
from tests.conftest import wait_until
from tests.drain_workflows import LEDGER
from tests.processes import DEADLINE, Worker

pytestmark = [pytest.mark.faults, pytest.mark.timeout(180)]

MODULE = "tests.drain_workflows"
RUNS = 40
STEPS = 3


def create_runs(db: Path, workflow: str, args: list[list[object]]) -> list[str]:
    """Runs for a worker to claim, written as ``proctor start`` writes them."""
    ids = [uuid.uuid4().hex for _ in args]
    with open_store(db) as store:
        store.append(
            [
                NewEvent(
                    run_id=run_id,
                    type=EventType.RUN_CREATED,
                    data={
                        "workflow": f"{MODULE}.{workflow}",
                        "args": a,
                        "kwargs": {},
                        "owner": None,
                    },
                )
                for run_id, a in zip(ids, args, strict=True)
            ]
        )
    return ids


def ledger(path: Path) -> list[str]:
    """The keys of the step executions so far, one per execution."""
    if not path.exists():
        return []
    return [line.split()[0] for line in path.read_text().splitlines()]


def logs(db: Path, run_ids: list[str]) -> dict[str, list[EventRecord]]:
    with open_store(db, readonly=True) as store:
        return {run_id: store.events(run_id) for run_id in run_ids}


def step_keys(events: list[EventRecord], type_: EventType) -> list[str]:
    """The keys (first argument) of the step calls with a ``type_`` record."""
    keys = {e.call: e.data["args"][0] for e in events if e.type is EventType.STEP_SCHEDULED}
    return [keys[e.call] for e in events if e.type is type_]


def statuses(db: Path, run_ids: list[str]) -> list[RunState]:
    with open_store(db, readonly=True) as store:
        return [store.get_run(run_id).status for run_id in run_ids]


def test_A4_service_sigterm_drains_and_no_returned_step_runs_twice(
    db: Path, tmp_path: Path
) -> None:
    seed = int(os.environ.get("PROCTOR_TEST_SEED", time.time_ns() % 10**6))
    rng = random.Random(seed)  # noqa: S311 - step durations, not secrets
    pauses = [[round(rng.uniform(0.05, 1.0), 3) for _ in range(STEPS)] for _ in range(RUNS)]
    run_ids = create_runs(db, "drained", [[f"r{i}", p] for i, p in enumerate(pauses)])
    book = tmp_path / "ledger"
    env = {LEDGER: str(book)}
    first = Worker(db, tmp_path / "first.log", MODULE, env, options=("--drain", "30"))
    # Runs in flight: about a third of the steps have run.
    wait_until(lambda: len(ledger(book)) >= RUNS // 2, timeout=DEADLINE)
    before = len(ledger(book))
    first.process.send_signal(signal.SIGTERM)
    assert first.reap() == 0, first.log.read_text()
    out = first.log.read_text()
    assert "draining" in out, out
    assert "waiting for" in out, out  # it said which steps it waited for

    executed = ledger(book)
    assert len(executed) > before, f"seed {seed}: no step finished during the drain"
    by_run = logs(db, run_ids)
    recorded = [
        k for events in by_run.values() for k in step_keys(events, EventType.STEP_COMPLETED)
    ]
    # Every step whose body returned before the exit is recorded, once.
    assert sorted(executed) == sorted(recorded), f"seed {seed}"
    assert len(set(executed)) == len(executed), f"seed {seed}"
    abandoned = [k for e in by_run.values() for k in step_keys(e, EventType.STEP_ABANDONED)]
    assert abandoned == [], f"seed {seed}: the drain was long enough for every step"
    unfinished = [s for s in statuses(db, run_ids) if not s.is_terminal]
    assert unfinished, f"seed {seed}: every run ended before the SIGTERM; nothing was proved"

    second = Worker(db, tmp_path / "second.log", MODULE, env, options=("--drain", "30"))
    try:
        wait_until(
            lambda: all(s is RunState.COMPLETED for s in statuses(db, run_ids)), timeout=DEADLINE
        )
    finally:
        assert second.stop() == 0, second.log.read_text()
    final = ledger(book)
    expected = sorted(f"r{i}:{n}" for i in range(RUNS) for n in range(STEPS))
    assert sorted(final) == expected, f"seed {seed}: a step ran twice, or never"
    by_run = logs(db, run_ids)
    assert not [
        e for events in by_run.values() for e in events if e.type is EventType.STEP_REEXECUTED
    ]


@pytest.mark.parametrize("ending", ["second_signal", "drain_runs_out"])
def test_A4_a_step_the_drain_does_not_wait_for_is_abandoned_and_reexecuted(
    db: Path, tmp_path: Path, ending: str
) -> None:
    """The second signal (the first being Ctrl-C) ends a 60 s drain at once;
    a drain that runs out stops the step too. Either way its attempt is
    abandoned, and the next worker runs it again (step_reexecuted)."""
    release = tmp_path / "release"
    started = Path(f"{release}.started")
    book = tmp_path / "ledger"
    env = {LEDGER: str(book)}
    (run_id,) = create_runs(db, "held", [["h", str(release)]])
    drain = "60" if ending == "second_signal" else "0.5"
    first = Worker(db, tmp_path / "first.log", MODULE, env, options=("--drain", drain))
    wait_until(started.exists, timeout=DEADLINE)
    began = time.monotonic()
    first.process.send_signal(signal.SIGINT)
    if ending == "second_signal":
        wait_until(lambda: "draining" in first.log.read_text(), timeout=DEADLINE)
        first.process.send_signal(signal.SIGTERM)
    assert first.reap() == 0, first.log.read_text()
    assert time.monotonic() - began < 15  # not 60: the step heartbeats, so it unwinds at once
    types = [e.type for e in logs(db, [run_id])[run_id]]
    assert types[-1] is EventType.STEP_ABANDONED, types
    assert ledger(book) == []

    started.unlink()
    second = Worker(db, tmp_path / "second.log", MODULE, env)
    try:
        wait_until(started.exists, timeout=DEADLINE)
        release.write_text("go")
        wait_until(lambda: statuses(db, [run_id]) == [RunState.COMPLETED], timeout=DEADLINE)
    finally:
        assert second.stop() == 0, second.log.read_text()
    types = [e.type for e in logs(db, [run_id])[run_id]]
    assert EventType.STEP_REEXECUTED in types
    assert ledger(book) == ["h"]


@pytest.mark.parametrize("drain", ["60", "0"])
def test_A4_a_signal_after_the_drain_ended_exits_the_worker_at_once_as_a_crash(
    db: Path, tmp_path: Path, drain: str
) -> None:
    """Once the drain is over (ended by the second signal; with ``--drain 0``
    there is none), a step that ignores the stop request would hold the exit
    for the shutdown timeout: one more signal kills the worker at once,
    writing nothing more (uvicorn and the Docker CLI force the exit on a
    repeated signal). As after a crash, the next worker resumes the run and
    runs the step again."""
    release = tmp_path / "release"
    started = Path(f"{release}.started")
    book = tmp_path / "ledger"
    env = {LEDGER: str(book)}
    (run_id,) = create_runs(db, "ignoring", [["s", str(release)]])
    first = Worker(db, tmp_path / "first.log", MODULE, env, options=("--drain", drain))
    wait_until(started.exists, timeout=DEADLINE)
    first.process.send_signal(signal.SIGINT)
    if drain == "60":
        wait_until(lambda: "draining" in first.log.read_text(), timeout=DEADLINE)
        first.process.send_signal(signal.SIGTERM)
        wait_until(lambda: "ending the drain now" in first.log.read_text(), timeout=DEADLINE)
    else:
        wait_until(lambda: "stopping" in first.log.read_text(), timeout=DEADLINE)
    before = logs(db, [run_id])[run_id]
    began = time.monotonic()
    first.process.send_signal(signal.SIGTERM)
    code = first.reap()
    out = first.log.read_text()
    assert code == -signal.SIGTERM, out
    assert time.monotonic() - began < 4, out  # not the 5 s shutdown timeout
    assert "again exits at once" in out or "another signal exits at once" in out, out
    after = logs(db, [run_id])[run_id]
    assert [e.type for e in after] == [e.type for e in before], "it wrote after the signal"
    assert EventType.STEP_ABANDONED not in [e.type for e in after]
    assert statuses(db, [run_id]) == [RunState.RUNNING]

    started.unlink()
    second = Worker(db, tmp_path / "second.log", MODULE, env)
    try:
        wait_until(started.exists, timeout=DEADLINE)  # resumed: the step runs again
        release.write_text("go")
        wait_until(lambda: statuses(db, [run_id]) == [RunState.COMPLETED], timeout=DEADLINE)
    finally:
        assert second.stop() == 0, second.log.read_text()
    types = [e.type for e in logs(db, [run_id])[run_id]]
    assert EventType.STEP_REEXECUTED in types
    assert ledger(book) == ["s"]
