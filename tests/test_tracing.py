"""O2: OpenTelemetry spans per run and step attempt, with cancel, shield and
terminate as span events, in the trace of the caller of ``start()``.

Each test passes its own SDK ``TracerProvider`` (an in-memory exporter
behind a SimpleSpanProcessor) to ``Runtime(tracer_provider=...)``, as users
of Temporal's ``TracingInterceptor`` pass a tracer; the global provider is
never set in this process.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import StatusCode

from actors import (
    CancellationError,
    Client,
    InvalidArgumentType,
    RetryPolicy,
    RunState,
    Runtime,
    get_context,
    shield,
    step,
    workflow,
)
from actors._tracing import start_tracing, trace_context
from persistence import EventType, NewEvent, Refused, open_store
from tests.conftest import Target, events_of, gate, note, open_rt, wait_until
from tests.processes import DEADLINE, Worker, record
from tests.tracing_workflows import greet, hello

pytestmark = pytest.mark.timeout(60)

_E = EventType


@pytest.fixture
def exporter() -> InMemorySpanExporter:
    return InMemorySpanExporter()


@pytest.fixture
def provider(exporter: InMemorySpanExporter) -> Iterator[TracerProvider]:
    tp = TracerProvider()
    tp.add_span_processor(SimpleSpanProcessor(exporter))
    yield tp
    tp.shutdown()


def finished(exporter: InMemorySpanExporter, name: str, count: int = 1) -> list[ReadableSpan]:
    """The ended spans called ``name``, once there are ``count`` of them (in end order)."""
    wait_until(lambda: len([s for s in exporter.get_finished_spans() if s.name == name]) >= count)
    return [s for s in exporter.get_finished_spans() if s.name == name]


def ns(ts: float) -> int:
    return round(ts * 1e9)


@step(retry=RetryPolicy(max_attempts=2, initial_interval=0.01))
def flaky(key: str) -> str:
    """Fails its first attempt; the second waits, heartbeating, for the cancel."""
    ctx = get_context()
    if ctx.attempt == 1:
        raise ValueError(f"{key}: first attempt fails")
    gate(f"{key}:second").set()
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        ctx.heartbeat()  # raises CancellationError once the cancel arrives (C2)
        time.sleep(0.001)
    return "never cancelled"


@workflow()
async def retried(key: str) -> str:
    return await flaky(key)


def test_O2_a_retry_and_a_cancel_yield_spans_and_events_in_the_callers_trace(
    runtimes: list[Runtime],
    db: Target,
    provider: TracerProvider,
    exporter: InMemorySpanExporter,
) -> None:
    rt = open_rt(runtimes, db, tracer_provider=provider)
    caller_tracer = provider.get_tracer("test")
    with caller_tracer.start_as_current_span("POST /orders") as caller:
        handle = rt.start(retried, "o2")
    assert gate("o2:second").wait(10)
    rt.cancel(handle.run_id, "customer changed their mind")
    assert handle.wait_finished(timeout=10).status is RunState.CANCELLED

    (run,) = finished(exporter, f"run {retried.name}")
    first, second = finished(exporter, f"step {flaky.name}", 2)
    log = events_of(rt, handle.run_id)
    caller_ctx = caller.get_span_context()
    # In the caller's trace, parented to the caller's span; attempts under the run.
    for span in (run, first, second):
        assert span.context is not None
        assert span.context.trace_id == caller_ctx.trace_id
    assert run.parent is not None
    assert run.parent.span_id == caller_ctx.span_id
    assert run.context is not None
    for attempt in (first, second):
        assert attempt.parent is not None
        assert attempt.parent.span_id == run.context.span_id
    assert dict(run.attributes or {}) == {
        "proctor.run_id": handle.run_id,
        "proctor.workflow": retried.name,
        "proctor.outcome": "cancelled",
    }
    attrs = [dict(s.attributes or {}) for s in (first, second)]
    assert [(a["proctor.step"], a["proctor.call"], a["proctor.attempt"]) for a in attrs] == [
        (flaky.name, 0, 1),
        (flaky.name, 0, 2),
    ]
    assert [a["proctor.outcome"] for a in attrs] == ["failed", "cancelled"]
    # The failed attempt has an error status with the error's type and message.
    assert first.status.status_code is StatusCode.ERROR
    assert first.status.description == "ValueError: o2: first attempt fails"
    assert [e.name for e in first.events] == ["exception"]
    assert second.status.status_code is StatusCode.UNSET
    assert run.status.status_code is StatusCode.UNSET
    # The cancel: requested on the run span; delivered on the run and the attempt it reached.
    names = [e.name for e in run.events]
    assert names == ["retry scheduled", "cancel requested", "cancel delivered", "cancel delivered"]
    # Delivered in the step (its heartbeat), then in the body (its await, C2).
    delivered = [dict(e.attributes or {}) for e in run.events[2:]]
    assert [(d["proctor.target"], d.get("proctor.step")) for d in delivered] == [
        ("step", flaky.name),
        ("body", None),
    ]
    requested = run.events[1]
    assert dict(requested.attributes or {}) == {
        "proctor.reason": "customer changed their mind",
        "proctor.source": "api",
    }
    assert [e.name for e in second.events] == ["cancel delivered"]
    assert dict(second.events[0].attributes or {})["proctor.target"] == "step"
    # Times are the log's: each span and event at its event's ts.
    at = {e.type: e.ts for e in log}
    started = [e.ts for e in log if e.type is _E.STEP_STARTED]
    assert run.start_time == ns(log[0].ts)
    assert run.end_time == ns(at[_E.RUN_CANCELLED])
    assert [first.start_time, second.start_time] == [ns(t) for t in started]
    assert first.end_time == ns(at[_E.STEP_FAILED])
    assert second.end_time == ns(at[_E.STEP_CANCELLED])
    assert requested.timestamp == ns(at[_E.CANCEL_REQUESTED])
    in_step = next(e for e in log if e.type is _E.CANCEL_DELIVERED and e.call is not None)
    assert second.events[0].timestamp == ns(in_step.ts)


@step()
def wait_in_shield(key: str) -> str:
    gate(f"{key}:started").set()
    assert gate(key).wait(20)
    return "kept"


@step()
def after(value: int) -> int:
    return value


@workflow()
async def shielded(key: str) -> str:
    with shield():
        await wait_in_shield(key)
    await after(1)  # the first checkpoint after the shield: the cancel raises here
    return "unreachable"


def test_O2_S4_a_shield_and_a_buffered_cancel_are_span_events_in_log_order(
    runtimes: list[Runtime],
    db: Target,
    provider: TracerProvider,
    exporter: InMemorySpanExporter,
) -> None:
    rt = open_rt(runtimes, db, tracer_provider=provider)
    handle = rt.start(shielded, "o2s")
    assert gate("o2s:started").wait(10)
    rt.cancel(handle.run_id, "in the shield")
    wait_until(lambda: _E.CANCEL_BUFFERED in [e.type for e in events_of(rt, handle.run_id)])
    gate("o2s").set()
    assert handle.wait_finished(timeout=10).status is RunState.CANCELLED
    (run,) = finished(exporter, f"run {shielded.name}")
    names = {
        _E.SHIELD_ENTERED: "shield entered",
        _E.CANCEL_REQUESTED: "cancel requested",
        _E.CANCEL_BUFFERED: "cancel buffered",
        _E.SHIELD_EXITED: "shield exited",
        _E.CANCEL_DELIVERED: "cancel delivered",
    }
    logged = [e for e in events_of(rt, handle.run_id) if e.type in names]
    assert [names[e.type] for e in logged] == [
        "shield entered",
        "cancel requested",
        "cancel buffered",
        "shield exited",
        "cancel delivered",
    ]
    assert [(e.name, e.timestamp) for e in run.events] == [
        (names[e.type], ns(e.ts)) for e in logged
    ]
    delivered = run.events[-1]
    assert dict(delivered.attributes or {})["proctor.target"] == "body"
    assert dict(run.attributes or {})["proctor.outcome"] == "cancelled"


@step()
def double(x: int) -> int:
    return 2 * x


@workflow()
async def child(x: int) -> int:
    return await double(x)


@workflow()
async def parent(x: int) -> int:
    # A step first: the child is created in a later group, once the parent's span exists.
    return await child(await double(x) // 2) + 1


def test_O2_a_child_runs_span_is_parented_to_its_parent_runs_span(
    runtimes: list[Runtime],
    db: Target,
    provider: TracerProvider,
    exporter: InMemorySpanExporter,
) -> None:
    rt = open_rt(runtimes, db, tracer_provider=provider)
    handle = rt.start(parent, 20)
    assert handle.result(timeout=10) == 41
    (parent_span,) = finished(exporter, f"run {parent.name}")
    (child_span,) = finished(exporter, f"run {child.name}")
    assert parent_span.parent is None  # no caller span: a new trace
    assert parent_span.context is not None
    assert child_span.context is not None
    assert child_span.parent is not None
    assert child_span.parent.span_id == parent_span.context.span_id
    assert child_span.context.trace_id == parent_span.context.trace_id
    attrs = dict(child_span.attributes or {})
    assert attrs["proctor.parent_run_id"] == handle.run_id
    assert attrs["proctor.outcome"] == "completed"
    # Durable: the child's creation records its parent run span's context.
    (child_run,) = rt.list_runs(parent_run_id=handle.run_id)
    created = events_of(rt, child_run.run_id)[0]
    trace_id = f"{parent_span.context.trace_id:032x}"
    assert created.data["traceparent"].split("-")[1:3] == [
        trace_id,
        f"{parent_span.context.span_id:016x}",
    ]


@workflow()
async def parent_at_once(x: int) -> int:
    return await child(x) + 1  # the child is created in the parent's first group


def test_O2_a_child_created_in_its_parents_first_group_is_parented_to_the_parents_span(
    runtimes: list[Runtime],
    db: Target,
    provider: TracerProvider,
    exporter: InMemorySpanExporter,
) -> None:
    """Before that group commits the parent has no span to record: the child
    records the parent's own caller context (the same trace), and is parented
    to the parent's span, open by the time the child's is."""
    rt = open_rt(runtimes, db, tracer_provider=provider)
    with provider.get_tracer("test").start_as_current_span("caller") as caller:
        handle = rt.start(parent_at_once, 20)
    assert handle.result(timeout=10) == 41
    (parent_span,) = finished(exporter, f"run {parent_at_once.name}")
    (child_span,) = finished(exporter, f"run {child.name}")
    assert parent_span.context is not None
    assert child_span.parent is not None
    assert child_span.parent.span_id == parent_span.context.span_id
    (child_run,) = rt.list_runs(parent_run_id=handle.run_id)
    recorded = events_of(rt, child_run.run_id)[0].data["traceparent"]
    ctx = caller.get_span_context()
    assert recorded.split("-")[1:3] == [f"{ctx.trace_id:032x}", f"{ctx.span_id:016x}"]


@step()
def terminated_step(key: str) -> str:
    gate(f"{key}:started").set()
    gate(key).wait(20)
    return "abandoned"


@workflow()
async def to_terminate(key: str) -> str:
    return await terminated_step(key)


def test_O2_T1_terminate_is_an_event_and_ends_the_run_span_terminated(
    runtimes: list[Runtime],
    db: Target,
    provider: TracerProvider,
    exporter: InMemorySpanExporter,
) -> None:
    rt = open_rt(runtimes, db, tracer_provider=provider)
    handle = rt.start(to_terminate, "o2t")
    assert gate("o2t:started").wait(10)
    rt.terminate(handle.run_id, "stuck")
    (run,) = finished(exporter, f"run {to_terminate.name}")
    (attempt,) = finished(exporter, f"step {terminated_step.name}")
    assert [e.name for e in run.events] == ["terminate requested"]
    assert dict(run.events[0].attributes or {}) == {"proctor.reason": "stuck"}
    assert dict(run.attributes or {})["proctor.outcome"] == "terminated"
    assert dict(attempt.attributes or {})["proctor.outcome"] == "abandoned"
    ended = next(e for e in events_of(rt, handle.run_id) if e.type is _E.RUN_TERMINATED)
    assert run.end_time == ns(ended.ts)


def test_O2_a_cancel_from_another_process_is_an_event_on_the_run_span(
    runtimes: list[Runtime],
    db: Target,
    provider: TracerProvider,
    exporter: InMemorySpanExporter,
) -> None:
    """The ControlInbox reads the CLI's request; the span event has its time and source."""
    rt = open_rt(runtimes, db, tracer_provider=provider)
    handle = rt.start(retried, "o2x")
    assert gate("o2x:second").wait(10)
    with Client(db) as client:  # writes the request to the store, as the CLI does
        client.cancel(handle.run_id, "from elsewhere")
    assert handle.wait_finished(timeout=10).status is RunState.CANCELLED
    (run,) = finished(exporter, f"run {retried.name}")
    requested = [e for e in run.events if e.name == "cancel requested"]
    assert len(requested) == 1
    logged = next(e for e in events_of(rt, handle.run_id) if e.type is _E.CANCEL_REQUESTED)
    assert requested[0].timestamp == ns(logged.ts)
    assert dict(requested[0].attributes or {})["proctor.reason"] == "from elsewhere"


