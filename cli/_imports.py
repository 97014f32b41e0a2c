"""Importing the user's modules (``start``, ``worker``): errors say what and where.

A module that fails to import is a usage error (exit 2) whose one line
names the exception's type, its message, and the file and line it was
raised at (for a SyntaxError, the offending line), never a traceback.
"""

from __future__ import annotations

import importlib
import os
import sys
import traceback
from types import ModuleType

import click

from cli._text import clean


def import_user_module(name: str, *, param_hint: str) -> ModuleType:
    """Import ``name`` as ``python -m`` would (the current directory first on the path).

    Raises:
        click.BadParameter: the import raised; the message says
            ``cannot import NAME: Type: message (FILE, line N)``.
    """
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())  # like `python -m`: the project's own modules
    try:
        return importlib.import_module(name)
    except Exception as exc:
        raise click.BadParameter(
            clean(f"cannot import {name}: {describe_import_error(exc)}"), param_hint=param_hint
        ) from exc


def describe_import_error(exc: BaseException) -> str:
    """``Type: message (FILE, line N)``: where the exception was raised.

    The place is the innermost frame outside Python's import machinery; for
    a SyntaxError, the file and line it names.
    """
    text = f"{type(exc).__name__}: {_message(exc)}"
    where = _where(exc)
    return f"{text} ({where})" if where else text


def _message(exc: BaseException) -> str:
    if isinstance(exc, SyntaxError) and exc.msg:
        return exc.msg
    try:
        return str(exc)
    except Exception:  # a hostile __str__ must not hide the import error
        return "<the message could not be read>"


def _where(exc: BaseException) -> str | None:
    if isinstance(exc, SyntaxError) and exc.filename:
        return f"{exc.filename}, line {exc.lineno}"
    # Python's import machinery is never the place to fix: a module that is
    # not found at all has no place, only its name.
    frames = [
        f
        for f in traceback.extract_tb(exc.__traceback__)
        if not f.filename.startswith("<frozen ")
        and not os.path.abspath(f.filename).startswith(_IMPORTLIB_DIR)
    ]
    # Raised by Proctor itself (a @workflow() refused at import, say): the
    # user's line that called it is the place to fix.
    theirs = [f for f in frames if not _is_proctors(f.filename)]
    if not theirs:
        return None
    return f"{theirs[-1].filename}, line {theirs[-1].lineno}"


_IMPORTLIB_DIR = os.path.join(os.path.dirname(os.path.abspath(importlib.__file__)), "")

_PROCTOR_DIRS = tuple(
    os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), package, "")
    for package in ("actors", "persistence", "cli")
)


def _is_proctors(filename: str) -> bool:
    return os.path.abspath(filename).startswith(_PROCTOR_DIRS)
