"""Who is alive: the leases by which runtimes vouch for the runs they own (D2, P3).

A runtime registers a row in ``runtimes`` and renews its lease every third
of ``lease_ttl``; each renewal bumps the row's ``renewals`` counter. A run's
owner is dead, and the run may be resumed by another runtime, when:

- its row says it stopped on purpose, or that its lease was revoked;
- its process is gone, and the observer can tell: only a process in the
  same PID namespace of the same boot of the same host (a pid means
  nothing in another container, or after a reboot);
- an observer has seen its ``renewals`` counter unchanged for a full
  ``lease_ttl`` of the observer's *own* monotonic clock
  (:class:`LeaseObserver`). Two processes' wall clocks are never compared
  (P3): a clock an hour ahead, or stepped by NTP, changes nothing.

Invariants:

- A verdict by silence is written back as a compare-and-swap on the counter
  (``Store.orphaned_runs``): the owner renewed meanwhile, or it is revoked
  and its next renewal fails, so it learns it lost its runs (it then stops
  them: self-fencing, in the runtime).
- The takeover itself is a compare-and-swap in the store (``run_resumed``
  names the previous owner and the log length it read), and every write of
  a runtime that lost a run is refused, so a run never has two writers.
"""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Callable, Iterable
from typing import Final

from persistence._records import RuntimeRecord

#: Default lease: a runtime not seen renewing for this long is dead.
DEFAULT_LEASE_TTL: Final = 10.0

HOSTNAME: Final = socket.gethostname()


def _read_pid_ns() -> str | None:
    try:
        return os.readlink("/proc/self/ns/pid")  # e.g. "pid:[4026531836]"
    except OSError:
        return None


def _read_boot_id() -> str | None:
    try:
        with open("/proc/sys/kernel/random/boot_id") as f:
            return f.read().strip() or None
    except OSError:
        return None


#: This process's PID namespace and boot; None where /proc does not say.
PID_NS: Final = _read_pid_ns()
BOOT_ID: Final = _read_boot_id()


def pid_comparable(runtime: RuntimeRecord) -> bool:
    """Whether ``runtime``'s pid names a process this one can see: same host,
    same PID namespace, same boot, each known on both sides."""
    return (
        runtime.hostname == HOSTNAME
        and PID_NS is not None
        and BOOT_ID is not None
        and runtime.pid_ns == PID_NS
        and runtime.boot_id == BOOT_ID
    )


class LeaseObserver:
    """How long each runtime has been seen *not* renewing, on our own clock (P3).

    ``silent_for(runtime)`` is the time, on the injected monotonic clock,
    since this observer first saw the runtime's current ``renewals`` value.
    A fresh observer knows nothing yet: every runtime starts at 0, so it
    judges nobody dead by silence before one full lease has passed on its
    own clock. Not thread-safe: one per observing actor.
    """

    def __init__(self, monotonic: Callable[[], float] = time.monotonic) -> None:
        self._monotonic = monotonic
        self._seen: dict[str, tuple[int, float]] = {}

    def silent_for(self, runtime: RuntimeRecord) -> float:
        """Seconds (observer's monotonic clock) the counter has been unchanged."""
        now = self._monotonic()
        seen = self._seen.get(runtime.owner)
        if seen is None or seen[0] != runtime.renewals:
            self._seen[runtime.owner] = (runtime.renewals, now)
            return 0.0
        return now - seen[1]

    def forget_others(self, owners: Iterable[str]) -> None:
        """Drop what was seen of runtimes no longer listed (their rows are gone)."""
        keep = set(owners)
        for owner in [o for o in self._seen if o not in keep]:
            del self._seen[owner]


def why_dead(
    owner: str, runtime: RuntimeRecord | None, *, silent_for: float | None = None
) -> str | None:
    """Why ``owner`` no longer vouches for its runs, or None if it may be alive.

    Args:
        owner: the runtime's id.
        runtime: its row (None: not registered).
        silent_for: seconds the observer has seen its renewal counter
            unchanged, on the observer's own monotonic clock
            (:meth:`LeaseObserver.silent_for`); None for a one-shot reader
            (the CLI), which then judges only by what the row and the pid say.
    """
    if runtime is None:
        return f"runtime {owner} is not registered"
    if runtime.stopped_at is not None:
        return f"runtime {owner} stopped"
    if runtime.revoked is not None:
        return f"runtime {owner}'s lease expired ({runtime.revoked})"
    if pid_comparable(runtime):
        if not pid_alive(runtime.pid):
            return f"runtime {owner}'s process {runtime.pid} is gone"
        started = process_started_at(runtime.pid)
        if started is not None and started > runtime.started_at + _CLOCK_SLACK:
            # A container restarted: the new process got the same pid (often 1).
            return f"runtime {owner}'s process {runtime.pid} is gone (its pid was reused)"
    ttl = runtime.lease_ttl if runtime.lease_ttl is not None else DEFAULT_LEASE_TTL
    if silent_for is not None and silent_for >= ttl:
        return f"runtime {owner}'s lease expired: not renewed for {silent_for:.1f}s"
    return None


#: Tolerance between the kernel's idea of a process's start and the wall clock
#: (same host, same boot: one clock).
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
    """Whether a live process with this id exists in this PID namespace.

    A zombie (killed, not yet reaped by its parent: state ``Z``, or ``X``
    dying) is dead: it runs no code and will renew no lease. Its state is
    read from ``/proc/<pid>/stat`` where there is one (Linux); elsewhere
    ``os.kill(pid, 0)`` alone judges, and a zombie there counts as alive.
    """
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by another user
        pass
    return process_state(pid) not in _DEAD_STATES


#: ``/proc/<pid>/stat`` states of a process that will never run again.
_DEAD_STATES: Final = frozenset({"Z", "X", "x"})


def process_state(pid: int) -> str | None:
    """Process ``pid``'s one-letter state (``R``, ``S``, ``Z``...) where /proc
    tells; else None."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            stat = f.read()
    except OSError:
        return None
    # The state follows the ")" that ends the command name (which may hold spaces).
    fields = stat.rsplit(")", 1)[-1].split()
    return fields[0] if fields else None
