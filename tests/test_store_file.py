"""The store file deleted, replaced or damaged under a running worker.

SQLite writes on to the file it opened, whatever happens to its path. So a
runtime compares the path's (device, inode), and its ``-wal``'s, with what
it opened, and stops loudly when they differ: it logs why, hosts nothing
more, writes nothing more, and every later call raises the reason. The CLI
says what is wrong in one sentence (exit 1, docs/cli.md), never a traceback.
"""

from __future__ import annotations

import logging
import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from actors import Runtime, StoreError
from cli import cli
from persistence import SQLiteStore, StoreCorrupt, StoreReplaced
from tests import cli_workflows as wf
from tests.conftest import assert_nothing_left, wait_until
from tests.processes import DEADLINE, ROOT, Worker

pytestmark = [
    pytest.mark.timeout(60),
    pytest.mark.sqlite_only(
        "deletes, replaces or damages the store's file (its -wal, -shm): a PostgreSQL store has"
        " none (a database dropped and made again under a runtime is not in this suite yet)"
    ),
]


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    path = tmp_path / "markers"
    path.mkdir()
    return path


def one_sentence(db: Path, *args: str) -> str:
    """Run the CLI; it must fail with exit 1 and one line on stderr, no traceback."""
    result = CliRunner().invoke(cli, ["--db", str(db), *args])
    assert result.exit_code == 1, result.output
    assert isinstance(result.exception, SystemExit), result.exception  # not a crash
    assert "Traceback" not in result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1, result.output
    return lines[0]


def stops_loudly(
    rt: Runtime, kind: type[StoreError], caplog: pytest.LogCaptureFixture, why: str
) -> None:
    """The runtime noticed: it says why in the log and at every call."""
    wait_until(lambda: rt.failure is not None)
    assert isinstance(rt.failure, kind)
    assert why in str(rt.failure)
    with pytest.raises(kind, match=why):
        rt.start(wf.add, 1, 2)
    with pytest.raises(kind, match=why):
        rt.cancel("any-run")
    critical = [r.getMessage() for r in caplog.records if r.levelno >= logging.CRITICAL]
    assert any(why in m for m in critical), critical


def test_D1_store_deleted_under_a_runtime_stops_it_loudly_and_it_hosts_nothing_more(
    db: Path, folder: Path, caplog: pytest.LogCaptureFixture
) -> None:
    before = set(threading.enumerate())
    caplog.set_level(logging.WARNING, logger="proctor")
    rt = Runtime(db)
    try:
        handle = rt.start(wf.long_job, str(folder), "d")
        wait_until((folder / "d.started").exists)
        for suffix in ("", "-wal", "-shm"):
            (db.parent / (db.name + suffix)).unlink()
        stops_loudly(rt, StoreReplaced, caplog, "was deleted")
        # It stopped hosting: the run's supervisor is gone, its step told to stop.
        wait_until(lambda: rt._directory.get(handle.run_id) is None)
        with pytest.raises(StoreReplaced):
            handle.wait_finished(timeout=5)
        # A new store at the path is another store; this runtime does not touch it.
        with SQLiteStore.open(db) as fresh:
            assert fresh.list_runs() == []
            assert fresh.runtimes() == []
    finally:
        rt.close()
    assert_nothing_left(before)


