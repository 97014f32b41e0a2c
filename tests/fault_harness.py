"""A harness to inject faults around ``proctor worker`` subprocesses.

- :class:`Fleet`: N workers on one store, each a real ``proctor worker``
  process running :mod:`tests.fault_workflows`, that the test kills
  (SIGKILL), pauses (SIGSTOP/SIGCONT), stops (SIGTERM) and restarts.
- Fault tools: :func:`start_runs`, :func:`cancel` and :func:`terminate`
  write the same records as ``proctor start/cancel/terminate``;
  :class:`WriteLock` holds the store's write lock from another process
  (``BEGIN EXCLUSIVE``).
- Waiting with deadlines: for runs to end, to exist, for steps to start.

What must hold afterwards is checked by :mod:`tests.fault_invariants`.
Randomness comes from one seed per test (``PROCTOR_FAULT_SEED`` overrides
it); every failure message starts with it.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

from persistence import (
    EventType,
    NewEvent,
    RunRecord,
    StoreError,
    cancel_request,
    open_store,
)
from tests.fault_invariants import read_side_files
from tests.processes import ROOT

MODULE = "tests.fault_workflows"
#: The lease of the suite's workers: short, so that a takeover comes within seconds.
LEASE_TTL = 3.0
#: Their busy timeout: well under the lease, as a runtime that fences itself needs.
BUSY_TIMEOUT = 1.0
#: How long a worker may take to exit after SIGTERM before the harness SIGKILLs it.
STOP_TIMEOUT = 20.0

_E = EventType


def seed_for(default: int) -> int:
    """The test's seed: ``PROCTOR_FAULT_SEED`` if set, else the test's fixed default."""
    return int(os.environ.get("PROCTOR_FAULT_SEED", default))


# -- workers ---------------------------------------------------------------------------


class FaultWorker:
    """One ``proctor worker`` process; its output goes to ``log``."""

    def __init__(
        self, db: Path, log: Path, env: dict[str, str], prefix: Sequence[str] = ()
    ) -> None:
        self.log = log
        self._out = log.open("w")
        self.process = subprocess.Popen(
            [*prefix, sys.executable, "-m", "cli", "--db", str(db), "worker", MODULE],
            cwd=ROOT,
            env={**os.environ, **env},
            stdout=self._out,
            stderr=subprocess.STDOUT,
        )
        self.pid = self.process.pid
        self._wrapped = bool(prefix)
        self.paused = False
        #: How it ended: "killed" (SIGKILL by the harness), "stopped" (SIGTERM), or None.
        self.ended_by: str | None = None

    def _signal(self, signum: int) -> None:
        """Signal the worker itself: under a wrapper (``unshare -f``), its child."""
        target = self.pid
        if self._wrapped:
            children = Path(f"/proc/{self.pid}/task/{self.pid}/children")
            deadline = time.monotonic() + STOP_TIMEOUT
            while self.alive and time.monotonic() < deadline:
                with suppress(OSError):
                    if found := children.read_text().split():
                        target = int(found[0])
                        break
                time.sleep(0.01)
        with suppress(ProcessLookupError):
            os.kill(target, signum)

    @property
    def alive(self) -> bool:
        return self.process.poll() is None

    def kill(self) -> None:
        """SIGKILL, then reap: a zombie's pid would still look alive."""
        self.ended_by = "killed"
        self._signal(signal.SIGKILL)
        if self._wrapped:  # the wrapper too, in case it outlives its child
            with suppress(ProcessLookupError):
                self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=STOP_TIMEOUT)
        self.paused = False

    def pause(self) -> None:
        self._signal(signal.SIGSTOP)
        self.paused = True

    def resume(self) -> None:
        self._signal(signal.SIGCONT)
        self.paused = False

    def stop(self) -> int:
        """SIGTERM (after SIGCONT if paused) and wait; SIGKILL if it does not exit."""
        if self.alive:
            if self.paused:
                self.resume()
            self.ended_by = self.ended_by or "stopped"
            self._signal(signal.SIGTERM)
            try:
                return self.process.wait(timeout=STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                self.kill()
        return self.process.wait(timeout=STOP_TIMEOUT)

    def close_log(self) -> None:
        self._out.close()

    def output(self) -> str:
        self._out.flush()
        return self.log.read_text(errors="replace")

    def describe(self) -> str:
        code = self.process.poll()
        state = "alive" if code is None else f"exit {code}"
        return f"worker pid {self.pid} ({state}, ended by {self.ended_by})"


class Fleet:
    """Workers on one store, and the side-file folder their workflows write into."""

    def __init__(self, db: Path, tmp_path: Path, *, seed: int, env: dict[str, str] | None = None):
        self.db = db
        self.folder = tmp_path / "sides"
        self.folder.mkdir(exist_ok=True)
        self.logs = tmp_path / "workers"
        self.logs.mkdir(exist_ok=True)
        self.seed = seed
        self.rng = random.Random(seed)  # noqa: S311 - reproducible faults, not secrets
        self.env = {
            "PROCTOR_FAULT_LEASE_TTL": str(LEASE_TTL),
            "PROCTOR_FAULT_BUSY_TIMEOUT": str(BUSY_TIMEOUT),
            **(env or {}),
        }
        self.workers: list[FaultWorker] = []

    def spawn(
        self, *, env: dict[str, str] | None = None, prefix: Sequence[str] = ()
    ) -> FaultWorker:
        """Start a worker; ``env`` adds to the fleet's, ``prefix`` wraps its command."""
        log = self.logs / f"worker{len(self.workers)}.log"
        w = FaultWorker(self.db, log, {**self.env, **(env or {})}, prefix)
        self.workers.append(w)
        return w

    def wait_ready(self, timeout: float = 60.0) -> None:
        """Wait until every live worker has registered its runtime on the store.

        Counts registrations (a worker in another PID namespace registers a pid
        of its own), so call it before any worker is killed.
        """
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with open_store(self.db, readonly=True) as store:
                registered = [r for r in store.runtimes() if r.stopped_at is None]
            # By count: a worker in another pid namespace registers another pid.
            if len(registered) >= len(self.live()):
                return
            time.sleep(0.02)
        raise AssertionError(f"workers did not register within {timeout}s\n{self.report()}")

    def live(self) -> list[FaultWorker]:
        return [w for w in self.workers if w.alive]

    def running(self) -> list[FaultWorker]:
        """Alive and not paused."""
        return [w for w in self.workers if w.alive and not w.paused]

    def ensure_healthy(self) -> None:
        """Resume paused workers; start one if none is alive."""
        for w in self.live():
            if w.paused:
                w.resume()
        if not self.live():
            self.spawn()

    def stop_all(self) -> None:
        for w in self.workers:
            if w.alive:
                w.stop()
        for w in self.workers:
            w.close_log()

    def clean_exit_pids(self) -> set[int]:
        """Workers that were SIGTERMed by the harness and exited 0."""
        return {w.pid for w in self.workers if w.ended_by == "stopped" and w.process.poll() == 0}

    def pids(self) -> set[int]:
        return {w.pid for w in self.workers}

    def report(self) -> str:
        """The workers' fates and the suspicious lines of their logs."""
        out = [f"seed {self.seed} (rerun with PROCTOR_FAULT_SEED={self.seed})"]
        for w in self.workers:
            out.append(w.describe())
            text = w.output() if not w._out.closed else w.log.read_text(errors="replace")
            bad = [
                ln
                for ln in text.splitlines()
                if any(k in ln for k in ("ERROR", "Error", "WARNING", "Traceback"))
            ]
            out += [f"    {ln}" for ln in bad[:8]]
        return "\n".join(out)


@contextmanager
def fleet(
    db: Path, tmp_path: Path, *, seed: int, env: dict[str, str] | None = None
) -> Iterator[Fleet]:
    """A :class:`Fleet` whose workers are all stopped at the end, whatever happens."""
    f = Fleet(db, tmp_path, seed=seed, env=env)
    try:
        yield f
    finally:
        for w in f.workers:
            if w.alive:
                with suppress(Exception):
                    w.kill() if w.paused else w.stop()
        for w in f.workers:
            w.close_log()


# -- requests, as the CLI writes them ----------------------------------------------------


def start_runs(db: Path, workflow: str, args: Iterable[list[Any]]) -> list[str]:
    """Create runs of ``workflow`` (a name in :mod:`tests.fault_workflows`) for a
    worker to claim, with ``proctor start``'s records; their ids."""
    ids: list[str] = []
    with open_store(db) as store:
        for a in args:
            run_id = uuid.uuid4().hex
            store.append(
                [
                    NewEvent(
                        run_id=run_id,
                        type=_E.RUN_CREATED,
                        data={
                            "workflow": f"{MODULE}.{workflow}",
                            "args": a,
                            "kwargs": {},
                            "owner": None,
                        },
                    )
                ]
            )
            ids.append(run_id)
    return ids


def cancel(db: Path, run_id: str, reason: str = "fault test") -> bool:
    """Whether the request was recorded (False: the run had already finished)."""
    with open_store(db) as store:
        event = cancel_request(run_id, reason, source="cli", origin=f"cli-{os.getpid()}")
        return store.append([event])[0].accepted


def terminate(db: Path, run_id: str, reason: str = "fault test") -> bool:
    """Whether the run was terminated (False: it had already finished)."""
    with open_store(db) as store:
        outcome, _ = store.terminate_tree(run_id, reason, source="cli", origin=f"cli-{os.getpid()}")
        return outcome.accepted


_LOCKER = """
import sys
from tests.store_access import write_lock
with write_lock(sys.argv[1]):
    print("locked", flush=True)
    sys.stdin.read()
"""


class WriteLock:
    """Holds the store's write lock (``tests.store_access.write_lock``) from
    another process until released."""

    def __init__(self, db: Path | str) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-c", _LOCKER, os.fspath(db)],
            cwd=ROOT,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.process.stdout is not None
        line = self.process.stdout.readline()  # blocks until the lock is taken
        if line.strip() != "locked":
            self.process.kill()
            raise RuntimeError(f"the lock holder did not take the lock: {line!r}")

    def release(self) -> None:
        assert self.process.stdin is not None
        if self.process.poll() is None:
            self.process.stdin.close()
            self.process.wait(timeout=STOP_TIMEOUT)
        if self.process.stdout is not None:
            self.process.stdout.close()


# -- waiting -------------------------------------------------------------------------------


def all_runs(db: Path) -> list[RunRecord]:
    with open_store(db, readonly=True) as store:
        return store.list_runs()


def wait_all_terminal(db: Path, run_ids: Iterable[str], *, timeout: float) -> list[str]:
    """Poll until every run is terminal; the ids still unfinished at the deadline."""
    pending = set(run_ids)
    deadline = time.monotonic() + timeout
    while True:
        try:
            with open_store(db, readonly=True) as store:
                pending = {r for r in pending if not store.get_run(r).status.is_terminal}
        except StoreError:
            pass  # a torn read while a fault is under way: look again
        if not pending or time.monotonic() > deadline:
            return sorted(pending)
        time.sleep(0.05)


def wait_for_run(db: Path, run_id: str, *, timeout: float) -> bool:
    """Poll (every millisecond) until the run exists; whether it does."""
    deadline = time.monotonic() + timeout
    with open_store(db, readonly=True) as store:
        while time.monotonic() < deadline:
            if store.find_run(run_id) is not None:
                return True
            time.sleep(0.001)
    return False


def wait_for_side_lines(folder: Path, count: int, *, timeout: float) -> bool:
    """Poll until the side files hold ``count`` ``start`` lines in all (steps under way)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if (
            sum(
                1
                for lines in read_side_files(folder).values()
                for ln in lines
                if ln.kind == "start"
            )
            >= count
        ):
            return True
        time.sleep(0.02)
    return False
