"""The CLI in-process (click's CliRunner) against a store a runtime is writing."""

from __future__ import annotations

import json
import re
import sqlite3
import threading
from collections.abc import Iterator
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from actors import RunState, Runtime
from cli import cli
from persistence import SCHEMA_VERSION, open_store
from tests import cli_workflows as wf
from tests.conftest import assert_nothing_left, steps_of, wait_until
from tests.conftest import run_cli as proctor
from tests.store_access import is_postgres, store_exists

pytestmark = pytest.mark.timeout(30)


def started(folder: Path, key: str) -> None:
    wait_until((folder / f"{key}.started").exists)


def release(folder: Path, key: str) -> None:
    (folder / f"{key}.release").touch()


# -- runs list / status / logs / tree ---------------------------------------------


def test_runs_list_shows_runs_newest_first_as_a_table_and_as_json(
    rt: Runtime, db: Path, folder: Path
) -> None:
    done = rt.start(wf.add, 1, 2)
    done.result(timeout=10)
    # Shielded, so the run stays CANCELLING until the test releases it.
    busy = rt.start(wf.shielded_job, str(folder), "list")
    started(folder, "list")
    rt.cancel(busy.run_id, "no longer needed")

    result = proctor(db, "runs", "list")
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0].split() == [
        "RUN",
        "ID",
        "WORKFLOW",
        "STATUS",
        "STARTED",
        "DURATION",
        "CANCEL",
        "REASON",
    ]
    assert busy.run_id in lines[1]
    assert "CANCELLING" in lines[1]
    assert "no longer needed" in lines[1]
    assert done.run_id in lines[2]
    assert "COMPLETED" in lines[2]

    listed = json.loads(proctor(db, "runs", "list", "--json").stdout)["runs"]
    assert [r["run_id"] for r in listed] == [busy.run_id, done.run_id]
    assert listed[1]["result"] == 3
    release(folder, "list")


def test_runs_list_filters_and_limits(rt: Runtime, db: Path) -> None:
    handles = [rt.start(wf.add, i, i) for i in range(3)]
    for h in handles:
        h.result(timeout=10)

    def ids(*args: str) -> list[str]:
        result = proctor(db, "runs", "list", "--json", *args)
        assert result.exit_code == 0, result.output
        return [r["run_id"] for r in json.loads(result.stdout)["runs"]]

    assert ids("--status", "completed") == [h.run_id for h in reversed(handles)]
    assert ids("--status", "cancelled") == []
    assert ids("--workflow", wf.add.name, "--limit", "2") == [h.run_id for h in handles[:0:-1]]
    assert ids("--workflow", "nope") == []
    table = proctor(db, "runs", "list", "--limit", "1").stdout
    assert "the newest 1 run; there are more; next page" in " ".join(table.split())
    assert "no runs match" in proctor(db, "runs", "list", "--status", "failed").stdout


def test_runs_status_shows_a_cancel_held_back_by_a_shield(
    rt: Runtime, db: Path, folder: Path
) -> None:
    handle = rt.start(wf.shielded_job, str(folder), "st")
    started(folder, "st")
    rt.cancel(handle.run_id, "maintenance")
    wait_until(lambda: "cancel_buffered" in [e.type.value for e in handle.events()])

    status = json.loads(proctor(db, "runs", "status", handle.run_id, "--json").stdout)
    assert status["run"]["status"] == "cancelling"
    assert status["run"]["args"] == [str(folder), "st"]
    assert status["cancel"]["pending"] is True
    assert status["cancel"]["reason"] == "maintenance"
    assert status["cancel"]["buffered_by"] == ["workflow body"]
    (step,) = status["steps"]
    assert (step["name"], step["attempt"], step["status"], step["shielded"]) == (
        wf.hold.name,
        1,
        "running",
        True,
    )

    text = proctor(db, "runs", "status", handle.run_id).stdout
    assert re.search(r"status\s+CANCELLING", text)
    assert "maintenance (from api" in text
    assert "buffered by a shield in workflow body" in text
    release(folder, "st")
    handle.wait_finished(timeout=10)
    # The body returned from inside its shield: no checkpoint came after it,
    # so the run completed (C5) and the request stays in the log.
    final = json.loads(proctor(db, "runs", "status", handle.run_id, "--json").stdout)
    assert final["run"]["status"] == "completed"
    assert final["cancel"]["requested"] is True
    assert final["cancel"]["pending"] is False


