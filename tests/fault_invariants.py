"""What must hold after faults, checked from the store and the steps' side files.

Once the faults stop and a healthy worker is left (the issue's acceptance):

1. every run is terminal (within a deadline; the scenario waits for it);
2. each completed step is recorded once (one ``step_completed`` per call,
   one COMPLETED attempt in ``steps``), and the recorded attempt really ran
   to its end (its side file has its ``end`` line);
3. no two attempts were inside one step at once (the side files'
   ``[start, last tick or end]`` intervals of different attempts never
   overlap: see :mod:`tests.fault_workflows` for why these timestamps mean
   "the runtime let this attempt work then");
4. every re-execution is logged: each attempt that ran is a
   ``step_started`` of the log, ran in one process only, and an attempt
   after the first is announced by ``step_reexecuted`` (or is a retry);
5. C3 on resume: an unshielded in-flight step of a run that was already
   cancelling is not re-run (no such ``step_reexecuted``);
6. A4: a step whose side effect finished in a process that then exited
   cleanly (SIGTERM) has that attempt's result recorded;

and, for the runs a scenario cancelled, :func:`cancelled_outcomes`.
"""

from __future__ import annotations

import dataclasses
from collections import defaultdict
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from persistence import EventRecord, EventType, RunRecord, RunState, StepState, open_store
from tests.fault_workflows import SIDE_FILE_SUFFIX

_E = EventType


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
    with open_store(db, readonly=True) as store:
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
    with open_store(db, readonly=True) as store:
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
