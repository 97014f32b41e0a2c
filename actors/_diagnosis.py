"""Saying what an unfinished run is waiting for, from its log alone.

A wait that times out (``RunHandle.result(timeout=...)``, the test kit's
waits) is most useful when it says *why* the run is not done: a retry whose
back-off has not passed on the runtime's clock (a virtual clock in tests
must be advanced), a step still running and when it last heartbeat, a
cancel not yet met at a checkpoint. Everything here reads records; nothing
asks the actors, so it works from any process and after any crash.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from typing import Any

from persistence import (
    EventRecord,
    EventType,
    RunRecord,
    StepRecord,
    StepState,
    pending_timers,
)

_E = EventType
#: The ends of a step attempt (its open shields end with it).
_ATTEMPT_ENDS = frozenset(
    {
        _E.STEP_COMPLETED,
        _E.STEP_FAILED,
        _E.STEP_CANCELLED,
        _E.STEP_ABANDONED,
        _E.STEP_TIMED_OUT,
        _E.STEP_REEXECUTED,
    }
)


def timeline(events: Iterable[EventRecord]) -> str:
    """A readable log: one line per event, time from the first (milliseconds)."""
    lines = []
    start: float | None = None
    for e in events:
        start = e.ts if start is None else start
        where = f" {_short(e.step)}#{e.call}" if e.step else ""
        where += f".{e.attempt}" if e.attempt else ""
        data = " ".join(f"{k}={_brief(v)}" for k, v in e.data.items() if k != "origin")
        at = 1000 * (e.ts - start)
        lines.append(f"  {e.run_seq:>3} {at:8.1f}ms {e.type.value}{where} {data}")
    return "\n".join(lines)


def waiting_on(
    record: RunRecord,
    events: Sequence[EventRecord],
    steps: Sequence[StepRecord],
    *,
    now: float | None = None,
) -> list[str]:
    """One sentence per thing the unfinished run waits for; empty if terminal.

    ``now`` is the wall clock (epoch seconds) to measure ages against.
    """
    if record.status.is_terminal:
        return []
    now = time.time() if now is None else now
    found: list[str] = []
    if record.owner is None:
        found.append("no runtime has claimed it yet (is a worker running for its workflow?)")
    found.extend(_pending_retries(events, now))
    found.extend(_running(a, now) for a in steps if a.status is StepState.RUNNING)
    found.extend(
        f"step {_short(a.name)}#{a.call}: attempt {a.attempt} waits for a free step slot"
        " (the runtime's max_concurrent_steps are all taken)"
        for a in steps
        if a.status is StepState.WAITING
    )
    found.extend(_open_children(events))
    found.extend(
        f"a durable timer ({t['kind']} #{t['call']}) due at {t['due']}, "
        + (
            f"in {t['due_at'] - now:.1f}s"
            if t["due_at"] > now
            else f"overdue by {now - t['due_at']:.1f}s"
        )
        + " on the wall clock (a virtual clock must be advanced)"
        for t in pending_timers(events)
    )
    found.extend(_signal_waits(events))
    if record.cancel_requested_at is not None:
        found.append(_cancel(record, events, now))
    if not found:
        found.append("its workflow body, between records (no step or timer is pending)")
    return found


def explain(
    record: RunRecord,
    events: Sequence[EventRecord],
    steps: Sequence[StepRecord],
    *,
    waited: float | None,
) -> str:
    """A timed-out wait's message: the status, what the run waits for, its timeline."""
    reasons = "\n".join(f"  - {r}" for r in waiting_on(record, events, steps))
    after = "" if waited is None else f" after {waited}s"
    return (
        f"run {record.run_id} is still {record.status}{after}; it waits for:\n{reasons}\n"
        f"its log:\n{timeline(events)}"
    )


def _pending_retries(events: Sequence[EventRecord], now: float) -> list[str]:
    """Retries scheduled whose attempt has not started yet."""
    scheduled: dict[tuple[int, int], EventRecord] = {}
    for e in events:
        if e.call is None or e.attempt is None:
            continue
        if e.type is _E.STEP_RETRY_SCHEDULED:
            scheduled[(e.call, e.attempt)] = e
        elif e.type is _E.STEP_STARTED:
            scheduled.pop((e.call, e.attempt), None)
    found = []
    for (call, attempt), e in sorted(scheduled.items()):
        delay = e.data.get("delay")
        retry_at = e.data.get("retry_at")
        due = (
            f"due {retry_at - now:.1f}s from now by the wall clock"
            if isinstance(retry_at, int | float)
            else "due later"
        )
        found.append(
            f"step {_short(e.step)}#{call}: attempt {attempt} waits out a back-off of"
            f" {delay}s on the runtime's clock ({due}; with a virtual clock,"
            " advance it)"
        )
    return found