@step()
def blocking(key: str) -> str:
    gate(f"{key}:started").set()
    deadline = time.monotonic() + 20
    while not gate(key).is_set() and time.monotonic() < deadline:
        get_context().heartbeat()
        time.sleep(0.001)
    return key


@workflow()
async def resumable(key: str) -> str:
    return await blocking(key)


def test_O2_D2_a_resumed_run_opens_a_new_run_span_under_the_same_caller(
    runtimes: list[Runtime],
    db: Target,
    provider: TracerProvider,
    exporter: InMemorySpanExporter,
) -> None:
    first = open_rt(runtimes, db, tracer_provider=provider)
    with provider.get_tracer("test").start_as_current_span("caller") as caller:
        handle = first.start(resumable, "o2r")
    assert gate("o2r:started").wait(10)
    gate("o2r:started").clear()
    first.kill()  # as kill -9: its spans are never ended
    assert not [s for s in exporter.get_finished_spans() if s.name.startswith("run ")]
    second = open_rt(runtimes, db, tracer_provider=provider)
    assert gate("o2r:started").wait(10)  # the in-flight step runs again (D2)
    gate("o2r").set()
    assert second.handle(handle.run_id).result(timeout=10) == "o2r"
    (run,) = finished(exporter, f"run {resumable.name}")
    assert dict(run.attributes or {})["proctor.resumed"] is True
    assert run.parent is not None
    assert run.parent.span_id == caller.get_span_context().span_id
    assert run.context is not None
    assert run.context.trace_id == caller.get_span_context().trace_id


