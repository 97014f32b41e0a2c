"""The Store interface: SQLiteStore implements exactly it, and nothing outside
the SQLite implementation relies on SQLite (DESIGN §4, P1).

The static half of the first check is in ``persistence/_store.py``
(``_IMPLEMENTS: type[Store] = SQLiteStore``, checked by mypy); these tests
are the run-time half, so a method added to one side only fails here too.
"""

from __future__ import annotations

import ast
import inspect
from pathlib import Path

import pytest

import persistence
from persistence import SQLiteStore, Store
from persistence._fencing import fence
from persistence._records import NewEvent
from persistence._states import EventType, RunState

ROOT = Path(__file__).resolve().parent.parent

#: What SQLiteStore has beyond the interface: opening a file, and SQLite's
#: own names for what the interface calls changes(), housekeep() and
#: check_same_store(). Anything else public must be in the interface.
SQLITE_ONLY = frozenset({"open", "data_version", "checkpoint", "check_file"})

#: Calls and statements that only make sense on SQLite.
SQLITE_ATTRIBUTES = frozenset({"data_version", "checkpoint", "check_file", "_conn", "_db"})
SQLITE_MODULES = frozenset({"sqlite3", "sqlite_utils"})


def interface_members() -> set[str]:
    return {name for name in vars(Store) if not name.startswith("_")}


def test_P1_sqlite_store_has_every_member_of_the_interface_and_no_other_public_one(
    tmp_path: Path,
) -> None:
    with SQLiteStore.open(tmp_path / "s.db") as store:
        public = {name for name in dir(store) if not name.startswith("_")}
    assert interface_members() - public == set()
    assert public - interface_members() == SQLITE_ONLY


@pytest.mark.parametrize("name", sorted(interface_members()))
def test_P1_each_interface_method_has_the_same_signature_in_sqlite_store(name: str) -> None:
    declared = inspect.getattr_static(Store, name)
    implemented = inspect.getattr_static(SQLiteStore, name, None)
    if isinstance(declared, property):
        # A read-only attribute: a property, or an attribute __init__ sets.
        assert implemented is None or isinstance(implemented, property)
        return
    assert callable(implemented), f"SQLiteStore.{name} is not a method"
    # Names, kinds and defaults; the types are mypy's (persistence/_store.py).
    assert _parameters(implemented) == _parameters(declared)


def _parameters(function: object) -> list[tuple[str, object, object]]:
    assert callable(function)
    return [(p.name, p.kind, p.default) for p in inspect.signature(function).parameters.values()]


def test_P1_the_package_exports_the_interface_and_its_sqlite_implementation() -> None:
    assert persistence.Store is Store
    assert persistence.SQLiteStore is SQLiteStore
    assert {"Store", "SQLiteStore"} <= set(persistence.__all__)


def _sqlite_uses(path: Path, root: Path = ROOT) -> list[str]:
    """Each SQLite-specific use in the module at ``path``: ``file:line what``."""
    tree = ast.parse(path.read_text(), filename=str(path))
    docstrings = {
        id(node.value)
        for node in ast.walk(tree)
        if isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant)
    }
    found: list[str] = []
    for node in ast.walk(tree):
        where = f"{path.relative_to(root)}:{getattr(node, 'lineno', '?')}"
        if isinstance(node, ast.Attribute) and node.attr in SQLITE_ATTRIBUTES:
            found.append(f"{where} .{node.attr}")
        elif isinstance(node, ast.Name | ast.alias) and "SQLiteStore" in (
            node.id if isinstance(node, ast.Name) else node.name
        ):
            found.append(f"{where} SQLiteStore")  # open through open_store()
        elif isinstance(node, ast.Import):
            found += [f"{where} import {a.name}" for a in node.names if a.name in SQLITE_MODULES]
        elif isinstance(node, ast.ImportFrom) and node.module in SQLITE_MODULES:
            found.append(f"{where} from {node.module}")
        elif (
            isinstance(node, ast.Constant)
            and isinstance(node.value, str)
            and id(node) not in docstrings
            and "PRAGMA" in node.value.upper()
        ):
            found.append(f"{where} {node.value!r}")
    return found


