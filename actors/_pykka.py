"""pykka's private names, used where pykka has no public API, all in this one module.

Checked against pykka 4.5.0 (``PYKKA_CHECKED``); ``tests/test_pykka_private.py``
fails loudly, naming the missing piece, if a pykka release changes any of them.

What Proctor needs that pykka keeps private:

* ``pykka._envelope.Envelope``: what an inbox holds (``message``,
  ``reply_to``). A custom mailbox (``_mailbox``) stores envelopes, makes one
  for a TimerTick, and a refused envelope's ``reply_to`` must hear why
  (``_undeliverable``).
* ``Actor._create_actor_inbox``: the hook pykka's ``Actor.__init__`` calls to
  make an actor's inbox; Proctor's inboxes are control-first.
* ``ThreadingActor._start_actor_loop``: the hook ``Actor.start`` calls to
  run the loop on a new thread; Proctor lends short-lived actors a pooled
  thread instead, and starts prepared actors later (``launch``).
* ``Actor._actor_loop``: the loop itself, run on that lent thread.

Invariant: no other module names any of them; :class:`PykkaHooks` turns the
two hooks into the public-looking :meth:`new_inbox` and :meth:`start_loop`.
"""

from __future__ import annotations

from typing import Any, Final

import pykka
from pykka._envelope import Envelope

__all__ = ["PYKKA_CHECKED", "Envelope", "PykkaHooks"]

#: The pykka release these private names were last checked against.
PYKKA_CHECKED: Final = "4.5.0"


class PykkaHooks(pykka.ThreadingActor):
    """A ThreadingActor whose private hooks are overridable under public names."""

    def new_inbox(self) -> Any:
        """The actor's inbox (called once, from pykka's ``Actor.__init__``)."""
        return pykka.ThreadingActor._create_actor_inbox()

    def start_loop(self) -> None:
        """Start the actor's loop; by default on a new thread, as pykka does."""
        pykka.ThreadingActor._start_actor_loop(self)

    def run_loop(self) -> None:
        """Run the actor's loop on the calling thread until the actor stops."""
        self._actor_loop()

    # -- pykka's private hooks, forwarded -------------------------------------

    def _create_actor_inbox(self) -> Any:  # type: ignore[override]
        # A staticmethod in pykka, called as self._create_actor_inbox().
        return self.new_inbox()

    def _start_actor_loop(self) -> None:
        self.start_loop()
