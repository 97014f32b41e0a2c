"""What this runtime owns, as its Journal learns it from its own writes.

The Journal writes; this keeps the books of ownership it learns from those
writes and reports what it learns to the runtime's LeaseGuard (which every
step checks) and to the Guardian (which stops hosting what is lost):

* the runs whose ownership the Journal wrote (created, claimed, resumed)
  and that have not ended or been lost since;
* a renewal that took (the guard's safe window moves on), and at each, any
  hosted run the store says is another's now;
* a renewal refused: the runtime's row says it stopped or was judged dead
  (revoked), so it owns nothing any more;
* a write refused as fenced, or a heartbeat of a run owned elsewhere.

A collaborator of the Journal, on its thread, reading through its
connection; it writes nothing.

Invariants: only a run in ``owned`` can be *lost* (a run being taken over
is hosted before its ``run_resumed`` commits, and is still the old owner's
until then); the Guardian hears of each loss once per hosting.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import Any, Final

import pykka

from actors._base import logger, tell
from actors._fencing import LeaseGuard
from actors._messages import LeaseLost
from persistence import TERMINAL_EVENTS, EventType, NewEvent, Store, StoreError

#: Records by which a runtime becomes a run's owner.
OWNING: Final = frozenset({EventType.RUN_CREATED, EventType.RUN_CLAIMED, EventType.RUN_RESUMED})


class Tenure:
    """The ownership books of one runtime (see the module).

    Args:
        owner: the runtime's id.
        guard: its LeaseGuard (None: no fencing).
        hosted: the run ids it hosts now (its Directory).
        guardian: where losses are reported.
    """

    def __init__(
        self,
        *,
        owner: str,
        guard: LeaseGuard | None,
        hosted: Callable[[], list[str]],
        guardian: pykka.ActorRef[Any],
    ) -> None:
        self._owner = owner
        self._guard = guard
        self._hosted = hosted
        self._guardian = guardian
        #: Runs whose ownership by us the Journal wrote (created, claimed,
        #: resumed) and that have not ended or been lost since.
        self._owned: set[str] = set()
        self._unhosted: set[str] = set()

    def now(self) -> float:
        """The guard's clock: when a renewal is sent."""
        return self._guard.now() if self._guard is not None else 0.0

    def renewed(self, sent: float, store: Store) -> None:
        """A renewal sent at ``sent`` took: the safe window moves on; then
        any hosted run the store says is another's stops at once."""
        if self._guard is not None:
            self._guard.renewed(sent)
        now_hosted = set(self._hosted())
        # Forget runs hosted no more at two checks in a row (ended, say, by a
        # terminate from another process); one just claimed is hosted soon.
        unhosted = self._owned - now_hosted
        self._owned -= unhosted & self._unhosted
        self._unhosted = unhosted
        hosted = list(self._owned & now_hosted)
        if hosted:
            for run_id, owner in store.owned_elsewhere(hosted, me=self._owner).items():
                self.lost(run_id, f"run {run_id} is owned by {owner} now")

    def revoked(self, store: Store) -> None:
        """Our row says we stopped or were judged dead: we own nothing any more."""
        why = "its row says it stopped or its lease was revoked"
        with contextlib.suppress(StoreError):  # the reason is a nicety; the verdict is not
            row = next((r for r in store.runtimes() if r.owner == self._owner), None)
            why = (row.revoked if row is not None else None) or why
        if self._guard is None or self._guard.revoked is None:
            logger.critical(
                "runtime %s lost its lease (%s): it stops its runs, which other runtimes"
                " resume; restart this process to host runs again",
                self._owner,
                why,
            )
        if self._guard is not None:
            self._guard.revoke(why)
        tell(self._guardian, LeaseLost(why=f"lease revoked: {why}"))

    def lost(self, run_id: str, why: str) -> None:
        """The store says ``run_id`` is no longer ours."""
        self._owned.discard(run_id)
        if self._guard is None or self._guard.lose(run_id, why):
            tell(self._guardian, LeaseLost(why=why, run_id=run_id))

    def note(self, event: NewEvent) -> None:
        """An accepted event: it may make the run ours, or end it."""
        if event.type in OWNING and event.data.get("owner") == self._owner:
            self._owned.add(event.run_id)
            if self._guard is not None:
                self._guard.regain(event.run_id)  # a new hosting, from its log
        elif event.type in TERMINAL_EVENTS:
            self._owned.discard(event.run_id)
