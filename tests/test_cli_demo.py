"""``proctor demo`` tells the whole cancel story, and the packaging is ours."""

from __future__ import annotations

import importlib.metadata
import threading
from pathlib import Path

import pytest
from click.testing import CliRunner

from cli._main import cli
from persistence import RunState, open_store
from tests.conftest import assert_nothing_left

pytestmark = pytest.mark.timeout(60)


def test_demo_cancels_mid_payment_and_cleans_up_in_a_shield(tmp_path: Path) -> None:
    db = tmp_path / "demo.db"
    before = set(threading.enumerate())
    result = CliRunner().invoke(cli, ["--db", str(db), "demo", "--cancel-after", "0.05"])
    assert result.exit_code == 0, result.output
    assert "CANCELLED" in result.output
    assert_nothing_left(before)
    with open_store(db, readonly=True) as store:
        (run,) = [r for r in store.list_runs() if r.workflow == "order"]
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


def test_B3_demo_scene_two_a_scope_deadline_cancels_one_step_and_the_run_completes(
    tmp_path: Path,
) -> None:
    db = tmp_path / "demo.db"
    before = set(threading.enumerate())
    result = CliRunner().invoke(
        cli, ["--db", str(db), "demo", "--cancel-after", "0.05", "--quote-deadline", "0.1"]
    )
    assert result.exit_code == 0, result.output
    assert "scene 2" in result.output
    assert "COMPLETED" in result.output
    assert "timed out: True" in result.output
    assert_nothing_left(before)
    with open_store(db, readonly=True) as store:
        (run,) = [r for r in store.list_runs() if r.workflow == "order_with_quote"]
        assert run.status is RunState.COMPLETED
        assert run.result["quote"]["carrier"] == "standard"
        events = [(e.type.value, e.step) for e in store.events(run.run_id)]
    order = [
        ("scope_entered", None),
        ("step_started", "fetch_shipping_quote"),
        ("timer_fired", "scope"),
        ("scope_cancelled", None),
        ("step_cancelled", "fetch_shipping_quote"),
        ("scope_exited", None),
        ("step_completed", "create_shipment"),
        ("run_completed", None),
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
