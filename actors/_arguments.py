"""Arguments of the public API, checked where they enter: one rule per kind.

A bad argument must fail at the call that passed it, with a sentence naming
it, before anything is created or started, and never later inside an actor
(where it would crash a supervisor and fail a run that did nothing wrong).
Every check here raises :class:`InvalidArgumentType` (also a ``TypeError``)
for a value of the wrong type and :class:`InvalidArgument` (also a
``ValueError``) for a value out of range, so callers that catch the
builtins keep working.

Invariants: a duration is a finite, real number of seconds (``bool`` is not
a number here; NaN compares false with every bound and infinity waits
forever, so both are refused) of at most 1000 years, so that every due
instant is a date (``persistence._durations``, the one bound); a count is
an ``int``; a flag is a ``bool``.
"""

from __future__ import annotations

import inspect
import os
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Final

from persistence import (
    InvalidArgument,
    InvalidArgumentType,
    StoreTarget,
    duration_seconds,
    finite_number,
    parse_target,
)


def number(what: str, value: object, *, unit: str = "") -> float:
    """``value`` as a finite real number (``unit`` names it in the messages).

    Raises:
        InvalidArgumentType: not a real number (a str, a bool, None...).
        InvalidArgument: NaN or infinite.
    """
    return finite_number(what, value, unit=unit)


def seconds(what: str, value: object, *, positive: bool = False) -> float:
    """``value`` as a finite number of seconds, at least 0 (above 0 if
    ``positive``), at most ``MAX_SECONDS`` (1000 years): the one bound of
    every duration, so that its due instant is a date (``persistence._durations``).

    Raises:
        InvalidArgumentType: not a real number (a str, a bool, None...).
        InvalidArgument: NaN, infinite, negative, 0 where ``positive``, or
            above 1000 years.
    """
    return duration_seconds(what, value, positive=positive)


def optional_seconds(what: str, value: object, *, positive: bool = False) -> float | None:
    """Like :func:`seconds`, with ``None`` meaning "no limit"."""
    return None if value is None else seconds(what, value, positive=positive)


def timeout_options(timeout: object, cancel_grace: object) -> tuple[float | None, float | None]:
    """``@workflow(timeout=..., cancel_grace=...)`` checked (B4): a positive
    number of seconds or None; a grace of at least 0 seconds, only with a timeout.

    Raises:
        InvalidArgumentType: either is not a number (``True``, a str).
        InvalidArgument: out of range, not finite, or a grace without a timeout.
    """
    checked = optional_seconds("@workflow(timeout=...)", timeout, positive=True)
    grace = optional_seconds("@workflow(cancel_grace=...)", cancel_grace)
    if grace is not None and checked is None:
        raise InvalidArgument(
            "@workflow(cancel_grace=...) needs a timeout: it is the time from the"
            " timeout's cancel to a terminate"
        )
    return checked, grace


def count(what: str, value: object, *, minimum: int = 0) -> int:
    """``value`` as an ``int`` of at least ``minimum``.

    Raises:
        InvalidArgumentType: not an ``int`` (a float, a str, a bool...).
        InvalidArgument: below ``minimum``.
    """
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidArgumentType(f"{what} must be an int, got {type(value).__name__}: {value!r}")
    if value < minimum:
        raise InvalidArgument(f"{what} must be at least {minimum}, got {value}")
    return value


def flag(what: str, value: object) -> bool:
    """``value`` as a ``bool`` (a truthy string such as ``"no"`` is refused).

    Raises:
        InvalidArgumentType: not a ``bool``.
    """
    if not isinstance(value, bool):
        raise InvalidArgumentType(f"{what} must be True or False, got {value!r}")
    return value


def run_id(value: object) -> str:
    """``value`` as a run id: a non-empty str.

    Raises:
        InvalidArgumentType: not a str (a run id is never a number or a list).
        InvalidArgument: the empty string.
    """
    if not isinstance(value, str):
        raise InvalidArgumentType(f"a run id is a str, got {type(value).__name__}: {value!r}")
    if not value:
        raise InvalidArgument("a run id is a non-empty str, got ''")
    return value


def text(what: str, value: object) -> str:
    """``value`` if it is a str.

    Raises:
        InvalidArgumentType: it is not.
    """
    if not isinstance(value, str):
        raise InvalidArgumentType(f"{what} must be a str, got {type(value).__name__}: {value!r}")
    return value


def instance(what: str, value: Any, kind: type[Any] | tuple[type[Any], ...], hint: str) -> Any:
    """``value`` if it is an instance of ``kind``.

    Raises:
        InvalidArgumentType: it is not; the message says what was given and
            ``hint`` says what to pass instead.
    """
    if not isinstance(value, kind):
        raise InvalidArgumentType(f"{what} must be {hint}, got {type(value).__name__}: {value!r}")
    return value


