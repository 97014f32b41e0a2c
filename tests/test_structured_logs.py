"""O3: the runtime's log records carry structured fields; the worker prints
them as JSON Lines and logs every run's outcome.

The fields are attributes of each ``LogRecord`` (stdlib ``extra=``), as
Temporal's Python SDK puts a workflow's and an activity's ids on the records
of its loggers; the JSON Lines are what python-json-logger and structlog's
``JSONRenderer`` print: one object per line.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from actors import Runtime
from actors._log_records import RunOutcome
from actors._messages import ExitKind
from actors.testing import FakeClock, ProctorTestKit
from cli._log_format import JsonLinesFormatter
from persistence import RunState
from tests import log_workflows as lw
from tests.conftest import Target, run_cli, wait_until
from tests.processes import DEADLINE, ROOT, record

MODULE = "tests.log_workflows"


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    path = tmp_path / "markers"
    path.mkdir()
    return path


def proctor_records(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == "proctor"]


def about(
    records: list[logging.LogRecord], run_id: str, event_type: str
) -> list[logging.LogRecord]:
    return [
        r
        for r in records
        if getattr(r, "run_id", None) == run_id and getattr(r, "event_type", None) == event_type
    ]


def outcome_logged(caplog: pytest.LogCaptureFixture, run_id: str) -> list[logging.LogRecord]:
    ends = {"run_completed", "run_failed", "run_cancelled", "run_terminated"}
    return [
        r
        for r in proctor_records(caplog)
        if getattr(r, "run_id", None) == run_id and getattr(r, "event_type", None) in ends
    ]


def test_O3_a_retry_carries_its_run_step_call_and_attempt(
    rt: Runtime, folder: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="proctor")
    handle = rt.start(lw.retried, str(folder), "r1")
    assert handle.result(timeout=DEADLINE) == 2
    wait_until(lambda: outcome_logged(caplog, handle.run_id))
    (retry,) = about(proctor_records(caplog), handle.run_id, "step_retry_scheduled")
    assert retry.step == "tests.log_workflows.flaky"  # type: ignore[attr-defined]
    assert retry.call == 0  # type: ignore[attr-defined]
    assert retry.attempt == 2  # type: ignore[attr-defined]  # the attempt scheduled
    assert retry.levelno == logging.INFO
    message = retry.getMessage()
    assert handle.run_id in message  # text logs still read well
    assert "ConnectionError" in message
    assert "attempt 1 failed" in message
    (done,) = outcome_logged(caplog, handle.run_id)
    assert done.event_type == "run_completed"  # type: ignore[attr-defined]
    assert done.status == "completed"  # type: ignore[attr-defined]
    assert done.workflow == "tests.log_workflows.retried"  # type: ignore[attr-defined]
    assert isinstance(done.duration_s, float)  # type: ignore[attr-defined]
    assert 0 <= done.duration_s < DEADLINE  # type: ignore[attr-defined]
    assert done.getMessage().startswith(
        f"run {handle.run_id} tests.log_workflows.retried completed in "
    )


def test_O3_a_failure_is_logged_once_with_its_error(
    rt: Runtime, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="proctor")
    handle = rt.start(lw.failing, "disk full")
    assert handle.wait_finished(timeout=DEADLINE).status is RunState.FAILED
    wait_until(lambda: outcome_logged(caplog, handle.run_id))
    (failed,) = outcome_logged(caplog, handle.run_id)
    assert failed.event_type == "run_failed"  # type: ignore[attr-defined]
    assert failed.status == "failed"  # type: ignore[attr-defined]
    assert failed.error_type == "StepFailed"  # type: ignore[attr-defined]
    assert "boom: disk full" in failed.error_message  # type: ignore[attr-defined]
    assert "boom: disk full" in failed.getMessage()


def test_O3_a_cancel_buffered_in_a_shield_then_the_outcome(
    rt: Runtime, folder: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="proctor")
    handle = rt.start(lw.shielded, str(folder), "c1")
    wait_until((folder / "c1.started").exists)
    handle.cancel(reason="customer changed their mind")
    (folder / "c1.release").touch()
    assert handle.wait_finished(timeout=DEADLINE).status is RunState.CANCELLED
    wait_until(lambda: outcome_logged(caplog, handle.run_id))
    (buffered,) = about(proctor_records(caplog), handle.run_id, "cancel_buffered")
    assert buffered.reason == "customer changed their mind"  # type: ignore[attr-defined]
    assert "shield" in buffered.getMessage()
    (cancelled,) = outcome_logged(caplog, handle.run_id)
    assert cancelled.event_type == "run_cancelled"  # type: ignore[attr-defined]
    assert cancelled.status == "cancelled"  # type: ignore[attr-defined]
    assert cancelled.reason == "customer changed their mind"  # type: ignore[attr-defined]


def test_O3_a_terminate_is_logged_once_with_its_reason(
    rt: Runtime, folder: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="proctor")
    handle = rt.start(lw.held, str(folder), "t1")
    wait_until((folder / "t1.started").exists)
    handle.terminate(reason="runaway")
    assert handle.wait_finished(timeout=DEADLINE).status is RunState.TERMINATED
    wait_until(lambda: outcome_logged(caplog, handle.run_id))
    (terminated,) = outcome_logged(caplog, handle.run_id)
    assert terminated.event_type == "run_terminated"  # type: ignore[attr-defined]
    assert terminated.status == "terminated"  # type: ignore[attr-defined]
    assert terminated.reason == "runaway"  # type: ignore[attr-defined]


def test_O3_a_step_timeout_and_its_retry_on_the_virtual_clock(
    proctor: ProctorTestKit, caplog: pytest.LogCaptureFixture
) -> None:
    """H1's timeout is a WARNING naming the attempt; the outcome's duration
    is on the runtime's clock, so a FakeClock's advance counts."""
    caplog.set_level(logging.INFO, logger="proctor")
    proctor.hang(lw.slow, times=1)
    run = proctor.runtime.start(lw.timed, "v1")
    proctor.wait_for_event(run, "step_started")
    proctor.clock.advance(6)  # past the step's 5 s timeout
    proctor.wait_for_event(run, "step_retry_scheduled")
    proctor.clock.advance(1)  # the back-off
    assert run.result(timeout=DEADLINE) == "v1"
    wait_until(lambda: outcome_logged(caplog, run.run_id))
    records = proctor_records(caplog)
    (timed_out,) = about(records, run.run_id, "step_timed_out")
    assert timed_out.levelno == logging.WARNING
    assert (timed_out.step, timed_out.call, timed_out.attempt) == (  # type: ignore[attr-defined]
        "tests.log_workflows.slow",
        0,
        1,
    )
    assert "no result within 5s" in timed_out.getMessage()
    (retry,) = about(records, run.run_id, "step_retry_scheduled")
    assert retry.attempt == 2  # type: ignore[attr-defined]
    assert "timed out" in retry.getMessage()
    (done,) = outcome_logged(caplog, run.run_id)
    assert done.duration_s >= 7  # type: ignore[attr-defined]  # virtual seconds


def test_O3_an_outcome_is_logged_once_per_run(caplog: pytest.LogCaptureFixture) -> None:
    """A run's end reported twice (a lingering run terminated after its end
    was recorded, say) is one outcome line: the first end is the one recorded."""
    caplog.set_level(logging.INFO, logger="proctor")
    clock = FakeClock()
    outcome = RunOutcome(run_id="r-2", workflow="w", created_at=clock.time(), clock=clock)
    clock.advance(1.5)  # the duration is on the runtime's clock: virtual under a FakeClock
    outcome.ended(ExitKind.NORMAL, {"result": 1})
    outcome.ended(ExitKind.TERMINATED, {"reason": "late"})
    (line,) = proctor_records(caplog)
    assert line.status == "completed"  # type: ignore[attr-defined]
    assert line.duration_s == pytest.approx(1.5)  # type: ignore[attr-defined]
    assert line.getMessage() == "run r-2 w completed in 1.50s"


def test_O3_the_json_formatter_writes_every_field_on_one_line() -> None:
    """One record, one line, with ts in UTC, the extra fields and the traceback."""
    try:
        raise RuntimeError("line one\nline two")
    except RuntimeError:
        record = logging.getLogger("proctor").makeRecord(
            "proctor",
            logging.ERROR,
            __file__,
            1,
            "run %s: %s",
            ("r-1", "bad"),
            sys.exc_info(),
            extra={"run_id": "r-1", "attempt": 2, "event_type": "step_failed", "odd": object()},
        )
    line = JsonLinesFormatter().format(record)
    assert "\n" not in line
    data = json.loads(line)
    assert data["message"] == "run r-1: bad"
    assert data["level"] == "ERROR"
    assert data["logger"] == "proctor"
    assert data["ts"].endswith("Z")
    assert (data["run_id"], data["attempt"], data["event_type"]) == ("r-1", 2, "step_failed")
    assert "RuntimeError: line one\nline two" in data["exc"]
    assert data["odd"].startswith("<object object")  # not JSON: its repr


class _BadRepr:
    def __repr__(self) -> str:
        raise RuntimeError("no repr")


def _cycle() -> list[object]:
    looped: list[object] = []
    looped.append(looped)
    return looped


@pytest.mark.parametrize(
    ("msg", "args", "extra"),
    [
        ("keys", (), {"data": {(1, 2): 3}}),  # a dict json cannot key
        ("cycle", (), {"data": _cycle()}),
        ("repr", (), {"data": _BadRepr()}),
        ("bad args %s %s", (1,), {}),  # too few arguments for the format
        ("numbers", (), {"nan": float("nan"), "inf": float("-inf")}),
        ("breaks \u2028 \u2029 \x85 \r", (), {"data": "a\u2028b"}),
    ],
)
def test_O3_every_record_is_one_line_of_valid_json_whatever_it_holds(
    msg: str, args: tuple[object, ...], extra: dict[str, object]
) -> None:
    """Found by a tester: these made the formatter raise (logging then
    printed a multi-line "Logging error" among the JSON lines), wrote bare
    NaN (not JSON), or let Python's splitlines split a record in two."""
    record = logging.getLogger("proctor").makeRecord(
        "proctor", logging.INFO, __file__, 1, msg, args, None, extra=extra
    )
    line = JsonLinesFormatter().format(record)
    assert line.splitlines() == [line]
    data = json.loads(line, parse_constant=lambda c: pytest.fail(f"bare {c} is not JSON"))
    assert data["message"].startswith(msg.split(" ", maxsplit=1)[0])
    for key in extra:
        assert key in data


