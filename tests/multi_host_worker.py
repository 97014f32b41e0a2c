"""``python -m tests.multi_host_worker URL LEASE_TTL``: a worker with a short lease.

Like ``proctor --db URL worker tests.multi_host_workflows``, with the lease
the test chooses (the CLI keeps the default lease); logs as the CLI's
worker does, and stops (without draining) on SIGTERM.
"""

from __future__ import annotations

import logging
import signal
import sys
import threading

import tests.multi_host_workflows  # noqa: F401 - registers the workflows
from actors import Runtime


def main() -> None:
    url, lease_ttl = sys.argv[1], float(sys.argv[2])
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    with Runtime(url, claim_runs=True, lease_ttl=lease_ttl) as rt:
        print(f"worker {rt.id} ready", flush=True)
        stop.wait()


if __name__ == "__main__":
    main()