def test_runs_status_shows_parent_and_children(rt: Runtime, db: Path, folder: Path) -> None:
    handle = rt.start(wf.parent_job, str(folder), "kids")
    started(folder, "kids")
    child = f"{handle.run_id}.0"
    parent = json.loads(proctor(db, "runs", "status", handle.run_id, "--json").stdout)
    assert parent["children"] == [
        {"run_id": child, "workflow": wf.long_job.name, "status": "running"}
    ]
    text = proctor(db, "runs", "status", child).stdout
    assert re.search(rf"parent\s+{handle.run_id}", text)
    release(folder, "kids")


def test_runs_logs_prints_the_log_in_order(rt: Runtime, db: Path) -> None:
    handle = rt.start(wf.add, 2, 3)
    handle.result(timeout=10)
    text = proctor(db, "runs", "logs", handle.run_id)
    assert text.exit_code == 0
    types = [line.split()[2] for line in text.stdout.splitlines()]
    assert types == [e.type.value for e in handle.events()]
    lines = proctor(db, "runs", "logs", handle.run_id, "--json").stdout.splitlines()
    records = [json.loads(line) for line in lines]
    assert [r["run_seq"] for r in records] == list(range(1, len(records) + 1))
    assert records[-1]["type"] == "run_completed"
    assert records[-1]["data"] == {"result": 5}


def test_runs_logs_follow_streams_until_the_run_is_terminal(
    rt: Runtime, db: Path, folder: Path
) -> None:
    handle = rt.start(wf.long_job, str(folder), "follow")
    started(folder, "follow")
    # The run ends only once the follower has printed what was there, and
    # then it must keep reading to the end.
    releaser = threading.Thread(target=rt.cancel, args=(handle.run_id, "stop"))
    releaser.start()
    result = proctor(db, "runs", "logs", handle.run_id, "--follow", "--json")
    releaser.join()
    assert result.exit_code == 0
    types = [json.loads(line)["type"] for line in result.stdout.splitlines()]
    assert types[-1] == "run_cancelled"
    assert "cancel_delivered" in types
    assert types.count("step_completed") == 1


def test_runs_tree_draws_step_attempts_and_child_runs(rt: Runtime, db: Path, folder: Path) -> None:
    handle = rt.start(wf.parent_job, str(folder), "tree")
    started(folder, "tree")
    rt.cancel(handle.run_id, "enough")
    handle.wait_finished(timeout=10)

    tree = json.loads(proctor(db, "runs", "tree", handle.run_id, "--json").stdout)
    assert tree["status"] == "cancelled"
    (child,) = tree["children"]
    assert (child["kind"], child["run_id"], child["status"]) == (
        "run",
        f"{handle.run_id}.0",
        "cancelled",
    )
    assert [(n["name"], n["status"]) for n in child["children"]] == [
        (wf.hold.name, "cancelled"),
        (wf.mark.name, "completed"),
    ]
    text = proctor(db, "runs", "tree", handle.run_id).stdout
    assert f"run {handle.run_id}.0 ({wf.long_job.name}) CANCELLED" in text
    assert f"step {wf.hold.name} #0 attempt 1 cancelled" in text


# -- cancel / terminate ------------------------------------------------------------


def test_cancel_records_the_request_and_returns_at_once(
    rt: Runtime, db: Path, folder: Path
) -> None:
    handle = rt.start(wf.shielded_job, str(folder), "c1")
    started(folder, "c1")
    result = proctor(db, "cancel", handle.run_id, "--reason", "from the shell")
    assert result.exit_code == 0, result.output
    assert "is now cancelling" in result.stdout
    record = rt.get_run(handle.run_id)
    assert record.status is RunState.CANCELLING  # durable when the command returned (C1)
    assert (record.cancel_reason, record.cancel_source) == ("from the shell", "cli")

    again = proctor(db, "cancel", handle.run_id)
    assert again.exit_code == 0  # C6: a repeat changes nothing but the log
    assert "already cancelling" in again.stdout
    release(folder, "c1")


def test_cancel_wait_shows_progress_and_the_final_state(
    rt: Runtime, db: Path, folder: Path
) -> None:
    handle = rt.start(wf.long_job, str(folder), "cw")
    started(folder, "cw")
    result = proctor(db, "cancel", handle.run_id, "--wait", "--timeout", "20")
    assert result.exit_code == 0, result.output
    assert "cancel_delivered" in result.stdout
    assert result.stdout.strip().endswith(f"run {handle.run_id} is cancelled")
    assert (folder / "cw.cleanup").read_text() == "x\n"


