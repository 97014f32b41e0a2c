"""The runtime's halt switch: once set, nothing more of this runtime reaches the store.

Two things set it. :meth:`Runtime.kill` simulates a crash (tests of
recovery). And the runtime stops itself when it cannot go on safely: its
store's path no longer names the file it has open (deleted or replaced),
the file is damaged, or a shared actor kept dying past its restart
intensity. Then it says why: the Guardian logs it, the Journal refuses every
write with it, and every later call of the facade raises it.

Invariant: the first reason given is the one kept.
"""

from __future__ import annotations

import threading

from persistence import StoreError


class Halt(threading.Event):
    """A ``threading.Event`` that may carry why it was set."""

    def __init__(self) -> None:
        super().__init__()
        self._lock = threading.Lock()
        self._error: StoreError | None = None

    def halt(self, error: StoreError) -> bool:
        """Set it, with ``error`` as the reason; False if it was set already."""
        with self._lock:
            if self.is_set():
                return False
            self._error = error
            self.set()
            return True

    @property
    def error(self) -> StoreError | None:
        """Why the runtime stopped itself; None while it runs, or after ``kill()``."""
        with self._lock:
            return self._error

    def check(self, owner: str) -> None:
        """Raise if set: see :func:`check_halted`."""
        check_halted(self, owner)


def check_halted(halted: threading.Event, owner: str) -> None:
    """Raise StoreError if ``halted`` is set: its reason if it is a :class:`Halt`
    that has one, else that the runtime was killed.

    A new exception each time, so tracebacks do not pile up on one object.
    """
    if not halted.is_set():
        return
    error = halted.error if isinstance(halted, Halt) else None
    if error is None:
        raise StoreError(f"runtime {owner} was killed; nothing more is written")
    raise type(error)(f"runtime {owner} stopped: {error}")
