"""In-process cancel latency: ``rt.cancel()`` called -> CancellationError raised in a step.

The step checks its mailbox every 1 ms (``check_cancellation()`` then a 1 ms
wait), as DESIGN §6 specifies. The clock starts just before ``rt.cancel`` and
stops inside the step's ``except CancellationError``; both read
``time.perf_counter()`` in the same process.

    python benchmarks/cancel_latency.py [--runs 200] [--db PATH]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import contextlib

from actors import CancellationError, RunCancelled, Runtime, get_context, step, workflow

_started: dict[str, threading.Event] = {}
_seen_at: dict[str, float] = {}


@step(name="bench.looping")
def looping(key: str) -> None:
    ctx = get_context()
    pause = threading.Event()
    _started[key].set()
    try:
        while True:
            ctx.check_cancellation()
            pause.wait(0.001)
    except CancellationError:
        _seen_at[key] = time.perf_counter()
        raise


@workflow(name="bench.cancel_me")
async def cancel_me(key: str) -> None:
    await looping(key)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--db", type=Path, default=None)
    args = parser.parse_args()
    db = args.db or Path(tempfile.mkdtemp()) / "bench.db"
    latencies = []
    with Runtime(db) as rt:
        for i in range(args.runs):
            key = f"k{i}"
            _started[key] = threading.Event()
            handle = rt.start(cancel_me, key)
            _started[key].wait(10)
            t0 = time.perf_counter()
            rt.cancel(handle.run_id, "bench")
            with contextlib.suppress(RunCancelled):
                handle.result(timeout=10)
            latencies.append((_seen_at[key] - t0) * 1000)
    latencies.sort()
    p50 = statistics.median(latencies)
    p99 = latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))]
    print(f"in-process cancel latency over {len(latencies)} runs (step checks every 1 ms)")
    print(f"  p50 {p50:.3f} ms   p99 {p99:.3f} ms   max {latencies[-1]:.3f} ms")
    print("  target (DESIGN §6): p50 < 1 ms, p99 < 5 ms")


if __name__ == "__main__":
    main()
