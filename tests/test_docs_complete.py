"""The overview pages name what exists: every event type, every awaitable of
a body, every row and ``--json`` key of ``runs status``.

A list written by hand goes stale when a feature lands (the review of B1-B5
found four such lists); these tests fail on the day it happens.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from actors import Runtime
from persistence import EventType
from tests import cli_workflows as wf
from tests.conftest import run_cli as proctor
from tests.processes import ROOT

pytestmark = pytest.mark.timeout(30)

#: What a workflow body may await (recorded and replayed), by the name a user
#: imports from ``actors``.
AWAITABLES = (
    "gather()",
    "sleep()",
    "sleep_until()",
    "wait_for_signal()",
    "start_step()",
    "start_child()",
)


def _section(text: str, heading: str) -> str:
    """The text under ``heading`` up to the next heading of any level."""
    body = text.split(heading, 1)[1]
    return re.split(r"\n#{1,6} ", body, maxsplit=1)[0]


def _table_column(section: str) -> set[str]:
    """The backquoted names in the first column of a Markdown table."""
    names: set[str] = set()
    for line in section.splitlines():
        if line.startswith("| `"):
            names.update(re.findall(r"`([^`]+)`", line.split("|")[1]))
    return names


def test_concepts_events_list_names_every_event_type() -> None:
    section = _section((ROOT / "docs" / "concepts.md").read_text(), "## Events")
    section = section.split(" Each has", 1)[0]  # the list, not the fields after it
    listed = set(re.findall(r"`([a-z_]+)`", section))
    missing = sorted(t.value for t in EventType if t.value not in listed)
    assert not missing, f"docs/concepts.md's Events list lacks {missing}"
    unknown = sorted(listed - {t.value for t in EventType})
    assert not unknown, f"docs/concepts.md's Events list names no EventType: {unknown}"


@pytest.mark.parametrize(
    ("page", "anchor"),
    [
        ("README.md", "## Use it"),
        ("docs/index.md", "A workflow body is replayed from its log"),
        ("docs/concepts.md", "## The actor tree"),
    ],
)
def test_overview_pages_name_every_awaitable_of_a_body(page: str, anchor: str) -> None:
    text = (ROOT / page).read_text()
    section = text.split(anchor, 1)[1].split("\n## ", 1)[0]
    missing = [name for name in AWAITABLES if f"`{name}`" not in section]
    assert not missing, f"{page} ({anchor}) does not name {missing}"


def _status_doc() -> str:
    return _section((ROOT / "docs" / "cli.md").read_text(), "## proctor runs status")


def test_runs_status_json_keys_are_the_documented_ones(rt: Runtime, db: Path) -> None:
    run = rt.start(wf.add, 1, 2)
    run.result(timeout=10)
    result = proctor(db, "runs", "status", run.run_id, "--json")
    assert result.exit_code == 0, result.output
    printed = set(json.loads(result.stdout))
    doc = _status_doc().split("`--json` prints one object", 1)[1]
    assert printed == _table_column(doc)


def test_runs_status_rows_are_documented(rt: Runtime, db: Path) -> None:
    """Every label ``runs status`` prints is a row of the documented table."""
    run = rt.start(wf.add, 1, 2)
    run.result(timeout=10)
    result = proctor(db, "runs", "status", run.run_id)
    assert result.exit_code == 0, result.output
    doc = _status_doc().split("`--json` prints one object", 1)[0]
    documented = _table_column(doc)
    head = result.stdout.split("\n\n", 1)[0]
    for line in head.splitlines():
        if line.startswith(" "):
            continue  # a long value wrapping under itself
        assert any(line.startswith(label + " ") for label in documented), line
