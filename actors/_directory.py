"""The Directory: run id -> the RunSupervisor hosting that run in this runtime.

Readable from any thread (the Runtime facade, the Journal's ownership
checks, the waiters); written by the supervisors themselves.

Invariants: a RunSupervisor adds itself when it is created and removes
itself when it stops, so an entry names a live (or just stopping) actor; a
message sent through a stale entry is refused, never lost silently (see
``_undeliverable``). Child runs are listed too, not only top-level ones.
One run id has at most one entry, so two live supervisors of one run are
impossible (A2): a second ``add`` is refused, and a supervisor that stops
removes its own entry only, never another's.
"""

from __future__ import annotations

import threading
from typing import Any

import pykka

from persistence import InvalidTransition


class Directory:
    """run id -> RunSupervisor of every live run, child runs included."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._refs: dict[str, pykka.ActorRef[Any]] = {}

    def get(self, run_id: str) -> pykka.ActorRef[Any] | None:
        with self._lock:
            return self._refs.get(run_id)

    def add(self, run_id: str, ref: pykka.ActorRef[Any]) -> None:
        """Register ``ref`` as the run's supervisor.

        Raises:
            InvalidTransition: another supervisor hosts the run already (a bug:
                the Guardian hosts a run only if none does).
        """
        with self._lock:
            present = self._refs.setdefault(run_id, ref)
        if present is not ref:
            raise InvalidTransition(f"run {run_id} has a supervisor already: {present}")

    def remove(self, run_id: str, ref: pykka.ActorRef[Any]) -> None:
        """Unregister ``ref``; an entry of another supervisor stays."""
        with self._lock:
            if self._refs.get(run_id) is ref:
                del self._refs[run_id]

    def all(self) -> list[pykka.ActorRef[Any]]:
        with self._lock:
            return list(self._refs.values())

    def run_ids(self) -> list[str]:
        with self._lock:
            return list(self._refs)
