"""P1 on a real PostgreSQL server: a URL with a password works everywhere a
store is named, and nothing Proctor prints or logs shows the password.

The test cluster trusts loopback logins, so a password in the URL is sent to
no one and refused by no one: it is there only to be hidden. Peers: libpq
ignores a password the server does not ask for; SQLAlchemy shows such a URL
as ``postgresql://user:***@host/db``.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from actors import Client, Runtime, RuntimeClosed
from actors.testing import ProctorTestKit
from cli import cli
from persistence import redact
from tests.cli_workflows import add
from tests.conftest import assert_nothing_left, wait_until
from tests.processes import DEADLINE, ROOT

# The session's throw-away cluster (its fixtures are registered by the conftest).
pytest.importorskip("tests.pg_cluster", reason="the PostgreSQL test cluster is not available")

SECRET = "s3cret-Zq9"  # noqa: S105 - a fake password the output must never show


@pytest.fixture
def url(pg_url: str) -> str:
    """The test database's URL with a password in it."""
    scheme, _, rest = pg_url.partition("://")
    user, _, where = rest.partition("@")
    return f"{scheme}://{user}:{SECRET}@{where}"


@pytest.fixture
def shown(url: str) -> str:
    said = redact(url)
    assert SECRET not in said
    assert ":***@" in said
    return said


@pytest.fixture
def leak_check() -> Iterator[None]:
    before = set(threading.enumerate())
    yield
    assert_nothing_left(before)


def test_P1_runtime_client_and_cli_work_on_a_postgres_url_and_never_show_its_password(
    url: str, shown: str, leak_check: None, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    runner = CliRunner()
    # A reading command before any runtime made the store: not a Proctor store yet.
    empty = runner.invoke(cli, ["--db", url, "runs", "list"])
    assert empty.exit_code == 1, empty.output
    assert shown in empty.stderr
    with Runtime(url) as rt:
        none_yet = runner.invoke(cli, ["--db", url, "runs", "list"])
        assert none_yet.exit_code == 0, none_yet.output
        assert none_yet.stdout == f"no runs in {shown}\n"
        assert rt.start(add, 2, 3).result(timeout=30) == 5
    with Client(url) as client:
        [run] = client.list_runs()
    with pytest.raises(RuntimeClosed) as closed:
        client.list_runs()
    assert shown in str(closed.value)
    outputs = [empty.output + empty.stderr, str(closed.value), none_yet.output]
    for args, code in (
        (["runs", "list"], 0),
        (["runs", "list", "--status", "failed"], 0),
        (["runs", "status", run.run_id], 0),
        (["runs", "status", "no-such-run"], 3),
        (["cancel", "no-such-run"], 3),
        (["start", "tests.cli_workflows:add", "1", "2"], 0),
    ):
        result = runner.invoke(cli, ["--db", url, *args])
        assert result.exit_code == code, (args, result.output)
        outputs.append(result.output + result.stderr)
    from_env = runner.invoke(cli, ["runs", "status", "no-such-run"], env={"PROCTOR_DB": url})
    assert from_env.exit_code == 3
    assert from_env.stderr == f"Error: no run with id 'no-such-run' in {shown}\n"
    outputs.append(from_env.output + from_env.stderr)
    assert run.run_id in outputs[3]
    for said in [*outputs, caplog.text]:
        assert SECRET not in said


def test_P1_the_test_kit_takes_a_postgres_url(url: str) -> None:
    with ProctorTestKit(url) as kit:
        assert kit.db == url  # a str: Path would fold its //
        assert kit.runtime.start(add, 1, 1).result(timeout=30) == 2


def test_P1_a_worker_on_a_postgres_url_shows_it_without_its_password(
    url: str, shown: str, tmp_path: Path
) -> None:
    """The worker's banner and its logs (its real process, from ``PROCTOR_DB``)."""
    log = tmp_path / "worker.log"
    with log.open("w") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "cli", "worker", "tests.cli_workflows"],
            cwd=ROOT,
            env={**os.environ, "PROCTOR_DB": url},
            stdout=out,
            stderr=subprocess.STDOUT,
            text=True,
        )
    try:
        wait_until(lambda: " serving: " in log.read_text(), timeout=DEADLINE)
        started = CliRunner().invoke(
            cli, ["--db", url, "start", "tests.cli_workflows:add", "4", "5", "--wait"]
        )
        assert started.exit_code == 0, started.output
        assert "9" in started.stdout
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=DEADLINE)
    said = log.read_text()
    assert f" on {shown}, serving: " in said
    assert SECRET not in said + started.output
