"""The CLI refuses JSON that names a key twice, wherever it reads a user's JSON.

``{"a": 1, "a": 2}`` is not an error to Python's ``json`` (the last one
wins, silently); RFC 8259 says names SHOULD be unique, and what a sender
meant is a guess. ``proctor start`` (arguments, ``--kwargs``) and
``proctor signal`` (payload) share one parser: a usage error (exit 2) that
names the key, and nothing written.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from actors import Client, Runtime
from tests import signal_workflows as sw
from tests.conftest import run_cli

pytestmark = pytest.mark.timeout(60)

DUPLICATES = ['{"a": 1, "a": 2}', '[{"x": {"k": 1, "k": 1}}]']


@pytest.mark.parametrize("payload", DUPLICATES)
def test_B5_proctor_signal_refuses_a_payload_with_a_key_twice(
    rt: Runtime, db: Path, tmp_path: Path, payload: str
) -> None:
    run = rt.start(sw.approvals, str(tmp_path))
    before = len(rt.events(run.run_id))
    result = run_cli(db, "signal", run.run_id, "approved", payload)
    assert result.exit_code == 2, result.output
    assert "appears twice" in result.output
    assert [e for e in rt.events(run.run_id)[before:] if e.type.value == "signal_sent"] == []
    rt.cancel(run.run_id, wait=True, timeout=10)


@pytest.mark.parametrize("payload", DUPLICATES)
def test_proctor_start_refuses_arguments_with_a_key_twice(tmp_path: Path, payload: str) -> None:
    db = tmp_path / "cli.db"
    for args in (
        ("tests.signal_workflows:approvals", payload),
        ("tests.signal_workflows:approvals", "--kwargs", '{"folder": "x", "folder": "y"}'),
    ):
        result = run_cli(db, "start", *args)
        assert result.exit_code == 2, result.output
        assert "appears twice" in result.output
    if db.exists():
        with Client(db) as client:
            assert client.list_runs() == []
