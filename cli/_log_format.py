"""Log format: how ``proctor worker`` prints the runtime's log records (O3).

Two formats: ``text`` (a readable line, as before: time, level, message)
and ``json`` (JSON Lines: one object per record, per line, on stderr).
The JSON object holds ``ts`` (ISO 8601, UTC, microseconds), ``level``,
``logger``, ``message``, every structured field the record carries (the
runtime's ``run_id``, ``step``, ``call``, ``attempt``, ``event_type``,
``workflow``, ``status``, ``duration_s``, ...; see ``docs/guides/logging.md``)
and, when the record has an exception, ``exc``: its traceback as one
string.

Invariants: one record is exactly one line (JSON escapes every newline of
a message or traceback); a field is a JSON value (one that is not, an
object, is written as its ``repr``); a field never hides ``ts``, ``level``,
``logger``, ``message`` or ``exc``; stdlib only.
"""

from __future__ import annotations

import datetime
import json
import logging
import sys
from typing import Any, Final

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


class JsonLinesFormatter(logging.Formatter):
    """Formats a record as one JSON object on one line (see the module docstring).

    Like python-json-logger's ``JsonFormatter`` and structlog's
    ``JSONRenderer``, but stdlib only: every attribute a record was given
    with ``extra=`` becomes a key.
    """

    def format(self, record: logging.LogRecord) -> str:
        ts = datetime.datetime.fromtimestamp(record.created, tz=datetime.UTC)
        line: dict[str, Any] = {
            "ts": ts.isoformat(timespec="microseconds").replace("+00:00", "Z"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
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
        return json.dumps(line, ensure_ascii=False, default=repr)


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
