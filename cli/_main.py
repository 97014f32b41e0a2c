"""``proctor``: the click group, its exit codes, and the store it works on.

The commands that inspect and control runs talk to ``persistence`` only,
exactly as any other process would; only ``worker`` and ``demo`` host a
runtime, and they import ``actors`` lazily, so ``proctor runs list`` starts
fast.
"""

from __future__ import annotations

import contextlib
import math
import os
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Final, NoReturn

import click

import persistence
from cli._text import clean
from persistence import (
    DEFAULT_BUSY_TIMEOUT,
    InvalidArgument,
    RunNotFound,
    Store,
    StoreError,
    StoreTarget,
)

#: Exit codes, documented in --help and docs/cli.md.
EXIT_OK: Final = 0
EXIT_ERROR: Final = 1
EXIT_USAGE: Final = 2
EXIT_NOT_FOUND: Final = 3
EXIT_ALREADY_FINISHED: Final = 4
EXIT_WAIT_TIMED_OUT: Final = 5
#: A start's --run-id is the id of a run of another workflow or arguments (A2).
EXIT_RUN_ID_IN_USE: Final = 6
#: 128 + SIGINT, as a shell reports a command stopped by Ctrl-C.
EXIT_INTERRUPTED: Final = 130

#: What each exit code means, for the --help of the commands that can exit with it.
EXIT_MEANINGS: Final = {
    EXIT_OK: "success",
    EXIT_ERROR: "error (bad store file)",
    EXIT_USAGE: "usage",
    EXIT_NOT_FOUND: "run not found",
    EXIT_ALREADY_FINISHED: "run already finished",
    EXIT_WAIT_TIMED_OUT: "--wait timed out",
    EXIT_RUN_ID_IN_USE: "--run-id in use by another start",
    EXIT_INTERRUPTED: "stopped by Ctrl-C (a request made stays)",
}


def exit_codes_help(*codes: int, **meaning: str) -> str:
    """A command's epilog: the exit codes it can end with (0, 1 and 2 always),
    each with its meaning; ``meaning`` overrides one, keyed ``e<code>``."""
    chosen = sorted({EXIT_OK, EXIT_ERROR, EXIT_USAGE, *codes})
    said = (f"{code} {meaning.get(f'e{code}', EXIT_MEANINGS[code])}" for code in chosen)
    return "Exit codes: " + "; ".join(said) + "."


#: The group's epilog: every code some command can end with.
EXIT_CODES_HELP: Final = exit_codes_help(
    EXIT_NOT_FOUND,
    EXIT_ALREADY_FINISHED,
    EXIT_WAIT_TIMED_OUT,
    EXIT_RUN_ID_IN_USE,
    EXIT_INTERRUPTED,
    e1="error (bad store file, or the run did not complete)",
    e4="run already finished (restart: not finished yet)",
)


class CliError(click.ClickException):
    """One clear sentence on stderr and a documented exit code; never a traceback.

    The message is escaped (:func:`cli._text.clean`): it may quote user text.
    """

    exit_code = EXIT_ERROR

    def __init__(self, message: str) -> None:
        super().__init__(clean(message))


class RunNotFoundError(CliError):
    exit_code = EXIT_NOT_FOUND


class AlreadyFinishedError(CliError):
    exit_code = EXIT_ALREADY_FINISHED


class WaitTimedOutError(CliError):
    exit_code = EXIT_WAIT_TIMED_OUT


class RunIdInUseError(CliError):
    exit_code = EXIT_RUN_ID_IN_USE


class InterruptedByUser(CliError):
    exit_code = EXIT_INTERRUPTED


_ERRORS: Final[dict[int, type[CliError]]] = {
    EXIT_ERROR: CliError,
    EXIT_NOT_FOUND: RunNotFoundError,
    EXIT_ALREADY_FINISHED: AlreadyFinishedError,
    EXIT_WAIT_TIMED_OUT: WaitTimedOutError,
    EXIT_RUN_ID_IN_USE: RunIdInUseError,
    EXIT_INTERRUPTED: InterruptedByUser,
}


