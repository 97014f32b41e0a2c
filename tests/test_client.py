"""A5: the Client starts, reads, controls and waits for runs, hosting none.

Peers: Temporal's ``Client`` and DBOS's ``DBOSClient`` enqueue and control
workflows that workers execute; a client holds no worker of its own.
"""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pykka
import pytest
from click.testing import CliRunner

from actors import (
    Client,
    InvalidArgument,
    InvalidArgumentType,
    NotSerializable,
    RunIdInUse,
    RunNotFinished,
    RunNotFound,
    RunState,
    Runtime,
    RuntimeClosed,
    StoreError,
    WaitTimeout,
    step,
    workflow,
)
from cli import cli
from persistence import EventType, NewEvent, _connection, open_store
from tests.conftest import assert_nothing_left, wait_until


@step()
def add_step(a: int, b: int) -> int:
    return a + b


@workflow()
async def client_add(a: int, b: int) -> int:
    return await add_step(a, b)


@pytest.fixture
def client(db: Path) -> Iterator[Client]:
    before = set(threading.enumerate())
    with Client(db, create=True) as opened:
        yield opened
    assert_nothing_left(before)


def _created(run_id: str, parent: str | None = None) -> NewEvent:
    data: dict[str, Any] = {"workflow": "tests.w", "owner": None}
    if parent is not None:
        data["parent_run_id"] = parent
    return NewEvent(run_id=run_id, type=EventType.RUN_CREATED, data=data)


def test_A5_start_writes_a_pending_run_nobody_owns_and_a_worker_runs_it(
    client: Client, db: Path
) -> None:
    handle = client.start(client_add, 2, 3)
    record = handle.record()
    assert (record.status, record.owner, record.workflow) == (
        RunState.PENDING,
        None,
        client_add.name,
    )
    assert (record.args, record.kwargs) == ([2, 3], {})
    with Runtime(db, claim_runs=True) as worker:
        assert handle.result(timeout=20) == 5
        assert worker.get_run(handle.run_id).status is RunState.COMPLETED
    assert client.get_run(handle.run_id).owner is not None
    assert next(e.type for e in handle.events()) is EventType.RUN_CREATED


def test_A5_start_by_name_and_with_a_run_id(client: Client) -> None:
    named = client.start(client_add.name, 1, b=2, run_id="order-42")
    assert named.run_id == "order-42"
    assert client.get_run("order-42").kwargs == {"b": 2}
    # A workflow this process never imported: its name is enough.
    elsewhere = client.start("shop.orders.order", "o-1")
    assert client.get_run(elsewhere.run_id).workflow == "shop.orders.order"


def test_A5_a_name_is_never_resolved_though_this_process_imported_it(client: Client) -> None:
    """``start`` given a name does the same whatever this process imported:
    no signature check (the worker checks it) and arguments compared as
    written; the ``@workflow()`` itself is bound and checked."""
    assert client_add.name.endswith("client_add")  # imported here, registered
    misfit = client.start(client_add.name, 1)  # no b: the worker will say so
    assert (client.get_run(misfit.run_id).args, misfit.created) == ([1], True)
    client.start(client_add.name, 1, 2, run_id="by-name")
    with pytest.raises(RunIdInUse, match="by-name"):
        client.start(client_add.name, a=1, b=2, run_id="by-name")  # another call as written
    client.start(client_add, 1, 2, run_id="by-def")
    assert client.start(client_add, a=1, b=2, run_id="by-def").created is False  # bound
    with pytest.raises(InvalidArgumentType):
        client.start(client_add, 1)


def test_A2_A5_a_repeated_start_is_the_existing_run_and_another_is_refused(
    client: Client,
) -> None:
    first = client.start(client_add, 1, 2, run_id="order-7")
    again = client.start(client_add, 1, 2, run_id="order-7")
    assert again.run_id == first.run_id == "order-7"
    with pytest.raises(RunIdInUse, match="order-7"):
        client.start(client_add, 1, 3, run_id="order-7")
    assert [r.run_id for r in client.list_runs()] == ["order-7"]
    assert len(client.events("order-7")) == 1


