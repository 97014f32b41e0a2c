"""Restarting a finished run (A7): what the new run starts with.

A restart is a new run (its own id) of the same workflow with the same
arguments, whose ``run_created`` names the run it restarts
(``restarted_from``, a column of the new run; the old run is never written
to: its restarts are found by that column). With ``from_call=N`` the new
run also starts with the recorded ends of the old run's calls ``0 .. N-1``
(call numbers as the log's ``call`` column counts them, from 0), each as a
``call_reused`` record written in the group that creates the new run: its
body replays them without running them, and runs live from call ``N`` on
(DBOS's fork from a step, Temporal's reset to an event).

Invariants (pure: these read only the records they are given):

- only a finished run is restarted;
- a reused call is one the old run saw complete or fail (for a child run:
  end completed or failed); a call cancelled, abandoned or still unended is
  never reused, and ``from_call`` past it is refused, naming it;
- B1, B5: a durable sleep that fired is reused as fired (its
  ``timer_started`` data, so its due instant, with it); a signal wait that
  took a signal is reused with that signal's id *and payload*, so the new
  run's wait returns the same value though the signal was sent to the old
  run only; a wait that timed out is reused as timed out (its
  ``timer_fired`` is its recorded end, as a step's failure is). A sleep or
  a wait that a cancel ended, or one still waiting, is a cancelled or
  unended call: never reused (as Temporal's reset keeps the history before
  the reset point and DBOS's fork reuses the recorded step outputs before
  it, neither a cancelled nor an unfinished one);
- ``0 <= from_call <= the number of calls the old run recorded``, and no
  more than the first call that cannot be reused: one bound, one message.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Final

from persistence._errors import (
    CorruptRecord,
    InvalidArgument,
    InvalidArgumentType,
    RunNotFinished,
)
from persistence._interface import Store
from persistence._records import EventRecord, NewEvent, RunRecord
from persistence._states import EventType, RunState
from persistence._text import calls_phrase

_E = EventType

_STEP_ENDS: Final = frozenset(
    {_E.STEP_COMPLETED, _E.STEP_FAILED, _E.STEP_TIMED_OUT, _E.STEP_CANCELLED}
)
#: Ends a restart reuses: the call completed, or failed for good.
_REUSABLE: Final = frozenset({_E.STEP_COMPLETED, _E.STEP_FAILED, _E.STEP_TIMED_OUT})
_CHILD_REUSABLE: Final = frozenset({RunState.COMPLETED.value, RunState.FAILED.value})
#: B1, B5: a sleep that fired; a signal wait that took a signal or timed out.
_WAIT_REUSABLE: Final = frozenset({_E.TIMER_FIRED, _E.SIGNAL_RECEIVED})
#: Keys a ``call_reused`` adds to the copied end's data.
REUSE_KEYS: Final = ("from_run", "kind", "end")


@dataclass(slots=True)
class _Call:
    kind: str
    name: str
    end_type: EventType | None = None
    attempt: int | None = None
    data: dict[str, Any] = field(default_factory=dict)


def reused_end(ev: EventRecord | NewEvent) -> tuple[EventType, dict[str, Any]]:
    """A ``call_reused`` record's copied end: (its type, its data)."""
    data = {k: v for k, v in ev.data.items() if k not in REUSE_KEYS}
    return EventType(ev.data["end"]), data


def _calls(events: Sequence[EventRecord]) -> dict[int, _Call]:
    """Each call of a run's log with its final end (None: it has none)."""
    calls: dict[int, _Call] = {}
    payloads: dict[str, Any] = {}  # B5: each signal's payload, by its id
    for ev in events:
        c = ev.call
        if ev.type is _E.SIGNAL_SENT:
            payloads[str(ev.data.get("signal_id"))] = ev.data.get("payload")
        if c is None or _wait_record(calls, c, ev, payloads):
            continue
        if ev.type is _E.STEP_SCHEDULED and ev.step is not None:
            calls[c] = _Call("step", ev.step)
        elif ev.type is _E.CHILD_STARTED and ev.step is not None:
            calls[c] = _Call("child", ev.step, data={"child_run_id": ev.data.get("child_run_id")})
        elif ev.type is _E.CALL_REUSED and ev.step is not None:
            end, data = reused_end(ev)
            calls[c] = _Call(ev.data["kind"], ev.step, end, ev.attempt, data)
        elif c in calls:
            call = calls[c]
            if ev.type in _STEP_ENDS or ev.type is _E.CHILD_ENDED:
                kept = {k: v for k, v in call.data.items() if k == "child_run_id"}
                call.end_type, call.attempt, call.data = ev.type, ev.attempt, {**kept, **ev.data}
            elif ev.type in (_E.STEP_STARTED, _E.STEP_RETRY_SCHEDULED, _E.STEP_ABANDONED):
                call.end_type = None  # not the call's end: another attempt follows, or none
    return calls


