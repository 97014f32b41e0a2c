"""The load of the PostgreSQL fault tests, and the tools that break the server under it.

- :class:`Load`: ``RUNS`` runs of three heartbeating steps in one runtime, a
  thread per run waiting for its result, and the check of what must hold
  once the fault is over (every wait answered, every run COMPLETED, one
  ``step_completed`` per call, no two attempts of a step at once: the side
  files of :mod:`tests.fault_workflows`).
- :class:`Hog`: every connection the server gives a non-superuser, held.
- :func:`app_url`: a database's URL for a role that is not a superuser.
"""

from __future__ import annotations

import re
import threading
from pathlib import Path
from typing import Any

import psycopg
import pytest

from actors import EventType, RunHandle, RunState, Runtime
from persistence import open_store
from tests.conftest import wait_until
from tests.fault_invariants import check_invariants
from tests.fault_workflows import chain
from tests.pg_cluster import PgCluster, PgDatabase

#: Runs in flight when the fault strikes.
RUNS = 40
#: Once the fault is over, every run ends within this (seconds).
SETTLE = 60.0


class Load:
    """``RUNS`` runs of three steps, four heartbeating slices each, and a
    thread per run waiting for its result through the public API."""

    def __init__(self, rt: Runtime, folder: Path, runs: int = RUNS) -> None:
        self.folder = folder
        self.handles: list[RunHandle[Any]] = [
            rt.start(chain, str(folder), 3, 4, 0.02) for _ in range(runs)
        ]
        self.results: dict[str, object] = {}
        self._waiters = [threading.Thread(target=self._wait, args=(h,)) for h in self.handles]
        for waiter in self._waiters:
            waiter.start()

    @property
    def run_ids(self) -> list[str]:
        return [h.run_id for h in self.handles]

    def _wait(self, handle: RunHandle[Any]) -> None:
        try:
            self.results[handle.run_id] = handle.result(timeout=SETTLE)
        except BaseException as exc:  # reported by check(), not lost in a thread
            self.results[handle.run_id] = exc

    def under_way(self) -> None:
        """Wait until half the runs have a step attempt under way."""
        wait_until(lambda: sum(1 for _ in self.folder.glob("*.steplog")) >= RUNS // 2, 30)

    def join(self) -> None:
        for waiter in self._waiters:
            waiter.join(SETTLE + 10)

    def check(self, target: str) -> None:
        """Every wait returned the result; every run COMPLETED, each step
        recorded once (one ``step_completed`` per call), no two attempts of
        a step at once (the side files)."""
        self.join()
        odd = {r: repr(v) for r, v in self.results.items() if v != ["s0", "s1", "s2"]}
        assert odd == {}, odd
        with open_store(target, readonly=True) as store:
            for run_id in self.run_ids:
                assert store.get_run(run_id).status is RunState.COMPLETED
                log = store.events(run_id)
                ends = sorted(e.call for e in log if e.type is EventType.STEP_COMPLETED)
                assert ends == [0, 1, 2], (run_id, [e.type.value for e in log])
        found = check_invariants(target, self.folder, self.run_ids)
        assert not found, found.render()


#: A role that is not a superuser: the server keeps superuser_reserved_connections
#: from it, as from an application's role.
APP_ROLE = "proctor_app"


def app_url(cluster: PgCluster, database: PgDatabase) -> str:
    """The database's URL for :data:`APP_ROLE`, which owns it (and so may create the schema)."""
    exists = cluster.sql("SELECT 1 FROM pg_roles WHERE rolname = %s", (APP_ROLE,))
    if not exists:
        cluster.sql(f"CREATE ROLE {APP_ROLE} LOGIN")
    cluster.sql(f'ALTER DATABASE "{database.name}" OWNER TO {APP_ROLE}')
    return cluster.url(database.name, user=APP_ROLE)


#: How the server refuses a connection when it has none left for a non-superuser.
FULL = re.compile("too many clients|remaining connection slots are reserved")


class Hog:
    """Every connection the server gives a non-superuser, held until :meth:`release`."""

    def __init__(self, url: str) -> None:
        self.held: list[psycopg.Connection[Any]] = []
        self.refusal = ""
        while len(self.held) < 1000:
            try:
                self.held.append(psycopg.connect(url, connect_timeout=10))
            except psycopg.OperationalError as exc:
                self.refusal = str(exc)
                break
        if not FULL.search(self.refusal):
            self.release()
            pytest.fail(f"the server did not fill up: {self.refusal!r}")

    def release(self) -> None:
        for conn in self.held:
            conn.close()
        self.held.clear()


def connections(cluster: PgCluster, database: PgDatabase) -> int:
    """How many sessions the database has now (the cluster's own are in another)."""
    rows = cluster.sql("SELECT count(*) FROM pg_stat_activity WHERE datname = %s", (database.name,))
    return int(rows[0][0])
