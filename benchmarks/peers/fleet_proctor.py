"""Proctor with worker processes on one store (see fleet.py and ``benchmarks/workers.py``).

A ``Client`` (no actors, as a service's process) starts the runs; K worker
processes (``worker_proctor.py``: ``proctor worker``'s runtime) claim and
run them. Prints one JSON line.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import common
import fleet

from actors import Client, RunHandle

HERE = Path(__file__).resolve().parent


def parse() -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    parser.add_argument("scenario", choices=("throughput", "takeover"))
    parser.add_argument("--db", required=True, help="a SQLite path or a PostgreSQL URL")
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--windows", type=int, nargs="+", default=[1, 16, 64])
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--synchronous", choices=("FULL", "NORMAL"), default="FULL")
    parser.add_argument("--give-up", type=float, default=60.0)
    parser.add_argument(
        "--hosts",
        action="store_true",
        help="each worker its own host name (a UTS namespace; root only), so no"
        " worker can judge another's pid: a death is seen by the lease's silence",
    )
    return parser.parse_args()


def as_host(command: list[str], index: int) -> list[str]:
    """``command`` run under the host name ``bench-host-<index>`` (``unshare --uts``)."""
    rename = 'hostname "$0" && exec "$@"'
    return ["unshare", "--uts", "--", "sh", "-c", rename, f"bench-host-{index}", *command]


def main() -> None:
    args = parse()
    command = [sys.executable, str(HERE / "worker_proctor.py"), "--db", args.db]
    command += ["--synchronous", args.synchronous]
    with Client(args.db, create=True) as client:
        commands = [as_host(command, i) if args.hosts else command for i in range(args.workers)]
        workers = fleet.spawn(commands)
        try:
            if args.scenario == "throughput":

                def finished(handle: RunHandle[int]) -> bool:
                    return client.get_run(handle.run_id).status.is_terminal

                result = {
                    f"window_{w}": fleet.windowed(
                        lambda i: client.start("bench.xp_three_steps", i),
                        finished,
                        args.runs,
                        w,
                    )
                    for w in args.windows
                }
            else:
                folder = Path(tempfile.mkdtemp(prefix="proctor-takeover-"))
                result = fleet.takeover(
                    lambda key: client.start("bench.xp_held_run", str(folder), key),
                    workers,
                    folder,
                    args.runs,
                    give_up=args.give_up,
                )
                result["lease_ttl_s"] = 10.0  # Runtime's default, as proctor worker's
                result["hosts"] = args.hosts
        finally:
            fleet.stop(workers)
    if common.is_postgres(args.db):  # the store sets it from synchronous (sys_proctor.py)
        session = f"synchronous_commit=on (from synchronous={args.synchronous})"
        common.durability = lambda: common.postgres_durability(args.db, session=session)
    else:
        common.durability = lambda: common.sqlite_durability(args.db, synchronous=args.synchronous)
    common.emit(result)


if __name__ == "__main__":
    main()