def test_cancel_wait_timeout_exits_5(rt: Runtime, db: Path, folder: Path) -> None:
    handle = rt.start(wf.shielded_job, str(folder), "cwt")
    started(folder, "cwt")
    result = proctor(db, "cancel", handle.run_id, "--wait", "--timeout", "0.2")
    assert result.exit_code == 5
    assert "still cancelling after 0.2s" in result.stderr
    assert rt.get_run(handle.run_id).status is RunState.CANCELLING
    release(folder, "cwt")


def test_cancel_grace_terminates_a_run_that_does_not_finish(
    rt: Runtime, db: Path, folder: Path
) -> None:
    handle = rt.start(wf.shielded_job, str(folder), "grace")
    started(folder, "grace")
    result = proctor(db, "cancel", handle.run_id, "--grace", "0.2", "--wait", "--timeout", "20")
    assert result.exit_code == 0, result.output
    record = rt.get_run(handle.run_id)
    assert record.status is RunState.TERMINATED
    assert record.terminate_reason == "cancel grace expired"


def test_terminate_stops_the_run_and_its_children(rt: Runtime, db: Path, folder: Path) -> None:
    handle = rt.start(wf.parent_job, str(folder), "term")
    started(folder, "term")
    result = proctor(db, "terminate", handle.run_id, "--reason", "runaway")
    assert result.exit_code == 0, result.output
    assert f"run {handle.run_id} terminated with 1 child run" in result.stdout
    for run_id in (handle.run_id, f"{handle.run_id}.0"):
        assert rt.get_run(run_id).status is RunState.TERMINATED
    # The hosting runtime hears of it and stops the step (T3): no cleanup ran.
    child_steps = lambda: [s.status.value for s in steps_of(rt, f"{handle.run_id}.0")]  # noqa: E731
    wait_until(lambda: child_steps() == ["abandoned"])
    assert not (folder / "term.cleanup").exists()


def test_exit_3_for_an_unknown_run(rt: Runtime, db: Path) -> None:
    for args in (
        ["runs", "status", "nope"],
        ["runs", "logs", "nope"],
        ["runs", "tree", "nope"],
        ["cancel", "nope"],
        ["terminate", "nope"],
    ):
        result = proctor(db, *args)
        assert result.exit_code == 3, args
        assert "no run with id 'nope'" in result.stderr
        assert "Traceback" not in result.output


def test_exit_4_for_a_run_already_finished(rt: Runtime, db: Path) -> None:
    handle = rt.start(wf.add, 1, 1)
    handle.result(timeout=10)
    for verb in ("cancel", "terminate"):
        result = proctor(db, verb, handle.run_id)
        assert result.exit_code == 4
        assert f"already finished: completed; {verb} changed nothing" in result.stderr
    assert rt.get_run(handle.run_id).status is RunState.COMPLETED


# -- start ---------------------------------------------------------------------------


def test_start_creates_a_run_a_claiming_runtime_runs(db: Path) -> None:
    before = set(threading.enumerate())
    with Runtime(db, claim_runs=True):
        result = proctor(db, "start", "tests.cli_workflows:add", "2", "40", "--wait")
        assert result.exit_code == 0, result.output
        run_id, value = result.stdout.split()
        assert value == "42"
    with open_store(db, readonly=True) as store:
        record = store.get_run(run_id)
        assert record.owner is not None
        assert record.owner.startswith("rt-")
        assert [e.type.value for e in store.events(run_id)][:3] == [
            "run_created",
            "run_claimed",
            "run_started",
        ]
    assert_nothing_left(before)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["tests.cli_workflows:add", "1", "two"], "'two' is not JSON"),
        (["tests.cli_workflows:add", "1"], "do not fit workflow"),
        (["tests.cli_workflows:add", "--kwargs", "[1]"], "must be a JSON object"),
        (["tests.cli_workflows"], "expected MODULE:WORKFLOW"),
        (["tests.no_such_module:add"], "cannot import tests.no_such_module"),
        (["tests.cli_workflows:plus", "1", "2"], "is not a @workflow()"),
    ],
)
def test_start_rejects_bad_arguments_with_exit_2_and_writes_nothing(
    db: Path, args: list[str], message: str
) -> None:
    result = proctor(db, "start", *args)
    assert result.exit_code == 2
    assert message in result.stderr
    assert not store_exists(db)


def test_usage_errors_exit_2(db: Path) -> None:
    assert proctor(db, "runs", "list", "--bogus").exit_code == 2
    assert proctor(db, "nonsense").exit_code == 2
    assert proctor(db, "cancel").exit_code == 2  # RUN_ID missing


# -- bad stores ----------------------------------------------------------------------

READING = [["runs", "list"], ["runs", "status", "x"], ["runs", "logs", "x"], ["runs", "tree", "x"]]
WRITING = [["cancel", "x"], ["terminate", "x"]]


