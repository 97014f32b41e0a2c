"""Cross-process control latency: a cancel or a signal written to the store
-> the code it is for sees it, in a worker process.

A ``proctor worker`` subprocess hosts the runs; this process plays the CLI:
it creates each run, waits until it is ready (its step runs, for a cancel;
its body waits for the signal ``go``, for a signal), and writes the request
through ``persistence`` exactly as ``proctor cancel`` / ``proctor signal``
do. The clock starts just before the request is written (so it includes
the commit) and stops in the worker: in the step's ``except
CancellationError`` (cancel), or when the body resumes after
``wait_for_signal`` (signal); both read CLOCK_MONOTONIC. Both requests
reach the worker through its ControlInbox (DESIGN §4).

    python benchmarks/cross_process_control.py [--control cancel|signal] [--runs 100]
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
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from persistence import (  # noqa: E402
    EventType,
    NewEvent,
    SQLiteStore,
    cancel_request,
    signal_request,
)


def wait_for(done: Callable[[], bool], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not done():
        if time.monotonic() > deadline:
            raise TimeoutError(f"not done within {timeout}s")
        time.sleep(0.0005)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--control", choices=("cancel", "signal"), default="cancel")
    parser.add_argument("--runs", type=int, default=100)
    args = parser.parse_args()
    cancel = args.control == "cancel"
    work = Path(tempfile.mkdtemp(prefix="proctor-xp-"))
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
    workflow = "bench.xp_cancel_me" if cancel else "bench.xp_signal_me"
    latencies = []
    try:
        with SQLiteStore.open(db) as store:
            for i in range(args.runs):
                key, run_id = f"k{i}", uuid.uuid4().hex
                data = {"workflow": workflow, "args": [str(folder), key], "kwargs": {}}
                store.append([NewEvent(run_id=run_id, type=EventType.RUN_CREATED, data=data)])
                if cancel:
                    wait_for((folder / f"{key}.started").exists)
                    request = cancel_request(run_id, "bench", source="cli", origin="bench")
                else:
                    wait_for(
                        lambda run_id=run_id: any(  # type: ignore[misc]
                            e.type is EventType.SIGNAL_WAITING for e in store.events(run_id)
                        )
                    )
                    request = signal_request(run_id, "go", i, origin="bench", limit=None)
                t0 = time.monotonic()
                store.append([request])
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
    sees = "step sees it" if cancel else "body resumes"
    runs = len(latencies)
    print(f"cross-process {args.control} latency over {runs} runs (store write -> {sees})")
    print(f"  p50 {statistics.median(latencies):6.2f} ms")
    print(f"  p99 {p99:6.2f} ms   (target < 50 ms)")
    print(f"  max {latencies[-1]:6.2f} ms")


if __name__ == "__main__":
    main()
