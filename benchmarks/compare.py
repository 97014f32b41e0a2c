"""Proctor side by side with DBOS and PyWorkflow, in the same run, on this machine.

    python3 benchmarks/compare.py [--rounds 3] [--runs 200] [--inflight 1000]
                                  [--proctor-synchronous FULL|NORMAL]
                                  [--baseline CHECKOUT] [--no-peers]

The first run creates ``benchmarks/.venv`` with Proctor (this checkout, editable),
``dbos`` (SQLite system database) and ``pyworkflow-engine[sqlite]`` (local
runtime), so the peers never touch the project's own environment. Each
scenario runs every system alternately, ``--rounds`` times, each in a fresh
process on a fresh store, and prints medians and the ratio Proctor/peer. A
peer that fails or lacks the feature is reported as such, never dropped.
``proctor runs list`` cold start is ``benchmarks/cli_cold_start.py``.

Durability is equal by default: Proctor runs with ``synchronous=FULL`` (an
fsync per commit), as DBOS and PyWorkflow do with SQLite's defaults. Each
system reports the settings it ran with, read from its store, and they are
printed under the table. ``--proctor-synchronous NORMAL`` (no fsync per
commit) is for a row labelled as such, never for a ratio against the peers.

``--baseline CHECKOUT`` adds a system ``baseline``: the same Proctor scenario
script run against another checkout's code (``PYTHONPATH=CHECKOUT``), alternated
with the others, for before/after comparisons of a change; ``--no-peers``
leaves DBOS and PyWorkflow out. Every round's value is printed under the
table, so the spread is visible beside the medians.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import tempfile
import venv
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
PEERS = Path(__file__).resolve().parent / "peers"
VENV = Path(__file__).resolve().parent / ".venv"
SYSTEMS = ("proctor", "dbos", "pyworkflow")
TIMEOUT = 300.0

#: scenario -> (metric, higher is better, what it means)
SCENARIOS: dict[str, tuple[str, bool, str]] = {
    "sequential": ("runs_per_s", True, "3-step workflow, one run at a time (runs/s)"),
    "concurrent": ("runs_per_s", True, "3-step workflow, 16 runs in flight (runs/s)"),
    "cancel": ("p99_ms", False, "cancel -> step sees it, 1 ms checks (p50/p99 ms; ratio of p99)"),
    "terminate": ("p99_ms", False, "terminate -> durable TERMINATED (p50/p99 ms; ratio of p99)"),
    "inflight": ("ramp_s", False, "N runs parked in a step at once (s to all in flight)"),
}


def python() -> Path:
    exe = VENV / "bin" / "python"
    if not exe.exists():
        print(f"creating {VENV} with proctor, dbos and pyworkflow-engine ...", flush=True)
        venv.create(VENV, with_pip=True)
        peers = ["dbos", "pyworkflow-engine[sqlite]"]
        # Editable: the benchmark always measures this checkout as it is now.
        command = [str(exe), "-m", "pip", "install", "-q", "-e", str(ROOT), *peers]
        subprocess.run(command, check=True)
    return exe


def environment(system: str, baseline: Path | None) -> dict[str, str] | None:
    """The environment a system's process runs in: the baseline's code first."""
    if system != "baseline" or baseline is None:
        return None
    return {**os.environ, "PYTHONPATH": str(baseline)}


def code_of(exe: Path, system: str, baseline: Path | None) -> str:
    """Which checkout a Proctor system really imports (printed beside the numbers)."""
    probe = "import actors, pathlib; print(pathlib.Path(actors.__file__).parent.parent)"
    done = subprocess.run(  # from the scripts' folder, the first entry of their sys.path
        [str(exe), "-c", probe],
        capture_output=True,
        text=True,
        cwd=PEERS,
        env=environment(system, baseline),
        check=True,
    )
    return done.stdout.strip()


def run_one(
    exe: Path,
    system: str,
    scenario: str,
    runs: int,
    folder: Path,
    *,
    synchronous: str,
    baseline: Path | None = None,
) -> dict[str, Any]:
    db = folder / f"{system}-{scenario}-{len(list(folder.iterdir()))}.db"
    script = "proctor" if system == "baseline" else system
    command = [str(exe), str(PEERS / f"sys_{script}.py"), scenario, "--db", str(db)]
    command += ["--runs", str(runs), "--synchronous", synchronous]
    env = environment(system, baseline)
    try:
        done = subprocess.run(
            command, capture_output=True, text=True, timeout=TIMEOUT, check=False, env=env
        )
    except subprocess.TimeoutExpired:
        return {"error": f"timed out after {TIMEOUT:.0f}s"}
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    if done.returncode != 0 or not lines:
        tail = (done.stderr.strip().splitlines() or ["no output"])[-1]
        return {"error": f"exit {done.returncode}: {tail[:120]}"}
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


def main() -> None:  # noqa: PLR0915 - one table, printed as it fills
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--inflight", type=int, default=1000)
    parser.add_argument("--only", choices=tuple(SCENARIOS), action="append")
    parser.add_argument(
        "--proctor-synchronous",
        choices=("FULL", "NORMAL"),
        default="FULL",
        help="FULL (default): equal durability with the peers; NORMAL: a labelled extra",
    )
    parser.add_argument(
        "--baseline", type=Path, help="another checkout of Proctor, run as system 'baseline'"
    )
    parser.add_argument("--no-peers", action="store_true", help="leave DBOS and PyWorkflow out")
    args = parser.parse_args()
    baseline: Path | None = args.baseline.resolve() if args.baseline else None
    if baseline is not None and not (baseline / "actors" / "__init__.py").is_file():
        parser.error(f"--baseline {baseline}: not a Proctor checkout (no actors/__init__.py)")
    systems = ["proctor"] + (["baseline"] if baseline else [])
    systems += [] if args.no_peers else [s for s in SYSTEMS if s != "proctor"]
    others = systems[1:]
    exe = python()
    print(
        f"{platform.platform()}, {platform.processor() or platform.machine()}, "
        f"Python {platform.python_version()}; medians of {args.rounds} rounds"
    )
    for system in ("proctor", "baseline"):
        if system in systems:
            print(f"{system} imports the code of {code_of(exe, system, baseline)}")
    if args.proctor_synchronous != "FULL":
        print(
            f"NOT EQUAL DURABILITY: Proctor runs with synchronous={args.proctor_synchronous}"
            " (no fsync per commit) while the peers fsync every commit; these ratios"
            " flatter Proctor and are not comparisons."
        )
    print()
    settings: dict[str, set[str]] = {s: set() for s in systems}
    header = f"{'scenario':<12} {'proctor':>26}" + "".join(f" {s:>30}" for s in others)
    header += "".join(f"  {'proctor/' + s:>18}" for s in others)
    print(header)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        for scenario in args.only or SCENARIOS:
            runs = args.inflight if scenario == "inflight" else args.runs
            results: dict[str, list[dict[str, Any]]] = {s: [] for s in systems}
            for _ in range(args.rounds):
                for system in systems:  # alternately, so drift hits every system alike
                    result = run_one(
                        exe,
                        system,
                        scenario,
                        runs,
                        folder,
                        synchronous=args.proctor_synchronous,
                        baseline=baseline,
                    )
                    results[system].append(result)
                    if "durability" in result:
                        settings[system].add(result["durability"])
            cells = {s: describe(results[s], scenario) for s in systems}
            ratios = []
            higher_better = SCENARIOS[scenario][1]
            mine = cells["proctor"][1]
            for other in others:
                theirs = cells[other][1]
                if mine and theirs:
                    ratio = mine / theirs if higher_better else theirs / mine
                    ratios.append(f"{ratio:.2f}x")
                else:
                    ratios.append("-")
            row = f"{scenario:<12} {cells['proctor'][0]:>26}"
            row += "".join(f" {cells[s][0][:30]:>30}" for s in others)
            row += "".join(f"  {r:>18}" for r in ratios)
            print(row, flush=True)
            metric = SCENARIOS[scenario][0]
            for system in systems:
                if cells[system][0].startswith("n/a") and len(cells[system][0]) > 30:
                    print(f"    {system}: {cells[system][0]}")  # the table cuts it short
                rounds = [f"{r[metric]:.2f}" for r in results[system] if metric in r]
                print(f"    {system} {metric} per round: {', '.join(rounds) or '-'}")
                for r in results[system]:
                    if "error" in r:
                        print(f"    {system}: {r['error']}")
    print("\nDurability each system ran with (read from its store after each run):")
    for system in systems:
        for setting in sorted(settings[system]) or ["not reported (no run succeeded)"]:
            print(f"  {system}: {setting}")
    print("\nRatios: how many times better Proctor is (throughput up, latency down).")
    for name, (_, _, meaning) in SCENARIOS.items():
        print(f"  {name}: {meaning}")


if __name__ == "__main__":
    main()
