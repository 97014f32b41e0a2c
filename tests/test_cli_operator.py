"""The CLI as an operator sees it: what a worker serves, what a view shows at
80 columns and in a pipe, user text that is never markup nor a terminal
escape, and the small promises (Ctrl-C, dead owners, usage, read-only stores)."""

from __future__ import annotations

import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from actors import RunState, Runtime, workflow
from cli import cli
from persistence import MAX_REASON_BYTES, MAX_VALUE_DEPTH, open_store
from tests import cli_workflows as wf
from tests import operator_workflows as ow
from tests.conftest import wait_until
from tests.processes import DEADLINE, ROOT, Worker, record
from tests.store_access import raw_sql, store_exists

pytestmark = pytest.mark.timeout(60)


def proctor(db: Path, *args: str, columns: int | None = None) -> Result:
    env = {"COLUMNS": str(columns) if columns else None}
    return CliRunner().invoke(cli, ["--db", str(db), *args], env=env)


#: ``python -m cli``, with Ctrl-C as a terminal gives it: a suite started in
#: the background by a script (``cmd &``) passes SIGINT on ignored, and a
#: child that ignores it would never see the Ctrl-C these tests send.
_AS_FROM_A_TERMINAL = (
    "import runpy, signal, sys;"
    " signal.signal(signal.SIGINT, signal.default_int_handler);"
    " sys.argv[0] = 'proctor';"
    " runpy.run_module('cli', run_name='__main__', alter_sys=True)"
)


