"""Cross-process signal latency: ``signal_sent`` written to the store -> the body resumes.

A ``proctor worker`` subprocess hosts the runs; this process plays the CLI:
it creates each run, waits until its body waits for the signal ``go``
(``signal_waiting`` in its log), and writes the signal through
``persistence`` exactly as ``proctor signal`` does. The clock starts just
before the signal is written (so it includes the commit) and stops when the
body resumes after ``wait_for_signal``, in the worker; both read
CLOCK_MONOTONIC. The signal reaches the worker through its ControlInbox,
the path a cross-process cancel takes (DESIGN §4).

    python benchmarks/cross_process_signal.py [--runs 100]
"""

from __future__ import annotations

import argparse
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from persistence import EventType, NewEvent, SQLiteStore, signal_request  # noqa: E402


def wait_for(done: object, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not done():  # type: ignore[operator]
        if time.monotonic() > deadline:
            raise TimeoutError(f"not done within {timeout}s")
        time.sleep(0.0005)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=100)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="proctor-xs-"))
    db, folder = work / "bench.db", work / "markers"
    folder.mkdir()
    SQLiteStore.open(db).close()
    log = (work / "worker.log").open("w")
    worker = subprocess.Popen(
        [sys.executable, "-m", "cli", "--db", str(db), "worker", "bench_workflows"],
        cwd=ROOT / "benchmarks",
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    latencies = []
    try:
        with SQLiteStore.open(db) as store:
            for i in range(args.runs):
                key, run_id = f"k{i}", uuid.uuid4().hex
                data = {"workflow": "bench.xp_signal_me", "args": [str(folder), key], "kwargs": {}}
                store.append([NewEvent(run_id=run_id, type=EventType.RUN_CREATED, data=data)])

                def waits(run_id: str = run_id) -> bool:
                    return any(e.type is EventType.SIGNAL_WAITING for e in store.events(run_id))

                wait_for(waits)
                t0 = time.monotonic()
                store.append([signal_request(run_id, "go", i, origin="bench", limit=None)])
                seen = folder / f"{key}.seen"
                wait_for(seen.exists)
                while not (text := seen.read_text()):
                    time.sleep(0.0005)  # the worker is still writing the file
                latencies.append((float(text) - t0) * 1000)
    finally:
        worker.send_signal(signal.SIGTERM)
        worker.wait(timeout=30)
        log.close()
    latencies.sort()
    p99 = latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))]
    print(f"cross-process signal latency over {len(latencies)} runs (store write -> body resumes)")
    print(f"  p50 {statistics.median(latencies):6.2f} ms")
    print(f"  p99 {p99:6.2f} ms   (target < 50 ms)")
    print(f"  max {latencies[-1]:6.2f} ms")


if __name__ == "__main__":
    main()
