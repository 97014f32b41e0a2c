"""Workflows of the O2 tests, importable by a ``proctor worker`` subprocess.

Imported with ``PROCTOR_TEST_SPANS=path`` set, this module configures the
process's global tracer provider with an exporter that appends each ended
span to ``path`` as one JSON line, so a test in another process can check
that the worker's spans joined the caller's trace.
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Sequence
from pathlib import Path

from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExporter, SpanExportResult

from actors import step, workflow


class JsonLinesExporter(SpanExporter):
    """Each ended span as one JSON line: name, ids, parent, attributes, event names."""

    def __init__(self, path: Path) -> None:
        self._path = path
        self._lock = threading.Lock()

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        with self._lock, self._path.open("a") as out:
            for span in spans:
                ctx = span.get_span_context()
                assert ctx is not None
                out.write(
                    json.dumps(
                        {
                            "name": span.name,
                            "trace_id": ctx.trace_id,
                            "span_id": ctx.span_id,
                            "parent_id": span.parent.span_id if span.parent else None,
                            "attributes": dict(span.attributes or {}),
                            "events": [e.name for e in span.events],
                        }
                    )
                    + "\n"
                )
        return SpanExportResult.SUCCESS


if os.environ.get("PROCTOR_TEST_SPANS"):
    _provider = TracerProvider()
    _provider.add_span_processor(
        SimpleSpanProcessor(JsonLinesExporter(Path(os.environ["PROCTOR_TEST_SPANS"])))
    )
    trace.set_tracer_provider(_provider)


@step()
def greet(name: str) -> str:
    return f"hello {name}"


@workflow()
async def hello(name: str) -> str:
    return await greet(name)