def fail(message: str, exit_code: int = EXIT_ERROR) -> NoReturn:
    raise _ERRORS[exit_code](message)


@contextlib.contextmanager
def interrupted(what_stays: str) -> Iterator[None]:
    """Ctrl-C in a waiting command: exit 130 with ``what_stays``, not click's "Aborted!".

    Waiting is all these commands do at that point; what they asked for is
    already durable, and the message says so.
    """
    try:
        yield
    except KeyboardInterrupt:
        fail(f"interrupted: {what_stays}", EXIT_INTERRUPTED)


@dataclass(frozen=True, slots=True)
class StoreOptions:
    """The group's options, handed to every command."""

    #: The store as given (``--db``, ``PROCTOR_DB``): a path or a URL that
    #: may hold a password; messages show :attr:`shown` instead.
    db: str = field(repr=False)
    #: As given (``--busy-timeout``), or None: each command's own default.
    busy_timeout: float | None

    @property
    def target(self) -> StoreTarget:
        """``db`` read (checked by the ``--db`` option already)."""
        return persistence.parse_target(self.db)

    @property
    def shown(self) -> str:
        """``db`` as messages show it: its password hidden."""
        return persistence.redact(self.db)

    @property
    def waiting(self) -> float:
        """How long a command waits for another process's write lock."""
        return DEFAULT_BUSY_TIMEOUT if self.busy_timeout is None else self.busy_timeout


@contextlib.contextmanager
def open_store(
    options: StoreOptions, *, write: bool = False, create: bool = False
) -> Iterator[Store]:
    """The store ``--db`` names: read-only unless ``write``; created only if ``create``.

    A reading command never creates or changes anything; it reads a store in
    a folder it cannot write (``persistence.open_store(readonly=True)``). A missing, locked,
    foreign or too-new store, or a server that cannot be reached, is a
    one-sentence error (exit 1) that shows the store with its password
    hidden; an unknown run id raised inside the block is exit 3.
    """
    target, shown = options.target, options.shown
    if not create and target.is_file and not Path(target.location).is_file():
        fail(f"no Proctor store at {shown}: the file does not exist (set --db or PROCTOR_DB)")
    try:
        if write and not create:
            # A command that does not create a store judges the store as the
            # reading ones do (an empty file, 0 bytes or no tables, or a
            # database without Proctor's schema, is not a store) instead of
            # making one in it.
            persistence.open_store(target, readonly=True, busy_timeout=options.waiting).close()
        store = persistence.open_store(target, readonly=not write, busy_timeout=options.waiting)
    except StoreError as exc:
        fail(str(exc))
    except InvalidArgument as exc:  # an option of the URL (?pool_size=0): as the worker does
        raise click.BadParameter(clean(str(exc)), param_hint="--db") from exc
    try:
        with store:
            yield store
    except RunNotFound as exc:
        fail(f"{exc} in {shown}", EXIT_NOT_FOUND)
    except StoreError as exc:
        fail(str(exc))
    except RecursionError:
        # Past even main()'s headroom: a row no runtime could have written.
        fail(f"a value in {shown} is nested too deeply to be read")


if TYPE_CHECKING:
    _FloatParam = click.ParamType[float]
    _StrParam = click.ParamType[str]
else:  # a plain class before click 8.2
    _FloatParam = _StrParam = click.ParamType


class Seconds(_FloatParam):
    """A finite number of seconds, zero or more: ``nan`` and ``inf`` are usage errors."""

    name = "seconds"

    def convert(
        self, value: object, param: click.Parameter | None, ctx: click.Context | None
    ) -> float:
        if isinstance(value, float) and 0 <= value <= persistence.MAX_SECONDS:
            return value
        try:
            seconds = float(value)  # type: ignore[arg-type]
        except (TypeError, ValueError):
            self.fail(f"{clean(str(value))!r} is not a number of seconds", param, ctx)
        if not math.isfinite(seconds) or seconds < 0:
            self.fail(f"{clean(str(value))!r} is not a finite number of seconds >= 0", param, ctx)
        if seconds > persistence.MAX_SECONDS:
            self.fail(
                f"{clean(str(value))!r} seconds: must be {persistence.BOUND_TEXT}", param, ctx
            )
        return seconds


