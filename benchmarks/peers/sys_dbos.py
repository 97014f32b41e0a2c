"""DBOS (SQLite system database) in each benchmark scenario (see common.py)."""

from __future__ import annotations

import sys
import threading
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import emit, parked_runs, parse, throughput
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
            # Its fastest way to run one workflow at a time: calling the
            # workflow function runs it durably in this thread (start_workflow
            # and get_result measured ~25% slower here).
            throughput(three_steps, lambda result: result, args.runs, 1)
        elif args.scenario == "concurrent":
            throughput(
                lambda i: DBOS.start_workflow(three_steps, i),
                lambda handle: handle.get_result(),
                args.runs,
                args.concurrency,
            )
        else:  # inflight
            parked_runs(
                lambda key: DBOS.start_workflow(in_flight, key),
                lambda handle: handle.get_result(),
                started,
                release,
                args.runs,
            )
    finally:
        DBOS.destroy()


if __name__ == "__main__":
    main()