@pytest.mark.parametrize(
    ("call", "error"),
    [
        (lambda c: c.start(client_add, float("nan"), 1), NotSerializable),
        (lambda c: c.start(client_add, 1), InvalidArgumentType),
        (lambda c: c.start(client_add, 1, 2, c=3), InvalidArgumentType),
        (lambda c: c.start(print, 1), InvalidArgumentType),
        (lambda c: c.start("", 1), InvalidArgumentType),
        (lambda c: c.start(client_add, 1, 2, run_id=""), InvalidArgument),
        (lambda c: c.start(client_add, 1, 2, run_id=7), InvalidArgumentType),
        (lambda c: c.cancel("r", 42), NotSerializable),
        (lambda c: c.cancel("r", grace=-1), InvalidArgument),
        (lambda c: c.cancel("r", wait=True, timeout=float("inf")), InvalidArgument),
        (lambda c: c.terminate("r", b"why"), NotSerializable),
        (lambda c: c.cancel(7), InvalidArgumentType),
    ],
)
def test_A5_bad_input_is_refused_before_anything_is_written(
    client: Client, call: Callable[[Client], object], error: type[Exception]
) -> None:
    with open_store(client.db) as store:
        store.append([_created("r")])
    with pytest.raises(error):
        call(client)
    assert [r.run_id for r in client.list_runs()] == ["r"]
    assert [e.type for e in client.events("r")] == [EventType.RUN_CREATED]


def test_A5_cancel_records_what_the_cli_records(client: Client, db: Path) -> None:
    with open_store(db) as store:
        store.append([_created("api")])
        store.append([_created("cli")])
    done = client.cancel("api", "stop", grace=30)
    assert (done.status, done.changed, done.message) == (
        RunState.CANCELLING,
        True,
        "cancel requested",
    )
    result = CliRunner().invoke(
        cli, ["--db", str(db), "cancel", "cli", "--reason", "stop", "--grace", "30"]
    )
    assert result.exit_code == 0, result.output
    by_api, by_cli = (client.events(r)[-1] for r in ("api", "cli"))
    assert by_api.type is by_cli.type is EventType.CANCEL_REQUESTED
    assert by_api.data.keys() == by_cli.data.keys()
    assert {k: v for k, v in by_api.data.items() if k not in ("source", "origin")} == {
        k: v for k, v in by_cli.data.items() if k not in ("source", "origin")
    }
    assert (by_api.data["source"], by_cli.data["source"]) == ("api", "cli")
    # C6: a repeat changes nothing but the log.
    again = client.cancel("api", "again")
    assert (again.changed, again.message) == (False, "run is already cancelling")
    with pytest.raises(RunNotFound):
        client.cancel("nope")


def test_A5_terminate_ends_the_whole_tree_at_once_and_a_repeat_changes_nothing(
    client: Client, db: Path
) -> None:
    with open_store(db) as store:
        store.append([_created("root")])
        store.append([_created("root.1", parent="root")])
        store.append([_created("root.1.1", parent="root.1")])
    done = client.terminate("root", "ops")
    assert (done.status, done.changed) == (RunState.TERMINATED, True)
    assert {r.run_id: r.status for r in client.list_runs()} == dict.fromkeys(
        ("root", "root.1", "root.1.1"), RunState.TERMINATED
    )
    assert client.get_run("root.1.1").terminate_reason == "ops"
    again = client.terminate("root")
    assert (again.status, again.changed) == (RunState.TERMINATED, False)
    assert "already finished" in again.message
    cancelled = client.cancel("root")
    assert (cancelled.status, cancelled.changed) == (RunState.TERMINATED, False)
    with pytest.raises(RunNotFound):
        client.terminate("nope")


def test_A5_cancel_wait_enforces_the_grace_when_nobody_hosts_the_run(client: Client) -> None:
    handle = client.start(client_add, 1, 2)
    done = client.cancel(handle.run_id, "late", wait=True, grace=0.05, timeout=10)
    assert done.status is RunState.TERMINATED
    assert "terminated" in done.message
    assert client.get_run(handle.run_id).terminate_reason == "cancel grace expired (late)"
    # Repeated while cancelling: the answer says both what it changed and the end.
    again = client.start(client_add, 1, 2)
    client.cancel(again.run_id, "first")
    repeat = client.cancel(again.run_id, "again", wait=True, grace=0.05, timeout=10)
    assert (repeat.changed, repeat.status) == (False, RunState.TERMINATED)
    assert repeat.message.startswith("run is already cancelling; it is terminated")
    other = client.start(client_add, 1, 2)
    waited = client.cancel(other.run_id, wait=True, timeout=0.05)
    assert waited.status is RunState.CANCELLING  # the wait ran out: no error (C1)


