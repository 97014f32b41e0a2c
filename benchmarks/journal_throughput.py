"""Journal throughput: events/s with 16 concurrent runs, per ``synchronous`` level.

Each run is a chain of trivial steps (every step writes step_scheduled +
step_started, then step_completed: three events and two commits of its own).
The Journal group-commits whatever is waiting when it wakes, so concurrent
runs share transactions; the script counts the commits to show it.

Also prints the store's own ceiling: the same number of events appended by
one thread in batches, with no actors in the way.

    python benchmarks/journal_throughput.py [--runs 16] [--steps 50] [--rounds 3]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from actors import Runtime, step, workflow
from persistence import EventType, NewEvent, SQLiteStore, Store

SYNC_LEVELS = ("NORMAL", "FULL")


@step(name="bench.noop")
def noop(i: int) -> int:
    return i


@workflow(name="bench.chain")
async def chain(steps: int) -> int:
    total = 0
    for i in range(steps):
        total += await noop(i)
    return total


class _CountingStore:
    """Counts SQLiteStore.append_groups calls (one per transaction)."""

    commits = 0
    _original: Any = None

    @classmethod
    def install(cls) -> None:
        cls._original = SQLiteStore.append_groups

        def counted(self: Store, *args: Any, **kwargs: Any) -> Any:
            cls.commits += 1
            return cls._original(self, *args, **kwargs)

        SQLiteStore.append_groups = counted  # type: ignore[method-assign]


def one_round(folder: Path, sync: str, runs: int, steps: int) -> tuple[float, int, int]:
    db = folder / f"journal-{sync}-{uuid.uuid4().hex[:6]}.db"
    with Runtime(db, synchronous=sync, resume=False) as rt:  # type: ignore[arg-type]
        _CountingStore.commits = 0
        begin = time.perf_counter()
        handles = [rt.start(chain, steps) for _ in range(runs)]
        for h in handles:
            h.result(timeout=120)
        elapsed = time.perf_counter() - begin
        commits = _CountingStore.commits
        events = sum(rt.get_run(h.run_id).last_seq for h in handles)
    return elapsed, events, commits


def store_ceiling(folder: Path, sync: str, events: int, batch: int) -> float:
    """Events/s of SQLiteStore.append_groups alone: one thread, ``batch`` events a commit."""
    db = folder / f"ceiling-{sync}.db"
    with SQLiteStore.open(db, synchronous=sync) as store:  # type: ignore[arg-type]
        run_id = uuid.uuid4().hex
        store.append([NewEvent(run_id=run_id, type=EventType.RUN_CREATED, data={"workflow": "w"})])
        store.append([NewEvent(run_id=run_id, type=EventType.RUN_STARTED)])
        begin = time.perf_counter()
        written = 0
        call = 0
        while written < events:
            group: list[NewEvent] = []
            for _ in range(max(1, batch // 3)):
                group += [
                    NewEvent(run_id=run_id, type=EventType.STEP_SCHEDULED, step="s", call=call),
                    NewEvent(
                        run_id=run_id, type=EventType.STEP_STARTED, step="s", call=call, attempt=1
                    ),
                    NewEvent(
                        run_id=run_id,
                        type=EventType.STEP_COMPLETED,
                        step="s",
                        call=call,
                        attempt=1,
                        data={"result": call},
                    ),
                ]
                call += 1
            store.append_groups([group])
            written += len(group)
        return written / (time.perf_counter() - begin)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=16)
    parser.add_argument("--steps", type=int, default=50)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    _CountingStore.install()
    print(
        f"{args.runs} concurrent runs x {args.steps} trivial steps, "
        f"median of {args.rounds} rounds, WAL mode"
    )
    print(
        f"{'synchronous':>12} {'events/s':>10} {'steps/s':>9} {'runs/s':>8} "
        f"{'events/commit':>14} {'store alone':>12}"
    )
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        for sync in SYNC_LEVELS:
            rounds = [one_round(folder, sync, args.runs, args.steps) for _ in range(args.rounds)]
            rates = sorted(rounds, key=lambda r: r[1] / r[0])
            elapsed, events, commits = rates[len(rates) // 2]
            ceiling = store_ceiling(folder, sync, events, batch=round(events / commits))
            print(
                f"{sync:>12} {events / elapsed:>10,.0f} "
                f"{args.runs * args.steps / elapsed:>9,.0f} {args.runs / elapsed:>8.1f} "
                f"{events / commits:>14.1f} {ceiling:>12,.0f}"
            )
    print(
        "NORMAL: a commit survives a crash of the process (WAL); FULL: also power loss "
        "(an fsync per commit). Proctor's default is NORMAL."
    )


if __name__ == "__main__":
    main()
