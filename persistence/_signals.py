"""The record of a signal sent to a run (B5), shared by every sender.

A signal is a named message with a JSON payload that a run's body waits for
(``wait_for_signal``). Sending one appends ``signal_sent`` to the run's log:
the Runtime facade, the ``Client`` and ``proctor signal`` in another process
build exactly the same record here, and the store takes it from anyone
(``OPEN_EVENTS``) while the run is not terminal (fencing refuses it after).

Invariants: a signal's name is non-empty text of at most
:data:`MAX_SIGNAL_NAME` characters; its payload is JSON within the payload
limit (D4), checked before anything is written; each signal has an id of its
own (``signal_id``), so that the body's ``signal_received`` names exactly
which one it took, and a runtime that hears of one twice (its own delivery
and its ControlInbox scan, or its log read at a takeover) keeps it once.
"""

from __future__ import annotations

import uuid
from typing import Any, Final

from persistence._errors import InvalidArgument, InvalidArgumentType
from persistence._json import roundtrip
from persistence._records import NewEvent
from persistence._states import EventType
from persistence._text import safe_repr, type_name

#: The longest signal name, in characters: a name is an identifier, not data.
MAX_SIGNAL_NAME: Final = 200


def check_signal_name(name: object) -> str:
    """``name`` if it is a valid signal name.

    Raises:
        InvalidArgumentType: it is not a str.
        InvalidArgument: it is empty, longer than :data:`MAX_SIGNAL_NAME`
            characters, or has a control character.
    """
    if not isinstance(name, str):
        raise InvalidArgumentType(
            f"a signal name must be text (a str), got {type_name(name)}: {safe_repr(name)}"
        )
    if not name:
        raise InvalidArgument("a signal name must not be empty")
    if len(name) > MAX_SIGNAL_NAME:
        raise InvalidArgument(
            f"a signal name has at most {MAX_SIGNAL_NAME} characters, got {len(name)}"
        )
    if any(ord(c) < 32 or ord(c) == 127 for c in name):
        raise InvalidArgument(f"a signal name must not hold control characters: {name!r}")
    try:
        name.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise InvalidArgument(f"a signal name must be valid Unicode: {name!r}") from exc
    return name


def signal_request(
    run_id: str,
    name: str,
    payload: Any,
    *,
    origin: str | None,
    limit: int | None,
) -> NewEvent:
    """B5: the ``signal_sent`` record of one signal, with a new ``signal_id``.

    ``payload`` is kept as its JSON round trip (what the body will get);
    ``limit`` is the most bytes of JSON it may take (None: no limit).
    ``origin``: which process wrote it (a runtime's ControlInbox skips its own).

    Raises:
        InvalidArgumentType, InvalidArgument: see :func:`check_signal_name`.
        NotSerializable: the payload is not JSON (D4); nothing is written.
        PayloadTooLarge: its JSON is over ``limit`` bytes; nothing is written.
    """
    name = check_signal_name(name)
    _, value = roundtrip(payload, what=f"payload of signal {name!r}", limit=limit)
    return NewEvent(
        run_id=run_id,
        type=EventType.SIGNAL_SENT,
        data={
            "name": name,
            "payload": value,
            "signal_id": uuid.uuid4().hex,
            "origin": origin,
        },
    )
