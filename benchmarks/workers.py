"""Worker processes on one shared store: Proctor against DBOS, at equal durability.

    python3 benchmarks/workers.py [--store postgres|sqlite] [--postgres-url URL]
                                  [--workers 1 2 4] [--windows 1 16 64]
                                  [--runs 200] [--rounds 3] [--takeover-runs 8]
                                  [--systems proctor dbos] [--json FILE]

A client process starts 3-step runs and K worker processes run them:

* Proctor: a ``Client`` starts each run (PENDING, unowned); K workers
  (``peers/worker_proctor.py``: the runtime ``proctor worker`` hosts,
  ``Runtime(claim_runs=True)``, at ``synchronous=FULL``) claim and run them.
* DBOS: a ``DBOSClient`` enqueues each run on a queue; K processes that
  launched DBOS with that queue registered dequeue and run them (DBOS's
  worker model: the closest to Proctor's claiming workers). Their queue
  polls every 10 ms (DBOS's default is 1 s).

Both clients keep at most W runs in flight (W = 1: sequential) and poll
the oldest every 5 ms through the system's status call. Each round is a
fresh store and fresh workers, systems alternated; the table shows the
median runs/s and every round's value.

Takeover: 2 workers hold ``--takeover-runs`` runs in a step; the one
holding the most is killed with SIGKILL; the time until each of its runs'
steps starts again in the other worker (the new owner's ``run_resumed``
comes just before it), median and last. Twice for Proctor: on one host (a
worker sees the dead one's pid gone) and with a host name per worker (a
UTS namespace each, root only: as on separate hosts, only the lease's
silence, 10 s by default, tells; P3).

PostgreSQL (the default here): one throw-away server with ``fsync=on`` and
``synchronous_commit=on`` (``benchmarks/pg_server.py``), a fresh database a
round; SQLite: a fresh file a round (Proctor ``synchronous=FULL``, DBOS
SQLite's defaults).
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import compare
import machine

PEERS = Path(__file__).resolve().parent / "peers"
TIMEOUT = 600.0


def run_fleet(
    exe: Path, system: str, scenario: str, target: str, args: argparse.Namespace, *, workers: int
) -> dict[str, Any]:
    command = [str(exe), str(PEERS / f"fleet_{system}.py"), scenario, "--db", target]
    command += ["--workers", str(workers), "--runs", str(args.runs)]
    command += ["--windows", *map(str, args.windows)]
    if scenario.startswith("takeover"):
        command[2] = "takeover"
        command += ["--runs", str(args.takeover_runs), "--give-up", str(args.give_up)]
    if scenario == "takeover-hosts":
        command += ["--hosts"]
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=TIMEOUT, check=False)
    except subprocess.TimeoutExpired:
        return {"error": f"timed out after {TIMEOUT:.0f}s"}
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    if done.returncode != 0 or not lines:
        tail = (done.stderr.strip().splitlines() or ["no output"])[-1]
        return {"error": f"exit {done.returncode}: {tail[:160]}"}
    result: dict[str, Any] = json.loads(lines[-1])
    return result


def cell(results: list[dict[str, Any]], key: str, digits: int = 0) -> tuple[str, float | None]:
    for r in results:
        if "unsupported" in r:
            return f"n/a: {r['unsupported']}", None
    values = [r[key] for r in results if key in r]
    errors = [r["error"] for r in results if "error" in r]
    if not values:
        return (f"FAILED: {errors[0]}" if errors else "-"), None
    middle = statistics.median(values)
    rounds = ", ".join(f"{v:.{digits}f}" for v in values)
    failed = f", {len(errors)} failed" if errors else ""
    return f"{middle:.{digits}f} ({rounds}{failed})", middle


def main() -> None:  # noqa: PLR0915 - one report, printed as it fills
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--store", choices=("sqlite", "postgres"), default="postgres")
    parser.add_argument("--postgres-url", help="an admin URL of a running server")
    parser.add_argument("--workers", type=int, nargs="*", default=[1, 2, 4])
    parser.add_argument("--windows", type=int, nargs="+", default=[1, 16, 64])
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--takeover-runs", type=int, default=8)
    parser.add_argument("--give-up", type=float, default=30.0)
    parser.add_argument(
        "--systems", nargs="+", choices=("proctor", "dbos"), default=["proctor", "dbos"]
    )
    parser.add_argument("--no-takeover", action="store_true")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    exe = compare.python()
    record: dict[str, Any] = {
        "machine": machine.describe(),
        "store": args.store,
        "command": " ".join(["python3", "benchmarks/workers.py", *sys.argv[1:]]),
        "throughput": {},
    }
    print(machine.summary(record["machine"]))
    print(f"store: {args.store}; {args.rounds} rounds of {args.runs} runs; load {machine.load()}")
    durability: dict[str, set[str]] = {s: set() for s in args.systems}
    rows: list[str] = []
    with tempfile.TemporaryDirectory() as tmp, compare.postgres(args) as server:
        if server is not None:
            record["server"] = server.settings()
            print(f"PostgreSQL server: {server.describe()}")
        count = 0

        def fresh(system: str) -> str:
            nonlocal count
            count += 1
            name = f"{system}_fleet_{count}"
            return str(Path(tmp) / f"{name}.db") if server is None else server.create_database(name)

        for workers in args.workers:
            began = time.monotonic()
            results: dict[str, list[dict[str, Any]]] = {s: [] for s in args.systems}
            for _ in range(args.rounds):
                for system in args.systems:
                    result = run_fleet(
                        exe, system, "throughput", fresh(system), args, workers=workers
                    )
                    results[system].append(result)
                    if "durability" in result:
                        durability[system].add(result["durability"])
            print(f"\n{workers} worker process(es), {time.monotonic() - began:.0f} s:")
            record["throughput"][workers] = results
            for window in args.windows:
                key = f"window_{window}"
                cells = {s: cell(results[s], key) for s in args.systems}
                what = "sequential" if window == 1 else f"{window} in flight"
                ratio = "-"
                if "dbos" in cells and cells["proctor"][1] and cells["dbos"][1]:
                    ratio = f"{cells['proctor'][1] / cells['dbos'][1]:.2f}x"
                line = "; ".join(f"{s} {cells[s][0]}" for s in args.systems)
                print(f"  {what:<14} runs/s: {line}; proctor/dbos {ratio}")
                rows.append(
                    f"| {workers} | {what} | "
                    + " | ".join(cells[s][0].split(" (")[0] for s in args.systems)
                    + f" | {ratio} |"
                )
        takeovers = {
            "takeover": ("one host: the dead worker's pid is seen gone", args.systems),
            "takeover-hosts": (
                "a host name per worker: only the lease's silence tells",
                [s for s in args.systems if s == "proctor"],
            ),
        }
        for scenario, (how, systems) in takeovers.items():
            if args.no_takeover or not systems:
                continue
            results = {s: [] for s in systems}
            for _ in range(args.rounds):
                for system in systems:
                    results[system].append(
                        run_fleet(exe, system, scenario, fresh(system), args, workers=2)
                    )
            record[scenario] = results
            print(
                f"\n{scenario}: kill -9 of a worker holding runs -> their steps run again"
                f" in the other worker ({args.takeover_runs} held runs, 2 workers; {how}), s:"
            )
            for system in systems:
                p50, value = cell(results[system], "median_s", 2)
                last, _ = cell(results[system], "last_s", 2)
                print(f"  {system}: " + (f"median {p50}; last {last}" if value else p50))
    print("\nMarkdown:\n")
    print(
        "| workers | client keeps | "
        + " | ".join(f"{s} runs/s" for s in args.systems)
        + " | Proctor / DBOS |"
    )
    print("|" + " --- |" * (3 + len(args.systems)))
    for row in rows:
        print(row)
    machine.print_settings_and_record(
        {system: durability[system] for system in args.systems}, record, args.json
    )


if __name__ == "__main__":
    main()
