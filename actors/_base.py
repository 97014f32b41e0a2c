"""The base actor: pykka plus the guarantees a supervision tree needs.

pykka leaves three holes (DESIGN §2) that this class closes:

* an exception in a ``tell``-ed message stops the actor and tells nobody;
  here every failure ends the actor with a reason its supervisor receives;
* an exception in ``on_start`` skips ``on_failure``; here it is a failure like
  any other;
* a ``BaseException`` (``SystemExit``, ``KeyboardInterrupt``) in any actor
  makes pykka stop *every* actor in the process; here it fails that actor only.

Every actor reports its end to its supervisor exactly once, with the reason.
It also uses a control-first mailbox, so Cancel and Terminate never wait
behind ordinary work, and so that a busy step can check its mailbox without
blocking.
"""

from __future__ import annotations

import contextlib
import logging
from typing import Any, ClassVar, Self

import pykka

from actors._census import Census
from actors._mailbox import ControlFirstInbox
from actors._messages import ChildExited, ExitKind, ExitReason
from actors._pykka import PykkaHooks
from actors._undeliverable import refuse
from persistence import ProctorError, StoreCorrupt, StoreReplaced

logger = logging.getLogger("proctor")


class ProctorActor(PykkaHooks):
    """Base of every Proctor actor. Subclasses implement :meth:`handle`.

    Hooks: :meth:`started` (in the actor's thread, before any message),
    :meth:`handle`, :meth:`stopping`. Call :meth:`exit` to stop with a reason.
    """

    #: Stopping the runtime must not wait on actors; shutdown joins them itself.
    use_daemon_thread: ClassVar[bool] = True
    #: Borrow a thread from the census's pool rather than start one: for
    #: actors that live for one step or one run.
    pooled: ClassVar[bool] = False

    def __init__(self, *, parent: pykka.ActorRef[Any] | None, name: str, census: Census) -> None:
        super().__init__()
        self.name = name
        self._parent = parent
        self._census = census
        self._exit_reason: ExitReason | None = None
        self._reported = False

    @classmethod
    def prepare(cls, **kwargs: Any) -> Self:
        """Build and register the actor without starting it: its ref takes
        messages at once, and :meth:`launch` (or :meth:`discard`) follows.
        ``Actor.start()`` is ``prepare().launch()``."""
        actor = cls(**kwargs)
        pykka.ActorRegistry.register(actor.actor_ref)
        return actor

    def launch(self) -> pykka.ActorRef[Any]:
        """Start a prepared actor's loop; messages sent meanwhile wait for it."""
        self.start_loop()
        return self.actor_ref

    def discard(self) -> None:
        """Forget a prepared actor that will never be launched."""
        pykka.ActorRegistry.unregister(self.actor_ref)
        self.actor_stopped.set()  # its ref reports it dead; tells are dropped

    def start_loop(self) -> None:
        if self.pooled:
            self._census.pool.run(self.run_loop, self.name)
        else:
            super().start_loop()

    def new_inbox(self) -> ControlFirstInbox:
        return ControlFirstInbox()

    @property
    def inbox(self) -> ControlFirstInbox:
        inbox = self.actor_inbox
        assert isinstance(inbox, ControlFirstInbox)
        return inbox

    # -- hooks for subclasses ------------------------------------------------

    def started(self) -> None:
        """Run in the actor's thread before the first message."""

    def handle(self, message: Any) -> Any:
        """Handle one message."""
        raise NotImplementedError(f"{type(self).__name__} cannot handle {message!r}")

    def stopping(self) -> None:
        """Run in the actor's thread when it stops, whatever the reason."""

    # -- the guarantees ------------------------------------------------------

    def exit(self, reason: ExitReason) -> None:
        """Stop after the current message; the first reason given is the one reported."""
        if self._exit_reason is None:
            self._exit_reason = reason
            with contextlib.suppress(pykka.ActorDeadError):
                self.stop()

    def on_start(self) -> None:
        self._census.enter(self.actor_urn, self.name, pooled=self.pooled)
        try:
            self.started()
        except BaseException as exc:
            self._fail(exc)

    @classmethod
    def refusal(cls, name: str) -> BaseException:
        """The error a message to this actor gets once the actor has stopped."""
        return ProctorError(f"{name} stopped before handling the request: it took no effect")

    def on_receive(self, message: Any) -> Any:
        if self._exit_reason is not None:
            # Dying: the rest of the mailbox is not ours to act on, but its
            # senders must hear so.
            refuse(message, self.refusal(self.name))
            return None
        try:
            return self.handle(message)
        except BaseException as exc:
            # Whatever the message promised its sender is kept (an error).
            error = exc if isinstance(exc, ProctorError) else self.refusal(self.name)
            refuse(message, error)
            self._fail(exc)
            return None

    def on_stop(self) -> None:
        try:
            self.stopping()
        except BaseException as exc:
            logger.exception("%s failed while stopping", self.name)
            if self._exit_reason is None:
                self._exit_reason = ExitReason(kind=ExitKind.FAILED, error=exc)
        finally:
            error = self.refusal(self.name)
            self.inbox.close(lambda envelope: refuse(envelope, error))
            self._report(self._exit_reason or ExitReason.normal())
            self._census.leave(self.actor_urn)

    def _fail(self, exc: BaseException) -> None:
        if isinstance(exc, StoreReplaced | StoreCorrupt):
            # Not a bug: the file is gone or damaged; the one sentence says it all.
            logger.error("%s stopped: %s", self.name, exc)
        else:
            logger.error("%s crashed", self.name, exc_info=exc)
        self.exit(ExitReason(kind=ExitKind.FAILED, error=exc))

    def _report(self, reason: ExitReason) -> None:
        # Invariant: exactly one ChildExited per actor, whatever path stopped it.
        if self._reported or self._parent is None:
            return
        self._reported = True
        tell(self._parent, ChildExited(child=self.actor_ref, name=self.name, reason=reason))


def tell(ref: pykka.ActorRef[Any], message: Any) -> bool:
    """Send without raising if the receiver is gone; return whether it was sent.

    A message to a dead actor is dropped by design: whatever it carried is
    already fenced (late step results) or moot (the receiver has ended). What
    it promised its sender (a reply, a notification) is kept with the
    receiver's refusal (:func:`refuse`).
    """
    try:
        ref.tell(message)
    except pykka.ActorDeadError:
        logger.debug("dropped %r: %s is gone", message, ref)
        actor_class = ref.actor_class
        name = actor_class.__name__
        if issubclass(actor_class, ProctorActor):
            refuse(message, actor_class.refusal(name))
        else:
            refuse(message, ProctorError(f"{name} has stopped: the request took no effect"))
        return False
    return True
