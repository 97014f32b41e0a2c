"""A throw-away PostgreSQL cluster for the test session, and a fresh database per test.

One concept: the server the PostgreSQL half of the suite runs against. The
session fixture ``pg_cluster`` runs ``initdb`` into a fresh temporary folder
and starts ``postgres`` on a free loopback port and a Unix socket in that
folder; the function fixture ``pg_database`` (and ``pg_url``, its URL) gives
each test an empty database of its own, dropped at the test's end.

Invariants:

- The server never runs as root (PostgreSQL refuses to): as root it runs as
  ``postgres`` if that user exists, else ``nobody``, and the folder is theirs;
  otherwise it runs as the current user.
- It is a test server, not a durable one: ``fsync=off``,
  ``full_page_writes=off`` (a crash of the machine loses it, which is fine),
  but ``synchronous_commit=on``, so a commit the store reports is in the
  server's WAL as in production, and a *server* restart loses nothing.
- Authentication is ``trust`` on loopback and the socket only; no password
  exists, so none can leak into a test's output.
- Nothing outlives the session: the server is stopped and its folder removed
  at the session's end, even when the session fails; a watchdog process
  does the same if the pytest process itself dies (``kill -9``).
- Where no PostgreSQL server binaries are installed the fixtures skip with
  the reason, except when the environment variable ``CI`` is set: then they
  fail, so CI never silently runs only the SQLite half.

The cluster object exposes what the fault tests need: ``restart()``,
``stop()``/``start()``, ``set_config()`` (``ALTER SYSTEM`` and a reload),
``sql()`` as the superuser, and ``terminate_backends()``.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import pwd
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

#: Set by every CI system (GitHub Actions, GitLab, Buildkite, ...); here it
#: turns "PostgreSQL is not installed" from a skip into a failure.
CI_VARIABLE = "CI"
#: Overrides where the server binaries are (:func:`find_bindir`).
BINDIR_VARIABLE = "PROCTOR_TEST_PG_BINDIR"
#: Overrides where the cluster's folder is made (:func:`cluster_parent`).
TMPDIR_VARIABLE = "PROCTOR_TEST_PG_TMPDIR"
#: The cluster's superuser (``initdb -U``); the store's URL connects as it.
SUPERUSER = "postgres"
#: Seconds allowed for initdb, a start, a stop.
DEADLINE = 60.0
#: Settings of a fast, honest test server (module docstring).
SETTINGS: dict[str, str] = {
    "fsync": "off",
    "synchronous_commit": "on",
    "full_page_writes": "off",
    "max_connections": "200",
    # The folder is in memory (cluster_parent): bound the WAL kept there.
    "max_wal_size": "256MB",
    "min_wal_size": "32MB",
    # Shared memory segments in the data folder, not /dev/shm: removed with it.
    "dynamic_shared_memory_type": "mmap",
    # The store's own connections are few; the fault tests fill the rest.
    "superuser_reserved_connections": "3",
    # Keep a test's log readable if it fails: one line per problem.
    "log_min_messages": "warning",
    "log_line_prefix": "%m [%p] %d ",
}
#: initdb's binaries, found as :func:`find_bindir` says.
REQUIRED = ("initdb", "pg_ctl", "postgres")


class PgUnavailable(Exception):
    """No PostgreSQL server binaries (or no psycopg) on this machine."""


def find_bindir(distribution_root: Path = Path("/usr/lib/postgresql")) -> Path:
    """The folder holding ``initdb``, ``pg_ctl`` and ``postgres``.

    ``$PROCTOR_TEST_PG_BINDIR`` if set (and then only there: a developer who
    names a folder means it). Else, in order: ``pg_config --bindir``;
    ``initdb`` on ``PATH`` (symlinks resolved); the newest
    ``DISTRIBUTION_ROOT/*/bin`` (Debian and Ubuntu install there).

    Raises:
        PgUnavailable: none of them holds all three.
    """
    candidates: list[Path] = []
    override = os.environ.get(BINDIR_VARIABLE)
    if override:
        candidates.append(Path(override))
    else:
        pg_config = shutil.which("pg_config")
        if pg_config is not None:
            with contextlib.suppress(OSError, subprocess.SubprocessError):
                out = subprocess.run(
                    [pg_config, "--bindir"], capture_output=True, text=True, timeout=10, check=True
                )
                candidates.append(Path(out.stdout.strip()))
        initdb = shutil.which("initdb")
        if initdb is not None:
            candidates.append(Path(initdb).resolve().parent)
        candidates.extend(
            sorted(
                distribution_root.glob("*/bin"),
                key=lambda p: [int(n) for n in re.findall(r"\d+", p.parent.name)] or [0],
                reverse=True,
            )
        )
    for folder in candidates:
        if all((folder / name).is_file() for name in REQUIRED):
            return folder
    where = (
        f"${BINDIR_VARIABLE} ({override})"
        if override
        else f"pg_config --bindir, PATH and {distribution_root}/*/bin"
    )
    raise PgUnavailable(
        f"no PostgreSQL server binaries ({', '.join(REQUIRED)}) in {where}; install them "
        "with scripts/install-system-deps (the README's commands run it)"
    )


