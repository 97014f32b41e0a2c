"""Store targets: what names a store (a path or a URL), and how it is shown.

A *target* is what a user gives ``Runtime(db)``, ``Client(db)``, ``--db`` or
``PROCTOR_DB`` (DESIGN P1). :func:`parse_target` reads it into a
:class:`StoreTarget` (which implementation, where, and how to show it), and
:func:`redact` shows any target with its secrets hidden. The forms:

=====================================  ==========================================
``proctor.db``, ``/srv/p.db``, a Path  SQLite: the file at that path (as today)
``sqlite:///proctor.db``               SQLite, relative path ``proctor.db``
``sqlite:////srv/p.db``                SQLite, absolute path ``/srv/p.db``
``sqlite:data/p.db``                   SQLite, the path after ``sqlite:`` as written
``postgresql://user:pw@host:5432/db``  PostgreSQL (libpq's URL, passed on as written)
``postgres://...``                     the same (libpq accepts both)
``postgresql+psycopg://...``           the same: SQLAlchemy's name for the driver
                                       Proctor uses; the ``+psycopg`` is dropped
=====================================  ==========================================

The ``sqlite:`` URLs follow SQLAlchemy's convention (``sqlite:///`` then a
relative path, four slashes for an absolute one), the one DBOS, Alembic
and Flask-SQLAlchemy users already write; the path is taken as written (no
percent-decoding, as SQLAlchemy). Refused, each with a clear
:class:`InvalidArgument` that shows the target redacted: an empty target;
an unknown scheme (``mysql://``, ``file://``); a SQLite URL with a host, a
query, or no file (``sqlite://``, SQLAlchemy's in-memory database: nothing
in memory is durable, and a runtime opens its store more than once); another
SQLAlchemy driver (``postgresql+asyncpg://``: its query options are not
libpq's, so it is not the same URL with the driver stripped); a malformed
port; and a libpq ``key=value`` connection string given where a path goes
(it would silently name a new SQLite file, with the password in its name).
A PostgreSQL URL without a database name is accepted: libpq then uses the
user's name, as ``psql`` does.

Invariants:

* a password never reaches a display form: :func:`redact` and
  :attr:`StoreTarget.display` replace the URL's userinfo password and every
  ``password``-like query or ``key=value`` option with ``***``, and hide the
  whole authority of a URL they cannot read cleanly (a password holding an
  unescaped ``/``, say) rather than guess;
* :func:`redact` never raises, whatever it is given; the ``repr`` of a
  :class:`StoreTarget` shows only its display form;
* pure: no file, no network, no driver is touched here.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from typing import Final, Literal
from urllib.parse import unquote

from persistence._errors import InvalidArgument, InvalidArgumentType

TargetKind = Literal["sqlite", "postgres"]

#: What a secret is replaced with in every display form.
HIDDEN: Final = "***"

#: A URL's scheme and ``//``; one letter is a Windows drive (``C://``), not a scheme.
_URL: Final = re.compile(r"([A-Za-z][A-Za-z0-9+.-]+)://")
#: A scheme with no ``//`` after it (``sqlite:path``, or a URL missing its ``//``).
_BARE_SCHEME: Final = re.compile(r"[A-Za-z][A-Za-z0-9+.-]+:")
#: ``sqlite:`` followed by a path, with or without slashes.
_SQLITE_PREFIX: Final = re.compile(r"sqlite:", re.IGNORECASE)
#: A PostgreSQL scheme without its ``//``: a typo, never a file name.
_POSTGRES_PREFIX: Final = re.compile(r"postgres(ql)?(\+[A-Za-z0-9]+)?:", re.IGNORECASE)
#: libpq's URL schemes; SQLAlchemy's ``+psycopg`` names the driver Proctor uses.
_POSTGRES_SCHEMES: Final = frozenset({"postgresql", "postgres"})
_SAME_DRIVER: Final = frozenset({"psycopg"})

#: Query or ``key=value`` options whose value is a secret (libpq's ``password``
#: and ``sslpassword``, and anything else named like one).
_SECRET_KEY: Final = re.compile(r"pass|secret|token", re.IGNORECASE)
#: One ``key=value`` option of a libpq connection string: a quoted value may
#: hold spaces and escaped quotes.
_CONNINFO_ITEM: Final = re.compile(
    r"""\s*(?<![A-Za-z_])([A-Za-z_]+)\s*=\s*('(?:[^'\\]|\\.)*'?|\S*)"""
)
#: libpq's connection keywords (``PQconndefaults``): a string made of these only
#: is a connection string, not a file name.
_LIBPQ_KEYWORDS: Final = frozenset(
    {
        "host", "hostaddr", "port", "dbname", "user", "password", "passfile",
        "channel_binding", "connect_timeout", "client_encoding", "options",
        "application_name", "fallback_application_name", "keepalives",
        "keepalives_idle", "keepalives_interval", "keepalives_count",
        "tcp_user_timeout", "replication", "gssencmode", "sslmode", "sslnegotiation",
        "requiressl", "sslcompression", "sslcert", "sslkey", "sslpassword",
        "sslcertmode", "sslrootcert", "sslcrl", "sslcrldir", "sslsni", "requirepeer",
        "require_auth", "ssl_min_protocol_version", "ssl_max_protocol_version",
        "krbsrvname", "gsslib", "gssdelegation", "service", "target_session_attrs",
        "load_balance_hosts",
    }
)  # fmt: skip
#: One host of a URL's authority, with an optional port: a name, an IPv4
#: address, an IPv6 one in brackets, or a percent-encoded Unix socket folder.
_HOST_PORT: Final = re.compile(r"(\[[0-9A-Fa-f:.%a-zA-Z]*\]|[^\[\]:]*)(?::([^:]*))?")

