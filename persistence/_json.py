"""Strict JSON for everything that crosses the store (DESIGN D4).

Never a pickle, never a silent ``str()`` fallback: anything that is not
plain JSON is a :class:`NotSerializable` at the call that produced it.
"""

from __future__ import annotations

import json
import math
from typing import Any, Final

from persistence._errors import NotSerializable, PayloadTooLarge

#: The default payload limit (bytes of JSON) of an argument, result or heartbeat details.
DEFAULT_MAX_PAYLOAD_BYTES: Final = 4 * 1024 * 1024

_encoder = json.JSONEncoder(allow_nan=False, separators=(",", ":"), ensure_ascii=False)


def dumps(value: Any, *, what: str = "value", limit: int | None = None) -> str:
    """Encode ``value`` as compact JSON or raise :class:`NotSerializable`.

    ``limit``: most bytes of UTF-8 JSON allowed (None: no limit); a larger
    value raises :class:`PayloadTooLarge`, naming ``what``, its size and the limit.
    """
    try:
        text = _encoder.encode(value)
    except (TypeError, ValueError) as exc:
        raise NotSerializable(what, _culprit(value), str(exc)) from exc
    # A character is 1 to 4 bytes of UTF-8: count the bytes only when it matters.
    if limit is not None and len(text) * 4 > limit:
        size = len(text.encode())
        if size > limit:
            raise PayloadTooLarge(what, size, limit)
    return text


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


def _culprit(value: Any) -> Any:
    """Find the innermost offending value, so the error names its type."""
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):
                return key
            if not _is_json(item):
                return _culprit(item)
    elif isinstance(value, (list, tuple)):
        for item in value:
            if not _is_json(item):
                return _culprit(item)
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