@dataclass(frozen=True, slots=True)
class ServerUser:
    """The unprivileged account the server runs as."""

    name: str
    uid: int
    gid: int


def server_user() -> ServerUser:
    """``postgres`` (or ``nobody``) when root, else the current user."""
    if os.geteuid() != 0:
        entry = pwd.getpwuid(os.geteuid())
        return ServerUser(entry.pw_name, entry.pw_uid, entry.pw_gid)
    for name in ("postgres", "nobody"):
        with contextlib.suppress(KeyError):
            entry = pwd.getpwnam(name)
            return ServerUser(entry.pw_name, entry.pw_uid, entry.pw_gid)
    raise PgUnavailable("running as root, and neither a 'postgres' nor a 'nobody' user exists")


def cluster_parent() -> Path | None:
    """Where the cluster's folder goes: ``$PROCTOR_TEST_PG_TMPDIR``, else
    ``/dev/shm`` (memory) when it is a writable folder, else the system's
    temporary folder (``None``).

    In memory, because fsync is off anyway and a disk shared with other
    work made ``CREATE DATABASE`` 20x slower (225 ms against 10.5 ms per
    test's database, median of 40, on the 2-core CI machine).
    """
    if os.environ.get(TMPDIR_VARIABLE):
        return Path(os.environ[TMPDIR_VARIABLE])
    shm = Path("/dev/shm")  # noqa: S108 (memory, not a shared name: mkdtemp makes the folder)
    if shm.is_dir() and os.access(shm, os.W_OK | os.X_OK):
        return shm
    return None


def free_port() -> int:
    """A loopback TCP port nobody listens on right now (another process may
    take it before the server binds it: :meth:`PgCluster.start` retries)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


#: What the watchdog runs: wait for EOF on stdin (the pytest process closed
#: the pipe, or died), then stop the server and remove its folder.
_WATCHDOG = """
import shutil, subprocess, sys
sys.stdin.buffer.read()
pg_ctl, data, folder, uid, gid = sys.argv[1:]
subprocess.run([pg_ctl, "stop", "-D", data, "-m", "immediate", "-w", "-t", "30"],
               user=int(uid), group=int(gid), extra_groups=[] if int(uid) else None,
               stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
               check=False)