def test_A5_async_cancel_wait_enforces_the_grace_too(client: Client) -> None:
    async def go() -> tuple[RunState, RunState]:
        handle = await client.start_async(client_add, 1, 2)
        done = await client.cancel_async(handle.run_id, "late", wait=True, grace=0.05, timeout=10)
        other = await client.start_async(client_add, 1, 2)
        waited = await client.cancel_async(other.run_id, wait=True, timeout=0.05)
        return done.status, waited.status

    assert asyncio.run(go()) == (RunState.TERMINATED, RunState.CANCELLING)


def test_A5_handles_wait_sync_and_async_while_a_worker_runs_the_runs(
    client: Client, db: Path
) -> None:
    first = client.start(client_add, 20, 22)
    pending = client.handle(first.run_id)
    with pytest.raises(WaitTimeout):
        pending.result(timeout=0.05)  # nobody runs it yet: the wait says so

    async def results() -> tuple[object, ...]:
        second = await client.start_async(client_add, 1, 1)
        return (
            await second.result_async(timeout=20),
            await client.handle(first.run_id).result_async(timeout=20),
            (await client.wait_async(second.run_id, timeout=20)).status,
            (await client.get_run_async(second.run_id)).status,
            [r.run_id for r in await client.list_runs_async(workflow="client_add")],
            len(await client.events_async(second.run_id)) > 1,
        )

    with Runtime(db, claim_runs=True):
        got = asyncio.run(results())
        assert pending.result(timeout=20) == 42
        assert client.wait(first.run_id, timeout=20).status is RunState.COMPLETED
    assert got[:4] == (2, 42, RunState.COMPLETED, RunState.COMPLETED)
    assert set(got[4]) == {first.run_id, client.list_runs()[0].run_id}  # type: ignore[arg-type]
    assert got[5] is True


def test_A5_async_twins_run_every_store_call_off_the_event_loop(client: Client) -> None:
    """A1 for the Client: the loop's thread never touches the store."""
    real = client._store
    threads: list[int] = []

    class Spy:
        def __getattr__(self, name: str) -> Any:
            attr = getattr(real, name)
            if not callable(attr):
                return attr

            def call(*args: Any, **kwargs: Any) -> Any:
                threads.append(threading.get_ident())
                return attr(*args, **kwargs)

            return call

    client._store = Spy()  # type: ignore[assignment]
    client._waiter._store = client._store  # type: ignore[assignment]

    async def go() -> int:
        await client.start_async(client_add, 1, 2, run_id="spied")
        await client.get_run_async("spied")
        await client.list_runs_async()
        await client.list_runs_page_async(limit=1)
        await client.events_async("spied")
        await client.cancel_async("spied", wait=True, timeout=0.1)
        await client.terminate_async("spied")
        await client.wait_async("spied", timeout=1)
        return threading.get_ident()

    loop_thread = asyncio.run(go())
    client._store = real
    assert threads, "the spy saw no store call"
    assert loop_thread not in threads


def test_A5_after_close_every_call_raises_RuntimeClosed(db: Path) -> None:
    client = Client(db, create=True)
    handle = client.start(client_add, 1, 2)
    client.close()
    client.close()  # idempotent
    calls: list[Callable[[], object]] = [
        lambda: client.start(client_add, 1, 2),
        lambda: client.handle(handle.run_id),
        lambda: client.get_run(handle.run_id),
        client.list_runs,
        client.list_runs_page,
        lambda: client.events(handle.run_id),
        lambda: client.cancel(handle.run_id),
        lambda: client.terminate(handle.run_id),
        lambda: client.wait(handle.run_id, timeout=1),
        handle.status,
        lambda: handle.result(timeout=1),
        handle.cancel,
        client.__enter__,
        lambda: asyncio.run(client.start_async(client_add, 1, 2)),
        lambda: asyncio.run(client.get_run_async(handle.run_id)),
        lambda: asyncio.run(client.list_runs_async()),
        lambda: asyncio.run(client.events_async(handle.run_id)),
        lambda: asyncio.run(client.cancel_async(handle.run_id)),
        lambda: asyncio.run(client.terminate_async(handle.run_id)),
        lambda: asyncio.run(client.wait_async(handle.run_id)),
        lambda: asyncio.run(handle.result_async(timeout=1)),
        lambda: asyncio.run(client.handle_async(handle.run_id)),
        lambda: client.restart(handle.run_id),
        lambda: asyncio.run(client.restart_async(handle.run_id)),
        lambda: asyncio.run(client.__aenter__()),
    ]
    for call in calls:
        with pytest.raises(RuntimeClosed, match="is closed"):
            call()