def spawn(
    db: Path, *args: str, cwd: Path = ROOT, columns: int | None = None
) -> subprocess.Popen[str]:
    """``proctor --db DB ARGS`` in a process of its own, its output in pipes."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    env.pop("COLUMNS", None)
    if columns:
        env["COLUMNS"] = str(columns)
    return subprocess.Popen(
        [sys.executable, "-c", _AS_FROM_A_TERMINAL, "--db", str(db), *args],
        cwd=cwd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def run(db: Path, *args: str, cwd: Path = ROOT, columns: int | None = None) -> tuple[int, str, str]:
    with spawn(db, *args, cwd=cwd, columns=columns) as process:
        try:
            out, err = process.communicate(timeout=DEADLINE)
        except subprocess.TimeoutExpired:
            process.kill()  # a command that never ends must not outlive its test
            out, err = process.communicate()
            pytest.fail(f"proctor {' '.join(args)} did not end within {DEADLINE}s: {out}{err}")
    return process.returncode, out, err


def squeezed(text: str) -> str:
    """``text`` without any whitespace: what survives wrapping at any width."""
    return "".join(text.split())


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    path = tmp_path / "markers"
    path.mkdir()
    return path


def create_run(db: Path, workflow_name: str, *args: object) -> str:
    """A run nobody owns yet, as ``proctor start`` writes it (no import needed)."""
    from persistence import EventType, NewEvent  # noqa: PLC0415

    run_id = f"op-{workflow_name}-{len(args)}-{os.urandom(4).hex()}"
    with open_store(db) as store:
        store.append(
            [
                NewEvent(
                    run_id=run_id,
                    type=EventType.RUN_CREATED,
                    data={
                        "workflow": workflow_name,
                        "args": list(args),
                        "kwargs": {},
                        "owner": None,
                    },
                )
            ]
        )
    return run_id


# -- 9: a worker serves exactly the workflows of its modules ---------------------------------


def test_a_worker_serves_exactly_the_workflows_of_its_modules(db: Path, tmp_path: Path) -> None:
    open_store(db).close()
    foreign = create_run(db, "order", "o-1", ["book"], 100)  # the demo's workflow
    mine = create_run(db, wf.add.name, 20, 22)
    worker = Worker(db, tmp_path / "worker.log", "tests.cli_workflows")
    try:
        wait_until(lambda: record(db, mine).status is RunState.COMPLETED, timeout=DEADLINE)
    finally:
        assert worker.stop() == 0, worker.log.read_text()
    serving = next(line for line in worker.log.read_text().splitlines() if "serving:" in line)
    assert "order" not in serving.split("serving:")[1].split(", ")
    unclaimed = record(db, foreign)
    assert (unclaimed.status, unclaimed.owner) == (RunState.PENDING, None)


def test_a_worker_refuses_a_module_without_workflows(db: Path, tmp_path: Path) -> None:
    (tmp_path / "noflows.py").write_text("VALUE = 1\n")
    code, out, err = run(db, "worker", "noflows", cwd=tmp_path)
    assert code == 2, out + err
    assert "no @workflow() found in noflows" in err
    assert "Traceback" not in err


@workflow(name="tests.operator.taken")
async def taken() -> None:
    """Holds the name the next test tries to take."""


def test_two_workflows_under_one_name_is_an_error_at_import() -> None:
    with pytest.raises(ValueError, match=r"two workflows are named 'tests.operator.taken'"):

        @workflow(name="tests.operator.taken")
        async def impostor() -> None:
            """A different function under a taken name."""


def test_the_same_workflow_registered_twice_is_not_a_conflict(tmp_path: Path) -> None:
    # Run as __main__, the module imports itself by name: one definition, two registrations.
    flows = tmp_path / "flows_twice.py"
    flows.write_text(
        "import importlib\n"
        "from actors import workflow\n"
        "@workflow(name='tests.operator.twice')\n"
        "async def twice() -> None: ...\n"
        "if __name__ == '__main__':\n"
        "    import flows_twice\n"
        "    importlib.reload(flows_twice)\n"
        "    print('registered', flows_twice.twice.name)\n"
    )
    result = subprocess.run(
        [sys.executable, str(flows)],
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=DEADLINE,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout == "registered tests.operator.twice\n"


# -- 10: every view, whole, at 80 columns and in a pipe --------------------------------------

LONG_REASON = "the customer called support twice and asked us to stop this order " * 3


@pytest.fixture
def varied(rt: Runtime, db: Path, folder: Path) -> Iterator[dict[str, str]]:
    """Runs in every terminal state and one CANCELLING, with a long reason."""
    done = rt.start(wf.add, 1, 2)
    done.result(timeout=10)
    failed = rt.start(ow.fails_with, "a long error message " * 6)
    failed.wait_finished(timeout=10)
    cancelled = rt.start(wf.parent_job, str(folder), "v1")
    wait_until((folder / "v1.started").exists)
    rt.cancel(cancelled.run_id, LONG_REASON)
    cancelled.wait_finished(timeout=10)
    terminated = rt.start(wf.long_job, str(folder), "v2")
    wait_until((folder / "v2.started").exists)
    rt.terminate(terminated.run_id, "runaway")
    cancelling = rt.start(wf.shielded_job, str(folder), "v3")
    wait_until((folder / "v3.started").exists)
    rt.cancel(cancelling.run_id, LONG_REASON)
    yield {
        "COMPLETED": done.run_id,
        "FAILED": failed.run_id,
        "CANCELLED": cancelled.run_id,
        "TERMINATED": terminated.run_id,
        "CANCELLING": cancelling.run_id,
    }
    (folder / "v3.release").touch()


@pytest.mark.parametrize("columns", [80, None], ids=["80-columns", "piped"])
def test_every_view_shows_every_status_in_full_at_80_columns_and_piped(
    varied: dict[str, str], db: Path, columns: int | None
) -> None:
    def view(*args: str) -> str:
        result = proctor(db, *args, columns=columns)
        assert result.exit_code == 0, result.output
        if columns:
            too_wide = [line for line in result.stdout.splitlines() if len(line) > columns]
            assert too_wide == [], args
        assert "…" not in result.stdout, args  # nothing cut short
        return result.stdout

    listing = view("runs", "list")
    for status, run_id in varied.items():
        assert status in listing.split(), status
        assert run_id in listing
    assert squeezed(LONG_REASON) in squeezed(listing)
    for status, run_id in varied.items():
        shown = view("runs", "status", run_id)
        assert status in shown.split()
        if status == "CANCELLED":  # its child runs and its steps, as tables or blocks
            assert "CANCELLED" in view("runs", "status", f"{run_id}.0").split()
            assert squeezed(LONG_REASON) in squeezed(shown)
        if status == "FAILED":
            assert squeezed("a long error message " * 6) in squeezed(shown)
        tree = view("runs", "tree", run_id)
        assert status in tree.split()
        logs = view("runs", "logs", run_id)
        assert f"run_{status.lower()}" in logs.split() or status == "CANCELLING"
    steps = view("runs", "status", f"{varied['CANCELLED']}.0")
    for word in ("cancelled", "completed"):
        assert word in steps.split()


def test_runs_tree_keeps_every_node_when_piped_and_at_80_columns(rt: Runtime, db: Path) -> None:
    depth = 50
    handle = rt.start(ow.nest, depth)
    handle.result(timeout=30)
    ids = [handle.run_id + ".0" * level for level in range(depth + 1)]

    def check(text: str) -> None:
        assert text.count("COMPLETED") == depth + 1
        assert text.count("completed") == depth + 1  # one step per run
        for run_id in ids:
            assert f"run{run_id}({ow.nest.name})COMPLETED" in squeezed(text)

    code, out, err = run(db, "runs", "tree", handle.run_id)  # a real pipe, no COLUMNS
    assert code == 0, err
    check(out)
    assert len(out.splitlines()) == 2 * (depth + 1)  # one line per node when piped
    narrow = proctor(db, "runs", "tree", handle.run_id, columns=80)
    assert narrow.exit_code == 0, narrow.output
    # Only a run id longer than the width may pass it, on a line of its own:
    # a value to copy is never broken over lines (docs/cli.md).
    too_wide = [line for line in narrow.stdout.splitlines() if len(line) > 80]
    assert all(line in ids for line in too_wide), too_wide
    check(narrow.stdout)
    code, out, err = run(db, "runs", "tree", handle.run_id, columns=80)  # a pipe, COLUMNS=80
    assert code == 0, err
    assert out == narrow.stdout


# -- 11: user text is never markup, never a terminal escape -----------------------------------

HOSTILE = "[/bogus] [bold]b[/bold] :smile: \x1b[31mRED\x1b]0;title\x07 \u202eevil\x9b2J\r\nX\x7f"


def assert_inert(text: str) -> None:
    """No control character reached the output; the escapes stand in for them."""
    raw = [ch for ch in text if ch not in "\n" and (ord(ch) < 0x20 or 0x7F <= ord(ch) < 0xA0)]
    assert raw == []
    assert "\u202e" not in text
    assert "\\x1b[31mRED" in text or "\\u001b[31mRED" in text


def test_user_text_is_never_markup_and_control_characters_are_escaped(
    rt: Runtime, db: Path, folder: Path
) -> None:
    handle = rt.start(wf.long_job, str(folder), "hostile")
    wait_until((folder / "hostile.started").exists)
    failed = rt.start(ow.fails_with, HOSTILE)  # in its arguments and its error
    failed.wait_finished(timeout=10)
    result = proctor(db, "cancel", handle.run_id, "--reason", HOSTILE, "--wait", "--timeout", "20")
    assert result.exit_code == 0, result.output
    assert_inert(result.stdout)
    for args in (
        ["runs", "list"],
        ["runs", "status", handle.run_id],
        ["runs", "logs", handle.run_id],
        ["runs", "tree", handle.run_id],
        ["runs", "status", failed.run_id],
        ["runs", "logs", failed.run_id],
    ):
        for columns in (None, 80):
            shown = proctor(db, *args, columns=columns)
            assert shown.exit_code == 0, (args, shown.output)
            assert_inert(shown.stdout)
            assert "[/bogus]" in shown.stdout, args  # shown literally, not parsed
            assert ":smile:" in shown.stdout, args
    for args in (
        ["runs", "list"],
        ["runs", "status", failed.run_id],
        ["runs", "logs", failed.run_id],
    ):
        text = proctor(db, *args, "--json").stdout
        assert [ch for ch in text if ch != "\n" and not ch.isprintable()] == [], args
    listed = json.loads(proctor(db, "runs", "list", "--json").stdout)["runs"]
    # Escaped the JSON way: it decodes to the very value.
    assert {r["cancel_reason"] for r in listed} >= {HOSTILE}
    assert {tuple(r["args"]) for r in listed} >= {(HOSTILE,)}


def test_a_reason_is_capped_at_4_KiB_and_the_cut_is_said(
    rt: Runtime, db: Path, folder: Path
) -> None:
    long = "é" * 5000  # 10,000 bytes of UTF-8
    handle = rt.start(wf.shielded_job, str(folder), "cap")
    wait_until((folder / "cap.started").exists)
    result = proctor(db, "cancel", handle.run_id, "--reason", long)
    assert result.exit_code == 0, result.output
    assert f"cut to {MAX_REASON_BYTES} bytes" in result.stderr
    reason = rt.get_run(handle.run_id).cancel_reason
    assert reason is not None
    assert len(reason.encode()) <= MAX_REASON_BYTES
    assert reason.endswith("[cut: 10000 bytes]")
    assert reason.startswith("é" * 100)
    other = rt.start(wf.shielded_job, str(folder), "cap2")
    wait_until((folder / "cap2.started").exists)
    said = rt.cancel(other.run_id, long)
    assert "cut to 4096 bytes" in said.message
    said = rt.terminate(other.run_id, long)
    assert "cut to 4096 bytes" in said.message
    assert len((rt.get_run(other.run_id).terminate_reason or "").encode()) <= MAX_REASON_BYTES
    assert "cut to" not in rt.terminate(handle.run_id, "short").message
    (folder / "cap.release").touch()
    (folder / "cap2.release").touch()


@pytest.mark.parametrize(
    ("argument", "message"),
    [
        ("[" * 990 + "]" * 990, "nested too deeply"),
        ('{"a": ' * 101 + "1" + "}" * 101, "nested too deeply (more than 100 levels)"),
        ("NaN", "NaN is not a JSON number"),
        ("[-Infinity]", "-Infinity is not a JSON number"),
        ("1e999", "too large for a JSON number"),
    ],
)
def test_an_argument_json_cannot_hold_is_a_usage_error(
    db: Path, argument: str, message: str
) -> None:
    code, out, err = run(db, "start", "tests.cli_workflows:add", argument, "1")
    assert code == 2, out + err
    assert message in err
    assert "Traceback" not in err
    assert not store_exists(db)


def test_a_deeply_nested_stored_value_does_not_break_the_views(db: Path) -> None:
    """The deepest value a runtime stores is shown whole; one far deeper,
    written into the file by hand, breaks no view either."""
    value: list[object] = []
    for _ in range(MAX_VALUE_DEPTH):
        value = [value]
    open_store(db).close()
    run_id = create_run(db, "w", value)
    deeper = create_run(db, "w", 1)
    # what no writer through the store can do
    raw_sql(db, "UPDATE runs SET args = ? WHERE run_id = ?", "[" * 985 + "]" * 985, deeper)
    for args in (["runs", "list"], ["runs", "list", "--json"], ["runs", "status", run_id]):
        code, out, err = run(db, *args)
        assert code == 0, (args, err[-500:])
        assert run_id in out
        if args != ["runs", "list"]:  # the table has no arguments column
            assert "[" * (MAX_VALUE_DEPTH + 1) in out.replace(" ", "")
    for args in (["runs", "list"], ["runs", "list", "--json"], ["runs", "status", deeper]):
        code, out, err = run(db, *args)
        assert code == 0, (args, err[-500:])
        assert deeper in out


# -- 12: Ctrl-C, dead owners, usage, import errors, read-only and empty stores -----------------


def interrupt_after_first_line(process: subprocess.Popen[str]) -> tuple[str, str]:
    """Ctrl-C once the command has printed its first line (it is waiting then)."""
    assert process.stdout is not None
    try:
        first = process.stdout.readline()
        assert first, process.communicate(timeout=DEADLINE)
        process.send_signal(signal.SIGINT)
        out, err = process.communicate(timeout=DEADLINE)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    return first + out, err


def test_ctrl_c_while_waiting_exits_130_and_the_request_stays(db: Path) -> None:
    open_store(db).close()
    run_id = create_run(db, wf.add.name, 1, 2)  # no worker: the wait never ends by itself
    with spawn(db, "cancel", run_id, "--reason", "ops", "--wait") as waiting:
        out, err = interrupt_after_first_line(waiting)
    assert waiting.returncode == 130, out + err
    assert f"the cancel of run {run_id} stays requested" in err
    assert "Traceback" not in err
    assert record(db, run_id).status is RunState.CANCELLING
    with spawn(db, "runs", "logs", run_id, "--follow") as following:
        out, err = interrupt_after_first_line(following)
    assert following.returncode == 130, out + err
    assert f"stopped following run {run_id}; the run goes on" in err
    with spawn(db, "start", "tests.cli_workflows:add", "1", "2", "--wait") as starting:
        out, err = interrupt_after_first_line(starting)
    assert starting.returncode == 130, out + err
    started = out.split()[0]
    assert f"run {started} stays" in err
    assert record(db, started).status is RunState.PENDING


def test_runs_list_marks_runs_whose_owner_is_dead(db: Path, folder: Path, tmp_path: Path) -> None:
    worker = Worker(db, tmp_path / "worker.log", "tests.cli_workflows")
    try:
        wait_until(lambda: "serving" in worker.log.read_text(), timeout=DEADLINE)
        code, out, err = run(db, "start", "tests.cli_workflows:long_job", f'"{folder}"', '"dead"')
        assert code == 0, err
        run_id = out.strip()
        wait_until((folder / "dead.started").exists, timeout=DEADLINE)
        alive = json.loads(proctor(db, "runs", "list", "--json").stdout)["runs"][0]
        assert (alive["owner_alive"], alive["why_dead"]) == (True, None)
    finally:
        worker.kill()

    listing = proctor(db, "runs", "list")
    line = next(line for line in listing.stdout.splitlines() if run_id in line)
    assert "RUNNING (owner dead)" in line
    (listed,) = json.loads(proctor(db, "runs", "list", "--json").stdout)["runs"]
    assert listed["owner_alive"] is False
    # Its process is gone; on a starved machine its lease may have run out first.
    assert listed["why_dead"].endswith(("is gone", "lease expired")), listed["why_dead"]
    waited = proctor(db, "cancel", run_id, "--wait", "--timeout", "0.2")
    assert waited.exit_code == 5
    assert f"no runtime owns run {run_id}: {listed['why_dead']}" in waited.stderr


def test_timeout_without_wait_is_a_usage_error(rt: Runtime, db: Path, folder: Path) -> None:
    handle = rt.start(wf.shielded_job, str(folder), "tw")
    wait_until((folder / "tw.started").exists)
    for args in (["cancel", handle.run_id], ["start", "tests.cli_workflows:add", "1", "2"]):
        result = proctor(db, *args, "--timeout", "1")
        assert result.exit_code == 2, args
        assert "--timeout only bounds --wait" in result.stderr
    assert rt.get_run(handle.run_id).status is RunState.RUNNING  # nothing was requested
    assert len(json.loads(proctor(db, "runs", "list", "--json").stdout)["runs"]) == 1
    (folder / "tw.release").touch()


@pytest.mark.parametrize(
    "broken",
    [
        ("import os\n\nVALUE = undefined_name\n", "NameError", 3),
        ("x = 1\ndef broken(:\n", "SyntaxError", 2),
        ("import os\nimport no_such_module_anywhere\n", "ModuleNotFoundError", 2),
        (  # raised inside Proctor: the place is the user's line that called it
            "from actors import workflow\n@workflow()\ndef wf(): ...\n",
            "InvalidArgumentType",
            2,
        ),
    ],
    ids=["NameError", "SyntaxError", "ModuleNotFoundError", "refused-by-proctor"],
)
@pytest.mark.parametrize("command", ["start", "worker"])
def test_an_import_error_names_its_type_file_and_line(
    db: Path, tmp_path: Path, broken: tuple[str, str, int], command: str
) -> None:
    source, kind, line = broken
    (tmp_path / "broken_flows.py").write_text(source)
    target = "broken_flows:wf" if command == "start" else "broken_flows"
    code, out, err = run(db, command, target, cwd=tmp_path)
    assert code == 2, out + err
    assert f"cannot import broken_flows: {kind}" in err
    assert f"broken_flows.py, line {line})" in err
    assert "Traceback" not in err


@pytest.mark.parametrize("command", ["start", "worker"])
def test_a_module_that_does_not_exist_is_named_without_a_place_in_python_or_proctor(
    db: Path, tmp_path: Path, command: str
) -> None:
    target = "no_such_flows:wf" if command == "start" else "no_such_flows"
    code, out, err = run(db, command, target, cwd=tmp_path)
    assert code == 2, out + err
    assert "cannot import no_such_flows: ModuleNotFoundError: No module named" in err
    assert "importlib" not in err
    assert "_imports.py" not in err


@pytest.fixture
def read_only_folder(db: Path, rt: Runtime) -> Iterator[Path]:
    """A store (closed, its WAL folded in) in a folder nobody can write to."""
    rt.start(wf.add, 2, 2).result(timeout=10)
    rt.close()
    folder = Path(tempfile.mkdtemp(prefix="proctor-ro-"))
    shutil.copy(db, folder / "proctor.db")
    if os.geteuid() == 0:  # root writes past permissions, not past the immutable flag
        locked = subprocess.run(["chattr", "+i", str(folder)], check=False, capture_output=True)
        if locked.returncode != 0:
            shutil.rmtree(folder)
            pytest.skip(f"cannot make a folder read-only for root here: {locked.stderr!r}")
    else:
        os.chmod(folder, 0o555)  # noqa: S103 - read-only: the point
    with pytest.raises(PermissionError):  # EPERM (immutable) or EACCES (mode)
        (folder / "probe").touch()
    try:
        yield folder / "proctor.db"
    finally:
        if os.geteuid() == 0:
            subprocess.run(["chattr", "-i", str(folder)], check=True)
        os.chmod(folder, 0o700)
        shutil.rmtree(folder)


@pytest.mark.sqlite_only("copies the store's file into a folder nobody can write to")
@pytest.mark.parametrize(
    "args", [["runs", "list"], ["runs", "list", "--json"], ["runs", "status", "RUN"]]
)
def test_reading_commands_work_on_a_store_in_a_read_only_folder(
    read_only_folder: Path, args: list[str]
) -> None:
    with open_store(read_only_folder, readonly=True) as store:
        (only,) = store.list_runs()
    args = [only.run_id if a == "RUN" else a for a in args]
    code, out, err = run(read_only_folder, *args)
    assert code == 0, err
    assert only.run_id in out
    assert "COMPLETED" in out or '"completed"' in out
    assert sorted(p.name for p in read_only_folder.parent.iterdir()) == ["proctor.db"]


READING = [["runs", "list"], ["runs", "status", "x"], ["runs", "logs", "x"], ["runs", "tree", "x"]]
WRITING = [["cancel", "x"], ["terminate", "x"]]


@pytest.mark.parametrize("args", READING + WRITING)
@pytest.mark.parametrize("empty", ["zero-bytes", "no-tables"])
@pytest.mark.sqlite_only("an empty or table-less SQLite file")
def test_an_empty_file_is_treated_the_same_by_reading_and_writing_commands(
    db: Path, args: list[str], empty: str
) -> None:
    db.touch()
    if empty == "no-tables":  # a valid SQLite file with nothing in it
        conn = sqlite3.connect(db)
        conn.execute("CREATE TABLE t (x)")
        conn.execute("DROP TABLE t")
        conn.commit()
        conn.close()
        assert db.stat().st_size > 0
    before = db.read_bytes()
    # A 0-byte file may be a store another process is creating: a command
    # waits for it up to its busy timeout, kept short here.
    result = proctor(db, "--busy-timeout", "0.1", *args)
    assert result.exit_code == 1, result.output
    assert result.stderr == f"Error: {db} is not a Proctor store: it is empty\n"
    assert db.read_bytes() == before
