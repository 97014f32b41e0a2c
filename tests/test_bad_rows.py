"""One bad row never takes the fleet down (D4, SV2).

Every record is checked at append, whoever writes it; a row that is bad
anyway (written by hand, or by another version) fails only its run, and
every reader shows it instead of crashing: the ControlInbox's claims,
resumes and control requests, a supervisor's takeover, the CLI. A shared
actor that dies anyway is restarted by the Guardian, within a restart
intensity past which the runtime stops loudly.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from actors import NotSerializable, RunState, Runtime, StoreError
from actors._control_inbox import ControlInbox
from cli import cli
from persistence import (
    EventType,
    NewEvent,
    Refused,
    cancel_request,
    open_store,
)
from persistence._json import MAX_VALUE_DEPTH as MAX_DEPTH
from tests import cli_workflows as wf
from tests.conftest import assert_nothing_left, wait_until
from tests.store_access import raw_script, raw_sql

pytestmark = pytest.mark.timeout(60)

_E = EventType


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    path = tmp_path / "markers"
    path.mkdir()
    return path


def nested(depth: int) -> Any:
    value: Any = []
    for _ in range(depth - 1):
        value = [value]
    return value


def deep_json(depth: int) -> str:
    return "[" * depth + "]" * depth


def created(run_id: str, owner: str | None = None, **data: Any) -> NewEvent:
    fields: dict[str, Any] = {"workflow": wf.add.name, "args": [1, 2], "owner": owner}
    fields.update(data)
    return NewEvent(run_id=run_id, type=_E.RUN_CREATED, data=fields)


def raw(db: Path | str, sql: str, *params: Any) -> None:
    """Write straight into the store's tables, past every check (a hand edit)."""
    raw_sql(db, sql, *params)


def raw_event(db: Path | str, run_id: str, type_: str, data: str) -> None:
    """Append an event by hand: the next run_seq, the run's last_seq moved on."""
    ((seq,),) = raw_sql(db, "SELECT last_seq FROM runs WHERE run_id = ?", run_id)
    raw_script(
        db,
        [
            (
                "INSERT INTO events (run_id, run_seq, ts, type, data) VALUES (?, ?, ?, ?, ?)",
                (run_id, seq + 1, time.time(), type_, data),
            ),
            ("UPDATE runs SET last_seq = ? WHERE run_id = ?", (seq + 1, run_id)),
        ],
    )


def status_of(db: Path, run_id: str) -> RunState:
    with open_store(db, readonly=True) as store:
        return store.get_run(run_id).status


def error_of(db: Path, run_id: str) -> dict[str, Any]:
    with open_store(db, readonly=True) as store:
        error = store.get_run(run_id).error
    assert error is not None
    return error


@pytest.fixture
def crashes(caplog: pytest.LogCaptureFixture) -> Iterator[list[str]]:
    """Messages of every actor crash and unexpected stop logged during the test."""
    caplog.set_level(logging.WARNING, logger="proctor")
    found: list[str] = []
    yield found
    found.extend(
        r.getMessage()
        for r in caplog.records
        if "crashed" in r.getMessage() or "stopped unexpectedly" in r.getMessage()
    )


# -- every record is checked at append ------------------------------------------------


BAD_RECORDS = {
    "args not a list": (created("r", args=5), "'args' must be a JSON array"),
    "kwargs not an object": (created("r", kwargs=[1]), "'kwargs' must be a JSON object or null"),
    "no workflow": (
        NewEvent(run_id="r", type=_E.RUN_CREATED, data={"args": []}),
        "needs 'workflow'",
    ),
    "data not an object": (
        NewEvent(run_id="r", type=_E.RUN_CREATED, data=5),  # type: ignore[arg-type]
        "data must be a JSON object",
    ),
    "type not an EventType": (
        NewEvent(run_id="r", type="run_created", data={}),  # type: ignore[arg-type]
        "must be an EventType",
    ),
    "args too deep": (created("r", args=[nested(MAX_DEPTH + 10)]), "nested deeper"),
    "args far too deep": (created("r", args=[nested(5000)]), "nested deeper"),
}


