"""``proctor demo`` and ``proctor worker``: the two commands that host a runtime.

They import ``cli._demo`` and ``cli._host`` (and through them ``actors``)
only when they run, and each only its own: the demo's workflow is never
registered in a worker.
"""

from __future__ import annotations

import click

from cli import _exits, _ui
from cli._log_format import LOG_FORMATS, LOG_LEVELS
from cli._main import SECONDS, StoreOptions, cli, fail
from persistence import StoreError


@cli.command(epilog=_exits.PLAIN)
@click.option(
    "--cancel-after",
    default=0.3,
    show_default=True,
    type=SECONDS,
    help="Seconds into the payment step at which the demo cancels the run.",
)
@click.option(
    "--quote-deadline",
    default=0.3,
    show_default=True,
    type=SECONDS,
    help="Seconds the second scene's shipping quote gets (move_on_after) before it is cancelled.",
)
@click.option(
    "--ui",
    "with_ui",
    is_flag=True,
    help="Then serve the dashboard (proctor ui) on the demo's store and print the URL of"
    " the cancelled order's page; Ctrl-C stops it. Needs the ui extra.",
)
@click.option(
    "--port",
    default=8765,
    show_default=True,
    type=click.IntRange(0, 65535),
    help="With --ui: the dashboard's port on 127.0.0.1 (0: a free one).",
)
@click.pass_obj
def demo(
    options: StoreOptions, cancel_after: float, quote_deadline: float, with_ui: bool, port: int
) -> None:
    """Run the order workflow, cancel it mid-payment, and print its timeline; then
    show a cancel scope's deadline cancelling one step while the run completes."""
    from cli._demo import run_demo  # noqa: PLC0415 - hosts a runtime: import actors lazily

    # With --ui the port is bound before the demo, not after it: a busy port
    # fails at once, before the demo adds its runs to the store.
    sock = _ui.bind_dashboard("127.0.0.1", port) if with_ui else None
    try:
        cancelled = run_demo(options.db, cancel_after=cancel_after, quote_seconds=quote_deadline)
    except BaseException as exc:
        if sock is not None:
            sock.close()
        if isinstance(exc, StoreError):
            fail(str(exc))
        raise
    if sock is None:
        hint = _ui.dashboard_hint(options.shown)
        if hint is not None:
            click.echo(hint)
        return

    def say_where(url: str) -> None:
        click.echo(f"the cancelled order's timeline: {url}runs/{cancelled}")

    _ui.serve_dashboard(options, host="127.0.0.1", port=port, token=None, then=say_where, sock=sock)


@cli.command(epilog=_exits.PLAIN)
@click.argument("modules", nargs=-1, required=True, metavar="MODULE...")
@click.option(
    "--max-concurrent-steps",
    type=click.IntRange(min=1),
    default=None,
    help="Step attempts run at once, at most; the others wait, in order"
    " (default: 50 per CPU, at least 16). A worker whose steps wait claims no new runs.",
)
@click.option(
    "--drain",
    type=SECONDS,
    default=30.0,
    show_default=True,
    help="Seconds the running steps get to finish after the first SIGTERM or Ctrl-C"
    " (their results are recorded); 0: they are asked to stop at once.",
)
@click.option(
    "--log-format",
    type=click.Choice(LOG_FORMATS),
    default="text",
    show_default=True,
    help="How log records are printed on stderr: text lines, or JSON Lines (one object per"
    " record, with its run_id, step, attempt, event_type... fields).",
)
@click.option(
    "--log-level",
    type=click.Choice(LOG_LEVELS, case_sensitive=False),
    default="info",
    show_default=True,
    help="The least severe log records printed.",
)
@click.pass_obj
def worker(
    options: StoreOptions,
    *,
    modules: tuple[str, ...],
    max_concurrent_steps: int | None,
    drain: float,
    log_format: str,
    log_level: str,
) -> None:
    """Host a runtime that runs the store's runs of the workflows in MODULE...

    Imports each module (from the current directory too), then claims every
    run nobody owns yet (`proctor start`) of the workflows they define, and
    runs it; a run is claimed by one worker only. It serves exactly those
    workflows (with those of the modules they import); a module without a
    workflow is a usage error (exit 2). Cancel and terminate reach these
    runs like any other.

    The first SIGTERM or SIGINT (Ctrl-C) drains it: it starts and claims
    nothing more, lets the running steps finish for up to --drain seconds
    (logging which it waits for), then stops them and exits 0; unfinished
    runs stay in the store, for the next worker. A second signal ends the
    drain at once (the running steps are asked to stop); one more exits at
    once, writing nothing more, as a crash (another worker resumes its runs
    when their leases expire).

    It logs on stderr each run it claims or resumes and how each run it
    hosts ends (completed, failed, cancelled or terminated, with the time
    it took), as text or, with --log-format json, as JSON Lines.
    """
    from cli._host import run_worker  # noqa: PLC0415 - hosts a runtime: import actors lazily

    try:
        run_worker(
            options.db,
            modules,
            max_concurrent_steps=max_concurrent_steps,
            busy_timeout=options.busy_timeout,
            drain=drain,
            log_format=log_format,
            log_level=log_level,
        )
    except StoreError as exc:
        fail(str(exc))
