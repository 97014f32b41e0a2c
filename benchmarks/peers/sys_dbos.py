"""DBOS (SQLite system database) in each benchmark scenario (see common.py)."""

from __future__ import annotations

import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import common
from common import emit, parked_runs, parse, throughput
from dbos import DBOS

release = threading.Event()
started: dict[str, threading.Event] = {}


def main() -> None:
    args = parse()
    if args.scenario == "terminate":
        emit({"unsupported": "DBOS has no terminate: cancel_workflow only marks the workflow"})
        return
    url = args.db if common.is_postgres(args.db) else f"sqlite:///{args.db}"
    DBOS(config={"name": "bench", "system_database_url": url})
    # DBOS sets neither journal_mode nor synchronous on SQLite (SQLite's
    # defaults), nor synchronous_commit on PostgreSQL (the server's).
    common.durability = lambda: common.durability_of(args.db)

    ran_on: list[float] = []

    @DBOS.step()
    def busy(key: str) -> None:
        """Works for 200 ms in 1 ms slices; DBOS offers a step no check to call."""
        started[key].set()
        deadline = time.monotonic() + 0.2
        while time.monotonic() < deadline:
            time.sleep(0.001)
        ran_on.append(time.perf_counter())

    @DBOS.workflow()
    def cancel_me(key: str) -> None:
        busy(key)

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
        if args.scenario == "cancel":
            # Shown, not just stated: the cancel never reaches the running step.
            started["c"] = threading.Event()
            handle = DBOS.start_workflow(cancel_me, "c")
            started["c"].wait(10)
            asked = time.perf_counter()
            DBOS.cancel_workflow(handle.workflow_id)
            status = DBOS.get_workflow_status(handle.workflow_id)
            shown = status.status if status is not None else "unknown"
            deadline = time.monotonic() + 10
            while not ran_on and time.monotonic() < deadline:
                time.sleep(0.01)
            if not ran_on:
                emit({"error": "the step neither finished nor saw the cancel"})
                return
            emit(
                {
                    "unsupported": f"a cancel does not reach a running step: the run "
                    f"showed {shown} at once, and the step ran on "
                    f"{1000 * (ran_on[0] - asked):.0f} ms until it returned by itself"
                }
            )
        elif args.scenario == "sequential":
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