# -- proctor worker --log-format json, as a process -----------------------------------


class JsonWorker:
    """``proctor worker --log-format json MODULE``: stdout and stderr apart."""

    def __init__(self, db: Target, tmp_path: Path, *options: str) -> None:
        n = len(list(tmp_path.glob("worker*.out")))
        self.out = tmp_path / f"worker{n}.out"
        self.err = tmp_path / f"worker{n}.err"
        with self.out.open("w") as out, self.err.open("w") as err:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "cli", "--db", os.fspath(db), "worker", *options, MODULE],
                cwd=ROOT,
                stdout=out,
                stderr=err,
                text=True,
            )
        wait_until(lambda: "serving" in self.out.read_text(), timeout=DEADLINE)

    def lines(self) -> list[dict[str, Any]]:
        """Every complete stderr line, parsed: each must be a JSON object."""
        text = self.err.read_text()
        complete = text[: text.rfind("\n") + 1]
        parsed = [json.loads(line) for line in complete.splitlines()]
        assert all(isinstance(p, dict) for p in parsed), text
        return parsed

    def stop(self) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout=DEADLINE)

    def kill(self) -> None:
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=DEADLINE)


@pytest.fixture
def json_workers(db: Target, tmp_path: Path) -> Iterator[list[JsonWorker]]:
    started: list[JsonWorker] = []
    yield started
    for w in started:
        if w.process.poll() is None:
            w.kill()  # a test that failed may leave a step held: no drain to wait out