def test_D1_store_replaced_by_a_backup_stops_the_runtime_and_the_cli_never_crashes(
    db: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    before = set(threading.enumerate())
    caplog.set_level(logging.WARNING, logger="proctor")
    backup = tmp_path / "backup.db"
    rt = Runtime(db)
    try:
        assert rt.start(wf.add, 1, 2).result(timeout=10) == 3
        shutil.copy(db, backup)  # the main file only: its -wal holds what came later
        for i in range(20):
            assert rt.start(wf.add, i, 1).result(timeout=10) == i + 1
        os.replace(backup, db)  # the old -wal and -shm stay beside it
        stops_loudly(rt, StoreReplaced, caplog, "was replaced by another file")
        # What the CLI makes of the backup with another file's WAL is up to
        # SQLite; whatever it is, it is never a traceback.
        result = CliRunner().invoke(cli, ["--db", str(db), "runs", "list"])
        assert result.exit_code in (0, 1), result.output
        assert result.exception is None or isinstance(result.exception, SystemExit)
        if result.exit_code == 1:
            assert len(result.output.strip().splitlines()) == 1, result.output
    finally:
        rt.close()
    assert_nothing_left(before)


def test_D1_store_wal_deleted_under_a_runtime_stops_it_and_the_cli_says_so_in_one_sentence(
    db: Path, caplog: pytest.LogCaptureFixture
) -> None:
    before = set(threading.enumerate())
    caplog.set_level(logging.WARNING, logger="proctor")
    rt = Runtime(db)
    try:
        assert rt.start(wf.add, 1, 2).result(timeout=10) == 3
        (db.parent / (db.name + "-wal")).unlink()
        stops_loudly(rt, StoreCorrupt, caplog, "-wal was deleted or replaced")
        # The runtime's own connection still holds the old -wal open (the
        # process has not exited). If its last checkpoint came after the last
        # commit, the file alone is whole and the CLI reads it; if not,
        # SQLite calls it damaged and the CLI says so in one sentence. Which
        # one depends on when the checkpoint ran; never a traceback.
        result = CliRunner().invoke(cli, ["--db", str(db), "runs", "list"])
        assert "Traceback" not in result.output
        if result.exit_code == 0:
            assert "COMPLETED" in result.output, result.output
        else:
            message = one_sentence(db, "runs", "list")
            assert "is damaged" in message, message
            with pytest.raises(StoreCorrupt, match="is damaged"):
                Runtime(db)
    finally:
        rt.close()
    assert_nothing_left(before)


def test_D1_store_damaged_is_one_sentence_from_the_cli_and_a_clear_error_from_the_runtime(
    db: Path,
) -> None:
    with Runtime(db) as rt:
        for i in range(50):
            rt.start(wf.add, i, 1).result(timeout=10)
    # And one run left unfinished by a runtime that died: the next runtime's
    # orphan scan must read its row.
    crashed = Runtime(db)
    crashed.start(wf.long_job, str(db.parent), "damaged")
    wait_until((db.parent / "damaged.started").exists)
    crashed.kill()
    (db.parent / "damaged.release").touch()
    with sqlite3.connect(db) as conn:
        page_size = conn.execute("PRAGMA page_size").fetchone()[0]
        (root,) = conn.execute("SELECT rootpage FROM sqlite_master WHERE name = 'runs'").fetchone()
    with db.open("r+b") as f:  # scribble over the runs table's root page
        f.seek((root - 1) * page_size)
        f.write(b"\xff" * page_size)
    message = one_sentence(db, "runs", "list")
    assert "is damaged" in message
    assert "malformed" in message
    # A runtime meets the damage when it first reads the runs (its orphan
    # scan): it stops, and says so.
    rt = Runtime(db)
    try:
        wait_until(lambda: rt.failure is not None)
        assert isinstance(rt.failure, StoreCorrupt)
        assert "is damaged" in str(rt.failure)
    finally:
        rt.close()


def _unprivileged_python() -> list[str] | None:
    """A command that runs Python as an unprivileged user (root ignores file modes)."""
    if os.geteuid() != 0:
        return [sys.executable]
    system = shutil.which("python3", path="/usr/local/bin:/usr/bin:/bin")
    for exe in (sys.executable, os.path.realpath(sys.executable), system):
        if exe is None:
            continue
        try:
            probe = subprocess.run(
                [exe, "-c", "import sqlite3, sys; print(sys.version_info[:2])"],
                **_NOBODY,
                capture_output=True,
                text=True,
                check=False,
            )
        except OSError:  # not executable by that user
            continue
        if probe.returncode == 0 and probe.stdout.strip() == str(sys.version_info[:2]):
            return [exe]
    return None


#: Run a subprocess as nobody when the tests run as root.
_NOBODY: dict[str, Any] = (
    {"user": 65534, "group": 65534, "extra_groups": []} if os.geteuid() == 0 else {}
)


_OPEN = """
import sys
sys.path.insert(0, {root!r})
from persistence import SQLiteStore, StoreError
try:
    SQLiteStore.open({db!r}, readonly={readonly}).close()
except StoreError as exc:
    print("refused:", exc)
else:
    print("opened")
"""


@pytest.fixture
def shared_dir() -> Iterator[Path]:
    """A folder another user can reach (pytest's own tmp_path is private to root)."""
    path = Path(tempfile.mkdtemp(prefix="proctor-shm-"))
    path.chmod(0o777)
    yield path
    shutil.rmtree(path)


def test_D1_store_shm_read_only_is_refused_before_sqlite_opens_it(shared_dir: Path) -> None:
    python = _unprivileged_python()
    if python is None:
        pytest.skip("no Python an unprivileged user may run: root ignores file modes")
    tmp_path, db = shared_dir, shared_dir / "proctor.db"
    with SQLiteStore.open(db) as live:  # a live writer keeps the -wal and -shm in place
        live.register_runtime("rt-live", ttl=60)
        for suffix in ("", "-wal", "-shm"):
            (tmp_path / (db.name + suffix)).chmod(0o666)
        (tmp_path / (db.name + "-shm")).chmod(0o444)
        outputs = {}
        for readonly in (False, True):
            code = _OPEN.format(root=str(ROOT), db=str(db), readonly=readonly)
            result = subprocess.run(
                [*python, "-c", code],
                **_NOBODY,
                capture_output=True,
                text=True,
                timeout=DEADLINE,
                check=False,
            )
            assert result.returncode == 0, result.stderr  # no SIGBUS, no traceback
            outputs[readonly] = result.stdout.strip()
    assert outputs[False].startswith("refused:")
    assert "-shm is read-only for this process" in outputs[False]
    assert outputs[True] == "opened"  # reading needs no write to the -shm


def test_D1_store_deleted_under_a_worker_process_makes_it_exit_1_saying_why(
    db: Path, tmp_path: Path
) -> None:
    worker = Worker(db, tmp_path / "worker.log", "tests.cli_workflows")
    try:
        wait_until(lambda: "serving" in worker.log.read_text(), timeout=DEADLINE)
        db.unlink()
        assert worker.process.wait(timeout=DEADLINE) == 1
    finally:
        if worker.process.poll() is None:
            worker.kill()
        else:
            worker.reap()
    log = worker.log.read_text()
    assert "was deleted while this process had it open" in log
    assert log.strip().splitlines()[-1].startswith("Error: worker"), log
    assert "Traceback" not in log
    assert not db.exists()  # it created nothing at the path either


def test_D1_store_deleted_before_the_journal_opens_it_is_never_created_again(
    db: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """Opening a path whose file is gone would create a new, empty store that
    this runtime alone writes: each actor checks the path before it opens it."""
    from actors._journal import Journal  # noqa: PLC0415

    before = set(threading.enumerate())
    caplog.set_level(logging.WARNING, logger="proctor")
    started = Journal.started

    def deleted_first(self: Journal) -> None:
        db.unlink()
        started(self)

    monkeypatch.setattr(Journal, "started", deleted_first)
    rt = Runtime(db)
    try:
        stops_loudly(rt, StoreReplaced, caplog, "was deleted")
        assert not db.exists()
    finally:
        rt.close()
    assert not db.exists()
    assert "Traceback" not in caplog.text
    assert_nothing_left(before)