def store_target(what: str, value: object) -> StoreTarget:
    """``value`` read as a store target: a path, or a ``sqlite:`` or
    ``postgresql://`` URL (``persistence.parse_target``).

    Raises:
        InvalidArgumentType: neither a str nor an ``os.PathLike`` (the message
            names the type only: the value may hold a password).
        InvalidArgument: an empty target, an unknown scheme, a malformed URL;
            the message shows it redacted.
    """
    if not isinstance(value, str | os.PathLike):
        raise InvalidArgumentType(
            f"{what} must be a path (str or os.PathLike) or a store URL, got {type(value).__name__}"
        )
    return parse_target(value)


def signature_of(fn: Callable[..., Any]) -> inspect.Signature | None:
    """``fn``'s signature, or None where Python cannot tell it (some builtins).

    String annotations (``from __future__ import annotations``) are evaluated
    so that messages show ``a: int``, not ``a: 'int'``; where one cannot be
    (a name defined later), they are shown as written.
    """
    try:
        try:
            return inspect.signature(fn, eval_str=True)
        except Exception:  # an annotation naming what is not defined yet
            return inspect.signature(fn)
    except (TypeError, ValueError):
        return None


#: The keywords ``start()`` takes for itself, never passed to the workflow,
#: with what each means there (a workflow's parameter of that name is
#: passed positionally; ``@workflow()`` refuses a keyword-only one).
RESERVED_KEYWORDS: Final[Mapping[str, str]] = {
    "run_id": "the run's own id (A2)",
    "timeout": "the run's timeout (B4)",
}


def fits(
    what: str,
    signature: inspect.Signature | None,
    args: Any,
    kwargs: Any,
    *,
    reserves_run_id: bool | None = None,
) -> None:
    """Check that ``args`` and ``kwargs`` bind to ``signature`` (as a call would).

    A call that cannot bind would fail only later, inside a step attempt or a
    run's body, after a run was created; it fails here instead, at the call.

    ``reserves_run_id``: the call took the keyword ``run_id`` for the run's
    own id (``start()``, A2), so a missing parameter ``run_id`` gets a hint
    to pass it positionally; None: whether ``what`` names a workflow (every
    start of one reserves it, a child call in a body does not).

    Raises:
        InvalidArgumentType: they do not fit; the message shows the signature.
    """
    if signature is None:
        return
    try:
        signature.bind(*args, **dict(kwargs))
    except TypeError as exc:
        hint = ""
        if reserves_run_id is None:
            reserves_run_id = what.startswith("workflow ")
        for name, role in RESERVED_KEYWORDS.items() if reserves_run_id else ():
            if name in signature.parameters and name not in kwargs and f"'{name}'" in str(exc):
                hint = (
                    f"; start() reserves the keyword {name} for {role}: pass the"
                    f" workflow's parameter {name} positionally"
                )
                break
        raise InvalidArgumentType(
            f"the arguments do not fit {what}{signature}: {exc}{hint}"
        ) from None


def binder(
    signature: inspect.Signature | None,
) -> Callable[[Sequence[Any], Mapping[str, Any]], Mapping[str, Any]] | None:
    """A function binding (args, kwargs) to ``signature``: each parameter's
    value by name, defaults not applied (a default may change between
    deploys); it raises ``TypeError`` where they do not bind. None where the
    signature is unknown. Used to compare two starts of one workflow (A2).
    """
    if signature is None:
        return None
    sig = signature

    def bind(args: Sequence[Any], kwargs: Mapping[str, Any]) -> Mapping[str, Any]:
        return sig.bind(*args, **dict(kwargs)).arguments

    return bind


#: The most values (containers, items) and text (characters) a start's
#: arguments may hold to be checked on an event loop's thread: their JSON
#: round trip then takes well under 0.1 ms. Larger ones are checked in the
#: loop's default executor (a 3 KB list of 100 dicts took 0.15 ms, 100 KB
#: of strings 0.5 ms, on a 2-core machine).
LIGHT_VALUES: Final = 64
LIGHT_TEXT: Final = 4096


def light(args: tuple[Any, ...], kwargs: dict[str, Any]) -> bool:
    """Whether checking these arguments is cheap enough to do on an event loop.

    Walks at most ``LIGHT_VALUES`` values, so it is cheap itself, whatever
    the arguments hold.
    """
    todo: list[Any] = [args, kwargs]
    values = text = 0
    while todo:
        value = todo.pop()
        values += 1
        if values > LIGHT_VALUES:
            return False
        if isinstance(value, str | bytes):
            text += len(value)
            if text > LIGHT_TEXT:
                return False
        elif isinstance(value, dict):
            todo.extend(value.keys())
            todo.extend(value.values())
        elif isinstance(value, list | tuple | set | frozenset):
            todo.extend(value)
    return True
