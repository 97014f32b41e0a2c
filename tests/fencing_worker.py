"""``python -m tests.fencing_worker DB LEASE_TTL``: a worker with a short lease.

Like ``proctor worker tests.fencing_workflows``, with the lease the test
chooses; stops on SIGTERM.
"""

from __future__ import annotations

import logging
import signal
import sys
import threading

import tests.fencing_workflows  # noqa: F401 - registers the workflows
from actors import Runtime


def main() -> None:
    db, lease_ttl = sys.argv[1], float(sys.argv[2])
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    with Runtime(db, claim_runs=True, lease_ttl=lease_ttl) as rt:
        print(f"worker {rt.id} ready", flush=True)
        stop.wait()


if __name__ == "__main__":
    main()