@pytest.mark.parametrize("args", READING + WRITING)
def test_a_missing_store_is_a_clear_error_and_is_not_created(db: Path, args: list[str]) -> None:
    """SQLite: no file at the path. PostgreSQL: a database without the
    ``proctor`` schema (as a SQLite file with no tables: not a store yet)."""
    result = proctor(db, *args)
    assert result.exit_code == 1
    if is_postgres(db):
        expected = f"Error: {db} is not a Proctor store: it has no 'proctor' schema\n"
    else:
        expected = (
            f"Error: no Proctor store at {db}: the file does not exist (set --db or PROCTOR_DB)\n"
        )
    assert result.stderr == expected
    assert not store_exists(db)


@pytest.fixture(params=["foreign", "garbage", "newer"])
def bad_store(request: pytest.FixtureRequest, db: Path) -> tuple[Path, str]:
    if request.param == "foreign":
        conn = sqlite3.connect(db)
        conn.execute("CREATE TABLE invoices (id INTEGER)")
        conn.commit()
        conn.close()
        return db, "another application's SQLite database"
    if request.param == "garbage":
        db.write_bytes(b"this is not a database at all" * 100)
        return db, "is not a Proctor store"
    open_store(db).close()
    # Closed here, not at garbage collection: closing the last connection
    # checkpoints the WAL into the file, which must not happen mid-test.
    conn = sqlite3.connect(db)
    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    conn.commit()
    conn.close()
    return db, "newer than this Proctor understands"


@pytest.mark.parametrize("args", READING + WRITING)
@pytest.mark.sqlite_only(
    "a foreign, garbage or newer SQLite file; the PostgreSQL analogs (a foreign proctor"
    " schema, a newer store_info) are not in this suite yet"
)
def test_a_bad_store_is_a_clear_error_and_is_left_untouched(
    bad_store: tuple[Path, str], args: list[str]
) -> None:
    db, message = bad_store
    before = db.read_bytes()
    result = proctor(db, *args)
    assert result.exit_code == 1
    assert message in result.stderr
    assert "Traceback" not in result.output
    assert db.read_bytes() == before


@pytest.fixture
def locked_store(db: Path) -> Iterator[Path]:
    open_store(db).close()
    conn = sqlite3.connect(db, isolation_level=None)
    conn.execute("PRAGMA locking_mode = EXCLUSIVE")
    conn.execute("BEGIN EXCLUSIVE")
    conn.execute("UPDATE runs SET status = status")
    yield db
    conn.execute("ROLLBACK")
    conn.close()


@pytest.mark.parametrize("args", READING + WRITING)
@pytest.mark.sqlite_only("holds SQLite's exclusive locking mode (PRAGMA locking_mode)")
def test_a_locked_store_is_a_clear_error_after_the_busy_timeout(
    locked_store: Path, args: list[str]
) -> None:
    result = CliRunner().invoke(cli, ["--db", str(locked_store), "--busy-timeout", "0.05", *args])
    assert result.exit_code == 1
    assert "is locked by another process" in result.stderr


# -- help ----------------------------------------------------------------------------


def all_commands(group: click.Group, prefix: tuple[str, ...] = ()) -> Iterator[tuple[str, ...]]:
    for name, command in sorted(group.commands.items()):
        path = (*prefix, name)
        if isinstance(command, click.Group):
            yield from all_commands(command, path)
        else:
            yield path


def test_every_command_has_help_and_a_section_in_docs_cli_md() -> None:
    docs = (Path(__file__).parent.parent / "docs" / "cli.md").read_text()
    commands = list(all_commands(cli))
    assert len(commands) == 13  # ui (O1) is the 13th
    for path in commands:
        result = CliRunner().invoke(cli, [*path, "--help"])
        assert result.exit_code == 0
        assert "Exit codes:" in result.stdout, path
        command = cli
        for name in path:
            assert isinstance(command, click.Group)
            command = command.commands[name]  # type: ignore[assignment]
        assert command.help, path
        assert f"## proctor {' '.join(path)}" in docs, path
    assert "Exit codes: 0 success" in CliRunner().invoke(cli, ["--help"]).stdout


def test_the_cli_reference_in_docs_is_generated_from_the_commands() -> None:
    from cli._reference import reference  # noqa: PLC0415 - only this test needs it

    docs = Path(__file__).resolve().parent.parent / "docs" / "cli-reference.md"
    assert docs.read_text() == reference() + "\n", (
        "docs/cli-reference.md is stale: python -m cli._reference > docs/cli-reference.md"
    )
