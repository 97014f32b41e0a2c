"""No value a user copies back is ever broken over two lines, at any width.

A run id or a listing's cursor copied from one line of the output must be
the whole value: ``runs list`` piped into ``cat`` (no terminal, no
``COLUMNS``) once folded its next-page cursor, and a narrow terminal
folded run ids in its blocks. Lines now break only at spaces outside such
values (docs/cli.md, "Reading the output").
"""

from __future__ import annotations

from pathlib import Path

import pytest

from actors import Runtime
from tests import cli_workflows as wf
from tests.conftest import run_cli as proctor

pytestmark = pytest.mark.timeout(30)

#: A chosen run id with inner spaces, longer than the narrow widths used here.
LONG_ID = "customer 4711 / order 2026-11-30 / the very long name of a shop"


def _cursor_from(text: str) -> str:
    """What a user copies: the rest of the one line that gives the cursor."""
    lines = [line for line in text.splitlines() if "--cursor " in line]
    assert len(lines) == 1, text
    cursor = lines[0].split("--cursor ", 1)[1].strip()
    assert cursor, text  # the cursor is on the line of its option
    return cursor


def _started(rt: Runtime, count: int) -> None:
    for i in range(count):
        rt.start(wf.add, 1, i, run_id=f"{LONG_ID} {i}").result(timeout=10)


@pytest.mark.parametrize("columns", [None, "30", "12"])
def test_runs_list_cursor_copied_from_one_line_continues_the_listing(
    rt: Runtime, db: Path, monkeypatch: pytest.MonkeyPatch, columns: str | None
) -> None:
    if columns is None:
        monkeypatch.delenv("COLUMNS", raising=False)  # a pipe: not a terminal
    else:
        monkeypatch.setenv("COLUMNS", columns)
    _started(rt, 3)
    page = proctor(db, "runs", "list", "--limit", "2")
    assert page.exit_code == 0, page.output
    cursor = _cursor_from(page.stdout)
    assert len(cursor) > 60  # longer than any width used here
    again = proctor(db, "runs", "list", "--limit", "2", "--cursor", cursor)
    assert again.exit_code == 0, again.output
    assert any(f"{LONG_ID} 0" in line for line in again.stdout.splitlines()), again.stdout


@pytest.mark.parametrize("columns", [None, "30", "12"])
@pytest.mark.parametrize("command", ["list", "status", "tree"])
def test_a_run_id_is_never_broken_over_two_lines(
    rt: Runtime, db: Path, monkeypatch: pytest.MonkeyPatch, columns: str | None, command: str
) -> None:
    if columns is None:
        monkeypatch.delenv("COLUMNS", raising=False)
    else:
        monkeypatch.setenv("COLUMNS", columns)
    _started(rt, 1)
    run_id = f"{LONG_ID} 0"
    args = ["runs", command] if command == "list" else ["runs", command, run_id]
    result = proctor(db, *args)
    assert result.exit_code == 0, result.output
    assert any(run_id in line for line in result.stdout.splitlines()), result.stdout