shutil.rmtree(folder, ignore_errors=True)
"""


@dataclass(frozen=True, slots=True)
class PgDatabase:
    """One test's empty database on the session's cluster."""

    name: str
    url: str
    cluster: PgCluster


class PgCluster:
    """A PostgreSQL server in a temporary folder, owned by this process.

    Attributes:
        bindir: the server binaries' folder.
        folder: the temporary folder (removed by :meth:`destroy`).
        datadir: the cluster's data directory (``folder/data``).
        socket_dir: where the server's Unix socket is (``folder``).
        port: the loopback TCP port (chosen free at :meth:`start`).
        user: the unprivileged account the server runs as.
        log_path: the server's log (read it when a test fails).
    """

    def __init__(
        self, bindir: Path, *, listen_addresses: str = "127.0.0.1", parent: Path | None = None
    ) -> None:
        self.bindir = bindir
        self.user = server_user()
        self.listen_addresses = listen_addresses
        self.folder = Path(tempfile.mkdtemp(prefix="proctor-pg-", dir=parent))
        self.datadir = self.folder / "data"
        self.socket_dir = self.folder
        self.log_path = self.folder / "server.log"
        self.port = 0
        self._base_conf = ""
        self._strategy: str | None = None
        self._names = itertools.count(1)
        self._admin: Any = None  # psycopg.Connection, lazily (re)opened
        self._watchdog: subprocess.Popen[bytes] | None = None
        os.chown(self.folder, self.user.uid, self.user.gid)
        self.folder.chmod(0o700)

    # -- lifecycle -----------------------------------------------------------

    def init(self) -> None:
        """``initdb`` (trust authentication, no fsync) and our settings."""
        self._watch()
        self._run_as_server(
            "initdb",
            "-D",
            str(self.datadir),
            "-U",
            SUPERUSER,
            "-A",
            "trust",
            "-E",
            "UTF8",
            "--locale=C",
            "--no-sync",
            "--no-instructions",
        )
        self._base_conf = (self.datadir / "postgresql.conf").read_text()

    def start(self, *, attempts: int = 5) -> None:
        """Start the server and wait until it accepts a connection.

        The port is picked free; if another process binds it first, retried
        on another (``attempts`` in all).

        Raises:
            RuntimeError: it did not start (the server log is in the message).
        """
        for attempt in range(attempts):
            if self.port == 0 or attempt > 0:
                self._configure(free_port())
            done = self._pg_ctl("start", "-w", "-t", str(int(DEADLINE)), "-l", str(self.log_path))
            if done.returncode == 0:
                self._wait_ready()
                return
            if "already in use" not in self.log():
                break
        raise RuntimeError(f"the test PostgreSQL server did not start:\n{self.log()[-4000:]}")

    def stop(self, mode: str = "fast") -> None:
        """``pg_ctl stop -m MODE`` (``smart``, ``fast`` or ``immediate``).

        ``immediate`` is a crash of the server: it recovers from its WAL at
        the next start.
        """
        self._close_admin()
        done = self._pg_ctl("stop", "-m", mode, "-w", "-t", str(int(DEADLINE)))
        if done.returncode != 0:
            raise RuntimeError(f"pg_ctl stop failed: {done.stdout}{done.stderr}")

    def restart(self, mode: str = "fast") -> None:
        """Stop (``mode`` as :meth:`stop`) and start again on the same port:
        every connection drops; the databases and their data stay."""
        self.stop(mode)
        done = self._pg_ctl("start", "-w", "-t", str(int(DEADLINE)), "-l", str(self.log_path))
        if done.returncode != 0:
            raise RuntimeError(f"the test PostgreSQL server did not restart:\n{self.log()[-4000:]}")
        self._wait_ready()

    def running(self) -> bool:
        return self._pg_ctl("status").returncode == 0

    def destroy(self) -> None:
        """Stop the server (if it runs) and remove the folder. Idempotent."""
        self._close_admin()
        if self.datadir.exists() and self.running():
            done = self._pg_ctl("stop", "-m", "fast", "-w", "-t", "30")
            if done.returncode != 0:
                self._pg_ctl("stop", "-m", "immediate", "-w", "-t", "30")
        shutil.rmtree(self.folder, ignore_errors=True)
        if self._watchdog is not None:
            assert self._watchdog.stdin is not None
            self._watchdog.stdin.close()
            self._watchdog.wait(timeout=DEADLINE)
            self._watchdog = None

    # -- SQL as the superuser ---------------------------------------------------

    def url(self, dbname: str = "postgres", *, user: str = SUPERUSER) -> str:
        """``postgresql://USER@127.0.0.1:PORT/DBNAME`` (trust: no password)."""
        return f"postgresql://{user}@127.0.0.1:{self.port}/{dbname}"

    def sql(
        self, query: str, params: Sequence[object] = (), *, dbname: str = "postgres"
    ) -> list[tuple[Any, ...]]:
        """Run one statement as the superuser in autocommit; its rows (or [])."""
        import psycopg  # noqa: PLC0415 (the SQLite half runs without it)

        if dbname != "postgres":
            with psycopg.connect(self._dsn(dbname), autocommit=True) as conn:
                cur = conn.execute(query, params)  # type: ignore[arg-type]
                return cur.fetchall() if cur.description else []
        if self._admin is None or self._admin.closed or self._admin.broken:
            self._admin = psycopg.connect(self._dsn("postgres"), autocommit=True)
        cur = self._admin.execute(query, params)
        return cur.fetchall() if cur.description else []

    def set_config(self, name: str, value: str | None) -> None:
        """``ALTER SYSTEM SET name = value`` (``None``: ``RESET``), then
        reload. Settings that need a restart take effect at :meth:`restart`.
        The cluster is shared by the session: a test restores what it sets
        (:meth:`configured`)."""
        if not re.fullmatch(r"[a-z_.]+", name):
            raise ValueError(f"not a setting name: {name!r}")
        if value is None:
            self.sql(f"ALTER SYSTEM RESET {name}")
        else:
            quoted = value.replace("'", "''")
            self.sql(f"ALTER SYSTEM SET {name} = '{quoted}'")
        self.sql("SELECT pg_reload_conf()")

    @contextlib.contextmanager
    def configured(self, **settings: str) -> Iterator[None]:
        """Settings for the ``with`` block (reloaded), reset at its end."""
        for name, value in settings.items():
            self.set_config(name, value)
        try:
            yield
        finally:
            for name in settings:
                self.set_config(name, None)

    def terminate_backends(self, dbname: str) -> int:
        """Drop every connection to ``dbname`` (``pg_terminate_backend``), as a
        server-side failure would; how many there were."""
        rows = self.sql(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
            " WHERE datname = %s AND pid <> pg_backend_pid()",
            (dbname,),
        )
        return int(rows[0][0])

    def create_database(self, hint: str = "") -> PgDatabase:
        """A new, empty database: ``template0`` copied file by file
        (``STRATEGY FILE_COPY``), 10.5 ms against 13.5 ms for ``WAL_LOG``
        (median of 40 on the 2-core CI machine); dropping one takes 4.4 ms."""
        slug = re.sub(r"[^a-z0-9]+", "_", hint.lower()).strip("_")
        name = f"t{next(self._names):05d}_{slug}"[:63].rstrip("_")
        self.sql(f'CREATE DATABASE "{name}" TEMPLATE template0 {self._copy_strategy()}')
        return PgDatabase(name=name, url=self.url(name), cluster=self)

    def drop_database(self, name: str) -> None:
        """``DROP DATABASE ... WITH (FORCE)``: connections a test left are cut."""
        self.sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""

    # -- internals ---------------------------------------------------------------

    def _copy_strategy(self) -> str:
        # STRATEGY exists from PostgreSQL 15; FILE_COPY is the older default.
        if self._strategy is None:
            version = int(self.sql("SHOW server_version_num")[0][0])
            self._strategy = "STRATEGY FILE_COPY" if version >= 150000 else ""
        return self._strategy

    def _dsn(self, dbname: str) -> str:
        # The Unix socket: no TCP, and it works while the port is being probed.
        return f"host={self.socket_dir} port={self.port} user={SUPERUSER} dbname={dbname}"

    def _configure(self, port: int) -> None:
        self.port = port
        settings = {
            **SETTINGS,
            "port": str(port),
            "listen_addresses": self.listen_addresses,
            "unix_socket_directories": str(self.socket_dir),
        }
        # Every setting accepts a quoted value; none of ours holds a quote.
        lines = [f"{k} = '{v}'" for k, v in settings.items()]
        text = self._base_conf + "\n# the test cluster's settings\n" + "\n".join(lines) + "\n"
        (self.datadir / "postgresql.conf").write_text(text)

    def _wait_ready(self) -> None:
        import psycopg  # noqa: PLC0415

        deadline = time.monotonic() + DEADLINE
        while True:
            try:
                psycopg.connect(self._dsn("postgres"), connect_timeout=5).close()
                return
            except psycopg.OperationalError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)  # polling a server start; no event to wait on

    def _close_admin(self) -> None:
        if self._admin is not None:
            with contextlib.suppress(Exception):
                self._admin.close()
            self._admin = None

    def _pg_ctl(self, *args: str) -> subprocess.CompletedProcess[str]:
        return self._run_as_server("pg_ctl", *args, "-D", str(self.datadir), check=False)

    def _run_as_server(
        self, tool: str, *args: str, check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        root = os.geteuid() == 0
        done = subprocess.run(
            [str(self.bindir / tool), *args],
            user=self.user.uid if root else None,
            group=self.user.gid if root else None,
            extra_groups=[] if root else None,
            cwd=self.folder,
            env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LC_ALL": "C", "TZ": "UTC"},
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=DEADLINE,
            check=False,
        )
        if check and done.returncode != 0:
            raise RuntimeError(f"{tool} failed ({done.returncode}): {done.stdout}{done.stderr}")
        return done

    def _watch(self) -> None:
        """Start the watchdog that cleans up if this process dies first."""
        self._watchdog = subprocess.Popen(
            [
                sys.executable,
                "-c",
                _WATCHDOG,
                str(self.bindir / "pg_ctl"),
                str(self.datadir),
                str(self.folder),
                str(self.user.uid),
                str(self.user.gid),
            ],
            stdin=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,  # a Ctrl-C to pytest's group leaves it to clean up
        )


def unavailable(reason: str) -> None:
    """Skip, or under CI fail: CI never silently skips the PostgreSQL half."""
    if os.environ.get(CI_VARIABLE):
        pytest.fail(f"PostgreSQL is required in CI ({CI_VARIABLE} is set): {reason}")
    pytest.skip(f"PostgreSQL unavailable: {reason}")


def start_cluster() -> PgCluster:
    """Find the binaries, initdb and start a cluster (the session fixture's body).

    Raises:
        PgUnavailable: no binaries, no psycopg, or no unprivileged user.
        RuntimeError: they exist but the server did not start.
    """
    try:
        import psycopg  # noqa: F401, PLC0415
    except ImportError as exc:
        raise PgUnavailable(
            "psycopg is not installed (pip install -e '.[dev]' installs it)"
        ) from exc
    cluster = PgCluster(find_bindir(), parent=cluster_parent())
    try:
        cluster.init()
        cluster.start()
    except BaseException:
        cluster.destroy()
        raise
    return cluster


@pytest.fixture(scope="session")
def pg_cluster() -> Iterator[PgCluster]:
    """The session's PostgreSQL server, started on first use."""
    try:
        cluster = start_cluster()
    except PgUnavailable as exc:
        unavailable(str(exc))
        raise  # unreachable: skip and fail raise
    try:
        yield cluster
    finally:
        cluster.destroy()


@pytest.fixture
def pg_database(pg_cluster: PgCluster, request: pytest.FixtureRequest) -> Iterator[PgDatabase]:
    """An empty database of this test's own, dropped (WITH FORCE) at its end."""
    database = pg_cluster.create_database(request.node.name)
    try:
        yield database
    finally:
        if not pg_cluster.running():  # a fault test stopped it: the next test needs it
            pg_cluster.start()
        pg_cluster.drop_database(database.name)


@pytest.fixture
def pg_url(pg_database: PgDatabase) -> str:
    """The URL of this test's empty database: ``postgresql://postgres@127.0.0.1:PORT/NAME``."""
    return pg_database.url
