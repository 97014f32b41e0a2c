"""What the run page's timeline chart costs for long logs (`proctor ui`, O1).

Builds a RUNNING run's log of N sequential step calls by hand (one call
fails once and is retried, the last is still running), then times
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

from cli.web._timeline import build_timeline
from cli.web._timeline_svg import timeline_svg
from persistence import EventRecord, EventType, RunRecord, RunState

CREATED = 1_800_000_000.0


def synthetic_run(calls: int) -> tuple[RunRecord, list[EventRecord]]:
    run = RunRecord(
        run_id="bench",
        workflow="bulk",
        status=RunState.RUNNING,
        args=[],
        kwargs={},
        result=None,
        error=None,
        parent_run_id=None,
        owner="rt-1",
        cancel_requested_at=None,
        cancel_reason=None,
        cancel_source=None,
        cancel_grace=None,
        terminate_requested_at=None,
        terminate_reason=None,
        created_at=CREATED,
        started_at=CREATED,
        finished_at=None,
        last_seq=0,
    )
    events: list[EventRecord] = []

    def add(
        type_: EventType, ts: float, call: int | None = None, attempt: int | None = None
    ) -> None:
        n = len(events) + 1
        step = None if call is None else "work"
        events.append(
            EventRecord(
                seq=n,
                run_id="bench",
                run_seq=n,
                ts=CREATED + ts,
                type=type_,
                step=step,
                call=call,
                attempt=attempt,
                data={},
            )
        )

    add(EventType.RUN_CREATED, 0)
    add(EventType.RUN_STARTED, 0)
    for call in range(calls):
        add(EventType.STEP_SCHEDULED, call, call)
        add(EventType.STEP_STARTED, call, call, 1)
        if call == calls // 2:
            add(EventType.STEP_FAILED, call + 0.2, call, 1)
            add(EventType.STEP_RETRY_SCHEDULED, call + 0.2, call, 2)
            add(EventType.STEP_STARTED, call + 0.5, call, 2)
            add(EventType.STEP_COMPLETED, call + 0.9, call, 2)
        elif call < calls - 1:
            add(EventType.STEP_COMPLETED, call + 0.9, call, 1)
    return run, events


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
        now = CREATED + calls + 10
        model = timed(lambda: build_timeline(run, events, [], now=now))  # noqa: B023
        chart = timed(lambda: timeline_svg(run, events, [], now=now))  # noqa: B023
        size = len(timeline_svg(run, events, [], now=now)) / 1024
        print(
            f"{calls:6d} {len(events):7d}   {model[0] * 1000:7.1f} / {model[1] * 1000:7.1f}"
            f"       {chart[0] * 1000:7.1f} / {chart[1] * 1000:7.1f}       {size:6.0f}"
        )


if __name__ == "__main__":
    main([int(a) for a in sys.argv[1:]] or [50, 500, 5000, 20000])
