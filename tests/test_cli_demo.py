"""``proctor demo`` tells the whole cancel story, and the packaging is ours."""

from __future__ import annotations

import importlib.metadata
import threading
from pathlib import Path

import pytest
from click.testing import CliRunner

from cli._main import cli
from persistence import RunState, SQLiteStore
from tests.conftest import assert_nothing_left

pytestmark = pytest.mark.timeout(60)


def test_demo_cancels_mid_payment_and_cleans_up_in_a_shield(tmp_path: Path) -> None:
    db = tmp_path / "demo.db"
    before = set(threading.enumerate())
    result = CliRunner().invoke(cli, ["--db", str(db), "demo", "--cancel-after", "0.05"])
    assert result.exit_code == 0, result.output
    assert "CANCELLED" in result.output
    assert_nothing_left(before)
    with SQLiteStore.open(db, readonly=True) as store:
        (run,) = store.list_runs()
        assert run.status is RunState.CANCELLED
        events = [(e.type.value, e.step) for e in store.events(run.run_id)]
    order = [
        ("step_started", "charge_payment"),
        ("cancel_requested", None),
        ("cancel_delivered", "charge_payment"),
        ("shield_entered", None),
        ("step_completed", "void_payment"),
        ("step_completed", "release_inventory"),
        ("shield_exited", None),
        ("run_cancelled", None),
    ]
    positions = [events.index(item) for item in order]
    assert positions == sorted(positions), events


def test_demo_reports_a_bad_database_without_a_traceback(tmp_path: Path) -> None:
    db = tmp_path / "notes.db"
    db.write_text("not a database")
    result = CliRunner().invoke(cli, ["--db", str(db), "demo"])
    assert result.exit_code == 1
    assert "is not a Proctor store" in result.output
    assert "Traceback" not in result.output


def test_every_command_has_help_text() -> None:
    for name, command in cli.commands.items():  # type: ignore[attr-defined]
        assert command.help, f"proctor {name} has no help text"


def test_the_three_top_level_packages_belong_to_proctor_alone() -> None:
    owners = importlib.metadata.packages_distributions()
    for package in ("actors", "persistence", "cli"):
        if package not in owners:
            pytest.skip("not installed as a distribution (metadata unavailable)")
        assert owners[package] == ["proctor"], f"{package} is also shipped by {owners[package]}"
