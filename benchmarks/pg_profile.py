"""Where a sequential 3-step run's time goes on PostgreSQL, for Proctor and DBOS.

    python3 benchmarks/pg_profile.py [--runs 300] [--systems proctor dbos]

On one throw-away durable server (``pg_server.py``), each system runs
``--runs`` sequential 3-step runs (``peers/sys_<system>.py sequential``) on
a fresh database, and the script reports per run:

* wall time (1 / runs/s);
* CPU of the system's process (user + system, from its rusage) and of the
  server (its postmaster, its live children and the ones it reaped, from
  ``/proc``): both share the same 2 cores;
* explicit transactions (``COMMIT``) and statements sent, counted in the
  server's log in a second pass with ``log_statement=all`` set on that
  database only (logging slows the run, so that pass is not timed), and all
  transactions (``pg_stat_database.xact_commit``, which counts each
  autocommitted read, background polls included, so it grows with time).

Round trips are what a run waits for besides the WAL flush: each statement
is one (psycopg 3 and SQLAlchemy send them one at a time unless told to
pipeline), and with the server on the same 2 cores, each is also a wake-up
of a server process.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import compare
import machine
import pg_server

PEERS = Path(__file__).resolve().parent / "peers"
TICKS = os.sysconf("SC_CLK_TCK")


def _stat(pid: int | str) -> list[str]:
    text = Path(f"/proc/{pid}/stat").read_text()
    return text[text.rindex(")") + 2 :].split()  # fields from the 3rd (state) on


def server_cpu_s(server: pg_server.Server) -> float:
    """CPU seconds of the benchmark's server: its postmaster, the children it
    reaped (cutime, cstime: the backends of closed connections), and its live
    children (other clusters on the machine are not counted)."""
    data = Path(server.psql("SHOW data_directory"))
    postmaster = (data / "postmaster.pid").read_text().split()[0]
    fields = _stat(postmaster)
    total = sum(int(f) for f in fields[11:15])  # utime, stime, cutime, cstime
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            child = _stat(stat.parent.name)
        except (OSError, ValueError):
            continue
        if child[1] == postmaster:  # ppid
            total += int(child[11]) + int(child[12])
    return total / TICKS


def run(exe: Path, system: str, url: str, runs: int) -> tuple[dict[str, float], float]:
    """The system's JSON line, and its process's CPU seconds."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    done = subprocess.run(
        [str(exe), str(PEERS / f"sys_{system}.py"), "sequential", "--db", url, "--runs", str(runs)],
        capture_output=True,
        text=True,
        check=True,
    )
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    line = [x for x in done.stdout.splitlines() if x.startswith("{")][-1]
    result: dict[str, float] = json.loads(line)
    return result, cpu


def commits_of(server: pg_server.Server, database: str) -> int:
    sql = f"SELECT pg_stat_get_db_xact_commit(oid) FROM pg_database WHERE datname = '{database}'"
    return int(server.psql(sql) or 0)


def measure(exe: Path, server: pg_server.Server, system: str, runs: int) -> dict[str, float]:
    """Totals of one pass of ``runs`` runs on a fresh database (start-up included)."""
    name = f"{system}_{runs}"
    url = server.create_database(name)
    cpu0 = server_cpu_s(server)
    result, client_cpu = run(exe, system, url, runs)
    server_s = server_cpu_s(server) - cpu0
    logged = server.create_database(f"{name}_logged")
    server.psql(f"ALTER DATABASE \"{name}_logged\" SET log_statement = 'all'")
    log = Path(server.psql("SHOW data_directory")).parent / "server.log"
    start = log.stat().st_size
    run(exe, system, logged, runs)
    with log.open("rb") as f:
        f.seek(start)
        text = f.read().decode(errors="replace")
    marks = ("LOG:  execute", "LOG:  statement")
    return {
        "runs_per_s": result["runs_per_s"],
        "client_cpu_s": client_cpu,
        "server_cpu_s": server_s,
        "transactions": commits_of(server, name),
        "statements": sum(1 for line in text.splitlines() if any(m in line for m in marks)),
        "commits": sum(1 for line in text.splitlines() if line.endswith(": COMMIT")),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=300)
    parser.add_argument("--systems", nargs="+", default=["proctor", "dbos"])
    args = parser.parse_args()
    exe = compare.python()
    print(machine.summary(machine.describe()) + f"; load {machine.load()}")
    with pg_server.throwaway() as server:
        print(f"PostgreSQL server: {server.describe()}")
        for system in args.systems:
            # A pass of 0 runs measures the start-up, subtracted from the real one.
            empty, full = measure(exe, server, system, 0), measure(exe, server, system, args.runs)
            per = {k: (full[k] - empty[k]) / args.runs for k in full if k != "runs_per_s"}
            rate = full["runs_per_s"]
            print(
                f"{system}: {rate:.0f} runs/s = {1000 / rate:.2f} ms a run; per run:"
                f" CPU {1000 * per['client_cpu_s']:.2f} ms in its process,"
                f" {1000 * per['server_cpu_s']:.2f} ms in the server's;"
                f" {per['commits']:.1f} COMMITs, {per['statements']:.1f} statements;"
                f" {per['transactions']:.1f} transactions in all (background polls too)"
            )
    print(f"load after: {machine.load()}")


if __name__ == "__main__":
    main()
