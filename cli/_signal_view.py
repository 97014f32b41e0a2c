"""What ``runs status`` and ``runs logs`` say of a run's signals (B5).

Read from the run's log alone: a signal is pending from its ``signal_sent``
until a wait's ``signal_received`` names its id; the body is waiting for a
signal from its ``signal_waiting`` (call ``n``) until that call's
``signal_received``, or the run's end.

Invariants: pending signals are listed oldest first (log order); those of
a finished run are said "never taken" (``never_taken`` in JSON), as no
wait can take them any more; payloads
are abbreviated to :data:`PAYLOAD_CHARS` characters in every line (the
JSON output of ``runs logs --json`` keeps them whole); the ``signals`` row
of ``runs status`` names at most :data:`NAMES_SHOWN` pending signals and
counts per name for at most as many names, whatever the run holds
(``runs status --json`` keeps the full list, with the counts beside it).
"""

from __future__ import annotations

import json
from collections import Counter
from typing import Any, Final

from persistence import EventRecord, EventType, RunRecord

_E = EventType

#: Signal records, for the log's rendering.
SIGNAL_EVENTS: Final = frozenset({_E.SIGNAL_SENT, _E.SIGNAL_WAITING, _E.SIGNAL_RECEIVED})

#: The most characters of a payload's JSON a line shows.
PAYLOAD_CHARS: Final = 60
#: The most pending signals (and names counted) the ``signals`` row shows.
NAMES_SHOWN: Final = 10


def abbreviated(value: Any) -> str:
    """A payload's JSON, cut to :data:`PAYLOAD_CHARS` characters with an ellipsis."""
    text = json.dumps(value, ensure_ascii=False)
    if len(text) <= PAYLOAD_CHARS:
        return text
    return text[: PAYLOAD_CHARS - 1] + "…" + f" ({len(text)} chars)"


def signal_details(e: EventRecord) -> str:
    """One signal record's details, for ``runs logs``."""
    data = e.data
    signal_id = str(data.get("signal_id", ""))[:8]
    if e.type is _E.SIGNAL_SENT:
        return (
            f"name={data.get('name')!r} payload={abbreviated(data.get('payload'))} id={signal_id}"
        )
    if e.type is _E.SIGNAL_RECEIVED:
        return f"took signal id={signal_id}"
    return "waiting for a signal of this name"


def signal_state(run: RunRecord, events: list[EventRecord]) -> dict[str, Any]:
    """Pending signals (oldest first) and the signal the body waits for, if any."""
    sent: dict[str, dict[str, Any]] = {}
    taken: set[str] = set()
    waits: dict[int, str] = {}
    for e in events:
        signal_id = e.data.get("signal_id")
        if e.type is _E.SIGNAL_SENT and isinstance(signal_id, str):
            sent[signal_id] = {
                "name": e.data.get("name"),
                "signal_id": signal_id,
                "seq": e.run_seq,
                "sent_at": e.ts,
            }
        elif e.type is _E.SIGNAL_RECEIVED and isinstance(signal_id, str):
            taken.add(signal_id)
            waits.pop(e.call if e.call is not None else -1, None)
        elif e.type is _E.SIGNAL_WAITING and e.call is not None and e.step is not None:
            waits[e.call] = e.step
    pending = [s for i, s in sent.items() if i not in taken]
    waiting = None
    if waits and not run.status.is_terminal:
        waiting = waits[max(waits)]
    by_name = Counter(str(s["name"]) for s in pending)
    # A finished run takes no more signals: its untaken ones are kept, marked.
    return {
        "pending": pending,
        "pending_count": len(pending),
        "pending_by_name": dict(by_name.most_common()),
        "waiting_for": waiting,
        "never_taken": run.status.is_terminal,
    }


def signal_rows(state: dict[str, Any]) -> list[tuple[str, str]]:
    """Rows of ``runs status`` for the run's signals (none if there is nothing to say)."""
    rows = []
    if state["waiting_for"] is not None:
        rows.append(("waiting", f"for signal {state['waiting_for']}"))
    pending = state["pending"]
    if pending:
        if state.get("never_taken"):
            rows.append(("signals", pending_line(pending, "never taken (the run ended)")))
        else:
            rows.append(("signals", pending_line(pending)))
    return rows


def pending_line(pending: list[dict[str, Any]], label: str = "pending (oldest first)") -> str:
    """``3 pending (oldest first): a, b, a``; past :data:`NAMES_SHOWN`, the
    first few, ``... and K more``, and the count of each name (the most
    frequent first, at most :data:`NAMES_SHOWN` names): bounded, whatever
    the run holds (3,000 pending once made a 231 KB line)."""
    count = len(pending)
    names = ", ".join(str(s["name"]) for s in pending[:NAMES_SHOWN])
    if count <= NAMES_SHOWN:
        return f"{count} {label}: {names}"
    by_name = Counter(str(s["name"]) for s in pending).most_common()
    counts = ", ".join(f"{name} x{n}" for name, n in by_name[:NAMES_SHOWN])
    if len(by_name) > NAMES_SHOWN:
        counts += f", ... and {len(by_name) - NAMES_SHOWN} more names"
    return (
        f"{count} {label}: {names}, ... and {count - NAMES_SHOWN} more;"
        f" by name: {counts} (all of them: runs status --json)"
    )
