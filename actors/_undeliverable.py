"""What a message promised its sender, kept when the message cannot be handled.

Invariant: every message an actor takes is handled, or its sender hears why
not. pykka answers an ``ask`` whose actor died, but Proctor's own messages
carry their promises inside them (a ``reply`` future, a ``notify`` actor,
prepared step attempts to ``launch``), which pykka cannot see. A message
that is sent to a dead actor, is still in the mailbox when its actor stops,
arrives after that, or was taken by a handler that then failed, goes through
:func:`refuse`, so that no caller waits out a timeout for an answer that
will never come and no prepared actor is left neither launched nor
discarded.
"""

from __future__ import annotations

import contextlib
import queue
from typing import Any

import pykka

from actors._messages import Append, Journaled, Shutdown, StartRun, TerminateTree
from actors._pykka import Envelope


def refuse(message: Any, error: BaseException) -> None:
    """Keep ``message``'s promises with ``error``: nothing of it took effect.

    Safe to call for any message, more than once, and from any thread: a
    future already set is left alone, and a message that promised nothing
    is dropped.
    """
    if isinstance(message, Envelope):
        if message.reply_to is not None:
            _fail(message.reply_to, error)
        message = message.message
    if isinstance(message, Append):
        for actor in message.launch:
            actor.discard()
        if message.reply is not None:
            _fail(message.reply, error)
        if message.notify is not None:
            _tell_quietly(message.notify, Journaled(tag=message.tag, outcomes=(), error=error))
    elif isinstance(message, TerminateTree):
        _fail(message.reply, error)
    elif isinstance(message, StartRun):
        if message.created is not None:
            _fail(message.created, error)
    elif isinstance(message, Shutdown) and message.reply is not None:
        # The actor that was to shut down is gone: that is what was asked.
        _set(message.reply, None)


def _fail(future: pykka.Future[Any], error: BaseException) -> None:
    # Answered already (a race with the normal path): that answer stands.
    with contextlib.suppress(queue.Full):
        future.set_exception((type(error), error, error.__traceback__))


def _set(future: pykka.Future[Any], value: Any) -> None:
    with contextlib.suppress(queue.Full):
        future.set(value)


def _tell_quietly(ref: pykka.ActorRef[Any], message: Any) -> None:
    # The requester is gone too: nobody is left to wait.
    with contextlib.suppress(pykka.ActorDeadError):
        ref.tell(message)