def test_A5_a_client_leaves_no_thread_and_no_actor(db: Path) -> None:
    before = set(threading.enumerate())
    with Client(db, create=True) as client:
        handle = client.start(client_add, 1, 2)
        assert pykka.ActorRegistry.get_all() == []
        assert {t for t in threading.enumerate() if t.is_alive()} <= before
        client.cancel(handle.run_id, wait=True, timeout=0.05)
        client.list_runs_page(limit=1)
        with pytest.raises(WaitTimeout):
            handle.result(timeout=0.05)

        async def go() -> None:
            await client.get_run_async(handle.run_id)
            await client.terminate_async(handle.run_id)

        asyncio.run(go())
        assert {t for t in threading.enumerate() if t.is_alive()} <= before
    assert_nothing_left(before)


def test_A5_a_store_with_only_clients_runs_nothing(client: Client, db: Path) -> None:
    handle = client.start(client_add, 1, 2)
    with Client(db) as other:
        other.cancel(handle.run_id)
        wait_until(lambda: client.get_run(handle.run_id).status is RunState.CANCELLING)
    assert client.get_run(handle.run_id).owner is None
    assert client._store.runtimes() == []


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"db": 42}, InvalidArgumentType),
        ({"busy_timeout": float("nan")}, InvalidArgument),
        ({"busy_timeout": -1}, InvalidArgument),
        ({"max_payload_bytes": 0}, InvalidArgument),
        ({"max_payload_bytes": "big"}, InvalidArgumentType),
    ],
)
def test_A5_a_bad_setting_is_refused_before_the_store_is_opened(
    tmp_path: Path, kwargs: dict[str, Any], error: type[Exception]
) -> None:
    kwargs.setdefault("db", tmp_path / "never.db")
    with pytest.raises(error):
        Client(**kwargs)
    assert not (tmp_path / "never.db").exists()


def test_A5_a_handle_of_an_unknown_run_is_RunNotFound(client: Client) -> None:
    with pytest.raises(RunNotFound):
        client.handle("nope")
    with pytest.raises(RunNotFound):
        client.wait("nope", timeout=1)
    with pytest.raises(RunNotFound):
        asyncio.run(client.wait_async("nope", timeout=1))


def test_A5_proctor_start_and_client_start_write_the_same_run(client: Client, db: Path) -> None:
    by_client = client.start(client_add, 1, b=2).record()
    result = CliRunner().invoke(
        cli, ["--db", str(db), "start", "tests.test_client:client_add", "1", "--kwargs", '{"b": 2}']
    )
    assert result.exit_code == 0, result.output
    by_cli = client.get_run(result.stdout.strip())

    def shape(record: Any) -> tuple[object, ...]:
        return (record.workflow, record.status, record.owner, record.args, record.kwargs)

    assert (
        shape(by_cli)
        == shape(by_client)
        == (
            client_add.name,
            RunState.PENDING,
            None,
            [1],
            {"b": 2},
        )
    )
    assert client.events(by_cli.run_id)[0].data == client.events(by_client.run_id)[0].data


def test_A5_async_with_closes_the_client_and_every_call_has_a_twin(db: Path) -> None:
    """What ``async with Runtime`` does, a Client does (A1): ``__aenter__``,
    ``close_async`` on exit, ``handle_async``; a closed client refuses all."""
    with Client(db, create=True) as setup:
        run_id = setup.start(client_add, 1, 2).run_id

    async def go() -> Client:
        async with Client(db) as client:
            handle = await client.handle_async(run_id)
            assert (await handle.record_async()).status is RunState.PENDING
            with pytest.raises(RunNotFound):
                await client.handle_async("nope")
        with pytest.raises(RuntimeClosed, match="is closed"):
            await client.handle_async(run_id)
        await client.close_async()  # idempotent
        return client

    client = asyncio.run(go())
    with pytest.raises(RuntimeClosed):
        client.get_run(run_id)


