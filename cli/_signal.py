"""``proctor signal RUN_ID NAME [JSON]``: send a signal to a run (B5).

It writes the very record ``Runtime.signal`` and ``Client.signal`` write
(``persistence.signal_request``), in one transaction; the runtime that owns
the run hears of it through its ControlInbox, as of a cancel, and a run
nobody owns yet gets it when a worker claims it.

Invariants: the payload is one JSON value, from the argument or from
standard input (``-``), checked as the store keeps it before anything is
written (a usage error, exit 2, names what is wrong); a run that already
finished refuses the signal and nothing is written (exit 4, as a cancel of
a finished run); an unknown run exits 3.
"""

from __future__ import annotations

import os
import sys

import click

from cli import _exits
from cli._json_args import parse_json
from cli._main import (
    AlreadyFinishedError,
    RunNotFoundError,
    StoreOptions,
    cli,
    open_store,
)
from cli._text import clean
from persistence import (
    DEFAULT_MAX_PAYLOAD_BYTES,
    InvalidArgument,
    NotSerializable,
    RunNotActive,
    RunNotFound,
    request_signal,
)


@cli.command(epilog=_exits.SIGNAL)
@click.argument("run_id")
@click.argument("name")
@click.argument("payload", required=False, metavar="[JSON]")
@click.pass_obj
def signal(options: StoreOptions, *, run_id: str, name: str, payload: str | None) -> None:
    """Send the signal NAME to a run; its body takes it with wait_for_signal(NAME).

    JSON is the payload, one JSON value ('{"by": "ann"}', 42, '"text"'); `-`
    reads it from standard input; none sends null. The signal is durably in
    the run's log when this returns; signals of one name are taken in the
    order sent, and one sent before the run waits is kept until it does.
    A finished run refuses it (exit 4).
    """
    value = None
    if payload is not None:
        text = sys.stdin.read() if payload == "-" else payload
        value = parse_json(text, "[JSON]")
    with open_store(options, write=True) as store:
        try:
            appended = request_signal(
                store,
                run_id,
                name,
                value,
                origin=f"cli-{os.getpid()}",
                limit=DEFAULT_MAX_PAYLOAD_BYTES,
            )
        except InvalidArgument as exc:
            raise click.BadParameter(str(exc), param_hint="NAME") from exc
        except NotSerializable as exc:  # over the payload limit
            raise click.BadParameter(str(exc), param_hint="[JSON]") from exc
        except RunNotFound as exc:
            raise RunNotFoundError(f"no run with id {run_id!r}") from exc
        except RunNotActive as exc:
            raise AlreadyFinishedError(str(exc)) from exc
    click.echo(
        f"signal {clean(name)!r} sent to run {clean(run_id)} (log seq {appended.run_seq});"
        " its body takes it with wait_for_signal"
    )
