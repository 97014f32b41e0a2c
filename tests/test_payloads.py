"""Payloads (D4): a size limit at the call, and each payload stored once.

The limit: an argument, a step or workflow result, or heartbeat details over
``max_payload_bytes`` of JSON is a :class:`PayloadTooLarge` (a
NotSerializable) where the value is serialized, and nothing of it is written.

Stored once: the projection (``runs``, ``steps``) holds a run's arguments,
results and errors; the event that carried them refers to it, and readers
see the event exactly as it was appended.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from sqlite_utils import Database

from actors import (
    NotSerializable,
    PayloadTooLarge,
    RetryPolicy,
    RunState,
    Runtime,
    WorkflowFailed,
    get_context,
    start_child,
    step,
    workflow,
)
from cli import cli
from persistence import (
    DEFAULT_MAX_PAYLOAD_BYTES,
    EventType,
    NewEvent,
    dumps,
    open_store,
)
from persistence._schema import APPLICATION_ID, MIGRATIONS, SCHEMA_VERSION
from tests.conftest import GATES, NOTES, assert_nothing_left, events_of, note, steps_of
from tests.store_access import raw_sql, store_exists

pytestmark = pytest.mark.timeout(60)

LIMIT = 1000
BIG = "x" * (LIMIT + 1)


@pytest.fixture
def small(db: Path) -> Iterator[Runtime]:
    """A runtime with a 1,000-byte payload limit; nothing left behind."""
    before = set(threading.enumerate())
    runtime = Runtime(db, max_payload_bytes=LIMIT)
    try:
        yield runtime
    finally:
        for event in GATES.values():
            event.set()
        runtime.close()
    assert_nothing_left(before)


@step(name="payloads.echo", retry=RetryPolicy(max_attempts=3, initial_interval=0.01))
def echo(value: Any) -> Any:
    note("echo", 1)
    return value


@workflow(name="payloads.returns")
async def returns(value: Any) -> Any:
    return await echo(value)


@workflow(name="payloads.returns_itself")
async def returns_itself(size: int) -> str:
    return "y" * size


@step(name="payloads.beats")
def beats(size: int) -> str:
    try:
        get_context().heartbeat("z" * size)
    except PayloadTooLarge as exc:
        return f"refused: {exc}"
    return "sent"


@workflow(name="payloads.heartbeat")
async def heartbeat(size: int) -> str:
    return await beats(size)


@workflow(name="payloads.calls_step")
async def calls_step(size: int) -> str:
    try:
        await echo("s" * size)
    except PayloadTooLarge as exc:
        return f"step refused: {exc}"
    return "step called"


@workflow(name="payloads.child")
async def child(value: str) -> str:
    return value.upper()


@workflow(name="payloads.calls_child")
async def calls_child(size: int) -> str:
    try:
        await child("c" * size)
    except PayloadTooLarge as exc:
        return f"child refused: {exc}"
    return "child called"


@workflow(name="payloads.parent")
async def parent(value: str) -> list[str]:
    kid = await start_child(child, value)
    return [await kid, await echo(value)]


# -- the limit ------------------------------------------------------------------


def test_D4_payload_limit_start_refuses_large_arguments_and_writes_nothing(
    small: Runtime,
) -> None:
    with pytest.raises(PayloadTooLarge, match=r"arguments of workflow .* over the payload limit"):
        small.start(returns, BIG)
    with pytest.raises(NotSerializable, match=r"1,000 bytes"):  # the same family as non-JSON
        small.start(returns, value=BIG)
    assert small.list_runs() == []
    assert small.start(returns, "x" * (LIMIT - 20)).result(timeout=10) == "x" * (LIMIT - 20)


def test_D4_payload_limit_step_result_fails_the_step_once_without_retry(small: Runtime) -> None:
    handle = small.start(calls_step, LIMIT - 20)  # the argument fits; the step's result too
    assert handle.result(timeout=10) == "step called"

    @workflow(name="payloads.big_result")
    async def big_result() -> str:
        return await grows()

    run = small.start(big_result)
    with pytest.raises(WorkflowFailed) as failed:
        run.result(timeout=10)
    assert failed.value.error is not None
    assert failed.value.error["type"] == "PayloadTooLarge"
    assert "result of step 'payloads.grows'" in failed.value.error["message"]
    attempts = steps_of(small, run.run_id)
    # Non-retryable although the policy allows 3 attempts: the value will not shrink.
    assert [(s.attempt, s.status.value) for s in attempts] == [(1, "failed")]
    assert attempts[0].error is not None
    assert attempts[0].error["type"] == "PayloadTooLarge"


@step(name="payloads.grows", retry=RetryPolicy(max_attempts=3, initial_interval=0.01))
def grows() -> str:
    return BIG


def test_D4_payload_limit_workflow_result_fails_the_run(small: Runtime) -> None:
    run = small.start(returns_itself, LIMIT + 1)
    with pytest.raises(WorkflowFailed, match=r"result of workflow 'payloads\.returns_itself'"):
        run.result(timeout=10)
    assert small.get_run(run.run_id).result is None


def test_D4_payload_limit_heartbeat_details_raise_at_the_call(small: Runtime) -> None:
    assert small.start(heartbeat, LIMIT - 20).result(timeout=10) == "sent"
    refused = small.start(heartbeat, LIMIT + 1).result(timeout=10)
    assert refused.startswith("refused: heartbeat details is 1,003 bytes")


def test_D4_payload_limit_step_and_child_arguments_raise_in_the_body(small: Runtime) -> None:
    step_run = small.start(calls_step, LIMIT + 1)
    assert step_run.result(timeout=10).startswith("step refused: arguments of step")
    child_run = small.start(calls_child, LIMIT + 1)
    assert child_run.result(timeout=10).startswith("child refused: arguments of workflow")
    # Nothing of the refused calls was written.
    assert NOTES.get("echo") is None
    assert small.list_runs(parent_run_id=child_run.run_id) == []


def test_D4_payload_limit_defaults_to_4_MiB(rt: Runtime) -> None:
    assert rt.max_payload_bytes == DEFAULT_MAX_PAYLOAD_BYTES == 4 * 1024 * 1024
    with pytest.raises(PayloadTooLarge, match="4,194,304 bytes"):
        rt.start(returns, "x" * DEFAULT_MAX_PAYLOAD_BYTES)
    assert rt.list_runs() == []


@pytest.mark.parametrize(
    ("limit", "error"),
    [(0, ValueError), (-1, ValueError), (1.5, TypeError), (True, TypeError), ("4MB", TypeError)],
)
def test_D4_payload_limit_bad_values_are_refused_before_the_store_is_touched(
    db: Path, limit: object, error: type[Exception]
) -> None:
    with pytest.raises(error, match="max_payload_bytes must be"):
        Runtime(db, max_payload_bytes=limit)  # type: ignore[arg-type]
    assert not store_exists(db)


def test_D4_payload_limit_cli_start_exits_2_and_writes_nothing(db: Path) -> None:
    open_store(db).close()
    big = json.dumps("x" * DEFAULT_MAX_PAYLOAD_BYTES)
    result = CliRunner().invoke(
        cli, ["--db", str(db), "start", "tests.cli_workflows:add", big, "1"]
    )
    assert result.exit_code == 2, result.output
    assert "over the payload limit of 4,194,304 bytes" in result.stderr
    with open_store(db, readonly=True) as store:
        assert store.list_runs() == []


def test_D4_payload_limit_a_replayed_step_failure_is_raised_as_itself(small: Runtime) -> None:
    @workflow(name="payloads.catches")
    async def catches() -> str:
        try:
            await grows()
        except PayloadTooLarge as exc:
            return f"caught {type(exc).__name__}"
        return "no error"

    run = small.start(catches)
    assert run.result(timeout=10) == "caught PayloadTooLarge"
    from actors._replay import History, recorded_outcome  # noqa: PLC0415

    history = History(small.get_run(run.run_id), small.events(run.run_id))
    (call,) = history.calls.values()
    _, error = recorded_outcome(run.run_id, call)
    assert isinstance(error, PayloadTooLarge)


# -- stored once -----------------------------------------------------------------


def _raw(db: Path | str, sql: str, *params: Any) -> list[tuple[Any, ...]]:
    return raw_sql(db, sql, *params)


def test_D4_each_payload_is_stored_once(db: Path) -> None:
    blob = "b" * 200_000
    before = set(threading.enumerate())
    with Runtime(db) as runtime:
        run_id = runtime.start(parent, blob).run_id
        assert runtime.handle(run_id).result(timeout=10) == [blob.upper(), blob]
    assert_nothing_left(before)
    # Every copy in the store, by table and column: each payload is in one place.
    copies = _raw(
        db,
        "SELECT 'events.' || type, length(data) FROM events WHERE length(data) > 1000"
        " UNION ALL SELECT 'runs.args', length(args) FROM runs WHERE length(args) > 1000"
        " UNION ALL SELECT 'runs.result', length(result) FROM runs WHERE length(result) > 1000"
        " UNION ALL SELECT 'steps.result', length(result) FROM steps WHERE length(result) > 1000",
    )
    # ... and every reader still sees it where it was: the CLI's log, say.
    logs = CliRunner().invoke(cli, ["--db", str(db), "runs", "logs", run_id, "--json"])
    assert logs.exit_code == 0, logs.output
    data = {e["type"]: e["data"] for e in map(json.loads, logs.stdout.splitlines())}
    assert data["run_created"]["args"] == [blob]
    assert data["step_completed"]["result"] == blob
    assert data["child_ended"]["result"] == blob.upper()
    assert data["run_completed"]["result"] == [blob.upper(), blob]
    where = sorted(name for name, _ in copies)
    assert where == [
        "events.step_scheduled",  # the step's own argument (a payload of its own)
        "runs.args",  # the parent's argument
        "runs.args",  # the child's argument
        "runs.result",  # the child's result (its parent's child_ended refers to it)
        "runs.result",  # the parent's result
        "steps.result",  # the step's result
    ]


def test_D4_readers_see_each_event_as_it_was_appended(db: Path) -> None:
    result = {"total": 3.5, "items": ["é", None, True]}
    error = {"type": "ValueError", "message": "no", "traceback": "tb"}
    groups: list[list[NewEvent]] = [
        [NewEvent(run_id="p", type=EventType.RUN_CREATED, data={"workflow": "w", "args": [1]})],
        [
            NewEvent(
                run_id="q",
                type=EventType.RUN_CREATED,
                data={"workflow": "w", "args": [], "kwargs": {"k": result}, "owner": None},
            )
        ],
        [NewEvent(run_id="p", type=EventType.RUN_STARTED)],
        [NewEvent(run_id="p", type=EventType.STEP_STARTED, step="s", call=1, attempt=1)],
        [
            NewEvent(
                run_id="p",
                type=EventType.STEP_FAILED,
                step="s",
                call=1,
                attempt=1,
                data={"error": error},
            )
        ],
        [NewEvent(run_id="p", type=EventType.STEP_STARTED, step="s", call=1, attempt=2)],
        [
            NewEvent(
                run_id="p",
                type=EventType.STEP_COMPLETED,
                step="s",
                call=1,
                attempt=2,
                data={"result": result},
            )
        ],
        [NewEvent(run_id="p", type=EventType.STEP_STARTED, step="s", call=2, attempt=1)],
        [
            NewEvent(
                run_id="p",
                type=EventType.STEP_COMPLETED,
                step="s",
                call=2,
                attempt=1,
                data={"result": None},
            )
        ],
        [
            NewEvent(
                run_id="p.3",
                type=EventType.RUN_CREATED,
                data={"workflow": "c", "args": ["a"], "kwargs": {}, "parent_run_id": "p"},
            )
        ],
        [NewEvent(run_id="p.3", type=EventType.RUN_STARTED)],
        [NewEvent(run_id="p.3", type=EventType.RUN_COMPLETED, data={"result": result})],
        [
            NewEvent(
                run_id="p",
                type=EventType.CHILD_ENDED,
                step="c",
                call=3,
                data={"child_run_id": "p.3", "status": "completed", "result": result},
            )
        ],
        [
            NewEvent(
                run_id="p",
                type=EventType.CHILD_ENDED,
                step="c",
                call=4,
                data={"child_run_id": "p.3", "status": "completed", "result": "not the child's"},
            )
        ],
        [NewEvent(run_id="q", type=EventType.RUN_STARTED)],
        [NewEvent(run_id="q", type=EventType.RUN_FAILED, data={"error": error})],
        [NewEvent(run_id="p", type=EventType.RUN_COMPLETED, data={"result": [result]})],
    ]
    with open_store(db) as store:
        for group in groups:
            assert all(o.accepted for o in store.append(group)), group
        for run_id in ("p", "q", "p.3"):
            appended = [ev for g in groups for ev in g if ev.run_id == run_id]
            read = store.events(run_id)
            assert [(e.type, e.call, e.attempt, e.data) for e in read] == [
                (ev.type, ev.call, ev.attempt, ev.data) for ev in appended
            ]
        assert store.events("p", after=7)[0].data == {"result": None}
    moved = _raw(db, "SELECT run_id, type, call FROM events WHERE moved = 1 ORDER BY seq")
    assert moved == [
        ("q", "run_created", None),  # p's has no kwargs: kept whole
        ("p", "step_failed", 1),
        ("p", "step_completed", 1),
        ("p", "step_completed", 2),
        ("p.3", "run_created", None),
        ("p.3", "run_completed", None),
        ("p", "child_ended", 3),  # call 4's result is not the child's: kept whole
        ("q", "run_failed", None),
        ("p", "run_completed", None),
    ]


def _v4_store(path: Path) -> Path:
    """A store as the release with schema version 4 left it, one run in it:
    its first step completed (result recorded twice), its second in flight,
    its owner gone."""
    conn = sqlite3.connect(path, isolation_level=None)
    for migration in MIGRATIONS[:4]:
        migration(Database(conn))
    conn.execute(f"PRAGMA application_id = {APPLICATION_ID}")
    conn.execute("PRAGMA user_version = 4")
    now = time.time()
    args, result = ["legacy"], {"paid": 12.5, "note": "ü"}
    conn.execute(
        "INSERT INTO runs (run_id, workflow, status, args, kwargs, owner, created_at,"
        " started_at, last_seq) VALUES ('old', 'payloads.resumable', 'running', ?, '{}',"
        " 'rt-gone', ?, ?, 7)",
        (json.dumps(args), now, now),
    )
    conn.execute(
        "INSERT INTO steps (run_id, call, attempt, name, status, shielded, started_at,"
        " finished_at, result) VALUES ('old', 0, 1, 'payloads.first', 'completed', 0, ?, ?, ?)",
        (now, now, dumps(result)),
    )
    conn.execute(
        "INSERT INTO steps (run_id, call, attempt, name, status, shielded, started_at)"
        " VALUES ('old', 1, 1, 'payloads.second', 'running', 0, ?)",
        (now,),
    )
    log: list[tuple[str, str | None, int | None, int | None, dict[str, Any] | None]] = [
        (
            "run_created",
            None,
            None,
            None,
            {"workflow": "payloads.resumable", "args": args, "kwargs": {}, "owner": "rt-gone"},
        ),
        ("run_started", None, None, None, None),
        ("step_scheduled", "payloads.first", 0, None, {"args": ["legacy"], "kwargs": {}}),
        ("step_started", "payloads.first", 0, 1, {"shielded": False}),
        ("step_completed", "payloads.first", 0, 1, {"result": result}),
        ("step_scheduled", "payloads.second", 1, None, {"args": [], "kwargs": {}}),
        ("step_started", "payloads.second", 1, 1, {"shielded": False}),
    ]
    for seq, (type_, name, call, attempt, data) in enumerate(log, 1):
        conn.execute(
            "INSERT INTO events (run_id, run_seq, ts, type, step, call, attempt, data)"
            " VALUES ('old', ?, ?, ?, ?, ?, ?, ?)",
            (seq, now, type_, name, call, attempt, None if data is None else dumps(data)),
        )
    conn.close()
    return path


@step(name="payloads.first")
def first(tag: str) -> dict[str, Any]:
    note("first", tag)
    return {"ran": "again"}


@step(name="payloads.second")
def second() -> str:
    note("second", 1)
    return "second done"


@workflow(name="payloads.resumable")
async def resumable(tag: str) -> list[Any]:
    return [await first(tag), await second()]


def test_D4_a_v4_store_is_migrated_to_payloads_stored_once_and_replays(tmp_path: Path) -> None:
    path = _v4_store(tmp_path / "v4.db")
    before_rows = _raw(path, "SELECT type, data FROM events ORDER BY seq")
    with open_store(path) as store:
        events = store.events("old")
    # Readers see what the old release wrote, value for value.
    assert [(e.type.value, e.data) for e in events] == [
        (t, json.loads(d) if d else {}) for t, d in before_rows
    ]
    after_rows = _raw(path, "SELECT type, data, moved FROM events ORDER BY seq")
    assert [(t, m) for t, _, m in after_rows if m] == [("run_created", 1), ("step_completed", 1)]
    assert [d for t, d, _ in after_rows if t == "step_completed"] == [None]
    assert _raw(path, "PRAGMA user_version") == [(SCHEMA_VERSION,)] == [(9,)]
    # D2 on the migrated log: the recorded result is replayed, the lost step runs again.
    threads = set(threading.enumerate())
    with Runtime(path) as runtime:
        result = runtime.handle("old").result(timeout=10)
    assert_nothing_left(threads)
    assert result == [{"paid": 12.5, "note": "ü"}, "second done"]
    assert NOTES.get("first") is None
    assert NOTES["second"] == [1]
    assert EventType.STEP_REEXECUTED in [e.type for e in events_of(runtime, "old")]
    assert RunState.COMPLETED is open_store(path, readonly=True).get_run("old").status
