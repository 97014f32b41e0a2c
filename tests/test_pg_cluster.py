"""The PostgreSQL half's test bed (P1: "same semantics, same tests"):
the session's throw-away cluster, a fresh database per test, the store
parametrization (``--store``, ``sqlite_only``), and skip-or-fail without
PostgreSQL. Nothing of Proctor runs here: only the fixtures are proved."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import psycopg
import pytest

from tests.pg_cluster import (
    BINDIR_VARIABLE,
    CI_VARIABLE,
    SUPERUSER,
    PgCluster,
    PgDatabase,
    PgUnavailable,
    find_bindir,
    unavailable,
)
from tests.processes import DEADLINE, ROOT

pytest_plugins = ["pytester"]

#: The databases earlier tests of this module were given (module docstring).
SEEN: list[str] = []


def user_tables(url: str) -> list[tuple[str, str]]:
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            "SELECT table_schema, table_name FROM information_schema.tables"
            " WHERE table_schema NOT IN ('pg_catalog', 'information_schema')"
        ).fetchall()
    return [(str(a), str(b)) for a, b in rows]


def test_P1_the_cluster_runs_as_a_non_root_user_in_a_temporary_folder(
    pg_cluster: PgCluster,
) -> None:
    postmaster = int((pg_cluster.datadir / "postmaster.pid").read_text().split()[0])
    owner = os.stat(f"/proc/{postmaster}").st_uid
    assert owner != 0
    assert owner == pg_cluster.user.uid
    if os.geteuid() != 0:
        assert owner == os.geteuid()
    (data_directory,) = pg_cluster.sql("SHOW data_directory")[0]
    assert Path(data_directory) == pg_cluster.datadir
    assert pg_cluster.folder.name.startswith("proctor-pg-")


def test_P1_the_cluster_is_fast_but_commits_are_synchronous(pg_cluster: PgCluster) -> None:
    settings = dict(
        pg_cluster.sql(
            "SELECT name, setting FROM pg_settings WHERE name = ANY(%s)",
            (
                [
                    "fsync",
                    "synchronous_commit",
                    "full_page_writes",
                    "max_connections",
                    "listen_addresses",
                ],
            ),
        )
    )
    assert settings == {
        "fsync": "off",
        "synchronous_commit": "on",
        "full_page_writes": "off",
        "max_connections": "200",
        "listen_addresses": "127.0.0.1",
    }


@pytest.mark.parametrize("turn", [1, 2, 3])
def test_P1_each_test_gets_an_empty_database_of_its_own(
    pg_database: PgDatabase, pg_url: str, turn: int
) -> None:
    """Each turn sees no table, then leaves one behind: a database shared or
    reused between turns would show it; earlier turns' databases are gone."""
    assert pg_url == pg_database.url
    assert pg_url.startswith("postgresql://postgres@127.0.0.1:")
    assert pg_url.rsplit("/", 1)[1] == pg_database.name
    assert user_tables(pg_url) == []
    assert pg_database.name not in SEEN
    existing = {str(row[0]) for row in pg_database.cluster.sql("SELECT datname FROM pg_database")}
    assert pg_database.name in existing
    assert existing.isdisjoint(SEEN), "an earlier test's database was not dropped"
    with psycopg.connect(pg_url) as conn:
        conn.execute(f"CREATE TABLE left_by_turn_{turn} (x int)")
    SEEN.append(pg_database.name)
    assert user_tables(pg_url) == [("public", f"left_by_turn_{turn}")]


def test_P1_the_cluster_is_reachable_over_tcp_and_its_socket(pg_cluster: PgCluster) -> None:
    with psycopg.connect(pg_cluster.url()) as conn:
        assert conn.execute("SELECT current_user").fetchone() == (SUPERUSER,)
        assert conn.info.host == "127.0.0.1"
    with psycopg.connect(
        host=str(pg_cluster.socket_dir), port=pg_cluster.port, user=SUPERUSER
    ) as conn:
        assert conn.execute("SELECT 1").fetchone() == (1,)


