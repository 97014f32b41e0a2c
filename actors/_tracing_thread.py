"""The tracing thread: a runtime's SpanBook, fed off the store writer's thread (O2).

Spans are started, ended and so exported (a ``SimpleSpanProcessor`` exports
inside ``span.end()``) on one thread of the runtime's own, ``proctor-tracing``,
started only when tracing is on. The Journal and the ControlInbox only hand
over what the log made durable: a non-blocking append to a bounded FIFO
(and the Journal starts the span of a run it just created, which exports
nothing: a child created in the next commit records its parent's context).
An exporter that blocks (an unreachable collector: OTLP waits 10 s) then
delays spans, never a commit, a lease renewal or a run.

Invariants:

- No caller ever blocks on tracing: a hand-over appends or, with
  :data:`QUEUE_BOUND` items waiting, drops the item, counts it and logs
  one WARNING (the first drop; the total at close).
- One thread, first in first out: the SpanBook sees each run's facts in
  log order, at the log's times (span times are the events' ``ts``, never
  the time the thread gets to them).
- :meth:`TracingThread.close` returns within its bound: it drains what is
  queued (the Journal's last item ends the open spans as suspended) and
  joins the thread; if the exporter still blocks it says so in one log
  line, and the (daemon) thread drops the rest and ends as soon as the
  exporter returns.
"""

from __future__ import annotations

import collections
import logging
import threading
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from persistence import AppendOutcome, EventRecord, NewEvent

if TYPE_CHECKING:  # it imports opentelemetry, the optional extra
    from actors._tracing_spans import SpanBook

logger = logging.getLogger("proctor.tracing")

#: Items (one per committed group or read request) that may wait for the thread.
QUEUE_BOUND = 10_000
#: Seconds close() waits for the queue to drain and the thread to end.
CLOSE_DRAIN = 2.0
#: The thread's name (one per runtime that traces).
THREAD_NAME = "proctor-tracing"

ReadLog = Callable[[str], Sequence[EventRecord]]
_Item = Callable[[], None]


class TracingThread:
    """A :class:`~actors._tracing.TraceSink` that runs its SpanBook on a thread of its own.

    ``read`` reads a run's log from any thread (the runtime's read pool): a
    claim or a resume needs its ``run_created``.
    """

    def __init__(self, book: SpanBook, read: ReadLog, *, bound: int | None = None) -> None:
        self._book = book
        self._read = read
        self._bound = QUEUE_BOUND if bound is None else bound
        self._cond = threading.Condition()
        #: Facts waiting, oldest first; flush markers and the stop mark too.
        self._items: collections.deque[_Item | threading.Event | None] = collections.deque()
        self._facts = 0  # how many of _items are facts (the bound counts only those)
        self._stopping = False
        self._abandoned = False
        #: Facts dropped because the queue was full.
        self.dropped = 0
        self._thread = threading.Thread(target=self._run, name=THREAD_NAME, daemon=True)
        self._thread.start()

    # -- the TraceSink: called on the Journal's and the ControlInbox's threads -------

    def stamp(self, events: Sequence[NewEvent]) -> tuple[NewEvent, ...] | None:
        return self._book.stamp(events)  # reads the open run spans' contexts

    def committed(self, events: Sequence[NewEvent], outcomes: Sequence[AppendOutcome]) -> None:
        self._book.created(events, outcomes)  # starts spans: exports nothing
        self._offer(lambda: self._book.committed(events, outcomes, self._read))

    def terminated(self, run_ids: Sequence[str], reason: str | None, ts: float) -> None:
        self._offer(lambda: self._book.terminated(run_ids, reason, ts))

    def request_read(self, record: EventRecord) -> None:
        self._offer(lambda: self._book.request_read(record))

    def suspend(self, ts: float) -> None:
        self._offer(lambda: self._book.suspend(ts))

    # -- the runtime's ----------------------------------------------------------------

    def flush(self, timeout: float) -> bool:
        """Wait up to ``timeout`` s until what was handed over so far is traced;
        False if the thread did not get there (a blocked exporter, a close)."""
        reached = threading.Event()
        with self._cond:
            if self._stopping:
                return not self._thread.is_alive()
            self._items.append(reached)
            self._cond.notify()
        return reached.wait(timeout)

    def close(self, timeout: float | None = None) -> None:
        """Drain for up to ``timeout`` s (None: :data:`CLOSE_DRAIN`), then stop
        the thread (see the module)."""
        timeout = CLOSE_DRAIN if timeout is None else timeout
        with self._cond:
            if self._stopping:
                return
            self._stopping = True
            self._items.append(None)
            self._cond.notify()
        self._thread.join(timeout)
        with self._cond:
            left = self._facts
            if self._thread.is_alive():
                self._abandoned = True
        if self._thread.is_alive():
            logger.warning(
                "tracing: the span exporter did not return within %.1fs of the runtime's"
                " close: %d facts left untraced and open spans not ended",
                timeout,
                left,
            )
        if self.dropped:
            logger.warning("tracing: %d facts were dropped in all (queue full)", self.dropped)

    @property
    def alive(self) -> bool:
        """Whether the thread still runs."""
        return self._thread.is_alive()

    # -- inside -----------------------------------------------------------------------

    def _offer(self, item: _Item) -> None:
        with self._cond:
            if self._stopping:
                return
            if self._facts >= self._bound:
                self.dropped += 1
                first = self.dropped == 1
            else:
                self._items.append(item)
                self._facts += 1
                self._cond.notify()
                return
        if first:
            logger.warning(
                "tracing: %d facts wait for the span exporter (it is slower than the"
                " runs, or blocked): dropping new ones, so spans miss them; runs are"
                " not affected (the total is logged at close)",
                self._bound,
            )

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._items:
                    self._cond.wait()
                if self._abandoned:
                    return
                item = self._items.popleft()
                if item is not None and not isinstance(item, threading.Event):
                    self._facts -= 1
            if item is None:
                return
            if isinstance(item, threading.Event):
                item.set()
                continue
            item()  # the SpanBook logs its own errors, never raises