def test_A5_A7_client_restart_writes_what_proctor_runs_restart_writes(
    client: Client, db: Path
) -> None:
    """A restart through a Client is ``proctor runs restart``'s record (one
    implementation): PENDING, nobody's, linked, for a worker that imports the
    workflow; the same restart again is the same run (A2)."""
    old = client.start(client_add, 2, 3)
    with pytest.raises(RunNotFinished):
        client.restart(old.run_id)
    client.terminate(old.run_id)
    by_client = client.restart(old.run_id, run_id="again-1")
    assert client.restart(old.run_id, run_id="again-1").run_id == "again-1"
    by_async = asyncio.run(client.restart_async(old.run_id, run_id="again-2"))
    result = CliRunner().invoke(
        cli, ["--db", str(db), "runs", "restart", old.run_id, "--run-id", "again-3"]
    )
    assert result.exit_code == 0, result.output
    first = [client.events(r)[0].data for r in ("again-1", "again-2", "again-3")]
    assert first[0] == first[1] == first[2]
    assert first[0]["restarted_from"] == old.run_id
    record = by_client.record()
    assert (record.status, record.owner, record.restarted_from) == (
        RunState.PENDING,
        None,
        old.run_id,
    )
    with pytest.raises(RunNotFound):
        client.restart("nope")
    with Runtime(db, claim_runs=True):
        assert by_client.result(timeout=20) == 5
        assert by_async.result(timeout=20) == 5


def test_A5_a_missing_store_is_an_error_not_a_new_empty_store(tmp_path: Path) -> None:
    """A mistyped path would list nothing and start runs no worker reads:
    the Client refuses it, as the CLI's reading commands do (exit 1)."""
    missing = tmp_path / "typo.db"
    with pytest.raises(StoreError, match=r"typo\.db.*does not exist.*create=True"):
        Client(missing)
    assert not missing.exists()
    with Client(missing, create=True) as client:
        assert client.list_runs() == []
    with Client(missing) as client:  # now it exists
        assert client.list_runs() == []
    with pytest.raises(InvalidArgumentType):
        Client(missing, create="yes")  # type: ignore[arg-type]
    empty = tmp_path / "empty.db"
    empty.touch()  # e.g. a mistyped `--db` a shell redirection created
    with pytest.raises(StoreError, match="not a Proctor store"):
        Client(empty, busy_timeout=0.1)  # waited for as a store being created, briefly
    assert empty.stat().st_size == 0


@pytest.mark.parametrize("create", [False, True])
def test_A5_a_directory_is_not_a_store_to_the_client_the_runtime_or_the_cli(
    tmp_path: Path, create: bool
) -> None:
    """A directory given as the store says so (persistence's one place every
    opener goes through), not "does not exist" nor SQLite's "unable to open"."""
    folder = tmp_path / "dir.db"
    folder.mkdir()
    says = f"{folder} is a directory, not a Proctor store: give the store file's path"
    with pytest.raises(StoreError) as raised:
        Client(folder, create=create)
    assert str(raised.value) == says
    if create:
        with pytest.raises(StoreError) as raised:
            Runtime(folder)
        assert str(raised.value) == says
    # The CLI's --db option refuses a directory before any command opens it (exit 2).
    for args in (["runs", "list"], ["cancel", "x"], ["worker"]):
        result = CliRunner().invoke(cli, ["--db", str(folder), *args])
        assert result.exit_code == 2, result.output
        assert f"'{folder}' is a directory" in result.stderr
    assert list(folder.iterdir()) == []


@pytest.mark.parametrize("stage", ["zero-bytes", "wal-header-only"])
def test_A5_a_client_opening_a_store_another_process_is_creating_waits_for_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, stage: str
) -> None:
    """A store being created is, for a moment, a 0-byte file, then a WAL
    header with no tables: a Client that opens it then waits (up to its
    busy timeout) for the schema instead of calling it "empty". The creator
    here finishes only once the Client has seen the file empty."""
    path = tmp_path / "new.db"
    path.touch()  # the creator's connect made the file
    creator = None
    if stage == "wal-header-only":  # it switched to WAL; its schema is not committed
        creator = sqlite3.connect(path)
        creator.execute("PRAGMA journal_mode = WAL")
        assert path.stat().st_size > 0
    seen_empty = threading.Event()
    real_identity = _connection.check_identity

    def identity(conn: sqlite3.Connection, spath: str) -> int:
        version = real_identity(conn, spath)
        if version == 0 and spath == str(path):
            seen_empty.set()
        return version

    monkeypatch.setattr(_connection, "check_identity", identity)

    def create() -> None:
        if seen_empty.wait(timeout=30):
            open_store(path).close()

    making = threading.Thread(target=create)
    making.start()
    try:
        with Client(path, busy_timeout=20) as client:
            assert client.list_runs() == []
    finally:
        seen_empty.set()
        making.join()
        if creator is not None:
            creator.close()
    assert seen_empty.is_set()


