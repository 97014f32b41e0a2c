"""The JSON a user gives the CLI (``start`` arguments, ``signal`` payloads): one parser.

Invariant: what this returns is a value a runtime takes (D4): NaN, Infinity
and numbers too large for a float are refused, an object that names a key
twice is refused (JSON leaves it undefined; Python would keep the last one
silently), and nothing nests deeper than :data:`MAX_JSON_DEPTH`; anything
else is a usage error (exit 2) that names the argument, and nothing is
written.
"""

from __future__ import annotations

import json
import math
from typing import Any

import click

from persistence import MAX_VALUE_DEPTH

#: How deeply a JSON argument may nest: as deep as any value a runtime takes
#: (``MAX_VALUE_DEPTH``), checked as it is parsed.
MAX_JSON_DEPTH = MAX_VALUE_DEPTH


def parse_json(text: str, what: str) -> Any:
    """One JSON value, as the store keeps it: NaN, Infinity and 1e999 are not JSON,
    no object names a key twice (``{"a": 1, "a": 2}``), and nothing nests
    deeper than :data:`MAX_JSON_DEPTH`.

    Raises:
        click.BadParameter: it is not such a value; ``what`` names it.
    """
    try:
        value = json.loads(
            text, parse_constant=_not_json, parse_float=_finite, object_pairs_hook=_unique_keys
        )
    except json.JSONDecodeError as exc:
        raise click.BadParameter(
            f"{_short(text)} is not JSON ({exc.msg}); quote strings, e.g. '\"text\"'",
            param_hint=what,
        ) from exc
    except ValueError as exc:
        raise click.BadParameter(f"{_short(text)} is not JSON ({exc})", param_hint=what) from exc
    except RecursionError as exc:
        raise click.BadParameter(
            f"{_short(text)} is nested too deeply to be read", param_hint=what
        ) from exc
    if _depth(value) > MAX_JSON_DEPTH:
        raise click.BadParameter(
            f"{_short(text)} is nested too deeply (more than {MAX_JSON_DEPTH} levels)",
            param_hint=what,
        )
    return value


def _depth(value: Any) -> int:
    """How deeply ``value`` nests lists and objects; without recursion."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        item, level = stack.pop()
        if isinstance(item, dict):
            item = list(item.values())
        if isinstance(item, list):
            deepest = max(deepest, level)
            stack.extend((child, level + 1) for child in item)
    return deepest


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """An object's pairs as a dict, refusing a key given twice (RFC 8259 §4:
    names "SHOULD be unique"; a duplicate would otherwise be dropped silently)."""
    value: dict[str, Any] = {}
    for key, item in pairs:
        if key in value:
            raise ValueError(f"the key {key!r} appears twice in one object")
        value[key] = item
    return value


def _not_json(constant: str) -> Any:
    raise ValueError(f"{constant} is not a JSON number")


def _finite(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"{text} is too large for a JSON number")
    return value


def _short(text: str, limit: int = 60) -> str:
    """``text`` quoted for a message, long ones elided in the middle."""
    if len(text) > limit:
        text = f"{text[: limit // 2]}...{text[-limit // 2 :]}"
    return repr(text)
