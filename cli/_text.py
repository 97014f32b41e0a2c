"""User text on an operator's screen: plain, never markup, never a control sequence.

Invariants:

- Every value that comes from users or their code (a reason, an argument, a
  result, an error message, a workflow or step name, a hostname) reaches the
  terminal as a :class:`rich.text.Text` built by :func:`plain`, never as a
  string rich would parse: ``[/x]`` is shown as ``[/x]``, ``:smile:`` as
  ``:smile:``. (The console is also made with ``markup=False``, so a string
  that slips through is still not parsed.)
- Every control character in such a value is written as an escape: ``\\x1b``,
  ``\\n``, ``\\u202e``. A value can neither style the screen, move the cursor,
  retitle the terminal, break a table's line, nor reorder the text around it
  (bidirectional overrides). :func:`clean` does it for text printed with
  ``click.echo``; :func:`json_text` for ``--json`` output, where the escape is
  JSON's own (``\\u001b``), so the JSON decodes to the same value.
"""

from __future__ import annotations

import json
import unicodedata
from typing import Any, Final

from rich.text import Text

#: Categories escaped: controls (C0, DEL, C1), line/paragraph separators,
#: surrogates, private use, and format characters (bidi overrides, ...).
_UNSAFE_CATEGORIES: Final = frozenset({"Cc", "Cf", "Zl", "Zp", "Cs", "Co"})
#: Format characters that scripts and emoji need and that cannot do harm.
_SAFE_FORMAT: Final = frozenset({"\u200c", "\u200d"})  # zero-width (non-)joiner
_SHORT: Final = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def _unsafe(ch: str) -> bool:
    return unicodedata.category(ch) in _UNSAFE_CATEGORIES and ch not in _SAFE_FORMAT


def _escape(ch: str) -> str:
    if ch in _SHORT:
        return _SHORT[ch]
    code = ord(ch)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def clean(value: object) -> str:
    """``value`` as a string whose control characters are written as escapes."""
    text = value if isinstance(value, str) else str(value)
    if text.isascii() and text.isprintable():
        return text  # the common case, at C speed
    return "".join(_escape(ch) if _unsafe(ch) else ch for ch in text)


def plain(value: object, style: str = "") -> Text:
    """``value`` as rich Text: shown literally (no markup, no emoji codes), escaped."""
    return Text(clean(value), style=style)


def json_text(value: Any) -> str:
    """``value`` as JSON, non-ASCII text kept readable, every unsafe character escaped.

    ``json.dumps`` escapes C0 controls itself; with ``ensure_ascii=False`` it
    leaves DEL, C1 controls and bidi overrides raw. Those can only occur
    inside JSON strings, where ``\\uXXXX`` is their own encoding.
    """
    text = json.dumps(value, ensure_ascii=False)
    if text.isascii() and text.isprintable():
        return text
    return "".join(_json_escape(ch) if _unsafe(ch) else ch for ch in text)


def _json_escape(ch: str) -> str:
    code = ord(ch)
    if code <= 0xFFFF:
        return f"\\u{code:04x}"
    code -= 0x10000  # outside the BMP: a UTF-16 surrogate pair, as JSON spells it
    return f"\\u{0xD800 + (code >> 10):04x}\\u{0xDC00 + (code & 0x3FF):04x}"
