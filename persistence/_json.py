"""Strict JSON for everything that crosses the store (DESIGN D4).

Never a pickle, never a silent ``str()`` fallback: anything that is not
plain JSON is a :class:`NotSerializable` at the call that produced it. That
includes a value nested deeper than :data:`MAX_DEPTH` levels: Python's JSON
codec recurses, so a deep enough value would raise ``RecursionError`` in
whichever thread later reads it, a shared actor's included.
"""

from __future__ import annotations

import json
import math
from typing import Any, Final

from persistence._errors import NotSerializable

_encoder = json.JSONEncoder(allow_nan=False, separators=(",", ":"), ensure_ascii=False)

#: How deeply arrays and objects may nest in a value given to Proctor
#: (serde_json's default limit is 128; protobuf's is 100).
MAX_DEPTH: Final = 100


def dumps(value: Any, *, what: str = "value", max_depth: int = MAX_DEPTH) -> str:
    """Encode ``value`` as compact JSON.

    Raises:
        NotSerializable: ``value`` holds something that is not JSON (a set, a
            NaN, an object), or arrays and objects nested deeper than
            ``max_depth`` levels.
    """
    try:
        text = _encoder.encode(value)
    except RecursionError as exc:
        raise NotSerializable(what, value, _too_deep(max_depth)) from exc
    except (TypeError, ValueError) as exc:
        raise NotSerializable(what, _culprit(value), str(exc)) from exc
    # Fast path: fewer brackets in the text (strings included) than the limit.
    if text.count("[") + text.count("{") > max_depth and depth(value) > max_depth:
        raise NotSerializable(what, value, _too_deep(max_depth))
    return text


def loads(text: str | None) -> Any:
    """Decode JSON written by :func:`dumps`; ``None`` stays ``None``."""
    return None if text is None else json.loads(text)


def depth(value: Any) -> int:
    """How many levels of arrays and objects nest in ``value`` (0 for a scalar).

    Level by level, without recursion, so any depth can be measured.
    """
    level = [value] if isinstance(value, (list, tuple, dict)) else []
    found = 0
    while level:
        found += 1
        inner: list[Any] = []
        for container in level:
            items = container.values() if isinstance(container, dict) else container
            inner.extend(v for v in items if isinstance(v, (list, tuple, dict)))
        level = inner
    return found


def _too_deep(max_depth: int) -> str:
    return f"arrays and objects nested deeper than {max_depth} levels"


def _culprit(value: Any) -> Any:
    """Find the innermost offending value, so the error names its type."""
    try:
        return _find_culprit(value)
    except RecursionError:
        return value


def _find_culprit(value: Any) -> Any:
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):
                return key
            if not _is_json(item):
                return _find_culprit(item)
    elif isinstance(value, (list, tuple)):
        for item in value:
            if not _is_json(item):
                return _find_culprit(item)
    return value


def _is_json(value: Any) -> bool:
    if value is None or isinstance(value, (bool, int, str)):
        return True
    if isinstance(value, float):
        return math.isfinite(value)
    if isinstance(value, (list, tuple)):
        return all(_is_json(v) for v in value)
    if isinstance(value, dict):
        return all(isinstance(k, str) and _is_json(v) for k, v in value.items())
    return False
