"""``proctor runs prune``: delete finished runs older than an age (retention).

A thin layer over :func:`persistence.prune`: the same trees of runs, the
same small transactions, from any process, with or without a runtime alive.
"""

from __future__ import annotations

import json

import click

from cli import _exits
from cli._main import MAX_COUNT, StoreOptions, open_store
from cli._runs import runs
from persistence import PRUNE_BATCH, parse_duration, prune


def _duration(_ctx: click.Context, _param: click.Parameter, value: str) -> float:
    """``30d``, ``12h``, ``90m``, ``45s``, ``2w`` -> seconds; anything else is exit 2."""
    try:
        return parse_duration(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from exc


@runs.command("prune", epilog=_exits.PLAIN)
@click.option(
    "--older-than",
    "older_than",
    required=True,
    metavar="DURATION",
    callback=_duration,
    help="Prune runs that finished longer ago than this: 30d, 12h, 90m, 45s.",
)
@click.option("--dry-run", is_flag=True, help="Count what would be pruned; delete nothing.")
@click.option(
    "--batch",
    default=PRUNE_BATCH,
    show_default=True,
    type=click.IntRange(min=1, max=MAX_COUNT),
    help="Runs deleted per transaction (a runtime's commits wait at most one).",
)
@click.option("--json", "as_json", is_flag=True, help="Print the counts as a JSON object.")
@click.pass_obj
def prune_runs(
    options: StoreOptions, older_than: float, dry_run: bool, batch: int, as_json: bool
) -> None:
    """Delete finished runs older than --older-than, with their log and steps.

    A run goes with its whole tree (child runs, theirs, ...) and only when
    every run in it is finished (completed, failed, cancelled, terminated)
    and finished before the cutoff; an unfinished or recent run keeps its
    whole tree. The log of a pruned run is gone for good: `runs logs` and
    `runs status` then say it does not exist.
    """
    with open_store(options, write=not dry_run) as store:
        report = prune(store, older_than, dry_run=dry_run, batch=batch)
    if as_json:
        out = report.to_json()
        del out["run_ids"]
        click.echo(json.dumps(out))
        return
    if dry_run:
        done = "would prune"
        how = ""
    else:
        done = "pruned"
        how = f" in {report.transactions} transaction{'s' if report.transactions != 1 else ''}"
    click.echo(
        f"{done} {report.runs} run{'s' if report.runs != 1 else ''}"
        f" ({report.events} events, {report.steps} step attempts){how};"
        f" kept {report.kept} old run{'s' if report.kept != 1 else ''} with unfinished"
        " or recent runs in their tree"
    )
