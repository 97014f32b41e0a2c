"""Self-fencing: a runtime stops its steps before anyone may take its runs over.

Ownership is proven, not assumed (Chubby's "jeopardy", Temporal's worker
that stops its activities when it loses its session). Each runtime keeps a
:class:`LeaseGuard`, shared by all its actors and read by every step's
checks (``heartbeat()``, ``check_cancellation()``, ``check_terminated()``),
each of which raises :class:`Terminated` when the guard says so:

- **The lease's safe window passed.** The guard knows, on this process's
  monotonic clock, when the last renewal that succeeded was *sent*. Another
  runtime judges us dead only after seeing our renewal counter unchanged
  for ``lease_ttl`` of its own clock, which starts no earlier than that
  renewal's commit; we stop at ``SAFE_FRACTION`` of it. The rest is the
  margin in which a step reaches its next check. A store locked for longer
  than that, a pause (SIGSTOP, a VM freeze) or a partition all end here.
- **The lease was revoked.** A renewal found our row revoked or stopped:
  another runtime judged us dead. Final: the runtime hosts nothing more.
- **A run changed owner.** The Journal saw a write for the run refused as
  fenced, a heartbeat of a run the store says is another's, or a run it
  hosts owned elsewhere at a renewal: that run's steps unwind.

Invariants: the guard only ever narrows what may run, except that a renewal
that succeeds again reopens the window (the runs it stopped are then
re-hosted from their logs if they are still ours), and our own accepted
``run_resumed``/``run_claimed`` of a run clears its loss (a new hosting).
All state is a few attributes and a dict, each read or written atomically
under the GIL: checks take no lock.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Final

from actors._errors import Terminated
from persistence import Store

#: Fraction of the lease after its last renewal (sent) that a runtime trusts
#: itself to still own its runs. The remaining quarter is the margin for a
#: step to reach its next check and for two clocks' rates to differ.
SAFE_FRACTION: Final = 0.75
#: ``lease_ttl`` must be at least this many busy timeouts: a renewal due a
#: third of a lease after the last one can wait one busy timeout behind a
#: locked write and still land inside the safe window.
MIN_LEASE_PER_BUSY_TIMEOUT: Final = 3.0


def check_lease_config(lease_ttl: float, busy_timeout: float) -> None:
    """Raise ValueError unless the lease comfortably outlasts the busy timeout."""
    if not lease_ttl > 0:
        raise ValueError(f"lease_ttl must be positive, got {lease_ttl!r}")
    if not busy_timeout > 0:
        raise ValueError(f"busy_timeout must be positive, got {busy_timeout!r}")
    if lease_ttl < MIN_LEASE_PER_BUSY_TIMEOUT * busy_timeout:
        raise ValueError(
            f"lease_ttl ({lease_ttl}s) must be at least {MIN_LEASE_PER_BUSY_TIMEOUT:g}x"
            f" busy_timeout ({busy_timeout}s): a renewal that waits out one busy timeout"
            " behind a locked store must still land before the lease's safe window ends,"
            " or the runtime stops its own runs (pass a longer lease or a shorter busy"
            " timeout)"
        )


class Fenced(Terminated):
    """The :class:`Terminated` a step gets when its runtime no longer owns its
    run: user code sees a Terminated; the step's supervisor records nothing
    of the attempt and stops hosting the run."""


class LeaseGuard:
    """This runtime's own view of its lease and of the runs it lost."""

    def __init__(
        self,
        *,
        owner: str,
        lease_ttl: float,
        registered_at: float,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        """``registered_at``: when the registration was sent, on ``monotonic``."""
        self.owner = owner
        self.lease_ttl = lease_ttl
        self.window = lease_ttl * SAFE_FRACTION
        self._monotonic = monotonic
        self._valid_until = registered_at + self.window
        self._revoked: str | None = None
        self._lost: dict[str, str] = {}
        self._lock = threading.Lock()  # writers only; readers need none

    def now(self) -> float:
        return self._monotonic()

    def renewed(self, sent_at: float) -> None:
        """A renewal sent at ``sent_at`` (monotonic) committed."""
        with self._lock:
            self._valid_until = max(self._valid_until, sent_at + self.window)

    def revoke(self, why: str) -> None:
        """Our row says we are dead: we own nothing any more, for good."""
        with self._lock:
            if self._revoked is None:
                self._revoked = why

    def lose(self, run_id: str, why: str) -> bool:
        """``run_id`` is another runtime's now; True the first time we hear it."""
        with self._lock:
            if run_id in self._lost:
                return False
            self._lost[run_id] = why
            return True

    def regain(self, run_id: str) -> None:
        """We took ``run_id`` over again (a new hosting, from its log)."""
        with self._lock:
            self._lost.pop(run_id, None)

    @property
    def revoked(self) -> str | None:
        return self._revoked

    def why_fenced(self) -> str | None:
        """Why this runtime may not run any step now, or None."""
        if self._revoked is not None:
            return f"runtime {self.owner} lost its lease: {self._revoked}"
        late = self._monotonic() - self._valid_until
        if late >= 0:
            return (
                f"runtime {self.owner} could not renew its lease within"
                f" {self.window:.1f}s (lease {self.lease_ttl:g}s); its runs may be"
                " taken over, so it stops them"
            )
        return None

    def check(self, run_id: str) -> None:
        """Raise :class:`Terminated` if a step of ``run_id`` may not go on."""
        lost = self._lost.get(run_id)
        if lost is not None:
            raise Fenced(lost)
        why = self.why_fenced()
        if why is not None:
            raise Fenced(why)


def register(store: Store, owner: str, lease_ttl: float) -> LeaseGuard:
    """Register runtime ``owner`` in ``store`` with a full lease of ``lease_ttl``
    seconds; return the guard that counts that lease down.

    Raises:
        StoreError: the registration failed; ``store`` is closed.
    """
    registered_at = time.monotonic()  # sent; the guard counts from here
    try:
        store.register_runtime(owner, ttl=lease_ttl)
    except BaseException:
        store.close()
        raise
    return LeaseGuard(owner=owner, lease_ttl=lease_ttl, registered_at=registered_at)
