"""Whether a runtime traces (O2), and the trace context of a ``start()``'s caller.

OpenTelemetry is optional (the extra ``proctor[otel]``): this module imports
it only inside its functions, so Proctor imports, starts runs and records
nothing about traces without it.

Tracing is on for a runtime only if the extra is installed AND a real
tracer provider is at hand: the ``tracer_provider`` given to the
``Runtime``, else the global one (``opentelemetry.trace.get_tracer_provider()``),
unless that is still the API's default proxy or a no-op provider. Off,
the runtime holds no :class:`TraceSink` and each commit costs one ``is None``
check. This is how Temporal's ``TracingInterceptor(tracer=None)`` and DBOS's
tracer pick their provider.

Invariants: :func:`trace_context` never raises and returns only W3C fields
(``traceparent``, ``tracestate``) of a valid span context, or nothing; the
decision on/off is taken once, when the runtime is built.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Protocol

from persistence import AppendOutcome, EventRecord, InvalidArgumentType, NewEvent

if TYPE_CHECKING:
    from actors._tracing_spans import SpanBook

logger = logging.getLogger("proctor.tracing")

#: The instrumentation scope of Proctor's spans.
INSTRUMENTATION = "proctor"


class ReadLog(Protocol):
    def __call__(self, run_id: str, /) -> Sequence[EventRecord]: ...


class TraceSink(Protocol):
    """What the Journal and the ControlInbox tell the tracing (``TracingThread``).

    Every method returns at once, whatever happens inside it: it hands the
    fact to the tracing thread (a tracing error is logged once, never
    raised into a run; a full queue drops it).
    """

    def stamp(self, events: Sequence[NewEvent]) -> tuple[NewEvent, ...] | None: ...

    def committed(self, events: Sequence[NewEvent], outcomes: Sequence[AppendOutcome]) -> None: ...

    def terminated(self, run_ids: Sequence[str], reason: str | None, ts: float) -> None: ...

    def request_read(self, record: EventRecord) -> None: ...

    def suspend(self, ts: float) -> None: ...


def start_tracing(provider: object | None, owner: str) -> SpanBook | None:
    """The runtime ``owner``'s SpanBook, or None when tracing is off (see the module);
    its actor tree runs it on a thread of its own (``_tracing_thread``).

    ``provider``: an OpenTelemetry ``TracerProvider``, or None for the global one.

    Raises:
        InvalidArgumentType: (a ``TypeError``) ``provider`` is given but has
            no ``get_tracer`` (not a tracer provider); nothing is started.
    """
    if provider is not None and not callable(getattr(provider, "get_tracer", None)):
        raise InvalidArgumentType(
            "tracer_provider must be an OpenTelemetry TracerProvider,"
            f" got {type(provider).__name__}"
        )
    try:
        from opentelemetry import trace  # noqa: PLC0415 (the extra is optional)

        from actors._tracing_spans import SpanBook  # noqa: PLC0415 (it imports opentelemetry)
    except ImportError:
        if provider is not None:
            logger.warning("tracer_provider given but opentelemetry-api is not installed: no spans")
        return None
    chosen: Any = provider if provider is not None else trace.get_tracer_provider()
    if isinstance(chosen, trace.ProxyTracerProvider | trace.NoOpTracerProvider):
        return None
    return SpanBook(chosen.get_tracer(INSTRUMENTATION), owner)


def trace_context() -> dict[str, str]:
    """The W3C trace context of the caller's current span: ``traceparent`` and,
    if any, ``tracestate``; empty when there is none or OpenTelemetry is missing.

    Recorded in a new run's ``run_created`` so that its spans join the
    caller's trace in whichever process runs or resumes it.
    """
    try:
        from opentelemetry import trace  # noqa: PLC0415 (the extra is optional)
        from opentelemetry.trace.propagation.tracecontext import (  # noqa: PLC0415
            TraceContextTextMapPropagator,
        )
    except ImportError:
        return {}
    try:
        if not trace.get_current_span().get_span_context().is_valid:
            return {}
        carrier: dict[str, str] = {}
        TraceContextTextMapPropagator().inject(carrier)
        return {k: v for k, v in carrier.items() if k in ("traceparent", "tracestate") and v}
    except Exception as exc:  # a broken context: the run starts without one
        logger.warning("could not read the caller's trace context: %r", exc)
        return {}
