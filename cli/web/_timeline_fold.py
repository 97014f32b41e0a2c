"""One pass over a run's event log, gathering what its timeline chart shows.

One concept: :class:`LogFold` takes a run's events in log order and keeps,
per call of the body, a :class:`~cli.web._timeline_lanes.LaneBuilder` (its
bars: step attempts, a child run, a sleep, a signal wait; its back-offs and
marks); for the body, its shield and cancel-scope spans; for the run, its
marks (created, cancel requested, buffered, delivered, terminate, timeouts,
the terminal event). What each event means is docs/semantics.md's; the data
fields read are ``persistence._shapes``'s.

Invariants:

- Pure and total: no I/O, no clock; a field missing or of another type (an
  older Proctor, a hand edit) never raises, and an event with a ``defect``
  becomes a ``defect`` mark besides whatever else it is.
- Times never go back along the log (``time``): an event whose wall-clock
  time is earlier than its predecessor's (another host's clock wrote it,
  P3) is placed at its predecessor's time, so left to right is log order.
- A bar, back-off or span has one start; its end is the first record that
  ends it (a late post-mortem record changes nothing); an attempt's shields
  end with it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Final

from cli.web._timeline_lanes import Bar, CancelSeen, LaneBuilder, OpenSpan
from cli.web._timeline_values import (
    Lane,
    Mark,
    cancel_what,
    cut,
    error_why,
    offset_text,
    run_mark_what,
    source_text,
    why,
)
from persistence import EventRecord, EventType, RunRecord, StepRecord

_E = EventType

_STEP_ENDS: Final[dict[EventType, str]] = {
    _E.STEP_COMPLETED: "completed",
    _E.STEP_FAILED: "failed",
    _E.STEP_CANCELLED: "cancelled",
    _E.STEP_TIMED_OUT: "timed_out",
    _E.STEP_ABANDONED: "abandoned",
}
_TERMINAL: Final[dict[EventType, str]] = {
    _E.RUN_COMPLETED: "COMPLETED",
    _E.RUN_FAILED: "FAILED",
    _E.RUN_CANCELLED: "CANCELLED",
    _E.RUN_TERMINATED: "TERMINATED",
}
_RUN_MARKS: Final[dict[EventType, str]] = {
    _E.RUN_CREATED: "created",
    _E.RUN_STARTED: "started",
    _E.RUN_CLAIMED: "claimed",
    _E.RUN_RESUMED: "resumed",
    _E.SIGNAL_SENT: "signal-sent",
}
#: Records of one call of the body (a step's, a child run's, a sleep's, a wait's).
_CALL_EVENTS: Final = frozenset(
    {
        _E.STEP_SCHEDULED,
        _E.STEP_WAITING,
        _E.STEP_STARTED,
        *_STEP_ENDS,
        _E.STEP_RETRY_SCHEDULED,
        _E.STEP_REEXECUTED,
        _E.CHILD_STARTED,
        _E.CHILD_ENDED,
        _E.TIMER_STARTED,
        _E.TIMER_FIRED,
        _E.TIMER_CANCELLED,
        _E.SIGNAL_WAITING,
        _E.SIGNAL_RECEIVED,
        _E.CALL_REUSED,
    }
)


class LogFold:
    """Feed :meth:`take` the run's events in log order, then read :meth:`lanes`."""

    def __init__(self, run: RunRecord, steps: Sequence[StepRecord]) -> None:
        self.run = run
        #: The latest time seen so far: no event is placed before it.
        self.last = 0.0
        self._lanes: dict[int, LaneBuilder] = {}
        self._bars: dict[tuple[int, int], Bar] = {}
        self._records = {(s.call, s.attempt): s for s in steps if s.run_id == run.run_id}
        self.marks: list[Mark] = []
        self.spans: list[OpenSpan] = []
        #: Open shields and scopes by where: None the body's, (call, attempt) a step's.
        self._open: dict[tuple[int, int | None] | None, list[OpenSpan]] = {}
        self.cancel_at: float | None = None
        #: The calls the cancel reached (delivered, or buffered by a shield); None: the body.
        self._met: set[int | None] = set()
        #: The run's first terminal record: (time, status), None before it.
        self.terminal: tuple[float, str] | None = None

    def time(self, ts: float) -> float:
        self.last = max(self.last, ts - self.run.created_at)
        return self.last

    def _lane(self, call: int, kind: str, name: str) -> LaneBuilder:
        found = self._lanes.get(call)
        if found is None:
            found = self._lanes[call] = LaneBuilder(call, kind, name)
        return found

    def mark(self, kind: str, t: float, e: EventRecord, what: str, **more: Any) -> None:
        self.marks.append(Mark(kind=kind, t=t, seq=e.seq, what=cut(what), **more))

    def take(self, e: EventRecord) -> None:
        """One event, the next in the log."""
        t, d, typ = self.time(e.ts), e.data, e.type
        if e.defect:
            self.mark("defect", t, e, f"record {e.seq} ({typ}) is unreadable: {e.defect}")
        if typ in _CALL_EVENTS:
            if e.call is not None:
                self.call_event(e, t, e.call, e.step or "?")
        elif typ in _TERMINAL:
            status = _TERMINAL[typ]
            self.terminal = self.terminal or (t, status)
            because = why(d.get("reason")) or error_why(d.get("error") or self.run.error)
            self.mark("terminal", t, e, f"run {status}{because}", status=status)
        elif typ in _RUN_MARKS:
            self.mark(_RUN_MARKS[typ], t, e, run_mark_what(e))
        elif typ is _E.CANCEL_REQUESTED:
            self.cancel_at = t if self.cancel_at is None else self.cancel_at
            self.mark("cancel-requested", t, e, cancel_what(d))
            if d.get("source") == "timeout":
                self.mark("timeout", t, e, f"run timeout{why(d.get('reason'))}")
        elif typ is _E.TERMINATE_REQUESTED:
            what = f"terminate requested{source_text(d)}{why(d.get('reason'))}"
            self.mark("terminate-requested", t, e, what)
        elif typ in (_E.CANCEL_BUFFERED, _E.CANCEL_DELIVERED):
            self.cancel_seen(e, t)
        elif typ in (_E.SHIELD_ENTERED, _E.SCOPE_ENTERED):
            self.enter(e, t)
        elif typ in (_E.SHIELD_EXITED, _E.SCOPE_EXITED):
            self.exit(e, t)
        elif typ is _E.SCOPE_CANCELLED:
            deadline = d.get("cause") == "deadline"
            what = f"cancel scope {d.get('scope')} " + (
                "reached its deadline" if deadline else f"cancelled{why(d.get('reason'))}"
            )
            self.mark("timeout" if deadline else "scope-cancelled", t, e, what)
        elif typ is _E.CALL_CANCEL_REQUESTED:
            target = d.get("call_id")
            what = f"the body cancelled call #{target} ({d.get('mode')}){why(d.get('reason'))}"
            self.mark("call-cancel-requested", t, e, what, call=_int(target))

    def cancel_seen(self, e: EventRecord, t: float) -> None:
        """A cancel buffered by a shield, or delivered to a step or to the body."""
        step = f"step {e.step} #{e.call}" if e.call is not None else None
        self._met.add(e.call)
        if e.type is _E.CANCEL_DELIVERED:
            what = f"cancel delivered to {step or 'the workflow body'}"
        else:
            key = None if e.call is None else (e.call, e.attempt)
            held = [s for s in self._open.get(key, []) if s.kind == "shield"]
            by = f"the shield entered at {offset_text(held[-1].t)}" if held else "a shield"
            what = f"cancel buffered by {by} of {step or 'the workflow body'}"
        what += why(e.data.get("reason"))
        kind = "cancel-delivered" if e.type is _E.CANCEL_DELIVERED else "cancel-buffered"
        self.mark(kind, t, e, what, call=e.call, attempt=e.attempt)

    def enter(self, e: EventRecord, t: float) -> None:
        key = None if e.call is None else (e.call, e.attempt)
        stack = self._open.setdefault(key, [])
        scope = e.type is _E.SCOPE_ENTERED
        kind = "shield" if not scope or e.data.get("shield") is True else "scope"
        depth = sum(1 for s in stack if s.kind == kind)
        label = "shield" if not scope else f"cancel scope {e.data.get('scope')}"
        if scope and kind == "shield":
            label = f"shielded {label}"
        where = f" in step {e.step} #{e.call}" if e.call is not None else ""
        deadline = e.data.get("deadline")
        if isinstance(deadline, (int, float)):
            where += f", deadline {offset_text(deadline - self.run.created_at)}"
        stack.append(OpenSpan(kind, t, e.seq, f"{label}{where}", e.call, e.attempt, depth, scope))

    def exit(self, e: EventRecord, t: float) -> None:
        key = None if e.call is None else (e.call, e.attempt)
        stack = self._open.get(key, [])
        scope = e.type is _E.SCOPE_EXITED
        index = next((i for i in reversed(range(len(stack))) if stack[i].scope is scope), None)
        if index is None:
            return
        opened = stack.pop(index)
        opened.end = t
        self.spans.append(opened)
        if opened.kind == "shield":
            pending = " with a cancel pending" if e.data.get("cancel_pending") else ""
            what = f"{opened.what} exited{pending}"
            self.mark("shield-exited", t, e, what, call=e.call, attempt=e.attempt)

    def call_event(self, e: EventRecord, t: float, call: int, name: str) -> None:
        """A record of one call: a step's, a child run's, a sleep's, a signal wait's."""
        d, typ = e.data, e.type
        if typ in (_E.STEP_SCHEDULED, _E.STEP_WAITING, _E.STEP_STARTED):
            self.step_start(e, t, call, name)
        elif typ in _STEP_ENDS:
            self.step_end(e, t, call, name)
        elif typ is _E.STEP_RETRY_SCHEDULED:
            after = f" after {d['after']}" if d.get("after") else ""
            delay = d.get("delay")
            due = offset_text(t + delay) if isinstance(delay, (int, float)) else "later"
            what = f"back-off of {name} #{call}{after}: attempt {e.attempt} due {due}"
            self._lane(call, "step", name).backoffs.append(
                OpenSpan("backoff", t, e.seq, cut(what), call, e.attempt)
            )
        elif typ is _E.STEP_REEXECUTED:
            what = f"step {name} #{call} runs again: attempt {d.get('lost_attempt')} was lost"
            mark = Mark(kind="reexecuted", t=t, seq=e.seq, what=what, call=call, attempt=e.attempt)
            self._lane(call, "step", name).marks.append(mark)
        elif typ is _E.CHILD_STARTED:
            lane = self._lane(call, "child", name)
            child = d.get("child_run_id")
            lane.child = child if isinstance(child, str) else None
            lane.bars.append(Bar(1, t, e.seq, note=f"child run {lane.child}"))
        elif typ is _E.CHILD_ENDED:
            because = error_why(d.get("error")) or why(d.get("reason"))
            self._lane(call, "child", name).end_last(t, str(d.get("status", "?")), because)
        elif typ is _E.TIMER_STARTED and e.step == "sleep":
            self._lane(call, "sleep", "sleep").bars.append(
                Bar(1, t, e.seq, note=f"due {d.get('due')}")
            )
        elif typ in (_E.TIMER_FIRED, _E.TIMER_CANCELLED) and call in self._lanes:
            lane = self._lanes[call]
            fired = typ is _E.TIMER_FIRED
            if lane.kind == "sleep":
                lane.end_last(t, "fired" if fired else "cancelled", why(d.get("reason")))
            elif lane.kind == "signal" and fired:
                lane.end_last(t, "timed_out", None)
        elif typ is _E.SIGNAL_WAITING:
            self._lane(call, "signal", f"signal {name}").bars.append(Bar(1, t, e.seq))
        elif typ is _E.SIGNAL_RECEIVED:
            self._lane(call, "signal", f"signal {name}").end_last(t, "received", None)
        elif typ is _E.CALL_REUSED:
            lane = self._lane(call, "reused", name)
            note = f"reused from run {d.get('from_run')} ({d.get('end')})"
            lane.bars.append(Bar(1, t, e.seq, "reused", t, note))

    def step_start(self, e: EventRecord, t: float, call: int, name: str) -> None:
        lane = self._lane(call, "step", name)
        if e.type is _E.STEP_SCHEDULED or e.attempt is None:
            return
        bar = self._bars.get((call, e.attempt))
        if bar is None:
            bar = Bar(e.attempt, t, e.seq, shielded=e.data.get("shielded") is True, waiting=True)
            self._bars[(call, e.attempt)] = bar
            lane.bars.append(bar)
        if e.type is _E.STEP_STARTED and bar.waiting:
            bar.start, bar.seq, bar.waiting = t, e.seq, False
            for backoff in lane.backoffs:
                if backoff.end is None and backoff.attempt == e.attempt:
                    backoff.end = t

    def step_end(self, e: EventRecord, t: float, call: int, name: str) -> None:
        if e.attempt is None:
            return
        bar = self._bars.get((call, e.attempt))
        if bar is None:  # its start is not in the log (a log read from the middle)
            bar = self._bars[(call, e.attempt)] = Bar(e.attempt, t, None)
            self._lane(call, "step", name).bars.append(bar)
        if bar.end is not None:
            return  # a late post-mortem record of an attempt already ended
        bar.end, bar.outcome, bar.waiting = t, _STEP_ENDS[e.type], False
        bar.note = error_why(e.data.get("error")) or why(e.data.get("reason")) or None
        if e.type is _E.STEP_TIMED_OUT:
            kind = str(e.data.get("kind") or "timeout").replace("_", " ")
            what = f"step {name} #{call} attempt {e.attempt}: {kind}"
            mark = Mark(kind="timeout", t=t, seq=e.seq, what=what, call=call, attempt=e.attempt)
            self._lane(call, "step", name).marks.append(mark)
        for opened in self._open.pop((call, e.attempt), []):
            opened.end = t  # an attempt's shields end with it
            self.spans.append(opened)

    def close(self, ended: tuple[float, str] | None = None) -> None:
        """The log is read. A run still going: what is open stays open (drawn to
        the chart's end). ``ended`` (the run's end: time, status): nothing of it
        runs any more, so every open bar, back-off and span ends there, a bar
        as ``abandoned`` saying why (as Temporal closes a terminated workflow's
        pending activities and timers with it)."""
        if ended is not None:
            t, status = ended
            end = "was terminated" if status == "TERMINATED" else f"ended {status}"
            note = f"the run {end} at {offset_text(t)}: nothing of it runs any more"
            for lane in self._lanes.values():
                for bar in lane.bars:
                    if bar.end is None:
                        bar.end, bar.outcome, bar.note = max(t, bar.start), "abandoned", note
                        bar.waiting = False
                for backoff in lane.backoffs:
                    if backoff.end is None:
                        backoff.end, backoff.what = max(t, backoff.t), f"{backoff.what}; {note}"
        for stack in self._open.values():
            for opened in stack:
                if ended is not None:
                    opened.end, opened.what = max(ended[0], opened.t), f"{opened.what}; {note}"
            self.spans.extend(stack)
        self._open.clear()

    def calls(self) -> list[int]:
        """The calls seen, in call order: one lane each."""
        return sorted(self._lanes)

    @property
    def cancel(self) -> CancelSeen:
        return CancelSeen(self.cancel_at, self._met)

    def bars(self, call: int) -> list[tuple[float, float | None, str]]:
        """A call's bars as (start, end or None, outcome): cheap, for a lane not drawn."""
        return self._lanes[call].summary()

    def interest(self, call: int) -> int:
        """How much an operator wants the call's lane drawn (lower: more)."""
        return self._lanes[call].interest(self.cancel)

    def lane(self, call: int, end: float) -> Lane:
        """A call's lane, frozen; its open bars are drawn to ``end``."""
        own = [s.frozen() for s in self.spans if s.call == call]
        return self._lanes[call].freeze(end, self.cancel, self._records, self.run.created_at, own)


def _int(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None
