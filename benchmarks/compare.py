"""Proctor side by side with DBOS and PyWorkflow, at equal durability, in one run.

    python3 benchmarks/compare.py [--store sqlite|postgres] [--postgres-url URL]
                                  [--rounds 3] [--runs 200] [--inflight 1000]
                                  [--only SCENARIO ...] [--normal-row]
                                  [--json FILE] [--baseline CHECKOUT] [--no-peers]

The first run creates ``benchmarks/.venv`` with Proctor (this checkout, editable),
``dbos`` and ``pyworkflow-engine[sqlite]`` (local runtime), so the peers never
touch the project's own environment. Each scenario runs every system
alternately, ``--rounds`` times, each in a fresh process on a fresh store,
and prints, one row per system, the median, the spread (min-max) and every
round's value, with the durability settings that system ran with beside
them (read from its store or server after the run, not assumed).

Durability is always equal between the systems a ratio compares (DESIGN §6):

* SQLite (``--store sqlite``, the default): Proctor at ``synchronous=FULL``
  (WAL, an fsync per commit) against DBOS and PyWorkflow with SQLite's
  defaults (rollback journal, ``synchronous=FULL``: an fsync per commit).
* PostgreSQL (``--store postgres``): Proctor's PostgreSQL store and DBOS
  against one throw-away server this script starts (``benchmarks/pg_server.py``:
  ``fsync=on``, ``synchronous_commit=on``), or the server of
  ``--postgres-url`` (an admin URL; its settings are read and printed, and a
  server without ``fsync`` or ``synchronous_commit`` is refused). Each round
  gets a fresh database. PyWorkflow is not run on PostgreSQL.

``--normal-row`` adds Proctor at ``synchronous=NORMAL`` (SQLite: no fsync per
commit) as one more row, labelled "not equal durability": it is shown for
what the setting buys and is never divided by a peer. (On PostgreSQL, NORMAL
and FULL are one level, ``synchronous_commit=on``: no such row.)

``--baseline CHECKOUT`` adds a system ``baseline``: the same Proctor scenario
script run against another checkout's code (``PYTHONPATH=CHECKOUT``),
alternated with the others, for before/after comparisons of a change;
``--no-peers`` leaves DBOS and PyWorkflow out. ``--json FILE`` records every
round, the settings and the machine. ``proctor runs list`` cold start is
``benchmarks/cli_cold_start.py``; worker processes on a shared store are
``benchmarks/workers.py``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import venv
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import machine
import pg_server

ROOT = Path(__file__).resolve().parent.parent
PEERS = Path(__file__).resolve().parent / "peers"
VENV = Path(__file__).resolve().parent / ".venv"
TIMEOUT = 300.0

#: scenario -> (metric, higher is better, what it means)
SCENARIOS: dict[str, tuple[str, bool, str]] = {
    "sequential": ("runs_per_s", True, "3-step workflow, one run at a time (runs/s)"),
    "concurrent": ("runs_per_s", True, "3-step workflow, 16 runs in flight (runs/s)"),
    "cancel": ("p99_ms", False, "cancel -> step sees it, 1 ms checks (p50/p99 ms; ratio of p99)"),
    "terminate": ("p99_ms", False, "terminate -> durable TERMINATED (p50/p99 ms; ratio of p99)"),
    "inflight": ("ramp_s", False, "N runs parked in a step at once (s to all in flight)"),
}


@dataclass(frozen=True)
class System:
    """One column of the comparison: a script, and the durability it runs at."""

    name: str
    script: str
    synchronous: str = "FULL"
    #: At equal durability with the peers: only such a system is divided by one.
    equal: bool = True
    #: Another checkout of Proctor this system imports (``--baseline``).
    code: Path | None = None

    @property
    def label(self) -> str:
        return self.name if self.equal else f"{self.name} (NOT equal durability)"


#: What ``benchmarks/.venv`` holds besides this checkout: the peers, and the
#: PostgreSQL driver Proctor's ``postgres`` extra and DBOS use.
REQUIREMENTS = ("dbos", "pyworkflow-engine[sqlite]", "psycopg[binary]>=3.2", "psycopg-pool>=3.2")
#: One module of each, imported to check that the environment is complete.
PROBE = "import actors, dbos, pyworkflow, psycopg, psycopg_pool"


def python() -> Path:
    """The benchmark environment's interpreter: created on first use, and
    completed if a requirement is missing (a venv made by an older script)."""
    exe = VENV / "bin" / "python"
    if not exe.exists():
        print(f"creating {VENV} with proctor, dbos and pyworkflow-engine ...", flush=True)
        venv.create(VENV, with_pip=True)
    elif subprocess.run([str(exe), "-c", PROBE], capture_output=True, check=False).returncode == 0:
        return exe
    # Editable: the benchmark always measures this checkout as it is now.
    command = [str(exe), "-m", "pip", "install", "-q", "-e", str(ROOT), *REQUIREMENTS]
    subprocess.run(command, check=True)
    return exe


def environment(system: System) -> dict[str, str] | None:
    """The environment a system's process runs in: the baseline's code first."""
    if system.code is None:
        return None
    return {**os.environ, "PYTHONPATH": str(system.code)}


def code_of(exe: Path, system: System) -> str:
    """Which checkout a Proctor system really imports (printed beside the numbers)."""
    probe = "import actors, pathlib; print(pathlib.Path(actors.__file__).parent.parent)"
    done = subprocess.run(  # from the scripts' folder, the first entry of their sys.path
        [str(exe), "-c", probe],
        capture_output=True,
        text=True,
        cwd=PEERS,
        env=environment(system),
        check=True,
    )
    return done.stdout.strip()


class Stores:
    """A fresh store for every round: a new SQLite file, or a new database on
    the one PostgreSQL server of this comparison."""

    def __init__(self, folder: Path, server: pg_server.Server | None) -> None:
        self.folder = folder
        self.server = server
        self.count = 0

    def fresh(self, system: System, scenario: str) -> str:
        self.count += 1
        name = f"{system.script}_{scenario}_{self.count}"
        if self.server is None:
            return str(self.folder / f"{name}.db")
        return self.server.create_database(name)


def run_one(exe: Path, system: System, scenario: str, runs: int, target: str) -> dict[str, Any]:
    command = [str(exe), str(PEERS / f"sys_{system.script}.py"), scenario, "--db", target]
    command += ["--runs", str(runs), "--synchronous", system.synchronous]
    try:
        done = subprocess.run(
            command,
            capture_output=True,
            text=True,
            timeout=TIMEOUT,
            check=False,
            env=environment(system),
        )
    except subprocess.TimeoutExpired:
        return {"error": f"timed out after {TIMEOUT:.0f}s"}
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    if done.returncode != 0 or not lines:
        tail = (done.stderr.strip().splitlines() or ["no output"])[-1]
        return {"error": f"exit {done.returncode}: {tail[:160]}"}
    result: dict[str, Any] = json.loads(lines[-1])
    return result


def median_of(results: list[dict[str, Any]], key: str) -> float | None:
    values = [r[key] for r in results if key in r]
    return statistics.median(values) if values else None


def describe(results: list[dict[str, Any]], scenario: str) -> tuple[str, float | None]:
    """A cell of the table, and the value the ratio uses."""
    for r in results:
        if "unsupported" in r:
            return f"n/a: {r['unsupported']}", None
    errors = [r["error"] for r in results if "error" in r]
    if errors and len(errors) == len(results):
        return f"FAILED: {errors[0]}", None
    metric = SCENARIOS[scenario][0]
    value = median_of(results, metric)
    if scenario in ("cancel", "terminate"):
        p50 = median_of(results, "p50_ms")
        cell = f"{p50:.2f} / {value:.2f}" if p50 is not None and value is not None else "?"
    elif scenario == "inflight":
        rss = median_of(results, "kb_per_run")
        held = all(r.get("held") for r in results if "error" not in r)
        cell = f"{value:.2f} s, {rss:.0f} KB/run" + ("" if held else " (did not hold)")
    else:
        cell = f"{value:.0f}" if value is not None else "?"
    if errors:
        cell += f" ({len(errors)} failed)"
    return cell, value


def spread(results: list[dict[str, Any]], metric: str) -> str:
    """Every round's value, and max-min as a share of the median."""
    values = [r[metric] for r in results if metric in r]
    if not values:
        return "-"
    rounds = ", ".join(f"{v:.2f}" if v < 100 else f"{v:.0f}" for v in values)
    middle = statistics.median(values)
    width = (max(values) - min(values)) / middle if middle else 0.0
    return f"{metric} by round: {rounds}; spread (max-min)/median {100 * width:.0f}%"


