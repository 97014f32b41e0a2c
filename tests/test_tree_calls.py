"""``runs tree`` shows every call of a body: timers (B1), signal waits (B5),
what a step handle's cancel did (B2), and the run's deadline (B4).

Call numbers count every call, so a tree that drew only steps and child
runs skipped numbers without saying why, showed an abandoned step as plain
``running``, and hid the deadline. Each kind now has its own line, in the
text and in ``--json`` (Temporal's web UI likewise lists timers and signals
in a workflow's event history beside its activities).
"""

from __future__ import annotations

import contextlib
import json
import re
from typing import Any

import pytest

from actors import (
    CancellationError,
    CancellationType,
    sleep,
    start_step,
    step,
    wait_for_signal,
    workflow,
)
from actors.testing import ProctorTestKit
from tests.conftest import gate
from tests.conftest import run_cli as cli

pytestmark = pytest.mark.timeout(30)


@step()
def deaf(key: str) -> str:
    """Never checks: runs until its gate opens."""
    gate(f"{key}:go").wait(20)
    return key


@workflow(name="tests.tree_calls.every_kind", timeout=7200)
async def every_kind(key: str) -> str:
    handle = start_step(deaf(key))  # call 0
    handle.cancel("not needed", mode=CancellationType.ABANDON)
    with contextlib.suppress(CancellationError):
        await handle  # ABANDON: raises at once
    await sleep(5)  # a timer that fires
    approved = await wait_for_signal("approved")
    await sleep(3600)  # a timer still pending while the test looks
    return f"{approved}"


def _tree(kit: ProctorTestKit, run_id: str) -> tuple[str, dict[str, Any]]:
    text = cli(kit.db, "runs", "tree", run_id)
    assert text.exit_code == 0, text.output
    as_json = cli(kit.db, "runs", "tree", run_id, "--json")
    assert as_json.exit_code == 0, as_json.output
    return text.stdout, json.loads(as_json.stdout)


def _squeezed(text: str) -> str:
    return re.sub(r"\s+", " ", text)


def test_B1_B2_B4_B5_runs_tree_shows_timers_signal_waits_handle_cancels_and_the_deadline(
    proctor: ProctorTestKit,
) -> None:
    run = proctor.runtime.start(every_kind, "tree")
    try:
        proctor.wait_for_event(run, "timer_started")
        proctor.clock.advance(5)
        proctor.wait_for_event(run, "signal_waiting")
        text, tree = _tree(proctor, run.run_id)
        flat = _squeezed(text)
        assert "running (abandoned by its handle)" in flat, text
        assert re.search(r"sleep #\d+ until \S+Z fired", flat), text
        assert re.search(r"wait for signal 'approved' #\d+ waiting", flat), text
        assert re.search(r"timeout 7200 s, deadline \S+Z \(1h59m left\)", flat), text
        kinds = [(n["kind"], n["status"]) for n in tree["children"]]
        assert kinds == [("step", "running"), ("timer", "fired"), ("signal_wait", "waiting")]
        assert tree["children"][0]["handle_cancel"]["mode"] == "abandon"
        assert tree["timeout"]["timeout"] == 7200
        # The call numbers run on without a gap: every call has its line.
        calls = [n["call"] for n in tree["children"]]
        assert calls == list(range(len(calls)))

        proctor.runtime.signal(run.run_id, "approved", "yes")
        proctor.wait_for_event(run, "timer_started", count=2)
        text, tree = _tree(proctor, run.run_id)
        flat = _squeezed(text)
        assert re.search(r"wait for signal 'approved' #\d+ received", flat), text
        assert re.search(r"sleep #\d+ until \S+Z pending \(in (59m\d\ds|1h00m)\)", flat), text
        assert [n["status"] for n in tree["children"]][2:] == ["received", "pending"]
        assert tree["children"][3]["due"].endswith("Z")
        proctor.clock.advance(3600)
        assert run.result(timeout=10) == "yes"
        text, tree = _tree(proctor, run.run_id)
        assert "fired" in tree["children"][3]["status"]
    finally:
        gate("tree:go").set()
