"""The pytest plugin, as a project that only installs Proctor would meet it.

Each test writes a test file into a fresh directory and runs pytest on it in
a subprocess: the fixtures come from the ``pytest11`` entry point alone.
"""

from __future__ import annotations

from pathlib import Path

import pytest

pytest_plugins = ["pytester"]
pytestmark = pytest.mark.timeout(120)

#: The testing guide's example, as a user's project would have it.
USER_TESTS = (
    Path(__file__).resolve().parent.parent / "docs" / "examples" / "test_order_workflow.py"
).read_text()

#: And a test that fails on purpose, to show what a failure prints.
FAILING = """

def test_a_failed_assertion_prints_the_timeline(proctor):
    run = proctor.runtime.start(order, "o-4")
    proctor.wait_for_status(run, "completed")
    proctor.assert_events(run, ["run_started", "cancel_requested"])
"""


def test_a_project_that_installs_proctor_gets_the_fixtures(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_order_workflow=USER_TESTS + FAILING)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-q")
    result.assert_outcomes(passed=4, failed=1)
    # The deliberate failure shows what the log held, one line per event.
    result.stdout.fnmatch_lines(
        [
            "*expected 'cancel_requested' after * in its log, in this order:",
            "*run_created*",
            "*step_completed charge#0.1 result='charged o-4'*",
            "*run_completed*",
        ]
    )


def test_the_fixtures_are_listed_with_their_help(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest_subprocess("--fixtures", "-p", "no:cacheprovider")
    for name in ("proctor_db", "virtual_clock", "proctor", "runtime"):
        result.stdout.fnmatch_lines([f"{name} -- *actors/pytest_plugin.py*"])
