"""A harness to inject faults around ``proctor worker`` subprocesses and check what survives.

Three parts:

- :class:`Fleet`: N workers on one store, each a real ``proctor worker``
  process running :mod:`tests.fault_workflows`, that the test kills
  (SIGKILL), pauses (SIGSTOP/SIGCONT), stops (SIGTERM) and restarts.
- Fault tools: :func:`start_runs`, :func:`cancel` and :func:`terminate`
  write the same records as ``proctor start/cancel/terminate``;
  :class:`WriteLock` holds the store's write lock from another process
  (``BEGIN EXCLUSIVE``).
- :func:`check_invariants`: once the faults stop and a healthy worker is
  left, what must hold whatever happened before (the issue's acceptance):

  1. every run is terminal (within a deadline);
  2. each completed step is recorded once (one ``step_completed`` per call,
     one COMPLETED attempt in ``steps``), and the recorded attempt really
     ran to its end (its side file has its ``end`` line);
  3. no two attempts were inside one step at once (the side files'
     ``[start, last tick or end]`` intervals of different attempts never
     overlap: see :mod:`tests.fault_workflows` for why these timestamps
     mean "the runtime let this attempt work now");
  4. every re-execution is logged: each attempt that ran is a
     ``step_started`` of the log, ran in one process only, and an attempt
     after the first is announced by ``step_reexecuted`` (or is a retry);
  5. C3 on resume: an unshielded in-flight step of a run that was already
     cancelling is not re-run (no such ``step_reexecuted``);
  6. A4: a step whose side effect finished in a process that then exited
     cleanly (SIGTERM) has that attempt's result recorded.

Randomness comes from one seed per test (``PROCTOR_FAULT_SEED`` overrides
it); every failure message starts with it.
"""

from __future__ import annotations

import dataclasses
import os
import random
import signal
import subprocess
import sys
import time
import uuid
from collections import defaultdict
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

from persistence import (
    EventRecord,
    EventType,
    NewEvent,
    RunRecord,
    RunState,
    StepState,
    Store,
    StoreError,
    cancel_request,
)
from tests.fault_workflows import SIDE_FILE_SUFFIX
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
            with Store.open(self.db, readonly=True) as store:
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
    with Store.open(db) as store:
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
    with Store.open(db) as store:
        event = cancel_request(run_id, reason, source="cli", origin=f"cli-{os.getpid()}")
        return store.append([event])[0].accepted


def terminate(db: Path, run_id: str, reason: str = "fault test") -> bool:
    """Whether the run was terminated (False: it had already finished)."""
    with Store.open(db) as store:
        outcome, _ = store.terminate_tree(run_id, reason, source="cli", origin=f"cli-{os.getpid()}")
        return outcome.accepted


_LOCKER = """
import sqlite3, sys
conn = sqlite3.connect(sys.argv[1], timeout=30, isolation_level=None)
conn.execute("BEGIN EXCLUSIVE")
print("locked", flush=True)
sys.stdin.read()
conn.execute("ROLLBACK")
"""


class WriteLock:
    """Holds the store's write lock (``BEGIN EXCLUSIVE``) from another process until released."""

    def __init__(self, db: Path) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-c", _LOCKER, str(db)],
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
    with Store.open(db, readonly=True) as store:
        return store.list_runs()


def wait_all_terminal(db: Path, run_ids: Iterable[str], *, timeout: float) -> list[str]:
    """Poll until every run is terminal; the ids still unfinished at the deadline."""
    pending = set(run_ids)
    deadline = time.monotonic() + timeout
    while True:
        try:
            with Store.open(db, readonly=True) as store:
                pending = {r for r in pending if not store.get_run(r).status.is_terminal}
        except StoreError:
            pass  # a torn read while a fault is under way: look again
        if not pending or time.monotonic() > deadline:
            return sorted(pending)
        time.sleep(0.05)


def wait_for_run(db: Path, run_id: str, *, timeout: float) -> bool:
    """Poll (every millisecond) until the run exists; whether it does."""
    deadline = time.monotonic() + timeout
    with Store.open(db, readonly=True) as store:
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


# -- side files -------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True, slots=True)
class SideLine:
    kind: str
    pid: int
    attempt: int
    mono: float
    wall: float
    extra: str


def read_side_files(folder: Path) -> dict[tuple[str, int], list[SideLine]]:
    """Every side file: ``(run_id, call) -> its lines``, in write order."""
    out: dict[tuple[str, int], list[SideLine]] = {}
    for path in folder.glob(f"*{SIDE_FILE_SUFFIX}"):
        run_id, call = path.name[: -len(SIDE_FILE_SUFFIX)].rsplit(".", 1)
        lines = []
        for text in path.read_text().splitlines():
            parts = text.split(" ", 5)
            # One write(2) per line under O_APPEND: a line is whole or absent.
            assert len(parts) >= 5, f"malformed side-file line in {path}: {text!r}"
            lines.append(
                SideLine(
                    parts[0],
                    int(parts[1]),
                    int(parts[2]),
                    float(parts[3]),
                    float(parts[4]),
                    parts[5] if len(parts) > 5 else "",
                )
            )
        out[(run_id, int(call))] = lines
    return out


