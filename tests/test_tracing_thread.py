"""O2: tracing never affects runs. Spans are made and exported on the
runtime's own tracing thread, fed through a bounded queue, so an exporter
that blocks (an OTLP exporter without a collector waits 10 s) delays spans,
never a commit, a lease renewal or a run; a full queue drops facts and says
so once; close() drains for a bounded time.

As OpenTelemetry's own ``BatchSpanProcessor`` (a worker thread behind a
bounded queue that drops when full, and a bounded ``shutdown``), and as
Temporal's SDK, whose interceptors' exporters never run on the workflow
task's critical path.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Iterator, Sequence

import pytest
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExporter, SpanExportResult

import actors._tracing_thread as tracing_thread
from actors import RunState, Runtime, get_context, step, workflow
from tests.conftest import Target, assert_nothing_left, gate, open_rt, wait_until
from tests.tracing_workflows import hello

pytestmark = pytest.mark.timeout(60)

#: The lease of these tests' runtimes (s): a Journal stalled this long loses it.
LEASE = 1.0


class BlockingExporter(SpanExporter):
    """Blocks every export until ``release`` is set (an unreachable collector)."""

    def __init__(self, release: threading.Event) -> None:
        self.release = release
        self.entered = threading.Event()
        self.spans: list[ReadableSpan] = []
        self.threads: set[str] = set()

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        self.threads.add(threading.current_thread().name)
        self.entered.set()
        self.release.wait(60)
        self.spans.extend(spans)
        return SpanExportResult.SUCCESS

    def names(self) -> list[str]:
        return [s.name for s in self.spans]


@pytest.fixture
def blocked(request: pytest.FixtureRequest) -> Iterator[BlockingExporter]:
    # A gate: the suite's fixtures set every gate before they close runtimes.
    exporter = BlockingExporter(gate(f"exporter:{request.node.nodeid}"))
    yield exporter
    exporter.release.set()


@pytest.fixture
def provider(blocked: BlockingExporter) -> Iterator[TracerProvider]:
    tp = TracerProvider()
    tp.add_span_processor(SimpleSpanProcessor(blocked))
    yield tp
    blocked.release.set()
    tp.shutdown()


@step()
def beat_for(seconds: float) -> str:
    """Heartbeats for ``seconds`` (s): a step longer than several leases."""
    ctx = get_context()
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        ctx.heartbeat()
        time.sleep(0.01)
    return "done"


@workflow()
async def long_run(seconds: float) -> str:
    return await beat_for(seconds)


def test_O2_a_blocked_exporter_never_stalls_the_journal_nor_the_lease(
    runtimes: list[Runtime], db: Target, provider: TracerProvider, blocked: BlockingExporter
) -> None:
    """The tester's repro: with the exporter blocked, a run lasting several
    leases completes and the runtime keeps its lease; the spans come after."""
    rt = open_rt(runtimes, db, tracer_provider=provider, lease_ttl=LEASE)
    quick = rt.start(hello, "quick")
    assert quick.wait_finished(timeout=10).status is RunState.COMPLETED
    assert blocked.entered.wait(10)  # its spans' export now blocks
    slow = rt.start(long_run, 4 * LEASE)
    assert slow.wait_finished(timeout=30).status is RunState.COMPLETED
    assert rt.failure is None
    assert not blocked.spans  # nothing got through while blocked
    assert not rt.flush_traces(0.01)
    assert not asyncio.run(rt.flush_traces_async(0.01))  # its awaitable twin (A1)

    blocked.release.set()
    assert asyncio.run(rt.flush_traces_async(10))
    assert rt.flush_traces(10)
    assert f"run {long_run.name}" in blocked.names()
    assert f"step {beat_for.name}" in blocked.names()
    assert blocked.threads == {tracing_thread.THREAD_NAME}


def test_O2_a_full_tracing_queue_drops_says_so_once_and_runs_go_on(  # noqa: PLR0917
    runtimes: list[Runtime],
    db: Target,
    provider: TracerProvider,
    blocked: BlockingExporter,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    monkeypatch.setattr(tracing_thread, "QUEUE_BOUND", 3)
    caplog.set_level(logging.WARNING, logger="proctor.tracing")
    rt = open_rt(runtimes, db, tracer_provider=provider)
    first = rt.start(hello, "first")
    assert first.wait_finished(timeout=10).status is RunState.COMPLETED
    assert blocked.entered.wait(10)
    handles = [rt.start(hello, f"more-{i}") for i in range(5)]
    for handle in handles:
        assert handle.wait_finished(timeout=10).status is RunState.COMPLETED
    drops = [r for r in caplog.records if "dropping" in r.getMessage()]
    assert len(drops) == 1
    assert "3 facts wait" in drops[0].getMessage()
    assert rt._tree.tracing is not None
    dropped = rt._tree.tracing.dropped
    assert dropped > 1

    blocked.release.set()
    assert rt.flush_traces(10)
    rt.close()
    totals = [r.getMessage() for r in caplog.records if "dropped in all" in r.getMessage()]
    assert totals == [f"tracing: {dropped} facts were dropped in all (queue full)"]


def test_O2_close_with_a_blocked_exporter_returns_within_its_bound(
    db: Target,
    provider: TracerProvider,
    blocked: BlockingExporter,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    monkeypatch.setattr(tracing_thread, "CLOSE_DRAIN", 0.5)
    caplog.set_level(logging.WARNING, logger="proctor.tracing")
    before = set(threading.enumerate())
    rt = Runtime(db, tracer_provider=provider)
    try:
        handle = rt.start(hello, "closing")
        assert handle.wait_finished(timeout=10).status is RunState.COMPLETED
        assert blocked.entered.wait(10)
        begun = time.monotonic()
        rt.close()
        took = time.monotonic() - begun
    finally:
        rt.close()
    # The drain bound plus the actors' stop; an export on the Journal's
    # thread would hold the close for the shutdown_timeout (5 s) at least.
    assert took < 0.5 + 3.0, took
    assert any("did not return within 0.5s" in r.getMessage() for r in caplog.records)

    blocked.release.set()  # the thread drops the rest and ends
    wait_until(lambda: tracing_thread.THREAD_NAME not in {t.name for t in threading.enumerate()})
    assert_nothing_left(before)
