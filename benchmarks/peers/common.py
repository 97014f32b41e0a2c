"""Shared by the per-system benchmark scripts: arguments, timing, the JSON line.

Each ``sys_*.py`` runs one scenario of one system in a fresh process and
prints one JSON object: the numbers, or ``{"error": ...}`` /
``{"unsupported": ...}``. ``benchmarks/compare.py`` runs them alternately.
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import sys
from typing import Any

SCENARIOS = ("sequential", "concurrent", "cancel", "terminate", "inflight")


def parse() -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    parser.add_argument("scenario", choices=SCENARIOS)
    parser.add_argument("--db", required=True, help="a path for this run's store")
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--concurrency", type=int, default=16)
    return parser.parse_args()


def emit(result: dict[str, Any]) -> None:
    print(json.dumps(result), flush=True)
    sys.stdout.flush()


def percentiles(samples_ms: list[float]) -> dict[str, float]:
    ordered = sorted(samples_ms)
    p99 = ordered[min(len(ordered) - 1, round(0.99 * (len(ordered) - 1)))]
    return {"p50_ms": statistics.median(ordered), "p99_ms": p99, "n": len(ordered)}


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
