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

import errno
import logging
import os
import shlex
import shutil
import socket
import sys
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
#: The addresses that mean "every interface of this host".
_WILDCARDS: Final = frozenset({"0.0.0.0", "::", ""})  # noqa: S104 - names, not a bind
#: The environment variable the token may come from.
TOKEN_VARIABLE: Final = "PROCTOR_UI_TOKEN"  # noqa: S105 - a variable's name, no secret
#: The logger of the dashboard's accepted actions (one INFO line each).
LOGGER: Final = "proctor.ui"


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


def check_access(host: str, token: str | None) -> None:
    """Refuse an empty token, or a host that is not loopback without a token (exit 2)."""
    if token is not None and not token.strip():
        raise click.BadParameter("must not be empty", param_hint="--token")
    if token is None and not is_loopback(host):
        raise click.UsageError(
            f"--host {clean(host)} is not loopback ({_LOOPBACK_HELP}): anyone who can reach"
            " it could read and cancel runs; give --token (or PROCTOR_UI_TOKEN) to serve it"
        )


def bind_dashboard(host: str, port: int) -> socket.socket:
    """The dashboard's listening socket, bound now (before any slow work), or exit 1
    with the reason; a port in use says that ``--port 0`` picks a free one."""
    _app_module, serve_module = _web()
    try:
        return serve_module.bind(host, port)  # type: ignore[no-any-return]
    except serve_module.BindError as exc:
        hint = "; --port 0 picks a free port" if exc.errno == errno.EADDRINUSE else ""
        fail(f"{exc}{hint}")


def serve_dashboard(
    options: StoreOptions,
    *,
    host: str,
    port: int,
    token: str | None,
    token_shown: str | None = None,
    then: Callable[[str], None] = lambda _url: None,
    sock: socket.socket | None = None,
) -> None:
    """Check the host, the token and the store, then serve until Ctrl-C or SIGTERM.

    Once listening it prints ``proctor ui: serving URL`` and calls ``then(URL)``;
    on a wildcard host (0.0.0.0, ::) it then prints the URLs by which other
    hosts may reach it, and with a token how to open it once (``token_shown``:
    the token as printed, e.g. ``$PROCTOR_UI_TOKEN``; default the token). An
    accepted action is logged on stderr (logger ``proctor.ui``, INFO).
    ``sock``: a socket :func:`bind_dashboard` bound already (closed at the end
    in every case); else it binds ``host:port`` after the checks.
    """
    try:
        check_access(host, token)
        app_module, serve_module = _web()
        with open_store(options):
            pass  # a missing, foreign or too-new store: the reading commands' one-line error
        app = app_module.build_app(options.target, token=token, busy_timeout=options.waiting)
        if sock is None:
            sock = bind_dashboard(host, port)
    except BaseException:
        if sock is not None:
            sock.close()
        raise
    _log_actions()

    def listening(url: str) -> None:
        click.echo(f"proctor ui: serving {url}")
        if host in _WILDCARDS:
            for other in reachable_urls(host, sock.getsockname()[1]):
                click.echo(f"proctor ui: reachable at {other}")
        if token is not None:
            shown = token if token_shown is None else token_shown
            click.echo(
                f"proctor ui: open it once with ?token={shown} (it is then kept in a cookie)"
            )
        then(url)

    serve_module.serve(app, sock, listening)


def reachable_urls(host: str, port: int) -> list[str]:
    """Best effort: the URLs of this host's name and its addresses (of ``host``'s
    family) on ``port``, loopback left out; ``[]`` when the name does not resolve."""
    name = socket.gethostname()
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    try:
        found = socket.getaddrinfo(name, port, family=family, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError):
        return []
    addresses: list[str] = []
    for *_rest, address in found:
        ip = str(address[0])
        if ip not in addresses and not is_loopback(ip):
            addresses.append(ip)
    shown = [name, *(f"[{ip}]" if ":" in ip else ip for ip in addresses)]
    return [f"http://{where}:{port}/" for where in shown]


def _log_actions() -> None:
    """Show the dashboard's ``proctor.ui`` INFO lines (its accepted actions) on stderr."""
    logger = logging.getLogger(LOGGER)
    logger.setLevel(logging.INFO)
    if not logger.handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(message)s"))
        logger.addHandler(handler)
        logger.propagate = False


def command_name() -> str:
    """How to name ``proctor`` in a hint: ``proctor`` when that is on PATH, else
    the script this process was started as (e.g. ``.venv/bin/proctor``)."""
    invoked = sys.argv[0] if sys.argv else ""
    if shutil.which("proctor") is None and os.path.basename(invoked) == "proctor":
        return shlex.quote(invoked)
    return "proctor"


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
    envvar=TOKEN_VARIABLE,
    help="A secret every request must carry (Authorization: Bearer TOKEN, or open the"
    " dashboard once with ?token=TOKEN, which sets a cookie). Env PROCTOR_UI_TOKEN.",
)
@click.pass_context
def ui(ctx: click.Context, host: str, port: int, token: str | None) -> None:
    """Serve a web dashboard over the store: runs, a run's timeline, tree and log.

    Pages only read the store. A run's page has cancel and terminate buttons,
    each behind a confirmation, that write exactly what `proctor cancel` and
    `proctor terminate` write. Prints one line, `proctor ui: serving URL`,
    once it listens; Ctrl-C or SIGTERM stops it. Needs the ui extra:
    pip install 'proctor[ui]'.
    """
    options: StoreOptions = ctx.obj
    from_env = ctx.get_parameter_source("token") is click.core.ParameterSource.ENVIRONMENT
    shown = f"${TOKEN_VARIABLE}" if from_env else None
    serve_dashboard(options, host=host, port=port, token=token, token_shown=shown)


def dashboard_hint(shown: str) -> str | None:
    """The demo's closing hint on the store ``shown`` (password hidden), or None
    when the ui extra is not installed."""
    if not ui_available():
        return None
    return f"see it in the dashboard: {command_name()} --db {clean(shlex.quote(shown))} ui"


__all__ = [
    "bind_dashboard",
    "command_name",
    "dashboard_hint",
    "require_ui",
    "serve_dashboard",
    "ui",
    "ui_available",
]
