"""P1: a store is named by a target, a path or a URL, and shown without its password.

The forms follow the peers: SQLAlchemy's ``sqlite:///relative`` and
``sqlite:////absolute`` (as DBOS, Alembic and Flask-SQLAlchemy users write
them), libpq's ``postgresql://`` and ``postgres://`` URLs (psycopg passes
them to libpq as written), and SQLAlchemy's URL display, which hides the
password as ``***``.
"""

from __future__ import annotations

import os
import string
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from persistence import (
    InvalidArgument,
    InvalidArgumentType,
    StoreTarget,
    parse_target,
    redact,
)

SECRET = "s3cret"  # noqa: S105 - a fake password the output must never show


@pytest.mark.parametrize(
    ("given", "location"),
    [
        ("proctor.db", "proctor.db"),
        ("/srv/proctor/p.db", "/srv/proctor/p.db"),
        (Path("/srv/p.db"), "/srv/p.db"),
        ("data/p.db", "data/p.db"),
        # SQLAlchemy's convention: three slashes then a relative path, four for an absolute one.
        ("sqlite:///p.db", "p.db"),
        ("sqlite:///data/p.db", "data/p.db"),
        ("sqlite:////srv/p.db", "/srv/p.db"),
        ("SQLite:////srv/p.db", "/srv/p.db"),
        # sqlite: then a path, as written (no slashes to count).
        ("sqlite:data/p.db", "data/p.db"),
        ("sqlite:/srv/p.db", "/srv/p.db"),
        # Taken as written, as SQLAlchemy does: no percent-decoding.
        ("sqlite:///a%20b.db", "a%20b.db"),
        # A name that only looks like options is a path once it has a folder.
        ("./host=x dbname=y", "./host=x dbname=y"),
    ],
)
def test_P1_a_path_or_a_sqlite_url_names_a_sqlite_store(
    given: str | os.PathLike[str], location: str
) -> None:
    target = parse_target(given)
    assert target.kind == "sqlite"
    assert target.is_file
    assert target.location == location
    assert target.display == os.fspath(given)


@pytest.mark.parametrize(
    ("given", "location", "display"),
    [
        ("postgresql://u@db.example/app", None, None),
        ("postgres://u@db.example:5432/app", None, None),
        ("postgresql://db.example/app?sslmode=require", None, None),
        # No database name: libpq uses the user's name, as psql does.
        ("postgresql://u@db.example", None, None),
        ("postgresql://", None, None),
        # libpq's multi-host form, IPv6 and a Unix socket folder.
        ("postgresql://h1:5432,h2:5433/app", None, None),
        ("postgresql://[::1]:5432/app", None, None),
        ("postgresql:///app?host=/run/postgresql", None, None),
        ("postgresql://%2Frun%2Fpostgresql/app", None, None),
        (
            f"postgresql://u:{SECRET}@db.example:5432/app",
            None,
            "postgresql://u:***@db.example:5432/app",
        ),
        (
            f"postgresql:///app?host=/tmp&password={SECRET}",
            None,
            "postgresql:///app?host=/tmp&password=***",
        ),
        # SQLAlchemy's name for the driver Proctor uses: libpq gets the URL without it.
        (
            f"postgresql+psycopg://u:{SECRET}@h/app",
            f"postgresql://u:{SECRET}@h/app",
            "postgresql+psycopg://u:***@h/app",
        ),
    ],
)
def test_P1_a_postgresql_url_names_a_postgres_store(
    given: str, location: str | None, display: str | None
) -> None:
    target = parse_target(given)
    assert target.kind == "postgres"
    assert not target.is_file
    assert target.location == (location or given)
    assert target.display == (display or given)
    assert SECRET not in repr(target)
    assert SECRET not in str(target)


@pytest.mark.parametrize(
    ("given", "says"),
    [
        ("", "an empty store target"),
        ("   ", "an empty store target"),
        (f"mysql://u:{SECRET}@h/db", "unknown store URL scheme 'mysql' in mysql://u:***@h/db"),
        ("file:///srv/p.db", "unknown store URL scheme 'file'"),
        ("sqlite://", "sqlite:// names no file"),
        ("sqlite:///", "names no file"),
        ("sqlite:///:memory:", "in-memory database is not durable"),
        ("sqlite:", "sqlite: names no file"),
        ("sqlite://host/p.db", "names a host ('host'): a SQLite store is a local file"),
        (f"sqlite://u:{SECRET}@host/p.db", "names a host ('host')"),
        ("sqlite:///p.db?mode=ro", "a SQLite URL takes none"),
        ("sqlite+pysqlite:///p.db", "names the driver 'pysqlite'"),
        (f"postgresql+asyncpg://u:{SECRET}@h/db", "names the driver 'asyncpg'"),
        (f"postgresql://u:{SECRET}@h:99999/db", "malformed host or port"),
        (f"postgresql://u:{SECRET}@h:5x32/db", "malformed host or port"),
        (f"postgresql://u:{SECRET}@h:0/db", "malformed host or port"),
        # A password with an unescaped / cuts the authority short: refused, never guessed.
        (f"postgresql://u:{SECRET}/x@h/db", "has an @ after its host"),
        (f"postgresql://u:{SECRET}", "malformed host or port"),
        (f"postgresql:u:{SECRET}@h/db", "is not a PostgreSQL URL"),
        (f"host=h dbname=app password={SECRET}", "looks like a PostgreSQL connection string"),
    ],
)
def test_P1_a_bad_target_is_a_clear_error_that_shows_no_password(given: str, says: str) -> None:
    with pytest.raises(InvalidArgument) as raised:
        parse_target(given)
    assert says in str(raised.value)
    assert SECRET not in str(raised.value)