def test_O2_off_without_a_configured_provider(
    runtimes: list[Runtime],
    db: Target,
    provider: TracerProvider,
    exporter: InMemorySpanExporter,
) -> None:
    """The global provider is the API's default proxy here: no spans, no error."""
    assert isinstance(trace.get_tracer_provider(), trace.ProxyTracerProvider)
    assert start_tracing(None, "rt-x") is None
    assert start_tracing(trace.NoOpTracerProvider(), "rt-x") is None
    rt = open_rt(runtimes, db)
    with provider.get_tracer("test").start_as_current_span("caller"):
        handle = rt.start(parent, 1)
    assert handle.result(timeout=10) == 3
    # Only the caller's own span: the runtime made none.
    assert [s.name for s in exporter.get_finished_spans()] == ["caller"]
    # The caller's context is still recorded: a worker with a provider joins it.
    assert events_of(rt, handle.run_id)[0].data["traceparent"].startswith("00-")


def test_O2_off_when_the_otel_extra_is_missing(
    runtimes: list[Runtime],
    *,
    db: Target,
    provider: TracerProvider,
    exporter: InMemorySpanExporter,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    with provider.get_tracer("test").start_as_current_span("caller"):
        monkeypatch.setitem(sys.modules, "opentelemetry", None)  # import fails
        assert trace_context() == {}
        with caplog.at_level(logging.WARNING, logger="proctor.tracing"):
            rt = open_rt(runtimes, db, tracer_provider=provider)
        handle = rt.start(parent, 1)
    assert handle.result(timeout=10) == 3
    assert "opentelemetry-api is not installed" in caplog.text
    assert [s.name for s in exporter.get_finished_spans()] == ["caller"]
    assert "traceparent" not in events_of(rt, handle.run_id)[0].data


def test_O2_a_tracer_provider_of_the_wrong_type_is_refused_before_anything_opens(
    tmp_path: Path,
) -> None:
    db = tmp_path / "never.db"
    with pytest.raises(InvalidArgumentType, match="tracer_provider must be"):
        Runtime(db, tracer_provider="jaeger")  # type: ignore[arg-type]
    assert not db.exists()


def test_O2_a_malformed_trace_context_starts_a_new_trace_and_a_wrong_type_is_refused(
    runtimes: list[Runtime],
    db: Target,
    provider: TracerProvider,
    exporter: InMemorySpanExporter,
) -> None:
    with open_store(db) as store:
        refused = store.append(
            [
                NewEvent(
                    run_id="bad-type",
                    type=_E.RUN_CREATED,
                    data={"workflow": hello.name, "args": ["x"], "traceparent": 7},
                )
            ]
        )
        assert isinstance(refused[0], Refused)
        assert "'traceparent' must be" in refused[0].reason
        created = store.append(
            [
                NewEvent(
                    run_id="garbled",
                    type=_E.RUN_CREATED,
                    data={"workflow": hello.name, "args": ["x"], "traceparent": "00-zz-<b>-01"},
                )
            ]
        )
        assert created[0].accepted
    rt = open_rt(runtimes, db, tracer_provider=provider, claim_runs=True)
    assert rt.handle("garbled").result(timeout=10) == "hello x"
    (run,) = finished(exporter, f"run {hello.name}")
    assert run.parent is None  # a new trace, no error
    assert dict(run.attributes or {})["proctor.outcome"] == "completed"


@step()
def raises(message: str) -> None:
    raise RuntimeError(message)


@workflow()
async def failing(message: str) -> None:
    try:
        await raises(message)
    except CancellationError:  # pragma: no cover - never cancelled
        note("failing", "cancelled")
        raise


def test_O2_a_failed_run_has_an_error_status_with_its_error(
    runtimes: list[Runtime],
    db: Target,
    provider: TracerProvider,
    exporter: InMemorySpanExporter,
) -> None:
    rt = open_rt(runtimes, db, tracer_provider=provider)
    handle = rt.start(failing, "boom")
    assert handle.wait_finished(timeout=10).status is RunState.FAILED
    (run,) = finished(exporter, f"run {failing.name}")
    assert dict(run.attributes or {})["proctor.outcome"] == "failed"
    assert run.status.status_code is StatusCode.ERROR
    assert "boom" in (run.status.description or "")


def test_O2_a_run_started_by_a_client_and_run_by_a_worker_process_joins_the_callers_trace(
    db: Target, tmp_path: Path, provider: TracerProvider, workers: list[Worker]
) -> None:
    """The caller's context crosses processes in the run's ``run_created``.

    The worker configures its global provider (in tests.tracing_workflows)
    with an exporter that writes each span as a JSON line to a file.
    """
    spans = tmp_path / "spans.jsonl"
    with (
        provider.get_tracer("test").start_as_current_span("POST /hello") as caller,
        Client(db, create=True) as client,
    ):
        handle = client.start(hello, "worker")
    env = {"PROCTOR_TEST_SPANS": os.fspath(spans)}
    workers.append(Worker(db, tmp_path / "worker.log", "tests.tracing_workflows", env))
    wait_until(lambda: record(db, handle.run_id).status.is_terminal, timeout=DEADLINE)
    assert record(db, handle.run_id).status is RunState.COMPLETED

    def lines() -> list[dict[str, object]]:
        if not spans.exists():
            return []
        return [json.loads(line) for line in spans.read_text().splitlines() if line]

    wait_until(lambda: any(s["name"] == f"run {hello.name}" for s in lines()), DEADLINE)
    by_name = {s["name"]: s for s in lines()}
    run, attempt = by_name[f"run {hello.name}"], by_name[f"step {greet.name}"]
    ctx = caller.get_span_context()
    assert run["trace_id"] == ctx.trace_id == attempt["trace_id"]
    assert run["parent_id"] == ctx.span_id
    assert attempt["parent_id"] == run["span_id"]
    assert run["attributes"] == {
        "proctor.run_id": handle.run_id,
        "proctor.workflow": hello.name,
        "proctor.outcome": "completed",
    }


def test_O2_A1_the_async_starts_record_the_callers_context_off_the_loop_too(
    runtimes: list[Runtime], db: Target, provider: TracerProvider
) -> None:
    """A start with a chosen run id reads the store in the loop's executor: the
    caller's context must travel there (``run_in_executor`` does not copy it)."""
    rt = open_rt(runtimes, db, tracer_provider=provider)

    async def main() -> tuple[str, list[str]]:
        with provider.get_tracer("test").start_as_current_span("request") as span:
            ids = [
                (await rt.start_async(hello, "a", run_id="o2-async-1")).run_id,
                (await rt.start_async(hello, "b" * 300_000)).run_id,  # heavy: off the loop
            ]
            async with Client(db) as client:
                ids.append((await client.start_async(hello, "c", run_id="o2-async-2")).run_id)
        return f"{span.get_span_context().trace_id:032x}", ids

    trace_id, ids = asyncio.run(main())
    for run_id in ids:
        assert events_of(rt, run_id)[0].data["traceparent"].split("-")[1] == trace_id


class _BrokenTracer:
    def start_span(self, *args: object, **kwargs: object) -> None:
        raise RuntimeError("exporter misconfigured")


class _BrokenProvider:
    def get_tracer(self, *args: object, **kwargs: object) -> _BrokenTracer:
        return _BrokenTracer()


def test_O2_a_tracing_error_never_breaks_a_run_and_is_logged_once(
    runtimes: list[Runtime], db: Target, caplog: pytest.LogCaptureFixture
) -> None:
    rt = open_rt(runtimes, db, tracer_provider=_BrokenProvider())
    with caplog.at_level(logging.WARNING, logger="proctor.tracing"):
        assert [rt.start(parent, i).result(timeout=10) for i in range(3)] == [1, 3, 5]
        wait_until(lambda: "tracing failed" in caplog.text)
    failures = [r for r in caplog.records if "tracing failed" in r.getMessage()]
    assert len(failures) == 1
    assert "exporter misconfigured" in failures[0].getMessage()


def test_O2_A2_the_same_start_from_another_trace_is_the_same_start(
    runtimes: list[Runtime], db: Target, provider: TracerProvider
) -> None:
    """The recorded context is not part of a start's identity: a retried request
    (a new trace) gets the existing run, whose spans stay in the first trace."""
    rt = open_rt(runtimes, db, tracer_provider=provider)
    tracer = provider.get_tracer("test")
    with tracer.start_as_current_span("first try") as first:
        one = rt.start(hello, "a", run_id="o2-same")
    with tracer.start_as_current_span("retry"):
        again = rt.start(hello, "a", run_id="o2-same")
    assert (one.created, again.created) == (True, False)
    recorded = events_of(rt, "o2-same")[0].data["traceparent"]
    assert recorded.split("-")[1] == f"{first.get_span_context().trace_id:032x}"