@pytest.mark.parametrize(("event", "why"), BAD_RECORDS.values(), ids=BAD_RECORDS.keys())
def test_D4_a_malformed_record_is_refused_at_append_and_nothing_is_written(
    db: Path, event: NewEvent, why: str
) -> None:
    with open_store(db) as store:
        (outcome,) = store.append([event])
        assert isinstance(outcome, Refused)
        assert why in outcome.reason  # one sentence saying what is wrong
        assert store.list_runs() == []
        assert store.last_seq() == 0


BAD_EVENTS = {
    "cancel grace not a number": ("cancel_requested", {"reason": "x", "grace": "soon"}),
    "cancel grace negative": ("cancel_requested", {"reason": "x", "grace": -1}),
    "cancel reason not a string": ("cancel_requested", {"reason": ["x"]}),
    "failure not an object": ("run_failed", {"error": "boom"}),
    "claim without owner": ("run_claimed", {}),
    "child end with unknown status": ("child_ended", {"status": "fine", "child_run_id": "c"}),
    "data too deep": ("shield_entered", {"x": nested(MAX_DEPTH + 10)}),
}


@pytest.mark.parametrize(("type_", "data"), BAD_EVENTS.values(), ids=BAD_EVENTS.keys())
def test_D4_a_malformed_event_of_an_existing_run_is_refused_whole(
    db: Path, type_: str, data: dict[str, Any]
) -> None:
    with open_store(db) as store:
        store.append([created("r")])
        bad = NewEvent(run_id="r", type=EventType(type_), data=data)
        outcomes = store.append([NewEvent(run_id="r", type=_E.RUN_STARTED), bad])
        assert all(isinstance(o, Refused) for o in outcomes)
        assert [e.type for e in store.events("r")] == [_E.RUN_CREATED]  # nothing of the group


def test_D4_arguments_nested_too_deeply_are_NotSerializable_at_the_call(rt: Runtime) -> None:
    # 5,000 levels overflow Python's JSON codec; 110 do not, but would in a
    # thread with a deeper stack: both are refused, with the same error.
    for depth in (MAX_DEPTH + 10, 5000):
        with pytest.raises(NotSerializable, match=f"nested deeper than {MAX_DEPTH} levels"):
            rt.start(wf.add, nested(depth), 1)
    with pytest.raises(NotSerializable, match="nested deeper"):
        rt.start(wf.add, 1, {"deep": nested(5000)})
    assert rt.list_runs() == []


def test_D4_proctor_start_refuses_arguments_nested_too_deeply_in_one_sentence(db: Path) -> None:
    with open_store(db):
        pass  # an empty store
    for text in (deep_json(5000), deep_json(MAX_DEPTH + 10)):
        result = CliRunner().invoke(
            cli, ["--db", str(db), "start", "tests.cli_workflows:add", text, "1"]
        )
        assert result.exit_code == 2, result.output  # usage: bad arguments
        assert isinstance(result.exception, SystemExit), result.exception
        assert "nested" in result.output
    with open_store(db, readonly=True) as store:
        assert store.list_runs() == []


# -- a bad row fails only its run, read by every shared reader ---------------------------------


def test_D4_a_bad_row_found_by_a_claim_fails_only_its_run(db: Path, crashes: list[str]) -> None:
    before = set(threading.enumerate())
    with open_store(db) as store:
        for run_id in ("args-5", "args-deep", "args-not-json", "kwargs-list"):
            store.append([created(run_id)])
    raw(db, "UPDATE runs SET args = '5' WHERE run_id = 'args-5'")
    raw(db, "UPDATE runs SET args = ? WHERE run_id = 'args-deep'", deep_json(5000))
    raw(db, "UPDATE runs SET args = '[1, 2' WHERE run_id = 'args-not-json'")
    raw(db, "UPDATE runs SET kwargs = '[1]' WHERE run_id = 'kwargs-list'")
    with Runtime(db, claim_runs=True) as worker:
        bad = ("args-5", "args-deep", "args-not-json", "kwargs-list")
        wait_until(lambda: all(worker.get_run(r).status is RunState.FAILED for r in bad))
        # The worker goes on: it claims and runs a good run created after them.
        with open_store(db) as store:
            store.append([created("good")])
        assert worker.handle("good").result(timeout=10) == 3
    assert "must be a JSON array, found the number 5" in error_of(db, "args-5")["message"]
    assert "nested too deeply" in error_of(db, "args-deep")["message"]
    assert "not JSON" in error_of(db, "args-not-json")["message"]
    assert error_of(db, "kwargs-list")["type"] == "CorruptRecord"
    assert crashes == []
    assert_nothing_left(before)