def choose_systems(args: argparse.Namespace, baseline: Path | None) -> list[System]:
    systems = [System("proctor", "proctor")]
    if baseline is not None:
        systems.append(System("baseline", "proctor", code=baseline))
    if not args.no_peers:
        systems.append(System("dbos", "dbos"))
        if args.store == "sqlite":
            systems.append(System("pyworkflow", "pyworkflow"))
    if args.normal_row and args.store == "sqlite":  # on PostgreSQL both levels commit alike
        systems.append(System("proctor NORMAL", "proctor", synchronous="NORMAL", equal=False))
    return systems


@contextlib.contextmanager
def postgres(args: argparse.Namespace) -> Iterator[pg_server.Server | None]:
    """The one PostgreSQL server of this comparison (None on SQLite)."""
    if args.store != "postgres":
        yield None
    elif args.postgres_url:
        server = pg_server.Server.existing(args.postgres_url)
        server.require_durable()
        yield server
    else:
        with pg_server.throwaway() as server:
            yield server


def main() -> None:  # noqa: PLR0915 - one report, printed as it fills
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--store", choices=("sqlite", "postgres"), default="sqlite")
    parser.add_argument(
        "--postgres-url", help="an admin URL of a running server (default: start a throw-away one)"
    )
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--inflight", type=int, default=1000)
    parser.add_argument("--only", choices=tuple(SCENARIOS), action="append")
    parser.add_argument(
        "--normal-row",
        action="store_true",
        help="add Proctor at synchronous=NORMAL as a row labelled 'not equal durability'",
    )
    parser.add_argument("--json", type=Path, help="write every round and setting to this file")
    parser.add_argument(
        "--baseline", type=Path, help="another checkout of Proctor, run as system 'baseline'"
    )
    parser.add_argument("--no-peers", action="store_true", help="leave DBOS and PyWorkflow out")
    args = parser.parse_args()
    baseline: Path | None = args.baseline.resolve() if args.baseline else None
    if baseline is not None and not (baseline / "actors" / "__init__.py").is_file():
        parser.error(f"--baseline {baseline}: not a Proctor checkout (no actors/__init__.py)")
    systems = choose_systems(args, baseline)
    peers = [s for s in systems if s.script != "proctor"]
    exe = python()
    record: dict[str, Any] = {
        "machine": machine.describe(),
        "store": args.store,
        "rounds": args.rounds,
        "runs": args.runs,
        "command": " ".join(["python3", "benchmarks/compare.py", *sys.argv[1:]]),
        "scenarios": {},
    }
    print(machine.summary(record["machine"]))
    print(f"store: {args.store}; medians of {args.rounds} rounds; load {machine.load()}")
    for system in systems:
        if system.script == "proctor" and system.synchronous == "FULL":
            print(f"{system.name} imports the code of {code_of(exe, system)}")
    settings: dict[str, set[str]] = {s.name: set() for s in systems}
    summary: list[str] = []
    with tempfile.TemporaryDirectory() as tmp, postgres(args) as server:
        if server is not None:
            record["server"] = server.settings()
            print(f"PostgreSQL server: {server.describe()}")
        stores = Stores(Path(tmp), server)
        for scenario in args.only or SCENARIOS:
            metric, higher_better, meaning = SCENARIOS[scenario]
            runs = args.inflight if scenario == "inflight" else args.runs
            results: dict[str, list[dict[str, Any]]] = {s.name: [] for s in systems}
            began = time.monotonic()
            for _ in range(args.rounds):
                for system in systems:  # alternately, so drift hits every system alike
                    target = stores.fresh(system, scenario)
                    result = run_one(exe, system, scenario, runs, target)
                    results[system.name].append(result)
                    if "durability" in result:
                        settings[system.name].add(result["durability"])
            cells = {s.name: describe(results[s.name], scenario) for s in systems}
            print(f"\n{scenario}: {meaning}; {runs} runs a round, {time.monotonic() - began:.0f} s")
            for system in systems:
                durability = "; ".join(sorted(settings[system.name])) or "not reported"
                print(f"  {system.label:<40} {cells[system.name][0]:>22}")
                print(f"      {spread(results[system.name], metric)}")
                print(f"      durability: {durability}")
                for r in results[system.name]:
                    if "error" in r:
                        print(f"      {system.name}: {r['error']}")
            mine = cells["proctor"][1]
            ratios = []
            for peer in peers:
                theirs = cells[peer.name][1]
                if mine and theirs:
                    ratio = mine / theirs if higher_better else theirs / mine
                    ratios.append(f"proctor/{peer.name} {ratio:.2f}x")
                else:
                    ratios.append(f"proctor/{peer.name} -")
            if ratios:
                print(f"  at equal durability: {', '.join(ratios)}")
            summary.append(
                f"| {meaning} | "
                + " | ".join(cells[s.name][0][:60] for s in systems)
                + " | "
                + " | ".join(r.split(" ", 1)[1] for r in ratios)
                + " |"
            )
            record["scenarios"][scenario] = {
                s.name: {
                    "rounds": results[s.name],
                    "median": cells[s.name][1],
                    "synchronous": s.synchronous,
                    "equal_durability": s.equal,
                    "durability": sorted(settings[s.name]),
                }
                for s in systems
            }
    print("\nMarkdown (ratios only between systems at equal durability):\n")
    head = ["scenario", *(s.label for s in systems), *(f"Proctor / {p.name}" for p in peers)]
    print("| " + " | ".join(head) + " |")
    print("|" + " --- |" * len(head))
    for row in summary:
        print(row)
    machine.print_settings_and_record(
        {system.label: settings[system.name] for system in systems}, record, args.json
    )


if __name__ == "__main__":
    main()