#: How the forms are named in messages.
_FORMS: Final = (
    "a file path, sqlite:///relative/path, sqlite:////absolute/path,"
    " or postgresql://user@host:port/database"
)


@dataclass(frozen=True, slots=True)
class StoreTarget:
    """A parsed store target (see the module docstring for the forms).

    Attributes:
        kind: ``"sqlite"`` or ``"postgres"``: which implementation opens it.
        location: SQLite: the file path to open. PostgreSQL: the URL to hand
            libpq, secrets included; never print it (its ``repr`` is hidden).
        display: the target as the user wrote it, with every secret replaced
            by ``***``: what messages, logs and reprs show.
        secrets: the secret strings of ``location`` (its password, as written
            and percent-decoded), for :meth:`scrub`; hidden from ``repr``.
    """

    kind: TargetKind
    location: str = field(repr=False)
    display: str
    secrets: tuple[str, ...] = field(default=(), repr=False, compare=False)

    @property
    def is_file(self) -> bool:
        """Whether the store is a file (SQLite): only then do file checks apply."""
        return self.kind == "sqlite"

    def scrub(self, text: str) -> str:
        """``text`` (a driver's message, say) with every secret of this target hidden."""
        for secret in sorted(self.secrets, key=len, reverse=True):
            text = text.replace(secret, HIDDEN)
        return redact_text(text)

    def __str__(self) -> str:
        return self.display


def parse_target(target: str | os.PathLike[str]) -> StoreTarget:
    """Read a store target: a path (str or ``os.PathLike``), or a URL.

    Returns:
        The :class:`StoreTarget`: its kind, what to open, and how to show it.

    Raises:
        InvalidArgumentType: ``target`` is neither a str nor an ``os.PathLike``
            of str.
        InvalidArgument: ``target`` is empty, has an unknown scheme, or is a
            malformed URL (see the module docstring); the message shows it
            redacted.
    """
    if isinstance(target, os.PathLike):
        path = os.fspath(target)
        if not isinstance(path, str):
            raise InvalidArgumentType(
                f"the store path must be a str path, not {type(path).__name__}"
            )
        return _sqlite_path(path, shown=path)
    if not isinstance(target, str):
        raise InvalidArgumentType(
            f"a store target must be a path (str or os.PathLike) or a URL, not"
            f" {type(target).__name__}"
        )
    text = target.strip()
    if not text:
        raise InvalidArgument(f"an empty store target {target!r}: give {_FORMS}")
    if _URL.match(text):
        return _url_target(text)
    if _POSTGRES_PREFIX.match(text):
        raise InvalidArgument(
            f"{redact(text)} is not a PostgreSQL URL: write postgresql://user@host:port/database"
        )
    prefix = _SQLITE_PREFIX.match(text)
    if prefix:  # sqlite:relative/path, sqlite:/absolute/path
        return _sqlite_path(text[prefix.end() :], shown=text)
    if _is_conninfo(text):
        raise InvalidArgument(
            f"{redact(text)} looks like a PostgreSQL connection string (key=value):"
            " give it as a URL, postgresql://user:password@host:port/database"
            " (a path of that name: prefix it with ./)"
        )
    return _sqlite_path(target, shown=target)