def test_D4_a_bad_row_found_by_the_orphan_scan_fails_only_its_run(
    db: Path, crashes: list[str]
) -> None:
    before = set(threading.enumerate())
    # Runs of a runtime that died (never registered here): orphans to resume.
    with open_store(db) as store:
        for run_id in ("bad-record", "bad-event", "good"):
            store.append([created(run_id, owner="rt-dead")])
            store.append([NewEvent(run_id=run_id, type=_E.RUN_STARTED)])
    raw(db, "UPDATE runs SET args = ? WHERE run_id = 'bad-record'", deep_json(5000))
    # A record of the run's log that replay would need, unreadable.
    raw_event(db, "bad-event", "shield_entered", "{not json")
    with Runtime(db) as worker:
        wait_until(lambda: worker.get_run("good").status is RunState.COMPLETED)
        wait_until(lambda: worker.get_run("bad-record").status is RunState.FAILED)
        wait_until(lambda: worker.get_run("bad-event").status is RunState.FAILED)
        assert worker.get_run("bad-event").owner == worker.id  # taken over, then failed
    assert "cannot be read" in error_of(db, "bad-event")["message"]
    assert crashes == []
    assert_nothing_left(before)


def test_D4_a_control_request_whose_data_is_not_json_is_still_delivered(
    rt: Runtime, db: Path, folder: Path, crashes: list[str]
) -> None:
    handle = rt.start(wf.long_job, str(folder), "k")
    wait_until((folder / "k.started").exists)
    raw(db, "UPDATE runs SET status = 'cancelling' WHERE run_id = ?", handle.run_id)
    raw_event(db, handle.run_id, "cancel_requested", "{this is not json")
    # The ControlInbox reads it, delivers a cancel without its details, and goes on.
    assert handle.wait_finished(timeout=10).status is RunState.CANCELLED
    later = rt.start(wf.long_job, str(folder), "later")
    wait_until((folder / "later.started").exists)
    with open_store(db) as other:  # another process's cancel still arrives
        other.append([cancel_request(later.run_id, "by hand", source="cli", origin="cli-1")])
    assert later.wait_finished(timeout=10).status is RunState.CANCELLED
    assert crashes == []


def test_D4_a_bad_row_never_reaches_a_worker_through_Store_append(
    db: Path, crashes: list[str]
) -> None:
    """The issue's reproduction: the public Store.append, then a worker."""
    before = set(threading.enumerate())
    with open_store(db) as store:
        assert not store.append([created("five", args=5)])[0].accepted
        assert not store.append([created("deep", args=[nested(5000)])])[0].accepted
        store.append([created("good")])
    with Runtime(db, claim_runs=True) as worker:
        assert worker.handle("good").result(timeout=10) == 3
    assert crashes == []
    assert_nothing_left(before)


# -- the CLI shows a bad row, in one piece -------------------------------------------------


def test_D4_runs_list_status_and_logs_show_a_bad_row_without_a_traceback(db: Path) -> None:
    with open_store(db) as store:
        store.append([created("bad")])
        store.append([NewEvent(run_id="bad", type=_E.RUN_STARTED)])
        store.append([created("good")])
    raw(db, "UPDATE runs SET args = '5', error = '\"boom\"' WHERE run_id = 'bad'")
    raw(db, "UPDATE events SET data = '{not json' WHERE run_id = 'bad' AND run_seq = 1")
    raw_event(db, "bad", "shield_entered", '{"depth": "deep"}')
    for args in (
        ["runs", "list"],
        ["runs", "list", "--json"],
        ["runs", "status", "bad"],
        ["runs", "status", "bad", "--json"],
        ["runs", "logs", "bad"],
        ["runs", "logs", "bad", "--json"],
        ["runs", "tree", "bad"],
    ):
        result = CliRunner().invoke(cli, ["--db", str(db), *args])
        assert result.exception is None, (args, result.output)
        assert result.exit_code == 0, (args, result.output)
        assert "Traceback" not in result.output
        if args[1] == "list" and "--json" not in args:
            assert "RUNNING (bad row)" in result.output
            assert "says why" in result.output
        elif args[1] != "tree":
            assert "must be a JSON array" in result.output or "not JSON" in result.output, (
                args,
                result.output,
            )
    listed = json.loads(
        CliRunner().invoke(cli, ["--db", str(db), "runs", "list", "--json"]).stdout
    )["runs"]
    bad = next(r for r in listed if r["run_id"] == "bad")
    assert "args must be a JSON array" in bad["defect"]
    assert "defect" not in next(r for r in listed if r["run_id"] == "good")


