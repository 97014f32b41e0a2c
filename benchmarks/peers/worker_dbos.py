"""A DBOS worker process for ``benchmarks/workers.py``: DBOS launched on the
shared system database, dequeuing the queue ``bench`` (DBOS's model of
workers: any process that launches with the queue registered runs its
workflows), until SIGTERM. Prints ``ready <pid>`` once launched.

Each worker has its own executor id (DBOS's default, ``local``, is one id
for every process, and would let a starting worker recover the others'
runs as its own).
"""

from __future__ import annotations

import argparse
import os
import signal
import threading
import time
from pathlib import Path

from dbos import DBOS


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--db", required=True, help="a SQLite path or a PostgreSQL URL")
    parser.add_argument("--poll", type=float, default=0.01, help="queue polling interval (s)")
    args = parser.parse_args()
    url = args.db if args.db.startswith("postgres") else f"sqlite:///{args.db}"
    config = {
        "name": "bench",
        "system_database_url": url,
        "executor_id": f"worker-{os.getpid()}",
        "application_version": "bench",
    }
    DBOS(config=config)  # type: ignore[arg-type]

    @DBOS.step(name="bench.noop")
    def noop(i: int) -> int:
        return i

    @DBOS.workflow(name="bench.three_steps")
    def three_steps(i: int) -> int:
        return noop(i) + noop(i + 1) + noop(i + 2)

    @DBOS.step(name="bench.held")
    def held(folder: str, key: str) -> None:
        Path(folder, f"{key}.{os.getpid()}").write_text(repr(time.monotonic()))
        while not Path(folder, "release").exists():
            time.sleep(0.01)

    @DBOS.workflow(name="bench.held_run")
    def held_run(folder: str, key: str) -> None:
        held(folder, key)

    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    DBOS.launch()
    DBOS.register_queue("bench", polling_interval_sec=args.poll)
    try:
        print(f"ready {os.getpid()}", flush=True)
        stop.wait()
    finally:
        DBOS.destroy()


if __name__ == "__main__":
    main()
