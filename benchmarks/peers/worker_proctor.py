"""A Proctor worker process for ``benchmarks/workers.py`` and
``benchmarks/cross_process_control.py``: what ``proctor worker bench_workflows``
does (a ``Runtime(claim_runs=True)`` that claims and runs the store's unowned
runs until SIGTERM), with the ``synchronous`` level a comparison at equal
durability needs (the CLI's worker runs at the default, NORMAL).

Prints ``ready <pid>`` once its runtime is open and claiming.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import bench_workflows  # noqa: F401 - registers the workflows this worker serves

from actors import Runtime


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--db", required=True, help="a SQLite path or a PostgreSQL URL")
    parser.add_argument("--synchronous", choices=("FULL", "NORMAL"), default="FULL")
    args = parser.parse_args()
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    with Runtime(args.db, claim_runs=True, synchronous=args.synchronous):
        print(f"ready {os.getpid()}", flush=True)
        stop.wait()


if __name__ == "__main__":
    main()
