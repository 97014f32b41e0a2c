"""Cross-process control latency: a cancel or a signal written to the store
-> the code it is for sees it, in a worker process.

A worker subprocess hosts the runs (``peers/worker_proctor.py``: the runtime
``proctor worker`` hosts, at ``synchronous=FULL``); this process plays the CLI:
it creates each run, waits until it is ready (its step runs, for a cancel;
its body waits for the signal ``go``, for a signal), and writes the request
through ``persistence`` exactly as ``proctor cancel`` / ``proctor signal``
do. The clock starts just before the request is written (so it includes
the commit) and stops in the worker: in the step's ``except
CancellationError`` (cancel), or when the body resumes after
``wait_for_signal`` (signal); both read CLOCK_MONOTONIC. Both requests
reach the worker through its ControlInbox (DESIGN §4).

The store is a fresh SQLite file (the default), the store ``--db`` names (a
path or a ``postgresql://`` URL; it is created if missing), or, with
``--store postgres``, a database on a throw-away PostgreSQL server started
for the run (``fsync=on``, ``synchronous_commit=on``: ``pg_server.py``).

    python benchmarks/cross_process_control.py [--control cancel|signal] [--runs 100]
                                               [--db TARGET | --store postgres]
"""

from __future__ import annotations

import argparse
import contextlib
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(HERE))

import machine  # noqa: E402
import pg_server  # noqa: E402

from persistence import (  # noqa: E402
    EventType,
    NewEvent,
    cancel_request,
    open_store,
    redact,
    signal_request,
)


def wait_for(done: Callable[[], bool], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not done():
        if time.monotonic() > deadline:
            raise TimeoutError(f"not done within {timeout}s")
        time.sleep(0.0005)


@contextlib.contextmanager
def store_target(args: argparse.Namespace, work: Path) -> Iterator[str]:
    """The store this run uses: ``--db``, a throw-away server's database, or a file."""
    if args.db:
        yield args.db
    elif args.store == "postgres":
        with pg_server.throwaway() as server:
            print(f"PostgreSQL server: {server.describe()}")
            yield server.create_database("xp")
    else:
        yield str(work / "bench.db")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--control", choices=("cancel", "signal"), default="cancel")
    parser.add_argument("--runs", type=int, default=100)
    parser.add_argument("--db", help="a store: a SQLite path or a postgresql:// URL")
    parser.add_argument("--store", choices=("sqlite", "postgres"), default="sqlite")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="proctor-xp-"))
    print(machine.summary(machine.describe()) + f"; load {machine.load()}")
    with store_target(args, work) as db:
        latencies = measure(args, db, work)
    latencies.sort()
    p99 = latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))]
    sees = "step sees it" if args.control == "cancel" else "body resumes"
    runs = len(latencies)
    print(f"cross-process {args.control} latency over {runs} runs (store write -> {sees})")
    print(f"  store {redact(db)}")
    print(f"  p50 {statistics.median(latencies):6.2f} ms")
    print(f"  p99 {p99:6.2f} ms   (target < 50 ms)")
    print(f"  max {latencies[-1]:6.2f} ms")
    print(f"  load after: {machine.load()}")


def measure(args: argparse.Namespace, db: str, work: Path) -> list[float]:
    """Latencies (ms) of ``args.runs`` requests, each to a run of a worker process."""
    cancel = args.control == "cancel"
    folder = work / "markers"
    folder.mkdir()
    open_store(db).close()  # created before the worker opens it
    log = (work / "worker.log").open("w")
    worker = subprocess.Popen(
        [sys.executable, str(HERE / "peers" / "worker_proctor.py"), "--db", db],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    workflow = "bench.xp_cancel_me" if cancel else "bench.xp_signal_me"
    latencies = []
    try:
        with open_store(db) as store:
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
    return latencies


if __name__ == "__main__":
    main()