#: Every option that takes seconds: --timeout, --grace, --busy-timeout, ...
SECONDS: Final = Seconds()


class Time(_StrParam):
    """A point in time as ``persistence.instant`` reads it (ISO 8601, UTC
    without an offset; a duration ago such as ``2h``; epoch seconds),
    checked here and passed on as written: a ``--cursor`` is bound to
    ``--since 2h`` as written, so the next page's ``--since 2h`` matches
    though ``now`` moved."""

    name = "time"

    def convert(
        self, value: object, param: click.Parameter | None, ctx: click.Context | None
    ) -> str:
        what = param.opts[0] if param is not None and param.opts else "time"
        try:
            persistence.instant(value, what, time.time())
        except InvalidArgument as exc:
            self.fail(clean(str(exc)), param, ctx)
        return str(value).strip()


#: Every option that takes a point in time: --since, --until, ...
TIME: Final = Time()

#: A SQLite target's path is checked as ``click.Path`` checks one: not a directory.
_FILE: Final = click.Path(dir_okay=False)


class StoreParam(_StrParam):
    """``--db``: a store target (``persistence.parse_target``), given back as
    written. A malformed URL is a usage error that shows it redacted; a
    SQLite path must not be a directory (as ``click.Path(dir_okay=False)``)."""

    name = "store"

    def convert(
        self, value: object, param: click.Parameter | None, ctx: click.Context | None
    ) -> str:
        given = os.fspath(value) if isinstance(value, os.PathLike) else value
        if not isinstance(given, str):
            self.fail(f"a store must be a path or a URL, not {type(value).__name__}", param, ctx)
        try:
            target = persistence.parse_target(given)
        except InvalidArgument as exc:
            self.fail(clean(str(exc)), param, ctx)
        if target.is_file:
            _FILE.convert(target.location, param, ctx)  # a directory: usage error, as ever
        return given


#: The largest count an option takes (--limit, --batch): SQLite's integers are
#: 64-bit, and a count is sometimes given one more (a page's "is there more").
MAX_COUNT: Final = 2**62


@click.group(
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
    epilog=EXIT_CODES_HELP,
)
@click.option(
    "--db",
    "db",
    default="proctor.db",
    show_default=True,
    envvar="PROCTOR_DB",
    type=StoreParam(),
    help=(
        "The Proctor store (env PROCTOR_DB): a SQLite file's path, or a URL"
        " (sqlite:///relative/path, postgresql://user@host:port/database)."
    ),
)
@click.option(
    "--busy-timeout",
    type=SECONDS,
    envvar="PROCTOR_BUSY_TIMEOUT",
    help=(
        f"Seconds to wait for another process's lock before giving up (exit 1)."
        f"  [default: {DEFAULT_BUSY_TIMEOUT:g}; a worker: a third of its lease, at most"
        f" {DEFAULT_BUSY_TIMEOUT:g}]"
    ),
)
@click.version_option(package_name="proctor")
@click.pass_context
def cli(ctx: click.Context, db: str, busy_timeout: float | None) -> None:
    """Proctor: durable, cancellable workflows on actors.

    Inspect runs (runs list/status/logs/tree), control them from any process
    (cancel, terminate, signal), start them (start), restart a finished one (runs
    restart), prune old ones (runs prune) and host them (worker).
    """
    ctx.obj = StoreOptions(db=os.fspath(db), busy_timeout=busy_timeout)


#: Python's recursion limit in the ``proctor`` process. A runtime writes values
#: nested as deep as its own limit allows (about 1,000 levels at the default);
#: the CLI reads them from deeper in its stack (click, the view), so it needs
#: more room than any writer had, or one such value fails every listing.
READ_RECURSION_LIMIT: Final = 5000


def main() -> None:
    """Console-script entry point."""
    sys.setrecursionlimit(max(sys.getrecursionlimit(), READ_RECURSION_LIMIT))
    cli(prog_name="proctor")
