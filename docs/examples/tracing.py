"""OpenTelemetry spans of a run, in the trace of the request that started it (O2).

The application configures a tracer provider (here the SDK's, with an
in-memory exporter, to print what it gets; in production an OTLP exporter)
and hands it to the Runtime, or sets it globally before building the Runtime.
"""

import tempfile
from pathlib import Path

from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from actors import RetryPolicy, Runtime, get_context, step, workflow

exporter = InMemorySpanExporter()
provider = TracerProvider()
provider.add_span_processor(SimpleSpanProcessor(exporter))
# or: opentelemetry.trace.set_tracer_provider(provider) before Runtime(...)


@step(retry=RetryPolicy(max_attempts=3, initial_interval=0.01))
def reserve(order_id: str) -> str:
    if get_context().attempt == 1:
        raise ConnectionError("inventory service unreachable")
    return f"reservation for {order_id}"


@step()
def ship(reservation: str) -> str:
    return f"shipped ({reservation})"


@workflow()
async def order(order_id: str) -> str:
    return await ship(await reserve(order_id))


with (
    tempfile.TemporaryDirectory() as folder,
    Runtime(Path(folder) / "orders.db", tracer_provider=provider) as rt,
):
    # A web framework's instrumentation opens this span for each request.
    with provider.get_tracer("shop").start_as_current_span("POST /orders"):
        handle = rt.start(order, "o-1")
    print(handle.result(timeout=30))

# Spans end as the log's events commit; the run's last one closes the tree.
spans = exporter.get_finished_spans()
by_id = {s.context.span_id: s for s in spans}


def depth(span):
    return 0 if span.parent is None else 1 + depth(by_id[span.parent.span_id])


for span in sorted(spans, key=lambda s: (s.start_time, depth(s))):
    outcome = span.attributes.get("proctor.outcome", "")
    print("  " * depth(span) + f"{span.name} {outcome}".rstrip())
assert len({s.context.trace_id for s in spans}) == 1  # one trace
print(sorted(span.attributes.get("proctor.outcome", "-") for span in spans))
