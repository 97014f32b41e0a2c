"""The body's call ``wait_for_signal(name, timeout=)`` (B5), checked at the call.

It builds the :class:`WaitForSignal` command the body awaits (answered by
the run supervisor's ``_signals`` collaborator), after checking that it is
called in a workflow body and that its arguments are good.

Invariant: a ``WaitForSignal`` is built only in a workflow body, with a
valid signal name and a timeout of None or a bounded number of seconds.
"""

from __future__ import annotations

from actors._arguments import optional_seconds
from actors._body_only import body_only
from actors._signal_log import WaitForSignal
from persistence import check_signal_name


def wait_for_signal(name: str, timeout: float | None = None) -> WaitForSignal:
    """In a workflow body: wait for the signal ``name``; returns its payload.

    ``payload = await wait_for_signal("approved")`` takes the oldest signal
    named ``name`` sent to this run and not taken by an earlier wait (FIFO
    per name); a signal sent before the wait is kept until a wait takes it.
    Other names do not satisfy the wait. The wait is durable: the log
    records which signal it took, so a run resumed after a crash hands the
    same payloads to the same waits, in order (D2). It is a checkpoint
    (C2, C3): a cancel raises :class:`CancellationError` there at once,
    unless inside a shield; a terminate ends the run. Signals are sent with
    ``Runtime.signal``, ``Client.signal``, ``RunHandle.signal`` or
    ``proctor signal RUN_ID NAME [JSON]``.

    With ``timeout=s`` the wait runs on a durable body timer due ``s``
    seconds after the wait began (UTC wall clock, recorded with
    ``timer_started``): if it fires first (``timer_fired``), the wait raises
    :class:`SignalTimeout` (a ``TimeoutError``) and takes no signal; a
    signal sent later stays pending for a later wait. A signal taken first
    drops the timer (``timer_cancelled``). Whichever the log records first
    decides, live and on replay; a runtime that resumes the run after a
    crash keeps the original due instant. ``timeout=0`` takes a pending
    signal, or times out at once.

    Peers: Temporal's signals (``workflow.wait_condition(..., timeout=)`` on
    a signal handler's state, which raises ``asyncio.TimeoutError``), DBOS
    ``recv(topic, timeout_seconds)`` (which returns None on a timeout).

    Args:
        name: the signal's name (non-empty text, at most 200 characters).
        timeout: None (wait for as long as it takes), or a finite number of
            seconds >= 0.

    Raises:
        InvalidArgument, InvalidArgumentType: a bad ``name``; a ``timeout``
            that is negative, NaN, infinite, or not a number (a bool, a str).
        SignalTimeout: (at the await) the timeout passed before a signal came.
        CancellationError: the run was cancelled while waiting (or before),
            or a cancel scope around the wait was (its deadline passed, B3;
            ``fail_after`` turns it into ``DeadlineExceeded`` at its exit).
        ProctorError: called in a step or outside a workflow body.
    """
    name = check_signal_name(name)
    seconds = optional_seconds("wait_for_signal(timeout)", timeout)
    body_only("wait_for_signal()")
    return WaitForSignal(name, seconds)