@pytest.mark.parametrize("given", [None, 3, b"proctor.db", ["proctor.db"]])
def test_P1_a_target_of_the_wrong_type_is_refused_by_type(given: object) -> None:
    with pytest.raises(InvalidArgumentType, match="a path"):
        parse_target(given)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("given", "shown"),
    [
        ("proctor.db", "proctor.db"),
        (Path("/srv/p.db"), "/srv/p.db"),
        ("postgresql://u@h/db", "postgresql://u@h/db"),
        (f"postgresql://u:{SECRET}@h/db", "postgresql://u:***@h/db"),
        (
            f"postgres://u:{SECRET}@h:5432/db?sslmode=require",
            "postgres://u:***@h:5432/db?sslmode=require",
        ),
        (f"postgresql://u:{SECRET}@h1,h2:5433/db", "postgresql://u:***@h1,h2:5433/db"),
        ("postgresql://u:@h/db", "postgresql://u:***@h/db"),
        # An unescaped @ in the password: everything up to the last @ is hidden.
        (f"postgresql://u:{SECRET}@x@h/db", "postgresql://u:***@h/db"),
        (f"postgresql://u:{SECRET}/x?y#z@h/db", "postgresql://u:***@h/db"),
        (f"postgresql://u:{SECRET}", "postgresql://***"),
        (
            f"postgresql:///db?password={SECRET}&host=/tmp",
            "postgresql:///db?password=***&host=/tmp",
        ),
        (f"postgresql:///db?sslpassword={SECRET}", "postgresql:///db?sslpassword=***"),
        (f"postgresql:///db?PASSWORD={SECRET}#f", "postgresql:///db?PASSWORD=***#f"),
        (f"mysql://root:{SECRET}@h/db", "mysql://root:***@h/db"),
        (f"host=h password={SECRET} dbname=app", "host=h password=*** dbname=app"),
        (f"host=h password = '{SECRET} x\\' y' dbname=app", "host=h password = *** dbname=app"),
        (b"postgresql://u:s3cret@h/db", "postgresql://u:***@h/db"),
        (None, "<a NoneType, not a store target>"),
        (42, "<a int, not a store target>"),
    ],
)
def test_P1_redact_hides_every_password(given: object, shown: str) -> None:
    assert redact(given) == shown


def test_P1_redact_never_raises() -> None:
    class Hostile(os.PathLike[str]):
        def __fspath__(self) -> str:
            raise RuntimeError("no path today")

    assert redact(Hostile()) == "<a store target that cannot be shown>"
    for garbage in ("://", "postgresql://[", "postgresql://@@@", "\x00", "%", "a" * 100_000):
        assert isinstance(redact(garbage), str)


#: Passwords as users type them: unescaped URL delimiters included.
PASSWORDS = st.text(
    alphabet=string.ascii_letters + string.digits + "/?#@:%&=+;!$'()*,[] ",
    min_size=1,
    max_size=20,
).map(lambda tail: "Zq9" + tail)  # a marker no other part of the URL contains


@given(password=PASSWORDS, user=st.sampled_from(["u", "app_user", ""]))
@settings(max_examples=300, deadline=None)
def test_P1_no_password_survives_redaction_or_a_parse_error(password: str, user: str) -> None:
    """Whatever the password holds, neither the display nor an error shows it."""
    url = f"postgresql://{user}:{password}@db.example:5432/app?sslmode=require"
    assert "Zq9" not in redact(url)
    try:
        target = parse_target(url)
    except InvalidArgument as exc:
        said = str(exc)
    else:
        said = f"{target.display} {target!r}"
    assert "Zq9" not in said
    assert "Zq9" not in redact(f"host=db.example password={password} dbname=app")


def test_P1_scrub_hides_a_password_a_driver_echoes() -> None:
    """A driver's message that quotes the password, raw or percent-encoded, loses it."""
    target = parse_target(f"postgresql://u:{SECRET}%21@h/db?password=other")
    said = f"auth failed for u with {SECRET}! (or {SECRET}%21, or other) at postgresql://u:x@h"
    scrubbed = target.scrub(said)
    assert SECRET not in scrubbed
    assert "other" not in scrubbed
    assert "postgresql://u:***@h" in scrubbed


def test_P1_a_store_target_is_frozen_and_hashable() -> None:
    target = parse_target("sqlite:///p.db")
    assert isinstance(target, StoreTarget)
    assert target == parse_target("sqlite:///p.db")
    assert hash(target) == hash(parse_target("sqlite:///p.db"))
    with pytest.raises(AttributeError):
        target.kind = "postgres"  # type: ignore[misc]


def test_P1_a_url_in_a_sentence_keeps_the_punctuation_after_it() -> None:
    """The colon after a URL whose last option is a password stays the sentence's."""
    target = parse_target("postgresql://127.0.0.1/shop?user=app&password=WRONG")
    said = target.scrub("postgresql://127.0.0.1/shop?user=app&password=WRONG: connection refused")
    assert said == "postgresql://127.0.0.1/shop?user=app&password=***: connection refused"
