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
    if runtime.hostname == HOSTNAME:
        if not pid_alive(runtime.pid):
            return f"runtime {owner}'s process {runtime.pid} is gone"
        started = process_started_at(runtime.pid)
        if started is not None and started > runtime.started_at + _CLOCK_SLACK:
            # A container restarted: the new process got the same pid (often 1).
            return f"runtime {owner}'s process {runtime.pid} is gone (its pid was reused)"
    return None


#: Tolerance between the kernel's idea of a process's start and the wall clock.
_CLOCK_SLACK: Final = 2.0


def process_started_at(pid: int) -> float | None:
    """When process ``pid`` started (epoch seconds), where /proc tells; else None."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            stat = f.read()
        with open("/proc/stat") as f:
            boot = next(float(line.split()[1]) for line in f if line.startswith("btime "))
    except (OSError, StopIteration, ValueError):
        return None
    # Field 22 (starttime, clock ticks after boot) counted after the ")" that
    # ends the command name, which may itself hold spaces.
    fields = stat.rsplit(")", 1)[1].split()
    return boot + int(fields[19]) / os.sysconf("SC_CLK_TCK")


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
