"""C5 with B2: a handle's own cancel that the body lets escape ends the run CANCELLED.

``h.cancel(); return await h`` raises ``CancellationError`` at the await;
the body does not catch it, so the run ends CANCELLED (the outcome follows
the code, C5) though nobody asked to cancel the run (no
``cancel_requested``). Temporal would fail the workflow with an
ActivityError; in Trio the scope whose own cancel raised catches it. Proctor
keeps C5, and ``runs status`` says why the run is CANCELLED instead of a
blank reason.
"""

from __future__ import annotations

import json

import pytest

from actors import RunCancelled, RunState, start_step, step, workflow
from actors.testing import ProctorTestKit
from tests.conftest import run_cli

pytestmark = pytest.mark.timeout(60)


@step()
def slow_value(x: int) -> int:
    return x


@workflow()
async def lets_its_cancel_escape() -> int:
    handle = start_step(slow_value(1))
    handle.cancel("changed my mind")
    return await handle


@workflow()
async def plain_result() -> int:
    return await slow_value(2)


def test_B2_C5_runs_status_says_why_a_run_cancelled_by_its_code_is_cancelled(
    proctor: ProctorTestKit,
) -> None:
    run = proctor.runtime.start(lets_its_cancel_escape)
    with pytest.raises(RunCancelled):
        run.result(timeout=10)
    assert run.status() is RunState.CANCELLED
    types = [e.type.value for e in proctor.runtime.events(run.run_id)]
    assert "cancel_requested" not in types  # C5: nobody asked to cancel the run
    status = run_cli(proctor.db, "runs", "status", run.run_id)
    assert status.exit_code == 0, status.output
    text = " ".join(status.output.split())
    expected = (
        "cancelled by its code: CancellationError from step handle"
        " tests.test_cancelled_by_code.slow_value #0 escaped its body"
    )
    assert expected in text, text
    as_json = json.loads(run_cli(proctor.db, "runs", "status", run.run_id, "--json").output)
    assert as_json["cancelled_by_code"].startswith("by its code: CancellationError from step")


def test_B2_a_run_that_is_not_cancelled_by_its_code_has_no_such_line(
    proctor: ProctorTestKit,
) -> None:
    run = proctor.runtime.start(plain_result)
    assert run.result(timeout=10) == 2
    as_json = json.loads(run_cli(proctor.db, "runs", "status", run.run_id, "--json").output)
    assert as_json["cancelled_by_code"] is None
    assert "by its code" not in run_cli(proctor.db, "runs", "status", run.run_id).output