@dataclasses.dataclass(frozen=True, slots=True)
class Interval:
    pid: int
    attempt: int
    first: float
    last: float
    ended: bool  # wrote its "end" line: its side effect finished


def intervals(lines: list[SideLine]) -> list[Interval]:
    """Each (pid, attempt)'s span of work: its first and last checked timestamps."""
    by: dict[tuple[int, int], list[SideLine]] = defaultdict(list)
    for ln in lines:
        if ln.kind in ("start", "tick", "end"):
            by[(ln.pid, ln.attempt)].append(ln)
    return [
        Interval(
            pid,
            attempt,
            min(ln.mono for ln in lns),
            max(ln.mono for ln in lns),
            any(ln.kind == "end" for ln in lns),
        )
        for (pid, attempt), lns in sorted(by.items(), key=lambda kv: min(x.mono for x in kv[1]))
    ]


# -- the invariants -----------------------------------------------------------------------


@dataclasses.dataclass
class Findings:
    """Violations of the invariants, by invariant, with the evidence."""

    violations: dict[str, list[str]] = dataclasses.field(default_factory=lambda: defaultdict(list))
    #: Counts that describe what the scenario exercised (for the report, not a verdict).
    stats: dict[str, int] = dataclasses.field(default_factory=lambda: defaultdict(int))

    def add(self, invariant: str, evidence: str) -> None:
        self.violations[invariant].append(evidence)

    def merge(self, other: Findings) -> None:
        for invariant, items in other.violations.items():
            self.violations[invariant] += items
        for name, count in other.stats.items():
            self.stats[name] += count

    def __bool__(self) -> bool:
        return any(self.violations.values())

    def render(self, limit: int = 6) -> str:
        out = []
        for invariant, items in self.violations.items():
            if items:
                out.append(f"{invariant}: {len(items)} violation(s)")
                out += [f"    {e}" for e in items[:limit]]
        out.append("stats: " + ", ".join(f"{k}={v}" for k, v in sorted(self.stats.items())))
        return "\n".join(out)


def check_invariants(
    db: Path,
    folder: Path,
    run_ids: Iterable[str],
    *,
    trusted_pids: set[int] | None = None,
    clean_exit_pids: set[int] | None = None,
) -> Findings:
    """Invariants 2 to 6 of the module docstring over ``run_ids`` (call once all are terminal).

    ``trusted_pids``: only these processes' side-file lines are held against
    the log (a store restored from a backup forgot what others did before).
    """
    found = Findings()
    sides = read_side_files(folder)
    with Store.open(db, readonly=True) as store:
        for run_id in run_ids:
            record = store.find_run(run_id)
            if record is None:
                found.add("run exists", f"run {run_id} is not in the store")
                continue
            found.stats[f"runs_{record.status.value}"] += 1
            log = store.events(run_id)
            steps = store.steps(run_id)
            calls = {e.call for e in log if e.type is _E.STEP_SCHEDULED and e.call is not None}
            calls |= {c for (r, c) in sides if r == run_id}
            for call in sorted(calls):
                lines = sides.get((run_id, call), [])
                _check_call(
                    found,
                    record,
                    call,
                    log=log,
                    steps=steps,
                    lines=lines,
                    trusted=trusted_pids,
                    clean=clean_exit_pids or set(),
                )
            _check_cancel_on_resume(found, record, log)
    return found