def test_P1_a_restart_drops_connections_and_keeps_the_data(pg_database: PgDatabase) -> None:
    cluster = pg_database.cluster
    with psycopg.connect(pg_database.url, autocommit=True) as conn:
        conn.execute("CREATE TABLE kept (x int)")
        conn.execute("INSERT INTO kept VALUES (42)")
        cluster.restart()
        with pytest.raises(psycopg.OperationalError):
            conn.execute("SELECT 1")
    with psycopg.connect(pg_database.url) as conn:
        assert conn.execute("SELECT x FROM kept").fetchall() == [(42,)]


def test_P1_an_immediate_stop_is_recovered_from_the_wal(pg_database: PgDatabase) -> None:
    """``synchronous_commit=on``: a commit survives a crash of the server."""
    cluster = pg_database.cluster
    with psycopg.connect(pg_database.url, autocommit=True) as conn:
        conn.execute("CREATE TABLE kept (x int)")
        conn.execute("INSERT INTO kept VALUES (7)")
    cluster.stop("immediate")
    assert not cluster.running()
    cluster.start()
    with psycopg.connect(pg_database.url) as conn:
        assert conn.execute("SELECT x FROM kept").fetchall() == [(7,)]


def test_P1_a_setting_is_set_for_a_block_then_reset(pg_database: PgDatabase) -> None:
    cluster = pg_database.cluster

    def statement_timeout() -> str:
        with psycopg.connect(pg_database.url) as conn:
            row = conn.execute("SHOW statement_timeout").fetchone()
        assert row is not None
        return str(row[0])

    with cluster.configured(statement_timeout="50ms"):
        assert statement_timeout() == "50ms"
        with psycopg.connect(pg_database.url) as conn, pytest.raises(psycopg.errors.QueryCanceled):
            conn.execute("SELECT pg_sleep(5)")
    assert statement_timeout() == "0"
    with pytest.raises(ValueError, match="not a setting name"):
        cluster.set_config("x; DROP DATABASE postgres", "1")


def test_P1_terminate_backends_drops_a_databases_connections(pg_database: PgDatabase) -> None:
    with psycopg.connect(pg_database.url, autocommit=True) as conn:
        assert pg_database.cluster.terminate_backends(pg_database.name) == 1
        with pytest.raises(psycopg.OperationalError):
            conn.execute("SELECT 1")


def test_P1_the_database_is_dropped_even_with_a_connection_left_open(
    pg_cluster: PgCluster,
) -> None:
    database = pg_cluster.create_database("left_open")
    conn = psycopg.connect(database.url)
    try:
        pg_cluster.drop_database(database.name)
        names = {str(r[0]) for r in pg_cluster.sql("SELECT datname FROM pg_database")}
        assert database.name not in names
    finally:
        conn.close()


def test_P1_the_binaries_are_looked_up_where_the_override_says(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, pg_cluster: PgCluster
) -> None:
    monkeypatch.setenv(BINDIR_VARIABLE, str(tmp_path))
    with pytest.raises(PgUnavailable, match=BINDIR_VARIABLE):
        find_bindir()
    monkeypatch.setenv(BINDIR_VARIABLE, str(pg_cluster.bindir))
    assert find_bindir() == pg_cluster.bindir


