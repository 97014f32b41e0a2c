"""Which store a test runs on: the ``db`` parametrization's ids, ``--store``, ``sqlite_only``.

One concept: the suite is one suite run on both stores (DESIGN P1, "same
semantics, same tests"). A test that takes the ``db`` fixture runs twice,
``[sqlite]`` (a file path) and ``[postgres]`` (a URL of an empty database on
the session's throw-away cluster, ``tests/pg_cluster.py``).

Invariants:

- An item's store is its ``db`` parameter; an item without one runs on
  PostgreSQL if it uses the cluster's fixtures directly, else on SQLite.
- ``--store sqlite|postgres`` deselects the other half (``all``, the
  default, keeps both): a developer runs one half, CI runs both.
- ``@pytest.mark.sqlite_only("reason")`` skips a test's ``[postgres]``
  variant, showing the reason; the reason is required, so every exception to
  "same tests" says why (the test inspects the file, a PRAGMA, the WAL, file
  modes: things a PostgreSQL store does not have).
"""

from __future__ import annotations

from typing import Final

import pytest

#: The ``db`` fixture's parameters, in order (also the test ids).
STORES: Final = ("sqlite", "postgres")
#: Fixtures that mean "this test runs against PostgreSQL" by themselves.
POSTGRES_FIXTURES: Final = frozenset({"pg_cluster", "pg_database", "pg_url"})


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--store",
        choices=(*STORES, "all"),
        default="all",
        help="run the tests of one store only (default: all; the db fixture is "
        "parametrized by store)",
    )


def item_store(item: pytest.Item) -> str:
    """``sqlite`` or ``postgres``: what ``item`` runs against."""
    callspec = getattr(item, "callspec", None)
    if callspec is not None and "db" in callspec.params:
        store: str = callspec.params["db"]
        return store
    if POSTGRES_FIXTURES & set(getattr(item, "fixturenames", ())):
        return "postgres"
    return "sqlite"


def sqlite_only_reason(item: pytest.Item) -> str | None:
    """The reason of ``item``'s ``sqlite_only`` marker, or None without one.

    Raises:
        pytest.UsageError: the marker has no reason.
    """
    marker = item.get_closest_marker("sqlite_only")
    if marker is None:
        return None
    reason = marker.args[0] if marker.args else marker.kwargs.get("reason")
    if not isinstance(reason, str) or not reason.strip():
        raise pytest.UsageError(
            f"{item.nodeid}: @pytest.mark.sqlite_only needs a reason, e.g. "
            '@pytest.mark.sqlite_only("reads PRAGMA journal_mode")'
        )
    return reason


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    chosen = config.getoption("--store")
    kept: list[pytest.Item] = []
    dropped: list[pytest.Item] = []
    for item in items:
        store = item_store(item)
        if chosen not in ("all", store):
            dropped.append(item)
            continue
        reason = sqlite_only_reason(item)
        if reason is not None and store == "postgres":
            item.add_marker(pytest.mark.skip(reason=f"SQLite only: {reason}"))
        kept.append(item)
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = kept
