"""Text about user objects that never raises.

Proctor describes objects it does not own (a step's exception, a value it
refuses, something a body awaited) in records, errors and logs. Their
``__str__``, ``__repr__`` or ``args`` may raise; a description must not:
it falls back to a placeholder that names the real type, so the record
keeps the one fact that is always true. Also the phrases that messages of
several modules share (``calls_phrase``), so they read alike everywhere.
"""

from __future__ import annotations

from typing import Any


def type_name(value: Any) -> str:
    """``module.QualName`` of the value's type (just the name for builtins)."""
    cls = type(value)
    qualname = getattr(cls, "__qualname__", None)
    name = qualname if isinstance(qualname, str) else "<unnamed type>"
    module = getattr(cls, "__module__", None)
    if not isinstance(module, str) or module == "builtins":
        return name
    return f"{module}.{name}"


def valid_text(text: str) -> str:
    """``text`` with any lone surrogate (from ``os.fsdecode``, say) escaped as
    ``\\udcff``: valid Unicode, which the store and every terminal take."""
    if text.isascii():
        return text
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return text.encode("utf-8", "backslashreplace").decode("utf-8")
    return text


def safe_str(value: Any) -> str:
    """``str(value)`` as valid text, or a placeholder naming its type when that raises."""
    try:
        text = str(value)
    except Exception as exc:  # the object's own code: anything may come out
        return _placeholder("str", value, exc)
    return valid_text(text) if isinstance(text, str) else _placeholder("str", value, None)


def safe_repr(value: Any) -> str:
    """``repr(value)`` as valid text, or a placeholder naming its type when that raises."""
    try:
        text = repr(value)
    except Exception as exc:
        return _placeholder("repr", value, exc)
    return valid_text(text) if isinstance(text, str) else _placeholder("repr", value, None)


def _placeholder(how: str, value: Any, exc: BaseException | None) -> str:
    why = f"raised {type(exc).__name__}" if exc is not None else "did not return a str"
    return f"<unprintable {type_name(value)}: its __{how}__ {why}>"


def calls_phrase(count: int) -> str:
    """The first ``count`` calls, as words: "no call", "call 0", "calls 0 to 2"."""
    if count <= 0:
        return "no call"
    return "call 0" if count == 1 else f"calls 0 to {count - 1}"
