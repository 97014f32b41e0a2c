"""DBOS with worker processes on one system database (see fleet.py).

A ``DBOSClient`` (no workflow code, as a service's process) enqueues the
runs on the queue ``bench``; K worker processes (``worker_dbos.py``)
dequeue and run them, polling the queue every ``--poll`` seconds (DBOS's
default is 1 s; 10 ms here, so the queue's poll does not set the pace).
Prints one JSON line.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import common
import fleet
from dbos import DBOSClient, EnqueueOptions

HERE = Path(__file__).resolve().parent
TERMINAL = {"SUCCESS", "ERROR", "CANCELLED", "MAX_RECOVERY_ATTEMPTS_EXCEEDED"}


def parse() -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    parser.add_argument("scenario", choices=("throughput", "takeover"))
    parser.add_argument("--db", required=True, help="a SQLite path or a PostgreSQL URL")
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--windows", type=int, nargs="+", default=[1, 16, 64])
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--synchronous", choices=("FULL", "NORMAL"), default="FULL")
    parser.add_argument("--give-up", type=float, default=60.0)
    parser.add_argument("--poll", type=float, default=0.01)
    return parser.parse_args()


def main() -> None:
    args = parse()
    if args.synchronous != "FULL":
        common.emit({"unsupported": "DBOS has no durability setting of its own"})
        return
    url = args.db if common.is_postgres(args.db) else f"sqlite:///{args.db}"
    command = [sys.executable, str(HERE / "worker_dbos.py"), "--db", args.db]
    command += ["--poll", str(args.poll)]
    # The first worker creates the system database (a DBOSClient never migrates).
    workers = fleet.spawn([command])
    try:
        workers += fleet.spawn([command] * (args.workers - 1))
        client = DBOSClient(system_database_url=url, application_name="bench")
        try:

            def enqueue(workflow: str, *call: Any) -> Any:
                options: EnqueueOptions = {"workflow_name": workflow, "queue_name": "bench"}
                return client.enqueue(options, *call)

            if args.scenario == "throughput":

                def finished(handle: Any) -> bool:
                    return handle.get_status().status in TERMINAL

                result: dict[str, Any] = {
                    f"window_{w}": fleet.windowed(
                        lambda i: enqueue("bench.three_steps", i), finished, args.runs, w
                    )
                    for w in args.windows
                }
            else:
                folder = Path(tempfile.mkdtemp(prefix="dbos-takeover-"))
                result = fleet.takeover(
                    lambda key: enqueue("bench.held_run", str(folder), key),
                    workers,
                    folder,
                    args.runs,
                    give_up=args.give_up,
                )
                if not result["taken_over"]:
                    result = {
                        "unsupported": f"no other worker resumed the {result['killed_runs']}"
                        f" runs of the killed one within {args.give_up:.0f} s (DBOS recovers"
                        " a dead executor's runs through Conductor or a call of"
                        " DBOS.recover_pending_workflows, not by itself)"
                    }
        finally:
            client.destroy()
    finally:
        fleet.stop(workers)
    common.durability = lambda: common.durability_of(args.db)
    common.emit(result)


if __name__ == "__main__":
    main()
