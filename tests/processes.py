"""Helpers for tests that run the CLI and workers as real processes."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

from persistence import EventRecord, RunRecord, open_store

ROOT = Path(__file__).resolve().parent.parent
#: Processes start in a fresh interpreter; give them room on a busy 2-core CI box.
DEADLINE = 30.0


def proctor(
    db: str | os.PathLike[str], *args: str, timeout: float = DEADLINE
) -> subprocess.CompletedProcess[str]:
    """Run ``python -m cli --db DB ARGS...`` to completion."""
    return subprocess.run(
        [sys.executable, "-m", "cli", "--db", os.fspath(db), *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def record(db: str | os.PathLike[str], run_id: str) -> RunRecord:
    with open_store(db, readonly=True) as store:
        return store.get_run(run_id)


def events(db: str | os.PathLike[str], run_id: str) -> list[EventRecord]:
    with open_store(db, readonly=True) as store:
        return store.events(run_id)


class Worker:
    """``proctor worker MODULE`` in a subprocess, its output in ``log``."""

    def __init__(
        self,
        db: str | os.PathLike[str],
        log: Path,
        module: str,
        env: dict[str, str] | None = None,
        options: tuple[str, ...] = (),
    ) -> None:
        self.log = log
        self._out = log.open("w")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "cli", "--db", os.fspath(db), "worker", *options, module],
            cwd=ROOT,
            env={**os.environ, **(env or {})},
            stdout=self._out,
            stderr=subprocess.STDOUT,
            text=True,
        )

    def kill(self) -> None:
        """SIGKILL, then reap: a zombie's pid would still look alive."""
        self.process.send_signal(signal.SIGKILL)
        self.reap()

    def reap(self) -> int:
        code = self.process.wait(timeout=DEADLINE)
        self._out.close()
        return code

    def stop(self) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        return self.reap()


def spawn_worker(
    workers: list[Worker],
    db: str | os.PathLike[str],
    tmp_path: Path,
    module: str,
    crash_after: str = "",
) -> Worker:
    """Start ``proctor worker module`` (kept in ``workers``, so the ``workers``
    fixture stops it); ``crash_after``: the event type after whose commit the
    worker kills itself (as kill -9), or "" for none."""
    env = {"PROCTOR_CRASH_AFTER": crash_after} if crash_after else None
    w = Worker(db, tmp_path / f"worker{len(workers)}.log", module, env)
    workers.append(w)
    return w
