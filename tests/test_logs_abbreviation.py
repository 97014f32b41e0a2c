"""``runs logs`` abbreviates long values in its text lines; ``--json`` keeps them whole.

A run that returned 1 MB printed 1 MB on one line. Each value of a line (a
result, an argument, an error's message) is cut to ``VALUE_CHARS``
characters with its length and where to read it whole (``runs logs
--json``, ``runs status --json``), as Temporal's CLI abbreviates payloads in
``workflow show`` and prints them whole with ``--output json``.
"""

from __future__ import annotations

import json

import pytest

from actors import WorkflowFailed, workflow
from actors.testing import ProctorTestKit
from tests.conftest import run_cli

pytestmark = pytest.mark.timeout(60)

BIG = 1_000_000
#: What the whole text log of these short runs stays under.
LINES_BOUND = 4000


@workflow()
async def returns_a_lot(size: int) -> str:
    return "x" * size


@workflow()
async def fails_at_length(size: int) -> str:
    raise ValueError("y" * size)


def test_runs_logs_cuts_a_long_result_and_json_keeps_it(proctor: ProctorTestKit) -> None:
    run = proctor.runtime.start(returns_a_lot, BIG)
    assert len(run.result(timeout=10)) == BIG
    logs = run_cli(proctor.db, "runs", "logs", run.run_id)
    assert logs.exit_code == 0, logs.output[:500]
    assert len(logs.output) < LINES_BOUND, len(logs.output)
    assert f"({BIG + 2} chars; in full: runs logs --json or runs status --json)" in " ".join(
        logs.output.split()
    )
    whole = run_cli(proctor.db, "runs", "logs", run.run_id, "--json")
    results = [json.loads(line)["data"].get("result") for line in whole.output.splitlines() if line]
    assert "x" * BIG in results


def test_runs_logs_cuts_a_long_error_message(proctor: ProctorTestKit) -> None:
    run = proctor.runtime.start(fails_at_length, 100_000)
    with pytest.raises(WorkflowFailed):
        run.result(timeout=10)
    logs = run_cli(proctor.db, "runs", "logs", run.run_id)
    assert logs.exit_code == 0
    assert len(logs.output) < LINES_BOUND, len(logs.output)
    assert "chars; in full: runs logs --json" in " ".join(logs.output.split())