def test_P1_without_binaries_the_lookup_says_where_it_looked(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(BINDIR_VARIABLE, raising=False)
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(PgUnavailable, match=r"pg_config --bindir, PATH and .*/\*/bin"):
        find_bindir(distribution_root=tmp_path)
    for version in ("9.6", "13", "15"):
        folder = tmp_path / version / "bin"
        folder.mkdir(parents=True)
        for tool in ("initdb", "pg_ctl", "postgres"):
            (folder / tool).touch()
    assert find_bindir(distribution_root=tmp_path) == tmp_path / "15" / "bin"


def test_P1_without_postgresql_a_developer_skips_but_ci_fails(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv(CI_VARIABLE, raising=False)
    with pytest.raises(pytest.skip.Exception, match="PostgreSQL unavailable: why"):
        unavailable("why")
    monkeypatch.setenv(CI_VARIABLE, "true")
    with pytest.raises(pytest.fail.Exception, match="PostgreSQL is required in CI"):
        unavailable("why")


@pytest.mark.slow
@pytest.mark.timeout(120)
@pytest.mark.parametrize(("ci", "outcome"), [("", "1 skipped"), ("1", "1 error")])
def test_P1_the_fixture_skips_without_binaries_except_under_ci(
    tmp_path: Path, ci: str, outcome: str
) -> None:
    """End to end, in a pytest of its own: a postgres test where no binaries
    are found is skipped for a developer and an error in CI."""
    env = {k: v for k, v in os.environ.items() if k != CI_VARIABLE}
    env[BINDIR_VARIABLE] = str(tmp_path)
    if ci:
        env[CI_VARIABLE] = ci
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-p",
            "no:cacheprovider",
            "-q",
            "-rs",
            f"{Path(__file__).name}::test_P1_the_cluster_is_fast_but_commits_are_synchronous",
        ],
        cwd=ROOT / "tests",
        env=env,
        capture_output=True,
        text=True,
        timeout=DEADLINE * 2,
        check=False,
    )
    assert outcome in done.stdout, done.stdout + done.stderr
    expected = "PostgreSQL is required in CI" if ci else "PostgreSQL unavailable"
    assert expected in done.stdout, done.stdout


STORE_TESTS = """
import pytest

def test_both(db):
    pass

@pytest.mark.sqlite_only("reads PRAGMA journal_mode")
def test_file(db):
    pass

def test_no_store():
    pass
"""


@pytest.fixture
def store_project(pytester: pytest.Pytester) -> pytest.Pytester:
    """A project with the store plugin and a ``db`` fixture (no cluster)."""
    pytester.makeini(
        "[pytest]\nmarkers =\n    sqlite_only(reason): SQLite only\naddopts = --strict-markers\n"
    )
    pytester.makeconftest(
        "import pytest\n"
        'pytest_plugins = ["tests.stores"]\n'
        '@pytest.fixture(params=["sqlite", "postgres"])\n'
        "def db(request):\n"
        "    return request.param\n"
    )
    pytester.makepyfile(test_stores=STORE_TESTS)
    return pytester


@pytest.mark.parametrize(
    ("option", "passed", "skipped", "deselected"),
    [("all", 4, 1, 0), ("sqlite", 3, 0, 2), ("postgres", 1, 1, 3)],
)
def test_P1_store_option_runs_one_half_and_sqlite_only_skips_with_its_reason(
    store_project: pytest.Pytester, option: str, passed: int, skipped: int, deselected: int
) -> None:
    result = store_project.runpytest("--store", option, "-rs", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=passed, skipped=skipped, deselected=deselected)
    if skipped:
        result.stdout.fnmatch_lines(["*SQLite only: reads PRAGMA journal_mode*"])


def test_P1_sqlite_only_without_a_reason_is_a_usage_error(
    store_project: pytest.Pytester,
) -> None:
    store_project.makepyfile(
        test_stores="import pytest\n@pytest.mark.sqlite_only\ndef test_file(db):\n    pass\n"
    )
    result = store_project.runpytest("-p", "no:cacheprovider")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*sqlite_only needs a reason*"])


def test_P1_the_db_fixture_is_a_path_on_sqlite_and_a_url_on_postgres(
    request: pytest.FixtureRequest, db: Path | str
) -> None:
    store = request.node.callspec.params["db"]
    if store == "sqlite":
        assert isinstance(db, Path)
        assert not db.exists()
    else:
        assert isinstance(db, str)
        assert db.startswith("postgresql://")
        assert user_tables(db) == []