def _running(attempt: StepRecord, now: float) -> str:
    beat = (
        "no heartbeat yet"
        if attempt.heartbeat_at is None
        else f"last heartbeat {now - attempt.heartbeat_at:.1f}s ago"
        f" (details {_brief(attempt.heartbeat_details)})"
    )
    return (
        f"step {_short(attempt.name)}#{attempt.call}: attempt {attempt.attempt} running for"
        f" {now - attempt.started_at:.1f}s, {beat}"
    )


def _open_children(events: Sequence[EventRecord]) -> list[str]:
    started: dict[int, str] = {}
    for e in events:
        if e.call is None:
            continue
        if e.type is _E.CHILD_STARTED:
            started[e.call] = str(e.data.get("child_run_id", "?"))
        elif e.type is _E.CHILD_ENDED:
            started.pop(e.call, None)
    return [f"child run {child} (call #{call}) to end" for call, child in sorted(started.items())]


def _signal_waits(events: Sequence[EventRecord]) -> list[str]:
    """B5: a ``wait_for_signal`` whose ``signal_waiting`` no ``signal_received`` ended."""
    waits: dict[int, str] = {}
    sent: dict[str, str] = {}
    for e in events:
        signal_id = e.data.get("signal_id")
        if e.type is _E.SIGNAL_WAITING and e.call is not None:
            waits[e.call] = e.step or "?"
        elif e.type is _E.SIGNAL_SENT and isinstance(signal_id, str):
            sent[signal_id] = str(e.data.get("name"))
        elif e.type is _E.SIGNAL_RECEIVED:
            waits.pop(e.call if e.call is not None else -1, None)
            sent.pop(str(signal_id), None)
    found = []
    for call, name in sorted(waits.items()):
        pending = sum(1 for n in sent.values() if n == name)
        found.append(
            f"a signal {name!r} (wait #{call}; {pending} pending of that name): send it"
            " with Runtime.signal, Client.signal or proctor signal"
        )
    return found


def _cancel(record: RunRecord, events: Sequence[EventRecord], now: float) -> str:
    """The run's cancel: buffered by a shield, met and unwinding, or not met yet."""
    assert record.cancel_requested_at is not None
    asked = (
        f"a cancel requested {now - record.cancel_requested_at:.1f}s ago"
        f" ({record.cancel_reason or 'no reason'})"
    )
    # Open shields by where they are: the body's (None) or a step attempt's.
    open_at: dict[tuple[str, int, int | None] | None, list[int]] = {}
    delivered = False
    for e in events:
        where = None if e.step is None or e.call is None else (_short(e.step), e.call, e.attempt)
        if e.type in _ATTEMPT_ENDS:
            open_at.pop(where, None)  # an attempt's shields end with it
        elif e.type is _E.SHIELD_ENTERED:
            open_at.setdefault(where, []).append(e.run_seq)
        elif e.type is _E.SHIELD_EXITED and open_at.get(where):
            open_at[where].pop()
        elif e.type is _E.CANCEL_DELIVERED:
            delivered = True
    if delivered:
        return (
            f"{asked}, met by its code already: the body is unwinding (its cleanup,"
            " shielded or not, runs before the run ends as cancelled)"
        )
    shields = [
        f"{'the workflow body' if where is None else f'step {where[0]}#{where[1]}'}'s"
        f" shield (entered at record {seqs[0]})"
        for where, seqs in open_at.items()
        if seqs
    ]
    if shields:
        return (
            f"{asked}, held by {', '.join(shields)}: it is met at the first checkpoint"
            " after the shield's block ends (S1)"
        )
    return (
        f"{asked} that its code has not met yet: it is met at the next checkpoint (an"
        " await in the body, a step's check_cancellation() or heartbeat())"
    )


def _short(name: str | None) -> str:
    return (name or "?").rsplit(".", 1)[-1]


def _brief(value: Any) -> str:
    if isinstance(value, dict) and "type" in value and "message" in value:
        return f"{value['type']}({value['message']!r})"  # an error: no traceback here
    return repr(value)
