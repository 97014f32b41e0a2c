"""P1: ``Runtime``, ``Client``, the test kit and every CLI command take a store URL,
and no message, exception or log line shows its password.

Peers: SQLAlchemy's ``sqlite:///`` URLs and its password-hiding URL display
(DBOS takes the same URLs); libpq's ``postgresql://`` URLs; Temporal and
DBOS print the address of their server, never its credentials.
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from actors import Client, InvalidArgument, Runtime, StoreError
from actors.testing import ProctorTestKit
from cli import cli
from persistence import open_store
from persistence._opening import POSTGRES_EXTRA
from tests.cli_workflows import add
from tests.conftest import assert_nothing_left
from tests.processes import DEADLINE, ROOT

SECRET = "s3cret"  # noqa: S105 - a fake password the output must never show
#: A PostgreSQL server that is not there: nothing listens on port 1 (connection refused).
NOWHERE = f"postgresql://u:{SECRET}@127.0.0.1:1/x"
NOWHERE_SHOWN = "postgresql://u:***@127.0.0.1:1/x"


@pytest.fixture
def leak_check() -> Iterator[None]:
    before = set(threading.enumerate())
    yield
    assert_nothing_left(before)


@pytest.fixture
def in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The test's working folder: relative store paths land here."""
    monkeypatch.chdir(tmp_path)
    return tmp_path


# -- SQLite URLs ---------------------------------------------------------------------


def test_P1_runtime_client_and_cli_open_the_same_store_by_path_and_by_sqlite_url(
    in_tmp: Path, leak_check: None
) -> None:
    """``sqlite:///rel.db`` (SQLAlchemy: relative) and ``sqlite:////abs`` name the file."""
    with Runtime("sqlite:///orders.db") as rt:
        assert rt.db == "orders.db"
        result = rt.start(add, 2, 3).result(timeout=30)
    assert result == 5
    assert (in_tmp / "orders.db").is_file()
    absolute = f"sqlite:///{in_tmp / 'orders.db'}"  # four slashes: the path is absolute
    with Client(absolute) as client:
        [run] = client.list_runs()
        assert run.result == 5
    for db in ("sqlite:///orders.db", absolute, "sqlite:orders.db", "orders.db"):
        listed = CliRunner().invoke(cli, ["--db", db, "runs", "list"])
        assert listed.exit_code == 0, listed.output
        assert run.run_id in listed.stdout
    from_env = CliRunner().invoke(cli, ["runs", "list"], env={"PROCTOR_DB": "sqlite:///orders.db"})
    assert from_env.exit_code == 0, from_env.output
    assert run.run_id in from_env.stdout
    assert sorted(p.name for p in in_tmp.iterdir()) == [
        "orders.db",
        "orders.db-shm",
        "orders.db-wal",
    ]


def test_P1_the_test_kit_takes_a_sqlite_url(in_tmp: Path) -> None:
    with ProctorTestKit("sqlite:///kit.db") as kit:
        assert kit.db == Path("kit.db")
        assert kit.runtime.start(add, 1, 1).result(timeout=30) == 2
    assert (in_tmp / "kit.db").is_file()


def test_P1_a_missing_sqlite_store_named_by_url_says_so_as_a_path_does(in_tmp: Path) -> None:
    """The CLI's and the Client's "no such file" checks still apply to SQLite URLs."""
    result = CliRunner().invoke(cli, ["--db", "sqlite:///typo.db", "runs", "list"])
    assert result.exit_code == 1
    assert result.stderr == (
        "Error: no Proctor store at sqlite:///typo.db: the file does not exist"
        " (set --db or PROCTOR_DB)\n"
    )
    with pytest.raises(StoreError, match=r"no Proctor store at sqlite:///typo\.db"):
        Client("sqlite:///typo.db")
    assert list(in_tmp.iterdir()) == []


# -- bad targets -----------------------------------------------------------------------

BAD = [
    (f"mysql://root:{SECRET}@h/db", "unknown store URL scheme 'mysql'"),
    ("sqlite://", "names no file"),
    (f"postgresql://u:{SECRET}@h:70000/db", "malformed host or port"),
    (f"postgresql+asyncpg://u:{SECRET}@h/db", "names the driver 'asyncpg'"),
    ("", "an empty store target"),
]


@pytest.mark.parametrize(("db", "says"), BAD)
def test_P1_a_bad_store_target_is_refused_before_anything_is_opened(
    in_tmp: Path, leak_check: None, db: str, says: str
) -> None:
    for opener in (Runtime, Client, ProctorTestKit):
        with pytest.raises(InvalidArgument) as raised:
            opener(db)
        assert says in str(raised.value)
        assert SECRET not in str(raised.value)
    assert list(in_tmp.iterdir()) == []


