"""Serving the dashboard: bind, say where, serve until Ctrl-C or SIGTERM, stop cleanly.

Invariants: the socket is bound before uvicorn starts (a port in use is one
clear error, and ``--port 0`` yields the port the OS chose); exactly one
line, ``proctor ui: serving http://HOST:PORT/``, is printed (and flushed)
once the server accepts connections; SIGINT and SIGTERM stop it gracefully
and the call returns normally (the process exits 0, not by the signal, as
uvicorn's default re-raising would make it); uvicorn logs warnings only and
no access log.
"""

from __future__ import annotations

import signal
import socket
from collections.abc import Callable
from types import FrameType

import uvicorn
from starlette.applications import Starlette


class BindError(Exception):
    """The address cannot be bound (in use, not an address of this host).

    ``errno``: the OS's error number (``errno.EADDRINUSE`` for a port in use),
    None when the host does not resolve.
    """

    def __init__(self, message: str, errno: int | None = None) -> None:
        super().__init__(message)
        self.errno = errno


def bind(host: str, port: int) -> socket.socket:
    """A listening TCP socket on ``host:port`` (``port`` 0: any free port).

    Raises:
        BindError: the host does not resolve, or the address cannot be bound.
    """
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]  # an IPv6 address as URLs write it: [::1]
    try:
        family, kind, proto, _name, address = socket.getaddrinfo(
            host, port, type=socket.SOCK_STREAM
        )[0]
    except (OSError, UnicodeError) as exc:
        raise BindError(f"cannot resolve host {host!r}: {exc}") from None
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.listen(128)
    except OSError as exc:
        sock.close()
        raise BindError(
            f"cannot listen on {host}:{port}: {exc.strerror or exc}", exc.errno
        ) from None
    sock.set_inheritable(True)
    return sock


def url_of(sock: socket.socket) -> str:
    """The dashboard's URL on a bound socket: ``http://HOST:PORT/`` (IPv6 in brackets)."""
    host, port = sock.getsockname()[:2]
    shown = f"[{host}]" if ":" in host else host
    return f"http://{shown}:{port}/"


class _Server(uvicorn.Server):
    """uvicorn's server that says where it listens and ends quietly on a signal."""

    def __init__(self, config: uvicorn.Config, on_listening: Callable[[], None]) -> None:
        super().__init__(config)
        self._on_listening = on_listening

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets)
        if not self.should_exit:
            self._on_listening()

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        # As uvicorn's, without recording the signal to raise again after the
        # shutdown: the command then returns and exits 0.
        if self.should_exit and sig == signal.SIGINT:
            self.force_exit = True
        else:
            self.should_exit = True


def serve(app: Starlette, sock: socket.socket, on_listening: Callable[[str], None]) -> None:
    """Serve ``app`` on ``sock`` until SIGINT or SIGTERM; ``on_listening(url)`` once ready."""
    config = uvicorn.Config(
        app,
        log_level="warning",
        access_log=False,
        lifespan="on",
        server_header=False,
        timeout_graceful_shutdown=5,
    )
    server = _Server(config, lambda: on_listening(url_of(sock)))
    try:
        server.run(sockets=[sock])
    finally:
        sock.close()
