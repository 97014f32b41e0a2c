"""Strict JSON for everything that crosses the store (DESIGN D4).

Never a pickle, never a silent ``str()`` fallback, never a silent change: a
value crosses the store only as data that JSON gives back unchanged, and
anything else is a :class:`NotSerializable` at the call that produced it.

Invariants:

- :func:`dumps` accepts exactly ``None``, ``bool``, ``int``, finite
  ``float``, ``str`` (valid Unicode: no lone surrogate, which SQLite cannot
  store), ``list``/``tuple`` and ``dict`` with ``str`` keys, nested at most
  ``max_depth`` containers deep, no container inside itself. It never raises
  anything but :class:`NotSerializable`, whatever the value's own code does.
  ``{1: "x"}`` is refused rather than stored as ``{"1": "x"}``: the body
  would get another key back after a resume.
- What a body or step receives live is :func:`roundtrip` of the value:
  the value as the store gives it back (a tuple arrives as a list), which is
  also what it receives on replay. Live and replay cannot differ.
- Depth is bounded because Python's JSON codec recurses: a deep enough value
  would raise ``RecursionError`` in whichever thread later reads it, a
  shared actor's included.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator, Mapping, Sequence
from typing import Any, Final

from persistence._errors import NotSerializable, PayloadTooLarge
from persistence._text import safe_str, type_name

#: The default payload limit (bytes of JSON) of an argument, result or heartbeat details.
DEFAULT_MAX_PAYLOAD_BYTES: Final = 4 * 1024 * 1024

#: How deep a value that crosses the store (an argument, a result, heartbeat
#: details) may nest: containers within containers. Deeper data is refused at
#: the call: every reader can decode it without running out of stack.
MAX_VALUE_DEPTH: Final = 100
#: How deep a stored record may nest: a value plus the record around it
#: (a run's arguments sit two levels inside its ``run_created`` data).
MAX_RECORD_DEPTH: Final = MAX_VALUE_DEPTH + 4

_encoder = json.JSONEncoder(
    allow_nan=False, check_circular=False, separators=(",", ":"), ensure_ascii=False
)
_EXACT_SCALARS: Final = frozenset({str, int, bool, type(None)})
#: Items the quick check needs not look into (floats: the encoder checks them).
_LEAVES: Final = frozenset({str, int, float, bool, type(None)})
_STR: Final = frozenset({str})
#: Path components shown in an error; a deeper culprit's path is elided.
_PATH_SHOWN: Final = 8


def dumps(
    value: Any,
    *,
    what: str = "value",
    max_depth: int = MAX_RECORD_DEPTH,
    limit: int | None = None,
) -> str:
    """Encode ``value`` as compact JSON.

    ``limit``: most bytes of UTF-8 JSON allowed (None: no limit).

    Raises:
        NotSerializable: ``value`` is not plain JSON data (see the module's
            invariants); the message names the culprit's type and where it is.
        PayloadTooLarge: its JSON is over ``limit`` bytes; names ``what``,
            its size and the limit.
    """
    # The quick way, at C speed where it can be: keys and depth by a scan of
    # the containers, types and numbers by the encoder, Unicode on its output.
    # Only a value that fails is walked item by item, to say what and where.
    text = None
    try:
        if _keys_and_depth_ok(value, max_depth):
            text = _encoder.encode(value)
    except Exception:  # not JSON (TypeError, ValueError), or its own code raised
        text = None
    if text is not None and (text.isascii() or not _invalid_unicode(text)):
        return _within(text, what, limit)
    fault = _fault(value, max_depth)
    if fault is not None:
        raise NotSerializable(what, *fault)
    try:  # it changed under us (another thread), or its own code raised
        text = _encoder.encode(value)
    except Exception as exc:
        raise NotSerializable(what, value, safe_str(exc)) from exc
    if _invalid_unicode(text):
        raise NotSerializable(what, value, "it changed while it was encoded")
    return _within(text, what, limit)


def _within(text: str, what: str, limit: int | None) -> str:
    # A character is 1 to 4 bytes of UTF-8: count the bytes only when it matters.
    if limit is not None and len(text) * 4 > limit:
        size = len(text.encode())
        if size > limit:
            raise PayloadTooLarge(what, size, limit)
    return text


def roundtrip(value: Any, *, what: str, limit: int | None = None) -> tuple[str, Any]:
    """Check a value that crosses the store: its JSON, and the value JSON gives back.

    The second item is what the receiver gets, live as after a resume.

    Raises:
        NotSerializable: not plain JSON, or nested deeper than ``MAX_VALUE_DEPTH``.
        PayloadTooLarge: its JSON is over ``limit`` bytes.
    """
    text = dumps(value, what=what, max_depth=MAX_VALUE_DEPTH, limit=limit)
    return text, json.loads(text)


def roundtrip_arguments(
    args: Sequence[Any], kwargs: Mapping[str, Any], *, what: str, limit: int | None = None
) -> tuple[tuple[Any, ...], dict[str, Any]]:
    """Arguments as a body or step receives them: each one's JSON round trip.

    Raises:
        NotSerializable: an argument is not plain JSON; the message names it.
        PayloadTooLarge: the arguments' JSON is over ``limit`` bytes.
    """
    try:
        text = dumps(
            [list(args), dict(kwargs)], what=what, max_depth=MAX_VALUE_DEPTH + 2, limit=limit
        )
    except PayloadTooLarge:
        raise
    except NotSerializable:
        # Name the argument at fault.
        for index, arg in enumerate(args):
            fault = _fault(arg, MAX_VALUE_DEPTH)
            if fault is not None:
                raise NotSerializable(f"{what} (argument {index + 1})", *fault) from None
        for key, arg in kwargs.items():
            fault = _fault(arg, MAX_VALUE_DEPTH)
            if fault is not None:
                raise NotSerializable(f"{what} (keyword argument {key!r})", *fault) from None
        raise
    decoded_args, decoded_kwargs = json.loads(text)
    return tuple(decoded_args), decoded_kwargs


def check_payload_limit(limit: object) -> int:
    """``limit`` itself, if it is a valid payload limit (a positive int of bytes).

    Raises:
        TypeError: not an int.
        ValueError: zero or negative.
    """
    if isinstance(limit, bool) or not isinstance(limit, int):
        raise TypeError(f"max_payload_bytes must be an int of bytes, got {limit!r}")
    if limit <= 0:
        raise ValueError(f"max_payload_bytes must be positive, got {limit}")
    return limit


def loads(text: str | None) -> Any:
    """Decode JSON written by :func:`dumps`; ``None`` stays ``None``."""
    return None if text is None else json.loads(text)


def _keys_and_depth_ok(root: Any, max_depth: int) -> bool:
    """Every dict key a str and at most ``max_depth`` containers deep; False:
    look closer. A cycle is infinitely deep: depth first, it is met within
    ``max_depth`` steps down. Containers holding only leaves cost a C-speed
    ``set(map(type, ...))`` each, not a Python step per item."""
    stack: list[tuple[Any, int]] = [(root, 0)]
    while stack:
        value, depth = stack.pop()
        if isinstance(value, dict):
            if depth >= max_depth or not set(map(type, value)) <= _STR:
                return False
            items: Any = value.values()
        elif isinstance(value, list | tuple):
            if depth >= max_depth:
                return False
            items = value
        else:
            continue
        if not set(map(type, items)) <= _LEAVES:
            stack.extend((item, depth + 1) for item in items if type(item) not in _LEAVES)
    return True


def _fault(root: Any, max_depth: int) -> tuple[Any, str] | None:
    """The first value that is not plain JSON, and what is wrong with it; or None.

    Depth first and without recursion, so neither a deep value nor a cycle
    can exhaust the stack.
    """
    try:
        return _walk(root, max_depth, [])
    except Exception as exc:  # a container's own code (items(), __iter__) raised
        return root, f"it could not be read: {type(exc).__name__}: {safe_str(exc)}"


def _walk(value: Any, max_depth: int, path: list[Any]) -> tuple[Any, str] | None:
    ancestors: list[int] = []  # ids of the containers around ``value``
    items: list[Iterator[tuple[Any, Any]]] = []
    while True:
        problem = _problem(value, ancestors, max_depth)
        if problem is not None:
            return value, problem + _where(path)
        if isinstance(value, dict):
            for key in value:
                if not isinstance(key, str):
                    return key, (
                        f"a dict key must be a str, not {type_name(key)}: JSON would give it "
                        f"back as a str{_where(path)}"
                    )
                if not key.isascii() and _invalid_unicode(key):
                    return key, f"a dict key is not valid Unicode (a lone surrogate){_where(path)}"
            ancestors.append(id(value))
            items.append(iter(value.items()))
            path.append(None)
        elif isinstance(value, list | tuple):
            ancestors.append(id(value))
            items.append(enumerate(value))
            path.append(None)
        # The next value: the next item of the innermost container not yet done.
        while items:
            nxt = next(items[-1], None)
            if nxt is not None:
                path[-1], value = nxt
                break
            items.pop()
            ancestors.pop()
            path.pop()
        else:
            return None


def _problem(value: Any, ancestors: list[int], max_depth: int) -> str | None:
    """What makes this one value (not its items) not plain JSON; None if nothing."""
    cls = type(value)
    if cls in _EXACT_SCALARS or isinstance(value, int | str):
        if isinstance(value, str) and not value.isascii() and _invalid_unicode(value):
            return "a str that is not valid Unicode (it holds a lone surrogate)"
        return None
    if isinstance(value, float):
        return None if math.isfinite(value) else f"{value!r} is not a JSON number"
    if isinstance(value, dict | list | tuple):
        if id(value) in ancestors:
            return "it contains itself"
        if len(ancestors) >= max_depth:
            return f"nested deeper than {max_depth} levels"
        return None
    return f"{type_name(value)} is not a JSON type"


def _invalid_unicode(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def _where(path: list[Any]) -> str:
    if not path:
        return ""
    shown = path if len(path) <= _PATH_SHOWN else [*path[:2], ..., *path[-(_PATH_SHOWN - 2) :]]
    parts = []
    for part in shown:
        if part is ...:
            parts.append("...")
        elif isinstance(part, int):
            parts.append(f"[{part}]")
        else:
            parts.append(f"[{json.dumps(part, ensure_ascii=False)}]")
    return f" (at {''.join(parts)})"