def redact(target: object) -> str:
    """``target`` as it may be shown: any password in it replaced by ``***``.

    Hides a URL's userinfo password (``postgresql://user:***@host/db``), the
    value of every ``password``-like query option (``?password=***``) and
    ``key=value`` option (``password=***``). A URL whose authority cannot
    be read cleanly is shown with its whole authority hidden
    (``postgresql://***@host/db``). A path without secrets is shown as is.
    Never raises (the display of garbage is a placeholder).
    """
    try:
        if isinstance(target, os.PathLike):
            target = os.fspath(target)
        if isinstance(target, bytes):
            target = target.decode("utf-8", "backslashreplace")
        if not isinstance(target, str):
            return f"<a {type(target).__name__}, not a store target>"
        return _redact_str(target)
    except Exception:  # a display must never fail the message that needs it
        return "<a store target that cannot be shown>"


def redact_text(text: str) -> str:
    """Free text (a message, a log line) with every URL and option in it redacted."""
    return _URL_IN_TEXT.sub(lambda m: _redact_str(m.group(0)), _redact_options(text))


#: A URL inside free text: from its scheme to the next whitespace or quote.
#: It does not end with punctuation that follows it in a sentence ("...: ").
_URL_IN_TEXT: Final = re.compile(r"""[A-Za-z][A-Za-z0-9+.-]+://[^\s"'<>]*[^\s"'<>:,.;)]""")


def _sqlite_path(path: str, *, shown: str) -> StoreTarget:
    if not path:
        raise InvalidArgument(f"{redact(shown)} names no file: give {_FORMS}")
    return StoreTarget(kind="sqlite", location=path, display=redact(shown))


def _url_target(text: str) -> StoreTarget:
    match = _URL.match(text)
    assert match is not None  # checked by the caller
    scheme, _, driver = match.group(1).lower().partition("+")
    rest = text[match.end() :]
    shown = redact(text)
    if scheme == "sqlite":
        return _sqlite_url(rest, shown=shown, driver=driver)
    if scheme not in _POSTGRES_SCHEMES:
        raise InvalidArgument(f"unknown store URL scheme {scheme!r} in {shown}: give {_FORMS}")
    if driver and driver not in _SAME_DRIVER:
        raise InvalidArgument(
            f"{shown} names the driver {driver!r}: Proctor talks to PostgreSQL through"
            f" psycopg 3, and another driver's URL options are not libpq's; write"
            f" {scheme}://... instead"
        )
    secrets = _check_authority(rest, shown=shown)
    location = f"{scheme}://{rest}"  # +psycopg dropped: libpq knows no drivers
    return StoreTarget(kind="postgres", location=location, display=shown, secrets=secrets)


def _sqlite_url(rest: str, *, shown: str, driver: str) -> StoreTarget:
    """SQLAlchemy's forms: ``sqlite:///rel``, ``sqlite:////abs``."""
    if driver:
        raise InvalidArgument(
            f"{shown} names the driver {driver!r}: Proctor opens SQLite itself; write"
            " sqlite:///... instead"
        )
    host, slash, path = rest.partition("/")
    if host:
        raise InvalidArgument(
            f"{shown} names a host ({host.split('@')[-1]!r}): a SQLite store is a local"
            " file; write sqlite:///relative/path or sqlite:////absolute/path"
        )
    if not slash or not path or path == ":memory:":
        raise InvalidArgument(
            f"{shown} names no file (SQLAlchemy's in-memory database is not durable,"
            " and a runtime opens its store more than once): give a file, as"
            " sqlite:///relative/path or sqlite:////absolute/path"
        )
    if "?" in path or "#" in path:
        raise InvalidArgument(
            f"{shown} has a query or fragment: a SQLite URL takes none (settings are"
            " options of Runtime and of the CLI); a file whose name holds ? or #:"
            " give its plain path"
        )
    return StoreTarget(kind="sqlite", location=path, display=shown)


