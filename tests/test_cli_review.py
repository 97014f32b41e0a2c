"""What the CLI says where a new user's review found it misleading.

- ``start --timeout`` without ``--wait`` names ``--run-timeout`` too (B4);
- a finished run's untaken signals are "never taken", not pending (B5);
- a zombie owner (killed, not reaped) is dead, not "alive" (P3);
- an overdue timer says by how much (B1);
- each command's --help lists only the exit codes it can end with.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from actors import FakeClock, Runtime, sleep, step, wait_for_signal, workflow
from cli import cli
from persistence import RuntimeRecord
from persistence._leases import BOOT_ID, HOSTNAME, PID_NS, pid_alive, why_dead
from tests.conftest import gate, run_cli, wait_until

pytestmark = pytest.mark.timeout(60)


@step()
def held(key: str) -> None:
    gate(f"{key}:started").set()
    gate(key).wait(20)


@workflow()
async def takes_one(key: str) -> object:
    await held(key)
    return await wait_for_signal("approved")


@workflow()
async def naps() -> str:
    await sleep(3)
    return "rested"


def test_B4_start_timeout_without_wait_suggests_run_timeout(db: Path) -> None:
    result = run_cli(db, "start", "tests.cli_workflows:add", "1", "2", "--timeout", "5")
    assert result.exit_code == 2
    assert "--timeout only bounds --wait" in result.output
    assert "use --run-timeout" in result.output


def test_B4_cancel_timeout_without_wait_names_no_run_timeout(db: Path) -> None:
    """cancel has no --run-timeout: its message must not suggest one."""
    result = run_cli(db, "cancel", "r", "--timeout", "5")
    assert result.exit_code == 2
    assert "--timeout only bounds --wait" in result.output
    assert "--run-timeout" not in result.output


def test_B5_a_finished_runs_untaken_signals_are_never_taken_not_pending(
    rt: Runtime, db: Path
) -> None:
    key = "never-taken"
    run = rt.start(takes_one, key)
    assert gate(f"{key}:started").wait(10)
    for name in ("shipped", "paid", "approved"):
        rt.signal(run.run_id, name, 1)
    gate(key).set()
    assert run.result(timeout=10) == 1
    status = run_cli(db, "runs", "status", run.run_id)
    assert status.exit_code == 0, status.output
    assert "2 never taken (the run ended): shipped, paid" in status.output
    assert "pending" not in status.output.split("signals", 1)[1]
    as_json = json.loads(run_cli(db, "runs", "status", run.run_id, "--json").output)
    assert [s["name"] for s in as_json["signals"]["pending"]] == ["shipped", "paid"]
    assert as_json["signals"]["never_taken"] is True


def test_B5_an_unfinished_runs_signals_are_pending(rt: Runtime, db: Path) -> None:
    key = "still-pending"
    run = rt.start(takes_one, key)
    assert gate(f"{key}:started").wait(10)
    rt.signal(run.run_id, "shipped", 1)
    status = run_cli(db, "runs", "status", run.run_id, "--json")
    assert json.loads(status.output)["signals"]["never_taken"] is False
    assert "1 pending (oldest first): shipped" in run_cli(db, "runs", "status", run.run_id).output
    gate(key).set()
    rt.signal(run.run_id, "approved", 2)
    assert run.result(timeout=10) == 2


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs /proc (Linux)")
def test_P3_a_zombie_process_is_dead() -> None:
    """kill -9 leaves a zombie until its parent reaps it: it runs nothing and
    renews no lease, so it is dead (Erlang/OTP: a dead pid is dead however
    long its exit takes to be noticed)."""
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        assert pid_alive(child.pid)
        os.kill(child.pid, signal.SIGKILL)
        wait_until(lambda: _state(child.pid) == "Z")  # killed, not reaped
        assert not pid_alive(child.pid)
        record = RuntimeRecord(
            owner="rt-zombie",
            pid=child.pid,
            hostname=HOSTNAME,
            started_at=time.time() - 1,
            heartbeat_at=time.time(),
            lease_expires_at=time.time() + 60,
            stopped_at=None,
            version=None,
            pid_ns=PID_NS,
            boot_id=BOOT_ID,
        )
        why = why_dead("rt-zombie", record)
        if record.pid_ns is not None and record.boot_id is not None:
            assert why == f"runtime rt-zombie's process {child.pid} is gone"
    finally:
        child.wait(10)  # reaped: no zombie left behind


def _state(pid: int) -> str:
    """The process's state letter, read here (the test does not trust the code it tests)."""
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]


def test_B1_an_overdue_timer_says_by_how_much(db: Path) -> None:
    """The runtime's virtual clock has not reached the due instant that the
    wall clock has passed: ``runs status`` says it is overdue, and by how much."""
    clock = FakeClock()
    with Runtime(db, clock=clock) as rt:
        run = rt.start(naps)
        wait_until(lambda: any(e.type.value == "timer_started" for e in run.events()))
        wait_until(lambda: "overdue by" in run_cli(db, "runs", "status", run.run_id).output, 15)
        output = run_cli(db, "runs", "status", run.run_id).output
        assert "(due now (overdue))" not in output
        clock.advance(3)
        assert run.result(timeout=10) == "rested"


#: The codes no read of one run can end with.
_NOT_A_READS = ("4 run already", "5 --wait", "6 --run-id", "130 ")


@pytest.mark.parametrize(
    ("args", "has", "has_not"),
    [
        (["runs", "status"], ["0 success", "3 run not found"], _NOT_A_READS),
        (["runs", "tree"], ["3 run not found"], _NOT_A_READS),
        (["runs", "list"], ["0 success", "2 usage"], ("3 run", *_NOT_A_READS)),
        (["runs", "logs"], ["3 run not found", "130 stopped by Ctrl-C"], _NOT_A_READS[:3]),
        (["terminate"], ["3 run not found", "4 run already finished"], ("5 --wait", "6 ")),
        (["signal"], ["3 run not found", "4 run already finished"], ("5 --wait", "6 ")),
        (["cancel"], ["4 run already finished", "5 --wait timed out", "130 "], ("6 ",)),
        (["start"], ["5 --wait timed out", "6 --run-id in use", "130 "], ("3 run", "4 run")),
        (["runs", "restart"], ["3 run not found", "4 run not finished yet", "6 --run-id"], ()),
        (["worker"], ["0 success", "1 error"], ("3 run", "5 --wait", "6 ")),
    ],
)
def test_each_commands_help_lists_only_its_own_exit_codes(
    args: list[str], has: list[str], has_not: tuple[str, ...]
) -> None:
    text = CliRunner().invoke(cli, [*args, "--help"], env={"COLUMNS": "400"}).output
    codes = " ".join(text.split("Exit codes:", 1)[1].split())
    for wanted in has:
        assert wanted in codes, (args, codes)
    for unwanted in has_not:
        assert unwanted not in codes, (args, codes)
