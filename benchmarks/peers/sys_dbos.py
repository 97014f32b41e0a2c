"""DBOS (SQLite system database) in each benchmark scenario (see common.py)."""

from __future__ import annotations

import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import emit, parse, peak_rss_mb
from dbos import DBOS

release = threading.Event()
started: dict[str, threading.Event] = {}


def main() -> None:
    args = parse()
    if args.scenario == "terminate":
        emit({"unsupported": "DBOS has no terminate: cancel_workflow only marks the workflow"})
        return
    if args.scenario == "cancel":
        emit(
            {
                "unsupported": "DBOS does not deliver a cancel to a running step: "
                "cancel_workflow marks the workflow CANCELLED and the step runs on"
            }
        )
        return
    DBOS(config={"name": "bench", "system_database_url": f"sqlite:///{args.db}"})

    @DBOS.step()
    def noop(i: int) -> int:
        return i

    @DBOS.workflow()
    def three_steps(i: int) -> int:
        return noop(i) + noop(i + 1) + noop(i + 2)

    @DBOS.step()
    def parked(key: str) -> None:
        started[key].set()
        release.wait(120)

    @DBOS.workflow()
    def in_flight(key: str) -> None:
        parked(key)

    DBOS.launch()
    try:
        if args.scenario == "sequential":
            begin = time.perf_counter()
            for i in range(args.runs):
                DBOS.start_workflow(three_steps, i).get_result()
            elapsed = time.perf_counter() - begin
            emit({"runs_per_s": args.runs / elapsed, "steps_per_s": 3 * args.runs / elapsed})
        elif args.scenario == "concurrent":
            begin = time.perf_counter()
            pending = []
            for i in range(args.runs):
                pending.append(DBOS.start_workflow(three_steps, i))
                if len(pending) >= args.concurrency:
                    pending.pop(0).get_result()
            for handle in pending:
                handle.get_result()
            elapsed = time.perf_counter() - begin
            emit({"runs_per_s": args.runs / elapsed, "steps_per_s": 3 * args.runs / elapsed})
        else:  # inflight
            base = peak_rss_mb()
            begin = time.perf_counter()
            handles = []
            for i in range(args.runs):
                started[f"p{i}"] = threading.Event()
                handles.append(DBOS.start_workflow(in_flight, f"p{i}"))
            ok = all(started[f"p{i}"].wait(60) for i in range(args.runs))
            ramp = time.perf_counter() - begin
            peak = peak_rss_mb()
            release.set()
            for handle in handles:
                handle.get_result()
            emit(
                {
                    "held": ok,
                    "ramp_s": ramp,
                    "total_s": time.perf_counter() - begin,
                    "peak_rss_mb": peak,
                    "kb_per_run": 1024 * (peak - base) / args.runs,
                }
            )
    finally:
        DBOS.destroy()


if __name__ == "__main__":
    main()
