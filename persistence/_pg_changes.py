"""Change detection on PostgreSQL: ``LISTEN/NOTIFY``, with polling as the fallback.

A runtime's ControlInbox asks :meth:`ChangeFeed.token` every few
milliseconds whether anything it cares about happened (a control request,
a new run to claim). On SQLite that is ``PRAGMA data_version``. Here it is
a counter that moves whenever a notification on ``CHANNEL`` arrived
(``_row_locks`` sends one with every control request and every new run):
draining the notifications already on the socket costs no round trip, so a
poll is a ``select()``, not a query.

Notifications are not durable: one sent while this connection was down is
lost. So the counter also moves at least every ``SAFETY_POLL`` seconds
(the ControlInbox then scans as if notified), and while the listening
connection is down every token is new (the ControlInbox scans at every poll,
as it would on SQLite) until a reconnect, tried at most every
``RECONNECT_EVERY`` seconds, succeeds.

Invariant: the token changes after any notification this connection could
have received, and at least every ``SAFETY_POLL`` seconds; a missed
notification delays a delivery by at most that.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, Final

import psycopg

from persistence._errors import StoreError
from persistence._row_locks import CHANNEL

#: The token moves at least this often (seconds), notified or not.
SAFETY_POLL: Final = 1.0

#: How often a lost listening connection is opened again (seconds).
RECONNECT_EVERY: Final = 1.0


class ChangeFeed:
    """The change token of one PostgreSQL store object. Not thread-safe: one poller."""

    def __init__(
        self,
        connect: Callable[[], psycopg.Connection[Any]],
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._connect = connect
        self._monotonic = monotonic
        self._conn: psycopg.Connection[Any] | None = None
        self._token = 0
        self._moved_at = monotonic()
        self._retry_at = 0.0

    def token(self) -> int:
        """A value that differs from the last one whenever something may have changed."""
        now = self._monotonic()
        if self._conn is None and now >= self._retry_at:
            self._listen(now)
        if self._conn is None:
            return self._move(now)  # no notifications: poll, as on SQLite
        try:
            heard = any(True for _ in self._conn.notifies(timeout=0))
        except psycopg.Error:
            self._drop(now)
            return self._move(now)
        if heard or now - self._moved_at >= SAFETY_POLL:
            return self._move(now)
        return self._token

    def _move(self, now: float) -> int:
        self._token += 1
        self._moved_at = now
        return self._token

    def _listen(self, now: float) -> None:
        try:
            conn = self._connect()
        except StoreError:
            self._retry_at = now + RECONNECT_EVERY
            return
        try:
            conn.execute(f"LISTEN {CHANNEL}")
        except psycopg.Error:
            conn.close()
            self._retry_at = now + RECONNECT_EVERY
            return
        self._conn = conn

    def _drop(self, now: float) -> None:
        if self._conn is not None:
            self._conn.close()
        self._conn = None
        self._retry_at = now + RECONNECT_EVERY

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None