def _wait_record(
    calls: dict[int, _Call], c: int, ev: EventRecord, payloads: dict[str, Any]
) -> bool:
    """Fold a record of a sleep or a signal wait (B1, B5) into call ``c``;
    False if ``ev`` is none of theirs."""
    t = ev.type
    if t is _E.SIGNAL_WAITING and ev.step is not None:
        calls[c] = _Call("signal", ev.step)
    elif t is _E.SIGNAL_RECEIVED and ev.step is not None:
        call = calls.setdefault(c, _Call("signal", ev.step))
        signal_id = ev.data.get("signal_id")
        call.end_type = t
        call.data = {"signal_id": signal_id, "payload": payloads.get(str(signal_id))}
    elif t is _E.TIMER_STARTED:
        if c in calls:  # a signal wait's timeout
            calls[c].data = {**calls[c].data, "timer": dict(ev.data)}
        else:
            calls[c] = _Call("timer", ev.step or "timer", data={"timer": dict(ev.data)})
    elif t is _E.TIMER_FIRED or t is _E.TIMER_CANCELLED:
        timed = calls.get(c)
        if timed is not None and timed.end_type is not _E.SIGNAL_RECEIVED:
            # A sleep's end, or a wait's timeout (a cancel's drop ends no wait).
            fired = timed.kind == "timer" or t is _E.TIMER_FIRED
            timed.end_type = t if fired else None
            timed.data = dict(timed.data.get("timer", {}))
    else:
        return False
    return True


def _why_not(call: _Call) -> str | None:
    if call.kind == "signal" and call.end_type is None:
        return "the wait took no signal (it was cancelled, or never ended)"
    if call.end_type is None:
        return "it has no recorded end"
    if call.kind in ("signal", "timer"):
        return None if call.end_type in _WAIT_REUSABLE else f"it ended {call.end_type}"
    if call.end_type is _E.CHILD_ENDED:
        status = call.data.get("status")
        return None if status in _CHILD_REUSABLE else f"the child run ended {status}"
    return None if call.end_type in _REUSABLE else f"it ended {call.end_type}"


def reused_calls(
    old: RunRecord, events: Sequence[EventRecord], from_call: int, new_run_id: str
) -> list[NewEvent]:
    """The ``call_reused`` records of a restart of ``old`` from call ``from_call``.

    Raises:
        InvalidArgumentType: ``from_call`` is not an int.
        InvalidArgument: ``from_call`` is out of range: below 0, past the
            calls recorded, or past a call that did not complete or fail (one
            message, naming the largest ``from_call`` allowed and why).
    """
    if isinstance(from_call, bool) or not isinstance(from_call, int):
        raise InvalidArgumentType(
            "from_call must be an int (a call number),"
            f" got {type(from_call).__name__}: {from_call!r}"
        )
    calls = _calls(events)
    count = max(calls, default=-1) + 1
    # The largest from_call allowed: the first call that cannot be reused, or all.
    most, why_most = count, f"run {old.run_id} recorded {calls_phrase(count)}"
    for c in range(count):
        call = calls.get(c)
        why = "it is not in the log" if call is None else _why_not(call)
        if why is not None:
            what = f"call {c}" if call is None else f"call {c} ({call.kind} {call.name!r})"
            most, why_most = c, f"{what} of run {old.run_id} cannot be reused: {why}"
            break
    if not 0 <= from_call <= most:
        raise InvalidArgument(
            f"from_call must be between 0 and {most} ({why_most}), got {from_call}"
        )
    reused = []
    for c in range(from_call):
        call = calls[c]
        assert call.end_type is not None
        data = {**call.data, "from_run": old.run_id, "kind": call.kind, "end": call.end_type.value}
        reused.append(
            NewEvent(
                run_id=new_run_id,
                type=_E.CALL_REUSED,
                step=call.name,
                call=c,
                attempt=call.attempt,
                data=data,
            )
        )
    return reused


def restart_plan(
    store: Store, run_id: str, from_call: int | None, new_run_id: str, *, owner: str | None
) -> list[NewEvent]:
    """The group that creates a restart of ``run_id``: its ``run_created``
    (owner ``owner``; None: for a worker to claim), then its reused calls.

    Raises:
        RunNotFound: no such run.
        RunNotFinished: the run has not finished; only a finished run restarts.
        InvalidArgument: see :func:`reused_calls`.
    """
    with store.snapshot():
        old = store.get_run(run_id)
        events = store.events(run_id) if from_call else []
    if old.defect is not None:
        raise CorruptRecord(f"run {run_id} cannot be restarted: {old.defect}")
    if not old.status.is_terminal:
        raise RunNotFinished(
            f"run {run_id} is {old.status}: only a finished run (completed, failed, cancelled"
            " or terminated) can be restarted; cancel or terminate it first"
        )
    reused = reused_calls(old, events, from_call, new_run_id) if from_call is not None else []
    created = NewEvent(
        run_id=new_run_id,
        type=_E.RUN_CREATED,
        data={
            "workflow": old.workflow,
            "args": list(old.args),
            "kwargs": dict(old.kwargs),
            "owner": owner,
            "restarted_from": run_id,
            **({"from_call": from_call} if from_call is not None else {}),
        },
    )
    return [created, *reused]
