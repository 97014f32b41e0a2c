"""Log format: how ``proctor worker`` prints the runtime's log records (O3).

Two formats: ``text`` (a readable line, as before: time, level, message)
and ``json`` (JSON Lines: one object per record, per line, on stderr).
The JSON object holds ``ts`` (ISO 8601, UTC, microseconds), ``level``,
``logger``, ``message``, every structured field the record carries (the
runtime's ``run_id``, ``step``, ``call``, ``attempt``, ``event_type``,
``workflow``, ``status``, ``duration_s``, ...; see ``docs/guides/logging.md``)
and, when the record has an exception, ``exc``: its traceback as one
string.

Invariants: one record is exactly one line of valid JSON, whatever it
holds: JSON escapes every newline, and the line separators Python's
``splitlines`` and JavaScript also split at (U+2028, U+2029, U+0085) are
escaped too; a field that is not a JSON value (an object, a dict with
other keys than strings, a cycle, NaN or an infinity) is written as its
``repr``, and one whose ``repr`` fails as its type; a message whose
arguments do not fit its format is written as its format and arguments.
A field never hides ``ts``, ``level``, ``logger``, ``message`` or ``exc``;
stdlib only.
"""

from __future__ import annotations

import datetime
import json
import logging
import sys
from typing import Final

#: The formats ``--log-format`` accepts.
LOG_FORMATS: Final = ("text", "json")
#: The levels ``--log-level`` accepts.
LOG_LEVELS: Final = ("debug", "info", "warning", "error", "critical")

#: The text format: as the worker has always printed.
TEXT_FORMAT: Final = "%(asctime)s %(levelname)s %(message)s"

#: Attributes every LogRecord has: not structured fields of the record's own.
_STANDARD: Final = frozenset(
    vars(logging.LogRecord("", logging.INFO, "", 0, "", None, None)).keys()
) | {"message", "asctime", "taskName"}

#: The keys of the JSON object that no ``extra`` field may replace.
_RESERVED: Final = frozenset({"ts", "level", "logger", "message", "exc"})
#: Characters valid inside a JSON string that some readers split lines at.
_LINE_BREAKS: Final = str.maketrans({"\u2028": "\\u2028", "\u2029": "\\u2029", "\x85": "\\u0085"})


def _safe_repr(value: object) -> str:
    try:
        return repr(value)
    except Exception:  # a __repr__ that raises: its type must do
        return f"<{type(value).__qualname__} (repr failed)>"


def _encoded(value: object) -> str:
    """``value`` as one JSON value: itself if it is one, else its repr as a string."""
    try:
        return json.dumps(value, ensure_ascii=False, allow_nan=False)
    except (TypeError, ValueError, RecursionError):
        return json.dumps(_safe_repr(value), ensure_ascii=False)


def _message(record: logging.LogRecord) -> str:
    try:
        return record.getMessage()
    except Exception:  # format and arguments that do not fit: show both
        try:
            text = str(record.msg)
        except Exception:
            text = _safe_repr(record.msg)
        return f"{text} (with arguments that do not fit it: {_safe_repr(record.args)})"


class JsonLinesFormatter(logging.Formatter):
    """Formats a record as one JSON object on one line (see the module docstring).

    Like python-json-logger's ``JsonFormatter`` and structlog's
    ``JSONRenderer``, but stdlib only: every attribute a record was given
    with ``extra=`` becomes a key.
    """

    def format(self, record: logging.LogRecord) -> str:
        ts = datetime.datetime.fromtimestamp(record.created, tz=datetime.UTC)
        line: dict[str, object] = {
            "ts": ts.isoformat(timespec="microseconds").replace("+00:00", "Z"),
            "level": record.levelname,
            "logger": record.name,
            "message": _message(record),
        }
        line.update(
            (key, value)
            for key, value in vars(record).items()
            if key not in _STANDARD and key not in _RESERVED and not key.startswith("_")
        )
        if record.exc_info:
            line["exc"] = self.formatException(record.exc_info)
        elif record.exc_text:
            line["exc"] = record.exc_text
        if record.stack_info:
            line["stack"] = self.formatStack(record.stack_info)
        fields = ",".join(f"{json.dumps(key)}:{_encoded(value)}" for key, value in line.items())
        return ("{" + fields + "}").translate(_LINE_BREAKS)


def configure_logging(log_format: str, level: str) -> None:
    """Print the process's log records on stderr, in ``log_format``, from ``level`` up.

    Args:
        log_format: one of :data:`LOG_FORMATS`.
        level: one of :data:`LOG_LEVELS` (any case).

    Raises:
        ValueError: an unknown format or level (the CLI's choices rule them out).
    """
    if log_format not in LOG_FORMATS:
        raise ValueError(f"unknown log format {log_format!r}: use one of {', '.join(LOG_FORMATS)}")
    if level.lower() not in LOG_LEVELS:
        raise ValueError(f"unknown log level {level!r}: use one of {', '.join(LOG_LEVELS)}")
    handler = logging.StreamHandler(sys.stderr)
    formatter = JsonLinesFormatter() if log_format == "json" else logging.Formatter(TEXT_FORMAT)
    handler.setFormatter(formatter)
    logging.basicConfig(level=level.upper(), handlers=[handler])
