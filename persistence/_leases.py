"""Who is alive: the leases by which runtimes vouch for the runs they own (D2).

A runtime registers a row in ``runtimes`` and renews its lease every few
seconds. A run's owner is dead, and the run may be resumed by another
runtime, when the owner's row says it stopped, when its lease ran out, or,
on the same host, when its process is gone (a SIGKILLed worker is noticed
at once, without waiting for its lease to expire).

The verdict is advisory: the takeover itself is a compare-and-swap in the
store (``run_resumed`` names the previous owner), and a runtime judged dead
too early is fenced by the store on its next write, so a run never has two
writers.
"""

from __future__ import annotations

import os
import socket
from typing import Final

from persistence._records import RuntimeRecord

#: Default lease: a runtime that has not renewed for this long is dead.
DEFAULT_LEASE_TTL: Final = 10.0

HOSTNAME: Final = socket.gethostname()


def why_dead(owner: str, runtime: RuntimeRecord | None, *, now: float) -> str | None:
    """Why ``owner`` no longer vouches for its runs, or None if it may be alive."""
    if runtime is None:
        return f"runtime {owner} is not registered"
    if runtime.stopped_at is not None:
        return f"runtime {owner} stopped"
    if runtime.lease_expires_at is None or runtime.lease_expires_at <= now:
        return f"runtime {owner}'s lease expired"
    if runtime.hostname == HOSTNAME and not pid_alive(runtime.pid):
        return f"runtime {owner}'s process {runtime.pid} is gone"
    return None


def pid_alive(pid: int) -> bool:
    """Whether a process with this id exists on this host."""
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by another user
        return True
    return True