def test_P1_actors_and_cli_make_no_sqlite_specific_call() -> None:
    """The seam of the PostgreSQL store: only persistence's SQLite modules
    talk SQLite; actors and the CLI use the Store interface's neutral names."""
    uses = [
        use
        for package in ("actors", "cli")
        for path in sorted((ROOT / package).rglob("*.py"))
        for use in _sqlite_uses(path)
    ]
    assert uses == []


def test_P1_the_sqlite_check_finds_each_kind_of_sqlite_use(tmp_path: Path) -> None:
    """The check above can fail: it sees each kind of use, and not prose."""
    (tmp_path / "m.py").write_text(
        '"""PRAGMA data_version in a docstring is prose."""\n'
        "import sqlite3\n"
        "from sqlite_utils import Database\n"
        "def f(store):\n"
        "    store.data_version()\n"
        "    store.checkpoint()\n"
        "    store.check_file()\n"
        "    store._conn.execute('pragma busy_timeout')\n"
        "from persistence import SQLiteStore\n"
    )
    uses = sorted(use.split(" ", 1)[1] for use in _sqlite_uses(tmp_path / "m.py", tmp_path))
    assert uses == sorted(
        [
            "import sqlite3",
            "from sqlite_utils",
            ".data_version",
            ".checkpoint",
            ".check_file",
            "._conn",
            "'pragma busy_timeout'",
            "SQLiteStore",
        ]
    )


# -- the fencing rules are pure: one table, whatever store applies them ---------

_E = EventType


def _ev(type_: EventType, **data: object) -> NewEvent:
    return NewEvent(run_id="r", type=type_, data=data)


FENCING = [
    # (event, status, owner, last_seq, writer) -> refusal reason part, or None
    (_ev(_E.RUN_STARTED), RunState.PENDING, "a", 1, "a", None),
    (_ev(_E.RUN_STARTED), RunState.PENDING, "a", 1, None, None),
    (_ev(_E.RUN_STARTED), RunState.PENDING, "a", 1, "b", "owned by a, not b"),
    (_ev(_E.CANCEL_REQUESTED), RunState.RUNNING, "a", 3, "b", None),
    (_ev(_E.CANCEL_REQUESTED), RunState.COMPLETED, "a", 3, None, "already finished"),
    (_ev(_E.RUN_STARTED), RunState.COMPLETED, "a", 3, "b", "owned by a, not b"),
    (_ev(_E.RUN_STARTED), RunState.COMPLETED, "a", 3, "a", "already finished"),
    (_ev(_E.STEP_ABANDONED), RunState.TERMINATED, "a", 3, "a", None),
    (_ev(_E.RUN_CLAIMED, owner="b"), RunState.PENDING, None, 1, "b", None),
    (_ev(_E.RUN_CLAIMED, owner="b"), RunState.PENDING, "a", 1, "b", "is owned by a"),
    (
        _ev(_E.RUN_RESUMED, owner="b", previous_owner="a", seen_seq=4),
        RunState.RUNNING,
        "a",
        4,
        "b",
        None,
    ),
    (
        _ev(_E.RUN_RESUMED, owner="b", previous_owner="a", seen_seq=3),
        RunState.RUNNING,
        "a",
        4,
        "b",
        "changed hands or grew",
    ),
    (
        _ev(_E.RUN_RESUMED, owner="b", previous_owner="c", seen_seq=4),
        RunState.RUNNING,
        "a",
        4,
        "b",
        "changed hands or grew",
    ),
]


@pytest.mark.parametrize("case", FENCING, ids=lambda c: f"{c[0].type.value}-{c[1].value}-{c[5]}")
def test_D2_fencing_rules_are_pure_functions_of_the_row_and_the_event(
    case: tuple[NewEvent, RunState, str | None, int, str | None, str | None],
) -> None:
    ev, status, owner, last_seq, writer, why = case
    refusal = fence(ev, status, owner, last_seq, writer)
    if why is None:
        assert refusal is None
    else:
        assert refusal is not None
        assert why in refusal.reason
        assert refusal.status is status
        assert refusal.fenced == ("not " in why)