def _check_authority(rest: str, *, shown: str) -> tuple[str, ...]:
    """Check the URL's hosts and ports; its secrets (password, query options)."""
    end = _authority_end(rest)
    authority, after = rest[:end], rest[end:]
    query = after.partition("?")[2].partition("#")[0]
    if "@" in after.partition("?")[0]:
        raise InvalidArgument(
            f"{shown} has an @ after its host: a user name or password holding"
            " / ? # @ or : must be percent-encoded (%2F %3F %23 %40 %3A)"
        )
    userinfo, at, hosts = authority.rpartition("@")
    secrets: list[str] = []
    if at and ":" in userinfo:
        password = userinfo.partition(":")[2]
        secrets += [password, unquote(password)]
    for item in re.split(r"[&;]", query):
        key, eq, value = item.partition("=")
        if eq and value and _SECRET_KEY.search(unquote(key)):
            secrets += [value, unquote(value), unquote(value.replace("+", " "))]
    if not _clean_hosts(hosts):
        raise InvalidArgument(
            f"{shown} has a malformed host or port (a port is a number from 1 to"
            " 65535; a password holding / ? # @ or : must be percent-encoded)"
        )
    return tuple(s for s in dict.fromkeys(secrets) if s)


def _clean_hosts(hosts: str) -> bool:
    """Whether ``hosts`` is libpq's ``host[:port][,host[:port]]...``."""
    for host_port in hosts.split(","):
        m = _HOST_PORT.fullmatch(host_port)
        if m is None or (m.group(2) is not None and not _valid_port(m.group(2))):
            return False
    return True


def _valid_port(port: str) -> bool:
    return port == "" or (port.isascii() and port.isdigit() and 1 <= int(port) <= 65535)


def _authority_end(rest: str) -> int:
    found = [i for i in (rest.find(c) for c in "/?#") if i >= 0]
    return min(found, default=len(rest))


def _redact_str(text: str) -> str:
    body = text.lstrip()
    match = _URL.match(body)
    if match is None:
        bare = _BARE_SCHEME.match(body)
        if bare is not None:  # postgresql:user:password@host, a // forgotten
            rest = body[bare.end() :]
            at = rest.rfind("@")
            user, colon, _ = rest[: max(at, 0)].partition(":")
            if colon:
                text = f"{text[: len(text) - len(body)]}{bare.group(0)}{user}:{HIDDEN}{rest[at:]}"
        return _redact_options(text)
    head = text[: len(text) - len(body)] + body[: match.end()]
    rest = body[match.end() :]
    at = rest.rfind("@")
    user, colon, _ = rest[: max(at, 0)].partition(":")
    if colon:
        # Whatever lies between the first : and the last @ may be the
        # password (one holding an unescaped / ? or #, too): hide all of it.
        # An @ in a query after a port hides more than needed, never less.
        return f"{head}{user}:{HIDDEN}@{_redact_query(rest[at + 1 :])}"
    end = _authority_end(rest)
    authority, after = rest[:end], rest[end:]
    if not _clean_hosts(authority.rpartition("@")[2]):
        authority = HIDDEN  # user:password with the @host forgotten, say
    return head + authority + _redact_query(after)


def _redact_query(after: str) -> str:
    """The rest of a URL with secret query values hidden."""
    path, q, query = after.partition("?")
    if not q:
        return after
    query, hash_, fragment = query.partition("#")
    items = []
    for item in re.split(r"([&;])", query):
        key, eq, value = item.partition("=")
        hidden = eq and value and _SECRET_KEY.search(unquote(key))
        items.append(f"{key}={HIDDEN}" if hidden else item)
    return f"{path}?{''.join(items)}{hash_}{fragment}"


def _redact_options(text: str) -> str:
    """``key=value`` options (a libpq connection string) with secret values hidden."""

    def hide(m: re.Match[str]) -> str:
        if not m.group(2) or not _SECRET_KEY.search(m.group(1)):
            return m.group(0)
        return m.group(0)[: m.start(2) - m.start(0)] + HIDDEN

    return _CONNINFO_ITEM.sub(hide, text) if "=" in text else text


def _is_conninfo(text: str) -> bool:
    """Whether ``text`` is a libpq ``key=value`` string made of its keywords only."""
    position, keys = 0, 0
    for m in _CONNINFO_ITEM.finditer(text):
        if m.start() != position or m.group(1).lower() not in _LIBPQ_KEYWORDS:
            return False
        position, keys = m.end(), keys + 1
    return keys > 0 and not text[position:].strip()
