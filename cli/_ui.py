"""``proctor ui``: serve the dashboard (DESIGN O1) on the store ``--db`` names.

The web stack (the ``ui`` extra) is imported here lazily, inside the
command, so every other command works without it; without the extra the
command says which ``pip install`` brings it. Invariants: it binds loopback
unless told otherwise, and refuses a host that is not loopback without a
token before it binds anything (exit 2); the store must exist and be a
Proctor store (checked read-only, as ``proctor runs list`` checks it)
before the server starts.
"""

from __future__ import annotations

import shlex
from collections.abc import Callable
from types import ModuleType
from typing import Final

import click

from cli import _exits
from cli._main import StoreOptions, cli, fail, open_store
from cli._text import clean
from cli.web._hosts import is_loopback

#: What to install for the dashboard.
UI_EXTRA: Final = "pip install 'proctor[ui]'"
#: The loopback names a server binds to without a token.
_LOOPBACK_HELP: Final = "127.0.0.0/8, ::1 or localhost"


def ui_available() -> bool:
    """Whether the ``ui`` extra (Starlette, uvicorn, Jinja2) can be imported."""
    try:
        require_ui()
    except click.ClickException:
        return False
    return True


def require_ui() -> None:
    """Return if the ``ui`` extra is installed; else the error that names it (exit 1)."""
    _web()


def _web() -> tuple[ModuleType, ModuleType]:
    """``cli.web._app`` and ``cli.web._serve``, or a clear error naming the extra."""
    try:
        from cli.web import _app, _serve  # noqa: PLC0415 - the ui extra, only when asked for
    except ImportError as exc:
        raise click.ClickException(
            f"proctor ui needs the ui extra ({clean(exc.name or exc)} is missing): {UI_EXTRA}"
        ) from exc
    return _app, _serve


def serve_dashboard(
    options: StoreOptions,
    *,
    host: str,
    port: int,
    token: str | None,
    then: Callable[[str], None] = lambda _url: None,
) -> None:
    """Check the host, the token and the store, then serve until Ctrl-C or SIGTERM.

    Once listening it prints ``proctor ui: serving URL`` and calls ``then(URL)``.
    """
    if token is not None and not token.strip():
        raise click.BadParameter("must not be empty", param_hint="--token")
    if token is None and not is_loopback(host):
        raise click.UsageError(
            f"--host {clean(host)} is not loopback ({_LOOPBACK_HELP}): anyone who can reach"
            " it could read and cancel runs; give --token (or PROCTOR_UI_TOKEN) to serve it"
        )
    app_module, serve_module = _web()
    with open_store(options):
        pass  # a missing, foreign or too-new store: the reading commands' one-line error
    app = app_module.build_app(options.target, token=token, busy_timeout=options.waiting)
    try:
        sock = serve_module.bind(host, port)
    except serve_module.BindError as exc:
        fail(str(exc))

    def listening(url: str) -> None:
        click.echo(f"proctor ui: serving {url}")
        then(url)

    serve_module.serve(app, sock, listening)


@cli.command(epilog=_exits.PLAIN)
@click.option(
    "--host",
    default="127.0.0.1",
    show_default=True,
    help=f"The address to listen on; one that is not loopback ({_LOOPBACK_HELP}) needs --token.",
)
@click.option(
    "--port",
    default=8765,
    show_default=True,
    type=click.IntRange(0, 65535),
    help="The port to listen on; 0 picks a free one (the printed URL says which).",
)
@click.option(
    "--token",
    envvar="PROCTOR_UI_TOKEN",
    help="A secret every request must carry (Authorization: Bearer TOKEN, or open the"
    " dashboard once with ?token=TOKEN, which sets a cookie). Env PROCTOR_UI_TOKEN.",
)
@click.pass_obj
def ui(options: StoreOptions, host: str, port: int, token: str | None) -> None:
    """Serve a web dashboard over the store: runs, a run's timeline, tree and log.

    Pages only read the store. A run's page has cancel and terminate buttons,
    each behind a confirmation, that write exactly what `proctor cancel` and
    `proctor terminate` write. Prints one line, `proctor ui: serving URL`,
    once it listens; Ctrl-C or SIGTERM stops it. Needs the ui extra:
    pip install 'proctor[ui]'.
    """
    serve_dashboard(options, host=host, port=port, token=token)


def dashboard_hint(shown: str) -> str | None:
    """The demo's closing hint on the store ``shown`` (password hidden), or None
    when the ui extra is not installed."""
    if not ui_available():
        return None
    return f"see it in the dashboard: proctor --db {clean(shlex.quote(shown))} ui"


__all__ = ["dashboard_hint", "require_ui", "serve_dashboard", "ui", "ui_available"]