@pytest.mark.parametrize(("db", "says"), BAD)
@pytest.mark.parametrize(
    "args", [["runs", "list"], ["cancel", "r-1"], ["worker", "tests.cli_workflows"]]
)
def test_P1_a_bad_db_option_is_a_usage_error_that_shows_no_password(
    in_tmp: Path, db: str, says: str, args: list[str]
) -> None:
    invocations: list[dict[str, object]] = [{"args": ["--db", db, *args]}]
    if db:  # an empty PROCTOR_DB is no PROCTOR_DB (click, as shells): the default then
        invocations.append({"args": args, "env": {"PROCTOR_DB": db}})
    for invocation in invocations:
        result = CliRunner().invoke(cli, **invocation)  # type: ignore[arg-type]
        assert result.exit_code == 2, result.output
        assert says in result.stderr
        assert SECRET not in result.output + result.stderr
    assert list(in_tmp.iterdir()) == []


# -- a PostgreSQL store that cannot be reached ---------------------------------------


@pytest.mark.parametrize("opener", [Runtime, Client])
def test_P1_a_runtime_or_client_on_an_unreachable_postgres_store_raises_without_the_password(
    leak_check: None, caplog: pytest.LogCaptureFixture, opener: type[Runtime | Client]
) -> None:
    caplog.set_level(logging.DEBUG)
    with pytest.raises(StoreError) as raised:
        opener(NOWHERE)
    said = str(raised.value)
    assert SECRET not in said
    assert NOWHERE_SHOWN in said
    assert "no connection to the server" in said  # file checks are SQLite's only
    cause = raised.value.__cause__
    while cause is not None:  # a traceback prints the chain too
        assert SECRET not in str(cause)
        cause = cause.__cause__
    assert SECRET not in caplog.text


# Each open of an unreachable server waits out the store's connect timeout
# (10 s): one command per way the CLI opens a store (read, write, create).
@pytest.mark.parametrize(
    "args",
    [
        ["runs", "status", "r-1"],
        ["cancel", "r-1"],
        ["start", "tests.cli_workflows:add", "1", "2"],
    ],
)
def test_P1_a_cli_command_on_an_unreachable_postgres_store_fails_without_the_password(
    args: list[str],
) -> None:
    result = CliRunner().invoke(cli, ["--db", NOWHERE, *args])
    assert result.exit_code == 1, result.output
    assert result.stderr.startswith("Error: ")
    assert NOWHERE_SHOWN in result.stderr
    assert "no connection to the server" in result.stderr  # file checks are SQLite's only
    assert SECRET not in result.output + result.stderr


def test_P1_a_worker_on_an_unreachable_postgres_store_exits_1_without_the_password() -> None:
    """The real process, with ``PROCTOR_DB``, its logging on: nothing prints the password."""
    done = subprocess.run(
        [sys.executable, "-m", "cli", "worker", "tests.cli_workflows"],
        cwd=ROOT,
        env={**os.environ, "PROCTOR_DB": NOWHERE},
        capture_output=True,
        text=True,
        timeout=DEADLINE,
        check=False,
    )
    assert done.returncode == 1, done.stderr
    assert NOWHERE_SHOWN in done.stderr
    assert SECRET not in done.stdout + done.stderr


def test_P1_without_the_postgres_extra_a_postgres_url_says_what_to_install(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A Proctor installed without ``proctor[postgres]`` (no psycopg) names the extra."""
    for name in [
        m for m in sys.modules if m == "psycopg" or m.startswith(("psycopg.", "psycopg_pool"))
    ]:
        monkeypatch.delitem(sys.modules, name)
    for name in [m for m in sys.modules if m.startswith("persistence._pg")]:
        monkeypatch.delitem(sys.modules, name)  # imported again, without psycopg
    monkeypatch.setitem(sys.modules, "psycopg", None)  # import psycopg: ImportError
    monkeypatch.setitem(sys.modules, "psycopg_pool", None)
    with pytest.raises(StoreError) as raised:
        open_store(NOWHERE)
    assert str(raised.value) == f"cannot open {NOWHERE_SHOWN}: {POSTGRES_EXTRA}"
    result = CliRunner().invoke(cli, ["--db", NOWHERE, "runs", "list"])
    assert result.exit_code == 1
    assert result.stderr == f"Error: cannot open {NOWHERE_SHOWN}: {POSTGRES_EXTRA}\n"
