"""``proctor runs list``: runs filtered by status, workflow, parent and time, a page at a time (A6).

It only reads. Its ``--json`` output is one object with a ``schema_version``
(:data:`LIST_SCHEMA_VERSION`), the page's ``runs`` (times as ISO 8601 UTC)
and the ``next_cursor`` that continues the listing (None on the last page).
"""

from __future__ import annotations

from typing import Any, Final

import click

from cli import _exits
from cli import _render as render
from cli._main import MAX_COUNT, TIME, StoreOptions, open_store
from cli._owner import owner_json, owner_state
from cli._runs import runs
from cli._text import clean
from persistence import InvalidArgument, RunState, iso_utc, run_query

_STATUS_CHOICE = click.Choice([s.value for s in RunState], case_sensitive=False)

_TIME_HELP = (
    "ISO 8601 (UTC unless it has an offset: the zone the table prints), a duration ago"
    " (30m, 2h, 1d) or epoch seconds."
)


#: Runs per page unless ``--limit`` (or the dashboard's ``?limit=``) says otherwise.
PAGE_SIZE: Final = 50

#: The shape of ``runs list --json``; bumped when a field changes meaning or goes.
LIST_SCHEMA_VERSION: Final = 1


@runs.command("list", epilog=_exits.PLAIN)
@click.option(
    "--status",
    "status",
    type=_STATUS_CHOICE,
    multiple=True,
    help="Only runs in this state (repeatable).",
)
@click.option(
    "--workflow",
    help="Only runs of this workflow: its full name, or the short name after its last dot.",
)
@click.option("--parent", "parent", metavar="RUN_ID", help="Only the child runs of this run.")
@click.option("--since", type=TIME, help=f"Only runs created at or after this time. {_TIME_HELP}")
@click.option("--until", type=TIME, help=f"Only runs created before this time. {_TIME_HELP}")
@click.option("--ended-since", type=TIME, help="Only runs that ended at or after this time.")
@click.option("--ended-until", type=TIME, help="Only runs that ended before this time.")
@click.option(
    "--cursor",
    help="Start after the page that printed this cursor (give the same filters again).",
)
@click.option(
    "--limit",
    default=PAGE_SIZE,
    show_default=True,
    type=click.IntRange(min=1, max=MAX_COUNT),
    help="At most this many runs, newest first.",
)
@click.option(
    "--json",
    "as_json",
    is_flag=True,
    help="Print one JSON object: schema_version, runs, next_cursor.",
)
@click.pass_obj
def list_runs(
    options: StoreOptions,
    *,
    status: tuple[str, ...],
    workflow: str | None,
    parent: str | None,
    since: str | None,
    until: str | None,
    ended_since: str | None,
    ended_until: str | None,
    cursor: str | None,
    limit: int,
    as_json: bool,
) -> None:
    """List runs, newest first: id, workflow, status, start, duration, cancel reason.

    A page holds --limit runs; when there are more, the table's last line
    (and --json's next_cursor) gives the --cursor of the next page: give it
    with the same filters (a cursor of other filters is refused). Paging
    never repeats a run nor skips one, even while runs are created.

    Times print in UTC (ISO 8601, ending in Z), as --json gives them and as
    a time without an offset is read: a time copied from the table selects
    the same instant whatever the local zone.

    An unfinished run whose runtime is dead (stopped, lease expired, process
    gone) shows "(owner dead)" after its status: nothing runs it until a
    worker that knows its workflow resumes it.
    """
    states = [RunState(s.lower()) for s in status] or None
    try:
        query = run_query(
            status=states,
            workflow=workflow,
            parent_run_id=parent,
            since=since,
            until=until,
            ended_since=ended_since,
            ended_until=ended_until,
            limit=limit,
            cursor=cursor,
        )
    except InvalidArgument as exc:
        raise click.UsageError(clean(str(exc))) from exc
    with open_store(options) as store:
        page = store.list_runs_page(query)
        runtimes = store.runtimes()
    shown = page.runs
    owners = {r.run_id: owner_state(r, runtimes) for r in shown}
    if as_json:
        render.echo_json(
            {
                "schema_version": LIST_SCHEMA_VERSION,
                "runs": [
                    {**_iso_times(r.to_json()), **owner_json(owners[r.run_id])} for r in shown
                ],
                "next_cursor": page.next_cursor,
            }
        )
        return
    if not shown:
        filtered = (
            states
            or workflow
            or parent
            or cursor
            or any(t is not None for t in (since, until, ended_since, ended_until))
        )
        click.echo("no runs" + (" match" if filtered else f" in {clean(options.shown)}"))
        return
    dead = frozenset(run_id for run_id, o in owners.items() if o["alive"] is False)
    render.console().print(
        render.runs_table(
            shown, next_cursor=page.next_cursor, dead=dead, after_cursor=cursor is not None
        )
    )


_TIME_FIELDS: Final = (
    "created_at",
    "started_at",
    "finished_at",
    "cancel_requested_at",
    "terminate_requested_at",
)


def _iso_times(fields: dict[str, Any]) -> dict[str, Any]:
    """A run's JSON with its times as ISO 8601 in UTC."""
    return {k: iso_utc(v) if k in _TIME_FIELDS else v for k, v in fields.items()}
