"""``runs status`` of a run with many pending signals stays a few lines (B5).

The ``signals`` row names the first few pending signals, says how many more
there are, and counts each name (the most frequent first, a bounded number
of names); ``--json`` keeps the full list, with ``pending_count`` and
``pending_by_name`` beside it. (3,000 pending signals once printed one
231 KB line.) As Temporal's UI summarises a long pending list by count.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from actors import Runtime, wait_for_signal, workflow
from tests.conftest import run_cli

pytestmark = pytest.mark.timeout(60)


@workflow()
async def waits_for_never() -> object:
    return await wait_for_signal("never")


def test_B5_runs_status_bounds_the_pending_signals_it_prints(rt: Runtime, db: Path) -> None:
    run = rt.start(waits_for_never)
    for i in range(300):
        rt.signal(run.run_id, f"name-{i % 15:02d}", i)
    status = run_cli(db, "runs", "status", run.run_id)
    assert status.exit_code == 0, status.output
    text = " ".join(status.output.split())
    assert "300 pending (oldest first): name-00, name-01," in text
    assert "... and 290 more" in text
    assert "by name: name-00 x20" in text
    assert "... and 5 more names" in text
    assert "name-14" not in text  # neither among the first ten nor the ten names counted
    assert len(status.output) < 4000, len(status.output)
    as_json = json.loads(run_cli(db, "runs", "status", run.run_id, "--json").output)["signals"]
    assert len(as_json["pending"]) == as_json["pending_count"] == 300
    assert as_json["pending_by_name"]["name-14"] == 20
    rt.cancel(run.run_id, wait=True, timeout=10)
