"""Signal waits: one run's ``await wait_for_signal(name)``, answered (B5).

The run's supervisor hands this collaborator each ``WaitForSignal`` the body
awaits, each signal reported to the run (``SignalArrived``: from the facade
after its commit, or from the ControlInbox for another process's), and the
run's cancel. A wait is a call of the body: it takes the next call id, so
replay finds it again, and it is one checkpoint (C2, C3).

- A wait whose log records the signal it took (``signal_received``) gets
  that signal's payload again, from the log, in replay (D2).
- Live, it takes the oldest pending signal of its name (``SignalLog``), or,
  if there is none, records ``signal_waiting`` and suspends the body until
  one arrives, or until a cancel meets it.
- A cancel meets a suspended wait at once, outside a shield (C3), recorded
  as delivered at the wait's checkpoint, exactly as replay will meet it
  there; inside a shield it is buffered (S1) and the wait goes on.
- A cancel scope's cancel (B3: its deadline, or an outer scope's) meets a
  suspended wait started inside it and not behind a shield inside it, the
  same way: the scope's ``scope_cancelled`` names the wait's checkpoint,
  so replay raises it there (``interrupt``), before it looks for a signal.
- A terminate ends the run (T2): the wait simply never resumes.

- A wait with a timeout that finds no pending signal starts a durable
  body timer (``_body_timers``) for its own call id, kind
  ``signal_timeout``, in the same group as its ``signal_waiting``. The
  first of ``signal_received`` and the timer's ``timer_fired`` to be
  recorded ends the wait (both reach the supervisor through its mailbox,
  one at a time): a signal drops the timer (``timer_cancelled``); a fired
  timer raises ``SignalTimeout`` and leaves later signals pending. Replay
  reads which one the log has; a timer the log shows started and not ended
  is resumed at its recorded instant. The run's cancel drops it too (the
  timer has no ``on_run_cancel`` of its own: :meth:`SignalWaits.on_cancel`
  ends the wait, so a shielded wait keeps its timer).
  (:meth:`SignalWaits.end_wait` is the one place a suspended wait ends.)

Invariants: at most one wait is suspended (the body awaits one thing at a
time); a signal is taken by at most one wait, and each wait takes at most
one signal; every wait takes exactly one checkpoint, whichever way it ends,
so a replay counts checkpoints as the first run did.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from actors._base import logger
from actors._body import AwaitResult, Body
from actors._body_timers import BodyTimers
from actors._errors import CancellationError, NonDeterminismError, SignalTimeout
from actors._log_records import run_extra
from actors._messages import SignalArrived
from actors._recorder import Recorder
from actors._replay import RecordedCall
from actors._signal_log import SentSignal, SignalLog, WaitForSignal
from persistence import EventType, NewEvent, Store, StoreError

_E = EventType

#: The kind of the body timer of a wait's timeout (the ``step`` of its records).
SIGNAL_TIMEOUT = "signal_timeout"


class SignalHost(Protocol):
    """What signal waits need of the run supervisor."""

    @property
    def replaying(self) -> bool: ...

    def go_live(self) -> None: ...

    def may_start(self) -> bool:
        """Not terminated, not ended, not draining: the body may go on here."""

    def cancel_due(self) -> bool: ...

    def drive(self, value: Any = None, error: BaseException | None = None) -> None:
        """Resume the body with ``value`` (or ``error``) until it waits again."""

    def resume_later(self, reason: str | None) -> None:
        """Resume the body with a CancellationError through the mailbox."""


@dataclass(frozen=True, slots=True)
class SuspendedWait:
    """The body's wait for a signal that has not come yet."""

    call_id: int
    name: str
    #: The seconds the wait was given (None: no timeout).
    timeout: float | None = None
    #: The body's checkpoint at the wait (its one checkpoint).
    at_checkpoint: int = 0