def test_A5_a_file_still_empty_after_the_busy_timeout_is_not_a_store(tmp_path: Path) -> None:
    """Nothing makes it a store: after the wait it is "not a Proctor store (empty)"."""
    path = tmp_path / "new.db"
    path.touch()
    with pytest.raises(StoreError, match="not a Proctor store: it is empty"):
        Client(path, busy_timeout=0.05)
    assert path.stat().st_size == 0


def test_A5_a_store_in_a_missing_folder_names_the_folder(tmp_path: Path) -> None:
    """Not SQLite's "unable to open database file": the folder is what is missing."""
    path = tmp_path / "nodir" / "x.db"
    says = f"cannot open {path}: the folder {path.parent} does not exist"
    for opening in (lambda: Client(path, create=True), lambda: Runtime(path)):
        with pytest.raises(StoreError) as raised:
            opening()
        assert str(raised.value) == says
    assert not path.parent.exists()


def test_A1_A5_every_public_call_of_the_client_has_an_awaitable_twin() -> None:
    """The guide says "every call has an awaitable twin": each public
    method ``m`` of Client has a coroutine ``m_async``."""
    import inspect  # noqa: PLC0415

    calls = {
        name
        for name, member in inspect.getmembers(Client, inspect.isfunction)
        if not name.startswith("_") and not name.endswith("_async")
    }
    assert {"start", "handle", "cancel", "terminate", "restart", "wait", "close"} <= calls
    for name in calls:
        assert inspect.iscoroutinefunction(getattr(Client, f"{name}_async", None)), name
    assert inspect.iscoroutinefunction(Client.__aenter__)
    assert inspect.iscoroutinefunction(Client.__aexit__)


def test_A5_a_wait_that_runs_out_returns_the_unfinished_run(client: Client) -> None:
    """wait() and cancel(wait=True) return quietly when the timeout passes
    (documented), with a status that says the run has not finished."""
    handle = client.start(client_add, 1, 2)
    assert client.wait(handle.run_id, timeout=0.05).status is RunState.PENDING
    assert handle.wait_finished(timeout=0.05).status is RunState.PENDING
    done = client.cancel(handle.run_id, wait=True, timeout=0.05)
    assert (done.status, done.status.is_terminal) == (RunState.CANCELLING, False)

    async def go() -> None:
        record = await client.wait_async(handle.run_id, timeout=0.05)
        assert record.status is RunState.CANCELLING
        again = await client.cancel_async(handle.run_id, wait=True, timeout=0.05)
        assert again.status is RunState.CANCELLING

    asyncio.run(go())
    with pytest.raises(WaitTimeout):
        handle.result(timeout=0.05)


def test_A3_A5_a_close_while_calls_are_under_way_leaves_each_created_or_refused(
    db: Path,
) -> None:
    """A close waits for the store calls under way: each start either returns
    its (created) run or raises RuntimeClosed having written nothing, never a
    store error of a closed connection after (or before) a commit."""
    client = Client(db, create=True)
    outcomes: dict[str, str] = {}

    async def main() -> None:
        some_done = asyncio.Event()

        async def one(i: int) -> None:
            try:
                await client.start_async(client_add, i, i, run_id=f"c-{i}")
                outcomes[f"c-{i}"] = "ok"
                if len(outcomes) >= 20:
                    some_done.set()
            except RuntimeClosed:
                outcomes[f"c-{i}"] = "closed"

        tasks = [asyncio.create_task(one(i)) for i in range(200)]
        await asyncio.wait_for(some_done.wait(), 30)
        client.close()  # here, not queued behind the starts in the executor
        await asyncio.gather(*tasks)  # any other error fails the test here

    asyncio.run(main())
    with open_store(db, readonly=True) as store:
        created = {r.run_id for r in store.list_runs()}
    assert created == {run_id for run_id, what in outcomes.items() if what == "ok"}
    assert len(outcomes) == 200
    assert "closed" in outcomes.values()  # the close did land mid-flight
