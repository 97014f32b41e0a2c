"""A throw-away PostgreSQL server on the database host of a :class:`~tests.netns.Network`.

The server runs inside the database host's namespace, so it listens on the
bridge address (TCP, for the hosts) and on a Unix socket in its folder (for
the test process, which stays in the root namespace: a socket file is
reached through the file system, whatever the namespace). That is why it is
not the session's cluster (``tests.pg_cluster``), which lives in the root
namespace; it uses the same binaries and the same unprivileged user.

Settings are the throw-away cluster's (no fsync: a crash of the machine is
not under test); everything about connections is the server's default, as
in production: TCP keepalives after two hours of silence. Whatever a cut
link needs (ending a cut-off client's transaction, noticing a dead peer)
the store must ask for itself, on its own sessions.

Invariants: the data folder is a fresh temporary folder owned by the
server's unprivileged user (PostgreSQL refuses to run as root) and removed
by :meth:`Server.stop`; every database :meth:`Server.database` makes has a
new name.
"""

from __future__ import annotations

import secrets
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Final

from tests.netns import DB_ADDRESS, SUBNET, Network
from tests.pg_cluster import PgUnavailable, find_bindir, server_user

PORT: Final = 5432
#: Seconds the server gets to start or stop on a busy machine.
_DEADLINE: Final = 60.0
SERVER_SETTINGS: Final = {
    "listen_addresses": DB_ADDRESS,
    "port": str(PORT),
    "fsync": "off",
    "synchronous_commit": "on",
    "full_page_writes": "off",
    "max_connections": "200",
}


class ServerUnavailable(Exception):
    """No PostgreSQL server binaries, no user to run them as, or no psycopg."""


def _binary(name: str) -> str:
    """A PostgreSQL program, from the folder the session's cluster uses too."""
    try:
        path = find_bindir() / name
    except PgUnavailable as exc:
        raise ServerUnavailable(str(exc)) from exc
    found = str(path) if path.is_file() else shutil.which(name)
    if found is None:
        raise ServerUnavailable(f"PostgreSQL's `{name}` is not installed")
    return found


class Server:
    """One PostgreSQL server on ``network``'s database host; see the module docstring."""

    def __init__(self, network: Network) -> None:
        """Start the server; raises :class:`ServerUnavailable` (nothing was
        started) or ``RuntimeError`` (it did not start; its log says why)."""
        try:
            import psycopg  # noqa: F401, PLC0415 (the hosts' store needs it)
        except ImportError as exc:
            raise ServerUnavailable("psycopg is not installed") from exc
        for tool in ("initdb", "postgres", "pg_isready", "psql"):
            _binary(tool)
        self.network = network
        try:
            account = server_user()  # the session cluster's: postgres, else nobody
        except PgUnavailable as exc:
            raise ServerUnavailable(str(exc)) from exc
        self.user = account.name
        self.folder = Path(tempfile.mkdtemp(prefix="proctor-netns-pg-"))
        self.data = self.folder / "data"
        self._process: subprocess.Popen[bytes] | None = None
        try:
            shutil.chown(self.folder, account.uid, account.gid)
            self._as_user(
                [_binary("initdb"), "-D", str(self.data), "-U", "postgres", "--auth=trust",
                 "-E", "UTF8", "--no-sync"],
            )  # fmt: skip
            with (self.data / "pg_hba.conf").open("a") as hba:
                hba.write(f"host all all {SUBNET} trust\n")
            settings = [f"--{k}={v}" for k, v in SERVER_SETTINGS.items()]
            argv = [
                *self._user_prefix(),
                _binary("postgres"),
                "-D",
                str(self.data),
                f"--unix_socket_directories={self.folder}",
                *settings,
            ]
            self._log = (self.folder / "server.log").open("wb")
            self._process = network.popen(
                "db", argv, stdout=self._log, stderr=subprocess.STDOUT, start_new_session=True
            )
            self._wait_ready()
        except BaseException:
            self.stop()
            raise

    def _user_prefix(self) -> list[str]:
        return ["setpriv", f"--reuid={self.user}", f"--regid={self.user}", "--init-groups"]

    def _as_user(self, argv: list[str]) -> None:
        subprocess.run(
            [*self._user_prefix(), *argv], capture_output=True, check=True, timeout=_DEADLINE
        )

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + _DEADLINE
        while True:
            assert self._process is not None
            if self._process.poll() is not None:
                raise RuntimeError(f"the server exited: {self.log()}")
            ready = subprocess.run(
                [_binary("pg_isready"), "-q", "-h", str(self.folder), "-p", str(PORT)],
                check=False,
                timeout=_DEADLINE,
            )
            if ready.returncode == 0:
                return
            if time.monotonic() > deadline:
                raise RuntimeError(f"the server did not start within {_DEADLINE}s: {self.log()}")
            time.sleep(0.05)

    def log(self) -> str:
        """What the server wrote so far."""
        path = self.folder / "server.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def database(self) -> str:
        """Make a fresh empty database; its name."""
        name = f"proctor_{secrets.token_hex(4)}"
        self.psql("postgres", f"CREATE DATABASE {name}")
        return name

    def psql(self, database: str, sql: str) -> str:
        """Run ``sql`` through the Unix socket; its unaligned output."""
        done = subprocess.run(
            [_binary("psql"), "-X", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-h", str(self.folder),
             "-p", str(PORT), "-U", "postgres", "-d", database, "-c", sql],
            capture_output=True, text=True, check=False, timeout=_DEADLINE,
        )  # fmt: skip
        if done.returncode != 0:
            raise RuntimeError(f"psql: {done.stderr.strip()}")
        return done.stdout

    def tcp_url(self, database: str, **params: str) -> str:
        """The URL the hosts use: TCP to the bridge address; ``params`` become
        libpq connection parameters (``connect_timeout``, ``keepalives_idle``...)."""
        query = "&".join(f"{k}={v}" for k, v in params.items())
        return f"postgresql://postgres@{DB_ADDRESS}:{PORT}/{database}" + (
            f"?{query}" if query else ""
        )

    def socket_url(self, database: str) -> str:
        """The URL the test process uses: the server's Unix socket."""
        return f"postgresql://postgres@/{database}?host={self.folder}&port={PORT}"

    def stop(self) -> None:
        """Stop the server (fast shutdown) and remove its folder; twice is harmless."""
        process, self._process = self._process, None
        if process is not None and process.poll() is None:
            # SIGINT: fast shutdown, which disconnects every client (SIGTERM's
            # "smart" shutdown would wait for them).
            process.send_signal(signal.SIGINT)
            try:
                process.wait(timeout=_DEADLINE)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=_DEADLINE)
        if hasattr(self, "_log"):
            self._log.close()
        shutil.rmtree(self.folder, ignore_errors=True)
