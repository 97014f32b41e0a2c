"""What OpenTelemetry tracing (O2) costs: runs/s of a 3-step workflow, tracing off and on.

    python3 benchmarks/tracing_overhead.py [--rounds 5] [--runs 300] [--json FILE]
                                           [--baseline CHECKOUT]

Modes, alternated round by round, each round in a fresh process on a fresh
SQLite store (``synchronous=FULL``, as compare.py runs Proctor):

* ``off``: no tracer provider configured (the API's default proxy): the
  runtime holds no SpanBook; each commit pays one ``is None`` check.
* ``sdk-batch``: an SDK ``TracerProvider`` with a ``BatchSpanProcessor`` in
  front of an exporter that drops every span (a no-op), as an application
  with a real exporter would configure it, minus the network.
* ``sdk-simple``: the same with a ``SimpleSpanProcessor`` (each span
  exported on the ending thread: the Journal's), the worst case.

``--baseline CHECKOUT`` adds ``baseline``: the same workflow run by another
checkout's code (``git archive main | tar -x -C DIR``, say), without tracing:
what the off switch costs against code that has none.

``--micro`` measures instead, in this process and without a store, what the
tracing adds per call (CPU, so a loaded machine barely moves it): the caller
context each ``start()`` reads, off and with a caller span, and the SpanBook's
work for one 3-step run (8 events: its spans, ended and handed to the processor).

Scenarios, as compare.py's: ``sequential`` (one run at a time) and
``concurrent`` (16 runs in flight). Prints the median, the spread and
every round's value, and the median's change against ``off``.
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

ROOT = Path(__file__).resolve().parent.parent
MODES = ("off", "sdk-batch", "sdk-simple")
SCENARIOS = ("sequential", "concurrent")

CHILD = r"""
import json, sys, time
from concurrent.futures import ThreadPoolExecutor
sys.path.insert(0, sys.argv[4])
mode, scenario, root, db = sys.argv[1], sys.argv[2], sys.argv[4], sys.argv[5]
runs = int(sys.argv[3])
provider = None
if mode != "off":
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import (
        BatchSpanProcessor, SimpleSpanProcessor, SpanExporter, SpanExportResult)

    class Drop(SpanExporter):
        def export(self, spans):
            return SpanExportResult.SUCCESS

    provider = TracerProvider()
    processor = BatchSpanProcessor if mode == "sdk-batch" else SimpleSpanProcessor
    provider.add_span_processor(processor(Drop()))
from actors import Runtime
from benchmarks.bench_workflows import xp_three_steps
options = {} if provider is None else {"tracer_provider": provider}
with Runtime(db, synchronous="FULL", **options) as rt:
    rt.start(xp_three_steps, -1).result(timeout=60)  # warm-up
    began, cpu = time.perf_counter(), time.process_time()
    if scenario == "sequential":
        for i in range(runs):
            rt.start(xp_three_steps, i).result(timeout=60)
    else:
        with ThreadPoolExecutor(16) as pool:
            list(pool.map(lambda i: rt.start(xp_three_steps, i).result(timeout=60), range(runs)))
    took, cpu = time.perf_counter() - began, time.process_time() - cpu
if provider is not None:
    provider.shutdown()
print(json.dumps({"runs_per_s": runs / took, "cpu_ms_per_run": cpu * 1000 / runs}))
"""


def three_step_run(run_id: str) -> tuple[list[Any], list[Any]]:
    """A 3-step run's records as the Journal commits them, and their outcomes."""
    from persistence import Appended, EventType, NewEvent, RunState  # noqa: PLC0415

    events = [NewEvent(run_id=run_id, type=EventType.RUN_CREATED, data={"workflow": "w"})]
    events.extend(
        NewEvent(run_id=run_id, type=type_, step="s", call=call, attempt=1)
        for call in range(3)
        for type_ in (EventType.STEP_STARTED, EventType.STEP_COMPLETED)
    )
    events.append(NewEvent(run_id=run_id, type=EventType.RUN_COMPLETED))
    done = [Appended(i, i, RunState.RUNNING, ts=1.7e9 + i) for i in range(len(events))]
    return events, done