def test_D4_a_run_state_no_table_knows_is_one_sentence_from_the_cli(db: Path) -> None:
    with open_store(db) as store:
        store.append([created("odd")])
    raw(db, "UPDATE runs SET status = 'sleeping' WHERE run_id = 'odd'")
    for args in (["runs", "list"], ["runs", "status", "odd"], ["cancel", "odd"]):
        result = CliRunner().invoke(cli, ["--db", str(db), *args])
        assert result.exit_code in (1, 3), (args, result.output)
        assert "Traceback" not in result.output
        assert len(result.output.strip().splitlines()) == 1, result.output


# -- a shared actor that dies is restarted, within an intensity (SV2, Erlang/OTP) -----------


def test_SV_a_dead_ControlInbox_is_restarted_and_delivers_cancels_again(
    db: Path, folder: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    before = set(threading.enumerate())
    caplog.set_level(logging.WARNING, logger="proctor")
    deliver = ControlInbox._deliver
    died = threading.Event()

    def dies_once(self: ControlInbox, requests: list[Any]) -> None:
        if requests and not died.is_set():
            died.set()
            raise RuntimeError("injected: the ControlInbox dies")
        deliver(self, requests)

    monkeypatch.setattr(ControlInbox, "_deliver", dies_once)
    with Runtime(db) as rt:
        first = rt.start(wf.long_job, str(folder), "a")
        second = rt.start(wf.long_job, str(folder), "b")
        wait_until(lambda: (folder / "a.started").exists() and (folder / "b.started").exists())
        with open_store(db) as other:
            other.append([cancel_request(first.run_id, "one", source="cli", origin="cli-1")])
        # The request the dead inbox had taken is delivered by its successor.
        assert first.wait_finished(timeout=10).status is RunState.CANCELLED
        assert died.is_set()
        with open_store(db) as other:
            other.append([cancel_request(second.run_id, "two", source="cli", origin="cli-1")])
        assert second.wait_finished(timeout=10).status is RunState.CANCELLED
        assert rt.failure is None
    messages = [r.getMessage() for r in caplog.records]
    assert any("ControlInbox stopped unexpectedly" in m and "injected" in m for m in messages)
    assert any("restarting the ControlInbox" in m for m in messages)
    assert_nothing_left(before)


def test_SV_a_ControlInbox_dying_past_its_restart_intensity_stops_the_runtime_loudly(
    db: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    before = set(threading.enumerate())
    caplog.set_level(logging.WARNING, logger="proctor")

    def always_dies(self: ControlInbox) -> None:
        raise RuntimeError("injected: the ControlInbox cannot start")

    monkeypatch.setattr(ControlInbox, "started", always_dies)
    rt = Runtime(db)
    try:
        wait_until(lambda: rt.failure is not None)
        with pytest.raises(StoreError, match="ControlInbox stopped unexpectedly"):
            rt.start(wf.add, 1, 2)
        with pytest.raises(StoreError, match="died 4 times within"):
            rt.cancel("any")
    finally:
        rt.close()
    messages = [r.getMessage() for r in caplog.records if r.levelno >= logging.CRITICAL]
    assert any("stops" in m and "ControlInbox" in m for m in messages)
    assert_nothing_left(before)


def test_SV_the_journal_dying_stops_the_runtime_loudly(
    db: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from actors._journal import Journal  # noqa: PLC0415

    before = set(threading.enumerate())

    def dies(self: Journal) -> None:
        raise RuntimeError("injected: the Journal dies")

    monkeypatch.setattr(Journal, "_renew", dies)
    rt = Runtime(db, lease_ttl=0.3)  # renews every 0.1 s
    try:
        wait_until(lambda: rt.failure is not None)
        with pytest.raises(StoreError, match="Journal stopped unexpectedly"):
            rt.start(wf.add, 1, 2)
    finally:
        rt.close()
    assert_nothing_left(before)
