"""``proctor runs restart``: a finished run started again, as a new linked run (A7).

The new run is written as ``proctor start`` writes one, for a worker that
imports its workflow to pick up: the same workflow and arguments, its
``restarted_from``, and with ``--from-call N`` the old run's recorded calls
before N as ``call_reused`` records (``persistence.restart_unowned``, shared
with ``Client.restart``; its plan ``persistence.restart_plan`` is also
``Runtime.restart``'s). The old run is only read.
"""

from __future__ import annotations

import uuid

import click

from cli import _exits
from cli._control import chosen_run_id, creating
from cli._main import EXIT_ALREADY_FINISHED, StoreOptions, fail, open_store
from cli._runs import runs
from cli._text import clean
from persistence import InvalidArgument, RunNotFinished, calls_phrase, restart_unowned


@runs.command(epilog=_exits.RESTART)
@click.argument("run_id")
@click.option(
    "--from-call",
    "from_call",
    type=click.IntRange(min=0),
    metavar="N",
    help="Reuse the recorded results of the run's calls 0 to N-1 (the `call` numbers of"
    " `runs logs`) instead of running them again; the new run runs live from call N.",
)
@click.option(
    "--run-id",
    "new_run_id",
    metavar="ID",
    help="The new run's id (default: a random one); restarting again with it is safe.",
)
@click.pass_obj
def restart(
    options: StoreOptions, run_id: str, from_call: int | None, new_run_id: str | None
) -> None:
    """Start a finished run again: a new run, same workflow and arguments; print its id.

    The new run names the old one (`runs status` shows both ways). Only a run
    that has finished can be restarted (exit 4 otherwise). A `proctor worker`
    that imports the workflow runs it.
    """
    new_id = uuid.uuid4().hex if new_run_id is None else chosen_run_id(new_run_id)
    with creating(), open_store(options, write=True) as store:  # RunNotFound: exit 3
        try:
            record, new, reused = restart_unowned(store, run_id, from_call, new_id)
        except RunNotFinished as exc:
            fail(str(exc), EXIT_ALREADY_FINISHED)
        except InvalidArgument as exc:
            raise click.BadParameter(str(exc), param_hint="--from-call") from exc
    click.echo(new_id)
    more = f", reusing its {calls_phrase(reused)}" if reused else ""
    if new:
        click.echo(
            f"restarted run {clean(run_id)} as {clean(new_id)}{more}; a worker will pick it up",
            err=True,
        )
    else:
        click.echo(
            f"run {clean(new_id)} already existed ({record.status}): the same restart,"
            " so nothing new was started",
            err=True,
        )