def _check_call(
    found: Findings,
    record: RunRecord,
    call: int,
    *,
    log: list[EventRecord],
    steps: list[Any],
    lines: list[SideLine],
    trusted: set[int] | None,
    clean: set[int],
) -> None:
    where = f"run {record.run_id} call {call}"
    mine = [e for e in log if e.call == call]
    completed_events = [e for e in mine if e.type is _E.STEP_COMPLETED]
    completed_rows = [s for s in steps if s.call == call and s.status is StepState.COMPLETED]
    spans = intervals(lines)
    found.stats["step_attempts_run"] += len(spans)

    # 2. Recorded once, and what is recorded really ran to its end.
    if len(completed_events) > 1 or len(completed_rows) > 1:
        found.add(
            "completed step recorded once",
            f"{where}: step_completed x{len(completed_events)} (attempts "
            f"{[e.attempt for e in completed_events]}), completed rows x{len(completed_rows)}",
        )
    for e in completed_events:
        ran = [s for s in spans if s.attempt == e.attempt and s.ended]
        if not ran and (trusted is None or not lines or any(s.pid in trusted for s in spans)):
            found.add(
                "recorded result comes from an attempt that ran to its end",
                f"{where}: step_completed attempt {e.attempt}, but no side-file 'end' for it"
                f" (side-file attempts {[(s.pid, s.attempt, s.ended) for s in spans]})",
            )
    if record.status is RunState.COMPLETED and len(completed_events) != 1:
        found.add(
            "completed step recorded once",
            f"{where}: run COMPLETED with {len(completed_events)} step_completed for this call",
        )

    # 3. No two attempts inside the step at once.
    for i, a in enumerate(spans):
        for b in spans[i + 1 :]:
            if a.first <= b.last and b.first <= a.last:
                overlap = min(a.last, b.last) - max(a.first, b.first)
                found.add(
                    "no two processes in one step at once",
                    f"{where}: pid {a.pid} attempt {a.attempt} [{a.first:.3f}, {a.last:.3f}]"
                    f" and pid {b.pid} attempt {b.attempt} [{b.first:.3f}, {b.last:.3f}]"
                    f" overlap {overlap:.3f}s",
                )

    # 4. Every execution is a logged attempt; every re-execution is announced.
    started = {e.attempt for e in mine if e.type is _E.STEP_STARTED}
    reexecuted = {e.attempt for e in mine if e.type is _E.STEP_REEXECUTED}
    retried = {e.attempt for e in mine if e.type is _E.STEP_RETRY_SCHEDULED}
    by_attempt: dict[int, set[int]] = defaultdict(set)
    for s in spans:
        by_attempt[s.attempt].add(s.pid)
    for attempt, pids in sorted(by_attempt.items()):
        if trusted is not None and not pids & trusted:
            continue
        if len(pids) > 1:
            found.add(
                "every re-execution logged",
                f"{where}: attempt {attempt} ran in {len(pids)} processes {sorted(pids)}",
            )
        if attempt not in started:
            found.add(
                "every re-execution logged",
                f"{where}: attempt {attempt} ran (pid {sorted(pids)}) without a step_started",
            )
        if attempt > 1:
            found.stats["reexecutions"] += 1
            if attempt not in reexecuted and attempt - 1 not in retried:
                found.add(
                    "every re-execution logged",
                    f"{where}: attempt {attempt} ran with no step_reexecuted/retry before it",
                )

    # 6. A4: a side effect finished in a process that exited cleanly is recorded.
    completed_attempts = {s.attempt for s in completed_rows}
    for s in spans:
        if s.ended and s.pid in clean and s.attempt not in completed_attempts:
            found.add(
                "a finished step of a cleanly stopped worker is recorded (A4)",
                f"{where}: pid {s.pid} finished attempt {s.attempt} and exited 0, but the"
                f" store records {sorted(completed_attempts) or 'no'} completed attempt",
            )


def _check_cancel_on_resume(found: Findings, record: RunRecord, log: list[EventRecord]) -> None:
    """5. C3: no unshielded step re-run on resume of a run that was already cancelling."""
    cancel_seq = next((e.run_seq for e in log if e.type is _E.CANCEL_REQUESTED), None)
    if cancel_seq is None:
        return
    found.stats["cancelled_runs"] += 1
    shielded = {
        (e.call, e.attempt) for e in log if e.type is _E.STEP_STARTED and e.data.get("shielded")
    }
    for e in log:
        if (
            e.type is _E.STEP_REEXECUTED
            and e.run_seq > cancel_seq
            and (e.call, e.attempt) not in shielded
        ):
            found.add(
                "C3: an unshielded step is not re-run once the run is cancelling",
                f"run {record.run_id}: step_reexecuted call {e.call} attempt {e.attempt}"
                f" (seq {e.run_seq}) after cancel_requested (seq {cancel_seq})",
            )


def cancelled_outcomes(db: Path, run_ids: Iterable[str]) -> Findings:
    """A cancelled run ends CANCELLED or TERMINATED; COMPLETED only if the cancel
    came after its last step had started (it may never have met a checkpoint, C4/C5)."""
    found = Findings()
    with Store.open(db, readonly=True) as store:
        for run_id in run_ids:
            record = store.get_run(run_id)
            found.stats[f"cancelled_{record.status.value}"] += 1
            if record.status in (RunState.CANCELLED, RunState.TERMINATED):
                continue
            log = store.events(run_id)
            cancel_seq = min(e.run_seq for e in log if e.type is _E.CANCEL_REQUESTED)
            last_start = max((e.run_seq for e in log if e.type is _E.STEP_STARTED), default=0)
            if record.status is RunState.COMPLETED and cancel_seq > last_start:
                continue
            found.add(
                "a cancelled run ends CANCELLED or TERMINATED",
                f"run {run_id} ended {record.status} (cancel at seq {cancel_seq},"
                f" last step started at seq {last_start}; error {record.error})",
            )
    return found