ENDS = {"run_completed", "run_failed", "run_cancelled", "run_terminated"}


def outcomes(lines: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    found: dict[str, list[dict[str, Any]]] = {}
    for line in lines:
        if line.get("event_type") in ENDS:
            found.setdefault(line["run_id"], []).append(line)
    return found


def start(db: Target, workflow: str, *args: str) -> str:
    result = run_cli(db, "start", f"{MODULE}:{workflow}", *args)
    assert result.exit_code == 0, result.output
    return result.stdout.strip()


@pytest.mark.timeout(120)
def test_O3_worker_json_lines_claims_retries_and_one_outcome_per_run(
    db: Target, tmp_path: Path, folder: Path, json_workers: list[JsonWorker]
) -> None:
    worker = JsonWorker(db, tmp_path, "--log-format", "json")
    json_workers.append(worker)
    done = start(db, "retried", f'"{folder}"', '"j1"')
    failed = start(db, "failing", '"no route"')
    cancelled = start(db, "held", f'"{folder}"', '"j2"')
    terminated = start(db, "held", f'"{folder}"', '"j3"')
    wait_until((folder / "j2.started").exists, timeout=DEADLINE)
    wait_until((folder / "j3.started").exists, timeout=DEADLINE)
    assert run_cli(db, "cancel", cancelled, "--reason", "ops").exit_code == 0
    assert run_cli(db, "terminate", terminated, "--reason", "runaway").exit_code == 0
    runs = {
        done: "completed",
        failed: "failed",
        cancelled: "cancelled",
        terminated: "terminated",
    }
    wait_until(lambda: set(outcomes(worker.lines())) == set(runs), timeout=DEADLINE)
    assert worker.stop() == 0, worker.err.read_text()
    lines = worker.lines()  # every line, to the last, is one JSON object
    assert all({"ts", "level", "logger", "message"} <= line.keys() for line in lines)
    for run_id, status in runs.items():
        (end,) = outcomes(lines)[run_id]  # exactly one outcome line per run
        assert end["status"] == status
        assert end["event_type"] == f"run_{status}"
        assert end["level"] == "INFO"
        assert end["workflow"].startswith(f"{MODULE}.")
        assert isinstance(end["duration_s"], float)
        assert run_id in end["message"]
        assert record(db, run_id).status is RunState(status)
        claims = [
            line
            for line in lines
            if line.get("run_id") == run_id and line.get("event_type") == "run_claimed"
        ]
        assert len(claims) == 1
    by_id = {run_id: outcomes(lines)[run_id][0] for run_id in runs}
    assert by_id[failed]["error_type"] == "StepFailed"
    assert "no route" in by_id[failed]["error_message"]
    assert by_id[cancelled]["reason"] == "ops"
    assert by_id[terminated]["reason"] == "runaway"
    (retry,) = [line for line in lines if line.get("event_type") == "step_retry_scheduled"]
    assert (retry["run_id"], retry["step"], retry["call"], retry["attempt"]) == (
        done,
        f"{MODULE}.flaky",
        0,
        2,
    )


@pytest.mark.timeout(120)
def test_O3_a_resumed_run_logs_its_outcome_in_the_worker_that_ends_it(
    db: Target, tmp_path: Path, folder: Path, json_workers: list[JsonWorker]
) -> None:
    first = JsonWorker(db, tmp_path, "--log-format", "json")
    json_workers.append(first)
    run_id = start(db, "held", f'"{folder}"', '"k1"')
    wait_until((folder / "k1.started").exists, timeout=DEADLINE)
    first.kill()  # as kill -9: the run is left RUNNING, owned by a dead worker
    second = JsonWorker(db, tmp_path, "--log-format", "json")
    json_workers.append(second)
    resumed = lambda: [  # noqa: E731
        line
        for line in second.lines()
        if line.get("run_id") == run_id and line.get("event_type") == "run_resumed"
    ]
    wait_until(resumed, timeout=DEADLINE)
    (folder / "k1.release").touch()
    wait_until(lambda: run_id in outcomes(second.lines()), timeout=DEADLINE)
    assert second.stop() == 0, second.err.read_text()
    assert run_id not in outcomes(first.lines())
    (end,) = outcomes(second.lines())[run_id]
    assert end["status"] == "completed"
    # Measured from the run's creation, before the first worker died.
    created = record(db, run_id).created_at
    finished = record(db, run_id).finished_at
    assert finished is not None
    assert end["duration_s"] >= (finished - created) * 0.5


def test_O3_worker_text_format_is_unchanged(
    db: Target, tmp_path: Path, folder: Path, json_workers: list[JsonWorker]
) -> None:
    worker = JsonWorker(db, tmp_path)
    json_workers.append(worker)
    run_id = start(db, "quick", "1")
    wait_until(lambda: f"run {run_id} {MODULE}.quick completed in " in worker.err.read_text())
    assert worker.stop() == 0
    line = next(t for t in worker.err.read_text().splitlines() if f"run {run_id}" in t)
    date, clock, level, *_ = line.split(" ")
    assert (len(date), len(clock.split(",")[0]), level) == (10, 8, "INFO")


@pytest.mark.parametrize(("option", "value"), [("--log-format", "xml"), ("--log-level", "loud")])
def test_O3_a_bad_log_option_is_a_usage_error(db: Target, option: str, value: str) -> None:
    result = run_cli(db, "worker", option, value, MODULE)
    assert result.exit_code == 2, result.output
    assert f"Invalid value for '{option}'" in result.output
    assert value in result.output