def one(mode: str, scenario: str, runs: int, baseline: Path | None) -> dict[str, float]:
    root = baseline if mode == "baseline" and baseline else ROOT
    mode = "off" if mode == "baseline" else mode
    with tempfile.TemporaryDirectory() as folder:
        out = subprocess.run(
            [sys.executable, "-c", CHILD, mode, scenario, str(runs), str(root), f"{folder}/b.db"],
            check=True,
            capture_output=True,
            text=True,
            cwd=root,
            env={"PYTHONPATH": str(root), "PATH": "/usr/bin:/bin"},
        )
    result: dict[str, float] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def micro() -> None:
    import timeit  # noqa: PLC0415

    from opentelemetry.sdk.trace import TracerProvider  # noqa: PLC0415
    from opentelemetry.sdk.trace.export import (  # noqa: PLC0415
        BatchSpanProcessor,
        SimpleSpanProcessor,
        SpanExporter,
        SpanExportResult,
    )

    from actors._tracing import start_tracing, trace_context  # noqa: PLC0415
    from actors._tracing_thread import TracingThread  # noqa: PLC0415

    class Drop(SpanExporter):
        def export(self, spans: Any) -> SpanExportResult:
            return SpanExportResult.SUCCESS

    def per_call_us(fn: Any, number: int) -> float:
        return min(timeit.repeat(fn, number=number, repeat=5)) / number * 1e6

    def thread_cpu_us(fn: Any, number: int) -> float:
        """CPU of the calling thread only (the tracing thread runs beside it)."""
        rounds = []
        for _ in range(5):
            begun = time.thread_time()
            for _ in range(number):
                fn()
            rounds.append(time.thread_time() - begun)
        return min(rounds) / number * 1e6

    print(f"trace_context(), no caller span:   {per_call_us(trace_context, 20000):6.2f} us/start")
    caller = TracerProvider().get_tracer("bench")
    with caller.start_as_current_span("caller"):
        print(
            f"trace_context(), a caller span:    {per_call_us(trace_context, 20000):6.2f} us/start"
        )
    none: Any = None
    check = per_call_us(lambda: none is not None, 200000)
    print(f"off: the Journal's check per commit {check:6.3f} us")
    for name, processor in (("batch", BatchSpanProcessor), ("simple", SimpleSpanProcessor)):
        provider = TracerProvider()
        provider.add_span_processor(processor(Drop()))
        book = start_tracing(provider, "rt-bench")
        assert book is not None
        counter = iter(range(10**9))

        def one_run(book: Any = book, counter: Any = counter) -> None:
            events, done = three_step_run(f"r{next(counter)}")
            book.created(events, done)
            book.committed(events, done, lambda _: ())

        print(f"SpanBook, 3-step run, {name:<6} processor: {per_call_us(one_run, 500):6.1f} us/run")
        # What the Journal's thread pays: starting the run span, and the hand-over.
        thread = TracingThread(book, lambda _: ())

        def hand_over(thread: Any = thread, counter: Any = counter) -> None:
            thread.committed(*three_step_run(f"r{next(counter)}"))

        cost = thread_cpu_us(hand_over, 500)
        print(f"  of it on the Journal's thread, {name:<6}: {cost:6.1f} us/run")
        thread.close()
        provider.shutdown()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--runs", type=int, default=300)
    parser.add_argument("--json", type=Path)
    parser.add_argument("--baseline", type=Path)
    parser.add_argument("--micro", action="store_true")
    args = parser.parse_args()
    if args.micro:
        sys.path.insert(0, str(ROOT))
        micro()
        return
    modes = (("baseline",) if args.baseline else ()) + MODES
    results: dict[str, dict[str, list[dict[str, float]]]] = {
        s: {m: [] for m in modes} for s in SCENARIOS
    }
    for scenario in SCENARIOS:
        for _ in range(args.rounds):
            for mode in modes:
                results[scenario][mode].append(one(mode, scenario, args.runs, args.baseline))
        print(f"\n{scenario}: 3-step workflow, {args.runs} runs, SQLite synchronous=FULL")
        for metric, unit in (("runs_per_s", "runs/s"), ("cpu_ms_per_run", "CPU ms/run")):
            base = statistics.median(r[metric] for r in results[scenario]["off"])
            for mode in modes:
                values = [r[metric] for r in results[scenario][mode]]
                med = statistics.median(values)
                rounds = " ".join(f"{v:.2f}" for v in values)
                change = (med / base - 1) * 100
                print(
                    f"  {unit:<10} {mode:<11} median {med:8.2f}"
                    f" ({min(values):.2f}-{max(values):.2f}) {change:+6.1f}% vs off"
                    f"  rounds: {rounds}"
                )
    if args.json:
        record: dict[str, Any] = {"runs": args.runs, "rounds": args.rounds, "results": results}
        args.json.write_text(json.dumps(record, indent=2))


if __name__ == "__main__":
    main()
