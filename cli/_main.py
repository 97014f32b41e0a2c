"""``proctor``: the click group and its exit codes."""

from __future__ import annotations

import click

from persistence import StoreError

#: Exit codes, documented in --help and docs/cli.md.
EXIT_OK = 0
EXIT_USAGE = 2
EXIT_NOT_FOUND = 3
EXIT_ALREADY_FINISHED = 4
EXIT_WAIT_TIMED_OUT = 5


class StoreProblem(click.ClickException):
    """The database file is missing, locked, foreign or too new."""

    exit_code = 1


@click.group(
    context_settings={"help_option_names": ["-h", "--help"]},
    epilog="Exit codes: 0 success, 1 store error, 2 usage.",
)
@click.option(
    "--db",
    "db",
    default="proctor.db",
    show_default=True,
    envvar="PROCTOR_DB",
    type=click.Path(dir_okay=False),
    help="Path of the Proctor store (env PROCTOR_DB).",
)
@click.version_option(package_name="proctor")
@click.pass_context
def cli(ctx: click.Context, db: str) -> None:
    """Proctor: durable, cancellable workflows on actors."""
    ctx.obj = db


@cli.command()
@click.option(
    "--cancel-after",
    default=0.3,
    show_default=True,
    type=float,
    help="Seconds into the payment step at which the demo cancels the run.",
)
@click.pass_obj
def demo(db: str, cancel_after: float) -> None:
    """Run the order workflow, cancel it mid-payment, and print its timeline."""
    from cli._host import run_demo  # noqa: PLC0415 - hosts a runtime: import actors lazily

    try:
        run_demo(db, cancel_after=cancel_after)
    except StoreError as exc:
        raise StoreProblem(str(exc)) from exc


def main() -> None:
    """Console-script entry point."""
    cli(prog_name="proctor")