class SignalWaits:
    """One run's signals and its body's waits for them (see the module docstring)."""

    def __init__(
        self,
        host: SignalHost,
        *,
        run_id: str,
        body: Body,
        log: Recorder,
        reader: Store,
        timers: BodyTimers,
    ) -> None:
        self._host = host
        self._timers = timers
        self._run_id = run_id
        self._reader = reader
        self._body = body
        self._log = log
        #: Every signal the run knows of, and which were taken.
        self.known = SignalLog()
        #: The wait the body is suspended in; None while it runs or awaits another thing.
        self.waiting: SuspendedWait | None = None

    # -- what the run learns ------------------------------------------------------

    def adopt(self, log: SignalLog) -> None:
        """A takeover read the run's log: its signals, sent and taken, come first."""
        self.known.adopt(log)

    def read_log(self) -> None:
        """A run this runtime claimed, whose log it does not replay (it never
        started): the signals sent to it before now are read from its log.

        Read before its ``run_started`` is written; a signal written after
        the read reaches the run through the ControlInbox (its supervisor is
        in the Directory already), and one heard of twice is kept once.
        """
        try:
            events = self._reader.events(self._run_id)
        except StoreError as exc:
            logger.warning(
                "run %s: cannot read its signals: %s",
                self._run_id,
                exc,
                extra=run_extra(self._run_id),
            )
            return
        log = SignalLog()
        for ev in events:
            log.fold(ev)
        self.adopt(log)

    def on_signal(self, msg: SignalArrived) -> None:
        """A signal's ``signal_sent`` committed; a wait for its name takes it."""
        if not self.known.add(SentSignal(msg.signal_id, msg.name, msg.payload)):
            return  # heard of twice (our own delivery, then the ControlInbox's scan)
        waiting = self.waiting
        if waiting is None or waiting.name != msg.name or not self._host.may_start():
            return  # (draining: the runtime that resumes the run takes it)
        signal = self.known.oldest(waiting.name)
        assert signal is not None
        value = self._take(waiting.call_id, signal)
        # The signal came first: the timeout's timer (if any) never fires now.
        self._timers.drop(waiting.call_id, f"signal {waiting.name!r} received")
        self.end_wait(value=value)

    def on_cancel(self) -> None:
        """The run's cancel came in: a suspended wait meets it, unless shielded (C3, S1)."""
        waiting = self.waiting
        if waiting is None or not self._host.may_start() or not self._host.cancel_due():
            return
        error = self._body.deliver_cancel()
        self._timers.drop(waiting.call_id, error.reason)
        self.end_wait(error=error)

    def checkpoint_of(self, call_ids: list[int]) -> int | None:
        """B3: the checkpoint of the wait suspended as one of ``call_ids``, or None."""
        waiting = self.waiting
        if waiting is None or waiting.call_id not in call_ids:
            return None
        return waiting.at_checkpoint

    def interrupt(self, call_ids: list[int], error: CancellationError) -> bool:
        """B3: a cancel scope around the suspended wait is cancelled: it ends.

        ``call_ids`` are the scope's calls (none behind a shield inside it,
        S1); ``error`` is the scope's cancel the wait raises, at its own
        checkpoint, where the scope's ``scope_cancelled`` names it (so
        replay meets it there before it looks at any signal, D2). Its
        timeout timer is dropped; a signal sent later stays pending. False
        if no wait of these calls is suspended.
        """
        if self.checkpoint_of(call_ids) is None or not self._host.may_start():
            return False
        assert self.waiting is not None
        self._timers.drop(self.waiting.call_id, error.reason)
        self.end_wait(error=error)
        return True

    def _timed_out(self, call_id: int) -> None:
        """The timeout's timer fired (``timer_fired`` is deferred): the wait raises."""
        waiting = self.waiting
        if waiting is None or waiting.call_id != call_id:
            return  # cannot happen: a wait's end drops its timer first
        self.end_wait(error=SignalTimeout(waiting.name, waiting.timeout))

    def end_wait(self, *, value: Any = None, error: BaseException | None = None) -> None:
        """The suspended wait ends: with a signal's payload, or with ``error``.

        A cancel resumes the body through the mailbox, so that a Terminate
        that came with it is read first (T2), as at any await.
        """
        self.waiting = None
        if isinstance(error, CancellationError):
            self._body.raise_later(error)  # a scope's (B3) stays that scope's
        else:
            self._host.drive(value=value, error=error)

    # -- the body's await -----------------------------------------------------------

    def on_await(self, command: WaitForSignal) -> AwaitResult | None:
        """``await wait_for_signal(name)``: its payload now, or once a signal comes."""
        body = self._body
        # The wait's one checkpoint (C3). Its call id is taken either way, so
        # that replay numbers the calls after it as the first run did, whether
        # the cancel met the wait at once or while it waited.
        due = body.checkpoint_due()
        call_id = body.next_call_id()
        if due:
            return None, body.deliver_cancel()
        recorded = self._recorded(call_id, command.name)
        if isinstance(recorded, NonDeterminismError):
            body.fail_replay(recorded)
            return None
        if recorded is not None and recorded.end is not None:
            # Replay (D2): the log says which signal this wait took.
            if "payload" in recorded.end.data:
                # A7: reused from the run this one restarts, payload and all.
                return recorded.end.data["payload"], None
            signal_id = recorded.end.data.get("signal_id")
            signal = self.known.take(signal_id) if isinstance(signal_id, str) else None
            if signal is None:
                body.fail_replay(
                    self._diverged(f"wait {call_id} took signal {signal_id!r}, not in its log")
                )
                return None
            return signal.payload, None
        if recorded is not None and _timed_out(recorded):
            # Replay: the log says the timeout fired before any signal came.
            return None, SignalTimeout(command.name, command.timeout)
        signal = self.known.oldest(command.name)
        if signal is None and command.timeout == 0 and recorded is None:
            # No time to wait for a delivery under way: a signal whose send
            # returned before this wait is in the log, so read it there.
            self.read_log()
            signal = self.known.oldest(command.name)
        self._host.go_live()
        if signal is not None:
            value = self._take(call_id, signal)
            if recorded is not None and _timer_pending(recorded):
                # Resumed with a signal sent while nobody hosted the run: end its timer.
                self._arm(call_id, command, recorded)
                self._timers.drop(call_id, f"signal {command.name!r} received")
            return value, None
        if recorded is None:
            self._write(NewEvent(run_id=self._run_id, type=_E.SIGNAL_WAITING), call_id, command)
        checkpoint = body.next_checkpoint - 1  # the one taken above
        self.waiting = SuspendedWait(call_id, command.name, command.timeout, checkpoint)
        # timeout=0 with nothing pending: a timer due now, recorded like any
        # other, so the wait times out at once and replay decides the same.
        self._arm(call_id, command, recorded)
        if self._host.cancel_due():
            # D3: the run was cancelled while nobody hosted it, and resumed here.
            self.waiting = None
            error = body.deliver_cancel()
            self._timers.drop(call_id, error.reason)
            return None, error
        return None

    def _arm(self, call_id: int, command: WaitForSignal, recorded: RecordedCall | None) -> None:
        """Start the wait's timeout timer, or resume the one its log shows pending."""
        if command.timeout is None or call_id in self._timers.pending:
            return
        if recorded is not None and recorded.timer is not None:
            if recorded.timer_end is not None:
                return  # dropped by a cancel met here: the wait goes on untimed
            due_at = float(recorded.timer["due_at"])
            self._timers.resume(
                call_id, kind=SIGNAL_TIMEOUT, due_at=due_at, on_fired=self._timed_out
            )
            return
        self._timers.start(
            call_id,
            kind=SIGNAL_TIMEOUT,
            due_at=self._timers.now() + command.timeout,
            seconds=command.timeout,
            on_fired=self._timed_out,
        )

    # -- helpers ----------------------------------------------------------------------

    def _take(self, call_id: int, signal: SentSignal) -> Any:
        """Record that wait ``call_id`` took ``signal``; its payload."""
        self.known.take(signal.signal_id)
        event = NewEvent(
            run_id=self._run_id,
            type=_E.SIGNAL_RECEIVED,
            data={"signal_id": signal.signal_id},
        )
        self._write(event, call_id, WaitForSignal(signal.name))
        return signal.payload

    def _write(self, event: NewEvent, call_id: int, command: WaitForSignal) -> None:
        event = NewEvent(
            run_id=event.run_id, type=event.type, step=command.name, call=call_id, data=event.data
        )
        if self._log.driving:
            self._log.defer(event)  # with the body's next records, in one group
        else:
            self._log.append(event, tag=None)

    def _recorded(self, call_id: int, name: str) -> RecordedCall | NonDeterminismError | None:
        """What the log has for wait ``call_id`` (replay), or the divergence; None if live."""
        history = self._body.history
        if not self._host.replaying or history is None:
            return None
        recorded = history.calls.get(call_id)
        what = f"a wait for signal {name!r}"
        if recorded is None:
            if history.body:
                return self._diverged(
                    f"call {call_id} is {what}, but the log has {history.body[0].type} first"
                )
            return None
        if recorded.kind != "signal" or recorded.name != name:
            return self._diverged(
                f"call {call_id} is {what}, but the log has {recorded.describe()}"
            )
        return recorded

    def _diverged(self, detail: str) -> NonDeterminismError:
        history = self._body.history
        if history is not None:
            return history.diverged(detail)
        return NonDeterminismError(f"replay of run {self._run_id} diverged from its log: {detail}")


def _timed_out(recorded: RecordedCall) -> bool:
    """The log shows the wait's timeout firing (and no signal taken)."""
    return recorded.timer_end is not None and recorded.timer_end.type is _E.TIMER_FIRED


def _timer_pending(recorded: RecordedCall) -> bool:
    """The log shows the wait's timeout timer started and not ended."""
    return recorded.timer is not None and recorded.timer_end is None
