"""A throw-away PostgreSQL server for the benchmarks, durable as a production one.

Unlike the test suite's cluster (``fsync=off`` for speed), this one runs with
the settings a comparison at equal durability needs: ``fsync=on``,
``synchronous_commit=on``, ``full_page_writes=on`` and the platform's default
``wal_sync_method``, each read back from the running server with ``SHOW``
and printed beside the numbers. It lives in a temp folder (``initdb`` as
the unprivileged user ``postgres``, or ``$PROCTOR_BENCH_PG_USER``: the server
refuses to run as root), listens on a free loopback port and a Unix socket
in that folder, trusts local connections, and is stopped and deleted on exit.

Only the server's command-line tools are used (``initdb``, ``pg_ctl``,
``psql``), so the script that drives the benchmark needs no driver.

    python benchmarks/pg_server.py      # start one, print its URL, stop on Ctrl-C

Invariant: a :class:`Server` that :meth:`Server.require_durable` accepted
runs with ``fsync`` and ``synchronous_commit`` on: every commit a benchmark
counts is on disk before it is acknowledged.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

#: The server settings every benchmark records (``SHOW name``).
DURABILITY_SETTINGS = (
    "fsync",
    "synchronous_commit",
    "wal_sync_method",
    "full_page_writes",
    "wal_level",
    "shared_buffers",
    "max_connections",
    "server_version",
)


def _bin(tool: str) -> str:
    for folder in sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True):
        if (folder / tool).exists():
            return str(folder / tool)
    found = shutil.which(tool)
    if found is None:
        raise SystemExit(f"{tool} not found: install PostgreSQL's server package")
    return found


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class Server:
    """A running PostgreSQL server, reached through its admin URL."""

    def __init__(self, admin_url: str) -> None:
        self.admin_url = admin_url

    @classmethod
    def existing(cls, admin_url: str) -> Server:
        return cls(admin_url)

    def psql(self, sql: str, *, database: str | None = None) -> str:
        url = self.admin_url if database is None else self.url(database)
        done = subprocess.run(
            [_bin("psql"), url, "-v", "ON_ERROR_STOP=1", "-Atc", sql],
            capture_output=True,
            text=True,
            check=False,
        )
        if done.returncode != 0:
            raise RuntimeError(f"psql {sql!r}: {done.stderr.strip()}")
        return done.stdout.strip()

    def url(self, database: str) -> str:
        base, _, query = self.admin_url.partition("?")
        base = base.rsplit("/", 1)[0]
        return f"{base}/{database}" + (f"?{query}" if query else "")

    def create_database(self, name: str) -> str:
        """A new empty database ``name`` (dropped first if it exists); its URL."""
        self.psql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        self.psql(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def settings(self) -> dict[str, str]:
        return {name: self.psql(f"SHOW {name}") for name in DURABILITY_SETTINGS}

    def describe(self) -> str:
        facts = self.settings()
        return ", ".join(f"{k}={v}" for k, v in facts.items())

    def require_durable(self) -> None:
        facts = self.settings()
        if facts["fsync"] != "on" or facts["synchronous_commit"] != "on":
            raise SystemExit(
                f"the server runs with fsync={facts['fsync']},"
                f" synchronous_commit={facts['synchronous_commit']}: not the equal"
                " durability a comparison needs (both must be on)"
            )


def _user() -> tuple[str, int, int]:
    name = os.environ.get("PROCTOR_BENCH_PG_USER", "postgres")
    try:
        entry = pwd.getpwnam(name)
    except KeyError:
        raise SystemExit(
            f"no user {name!r} to run PostgreSQL as (it refuses root): install the"
            " postgresql package, or set PROCTOR_BENCH_PG_USER to an unprivileged user"
        ) from None
    return name, entry.pw_uid, entry.pw_gid


def _as_user(command: list[str], user: str) -> list[str]:
    return command if os.geteuid() != 0 else ["runuser", "-u", user, "--", *command]


@contextlib.contextmanager
def throwaway(*, max_connections: int = 300) -> Iterator[Server]:
    """Start a durable server in a temp folder; stop and delete it on exit."""
    user, uid, gid = _user()
    folder = Path(tempfile.mkdtemp(prefix="proctor-bench-pg-"))
    data, log = folder / "data", folder / "server.log"
    if os.geteuid() == 0:
        os.chown(folder, uid, gid)
    port = _free_port()
    initdb = [_bin("initdb"), "-D", str(data), "-U", "postgres", "--auth=trust", "-E", "UTF8"]
    subprocess.run(_as_user(initdb, user), check=True, capture_output=True)
    options = " ".join(
        [
            "-c fsync=on",
            "-c synchronous_commit=on",
            "-c full_page_writes=on",
            f"-c max_connections={max_connections}",
            "-c listen_addresses=127.0.0.1",
            f"-c port={port}",
            f"-c unix_socket_directories={folder}",
        ]
    )
    start = [_bin("pg_ctl"), "-D", str(data), "-l", str(log), "-w", "-o", options, "start"]
    try:
        subprocess.run(_as_user(start, user), check=True, capture_output=True)
    except subprocess.CalledProcessError:
        print(log.read_text() if log.exists() else "no server log")
        shutil.rmtree(folder, ignore_errors=True)
        raise
    server = Server(f"postgresql://postgres@127.0.0.1:{port}/postgres")
    try:
        server.require_durable()
        yield server
    finally:
        stop = [_bin("pg_ctl"), "-D", str(data), "-m", "immediate", "-w", "stop"]
        subprocess.run(_as_user(stop, user), check=False, capture_output=True)
        shutil.rmtree(folder, ignore_errors=True)


def main() -> None:
    with throwaway() as server:
        print(server.admin_url)
        print(server.describe(), flush=True)
        with contextlib.suppress(KeyboardInterrupt):
            signal.sigwait({signal.SIGINT, signal.SIGTERM})


if __name__ == "__main__":
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT, signal.SIGTERM})
    main()
