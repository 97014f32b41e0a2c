"""Every code example in docs/ is a real file, and runs here.

Each runs in a fresh interpreter (as a reader would run it) and checks its
own outcome with asserts; this test checks it exits 0 and prints what the
guide says it prints.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.timeout(60)

EXAMPLES = Path(__file__).resolve().parent.parent / "docs" / "examples"

PRINTS = {
    "cancel_with_shielded_cleanup.py": " is cancelled",
    "terminate.py": " is terminated",
    "heartbeat_timeout_retry.py": "attempt 2 imported rows 599..999",
    "one_for_all.py": "['a: session 2', 'b: session 2']",
    "crash_resume.py": "['reservation for o-7', 'shipped o-7']",
    "embed_sync.py": "6",
    "embed_asyncio.py": "4999",
    "client.py": "charged 1250 for o-1",
    "fastapi_orders.py": (
        "['201 then 200, same run: True', '409', 'cancelled', 'shipped o-2 (receipt-o-2-7)', '404']"
    ),
    "starting_runs.py": "shipped cart-7, charged 1 time(s)",
    "signals.py": "o-2: refused by bob",
    "run_timeout.py": "run is cancelled: run timed out after 0.5 s",
    "async_step_cancel.py": "download cancelled: enough",
    "durable_sleep.py": "reminder sent for inv-1; inv-2 cancelled",
    "cancel_scopes.py": (
        "['quote timed out: True', 'optional block skipped: True',"
        " 'DeadlineExceeded, a TimeoutError: True', 'shipped o-9 for 499']"
    ),
    "postgresql_store.py": "reserved o-1",
    "structured_logs.py": "event_type=run_completed status=completed",
    "tracing.py": "['-', 'completed', 'completed', 'completed', 'failed']",
    "step_handles.py": (
        "['fast: 12.50', 'cancelled: the fast carrier answered first',"
        " 'cancelled: not worth waiting for']"
    ),
}


def test_every_example_is_listed() -> None:
    scripts = {p.name for p in EXAMPLES.glob("*.py") if not p.name.startswith("test_")}
    assert scripts == set(PRINTS)


def test_every_python_block_of_the_docs_includes_an_example_file() -> None:
    """The README's promise: every code example in the docs is a file here,
    which the tests run, included by the snippets extension (`--8<--`)."""
    docs = EXAMPLES.parent
    inline = [
        f"{page.relative_to(docs)}: {block.splitlines()[1:2]}"
        for page in sorted(docs.rglob("*.md"))
        for block in page.read_text(encoding="utf-8").split("```python")[1:]
        if not block.lstrip("\n").startswith("--8<--")
    ]
    assert inline == []


@pytest.mark.parametrize("name", sorted(PRINTS))
def test_the_example_runs_and_prints_what_the_guide_says(name: str, tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, str(EXAMPLES / name)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=50,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert PRINTS[name] in result.stdout.strip().splitlines()[-1]


@pytest.mark.timeout(90)
def test_the_postgresql_guide_example_runs_on_postgresql(pg_url: str, tmp_path: Path) -> None:
    """The guide's example on the store it is about (the PROCTOR_DB it documents)."""
    result = subprocess.run(
        [sys.executable, str(EXAMPLES / "postgresql_store.py")],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=80,
        check=False,
        env={**os.environ, "PROCTOR_DB": pg_url},
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == "reserved o-1"
    assert not (tmp_path / "orders.db").exists()
