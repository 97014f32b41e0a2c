"""The SpanBook: one runtime's open OpenTelemetry spans, fed by the log (O2).

It is the runtime's only observation point for traces. It learns every
fact from the durable record: the events its Journal commits (and the
``ts`` the store gave them), and the control requests of other processes
its ControlInbox reads. No supervisor or step calls it, so what a trace
shows is what the log says, at the log's times (span start/end and event
timestamps are the events' ``ts``, in nanoseconds).

Spans (the names follow Temporal's interceptor, ``RunWorkflow:<name>`` and
``RunActivity:<name>``, with Proctor's words):

- ``run <workflow>``: from the run's creation (or its claim by a worker,
  started at its ``created_at``; or its resume, ``proctor.resumed=true``)
  to its terminal event. Its parent is its parent run's span (a child run),
  else the W3C ``traceparent`` recorded in its ``run_created`` (the caller
  of ``start()``), else none (a new trace).
- ``step <name>``: one step attempt, from ``step_started`` to its end.

A claim or a resume reads the run's log once (through the runtime's read
pool) for its ``run_created``: its workflow, its creation time and its
recorded trace context. Nothing else is read.

Invariants: every span is ended, and every span event added, on the
runtime's tracing thread only (``_tracing_thread``), so an exporter that
blocks in ``span.end()`` blocks nobody else. The Journal's thread calls
only :meth:`SpanBook.stamp` (before a commit) and :meth:`SpanBook.created`
(after it: it *starts* the run span of a created run, which exports
nothing, so that a child created in the next commit records its parent's
span context); the open run spans they share are behind a lock that no
``end()`` holds. A span is ended at most once; a tracing error never
reaches the caller: it is logged once, and the book goes on.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.trace import Span, Status, StatusCode, Tracer
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from actors._tracing_events import (
    ATTEMPT_OUTCOMES,
    ERROR_OUTCOMES,
    OPENING,
    RUN_OUTCOMES,
    SPAN_EVENTS,
    Fact,
    error_text,
    event_attributes,
    to_ns,
)
from persistence import Appended, AppendOutcome, EventRecord, EventType, NewEvent

logger = logging.getLogger("proctor.tracing")

_E = EventType
_W3C = TraceContextTextMapPropagator()

#: Reads a run's log (its first event is its ``run_created``).
ReadLog = Callable[[str], Sequence[EventRecord]]


@dataclasses.dataclass(slots=True)
class _Run:
    span: Span
    workflow: str
    #: Open attempt spans, by (call, attempt).
    attempts: dict[tuple[int, int], Span] = dataclasses.field(default_factory=dict)


class SpanBook:
    """The open run and attempt spans of one runtime (see the module)."""

    def __init__(self, tracer: Tracer, owner: str) -> None:
        self._tracer = tracer
        self._owner = owner
        self._runs: dict[str, _Run] = {}
        #: Shared with the Journal's thread, behind the lock: the started run
        #: spans by run id, and the runs it created that this thread has yet to see.
        self._lock = threading.Lock()
        self._open_spans: dict[str, Span] = {}
        self._pending: dict[str, _Run] = {}
        self._warned = False

    # -- what the Journal tells -------------------------------------------------

    def stamp(self, events: Sequence[NewEvent]) -> tuple[NewEvent, ...] | None:
        """``events`` with each child run's ``run_created`` carrying the W3C
        context of its parent run's span, or None if none needed it.

        Called before the commit, so the child's trace survives its parent's
        process: a runtime that resumes the child parents it there too. A
        child created before the tracing thread opened its parent's span (in
        the parent's first group, or while the thread lags) gets the
        parent's own recorded context if that is in the same group, else
        none: its span is still parented here, from the log, in order.
        """
        try:
            with self._lock:
                created: dict[str, Mapping[str, Any]] = {}
                stamped = tuple(self._stamp(ev, created) for ev in events)
        except Exception as exc:
            self._failed(exc)
            return None
        return None if all(a is b for a, b in zip(stamped, events, strict=True)) else stamped

    def created(self, events: Sequence[NewEvent], outcomes: Sequence[AppendOutcome]) -> None:
        """The Journal committed ``events``: start the run span of each run
        created (on the Journal's thread: starting exports nothing)."""
        for event, outcome in zip(events, outcomes, strict=True):
            if event.type is not _E.RUN_CREATED or not isinstance(outcome, Appended):
                continue
            try:
                run = self._new_run(event.run_id, event.type, event.data, outcome.ts or 0.0)
                with self._lock:
                    self._pending[event.run_id] = run
            except Exception as exc:
                self._failed(exc)

    def committed(
        self, events: Sequence[NewEvent], outcomes: Sequence[AppendOutcome], read: ReadLog
    ) -> None:
        """The Journal committed ``events`` (with these ``outcomes``)."""
        for event, outcome in zip(events, outcomes, strict=True):
            if not isinstance(outcome, Appended) or outcome.ts is None:
                continue
            try:
                fact = Fact(
                    run_id=event.run_id,
                    type=event.type,
                    ts=outcome.ts,
                    data=event.data,
                    step=event.step,
                    call=event.call,
                    attempt=event.attempt,
                )
                self._observe(fact, read)
            except Exception as exc:
                self._failed(exc)

    def terminated(self, run_ids: Sequence[str], reason: str | None, ts: float) -> None:
        """This runtime terminated ``run_ids`` (a run and its descendants, T1/T4)."""
        data = {"reason": reason} if reason is not None else {}
        for run_id in run_ids:
            self.requested(Fact(run_id=run_id, type=_E.TERMINATE_REQUESTED, ts=ts, data=data))

    def requested(self, request: Fact) -> None:
        """A cancel or terminate request of ``run_id``, recorded at ``ts``.

        A terminate request ends the run span (TERMINATED): the request and
        the run's end are one transaction (T1).
        """
        try:
            self._observe(request, _no_log)
            if request.type is _E.TERMINATE_REQUESTED:
                ended = Fact(run_id=request.run_id, type=_E.RUN_TERMINATED, ts=request.ts)
                self._observe(ended, _no_log)
        except Exception as exc:
            self._failed(exc)

    def request_read(self, record: EventRecord) -> None:
        """The ControlInbox read a request another process wrote."""
        if record.data.get("origin") == self._owner:
            return  # ours: the Journal saw it committed
        if record.type in (_E.CANCEL_REQUESTED, _E.TERMINATE_REQUESTED):
            self.requested(
                Fact(run_id=record.run_id, type=record.type, ts=record.ts, data=record.data)
            )

    def suspend(self, ts: float) -> None:
        """The runtime stops; its unfinished runs stay in the store.

        Their spans end now with ``proctor.suspended=true`` and no outcome:
        the runtime that resumes a run opens a new run span (``proctor.resumed``).
        """
        try:
            runs, self._runs = self._runs, {}
            with self._lock:
                pending, self._pending = self._pending, {}
                self._open_spans.clear()
            for run in (*runs.values(), *pending.values()):
                for span in run.attempts.values():
                    span.set_attribute("proctor.suspended", True)
                    span.end(end_time=to_ns(ts))
                run.span.set_attribute("proctor.suspended", True)
                run.span.end(end_time=to_ns(ts))
        except Exception as exc:
            self._failed(exc)

    # -- the model ----------------------------------------------------------------

    def _stamp(self, ev: NewEvent, created: dict[str, Mapping[str, Any]]) -> NewEvent:
        if ev.type is not _E.RUN_CREATED:
            return ev
        created[ev.run_id] = ev.data
        parent_id = ev.data.get("parent_run_id")
        if not isinstance(parent_id, str) or "traceparent" in ev.data:
            return ev
        parent = self._open_spans.get(parent_id)
        carrier: dict[str, str] = {}
        if parent is not None:
            _W3C.inject(carrier, context=trace.set_span_in_context(parent))
        else:
            first = created.get(parent_id, {})
            carrier = {k: v for k in _W3C.fields if isinstance(v := first.get(k), str)}
        return dataclasses.replace(ev, data={**ev.data, **carrier}) if carrier else ev

    def _observe(self, fact: Fact, read: ReadLog) -> None:
        run_id, type_, data, ts = fact.run_id, fact.type, fact.data, fact.ts
        if type_ in OPENING:
            self._open(run_id, type_, data, ts, read)
            return
        run = self._runs.get(run_id)
        if run is None:
            return  # not hosted here (a request for another runtime's run)
        key = fact.attempt_key
        if type_ is _E.STEP_STARTED and key is not None:
            self._start_attempt(run_id, run, fact.step, key, ts)
        elif type_ in ATTEMPT_OUTCOMES and key is not None:
            span = run.attempts.pop(key, None)
            if span is not None:
                _end(span, ATTEMPT_OUTCOMES[type_], data, ts)
        elif type_ in SPAN_EVENTS:
            attributes = event_attributes(type_, data, fact.step, fact.call)
            run.span.add_event(SPAN_EVENTS[type_], attributes, timestamp=to_ns(ts))
            concerned = run.attempts.get(key) if key is not None else None
            if concerned is not None:
                concerned.add_event(SPAN_EVENTS[type_], attributes, timestamp=to_ns(ts))
        elif type_ in RUN_OUTCOMES:
            self._forget(run_id)
            for span in run.attempts.values():  # left running by the run's end (T3)
                _end(span, "abandoned", {}, ts)
            _end(run.span, RUN_OUTCOMES[type_], data, ts)

    def _open(
        self, run_id: str, type_: EventType, data: Mapping[str, Any], ts: float, read: ReadLog
    ) -> None:
        created: Mapping[str, Any] = data
        start = ts
        run: _Run | None = None
        if type_ is _E.RUN_CREATED:
            with self._lock:
                run = self._pending.pop(run_id, None)  # started by created()
        else:
            log = read(run_id)
            if not log or log[0].type is not _E.RUN_CREATED:
                return
            created = log[0].data
            if type_ is _E.RUN_CLAIMED:
                start = log[0].ts  # the run's span covers it from its creation
        old = self._runs.pop(run_id, None)
        if old is not None:  # taken again without an end seen here (fencing)
            self._runs[run_id] = old
            self._suspend_one(run_id, ts)
        if run is None:
            run = self._new_run(run_id, type_, created, start)
        self._runs[run_id] = run

    def _new_run(
        self, run_id: str, type_: EventType, created: Mapping[str, Any], start: float
    ) -> _Run:
        workflow = str(created.get("workflow", ""))
        attributes: dict[str, str | bool] = {"proctor.run_id": run_id, "proctor.workflow": workflow}
        parent_run = created.get("parent_run_id")
        if isinstance(parent_run, str):
            attributes["proctor.parent_run_id"] = parent_run
        if type_ is _E.RUN_RESUMED:
            attributes["proctor.resumed"] = True
        span = self._tracer.start_span(
            f"run {workflow}",
            context=self._parent_context(created),
            attributes=attributes,
            start_time=to_ns(start),
        )
        with self._lock:
            self._open_spans[run_id] = span
        return _Run(span=span, workflow=workflow)

    def _parent_context(self, created: Mapping[str, Any]) -> otel_context.Context:
        parent_run = created.get("parent_run_id")
        with self._lock:
            parent = self._open_spans.get(parent_run) if isinstance(parent_run, str) else None
        if parent is not None:
            return trace.set_span_in_context(parent)
        carrier = {
            name: value
            for name in ("traceparent", "tracestate")
            if isinstance(value := created.get(name), str)
        }
        # A malformed traceparent extracts to an empty context: a new trace.
        return _W3C.extract(carrier, context=otel_context.Context())

    def _start_attempt(
        self, run_id: str, run: _Run, step: str | None, key: tuple[int, int], ts: float
    ) -> None:
        name = step or "?"
        span = self._tracer.start_span(
            f"step {name}",
            context=trace.set_span_in_context(run.span),
            attributes={
                "proctor.run_id": run_id,
                "proctor.workflow": run.workflow,
                "proctor.step": name,
                "proctor.call": key[0],
                "proctor.attempt": key[1],
            },
            start_time=to_ns(ts),
        )
        stale = run.attempts.pop(key, None)
        if stale is not None:
            _end(stale, "abandoned", {}, ts)
        run.attempts[key] = span

    def _forget(self, run_id: str) -> _Run:
        run = self._runs.pop(run_id)
        with self._lock:
            if self._open_spans.get(run_id) is run.span:
                del self._open_spans[run_id]
        return run

    def _suspend_one(self, run_id: str, ts: float) -> None:
        run = self._forget(run_id)
        for span in run.attempts.values():
            span.end(end_time=to_ns(ts))
        run.span.set_attribute("proctor.suspended", True)
        run.span.end(end_time=to_ns(ts))

    def _failed(self, exc: Exception) -> None:
        # Never let tracing break a run: say it once, then stay quiet.
        if not self._warned:
            self._warned = True
            logger.warning("tracing failed (further errors not logged): %r", exc, exc_info=exc)


def _end(span: Span, outcome: str, data: Mapping[str, Any], ts: float) -> None:
    span.set_attribute("proctor.outcome", outcome)
    if outcome in ERROR_OUTCOMES:
        kind, message = error_text(data)
        if kind or message:
            span.add_event(
                "exception",
                {"exception.type": kind, "exception.message": message},
                timestamp=to_ns(ts),
            )
        span.set_status(Status(StatusCode.ERROR, f"{kind}: {message}" if kind else message))
    span.end(end_time=to_ns(ts))


def _no_log(run_id: str) -> Sequence[EventRecord]:
    return ()
