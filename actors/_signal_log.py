"""Signals of one run (B5): what was sent, what the body took, what is pending.

A signal is a named JSON payload sent to a run from outside (``signal_sent``).
The body takes signals with ``await wait_for_signal(name)``: each wait takes
the oldest pending signal of its name (FIFO per name, in the order the run
learnt of them, which is the log's order for one sender) and records which
one (``signal_received``, naming the signal's id), so that a replay hands
the same payload to the same wait without looking at live state (D2).

:class:`SignalLog` is the pure bookkeeping: folded from a run's log at a
takeover, fed live by deliveries. :class:`WaitForSignal` is what the body
awaits; the run supervisor's ``_signals`` collaborator answers it.

Invariants: a signal is known once, whoever reports it (its id is its
identity); a taken signal is never pending again; pending signals of one
name are taken oldest first.
"""

from __future__ import annotations

from collections.abc import Generator
from dataclasses import dataclass, field
from typing import Any

from persistence import EventRecord, EventType


@dataclass(frozen=True, slots=True)
class SentSignal:
    """One signal sent to the run: its id, name and (JSON) payload."""

    signal_id: str
    name: str
    payload: Any


@dataclass(slots=True)
class SignalLog:
    """Every signal the run knows of, in order, and which ones were taken."""

    #: Every signal known, by id, in the order the run learnt of them.
    sent: dict[str, SentSignal] = field(default_factory=dict)
    #: Ids of the signals a wait took (``signal_received``).
    taken: set[str] = field(default_factory=set)

    def add(self, signal: SentSignal) -> bool:
        """Learn of ``signal``; False if it was known already (a second report)."""
        if signal.signal_id in self.sent:
            return False
        self.sent[signal.signal_id] = signal
        return True

    def fold(self, ev: EventRecord) -> None:
        """Take in one ``signal_sent`` or ``signal_received`` record of the log."""
        data = ev.data
        if ev.type is EventType.SIGNAL_SENT and isinstance(data.get("signal_id"), str):
            self.add(SentSignal(data["signal_id"], str(data.get("name")), data.get("payload")))
        elif ev.type is EventType.SIGNAL_RECEIVED and isinstance(data.get("signal_id"), str):
            self.taken.add(data["signal_id"])

    def adopt(self, other: SignalLog) -> None:
        """Take in what a log read knows (a takeover's history), keeping order:
        the log's signals first, then those delivered since that it lacks."""
        live = [s for s in self.sent.values() if s.signal_id not in other.sent]
        self.sent = dict(other.sent)
        for signal in live:
            self.sent[signal.signal_id] = signal
        self.taken |= other.taken

    def oldest(self, name: str) -> SentSignal | None:
        """The oldest signal of ``name`` not taken yet."""
        for signal in self.sent.values():
            if signal.name == name and signal.signal_id not in self.taken:
                return signal
        return None

    def take(self, signal_id: str) -> SentSignal | None:
        """Mark the signal with this id taken; None if the run never heard of it."""
        signal = self.sent.get(signal_id)
        if signal is not None:
            self.taken.add(signal_id)
        return signal

    def pending(self) -> list[SentSignal]:
        """Signals not taken yet, oldest first."""
        return [s for s in self.sent.values() if s.signal_id not in self.taken]


@dataclass(frozen=True, slots=True)
class WaitForSignal:
    """``await wait_for_signal(name)``: the command the body hands its supervisor."""

    name: str
    timeout: float | None = None

    def __await__(self) -> Generator[Any, Any, Any]:
        payload = yield self
        return payload
