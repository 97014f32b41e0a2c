"""What the run page's timeline chart costs for long logs (`proctor ui`, O1).

Builds a RUNNING run's log of N sequential step calls by hand, the very log
the tests draw (call 1234 fails once and is retried, the last is still
running: ``tests/timeline_charts.synthetic_run``), then times
``build_timeline`` (the model) and ``timeline_svg`` (model and SVG), in CPU
seconds of this process (``time.process_time``, so other processes on the
machine count less) and wall-clock seconds, median of 5.

    python benchmarks/timeline_chart.py [N ...]     (default: 50 500 5000 20000)
"""

from __future__ import annotations

import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

from cli.web._timeline import build_timeline
from cli.web._timeline_svg import timeline_svg

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tests.timeline_charts import synthetic_run


def timed(fn: Callable[[], object]) -> tuple[float, float]:
    cpu, wall = [], []
    for _ in range(5):
        c0, w0 = time.process_time(), time.perf_counter()
        fn()
        cpu.append(time.process_time() - c0)
        wall.append(time.perf_counter() - w0)
    return statistics.median(cpu), statistics.median(wall)


def main(sizes: list[int]) -> None:
    print("calls   events   model cpu/wall ms   model+svg cpu/wall ms   svg KiB")
    for calls in sizes:
        run, events = synthetic_run(calls)
        now = run.created_at + calls + 10
        model = timed(lambda: build_timeline(run, events, [], now=now))  # noqa: B023
        chart = timed(lambda: timeline_svg(run, events, [], now=now))  # noqa: B023
        size = len(timeline_svg(run, events, [], now=now)) / 1024
        print(
            f"{calls:6d} {len(events):7d}   {model[0] * 1000:7.1f} / {model[1] * 1000:7.1f}"
            f"       {chart[0] * 1000:7.1f} / {chart[1] * 1000:7.1f}       {size:6.0f}"
        )


if __name__ == "__main__":
    main([int(a) for a in sys.argv[1:]] or [50, 500, 5000, 20000])
