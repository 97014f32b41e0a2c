"""Cold start of ``proctor runs list`` on a store of 10,000 runs.

Each measurement is a fresh process (interpreter start, imports, query,
table), as an operator would run it; ``python -c pass`` is timed the same way
for reference.

    python benchmarks/cli_cold_start.py [--runs 10000] [--repeat 15]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from persistence import EventType, NewEvent, SQLiteStore  # noqa: E402


def build(db: Path, runs: int) -> None:
    """``runs`` completed 3-step-free runs, written in batches of 500 runs."""
    with SQLiteStore.open(db) as store:
        for start in range(0, runs, 500):
            groups = []
            for i in range(start, min(start + 500, runs)):
                run_id = uuid.uuid4().hex
                data = {"workflow": f"bench.wf{i % 7}", "args": [i], "kwargs": {}, "owner": "bench"}
                groups.append(
                    [
                        NewEvent(run_id=run_id, type=EventType.RUN_CREATED, data=data),
                        NewEvent(run_id=run_id, type=EventType.RUN_STARTED),
                        NewEvent(run_id=run_id, type=EventType.RUN_COMPLETED, data={"result": i}),
                    ]
                )
            store.append_groups(groups)


def timed(cmd: list[str], repeat: int) -> list[float]:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        subprocess.run(cmd, check=True, capture_output=True, cwd=ROOT)
        times.append((time.perf_counter() - t0) * 1000)
    return times


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=15)
    args = parser.parse_args()
    db = Path(tempfile.mkdtemp(prefix="proctor-cold-")) / "bench.db"
    build(db, args.runs)
    proctor = [sys.executable, "-m", "cli", "--db", str(db)]
    cases = {
        "python -c pass": [sys.executable, "-c", "pass"],
        "proctor runs list": [*proctor, "runs", "list"],
        "proctor runs list --json": [*proctor, "runs", "list", "--json"],
        "proctor runs list --status failed": [*proctor, "runs", "list", "--status", "failed"],
    }
    print(f"cold start on a store of {args.runs} runs, {args.repeat} fresh processes each")
    for name, cmd in cases.items():
        times = timed(cmd, args.repeat)
        print(f"  {name:<36} median {statistics.median(times):6.1f} ms   max {max(times):6.1f} ms")
    print("  target: proctor runs list < 300 ms")


if __name__ == "__main__":
    main()
